/** The engine's view of this machine: what the addon was built with and which devices it can use. */
import type { NativeBuildInfo, NativeCudaDevice, NativeNvmlDevice } from './binding.js';
import { callNative } from './call.js';
import { native, nativePath } from './loader.js';

export interface CpuDeviceInfo {
  id: 'cpu';
  kind: 'cpu';
  threads: number;
}

export interface CudaDeviceInfo extends NativeCudaDevice {
  id: `cuda:${number}`;
  kind: 'cuda';
  /** Live figures from NVML when it is available. */
  nvml?: NativeNvmlDevice;
}

export type DeviceInfo = CpuDeviceInfo | CudaDeviceInfo;

export interface DeviceReport {
  devices: DeviceInfo[];
  /** Why no GPU is used, when none is (e.g. no driver); undefined when a GPU is usable. */
  gpuUnavailableReason?: string;
  nvml: { loaded: boolean; driverVersion: string; error: string };
}

export interface BuildReport extends NativeBuildInfo {
  addonPath: string | undefined;
}

export const engine = {
  build(): BuildReport {
    const info = callNative(() => native().buildInfo());
    return { ...info, addonPath: nativePath() };
  },

  devices(): DeviceReport {
    const raw = callNative(() => native().devices());
    const devices: DeviceInfo[] = [{ id: 'cpu', kind: 'cpu', threads: raw.cpuThreads }];
    for (const d of raw.cuda.devices) {
      // NVML and CUDA may order devices differently; match by name and index as a best effort.
      const nvml = raw.nvml.devices.find((n) => n.index === d.index && n.name === d.name);
      devices.push({ ...d, id: `cuda:${d.index}`, kind: 'cuda', ...(nvml ? { nvml } : {}) });
    }
    const report: DeviceReport = {
      devices,
      nvml: { loaded: raw.nvml.loaded, driverVersion: raw.nvml.driverVersion, error: raw.nvml.error },
    };
    if (raw.cuda.devices.length === 0) report.gpuUnavailableReason = raw.cuda.unavailableReason;
    return report;
  },
};
