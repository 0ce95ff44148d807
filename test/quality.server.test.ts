// Quality on a running server (issue 20): the quality-routing extension registers on the server's one
// metric registry whatever the extension order; served answers are sampled and evaluated; labelled
// feedback sets whale_model_accuracy_ratio; the QualityOptimizer's proposals are applied (a version
// rolled back, traffic moved between level arms) or say why not, and are listed on GET /v1/routing.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { silentLogger } from '../src/common/logger.js';
import { defineModel } from '../src/core/base/model.js';
import { parseConfig } from '../src/config/whale-config.js';
import { MonitoringExtension } from '../src/server/extensions/monitoring.js';
import { qualityRoutingExtension, type QualityRoutingExtension } from '../src/server/extensions/routing.js';
import { WhaleServer } from '../src/server/whale-server.js';
import { MessagingService } from '../src/services/messaging-service.js';
import { MemoryStateStore } from '../src/services/state-store.js';
import { LocalBus } from '../src/transport/local-bus.js';
import { until } from './helpers.js';
import { http, rowsInput, scaleModel, WIDTH } from './support/serving.js';

/** Model `a` version 2: the same signature, another answer (its scores favour class 0). */
function versionTwo() {
  return defineModel({
    name: 'a',
    version: '2',
    inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, WIDTH] }],
    outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, WIDTH] }],
    process: async (i) => {
      const rows = i.x!.shape[0]!;
      const y = new Float32Array(rows * WIDTH);
      for (let r = 0; r < rows; r++) y[r * WIDTH] = 10;
      return { y: { name: 'y', datatype: 'FP32', shape: [rows, WIDTH], data: y } };
    },
  });
}

describe('quality on a running server', () => {
  let server: WhaleServer;
  let ext: QualityRoutingExtension;
  let url: string;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'whale-quality-'));
    const routingFile = join(dir, 'whale.routing.json');
    writeFileSync(
      routingFile,
      JSON.stringify({
        tasks: { digits: { arms: [{ model: 'a', level: 'normal' }, { model: 'a', level: 'deep' }, { model: 'b' }] } },
        feedback: { minSamples: 2 },
        policy: { apply: ['rollback-version', 'change-level', 'schedule-federated-round'], minSamples: 3 },
        optimizeEveryMs: 0,
      }),
    );
    const config = parseConfig(
      {
        http: { port: 0 },
        models: ['a', 'b'].map((name) => ({ name, adapter: 'onnx', path: `/unused/${name}.onnx` })),
        quality: { sampleRate: 1, latencyBudgetMs: 1000 },
        shutdownGraceMs: 2000,
      },
      '/',
    );
    ext = qualityRoutingExtension(config, { WHALE_ROUTING: routingFile });
    server = new WhaleServer({
      config,
      messaging: new MessagingService({
        bus: new LocalBus(),
        store: new MemoryStateStore(),
        nodeId: 'quality-node',
        logger: silentLogger,
      }),
      models: [scaleModel('a', 1).model, scaleModel('b', 2).model],
      logger: silentLogger,
      // Quality before monitoring: its families still reach /metrics (one registry, the server's).
      extensions: [ext, new MonitoringExtension({ env: {}, logger: silentLogger, history: false, scorer: false })],
    });
    ({ url } = await server.start());
  });
  afterAll(async () => {
    await server.stop();
    // The served-answer hook is gone with the extension: the pipeline is the class's again.
    expect(Object.hasOwn(server.pipeline, 'processRequest')).toBe(false);
  });

  async function ask(row: number[]) {
    const r = await http(`${url}/v1/tasks/digits/infer`, { json: rowsInput([row]) });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body as { model_name: string; parameters: { feedback_id: string; level: string } };
  }

  it('served answers are evaluated off the request path and labels set the accuracy gauge, on /metrics whatever the extension order', async () => {
    const labels: { correct: boolean; accuracy: number }[] = [];
    for (let i = 0; i < 6; i++) {
      const answer = await ask([1, 2, 3, 4]); // top class 3 for every model here
      const f = await http(`${url}/v1/feedback`, {
        json: { requestId: answer.parameters.feedback_id, label: i % 2 === 0 ? 3 : 0 },
      });
      expect(f.status, JSON.stringify(f.body)).toBe(202);
      labels.push(f.body.label);
    }
    expect(labels.map((l) => l.correct)).toEqual([true, false, true, false, true, false]);
    // A label for an answer this node does not hold: 404 naming the field; a bad label: 400.
    const unknown = await http(`${url}/v1/feedback`, { json: { requestId: 'nobody', label: 1 } });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatch(/^feedback\.label: no routed answer/);
    const answer = await ask([1, 2, 3, 4]);
    const bad = await http(`${url}/v1/feedback`, { json: { requestId: answer.parameters.feedback_id, label: -2 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/^feedback\.label: must be an integer >= 0/);

    await ext.components.served.idle();
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).toMatch(/^whale_model_accuracy_ratio\{model="[ab]"\} (0|1|0\.\d+)$/m);
    expect(text).toMatch(/^whale_quality_evaluations_total\{model="[ab]",version="1",level="(normal|deep)"\} \d+$/m);
    expect(text).toMatch(/^whale_quality_served_score\{[^}]*score="latency"\} 1$/m);
    expect(text).toMatch(/^whale_quality_served_score\{[^}]*score="confidence"\} 0\.\d+$/m);
    // Model b's answers are compared with model a's (same signature): consistency is scored.
    expect(text).toMatch(/^whale_quality_served_score\{[^}]*score="consistency"\} (0|1|0\.\d+)$/m);
    expect(text).toContain('# TYPE whale_quality_score gauge');
    const routing = await http(`${url}/v1/routing`);
    expect(routing.body.served.length).toBeGreaterThan(0);
  });

  it('a quality drop rolls the new version back; low quality at a cheap level moves traffic to the deep arm; the starterless federated round says why; all listed on GET /v1/routing', async () => {
    await server.host.addVersion(versionTwo(), { provenance: { source: 'test' } });
    expect(server.host.get('a').version).toBe('2');
    // Low quality for model a's new version, over minSamples feedback (as curated feedback naming it arrives).
    for (let n = 0; n < 4; n++)
      ext.components.analyzer.submitFeedback({ requestId: `curated-${n}`, thumbs: 'down', model: 'a', version: '2' });
    const proposals = await ext.optimize({ model: 'a' } as never);
    const of = (action: string) => proposals.filter((p) => p.modelId === 'a' && p.action === action);
    expect(of('rollback-version')[0]).toMatchObject({ applied: true, params: { from: '2', to: '1' } });
    expect(server.host.get('a').version).toBe('1');
    const level = of('change-level').find((p) => p.params.from === 'normal');
    expect(level).toMatchObject({ applied: true, params: { to: 'deep' } });
    const arms = ext.components.optimizer.stats('digits').arms;
    expect(arms.find((x) => x.id === 'a@normal')!.shift).toEqual({ to: 'a@deep', share: 0.25 });
    expect(of('schedule-federated-round')[0]).toMatchObject({
      applied: false,
      note: expect.stringMatching(/no federation configured/),
    });
    // With a starter (the federations extension's), the round is started.
    const started: string[] = [];
    ext.setFederatedRoundStarter((model) => void started.push(model));
    const again = await ext.optimize();
    expect(again.find((p) => p.action === 'schedule-federated-round' && p.modelId === 'a')!.applied).toBe(true);
    expect(started).toContain('a');
    const listed = await http(`${url}/v1/routing`);
    const actions = (listed.body.proposals as { action: string; applied: boolean; reason: string }[]).map(
      (p) => p.action,
    );
    expect(actions).toEqual(expect.arrayContaining(['rollback-version', 'change-level', 'schedule-federated-round']));
    expect(await until(() => server.host.get('a').version === '1', 1000)).toBe(true);
  });
});
