/**
 * The typed surface of the native addon (bindings/*.cc). This is the only
 * place that knows its shape; the rest of src/ never sees `any`.
 */
export type NativeDeviceKind = 'auto' | 'cpu' | 'cuda';

export interface NativeBuildInfo {
  version: string;
  cuda: boolean;
  cudaArchitectures: string;
  cudaRuntime: string;
  compiler: string;
  simd: string;
  threads: number;
}

export interface NativeCudaDevice {
  index: number;
  name: string;
  totalMemory: number;
  computeCapability: string;
  multiprocessors: number;
}

export interface NativeNvmlDevice {
  index: number;
  name: string;
  uuid: string;
  memoryTotal: number;
  memoryUsed: number;
  memoryFree: number;
  utilizationGpu: number;
  utilizationMemory: number;
}

export interface NativeDevices {
  cpuThreads: number;
  cuda: { compiled: boolean; unavailableReason: string; devices: NativeCudaDevice[] };
  nvml: { loaded: boolean; driverVersion: string; error: string; devices: NativeNvmlDevice[] };
}

export interface NativeDeviceOptions {
  device: NativeDeviceKind;
  deviceIndex: number;
}

export type NativeStrategy = 'fedavg' | 'median' | 'trimmed-mean' | 'krum';

export interface NativeAggregateOptions extends NativeDeviceOptions {
  strategy: NativeStrategy;
  clients: Float32Array[];
  weights: Float64Array;
  beta: number;
  f: number;
  m: number;
  checkFinite: boolean;
  /** Native memory the call may allocate (Krum's distances, async input copies); default unbounded. */
  maxMemoryBytes?: number;
  /** Write the result here; omitted: a new array is returned as `params`. */
  out?: Float32Array;
}

export interface NativeAggregateResult {
  device: string;
  /** The result when no `out` was given. */
  params?: Float32Array;
  selected?: Uint32Array;
  scores?: Float64Array;
}

export interface NativeDistancesOptions extends NativeDeviceOptions {
  clients: Float32Array[];
  checkFinite: boolean;
  out: Float64Array;
}

export type NativeServerOptimizer = 'fedavgm' | 'fedadam' | 'fedyogi' | 'fedadagrad';

export interface NativeServerOptOptions extends NativeDeviceOptions {
  optimizer: NativeServerOptimizer;
  lr: number;
  beta1: number;
  beta2: number;
  tau: number;
  global: Float32Array;
  aggregate: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

export type NativeCodec = 'f32' | 'int8' | 'int4' | 'fp16' | 'bf16';

export interface NativeEncodeOptions extends NativeDeviceOptions {
  values: Float32Array;
  codec: NativeCodec;
  blockSize: number;
  nonFinite: 'error' | 'zero';
  /** fp16 values beyond +-65504 or that would become 0: 'clamp' (default, flagged in the blob) or 'error'. */
  outOfRange?: 'clamp' | 'error';
  parallel: boolean;
}

export interface NativeDecodeOptions extends NativeDeviceOptions {
  blob: Uint8Array;
  out?: Float32Array;
  parallel: boolean;
}

export interface NativeBlobInfo {
  codec: NativeCodec;
  blockSize: number;
  length: number;
  nonFiniteZeroed: boolean;
  /** fp16 blobs only: some |value| above 65504 was clamped. */
  saturated?: boolean;
  /** fp16 blobs only: some nonzero value became 0. */
  flushedToZero?: boolean;
}

export interface NativeSchedulerModelConfig {
  maxBatchSize: number;
  preferredBatchSizes?: number[];
  maxQueueDelayUs: number;
  maxQueueSize: number;
  instances: number;
  /** Work-conserving dispatch: with no batch running, whatever is queued goes at once. */
  dispatchWhenIdle?: boolean;
}

/** native/sched through bindings/sched.cc: submissions in and decisions out in batches. */
export interface NativeSchedulerHandle {
  setTenant(tenant: number, weight: number): void;
  addModel(model: number, config: NativeSchedulerModelConfig): void;
  /** Ids still queued for the model, oldest first. */
  removeModel(model: number): Uint32Array;
  /** records: [id, model, tenant, priority, arrivalUs, deadlineUs] per request; status[i]: 0 accepted, 1 overloaded, 2 unknown model. */
  submit(records: Float64Array, count: number, status: Uint8Array): number;
  cancel(id: number): boolean;
  complete(model: number): void;
  /** Writes [2, id] (expired) and [1, model, n, ids...] (batch) words into out; meta = [nextWakeUs, more]. */
  poll(nowUs: number, out: Uint32Array, meta: Float64Array): number;
}

/** native/alloc through bindings/alloc.cc: a caching memory pool; addresses are opaque numbers. */
export interface NativeMemoryPoolStats {
  backend: string;
  /** Reserved-bytes cap of the pool (Infinity: none). */
  cap: number;
  reserved: number;
  allocated: number;
  peakReserved: number;
  peakAllocated: number;
  largestFree: number;
  segments: number;
  liveBlocks: number;
  freeBlocks: number;
  allocations: number;
  frees: number;
  cacheHits: number;
  cacheMisses: number;
  segmentsReleased: number;
  /** 1 - largestFree / (reserved - allocated); 0 when the cached memory is one block. */
  fragmentation: number;
}

export interface NativeMemoryPoolOwner {
  allocated: number;
  peak: number;
  /** Infinity: no cap. */
  cap: number;
  blocks: number;
}

export interface NativeMemoryPoolHandle {
  /** Throws ERR_QUOTA_EXCEEDED (owner cap), ERR_OUT_OF_MEMORY (pool cap or backend), ERR_INVALID_ARG. */
  allocate(owner: number, bytes: number): number;
  free(address: number): void;
  blockSize(address: number): number;
  setOwnerCap(owner: number, capBytes: number): void;
  freeOwner(owner: number): number;
  releaseCached(): number;
  stats(): NativeMemoryPoolStats;
  owner(owner: number): NativeMemoryPoolOwner;
  owners(): number[];
}

export interface NativeGpuTelemetry {
  loaded: boolean;
  error: string;
  devices: {
    index: number;
    temperatureC?: number;
    powerWatts?: number;
    powerLimitWatts?: number;
    processes?: { pid: number; usedMemory: number }[];
  }[];
}

/** native/anomaly through bindings/anomaly.cc: streaming detectors, one per series index. */
export interface NativeAnomalyOptions {
  threshold?: number;
  warmupPoints?: number;
  refractoryPoints?: number;
  window?: number;
  codebookSize?: number;
  levels?: number;
  vigilance?: number;
  spread?: number;
  rateHorizon?: number;
  rangeTolerance?: number;
  method?: 'whale' | 'art' | 'ensemble';
  artWindow?: number;
  artCategories?: number;
  artVigilance?: number;
  artVigilanceLow?: number;
  artSpread?: number;
  artLearningRate?: number;
}

export interface NativeAnomalyBankHandle {
  /** Adds a series; returns its index. */
  add(): number;
  reset(series: number): void;
  /** One point; returns its score. */
  update(series: number, value: number, timestampMs?: number): number;
  updateSeries(
    series: number,
    values: Float64Array,
    timestampsMs: Float64Array | undefined,
    scores: Float64Array,
    anomalies: Uint8Array,
  ): void;
  updateMany(
    series: Uint32Array,
    values: Float64Array,
    timestampsMs: Float64Array | undefined,
    scores: Float64Array,
    anomalies: Uint8Array,
  ): void;
  stateBytes(): number;
}

export type NativeVectorMetric = 'l2' | 'ip' | 'cosine';
export type NativeVectorStorage = 'f32' | 'int8';

export interface NativeVectorIndexConfig {
  dim: number;
  metric: NativeVectorMetric;
  storage: NativeVectorStorage;
  /** int8 storage: the codec block size (32..4096, even). */
  blockSize: number;
  /** Inverted lists once trained (0: exact only). */
  nlist: number;
  nprobe: number;
}

export interface NativeVectorSearchOptions extends Partial<NativeDeviceOptions> {
  queries: Float32Array;
  k: number;
  nprobe?: number;
  exact?: boolean;
  /** Bitmap by label: bit l of byte l >> 3. */
  allow?: Uint8Array;
  parallel?: boolean;
}

export interface NativeVectorSearchResult {
  /** nq x k, best first; 4294967295 where fewer than k rows matched. */
  labels: Uint32Array;
  distances: Float32Array;
  device: string;
}

/** native/vindex through bindings/vindex.cc. */
export interface NativeVectorIndexHandle {
  add(labels: Uint32Array, vectors: Float32Array): void;
  addBlobs(labels: Uint32Array, blobs: Uint8Array[]): void;
  remove(labels: Uint32Array): number;
  train(opts: { samples?: Float32Array; iterations: number; seed: number; parallel?: boolean }, async: false): void;
  train(
    opts: { samples?: Float32Array; iterations: number; seed: number; parallel?: boolean },
    async: true,
  ): Promise<void>;
  search(opts: NativeVectorSearchOptions, async: false): NativeVectorSearchResult;
  search(opts: NativeVectorSearchOptions, async: true): Promise<NativeVectorSearchResult>;
  setNprobe(nprobe: number): void;
  stats(): { size: number; trained: boolean; memoryBytes: number; nprobe: number };
  /** nlist x dim trained centroids (empty before training). */
  centroids(): Float32Array;
}

export interface NativeBinding {
  quantEncode(opts: NativeEncodeOptions, async: false): Uint8Array;
  quantEncode(opts: NativeEncodeOptions, async: true): Promise<Uint8Array>;
  quantDecode(opts: NativeDecodeOptions, async: false): Float32Array;
  quantDecode(opts: NativeDecodeOptions, async: true): Promise<Float32Array>;
  quantInspect(blob: Uint8Array): NativeBlobInfo;
  topkFeedback(opts: { update: Float32Array; residual: Float32Array; k: number }): {
    indices: Uint32Array;
    values: Float32Array;
  };
  buildInfo(): NativeBuildInfo;
  devices(): NativeDevices;
  aggregate(opts: NativeAggregateOptions, async: false): NativeAggregateResult;
  aggregate(opts: NativeAggregateOptions, async: true): Promise<NativeAggregateResult>;
  distances(opts: NativeDistancesOptions, async: false): string;
  distances(opts: NativeDistancesOptions, async: true): Promise<string>;
  nonFiniteCounts(clients: Float32Array[]): Float64Array;
  /** STREAM-like triad over three arrays of `elements` doubles; GB/s of each repeat. */
  memoryTriad(elements: number, repeats: number): Float64Array;
  serverOptStep(opts: NativeServerOptOptions, async: false): string;
  serverOptStep(opts: NativeServerOptOptions, async: true): Promise<string>;
  NativeScheduler: new (priorityClasses: number) => NativeSchedulerHandle;
  NativeVectorIndex: new (config: NativeVectorIndexConfig) => NativeVectorIndexHandle;
  NativeAnomalyBank: new (options: NativeAnomalyOptions) => NativeAnomalyBankHandle;
  NativeMemoryPool: new (opts: {
    backend: 'host' | 'cuda';
    device?: number;
    capBytes?: number;
  }) => NativeMemoryPoolHandle;
  poolBenchPairs(opts: { backend: 'host' | 'cuda'; device?: number; bytes: number; pairs: number; live?: number }): {
    poolPairsPerSec: number;
    rawPairsPerSec: number;
    rawName: string;
  };
  cudaPoolAvailable(device: number): { available: boolean; reason: string };
  gpuTelemetry(): NativeGpuTelemetry;
  /** native/secagg (bindings/secagg.cc): acc += Σ signs[j]·ChaCha20(seeds[j]) mod 2^bits, in place, synchronous. Absent in older builds. */
  secaggAddMasks?(opts: {
    acc: Uint32Array;
    seeds: Uint8Array;
    signs: Int8Array;
    bits: number;
    parallel?: boolean;
  }): void;
  /** out = Σ rows mod 2^bits, synchronous. */
  secaggSumRows?(opts: { out: Uint32Array; rows: Uint32Array[]; bits: number; parallel?: boolean }): void;
  /**
   * native/json (bindings/json.cc), synchronous: the flat arrays of at least `minCount` JSON numbers that are
   * the value of `"<key>":` in the document, parsed (spans: begin, end, first value, count per array, in
   * document order); undefined when there is none. Absent in older builds.
   */
  jsonNumberArrays?(
    doc: Uint8Array,
    key: string,
    minCount: number,
  ): { values: Float64Array; spans: Uint32Array } | undefined;
}
