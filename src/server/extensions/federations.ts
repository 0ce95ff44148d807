/**
 * The federations extension of `whale start`: hosts federation coordinators beside the models.
 * Federations start from whale.config.json (`federations.start`), over HTTP (POST /v1/federations
 * { model, config }), or when the QualityOptimizer proposes schedule-federated-round for a model
 * (with `federations.onQualityDrop` set). GET /v1/federations[/{id}] reports them, DELETE stops one.
 * A round that passes the quality gate becomes a new version of the served model (ModelHost.addVersion:
 * atomic switch, in-flight requests finish on the old version, a failed load rolls back), with its
 * provenance (federation id, round, evaluation) in the version's metadata.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';

import { WhaleError } from '../../common/errors.js';
import { createLogger, type Logger } from '../../common/logger.js';
import {
  FEDERATION_ID,
  parseFederationConfig,
  type FederationConfig,
  type FederationsConfig,
} from '../../config/federations.js';
import type { WhaleConfig } from '../../config/whale-config.js';
import { OnnxModel } from '../../models/onnx-model.js';
import type { ServerExtension, WhaleServer } from '../whale-server.js';
import { readDenseOnnx } from './federations-onnx.js';
import { HostedFederation, type PublishRequest } from './federations-hosted.js';
import { federationRoutes } from './federations-routes.js';

export interface FederationsExtensionOptions {
  /** The served models' configuration (their files and execution providers). */
  models: WhaleConfig['models'];
  federations?: FederationsConfig;
  logger?: Logger;
}

/** What the quality-routing extension offers (setFederatedRoundStarter), without depending on its module. */
interface RoundStarterHost {
  setFederatedRoundStarter?(start: ((model: string, reason: string) => Promise<void>) | undefined): void;
}

export class FederationsExtension implements ServerExtension {
  readonly name = 'federations';
  private server: WhaleServer | undefined;
  private readonly hosted = new Map<string, HostedFederation>();
  /** ONNX bytes of the versions this extension published (model → version → bytes). */
  private readonly published = new Map<string, Map<string, Uint8Array>>();
  private readonly logger: Logger;
  private unhook: (() => void) | undefined;

  constructor(private readonly o: FederationsExtensionOptions) {
    this.logger = o.logger ?? createLogger('federations');
  }

  async start(server: WhaleServer): Promise<void> {
    this.server = server;
    server.http.addHandler(federationRoutes(this));
    // The QualityOptimizer's schedule-federated-round: the quality-routing extension calls this starter.
    const onDrop = this.o.federations?.onQualityDrop;
    const routing = server.extension('quality-routing') as RoundStarterHost | undefined;
    if (onDrop && routing?.setFederatedRoundStarter) {
      routing.setFederatedRoundStarter(async (model) => {
        if ([...this.hosted.values()].some((f) => f.model === model && !f.over))
          throw new WhaleError('ERR_CONFLICT', `a federation of '${model}' is already running`);
        await this.create(model, onDrop);
      });
      this.unhook = () => routing.setFederatedRoundStarter?.(undefined);
    }
    for (const s of this.o.federations?.start ?? []) await this.create(s.model, s.config, s.id);
  }

  async stop(): Promise<void> {
    this.unhook?.();
    for (const f of this.hosted.values()) f.stop();
    await Promise.allSettled([...this.hosted.values()].map((f) => f.done));
  }

  list(): Record<string, unknown>[] {
    return [...this.hosted.values()].map((f) => {
      const { id, model, state, rounds, versions } = f.info() as Record<string, unknown>;
      return { id, model, state, rounds: (rounds as unknown[]).length, versions };
    });
  }

  get(id: string): HostedFederation {
    const f = this.hosted.get(id);
    if (!f) throw new WhaleError('ERR_NOT_FOUND', `no federation '${id}' on this server`, { field: 'id' });
    return f;
  }

  /** POST /v1/federations: checks the model and settings, starts the federation, returns at once. */
  async create(model: string, raw: unknown, id?: string): Promise<HostedFederation> {
    const server = this.requireServer();
    const config = isParsed(raw) ? raw : parseBody(raw);
    const fid = id ?? `${model}-${randomUUID().slice(0, 8)}`;
    if (!FEDERATION_ID.test(fid))
      throw new WhaleError('ERR_INVALID_ARG', 'id: 1-100 of A-Z a-z 0-9 . _ -', { field: 'id' });
    const old = this.hosted.get(fid);
    if (old && !old.over) throw new WhaleError('ERR_CONFLICT', `federation '${fid}' is ${old.state}`, { field: 'id' });
    const served = server.host.get(model); // ERR_MODEL_NOT_FOUND
    const bytes = await this.servedBytes(model, served.version);
    let net;
    try {
      net = readDenseOnnx(bytes);
    } catch (err) {
      throw new WhaleError('ERR_INVALID_ARG', (err as Error).message, { field: 'model' });
    }
    const f = new HostedFederation({
      id: fid,
      model,
      config,
      bus: server.messaging.bus,
      ...(this.o.federations?.storeDir ? { storeRoot: this.o.federations.storeDir } : {}),
      served: { version: served.version, bytes, net },
      publish: (p) => this.publish(p),
      event: (type, data) =>
        void server.messaging
          .publishEvent(type, data)
          .catch((err: Error) => this.logger.warn('federation event not published', { type, error: err.message })),
      logger: this.logger,
    });
    this.hosted.set(fid, f);
    this.logger.info('federation started', { federationId: fid, model, rounds: config.rounds });
    return f;
  }

  /** The served version's ONNX bytes: one this extension published, or the configured file. */
  private async servedBytes(model: string, version: string): Promise<Uint8Array> {
    const ours = this.published.get(model)?.get(version);
    if (ours) return ours;
    const c = this.o.models.find((m) => m.name === model);
    if (!c || c.adapter !== 'onnx' || c.version !== version)
      throw new WhaleError(
        'ERR_INVALID_ARG',
        `model: '${model}' version '${version}' is not an ONNX file this server can read back`,
        { field: 'model' },
      );
    return new Uint8Array(await readFile(c.path));
  }

  private async publish(p: PublishRequest): Promise<string> {
    const server = this.requireServer();
    const c = this.o.models.find((m) => m.name === p.model);
    const version = nextVersion(server.host.versions(p.model).map((v) => v.version));
    const model = new OnnxModel({
      name: p.model,
      version,
      bytes: p.bytes,
      executionProviders: c?.executionProvider ?? 'auto',
      ...(c?.intraOpThreads === undefined ? {} : { intraOpThreads: c.intraOpThreads }),
    });
    await server.host.addVersion(model, {
      provenance: {
        source: 'federation',
        federationId: p.federationId,
        round: p.round,
        evaluation: { ...p.evaluation },
        replaced: { version: p.served.version, evaluation: { ...p.served.evaluation } },
      },
      check: async (m) => {
        const input = m.inputs[0]!;
        const width = input.shape.at(-1)!;
        const out = await m.process({
          [input.name]: { name: input.name, datatype: 'FP32', shape: [1, width], data: new Float32Array(width) },
        });
        const data = Object.values(out)[0]?.data as Float32Array | undefined;
        if (!data || !Array.from(data).every(Number.isFinite))
          throw new Error('a probe inference answered non-finite values');
      },
    });
    let byVersion = this.published.get(p.model);
    if (!byVersion) this.published.set(p.model, (byVersion = new Map()));
    byVersion.set(version, p.bytes);
    // Bytes of versions the host no longer holds are dropped.
    const held = new Set(server.host.versions(p.model).map((v) => v.version));
    for (const v of byVersion.keys()) if (!held.has(v)) byVersion.delete(v);
    await server.messaging
      .publishEvent('federation.version.published', {
        model: p.model,
        version,
        federationId: p.federationId,
        round: p.round,
        accuracy: p.evaluation.accuracy,
      })
      .catch(() => undefined);
    return version;
  }

  private requireServer(): WhaleServer {
    if (!this.server)
      throw new WhaleError('ERR_SHUTTING_DOWN', 'the federations extension is not started', { retriable: true });
    return this.server;
  }
}

/** The next version name: one above the highest numeric version, else `<n+1>` over the count. */
export function nextVersion(versions: readonly string[]): string {
  const nums = versions.filter((v) => /^\d+$/.test(v)).map(Number);
  return String((nums.length ? Math.max(...nums) : versions.length) + 1);
}

function isParsed(v: unknown): v is FederationConfig {
  return (
    typeof v === 'object' &&
    v !== null &&
    (v as { heldOut?: unknown }).heldOut !== undefined &&
    (v as { gate?: { margin?: unknown } }).gate?.margin !== undefined &&
    typeof (v as { publish?: unknown }).publish === 'boolean'
  );
}

/** A client's settings: a bad one is the client's fault (400), not a server configuration error. */
function parseBody(raw: unknown): FederationConfig {
  try {
    return parseFederationConfig(raw, 'config');
  } catch (err) {
    if (err instanceof WhaleError && err.code === 'ERR_CONFIG')
      throw new WhaleError('ERR_INVALID_ARG', err.message, { ...(err.field ? { field: err.field } : {}) });
    throw err;
  }
}

/** The factory registered in server/default-extensions.ts. */
export function federationsExtension(config: WhaleConfig): FederationsExtension {
  return new FederationsExtension({
    models: config.models,
    ...(config.federations ? { federations: config.federations } : {}),
  });
}
