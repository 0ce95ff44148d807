/**
 * Plain-TypeScript reference implementations of every strategy, computed in
 * double precision with full sorts. They are the test oracle for the native
 * engine and the baseline in bench/. Inputs are assumed validated.
 */

export function fedavgRef(rows: readonly Float32Array[], weights: ArrayLike<number>): Float32Array {
  const p = rows[0]!.length;
  const acc = new Float64Array(p);
  // Divide by the largest weight first: [1e308, 1e308] would sum to Infinity.
  let largest = 0;
  for (let i = 0; i < weights.length; i++) largest = Math.max(largest, weights[i]!);
  let total = 0;
  for (let i = 0; i < weights.length; i++) total += weights[i]! / largest;
  rows.forEach((row, i) => {
    const w = weights[i]! / largest / total;
    for (let j = 0; j < p; j++) acc[j]! += w * row[j]!;
  });
  return Float32Array.from(acc);
}

function sortedColumn(rows: readonly Float32Array[], j: number, col: Float64Array): Float64Array {
  for (let i = 0; i < rows.length; i++) col[i] = rows[i]![j]!;
  return col.sort();
}

export function medianRef(rows: readonly Float32Array[]): Float32Array {
  const n = rows.length,
    p = rows[0]!.length;
  const out = new Float32Array(p);
  const col = new Float64Array(n);
  for (let j = 0; j < p; j++) {
    const c = sortedColumn(rows, j, col);
    out[j] = n % 2 === 1 ? c[(n - 1) / 2]! : (c[n / 2 - 1]! + c[n / 2]!) / 2;
  }
  return out;
}

export function trimmedMeanRef(rows: readonly Float32Array[], beta: number): Float32Array {
  const n = rows.length,
    p = rows[0]!.length;
  const k = Math.floor(beta * n);
  const out = new Float32Array(p);
  const col = new Float64Array(n);
  for (let j = 0; j < p; j++) {
    const c = sortedColumn(rows, j, col);
    let s = 0;
    for (let i = k; i < n - k; i++) s += c[i]!;
    out[j] = s / (n - 2 * k);
  }
  return out;
}

/** Squared Euclidean distances, N x N row-major. */
export function pairwiseSqDistancesRef(rows: readonly Float32Array[]): Float64Array {
  const n = rows.length,
    p = rows[0]!.length;
  const d = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const a = rows[i]!;
    for (let k = i + 1; k < n; k++) {
      const b = rows[k]!;
      let s = 0;
      for (let j = 0; j < p; j++) {
        const diff = a[j]! - b[j]!;
        s += diff * diff;
      }
      d[i * n + k] = s;
      d[k * n + i] = s;
    }
  }
  return d;
}

export interface KrumRef {
  selected: number[];
  scores: Float64Array;
}

/** Krum scores (sum of the n - f - 2 smallest distances to others) and the m best clients. */
export function krumSelectRef(dist: Float64Array, n: number, f: number, m: number): KrumRef {
  const closest = n - f - 2;
  const scores = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const others: number[] = [];
    for (let k = 0; k < n; k++) if (k !== i) others.push(dist[i * n + k]!);
    others.sort((a, b) => a - b);
    let s = 0;
    for (let k = 0; k < closest; k++) s += others[k]!;
    scores[i] = s;
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]! || a - b);
  return { selected: order.slice(0, m), scores };
}

export function krumRef(
  rows: readonly Float32Array[],
  weights: ArrayLike<number>,
  f: number,
  m: number,
): KrumRef & { params: Float32Array } {
  const sel = krumSelectRef(pairwiseSqDistancesRef(rows), rows.length, f, m);
  const params = fedavgRef(
    sel.selected.map((i) => rows[i]!),
    sel.selected.map((i) => weights[i]!),
  );
  return { ...sel, params };
}

export type ServerOptimizerName = 'fedavgm' | 'fedadam' | 'fedyogi' | 'fedadagrad';

export interface ServerOptHyper {
  lr: number;
  beta1: number;
  beta2: number;
  tau: number;
}

/** One server optimizer step in place (global, m, v), in double precision per element. */
export function serverOptStepRef(
  opt: ServerOptimizerName,
  h: ServerOptHyper,
  global: Float32Array,
  aggregate: Float32Array,
  m: Float32Array,
  v: Float32Array,
): void {
  for (let j = 0; j < global.length; j++) {
    const d = aggregate[j]! - global[j]!;
    if (opt === 'fedavgm') {
      m[j] = h.beta1 * m[j]! + d;
      global[j] = global[j]! + h.lr * m[j]!;
      continue;
    }
    const d2 = d * d;
    m[j] = h.beta1 * m[j]! + (1 - h.beta1) * d;
    if (opt === 'fedadam') v[j] = h.beta2 * v[j]! + (1 - h.beta2) * d2;
    else if (opt === 'fedyogi') v[j] = v[j]! - (1 - h.beta2) * d2 * Math.sign(v[j]! - d2);
    else v[j] = v[j]! + d2;
    global[j] = global[j]! + (h.lr * m[j]!) / (Math.sqrt(v[j]!) + h.tau);
  }
}
