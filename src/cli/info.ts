import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { machineResources } from '../core/resource-management/monitor/machine-info.js';
import { engine } from '../native/engine.js';
import { packageRoot } from '../native/loader.js';
import type { CliIO } from './main.js';

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

const GiB = 1024 ** 3;

/** Which ONNX Runtime execution provider and which TF.js backend models would run on (errors reported, not thrown). */
async function modelRuntimes(): Promise<{ onnx: Record<string, unknown>; tfjs: Record<string, unknown> }> {
  const { onnxProviderInfo, tfjsBackendInfo } = await import('../models/index.js');
  const settle = async (f: () => Promise<object>) =>
    f().then(
      (v) => ({ ...v }),
      (err: Error) => ({ error: err.message }),
    );
  const [onnx, tfjs] = await Promise.all([
    settle(async () => {
      const i = await onnxProviderInfo();
      return {
        ...i,
        provider:
          i.cuda.listed && i.cuda.libraryPresent && engine.devices().devices.some((d) => d.kind === 'cuda')
            ? 'cuda'
            : 'cpu',
      };
    }),
    settle(tfjsBackendInfo),
  ]);
  return { onnx, tfjs };
}

export async function infoCommand(opts: { json: boolean }, io: CliIO): Promise<number> {
  const build = engine.build();
  const report = engine.devices();
  const models = await modelRuntimes();
  const machine = await machineResources();
  if (opts.json) {
    io.out(`${JSON.stringify({ version: packageVersion(), build, ...report, models, machine }, null, 2)}\n`);
    return 0;
  }
  const lines = [
    `smart-whale-core ${packageVersion()}`,
    '',
    'Build',
    `  addon        ${build.addonPath ?? '(injected)'}`,
    `  compiler     ${build.compiler}`,
    `  CPU path     yes (${build.threads} threads, SIMD ${build.simd})`,
    `  CUDA path    ${build.cuda ? `yes (runtime ${build.cudaRuntime}, sm ${build.cudaArchitectures})` : 'no (built without nvcc)'}`,
    '',
    'Machine',
    `  CPU          ${machine.cpu.brand}, ${machine.cpu.cores} logical / ${machine.cpu.physicalCores} physical cores`,
    `  memory       ${(machine.memory.total / GiB).toFixed(1)} GiB (${(machine.memory.available / GiB).toFixed(1)} GiB available)`,
    ...machine.disks.map(
      (d) => `  disk ${d.mount.padEnd(7)} ${(d.used / GiB).toFixed(1)} / ${(d.size / GiB).toFixed(1)} GiB used`,
    ),
    '',
    'Devices',
  ];
  for (const d of report.devices) {
    if (d.kind === 'cpu') {
      lines.push(`  cpu          ${d.threads} threads`);
    } else {
      const mem = d.nvml
        ? `${(d.nvml.memoryUsed / GiB).toFixed(1)}/${(d.nvml.memoryTotal / GiB).toFixed(1)} GiB used, ${d.nvml.utilizationGpu}% busy`
        : `${(d.totalMemory / GiB).toFixed(1)} GiB`;
      lines.push(`  ${d.id.padEnd(12)} ${d.name} (sm ${d.computeCapability}, ${mem})`);
    }
  }
  if (report.gpuUnavailableReason) lines.push('', `No GPU is used: ${report.gpuUnavailableReason}`);
  lines.push(
    '',
    `NVML         ${report.nvml.loaded ? `loaded (driver ${report.nvml.driverVersion})` : `not available: ${report.nvml.error}`}`,
  );
  const { onnx, tfjs } = models;
  lines.push(
    '',
    'Model runtimes',
    `  ONNX         ${onnx.error ? `unavailable: ${String(onnx.error)}` : `onnxruntime-node ${String(onnx.version)}, ${String(onnx.provider)} execution provider (${String((onnx.cuda as { note: string }).note)})`}`,
    `  TF.js        ${tfjs.error ? `unavailable: ${String(tfjs.error)}` : `${String(tfjs.package)} ${String(tfjs.version)}, backend ${String(tfjs.backend)}${tfjs.note ? ` (${String(tfjs.note)})` : ''}`}`,
  );
  io.out(`${lines.join('\n')}\n`);
  return 0;
}
