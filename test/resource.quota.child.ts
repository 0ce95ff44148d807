// One "node" of the shared-quota test: admits as fast as it can between two
// wall-clock instants against a quota kept in Redis, and prints its count.
import { QuotaManager } from '../src/core/resource-management/quota/quota-manager.js';
import { RedisQuotaStore } from '../src/core/resource-management/quota/redis-quota-store.js';

const [url, startAt, endAt, rps, burst] = process.argv.slice(2);
const quotas = new QuotaManager(new RedisQuotaStore({ url: url!, prefix: 'whale:test-quota:' }));
quotas.setRateLimit('model', 'shared', { requestsPerSecond: Number(rps), burst: Number(burst) });
let admitted = 0;
let refused = 0;
while (Date.now() < Number(startAt)) await new Promise((r) => setTimeout(r, 1));
while (Date.now() < Number(endAt)) {
  try {
    (await quotas.admit('shared')).release();
    admitted++;
  } catch (err) {
    if ((err as { code?: string }).code !== 'ERR_QUOTA_EXCEEDED') throw err;
    refused++;
  }
}
await quotas.close();
console.log(JSON.stringify({ admitted, refused }));
