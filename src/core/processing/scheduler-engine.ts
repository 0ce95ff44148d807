/**
 * The scheduler engine contract shared by the native core (native/sched via
 * bindings/sched.cc) and the plain-TS reference (scheduler-reference.ts):
 * submissions go in as packed records, decisions come out as a word stream.
 */
import { WhaleError } from '../../common/errors.js';
import type { NativeSchedulerHandle, NativeSchedulerModelConfig } from '../../native/binding.js';
import { callNative } from '../../native/call.js';
import { native } from '../../native/loader.js';
import { ReferenceSchedulerEngine } from './scheduler-reference.js';

export type SchedulerEngine = NativeSchedulerHandle;
export type EngineModelConfig = NativeSchedulerModelConfig;
export type EngineKind = 'native' | 'reference';

/** Words per submission record: id, model, tenant, priority, arrivalUs, deadlineUs. */
export const RECORD_WORDS = 6;
/** Decision stream opcodes: [OP_BATCH, model, n, id...] and [OP_EXPIRED, id]. */
export const OP_BATCH = 1;
export const OP_EXPIRED = 2;
/** Submission status codes. */
export const ADMIT_ACCEPTED = 0;
export const ADMIT_OVERLOADED = 1;
export const ADMIT_UNKNOWN_MODEL = 2;

/** The native engine with its errors turned into WhaleErrors. */
class NativeSchedulerEngine implements SchedulerEngine {
  private readonly h: NativeSchedulerHandle;
  constructor(priorityClasses: number) {
    const Ctor = native().NativeScheduler;
    if (typeof Ctor !== 'function') {
      throw new WhaleError(
        'ERR_NATIVE_LOAD',
        'the loaded native addon has no scheduler: rebuild it with `npm run build:native`',
      );
    }
    this.h = callNative(() => new Ctor(priorityClasses));
  }
  setTenant(tenant: number, weight: number): void {
    callNative(() => this.h.setTenant(tenant, weight));
  }
  addModel(model: number, config: EngineModelConfig): void {
    callNative(() => this.h.addModel(model, config));
  }
  removeModel(model: number): Uint32Array {
    return callNative(() => this.h.removeModel(model));
  }
  submit(records: Float64Array, count: number, status: Uint8Array): number {
    return callNative(() => this.h.submit(records, count, status));
  }
  cancel(id: number): boolean {
    return callNative(() => this.h.cancel(id));
  }
  complete(model: number): void {
    callNative(() => this.h.complete(model));
  }
  poll(nowUs: number, out: Uint32Array, meta: Float64Array): number {
    return callNative(() => this.h.poll(nowUs, out, meta));
  }
}

export function createSchedulerEngine(kind: EngineKind, priorityClasses: number): SchedulerEngine {
  return kind === 'native' ? new NativeSchedulerEngine(priorityClasses) : new ReferenceSchedulerEngine(priorityClasses);
}
