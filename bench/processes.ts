/** What the benches that start servers as child processes share: a free port, and a process's main-thread CPU. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/** user + system CPU of a process's main thread so far, µs (Linux /proc: utime and stime, fields 14 and 15 of stat); 0 elsewhere. */
export function mainThreadCpuUs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8')
      .replace(/^.*\) /, '')
      .split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK;
  } catch {
    return 0;
  }
}

export { freePort } from '../test/support/ports.js';
