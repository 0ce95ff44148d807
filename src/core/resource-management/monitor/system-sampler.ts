/**
 * One sample of the machine: CPU (total, per core, this process), memory
 * (system, process RSS, V8 heap, external and ArrayBuffers), disks through
 * systeminformation (asynchronous: child processes and /proc reads, never a
 * busy event loop), network from sysfs (network-rates.ts), GPUs through NVML
 * (one short native call).
 */
import { cpus } from 'node:os';

import si from 'systeminformation';

import { engine } from '../../../native/engine.js';
import { native } from '../../../native/loader.js';
import { createNetworkRates, type NetworkRate } from './network-rates.js';

export interface GpuSample {
  id: string;
  index: number;
  name: string;
  utilization: number;
  memoryUsed: number;
  memoryFree: number;
  memoryTotal: number;
  temperatureC?: number;
  powerWatts?: number;
  /** GPU memory of this process, when NVML attributes it. */
  processMemory?: number;
}

export interface SystemSample {
  timestamp: number;
  cpu: { load: number; perCore: number[]; cores: number; process: number };
  memory: {
    total: number;
    used: number;
    available: number;
    process: { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number };
  };
  disks: { mount: string; size: number; used: number; use: number }[];
  network: { iface: string; rxBytesPerSec: number; txBytesPerSec: number }[];
  gpus: GpuSample[];
  /** Why GPU figures are missing (no driver, no NVML), when they are. */
  gpuNote?: string;
}

export type Sampler = () => Promise<SystemSample>;

/** GPU figures from NVML; empty with a note when there is no driver. */
export function sampleGpus(): { gpus: GpuSample[]; note?: string } {
  try {
    const report = engine.devices();
    const tele = native().gpuTelemetry();
    const gpus: GpuSample[] = [];
    for (const d of report.devices) {
      if (d.kind !== 'cuda' || !d.nvml) continue;
      const t = tele.devices.find((x) => x.index === d.nvml!.index);
      const mine = t?.processes?.find((p) => p.pid === process.pid);
      gpus.push({
        id: d.id,
        index: d.index,
        name: d.name,
        utilization: d.nvml.utilizationGpu / 100,
        memoryUsed: d.nvml.memoryUsed,
        memoryFree: d.nvml.memoryFree,
        memoryTotal: d.nvml.memoryTotal,
        ...(t?.temperatureC === undefined ? {} : { temperatureC: t.temperatureC }),
        ...(t?.powerWatts === undefined ? {} : { powerWatts: t.powerWatts }),
        ...(mine ? { processMemory: mine.usedMemory } : {}),
      });
    }
    if (gpus.length > 0) return { gpus };
    return {
      gpus,
      note: report.gpuUnavailableReason ?? (report.nvml.loaded ? 'no GPU reported by NVML' : report.nvml.error),
    };
  } catch (err) {
    return { gpus: [], note: `GPU figures unavailable: ${(err as Error).message}` };
  }
}

type CpuTimes = ReturnType<typeof cpus>[number]['times'];

/**
 * The machine's CPU load since the last call (the first call: since boot), overall and per core, from
 * os.cpus() times: systeminformation's currentLoad runs `cat /proc/stat` through execSync on every call,
 * which blocks the event loop (issue 25).
 */
function cpuLoadSince(last: CpuTimes[] | undefined): { now: CpuTimes[]; load: number; perCore: number[] } {
  const now = cpus().map((c) => c.times);
  let busyAll = 0;
  let totalAll = 0;
  const perCore = now.map((t, i) => {
    const p = last?.[i] ?? { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 };
    const busy = t.user - p.user + (t.nice - p.nice) + (t.sys - p.sys) + (t.irq - p.irq);
    const total = busy + (t.idle - p.idle);
    busyAll += busy;
    totalAll += total;
    return total > 0 ? busy / total : 0;
  });
  return { now, load: totalAll > 0 ? busyAll / totalAll : 0, perCore };
}

/** A sampler that measures this process's CPU between calls (the first call measures since start-up). */
export function createSystemSampler(): Sampler {
  let lastCpu = process.cpuUsage();
  let lastAt = performance.now();
  // Disks are read at most every 30 s: systeminformation's fsSize runs `cat /proc/mounts` through execSync,
  // which blocks the event loop (tens of ms on a loaded machine) and showed in every HTTP p99 (issue 25).
  let disks: Promise<Awaited<ReturnType<typeof si.fsSize>>> | undefined;
  let disksAt = -Infinity;
  // networkStats() without an interface looks the default one up through execSync (`ip route`) on every
  // call: it is looked up once here and named.
  let network: Promise<() => Promise<NetworkRate[]>> | undefined;
  let cpuTimes: CpuTimes[] | undefined;
  return async () => {
    network ??= si
      .networkInterfaceDefault()
      .catch(() => '')
      .then((name) => createNetworkRates(name));
    if (!disks || performance.now() - disksAt > 30_000) {
      disksAt = performance.now();
      disks = si.fsSize().catch(() => []);
    }
    const [load, mem, fs, net] = await Promise.all([
      cpuLoadSince(cpuTimes),
      si.mem(),
      disks,
      network.then((read) => read()).catch((): NetworkRate[] => []),
    ]);
    cpuTimes = load.now;
    const cpu = process.cpuUsage();
    const now = performance.now();
    const usedUs = cpu.user - lastCpu.user + (cpu.system - lastCpu.system);
    const processCpu = now > lastAt ? usedUs / 1000 / (now - lastAt) : 0;
    lastCpu = cpu;
    lastAt = now;
    const pm = process.memoryUsage();
    const { gpus, note } = sampleGpus();
    return {
      timestamp: Date.now(),
      cpu: {
        load: load.load,
        perCore: load.perCore,
        cores: load.perCore.length,
        process: processCpu,
      },
      memory: {
        total: mem.total,
        used: mem.active,
        available: mem.available,
        process: {
          rss: pm.rss,
          heapUsed: pm.heapUsed,
          heapTotal: pm.heapTotal,
          external: pm.external,
          arrayBuffers: pm.arrayBuffers,
        },
      },
      disks: fs.map((d) => ({ mount: d.mount, size: d.size, used: d.used, use: d.use / 100 })),
      network: net.map((n) => ({
        iface: n.iface,
        rxBytesPerSec: Math.max(0, n.rxBytesPerSec ?? 0),
        txBytesPerSec: Math.max(0, n.txBytesPerSec ?? 0),
      })),
      gpus,
      ...(note ? { gpuNote: note } : {}),
    };
  };
}
