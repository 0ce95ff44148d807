/**
 * Bytes per second received and sent on one network interface. On Linux the
 * counters are read from /sys/class/net/<iface>/statistics (two small file
 * reads); systeminformation's networkStats runs `sh -c "cat …"` with seven
 * `cat`s for the same figures on every call, eight processes per sample on a
 * machine whose cores serve requests (issue 25). Elsewhere systeminformation
 * is asked.
 */
import { readFile } from 'node:fs/promises';

import si from 'systeminformation';

export interface NetworkRate {
  iface: string;
  /** Null on the first reading (no earlier one to compare with). */
  rxBytesPerSec: number | null;
  txBytesPerSec: number | null;
}

/** An interface name that is one path segment of /sys/class/net. */
const IFACE = /^[A-Za-z0-9_.:@-]{1,64}$/;

/** After a failed sysfs read (an interface that went away for a while), systeminformation answers this long. */
const SYSFS_RETRY_MS = 60_000;

/** Whether `iface` may be read from /sys/class/net on this platform (a name that is one path segment). */
export function sysfsInterface(iface: string, platform: string = process.platform): boolean {
  return platform === 'linux' && IFACE.test(iface) && iface !== '.' && iface !== '..';
}

async function counter(iface: string, name: 'rx_bytes' | 'tx_bytes'): Promise<number> {
  const text = await readFile(`/sys/class/net/${iface}/statistics/${name}`, 'utf8');
  const v = Number(text.trim());
  if (!Number.isFinite(v)) throw new Error(`/sys/class/net/${iface}/statistics/${name}: not a number`);
  return v;
}

/** A reader of one interface's rates: each call gives the rates since the previous call. */
export function createNetworkRates(
  iface: string,
  clock: () => number = () => performance.now(),
): () => Promise<NetworkRate[]> {
  let last: { at: number; rx: number; tx: number } | undefined;
  const sysfs = sysfsInterface(iface);
  let retryAt = -Infinity;
  return async () => {
    if (sysfs && clock() >= retryAt) {
      try {
        const [rx, tx] = await Promise.all([counter(iface, 'rx_bytes'), counter(iface, 'tx_bytes')]);
        const at = clock();
        const seconds = last ? (at - last.at) / 1000 : 0;
        const rate = (now: number, before: number | undefined) =>
          before === undefined || seconds <= 0 ? null : Math.max(0, now - before) / seconds;
        const out = { iface, rxBytesPerSec: rate(rx, last?.rx), txBytesPerSec: rate(tx, last?.tx) };
        last = { at, rx, tx };
        return [out];
      } catch {
        // No such interface now (or no sysfs): systeminformation answers for a while, then sysfs is tried again.
        last = undefined;
        retryAt = clock() + SYSFS_RETRY_MS;
      }
    }
    const stats = await (iface ? si.networkStats(iface) : si.networkStats());
    return stats.map((n) => ({ iface: n.iface, rxBytesPerSec: n.rx_sec, txBytesPerSec: n.tx_sec }));
  };
}
