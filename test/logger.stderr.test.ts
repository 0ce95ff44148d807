/**
 * The default logger writes its lines to stderr once per event-loop turn (issue 25: one write per turn
 * instead of one per access-log line), and loses none when the process exits: normally, by
 * process.exit() right after logging, or by an uncaught exception.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { afterEach, describe, expect, it, vi } from 'vitest';

import { createLogger, withLogContext } from '../src/common/logger.js';

const root = join(import.meta.dirname, '..');

/** Runs a module snippet in a fresh node (built dist/ logger) and returns its stderr and exit code. */
function runChild(body: string): { stderr: string; status: number | null } {
  const code = `import { createLogger } from ${JSON.stringify(join(root, 'dist/src/common/logger.js'))};\nconst log = createLogger('t', 'info');\n${body}`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    encoding: 'utf8',
    env: { ...process.env, WHALE_LOG_LEVEL: 'info' },
  });
  return { stderr: r.stderr, status: r.status };
}

const messages = (stderr: string) =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => (JSON.parse(l) as { msg: string }).msg);

describe('logger: stderr lines', () => {
  afterEach(() => vi.restoreAllMocks());

  it('a line is the fixed fields, then the log context, then the fields (a field overrides the context in place)', () => {
    const lines: string[] = [];
    const log = createLogger('t', 'info', (l) => lines.push(l));
    withLogContext({ requestId: 'r1', traceId: 't1' }, () =>
      log.info('m', { traceId: 't2', n: 1, ...(JSON.parse('{"__proto__": {"x": 1}}') as object) }),
    );
    log.info('no context');
    expect(lines[0]).toBe(
      '{"time":' +
        JSON.stringify(JSON.parse(lines[0]!).time) +
        ',"level":"info","component":"t","msg":"m","requestId":"r1","traceId":"t2","n":1,"__proto__":{"x":1}}',
    );
    expect(Object.keys(JSON.parse(lines[1]!) as object)).toEqual(['time', 'level', 'component', 'msg']);
  });

  it('writes the lines of one turn together, in order, in the next turn', async () => {
    const writes: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: unknown) => {
      writes.push(String(chunk));
      return true;
    });
    const log = createLogger('t', 'info');
    log.info('one');
    log.warn('two', { n: 2 });
    log.debug('not written at info');
    expect(writes).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(writes).toHaveLength(1);
    const lines = writes[0]!
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l.msg, l.level, l.component])).toEqual([
      ['one', 'info', 't'],
      ['two', 'warn', 't'],
    ]);
    expect(lines[1]!.n).toBe(2);
    log.info('three');
    await new Promise((r) => setImmediate(r));
    expect(writes).toHaveLength(2);
  });

  it.each([
    ['a normal exit', `log.info('a'); log.info('b');`, 0],
    ['process.exit() right after logging', `log.info('a'); log.info('b'); process.exit(3);`, 3],
    ['an uncaught exception', `log.info('a'); log.info('b'); throw new Error('boom');`, 1],
    [
      'a never-settling wait (the flush does not keep the process alive)',
      `log.info('a'); log.info('b'); await new Promise(() => {});`,
      13,
    ],
  ])('loses no line on %s', (_what, body, status) => {
    const r = runChild(body);
    expect(r.status).toBe(status);
    expect(messages(r.stderr)).toEqual(['a', 'b']);
  });
});
