/**
 * `whale privacy`: the ε of the sampled Gaussian mechanism (like TensorFlow
 * Privacy's compute_dp_sgd_privacy), or the σ needed for a target ε.
 */
import { parseArgs } from 'node:util';

import { WhaleError } from '../common/errors.js';
import { epsilonFor, noiseMultiplierFor } from '../core/federation/privacy/rdp.js';
import type { CliIO } from './main.js';

export const PRIVACY_USAGE = `Usage: whale privacy --sample-rate Q --noise-multiplier SIGMA (--steps T | --epochs E) --delta D [--json]
       whale privacy --sample-rate Q --epsilon EPS (--steps T | --epochs E) --delta D [--json]

Privacy of T steps (rounds) of the sampled Gaussian mechanism: each step samples every record
(client) with probability Q and adds Gaussian noise of SIGMA times the clipping norm.
Prints epsilon for delta D and the optimal Renyi order (RDP accounting of Mironov et al. 2019,
converted with Balle et al. 2020 over Opacus's orders), or with --epsilon the smallest noise
multiplier that keeps epsilon <= EPS (Opacus's search, tolerance 0.01). --epochs E means
T = floor(E / Q). Exit codes: 0 ok, 2 usage error.
`;

function num(name: string, text: string | undefined, check: (v: number) => boolean, what: string): number {
  const v = Number(text);
  if (text === undefined || text.trim() === '' || !Number.isFinite(v) || !check(v)) {
    throw new WhaleError('ERR_INVALID_ARG', `--${name}: must be ${what}, got '${text ?? ''}'`, { field: name });
  }
  return v;
}

export function privacyCommand(argv: string[], io: CliIO): number {
  const { values } = parseArgs({
    args: argv,
    options: {
      'sample-rate': { type: 'string' },
      'noise-multiplier': { type: 'string' },
      epsilon: { type: 'string' },
      steps: { type: 'string' },
      epochs: { type: 'string' },
      delta: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.out(PRIVACY_USAGE);
    return 0;
  }
  const q = num('sample-rate', values['sample-rate'], (v) => v > 0 && v <= 1, 'a number in (0, 1]');
  const delta = num('delta', values.delta ?? '1e-5', (v) => v > 0 && v < 1, 'a number in (0, 1)');
  if ((values.steps === undefined) === (values.epochs === undefined))
    throw new WhaleError('ERR_INVALID_ARG', '--steps or --epochs: give exactly one', { field: 'steps' });
  const steps =
    values.steps !== undefined
      ? num('steps', values.steps, (v) => Number.isInteger(v) && v >= 0, 'an integer >= 0')
      : Math.floor(num('epochs', values.epochs, (v) => v > 0, 'a number > 0') / q);
  if ((values['noise-multiplier'] === undefined) === (values.epsilon === undefined)) {
    throw new WhaleError('ERR_INVALID_ARG', '--noise-multiplier or --epsilon: give exactly one', {
      field: 'noise-multiplier',
    });
  }
  if (values.epsilon !== undefined) {
    const target = num('epsilon', values.epsilon, (v) => v > 0, 'a number > 0');
    const sigma = noiseMultiplierFor({ sampleRate: q, steps, targetEpsilon: target, delta });
    const got = epsilonFor({ sampleRate: q, noiseMultiplier: sigma, steps }, delta);
    if (values.json)
      io.out(
        `${JSON.stringify({ sampleRate: q, steps, delta, targetEpsilon: target, noiseMultiplier: sigma, epsilon: got.epsilon, order: got.order })}\n`,
      );
    else
      io.out(
        `Noise multiplier ${round(sigma)} keeps epsilon <= ${target} (reaches ${round(got.epsilon)} at Renyi order ${got.order}) with sampling rate ${pct(q)} over ${steps} steps and delta = ${delta}.\n`,
      );
    return 0;
  }
  const sigma = num('noise-multiplier', values['noise-multiplier'], (v) => v >= 0, 'a number >= 0');
  const { epsilon, order } = epsilonFor({ sampleRate: q, noiseMultiplier: sigma, steps }, delta);
  if (values.json)
    io.out(
      `${JSON.stringify({ sampleRate: q, noiseMultiplier: sigma, steps, delta, epsilon, order: Number.isNaN(order) ? null : order })}\n`,
    );
  else {
    io.out(
      `DP with sampling rate = ${pct(q)} and noise multiplier = ${sigma} iterated over ${steps} steps satisfies differential privacy with eps = ${round(epsilon)} and delta = ${delta}.\n`,
    );
    io.out(Number.isNaN(order) ? 'No Renyi order bounds it (no noise).\n' : `The optimal RDP order is ${order}.\n`);
  }
  return 0;
}

const round = (v: number) => (Number.isFinite(v) ? Number(v.toPrecision(6)) : v);
const pct = (q: number) => `${Number((q * 100).toPrecision(6))}%`;
