/** The machine's resources for `whale info`: CPU model and cores, memory, disks (systeminformation). */
import si from 'systeminformation';

export interface MachineResources {
  cpu: { brand: string; cores: number; physicalCores: number; speedGHz: number };
  memory: { total: number; available: number };
  disks: { mount: string; size: number; used: number }[];
}

export async function machineResources(): Promise<MachineResources> {
  const [cpu, mem, fs] = await Promise.all([si.cpu(), si.mem(), si.fsSize().catch(() => [])]);
  return {
    cpu: {
      brand: `${cpu.manufacturer} ${cpu.brand}`.trim(),
      cores: cpu.cores,
      physicalCores: cpu.physicalCores,
      speedGHz: cpu.speed,
    },
    memory: { total: mem.total, available: mem.available },
    disks: fs.map((d) => ({ mount: d.mount, size: d.size, used: d.used })),
  };
}
