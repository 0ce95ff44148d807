/**
 * Resource gauges in a prom-client registry (the monitoring issue's, when the
 * server has one): read from the manager at scrape time, so nothing is
 * recorded on the request path.
 */
import { Gauge, type Registry } from 'prom-client';

import type { ResourceManager } from '../../core/resource-management/resource-manager.js';

export function registerResourceGauges(registry: Registry, manager: ResourceManager): void {
  const registers = [registry];
  new Gauge({
    name: 'whale_resource_model_bytes',
    help: 'Bytes a model holds, by resource (memory: weights and batch buffers; gpu: pool blocks)',
    labelNames: ['model', 'resource'],
    registers,
    collect() {
      this.reset();
      for (const m of manager.modelNames()) {
        this.set({ model: m, resource: 'memory' }, manager.memory.usage(m)?.used ?? 0);
        this.set({ model: m, resource: 'gpu' }, manager.gpu.usage(m)?.allocated ?? 0);
      }
    },
  });
  new Gauge({
    name: 'whale_resource_model_cpu_seconds',
    help: "Process CPU time attributed to each model's batches",
    labelNames: ['model'],
    registers,
    collect() {
      this.reset();
      for (const m of manager.modelNames()) this.set({ model: m }, (manager.usage.get(m)?.cpuMs ?? 0) / 1000);
    },
  });
  new Gauge({
    name: 'whale_gpu_pool_bytes',
    help: 'GPU memory pool bytes by device and kind (reserved, allocated)',
    labelNames: ['device', 'kind'],
    registers,
    collect() {
      this.reset();
      for (const [d, s] of Object.entries(manager.gpu.stats())) {
        this.set({ device: d, kind: 'reserved' }, s.reserved);
        this.set({ device: d, kind: 'allocated' }, s.allocated);
      }
    },
  });
}
