/**
 * smart-whale-core/native: the native engine: loader, device selection, build and device reports.
 * Explicit named exports (no `export *`); src/index.ts re-exports them all.
 */
export { type BuildReport, type DeviceInfo, type DeviceReport, engine } from '../native/engine.js';
export { type DeviceSpec, parseDevice } from '../native/device.js';
export { candidatePaths, injectNative, loadNativeFrom, native } from '../native/loader.js';
export type { NativeBinding } from '../native/binding.js';
