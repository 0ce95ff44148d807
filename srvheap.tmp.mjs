import { Session } from 'node:inspector/promises';
import { WhaleServer } from './dist/src/server/whale-server.js';
import { loadConfig } from './dist/src/config/whale-config.js';
const config = loadConfig({});
config.http.port = 18098; config.grpc.enabled = false;
const server = new WhaleServer({ config, serverVersion: '0', extensions: [] });
await server.start();
const s = new Session(); s.connect();
setTimeout(async () => {
  await s.post('HeapProfiler.startSampling', { samplingInterval: 2048, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: false });
  setTimeout(async () => {
    const { profile } = await s.post('HeapProfiler.stopSampling');
    const rows = [];
    const walk = (n, stack) => {
      const f = n.callFrame; const here = `${f.functionName || '(anon)'} ${f.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${f.lineNumber + 1}`;
      const st = [...stack, here];
      if (n.selfSize > 0) rows.push([n.selfSize, st.slice(-5).join(' <- ')]);
      for (const c of n.children) walk(c, st);
    };
    walk(profile.head, []);
    rows.sort((a, b) => b[0] - a[0]);
    const total = rows.reduce((a, r) => a + r[0], 0);
    console.log('sampled bytes surviving a minor GC', total);
    for (const [b, st] of rows.slice(0, 22)) console.log(String(b).padStart(9), st.split(' <- ').reverse().join(' <- '));
    await server.stop(); process.exit(0);
  }, 6000);
}, 5000);
