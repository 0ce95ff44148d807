import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { engine } from '../native/engine.js';
import { packageRoot } from '../native/loader.js';
import type { CliIO } from './main.js';

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

const GiB = 1024 ** 3;

export function infoCommand(opts: { json: boolean }, io: CliIO): number {
  const build = engine.build();
  const report = engine.devices();
  if (opts.json) {
    io.out(`${JSON.stringify({ version: packageVersion(), build, ...report }, null, 2)}\n`);
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
  lines.push('', `NVML         ${report.nvml.loaded ? `loaded (driver ${report.nvml.driverVersion})` : `not available: ${report.nvml.error}`}`);
  io.out(`${lines.join('\n')}\n`);
  return 0;
}
