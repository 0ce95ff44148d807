/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, e.g. whale under `npm run bench -- http --profile DIR`)
 * as text: the top functions by self time, and the share of the sampled time spent under ("total")
 * chosen functions of the request path (inclusive time, each stack counted once).
 *
 *   node dist/bench/http-profile.js FILE.cpuprofile [TOP] [CALLERS_OF_REGEXP]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function label(n: ProfileNode): string {
  const f = n.callFrame;
  const file = f.url.replace(/^.*\/(node_modules\/[^/]+|dist|node:)/, '$1').replace(/^file:\/\//, '');
  return `${f.functionName || '(anonymous)'} ${file ? `${file}:${f.lineNumber + 1}` : ''}`.trim();
}

/**
 * The samples taken while requests were served: from the first to the last sample whose stack holds
 * `marker` (the HTTP server's request handler), so start-up (module loading, model load) and
 * shutdown are left out.
 */
function servingWindow(
  profile: CpuProfile,
  onStack: (id: number, re: RegExp) => boolean,
  marker: RegExp,
): [number, number] {
  let first = -1;
  let last = -1;
  profile.samples.forEach((id, i) => {
    if (onStack(id, marker)) {
      if (first < 0) first = i;
      last = i;
    }
  });
  return first < 0 ? [0, profile.samples.length] : [first, last + 1];
}

export function summarize(profile: CpuProfile, top = 30, callersOf?: RegExp): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const onStack = (id: number, re: RegExp) => {
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur))
      if (re.test(label(byId.get(cur)!))) return true;
    return false;
  };
  const [from, to] = servingWindow(profile, onStack, /^handle .*server\/http-server\.js/);
  const self = new Map<number, number>();
  for (let i = from; i < to; i++) {
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const idle = [...self.entries()]
    .filter(([id]) => /^\((idle|program|garbage collector)\)$/.test(byId.get(id)!.callFrame.functionName))
    .map(([id, us]) => [byId.get(id)!.callFrame.functionName, us] as const);
  const selfBy = new Map<string, number>();
  for (const [id, us] of self) {
    const k = label(byId.get(id)!);
    selfBy.set(k, (selfBy.get(k) ?? 0) + us);
  }
  // Inclusive time per label: a sample counts once for each distinct label on its stack.
  const incl = new Map<string, number>();
  for (const [id, us] of self) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = label(byId.get(cur)!);
      if (seen.has(k)) continue;
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + us);
    }
  }
  const busy = total - (idle.find(([n]) => n === '(idle)')?.[1] ?? 0);
  // Who calls functions matching callersOf: the nearest project frame above them, by time.
  const callers = new Map<string, number>();
  if (callersOf) {
    for (const [id, us] of self) {
      let cur: number | undefined = id;
      while (cur !== undefined && !callersOf.test(label(byId.get(cur)!))) cur = parent.get(cur);
      if (cur === undefined) continue;
      const chain: string[] = [];
      for (let up = parent.get(cur); up !== undefined && chain.length < 4; up = parent.get(up)) {
        const k = label(byId.get(up)!);
        if (/dist\/src/.test(k)) chain.push(k);
      }
      const k = chain.join(' ← ') || '(no project frame)';
      callers.set(k, (callers.get(k) ?? 0) + us);
    }
  }
  const pct = (us: number) => `${((100 * us) / busy).toFixed(1)}%`;
  const rows = (m: Map<string, number>, filter: (k: string) => boolean = () => true) =>
    [...m.entries()]
      .filter(([k]) => filter(k))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => `${pct(us).padStart(6)}  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`);
  return [
    `sampled ${(total / 1e6).toFixed(2)} s while serving, busy (not idle) ${(busy / 1e6).toFixed(2)} s; shares below are of busy time`,
    ...idle.map(([n, us]) => `  ${n}: ${(us / 1000).toFixed(0)} ms`),
    '',
    `top ${top} by self time:`,
    ...rows(selfBy),
    '',
    `top ${top} by inclusive time (project code and node internals, no root/idle):`,
    ...rows(incl, (k) => !/^\((root|idle|program|garbage collector)\)/.test(k)),
    ...(callersOf ? ['', `callers of ${callersOf.source}:`, ...rows(callers)] : []),
  ].join('\n');
}

if (process.argv[1]?.endsWith('http-profile.js')) {
  const [file, top, callers] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: http-profile.js FILE.cpuprofile [TOP]\n');
    process.exit(2);
  }
  process.stdout.write(
    `${summarize(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, Number(top ?? 30), callers ? new RegExp(callers) : undefined)}\n`,
  );
}
