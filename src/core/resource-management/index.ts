export { CpuAllocator, type CpuAllocatorOptions, type SlotLease } from './allocator/cpu-allocator.js';
export { fairShares } from './allocator/fair-share.js';
export { GpuAllocator, type GpuAllocatorOptions, type GpuDevice, type GpuShare } from './allocator/gpu-allocator.js';
export { MemoryAllocator, type MemoryReservation } from './allocator/memory-allocator.js';
export type { ModelResourcesConfig, ResourcesConfig } from './config.js';
export { ModelUsage, type ModelUsageFigures } from './monitor/model-usage.js';
export {
  ResourceMonitor,
  flatten,
  type MetricPublisher,
  type ModelMetrics,
  type MonitorTick,
} from './monitor/resource-monitor.js';
export {
  createSystemSampler,
  sampleGpus,
  type GpuSample,
  type Sampler,
  type SystemSample,
} from './monitor/system-sampler.js';
export {
  LoadBalancer,
  type LoadBalancerOptions,
  type BalancingPolicy,
  type LoadTarget,
  type LoadTask,
  type Placement,
} from './optimizer/load-balancer.js';
export {
  ResourceOptimizer,
  type OptimizerContext,
  type Proposal,
  type ProposalKind,
} from './optimizer/resource-optimizer.js';
export {
  QuotaManager,
  type Permit,
  type QuotaScope,
  type RateLimit,
  type ResourceQuota,
} from './quota/quota-manager.js';
export { LocalQuotaStore, type QuotaStore } from './quota/quota-store.js';
export { RedisQuotaStore, type RedisQuotaStoreOptions } from './quota/redis-quota-store.js';
export { TokenBucket, type TakeResult } from './quota/token-bucket.js';
export { ResourceManager, type EventPublisher, type ResourceManagerOptions } from './resource-manager.js';
