/** Client-side tools of the hardening tests: raw HTTP over a socket, timings, RSS of a child. */
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Milliseconds from the first byte sent to the end of the answer. */
  ms: number;
}

/** host and port of an http://host:port URL. */
export function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

/** Opens a TCP connection to the server (resolves once connected). */
export function openSocket(url: string): Promise<Socket> {
  const { host, port } = hostPort(url);
  return new Promise((resolve, reject) => {
    const s = connect(port, host, () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves when the server closes the socket, with the time it took and what it sent. */
export function whenClosed(s: Socket): Promise<{ ms: number; data: string }> {
  const t0 = performance.now();
  let data = '';
  s.on('data', (d: Buffer) => (data += d.toString('latin1')));
  s.on('error', () => undefined);
  return new Promise((resolve) => s.once('close', () => resolve({ ms: performance.now() - t0, data })));
}

/** Parses the first HTTP answer in `text`. */
export function parseAnswer(text: string, ms = 0): RawAnswer {
  const end = text.indexOf('\r\n\r\n');
  const head = end < 0 ? text : text.slice(0, end);
  const [statusLine, ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const len = Number(headers['content-length'] ?? NaN);
  const rest = end < 0 ? '' : text.slice(end + 4);
  return {
    status: Number(/^HTTP\/1\.1 (\d+)/.exec(statusLine ?? '')?.[1] ?? 0),
    headers,
    body: Number.isFinite(len) ? rest.slice(0, len) : rest,
    ms,
  };
}

/**
 * Sends a whole request on a fresh socket (the body written completely before
 * anything is read, as a naive client does), then reads the answer.
 */
export async function rawRequest(
  url: string,
  head: string,
  body: Buffer | string = '',
): Promise<RawAnswer & { writeError?: string }> {
  const s = await openSocket(url);
  const t0 = performance.now();
  let data = '';
  let writeError: string | undefined;
  s.on('data', (d: Buffer) => (data += d.toString('latin1')));
  s.on('error', (e) => (writeError = (e as NodeJS.ErrnoException).code ?? e.message));
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  await new Promise<void>((resolve) => {
    s.write(head);
    s.write(body, () => resolve());
    s.once('error', () => resolve());
  });
  // Wait for one complete answer (or the close).
  await Promise.race([
    closed,
    (async () => {
      for (;;) {
        const a = parseAnswer(data);
        const len = Number(a.headers['content-length'] ?? NaN);
        if (a.status && Number.isFinite(len) && a.body.length >= len) return;
        await new Promise((r) => setTimeout(r, 5));
      }
    })(),
  ]);
  s.destroy();
  return { ...parseAnswer(data, performance.now() - t0), ...(writeError ? { writeError } : {}) };
}

/** Milliseconds one GET /v2/health/live takes (the event loop's responsiveness as a client sees it). */
export async function liveMs(url: string): Promise<number> {
  const t0 = performance.now();
  const r = await fetch(`${url}/v2/health/live`);
  await r.text();
  return performance.now() - t0;
}

/** Samples liveMs every `everyMs` while `work` runs; returns the work's result and the worst latency. */
export async function whileProbing<T>(
  url: string,
  work: () => Promise<T>,
  everyMs = 50,
): Promise<{ result: T; worstLiveMs: number }> {
  let worst = 0;
  let done = false;
  const probe = (async () => {
    while (!done) {
      worst = Math.max(worst, await liveMs(url));
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  try {
    const result = await work();
    return { result, worstLiveMs: worst };
  } finally {
    done = true;
    await probe;
  }
}

/** A process's resident set size in MiB (Linux /proc). */
export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/**
 * A request whose headers go out at once and whose body is written only when
 * `send()` is called: the server decides on the headers alone. Resolves
 * `answer` with the status and headers as soon as they arrive.
 */
export function heldRequest(
  url: string,
  path: string,
  contentLength: number,
): {
  answer: Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>;
  send: (body: Buffer) => void;
} {
  const { host, port } = hostPort(url);
  const req = httpRequest({
    host,
    port,
    path,
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-length': contentLength },
    agent: false,
  });
  req.on('error', () => undefined);
  req.flushHeaders();
  const answer = new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>(
    (resolve, reject) => {
      req.once('response', (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      });
      req.once('close', () => setTimeout(() => reject(new Error('closed without an answer')), 50));
    },
  );
  answer.catch(() => undefined);
  return { answer, send: (body) => req.end(body) };
}
