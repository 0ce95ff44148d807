/**
 * Resource management costs: caching-pool allocate/free pairs per second
 * against malloc/free (host backend) and cudaMalloc/cudaFree (where a GPU is),
 * measured inside C++; the monitor's sampling cost per tick; and the quota
 * check on the request path (no limit, a token bucket, bucket + concurrency).
 */
import { createSystemSampler, sampleGpus } from '../src/core/resource-management/monitor/system-sampler.js';
import { QuotaManager } from '../src/core/resource-management/quota/quota-manager.js';
import { native } from '../src/native/loader.js';
import { fmt, median } from './stats.js';

export async function benchResources(o: {
  runs: number;
  quick: boolean;
}): Promise<{ text: string; pool: unknown[]; monitor: unknown; quota: unknown[] }> {
  const lines: string[] = [];
  const pool: unknown[] = [];
  const pairs = o.quick ? 200_000 : 2_000_000;
  const backends: ('host' | 'cuda')[] = native().cudaPoolAvailable(0).available ? ['host', 'cuda'] : ['host'];
  lines.push(
    'Pool allocate/free pairs per second (median of runs; 16 other blocks live)',
    'backend  size      pool Mpairs/s  raw Mpairs/s  raw                  pool/raw',
  );
  for (const backend of backends) {
    for (const bytes of [512, 64 * 1024, 4 * 1024 * 1024]) {
      const runs = Array.from({ length: o.runs }, () => native().poolBenchPairs({ backend, bytes, pairs, live: 16 }));
      const p = median(runs.map((r) => r.poolPairsPerSec));
      const r = median(runs.map((x) => x.rawPairsPerSec));
      pool.push({ backend, bytes, poolPairsPerSec: p, rawPairsPerSec: r, raw: runs[0]!.rawName });
      lines.push(
        `${backend.padEnd(8)} ${`${bytes / 1024} KiB`.padEnd(9)} ${fmt(p / 1e6).padStart(14)} ${fmt(r / 1e6).padStart(13)}  ${runs[0]!.rawName.padEnd(19)}  ${fmt(p / r)}x`,
      );
    }
  }
  if (backends.length === 1)
    lines.push(`(no GPU here: ${native().cudaPoolAvailable(0).reason}; the cudaMalloc comparison did not run)`);

  const sampler = createSystemSampler();
  await sampler();
  const ticks: number[] = [];
  const gpuMs: number[] = [];
  for (let i = 0; i < Math.max(3, o.runs); i++) {
    const t0 = performance.now();
    await sampler();
    ticks.push(performance.now() - t0);
    const g0 = performance.now();
    sampleGpus();
    gpuMs.push(performance.now() - g0);
  }
  // Event-loop time a tick takes (the rest is waiting on child processes and /proc reads).
  const loopBlocked: number[] = [];
  for (let i = 0; i < Math.max(3, o.runs); i++) {
    let maxGap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
    }, 1);
    await sampler();
    clearInterval(timer);
    loopBlocked.push(maxGap);
  }
  const monitor = { tickMs: median(ticks), gpuSampleMs: median(gpuMs), longestEventLoopGapMs: median(loopBlocked) };
  lines.push(
    '',
    `Monitor tick (systeminformation CPU/memory/disk/network + NVML): ${fmt(monitor.tickMs)} ms wall, NVML part ${fmt(monitor.gpuSampleMs, 3)} ms, longest event-loop gap during a tick ${fmt(monitor.longestEventLoopGapMs)} ms`,
  );

  const quota: unknown[] = [];
  lines.push('', 'Quota check on the request path (local store)', 'limits                       ns/request');
  const n = o.quick ? 50_000 : 500_000;
  for (const [label, limit] of [
    ['none', undefined],
    ['requests/s bucket', { requestsPerSecond: 1e12, burst: 1e12 }],
    ['bucket + concurrency', { requestsPerSecond: 1e12, burst: 1e12, maxConcurrent: 1e6 }],
  ] as const) {
    const q = new QuotaManager();
    if (limit) q.setRateLimit('model', 'm', limit);
    const runs: number[] = [];
    for (let r = 0; r < o.runs; r++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) (await q.admit('m')).release();
      runs.push(Number(process.hrtime.bigint() - t0) / n);
    }
    quota.push({ limits: label, nsPerRequest: median(runs) });
    lines.push(`${label.padEnd(28)} ${fmt(median(runs), 0).padStart(10)}`);
  }
  return { text: lines.join('\n'), pool, monitor, quota };
}
