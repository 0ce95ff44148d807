/**
 * Machine figures: CPU and memory from node:os (cheap, read at each scrape),
 * disk usage from systeminformation (refreshed in the background: it runs
 * `df`), and GPU memory/utilization from the engine's NVML report.
 */
import { cpus, freemem, loadavg, totalmem } from 'node:os';

import { Gauge } from 'prom-client';
import si from 'systeminformation';

import { engine } from '../../../native/engine.js';
import type { WhaleMetrics } from './whale-metrics.js';

export interface DeviceUsage {
  /** 'cpu' or 'cuda:N'. */
  device: string;
  name: string;
  /** Busy fraction in [0, 1]. */
  utilization: number;
  memoryUsedBytes: number;
  memoryTotalBytes: number;
}

export interface DiskUsage {
  mount: string;
  usedBytes: number;
  sizeBytes: number;
}

export class SystemCollector {
  private lastCpu = cpuTimes();
  private lastUtil = 0;
  private disks: DiskUsage[] = [];
  private diskRefresh: Promise<void> | undefined;
  private diskAt = 0;

  /** CPU and every GPU the engine sees, with their live figures. */
  devices(): DeviceUsage[] {
    const total = totalmem();
    const out: DeviceUsage[] = [
      {
        device: 'cpu',
        name: cpus()[0]?.model ?? 'cpu',
        utilization: this.cpuUtilization(),
        memoryUsedBytes: total - freemem(),
        memoryTotalBytes: total,
      },
    ];
    try {
      for (const d of engine.devices().devices) {
        if (d.kind !== 'cuda') continue;
        out.push({
          device: d.id,
          name: d.name,
          utilization: (d.nvml?.utilizationGpu ?? 0) / 100,
          memoryUsedBytes: d.nvml?.memoryUsed ?? 0,
          memoryTotalBytes: d.nvml?.memoryTotal ?? d.totalMemory,
        });
      }
    } catch {
      // no addon: CPU only
    }
    return out;
  }

  /** Disk usage as last read (refreshed at most every 30 s, in the background). */
  diskUsage(): DiskUsage[] {
    if (!this.diskRefresh && Date.now() - this.diskAt > 30_000) {
      this.diskRefresh = si
        .fsSize()
        .then((list) => {
          this.disks = list
            .filter((d) => d.size > 0)
            .map((d) => ({ mount: d.mount, usedBytes: d.used, sizeBytes: d.size }));
        })
        .catch(() => undefined)
        .finally(() => {
          this.diskAt = Date.now();
          this.diskRefresh = undefined;
        });
    }
    return this.disks;
  }

  /** Busy fraction of all cores since the previous call (the previous figure when called again within 100 ms). */
  cpuUtilization(): number {
    const now = cpuTimes();
    const total = now.total - this.lastCpu.total;
    if (total < 10 * cpus().length) return this.lastUtil;
    this.lastUtil = Math.min(1, Math.max(0, 1 - (now.idle - this.lastCpu.idle) / total));
    this.lastCpu = now;
    return this.lastUtil;
  }

  register(metrics: WhaleMetrics): void {
    const registers = [metrics.registry];
    const devices = () => this.devices();
    new Gauge({
      name: 'whale_device_utilization_ratio',
      help: 'Busy fraction per device (cpu: all cores; cuda:N: NVML)',
      labelNames: ['device'],
      registers,
      collect: function (this: Gauge<'device'>) {
        this.reset();
        for (const d of devices()) this.set({ device: d.device }, d.utilization);
      },
    });
    new Gauge({
      name: 'whale_device_memory_used_bytes',
      help: 'Memory in use per device (cpu: system memory)',
      labelNames: ['device'],
      registers,
      collect: function (this: Gauge<'device'>) {
        this.reset();
        for (const d of devices()) this.set({ device: d.device }, d.memoryUsedBytes);
      },
    });
    new Gauge({
      name: 'whale_device_memory_total_bytes',
      help: 'Memory per device (cpu: system memory)',
      labelNames: ['device'],
      registers,
      collect: function (this: Gauge<'device'>) {
        this.reset();
        for (const d of devices()) this.set({ device: d.device }, d.memoryTotalBytes);
      },
    });
    new Gauge({
      name: 'whale_system_load1',
      help: 'One-minute load average',
      registers,
      collect: function (this: Gauge) {
        this.set(loadavg()[0] ?? 0);
      },
    });
    const disks = () => this.diskUsage();
    new Gauge({
      name: 'whale_system_disk_used_bytes',
      help: 'Used bytes per mounted file system',
      labelNames: ['mount'],
      registers,
      collect: function (this: Gauge<'mount'>) {
        this.reset();
        for (const d of disks()) this.set({ mount: d.mount }, d.usedBytes);
      },
    });
    new Gauge({
      name: 'whale_system_disk_size_bytes',
      help: 'Size per mounted file system',
      labelNames: ['mount'],
      registers,
      collect: function (this: Gauge<'mount'>) {
        this.reset();
        for (const d of disks()) this.set({ mount: d.mount }, d.sizeBytes);
      },
    });
  }
}

function cpuTimes(): { idle: number; total: number } {
  let idle = 0,
    total = 0;
  for (const c of cpus()) {
    idle += c.times.idle;
    total += c.times.user + c.times.nice + c.times.sys + c.times.idle + c.times.irq;
  }
  return { idle, total };
}
