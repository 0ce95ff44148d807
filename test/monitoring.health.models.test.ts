// The `models` readiness check: loaded models pass, failed ones fail it, optional ones are reported, and a
// loaded model that cannot serve (a quota that admits nothing: hardening round 2, item 8) fails it with the reason.
import { describe, expect, it } from 'vitest';

import { modelsLoadedCheck } from '../src/core/monitoring/health/checks.js';
import type { HostedModelStatus } from '../src/core/processing/model-host.js';

const status = (
  name: string,
  state: HostedModelStatus['state'],
  extra: Partial<HostedModelStatus> = {},
): HostedModelStatus => ({
  name,
  version: '1',
  platform: 'test',
  state,
  restarts: 0,
  failures: 0,
  model: {} as HostedModelStatus['model'],
  ...extra,
});

function host(list: HostedModelStatus[]) {
  return { names: () => list.map((s) => s.name), status: (n: string) => list.find((s) => s.name === n)! };
}

describe('modelsLoadedCheck', () => {
  it('passes with every required model ready, fails naming a failed one, reports an optional one', async () => {
    expect(await modelsLoadedCheck(host([status('a', 'ready')])).run()).toMatchObject({ ok: true });
    expect(
      await modelsLoadedCheck(host([status('a', 'ready'), status('b', 'failed', { lastError: 'bad file' })])).run(),
    ).toMatchObject({ ok: false, reason: "model 'b' is failed: bad file" });
    expect(
      await modelsLoadedCheck(host([status('a', 'ready'), status('c', 'failed', { optional: true })])).run(),
    ).toMatchObject({ ok: true, reason: expect.stringMatching(/model 'c' \(optional\) is failed/) });
  });

  it('fails for a loaded model that cannot serve, with the reason', async () => {
    const check = modelsLoadedCheck(host([status('a', 'ready'), status('b', 'ready')]), (m) =>
      m === 'b' ? 'its memory quota (0 bytes) is below the smallest request' : undefined,
    );
    const r = await check.run();
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(/model 'b' is failed: loaded but cannot serve: its memory quota \(0 bytes\)/);
  });
});
