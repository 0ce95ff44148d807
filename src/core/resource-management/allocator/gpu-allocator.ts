/**
 * GpuAllocator: one native caching pool per device (cudaMalloc backend when a
 * GPU is usable; the host backend stands in for tests and GPU-less nodes) and
 * fractional GPU shares per model: a memory fraction of the device (the
 * pool's cap for the model) and a share of kernel time (a CpuAllocator-style
 * slot gate per device). Device totals come from NVML / the CUDA probe.
 */
import { WhaleError, isWhaleError } from '../../../common/errors.js';
import type { NativeMemoryPoolHandle, NativeMemoryPoolStats } from '../../../native/binding.js';
import { native } from '../../../native/loader.js';
import { CpuAllocator, type SlotLease } from './cpu-allocator.js';

export interface GpuDevice {
  /** e.g. 'cuda:0' */
  id: string;
  index: number;
  totalBytes: number;
}

export interface GpuAllocatorOptions {
  devices: GpuDevice[];
  backend: 'cuda' | 'host';
  /** Fraction of each device the pool may reserve (default 0.9: leave room for the driver and other processes). */
  usableFraction?: number;
  clock?: () => number;
}

export interface GpuShare {
  device: string;
  /** Fraction of the device: memory cap and kernel-time share. */
  fraction: number;
}

interface DeviceState {
  device: GpuDevice;
  pool: NativeMemoryPoolHandle;
  time: CpuAllocator;
}

export class GpuAllocator {
  private readonly devices = new Map<string, DeviceState>();
  private readonly owners = new Map<string, number>();
  private readonly shares = new Map<string, GpuShare>();
  private nextOwner = 1;

  constructor(readonly o: GpuAllocatorOptions) {
    const usable = o.usableFraction ?? 0.9;
    if (!(usable > 0 && usable <= 1))
      throw new WhaleError('ERR_INVALID_OPTION', 'usableFraction: expected (0, 1]', { field: 'usableFraction' });
    const binding = native();
    for (const d of o.devices) {
      const pool = new binding.NativeMemoryPool({
        backend: o.backend,
        device: d.index,
        capBytes: Math.floor(d.totalBytes * usable),
      });
      this.devices.set(d.id, {
        device: d,
        pool,
        time: new CpuAllocator({ totalUnits: 1, ...(o.clock ? { clock: o.clock } : {}) }),
      });
    }
  }

  deviceIds(): string[] {
    return [...this.devices.keys()];
  }

  /** Gives the model `fraction` of `device` (memory cap and kernel time); replaces an earlier share. */
  allocate(modelId: string, device: string, fraction: number): GpuShare {
    const d = this.device(device);
    if (!(fraction > 0 && fraction <= 1))
      throw new WhaleError('ERR_INVALID_ARG', `gpu: expected a share in (0, 1], got ${String(fraction)}`, {
        field: 'gpu',
      });
    const prev = this.shares.get(modelId);
    if (prev && prev.device !== device) this.release(modelId);
    d.pool.setOwnerCap(this.owner(modelId), Math.floor(d.device.totalBytes * fraction));
    d.time.allocate(modelId, fraction);
    const share = { device, fraction };
    this.shares.set(modelId, share);
    return { ...share };
  }

  /** Frees everything the model holds on its device; returns the bytes that were still allocated (leaks). */
  release(modelId: string): number {
    const s = this.shares.get(modelId);
    if (!s) return 0;
    const d = this.devices.get(s.device)!;
    const owner = this.owner(modelId);
    const leaked = d.pool.freeOwner(owner);
    d.pool.setOwnerCap(owner, Infinity);
    d.time.release(modelId);
    this.shares.delete(modelId);
    return leaked;
  }

  share(modelId: string): GpuShare | undefined {
    const s = this.shares.get(modelId);
    return s && { ...s };
  }

  /** Device memory for the model (an opaque address for native kernels). */
  allocateMemory(modelId: string, bytes: number): number {
    const s = this.shares.get(modelId);
    if (!s)
      throw new WhaleError('ERR_QUOTA_EXCEEDED', `gpu: model '${modelId}' has no GPU share`, {
        field: 'gpu',
        model: modelId,
        resource: 'gpu',
      });
    try {
      return this.devices.get(s.device)!.pool.allocate(this.owner(modelId), bytes);
    } catch (err) {
      if (isWhaleError(err) || !(err instanceof Error)) throw err;
      const code = (err as { code?: string }).code;
      if (code === 'ERR_QUOTA_EXCEEDED') {
        throw new WhaleError(
          'ERR_QUOTA_EXCEEDED',
          `gpu: model '${modelId}': ${bytes} bytes on ${s.device} would exceed its GPU share (${s.fraction}): ${err.message}`,
          {
            field: 'gpu',
            model: modelId,
            resource: 'gpu_memory',
            retriable: true,
          },
        );
      }
      if (code === 'ERR_OUT_OF_MEMORY')
        throw new WhaleError('ERR_OUT_OF_MEMORY', `bytes: ${s.device}: ${err.message}`, {
          field: 'bytes',
          retriable: true,
        });
      throw new WhaleError(code === 'ERR_INVALID_ARG' ? 'ERR_INVALID_ARG' : 'ERR_NATIVE', err.message, {
        field: 'bytes',
        cause: err,
      });
    }
  }

  freeMemory(modelId: string, address: number): void {
    const s = this.shares.get(modelId);
    if (!s)
      throw new WhaleError('ERR_INVALID_ARG', `modelId: model '${modelId}' has no GPU share`, { field: 'modelId' });
    try {
      this.devices.get(s.device)!.pool.free(address);
    } catch (err) {
      throw new WhaleError('ERR_INVALID_ARG', `address: ${(err as Error).message}`, { field: 'address', cause: err });
    }
  }

  /** Waits for the model's turn on its device (kernel-time share); models without a share pass. */
  acquireKernelTime(modelId: string): Promise<SlotLease> {
    const s = this.shares.get(modelId);
    return s ? this.devices.get(s.device)!.time.acquire(modelId) : Promise.resolve({ release: () => undefined });
  }

  usage(
    modelId: string,
  ): { device: string; fraction: number; allocated: number; peak: number; cap: number; blocks: number } | undefined {
    const s = this.shares.get(modelId);
    if (!s) return undefined;
    const o = this.devices.get(s.device)!.pool.owner(this.owner(modelId));
    return { device: s.device, fraction: s.fraction, ...o };
  }

  stats(): Record<string, NativeMemoryPoolStats & { totalBytes: number }> {
    const out: Record<string, NativeMemoryPoolStats & { totalBytes: number }> = {};
    for (const [id, d] of this.devices) out[id] = { ...d.pool.stats(), totalBytes: d.device.totalBytes };
    return out;
  }

  /** Gives cached segments back to the driver (e.g. before another process needs the device). */
  releaseCached(): number {
    let n = 0;
    for (const d of this.devices.values()) n += d.pool.releaseCached();
    return n;
  }

  private device(id: string): DeviceState {
    const d = this.devices.get(id);
    if (!d)
      throw new WhaleError(
        'ERR_DEVICE_UNAVAILABLE',
        `device: no GPU '${id}' (have: ${this.deviceIds().join(', ') || 'none'})`,
        { field: 'device' },
      );
    return d;
  }

  private owner(modelId: string): number {
    let id = this.owners.get(modelId);
    if (id === undefined) {
      id = this.nextOwner++;
      this.owners.set(modelId, id);
    }
    return id;
  }
}
