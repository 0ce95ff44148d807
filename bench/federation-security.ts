/**
 * Federation security and privacy, measured:
 * - secagg: extra time and bytes of a secure-aggregation round vs plain FedAvg (10/50/100 clients, 2NN size);
 * - dp: test accuracy of the MNIST 2NN vs ε (DP-FedAvg, σ from the RDP accountant for each ε);
 * - byzantine: final accuracy with 10% / 20% malicious clients per aggregation strategy.
 * Runs are short (this machine has 2 cores): the scales used are printed with the tables.
 */
import { Aggregator } from '../src/core/federation/learning/aggregator.js';
import { runMnistFederation } from '../src/apps/mnist/mnist-federation.js';
import { silentLogger } from '../src/common/logger.js';
import { noiseMultiplierFor } from '../src/core/federation/privacy/rdp.js';
import { runSecAggRound } from '../src/core/federation/privacy/secagg/in-process.js';
import { FixedPoint, nativeMasksAvailable } from '../src/core/federation/privacy/secagg/ring.js';
import { RoundDefense } from '../src/core/federation/security/round-defense.js';
import { ATTACK_MODES, type AttackMode } from '../src/core/federation/security/attacks.js';
import { clientId } from '../src/apps/mnist/mnist-partition.js';
import type { Strategy } from '../src/core/federation/learning/types.js';

const PARAMS_2NN = 199_210;

function table(head: string[], rows: Array<Array<string | number>>): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const w = head.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells
    .map(
      (r, k) =>
        `| ${r.map((c, i) => c.padEnd(w[i]!)).join(' | ')} |${k === 0 ? `\n| ${w.map((x) => '-'.repeat(x)).join(' | ')} |` : ''}`,
    )
    .join('\n');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function benchSecAgg(quick: boolean): Promise<string> {
  const rows: Array<Array<string | number>> = [];
  const fp = new FixedPoint({ range: 1, maxClients: 100, bits: 32 });
  for (const n of quick ? [10, 50] : [10, 50, 100]) {
    const inputs = new Map<string, Uint32Array>();
    const floats: Float32Array[] = [];
    for (let c = 0; c < n; c++) {
      const v = Float32Array.from({ length: PARAMS_2NN }, (_, i) => Math.sin(c * 31 + i) * 0.01);
      floats.push(v);
      inputs.set(`c${String(c).padStart(3, '0')}`, fp.encode(v).ring);
    }
    const agg = new Aggregator({ strategy: 'fedavg' });
    const plainMs = median(
      await Promise.all(
        [0, 1, 2].map(async () => {
          const t = performance.now();
          await agg.aggregate(
            floats,
            floats.map(() => 1),
          );
          return performance.now() - t;
        }),
      ),
    );
    const plainBytes = n * PARAMS_2NN * 4;
    for (const [variant, degree] of [
      ['SecAgg', undefined],
      ['SecAgg+ k=8', 8],
    ] as const) {
      if (degree !== undefined && degree >= n - 1) continue;
      // Majority threshold; SecAgg+ rows without dropouts (t = 5 of a client's 9 share holders).
      const threshold = degree === undefined ? Math.floor(n / 2) + 1 : 5;
      for (const drop of degree === undefined ? [0, 1 / 3] : [0]) {
        const ids = [...inputs.keys()];
        const t = performance.now();
        const r = runSecAggRound({
          inputs,
          threshold,
          bits: 32,
          ...(degree ? { degree } : {}),
          drops: { afterShare: ids.filter((_, i) => i % 3 === 1 && drop > 0) },
        });
        const ms = performance.now() - t;
        const up = Object.values(r.traffic.up).reduce((a, b) => a + b, 0),
          down = Object.values(r.traffic.down).reduce((a, b) => a + b, 0);
        rows.push([
          n,
          variant,
          `${Math.round(drop * 100)}%`,
          plainMs.toFixed(1),
          ms.toFixed(0),
          (ms / n).toFixed(1),
          (plainBytes / 2 ** 20).toFixed(1),
          (up / 2 ** 20).toFixed(2),
          ((up - r.included.length * PARAMS_2NN * 4) / r.included.length / 1024).toFixed(1),
          (down / n / 1024).toFixed(1),
        ]);
      }
    }
  }
  return (
    `SecAgg round, ${PARAMS_2NN} parameters (2NN), ring Z_2^32, all parties in this process (one after another), native masks: ${nativeMasksAvailable()}\n` +
    table(
      [
        'clients',
        'variant',
        'dropped after sharing',
        'plain FedAvg ms',
        'SecAgg round ms (all parties)',
        'ms per client',
        'plain up MiB',
        'SecAgg up MiB',
        'extra up KiB per included client',
        'down KiB/client (keys+shares)',
      ],
      rows,
    )
  );
}

async function accuracy(o: {
  clients: number;
  fraction: number;
  rounds: number;
  trainCount: number;
  testCount: number;
  strategy?: Strategy;
  byzantine?: number;
  trim?: number;
  hook?: RoundDefense;
  seed?: number;
}): Promise<number> {
  const r = await runMnistFederation({
    model: '2nn',
    partition: 'iid',
    clients: o.clients,
    fraction: o.fraction,
    epochs: 1,
    batch: 10,
    lr: 0.1,
    rounds: o.rounds,
    trainCount: o.trainCount,
    testCount: o.testCount,
    strategy: o.strategy ?? 'fedavg',
    seed: o.seed ?? 1,
    logger: silentLogger,
    ...(o.byzantine === undefined ? {} : { byzantine: o.byzantine }),
    ...(o.trim === undefined ? {} : { trim: o.trim }),
    ...(o.hook ? { roundHook: o.hook } : {}),
  });
  return r.history.at(-1)?.testAccuracy ?? NaN;
}

async function benchDp(quick: boolean): Promise<string> {
  const s = quick
    ? { clients: 200, fraction: 0.1, rounds: 3, trainCount: 6000, testCount: 2000 }
    : { clients: 1000, fraction: 0.1, rounds: 10, trainCount: 60000, testCount: 10000 };
  const clip = 1,
    delta = 1e-5;
  const rows: Array<Array<string | number>> = [];
  for (const eps of [1, 3, 8, Infinity]) {
    const sigma =
      eps === Infinity ? 0 : noiseMultiplierFor({ sampleRate: s.fraction, steps: s.rounds, targetEpsilon: eps, delta });
    const hook = new RoundDefense({ dp: { clip, noiseMultiplier: sigma, sampleRate: s.fraction, delta } });
    const acc = await accuracy({ ...s, hook });
    rows.push([
      eps === Infinity ? '∞ (clipping only)' : eps,
      sigma.toFixed(3),
      hook.dp!.accountant.getEpsilon(delta).toFixed(3),
      `${(acc * 100).toFixed(2)}%`,
    ]);
  }
  return (
    `DP-FedAvg on the MNIST 2NN: ${s.clients} clients (IID, ${s.trainCount / s.clients} examples each), q = ${s.fraction} (${s.clients * s.fraction} per round), ${s.rounds} rounds, E=1, B=10, lr 0.1, C = ${clip}, δ = ${delta}, central noise\n` +
    table(['target ε', 'σ (accountant)', 'ε spent', 'test accuracy'], rows)
  );
}

async function benchByzantine(quick: boolean): Promise<string> {
  const s = quick
    ? { clients: 20, fraction: 1, rounds: 2, trainCount: 2000, testCount: 1000 }
    : { clients: 50, fraction: 0.4, rounds: 5, trainCount: 6000, testCount: 2000 };
  const defenses: Array<[string, Strategy, number | undefined]> = [
    ['FedAvg', 'fedavg', undefined],
    ['median', 'median', undefined],
    ['trimmed mean', 'trimmed-mean', undefined],
    ['Krum', 'krum', undefined],
    ['Multi-Krum', 'multi-krum', undefined],
    ['FedAvg + norm bound 3x', 'fedavg', 3],
  ];
  const cases: Array<[AttackMode | 'none', number]> = [
    ['none', 0],
    ...ATTACK_MODES.flatMap(
      (m) =>
        [
          [m, 0.1],
          [m, 0.2],
        ] as Array<[AttackMode, number]>,
    ),
  ];
  const ids = Array.from({ length: s.clients }, (_, i) => clientId(i));
  // The defences are configured for the worst case of the table (20% of a round malicious), in every column.
  const perRound = Math.round(s.clients * s.fraction);
  const byzantine = Math.ceil(0.2 * perRound),
    trim = 0.2;
  const rows: Array<Array<string | number>> = [];
  for (const [name, strategy, bound] of defenses) {
    const row: Array<string | number> = [name];
    for (const [mode, f] of cases) {
      const hook = new RoundDefense({
        clients: ids,
        ...(mode === 'none' ? {} : { attack: { mode, fraction: f, seed: 11 } }),
        ...(bound ? { normBound: { factor: bound } } : {}),
      });
      const acc = await accuracy({ ...s, strategy, hook, byzantine, trim }).catch(() => NaN);
      row.push(Number.isNaN(acc) ? 'error' : `${(acc * 100).toFixed(1)}%`);
    }
    rows.push(row);
  }
  return (
    `Byzantine clients, MNIST 2NN: ${s.clients} clients (IID), ${perRound} per round, ${s.rounds} rounds, E=1, B=10, lr 0.1; final test accuracy (${s.testCount} test images); Krum and Multi-Krum with f = ${byzantine} (Multi-Krum averages the n - f best), trimmed mean β = ${trim}\n` +
    table(['aggregation', ...cases.map(([m, f]) => (m === 'none' ? 'no attack' : `${m} ${f * 100}%`))], rows)
  );
}

export async function benchFederationSecurity(o: { quick: boolean; parts?: string[] }): Promise<{ text: string }> {
  const parts = o.parts ?? ['secagg', 'dp', 'byzantine'];
  const out: string[] = [];
  if (parts.includes('secagg')) out.push(await benchSecAgg(o.quick));
  if (parts.includes('dp')) out.push(await benchDp(o.quick));
  if (parts.includes('byzantine')) out.push(await benchByzantine(o.quick));
  return { text: out.join('\n\n') };
}
