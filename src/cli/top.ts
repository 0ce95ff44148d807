/**
 * `whale top`: connects to a running `whale start` (GET /v1/resources) and
 * shows devices, usage, allocations and quotas per model, refreshing like
 * `top` on a terminal (plain snapshots, one per refresh, when not a TTY).
 */
import { parseArgs } from 'node:util';

import { env } from '../common/env.js';
import { WhaleError } from '../common/errors.js';
import type { CliIO } from './main.js';

export const TOP_USAGE = `Usage: whale top [--url URL] [--interval SECONDS] [--count N] [--json]

Shows a running node's resources live: CPU, memory and GPU usage, and per model
the CPU/memory/GPU granted and used, the quotas and the requests refused.
  --url        the node (default http://127.0.0.1:$WHALE_HTTP_PORT, port 8080)
  --interval   seconds between refreshes (default 2)
  --count      stop after N refreshes (default: until Ctrl-C)
  --json       print the raw /v1/resources JSON
`;

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function bytes(n: unknown): string {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '-';
  return n >= GiB ? `${(n / GiB).toFixed(1)}G` : `${(n / MiB).toFixed(1)}M`;
}

function pct(x: unknown): string {
  return typeof x === 'number' ? `${(x * 100).toFixed(0)}%` : '-';
}

function bar(x: number, width = 20): string {
  const n = Math.max(0, Math.min(width, Math.round(x * width)));
  return `[${'#'.repeat(n)}${' '.repeat(width - n)}]`;
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The screen for one /v1/resources snapshot. */
export function renderTop(r: Json, url: string): string {
  const lines: string[] = [];
  const u = r.usage as Json | null;
  lines.push(`whale top — ${url} — ${new Date(r.timestamp as number).toISOString()}`);
  if (u) {
    lines.push(
      `CPU  ${bar(u.cpu.load)} ${pct(u.cpu.load)} of ${u.cpu.cores} cores   whale process ${pct(u.cpu.process)} of a core`,
    );
    // The machine's memory is an operator detail: an anonymous /v1/resources leaves it out.
    if (u.memory)
      lines.push(
        `MEM  ${bar(u.memory.used / u.memory.total)} ${bytes(u.memory.used)} / ${bytes(u.memory.total)}   whale RSS ${bytes(u.memory.process.rss)}, heap ${bytes(u.memory.process.heapUsed)}, buffers ${bytes(u.memory.process.arrayBuffers)}`,
      );
  } else {
    lines.push('(no sample yet)');
  }
  const gpus = (r.devices.gpus ?? []) as Json[];
  for (const g of gpus) {
    lines.push(
      `${String(g.id).padEnd(8)} ${bar(g.utilization)} ${pct(g.utilization)} busy, ${bytes(g.memoryUsed)} / ${bytes(g.memoryTotal)}${g.temperatureC !== undefined ? `, ${g.temperatureC}°C` : ''}${g.powerWatts !== undefined ? `, ${g.powerWatts.toFixed(0)} W` : ''}`,
    );
  }
  if (gpus.length === 0) lines.push(`GPU  none${r.devices.gpuNote ? ` (${r.devices.gpuNote})` : ''}`);
  for (const [id, p] of Object.entries((r.allocations?.gpuPools ?? {}) as Json)) {
    lines.push(
      `pool ${id}: reserved ${bytes(p.reserved)}, allocated ${bytes(p.allocated)}, peak ${bytes(p.peakAllocated)}, hits ${p.cacheHits}/${p.cacheHits + p.cacheMisses}, fragmentation ${pct(p.fragmentation)}`,
    );
  }
  lines.push('');
  lines.push(
    `${'MODEL'.padEnd(16)} ${'CPU'.padStart(6)} ${'SHARE'.padStart(6)} ${'RUN'.padStart(4)} ${'WAIT'.padStart(5)} ${'CPU s'.padStart(8)} ${'ROWS'.padStart(8)} ${'MEM'.padStart(8)} ${'MEMQ'.padStart(8)} ${'GPU'.padStart(5)} ${'GPU MEM'.padStart(8)} ${'RPS Q'.padStart(6)} ${'INFL'.padStart(5)}`,
  );
  for (const [name, m] of Object.entries(r.models as Json)) {
    const limit = m.rateLimit ?? {};
    const inFlight = r.quotas?.models?.[name]?.inFlight;
    lines.push(
      `${name.slice(0, 16).padEnd(16)} ${String(m.quota?.cpu ?? '-').padStart(6)} ${(m.cpu ? m.cpu.share.toFixed(2) : '-').padStart(6)} ${String(m.cpu?.running ?? '-').padStart(4)} ${String(m.cpu?.waiting ?? '-').padStart(5)} ${((m.usage?.cpuMs ?? 0) / 1000).toFixed(2).padStart(8)} ${String(m.usage?.rows ?? 0).padStart(8)} ${bytes(m.memory?.used).padStart(8)} ${bytes(m.memory?.budget).padStart(8)} ${String(m.quota?.gpu ?? 0).padStart(5)} ${bytes(m.gpu?.allocated).padStart(8)} ${String(limit.requestsPerSecond ?? '-').padStart(6)} ${String(inFlight ?? '-').padStart(5)}`,
    );
  }
  const q = r.quotas?.rejected;
  if (q)
    lines.push(
      '',
      `refused: ${q.rate} over requests/s, ${q.concurrency} over concurrency   alerts firing: ${r.alerts?.firing ?? 0}`,
    );
  for (const a of (r.alerts?.active ?? []) as Json[])
    lines.push(`  ${a.severity.toUpperCase()} ${a.rule} ${a.key} = ${a.value} (threshold ${a.threshold})`);
  for (const l of (r.leaks ?? []) as Json[])
    lines.push(`  leak: model ${l.model} released holding ${bytes(l.memoryBytes)} memory, ${bytes(l.gpuBytes)} GPU`);
  return `${lines.join('\n')}\n`;
}

export async function topCommand(argv: string[], io: CliIO, isTty = process.stdout.isTTY === true): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      interval: { type: 'string' },
      count: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.out(TOP_USAGE);
    return 0;
  }
  const url = (values.url ?? `http://127.0.0.1:${env.httpPort ?? 8080}`).replace(/\/$/, '');
  const interval = Number(values.interval ?? 2);
  const count = values.count === undefined ? Infinity : Number(values.count);
  if (!(interval >= 0.1 && interval <= 3600))
    throw new WhaleError('ERR_INVALID_ARG', `--interval: expected seconds in [0.1, 3600], got '${values.interval}'`, {
      field: 'interval',
    });
  if (!(Number.isInteger(count) && count >= 1) && count !== Infinity)
    throw new WhaleError('ERR_INVALID_ARG', `--count: expected an integer >= 1, got '${values.count}'`, {
      field: 'count',
    });
  let stop = false;
  const onSignal = () => (stop = true);
  process.once('SIGINT', onSignal);
  try {
    for (let i = 0; i < count && !stop; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, interval * 1000));
      let body: Json;
      try {
        const res = await fetch(`${url}/v1/resources`, { signal: AbortSignal.timeout(10_000) });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        body = (await res.json()) as Json;
      } catch (err) {
        io.err(
          `whale top: cannot read ${url}/v1/resources: ${(err as Error).message} (is 'whale start' running there?)\n`,
        );
        return 1;
      }
      const screen = values.json ? `${JSON.stringify(body)}\n` : renderTop(body, url);
      io.out(isTty && !values.json ? `\x1b[H\x1b[2J${screen}` : screen);
    }
  } finally {
    process.off('SIGINT', onSignal);
  }
  return 0;
}
