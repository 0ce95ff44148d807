import { WhaleError } from '../common/errors.js';
import type { NativeDeviceOptions } from './binding.js';

/** Where a kernel runs: `auto` (a GPU when one is usable and the job is large), `cpu`, or `cuda:N`. */
export type DeviceSpec = 'auto' | 'cpu' | 'cuda' | `cuda:${number}`;

export function parseDevice(spec: unknown, field = 'device'): NativeDeviceOptions {
  if (spec === undefined || spec === 'auto') return { device: 'auto', deviceIndex: 0 };
  if (spec === 'cpu') return { device: 'cpu', deviceIndex: 0 };
  if (spec === 'cuda') return { device: 'cuda', deviceIndex: 0 };
  if (typeof spec === 'string') {
    const m = /^cuda:(\d{1,4})$/.exec(spec);
    if (m?.[1] !== undefined) return { device: 'cuda', deviceIndex: Number(m[1]) };
  }
  throw new WhaleError(
    'ERR_INVALID_OPTION',
    `${field}: expected 'auto', 'cpu' or 'cuda:N', got ${JSON.stringify(spec)}`,
    {
      field,
    },
  );
}
