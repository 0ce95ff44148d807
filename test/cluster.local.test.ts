// The deployment topology as local processes (standard-clients issue, "Deployment"): scripts/cluster-local.sh
// --smoke brings up the Kafka mock, redis-server, two `whale start` nodes and a federation (coordinator +
// one learner process), checks each, and tears everything down. The compose file lists the same services.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');

describe('scripts/cluster-local.sh', () => {
  it('runs two nodes, Kafka, Redis and a federation, and stops them all', async () => {
    const child = spawn('bash', [join(root, 'scripts', 'cluster-local.sh'), '--smoke'], { cwd: root });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(out, out).toMatch(/node-a serving at http/);
    expect(out).toMatch(/node-b serving at http/);
    expect(out).toMatch(/federation finished: summary: 1 rounds/);
    expect(out).toMatch(/smoke check passed/);
    expect(code).toBe(0);
  }, 300_000);

  it('the compose file has the same services (Kafka, Redis, TimescaleDB, two nodes, a federation, Prometheus)', () => {
    const compose = readFileSync(join(root, 'deploy', 'docker-compose.yml'), 'utf8');
    for (const s of ['kafka', 'redis', 'timescale', 'whale-a', 'whale-b', 'federation', 'prometheus'])
      expect(compose).toMatch(new RegExp(`^  ${s}:`, 'm'));
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*\n.*\/v2\/health\/ready/m);
    expect(dockerfile.match(/^FROM /gm)).toHaveLength(2);
  });
});
