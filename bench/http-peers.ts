/**
 * The two peers `npm run bench -- http` compares `whale start` with, each run as its own process:
 *
 *   node dist/bench/http-peers.js plain PORT MODEL.onnx   what a user writes without Smart Whale: node:http,
 *                                                         JSON.parse, one onnxruntime-node session.run per
 *                                                         request, JSON.stringify of a V2 answer
 *   node dist/bench/http-peers.js fixed PORT              node:http that reads the body and returns a fixed
 *                                                         answer: the ceiling of any Node front end here
 *
 * Both print `listening PORT` once they accept requests and stop on SIGINT/SIGTERM.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

import * as ort from 'onnxruntime-node';

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

interface V2Input {
  name: string;
  shape: number[];
  datatype: string;
  data: number[];
}

/** The plain server: what the V2 infer route amounts to when written by hand around one session. */
async function plain(modelPath: string): Promise<(req: IncomingMessage, res: ServerResponse) => void> {
  const session = await ort.InferenceSession.create(modelPath, { graphOptimizationLevel: 'all', logSeverityLevel: 3 });
  return (req, res) => {
    readBody(req)
      .then(async (buf) => {
        const body = JSON.parse(buf.toString()) as { id?: string; inputs: V2Input[] };
        const feeds: Record<string, ort.Tensor> = {};
        for (const t of body.inputs) feeds[t.name] = new ort.Tensor('float32', Float32Array.from(t.data), t.shape);
        const out = await session.run(feeds);
        const outputs = Object.entries(out).map(([name, t]) => ({
          name,
          datatype: 'FP32',
          shape: t.dims,
          data: Array.from(t.data as Float32Array),
        }));
        send(res, 200, JSON.stringify({ model_name: 'mnist', model_version: '1', id: body.id, outputs }));
      })
      .catch((err: Error) => send(res, 400, JSON.stringify({ error: err.message })));
  };
}

/** The ceiling: the body is read (as every server must), the answer is a constant of a V2 answer's size. */
function fixed(): (req: IncomingMessage, res: ServerResponse) => void {
  const answer = JSON.stringify({
    model_name: 'mnist',
    model_version: '1',
    outputs: [{ name: 'output', datatype: 'FP32', shape: [1, 10], data: Array.from({ length: 10 }, (_, i) => i / 10) }],
  });
  return (req, res) => {
    readBody(req).then(
      () => send(res, 200, answer),
      () => res.destroy(),
    );
  };
}

async function main(): Promise<void> {
  const [kind, port, modelPath] = process.argv.slice(2);
  if ((kind !== 'plain' && kind !== 'fixed') || !port || (kind === 'plain' && !modelPath)) {
    process.stderr.write('usage: http-peers.js plain PORT MODEL.onnx | fixed PORT\n');
    process.exit(2);
  }
  const handler = kind === 'plain' ? await plain(modelPath!) : fixed();
  const server = createServer({ keepAliveTimeout: 5_000 }, handler);
  server.listen(Number(port), '127.0.0.1', () => process.stdout.write(`listening ${port}\n`));
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

await main();
