import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { loadConfig, parseConfig } from '../src/config/whale-config.js';
import { expectWhaleError } from './helpers.js';

function field(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect((err as { code?: string }).code).toBe('ERR_CONFIG');
    return (err as { field?: string }).field;
  }
  throw new Error('expected ERR_CONFIG');
}

describe('whale.config.json', () => {
  it('defaults to the shipped MNIST model on 127.0.0.1:8080', () => {
    const c = loadConfig({ env: {}, cwd: mkdtempSync(join(tmpdir(), 'whale-cfg-')) });
    expect(c.source).toBeUndefined();
    expect(c.http).toMatchObject({ port: 8080, host: '127.0.0.1' });
    expect(c.models.map((m) => [m.name, m.adapter])).toEqual([['mnist', 'onnx']]);
    expect(c.models[0]!.path).toMatch(/models[/\\]mnist[/\\]model\.onnx$/);
    expect(c.pipeline.defaultModel).toBe('mnist');
  });

  it('reads ./whale.config.json, resolves model paths against its folder, and lets env set the port', () => {
    const dir = mkdtempSync(join(tmpdir(), 'whale-cfg-'));
    writeFileSync(
      join(dir, 'whale.config.json'),
      JSON.stringify({
        models: [
          { name: 'a', adapter: 'onnx', path: 'm/a.onnx', batching: { maxBatchSize: 8, maxQueueDelayUs: 500 } },
          { name: 'b', adapter: 'tfjs', path: '/abs/b', cost: 0.5 },
        ],
        pipeline: { defaultModel: 'b', deep: { models: ['a', 'b'] } },
        tenants: { gold: 4 },
      }),
    );
    const c = loadConfig({ env: { WHALE_HTTP_PORT: '9001' }, cwd: dir });
    expect(c.source).toBe(join(dir, 'whale.config.json'));
    expect(c.http.port).toBe(9001);
    expect(c.models[0]!.path).toBe(join(dir, 'm', 'a.onnx'));
    expect(c.models[0]!.batching).toMatchObject({ maxBatchSize: 8, maxQueueDelayUs: 500, preferredBatchSizes: [] });
    expect(c.models[1]!.path).toBe('/abs/b');
    expect(c.pipeline).toMatchObject({ defaultModel: 'b', deep: { models: ['a', 'b'] } });
    expect(c.tenants).toEqual({ gold: 4 });
  });

  it('reads batching.dispatchWhenIdle: off by default, on for the shipped model', () => {
    const m = (batching: Record<string, unknown>) => ({
      models: [{ name: 'a', adapter: 'onnx', path: 'x.onnx', batching }],
    });
    expect(parseConfig(m({ dispatchWhenIdle: true }), '/').models[0]!.batching.dispatchWhenIdle).toBe(true);
    expect(parseConfig(m({ dispatchWhenIdle: false }), '/').models[0]!.batching.dispatchWhenIdle).toBe(false);
    expect(parseConfig(m({}), '/').models[0]!.batching.dispatchWhenIdle).toBe(false); // Triton's rule unless asked
    const shipped = loadConfig({ env: {}, cwd: mkdtempSync(join(tmpdir(), 'whale-cfg-')) }).models[0]!.batching;
    expect(shipped).toMatchObject({ maxBatchSize: 64, maxQueueDelayUs: 2000, dispatchWhenIdle: true });
  });

  it('names the field at fault', () => {
    const m = (over: Record<string, unknown>) => ({
      models: [{ name: 'a', adapter: 'onnx', path: 'x.onnx', ...over }],
    });
    expect(field(() => parseConfig(m({ adapter: 'pytorch' }), '/'))).toBe('models[0].adapter');
    expect(field(() => parseConfig(m({ batching: { maxBatchSize: 0 } }), '/'))).toBe('models[0].batching.maxBatchSize');
    expect(field(() => parseConfig(m({ batching: { maxBatchSize: 4, preferredBatchSizes: [2, 8] } }), '/'))).toBe(
      'models[0].batching.preferredBatchSizes[1]',
    );
    expect(field(() => parseConfig(m({ batching: { maxQueueDelayUs: '100' } }), '/'))).toBe(
      'models[0].batching.maxQueueDelayUs',
    );
    expect(field(() => parseConfig(m({ batching: { dispatchWhenIdle: 'yes' } }), '/'))).toBe(
      'models[0].batching.dispatchWhenIdle',
    );
    expect(field(() => parseConfig(m({ batchSize: 3 }), '/'))).toBe('models[0].batchSize');
    expect(field(() => parseConfig(m({ name: '../etc' }), '/'))).toBe('models[0].name');
    expect(field(() => parseConfig({ models: [] }, '/'))).toBe('models');
    expect(field(() => parseConfig({ http: { port: 70000 } }, '/'))).toBe('http.port');
    expect(field(() => parseConfig({ pipeline: { defaultModel: 'nope' } }, '/'))).toBe('pipeline.defaultModel');
    expect(field(() => parseConfig({ tenants: { t: -1 } }, '/'))).toBe('tenants.t');
    const twice = { models: [m({}).models[0], m({}).models[0]] };
    expect(field(() => parseConfig(twice, '/'))).toBe('models[1].name');
    expect(
      field(() => loadConfig({ env: { WHALE_HTTP_PORT: '80a' }, cwd: mkdtempSync(join(tmpdir(), 'whale-cfg-')) })),
    ).toBe('WHALE_HTTP_PORT');
  });

  it("accepts a secure federation's access policy in the same file (federationSecurity.policy, read by AccessControl)", () => {
    const policy = { roles: { learner: ['join', 'train'] }, members: {} };
    expect(() => parseConfig({ federationSecurity: { policy } }, '/')).not.toThrow();
    expect(field(() => parseConfig({ federationSecurty: {} }, '/'))).toBe('federationSecurty');
  });

  it('reports an unreadable or malformed file with its path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'whale-cfg-'));
    writeFileSync(join(dir, 'bad.json'), '{ "models": [');
    const bad = await expectWhaleError(
      () => loadConfig({ path: 'bad.json', env: {}, cwd: dir }),
      'ERR_CONFIG',
      'config',
    );
    expect(bad.message).toMatch(/bad\.json is not valid JSON/);
    const missing = await expectWhaleError(
      () => loadConfig({ path: 'missing.json', env: {}, cwd: dir }),
      'ERR_CONFIG',
      'config',
    );
    expect(missing.message).toMatch(/cannot read the configuration .*missing\.json/);
  });
});
