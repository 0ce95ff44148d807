import { native } from '../src/native/loader.js';
import { median } from './stats.js';

export interface TriadResult {
  elements: number;
  bestGBs: number;
  medianGBs: number;
}

/** STREAM-like triad on the native thread pool: 3 x 80 MB arrays by default. */
export function measureTriad(elements = 10_000_000, repeats = 10): TriadResult {
  const runs = Array.from(native().memoryTriad(elements, repeats));
  return { elements, bestGBs: Math.max(...runs), medianGBs: median(runs) };
}
