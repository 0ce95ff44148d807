import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { describe, expect, it } from 'vitest';

import { createNetworkRates } from '../src/core/resource-management/monitor/network-rates.js';

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

  it('an interface name that is not one path segment is not read from sysfs (systeminformation answers: no rates)', async () => {
    let now = 0;
    const read = createNetworkRates('../../proc/self', () => now);
    await read();
    now += 1000;
    for (const r of await read()) {
      expect(r.rxBytesPerSec ?? 0).toBe(0);
      expect(r.txBytesPerSec ?? 0).toBe(0);
    }
  });
});
