import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { describe, expect, it, vi } from 'vitest';

// readFile passes through, or fails while `sysfs.fail` is set (an interface that went away).
const sysfs = vi.hoisted(() => ({ fail: false, reads: 0 }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    readFile: (...args: Parameters<typeof real.readFile>) => {
      sysfs.reads++;
      return sysfs.fail ? Promise.reject(new Error('ENOENT: no such file')) : real.readFile(...args);
    },
  };
});

import { createNetworkRates, sysfsInterface } from '../src/core/resource-management/monitor/network-rates.js';

const linuxLoopback = process.platform === 'linux' && existsSync('/sys/class/net/lo/statistics/rx_bytes');

/** Sends `bytes` over loopback (one HTTP POST to a server that drains it). */
async function loopbackTraffic(bytes: number): Promise<void> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const res = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: Buffer.alloc(bytes, 1) });
  await res.text();
  await new Promise<void>((r) => server.close(() => r()));
}

describe('network rates', () => {
  it.runIf(linuxLoopback)(
    'reads the interface counters from sysfs: null first, then the bytes moved per second',
    async () => {
      let now = 0;
      const read = createNetworkRates('lo', () => now);
      const first = await read();
      expect(first).toEqual([{ iface: 'lo', rxBytesPerSec: null, txBytesPerSec: null }]);
      await loopbackTraffic(1_000_000);
      now += 2000; // two seconds on the injected clock
      const [second] = await read();
      expect(second!.iface).toBe('lo');
      // At least the megabyte sent (received too: loopback), over 2 s.
      expect(second!.rxBytesPerSec).toBeGreaterThanOrEqual(500_000);
      expect(second!.txBytesPerSec).toBeGreaterThanOrEqual(500_000);
    },
  );

  it('only a name that is one path segment is read from sysfs, and only on Linux', () => {
    expect(sysfsInterface('lo', 'linux')).toBe(true);
    expect(sysfsInterface('eth0.100', 'linux')).toBe(true);
    for (const bad of ['../../proc/self', 'a/b', '.', '..', '', 'x'.repeat(65)])
      expect(sysfsInterface(bad, 'linux')).toBe(false);
    expect(sysfsInterface('lo', 'darwin')).toBe(false);
  });

  it.runIf(linuxLoopback)(
    'a failed sysfs read: systeminformation answers for a minute, then sysfs is read again',
    async () => {
      let now = 0;
      const read = createNetworkRates('lo', () => now);
      await read();
      const before = sysfs.reads;
      sysfs.fail = true;
      await read(); // fails: answered by systeminformation
      sysfs.fail = false;
      const failed = sysfs.reads;
      expect(failed).toBeGreaterThan(before);
      now += 30_000;
      await read(); // within the minute: no sysfs read
      expect(sysfs.reads).toBe(failed);
      now += 31_000;
      const [back] = await read(); // past it: sysfs again, a first reading (no rate yet)
      expect(sysfs.reads).toBeGreaterThan(failed);
      expect(back).toEqual({ iface: 'lo', rxBytesPerSec: null, txBytesPerSec: null });
    },
  );
});
