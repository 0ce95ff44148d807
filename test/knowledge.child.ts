// Child of knowledge.manager.test.ts: stores items one by one, printing each id once store() resolved, until killed.
import { KnowledgeManager } from '../src/core/federation/knowledge-sharing/index.js';

const dir = process.argv[2]!;
const m = await KnowledgeManager.open({ dim: 8, dir });
for (let i = 0; ; i++) {
  const embedding = Float32Array.from({ length: 8 }, (_, j) => Math.sin(i + j) + 2);
  await m.store({ id: `item-${i}`, topic: 't', sourceModel: 'writer', data: { i }, embedding });
  process.stdout.write(`item-${i}\n`);
}
