/** Option and task checks of the RouteOptimizer: typed errors naming the field. */
import { WhaleError } from '../../../common/errors.js';
import type { TaskRouting } from './route-optimizer.js';

export function checkRouting(name: string, r: TaskRouting): void {
  const at = `tasks.${name}`;
  if (typeof r !== 'object' || r === null || !Array.isArray(r.arms) || r.arms.length === 0)
    throw bad(`${at}.arms`, 'must list at least one arm');
  const ids = new Set<string>();
  r.arms.forEach((a, i) => {
    if (typeof a?.id !== 'string' || a.id.length === 0 || typeof a.model !== 'string' || a.model.length === 0)
      throw bad(`${at}.arms[${i}]`, 'needs an id and a model');
    if (a.level !== undefined && !['quick', 'normal', 'deep'].includes(a.level))
      throw bad(`${at}.arms[${i}].level`, 'must be quick, normal or deep');
    if (ids.has(a.id)) throw bad(`${at}.arms[${i}].id`, `duplicate arm id '${a.id}'`);
    ids.add(a.id);
  });
  for (const k of ['canary', 'shadow'] as const) {
    const c = r[k];
    if (c === undefined) continue;
    if (!ids.has(c.arm)) throw bad(`${at}.${k}.arm`, `no arm '${String(c.arm)}' in the task`);
    if (!(c.share >= 0 && c.share <= 1)) throw bad(`${at}.${k}.share`, 'must be in [0, 1]');
  }
}

export function bad(field: string, message: string): WhaleError {
  return new WhaleError('ERR_INVALID_ARG', `${field}: ${message}`, { field });
}

export function num(v: number, field: string, ok: (v: number) => boolean): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v))
    throw new WhaleError('ERR_INVALID_OPTION', `${field}: out of range (${String(v)})`, { field });
  return v;
}
