/**
 * Max-min fair division of `total` among requests: everyone gets what they
 * asked for when it fits; otherwise small requests are met in full and the
 * rest split what remains equally, so nobody gets more than its share.
 */
export function fairShares(requests: ReadonlyMap<string, number>, total: number): Map<string, number> {
  const out = new Map<string, number>();
  let sum = 0;
  for (const r of requests.values()) sum += r;
  if (sum <= total) {
    for (const [k, r] of requests) out.set(k, r);
    return out;
  }
  const sorted = [...requests].sort((a, b) => a[1] - b[1]);
  let left = total;
  for (let i = 0; i < sorted.length; i++) {
    const [k, r] = sorted[i]!;
    const level = left / (sorted.length - i);
    const give = Math.min(r, level);
    out.set(k, give);
    left -= give;
  }
  return out;
}
