/**
 * The security options of `whale federate`: --dp-clip/--dp-noise (DP-FedAvg,
 * ε per round), --attack/--attack-fraction (Byzantine clients), --norm-bound
 * (drop updates above k × the median norm), --secure (signed messages).
 */
import { WhaleError } from '../common/errors.js';
import type { RoundHook } from '../core/federation/security/round-defense.js';
import { RoundDefense, type RoundDefenseReport } from '../core/federation/security/round-defense.js';
import { ATTACK_MODES, type AttackMode } from '../core/federation/security/attacks.js';
import { clientId } from '../apps/mnist/mnist-partition.js';

export const DEFENSE_USAGE = `
Security and privacy:
  --dp-clip C          DP-FedAvg: clip each update to L2 norm C (with --dp-noise; needs --strategy fedavg)
  --dp-noise SIGMA     noise multiplier: the sum gets N(0, (SIGMA*C)^2); epsilon printed per round
  --dp-delta D         delta of the epsilon reported (default 1e-5)
  --attack MODE        make a fraction of the clients malicious: ${ATTACK_MODES.join(' | ')}
  --attack-fraction F  fraction of malicious clients (default 0.1)
  --norm-bound K       drop updates whose norm exceeds K x the round's median norm
  --secure             sign every federation message (Ed25519) and enforce access control on receipt
`;

export const DEFENSE_ARGS = {
  'dp-clip': { type: 'string' },
  'dp-noise': { type: 'string' },
  'dp-delta': { type: 'string' },
  attack: { type: 'string' },
  'attack-fraction': { type: 'string' },
  'norm-bound': { type: 'string' },
  secure: { type: 'boolean' },
} as const;

type Args = Partial<
  Record<'dp-clip' | 'dp-noise' | 'dp-delta' | 'attack' | 'attack-fraction' | 'norm-bound', string>
> & { secure?: boolean };

function num(name: string, s: string, ok: (n: number) => boolean, what: string): number {
  const n = Number(s);
  if (s.trim() === '' || !Number.isFinite(n) || !ok(n))
    throw new WhaleError('ERR_CONFIG', `--${name}: expected ${what}, got '${s}'`, { field: name });
  return n;
}

const clientIds = (n: number) => Array.from({ length: n }, (_, i) => clientId(i));

export function defenseFromArgs(
  v: Args,
  run: { clients: number; fraction: number; strategy: string; seed: number },
): { roundHook?: RoundHook; secure?: boolean } {
  const dpAsked = v['dp-clip'] !== undefined || v['dp-noise'] !== undefined;
  if (dpAsked && (v['dp-clip'] === undefined || v['dp-noise'] === undefined))
    throw new WhaleError('ERR_CONFIG', '--dp-clip and --dp-noise: give both', { field: 'dp-clip' });
  if (dpAsked && run.strategy !== 'fedavg')
    throw new WhaleError(
      'ERR_CONFIG',
      `--dp-clip: DP-FedAvg replaces the aggregate with a noised mean; use --strategy fedavg (got ${run.strategy})`,
      { field: 'dp-clip' },
    );
  const attack = v.attack;
  if (attack !== undefined && !ATTACK_MODES.includes(attack as AttackMode))
    throw new WhaleError('ERR_CONFIG', `--attack: one of ${ATTACK_MODES.join(', ')}, got '${attack}'`, {
      field: 'attack',
    });
  const hook =
    dpAsked || attack !== undefined || v['norm-bound'] !== undefined
      ? new RoundDefense({
          clients: clientIds(run.clients),
          ...(attack === undefined
            ? {}
            : {
                attack: {
                  mode: attack as AttackMode,
                  fraction:
                    v['attack-fraction'] === undefined
                      ? 0.1
                      : num('attack-fraction', v['attack-fraction'], (n) => n >= 0 && n < 1, 'a fraction in [0, 1)'),
                  seed: run.seed + 7,
                },
              }),
          ...(v['norm-bound'] === undefined
            ? {}
            : { normBound: { factor: num('norm-bound', v['norm-bound'], (n) => n >= 1, 'a number >= 1') } }),
          ...(dpAsked
            ? {
                dp: {
                  clip: num('dp-clip', v['dp-clip']!, (n) => n > 0, 'a number > 0'),
                  noiseMultiplier: num('dp-noise', v['dp-noise']!, (n) => n >= 0, 'a number >= 0'),
                  sampleRate: run.fraction,
                  delta:
                    v['dp-delta'] === undefined
                      ? 1e-5
                      : num('dp-delta', v['dp-delta'], (n) => n > 0 && n < 1, 'a number in (0, 1)'),
                },
              }
            : {}),
        })
      : undefined;
  return { ...(hook ? { roundHook: hook } : {}), ...(v.secure ? { secure: true } : {}) };
}

export function defenseLine(s: RoundDefenseReport | undefined): string {
  if (!s) return '';
  const parts = [
    s.epsilon === undefined ? '' : `eps ${s.epsilon.toFixed(3)}`,
    s.malicious === undefined ? '' : `malicious ${s.malicious}`,
    s.droppedByNorm === undefined ? '' : `norm-dropped ${s.droppedByNorm}`,
  ].filter(Boolean);
  return parts.length ? `  ${parts.join('  ')}` : '';
}
