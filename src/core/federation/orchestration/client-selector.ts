import { WhaleError } from '../../base/errors.js';
import { seededRandom, shuffleInPlace } from './random.js';

/**
 * Picks max(minClients, round(fraction x available)) clients per round
 * (McMahan et al.: m = max(C K, 1)), reproducibly from (seed, round).
 */
export function selectClients(available: readonly string[], o: { fraction: number; minClients: number; seed: number; round: number }): string[] {
  const want = Math.max(o.minClients, Math.round(o.fraction * available.length), 1);
  if (available.length < o.minClients) {
    throw new WhaleError('ERR_NO_CLIENTS', `clients: ${available.length} registered, the federation needs at least minClients = ${o.minClients}`, {
      field: 'clients',
      retriable: true,
    });
  }
  const pool = [...available].sort();
  return shuffleInPlace(pool, seededRandom(o.seed * 1_000_003 + o.round)).slice(0, Math.min(want, pool.length)).sort();
}
