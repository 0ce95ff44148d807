import { WhaleError } from '../../../common/errors.js';
import { seededRandom, shuffleInPlace } from '../../base/random.js';

/** Clients wanted per round: max(minClients, round(fraction x available), 1) (McMahan et al.: m = max(C K, 1)). */
export function selectionSize(available: number, fraction: number, minClients: number): number {
  return Math.max(minClients, Math.round(fraction * available), 1);
}

/** Picks selectionSize(...) clients per round, reproducibly from (seed, round). */
export function selectClients(
  available: readonly string[],
  o: { fraction: number; minClients: number; seed: number; round: number },
): string[] {
  const want = selectionSize(available.length, o.fraction, o.minClients);
  if (available.length < o.minClients) {
    throw new WhaleError(
      'ERR_NO_CLIENTS',
      `clients: ${available.length} registered, the federation needs at least minClients = ${o.minClients}`,
      {
        field: 'clients',
        retriable: true,
      },
    );
  }
  const pool = [...available].sort();
  return shuffleInPlace(pool, seededRandom(o.seed * 1_000_003 + o.round))
    .slice(0, Math.min(want, pool.length))
    .sort();
}
