/**
 * Checks a publisher runs on its own message before it leaves (both buses):
 * a message the consumers would dead-letter fails the publish call instead,
 * with ERR_INVALID_MESSAGE naming the field, so the caller can roll back.
 */
import { WhaleError } from '../common/errors.js';
import { encodeEnvelope, envelopeProblem, type Envelope } from './envelope.js';
import { jsonProblem } from '../common/json-safe.js';
import { schemaProblem } from './topics.js';

export function assertTopic(topic: unknown): asserts topic is string {
  if (typeof topic !== 'string' || topic.length === 0)
    throw new WhaleError('ERR_INVALID_ARG', 'topic: must be a non-empty string', { field: 'topic' });
}

export interface RawPublishOptions {
  key?: string;
  headers?: Record<string, string>;
}

/** Validates publishRaw's arguments (the bytes themselves are not looked at: that is what raw means). */
export function assertRawPublish(
  topic: unknown,
  data: unknown,
  opts: unknown,
): asserts opts is RawPublishOptions | undefined {
  assertTopic(topic);
  if (!(data instanceof Uint8Array))
    throw new WhaleError('ERR_INVALID_ARG', 'data: must be a Buffer', { field: 'data' });
  if (opts === undefined) return;
  if (typeof opts !== 'object' || opts === null)
    throw new WhaleError('ERR_INVALID_ARG', 'options: must be an object', { field: 'options' });
  const { key, headers } = opts as { key?: unknown; headers?: unknown };
  if (key !== undefined && typeof key !== 'string')
    throw new WhaleError('ERR_INVALID_ARG', 'options.key: must be a string', { field: 'options.key' });
  if (headers === undefined) return;
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
    throw new WhaleError('ERR_INVALID_ARG', 'options.headers: must be an object of strings', {
      field: 'options.headers',
    });
  }
  for (const [k, v] of Object.entries(headers)) {
    if (typeof v !== 'string')
      throw new WhaleError('ERR_INVALID_ARG', `options.headers.${k}: must be a string`, {
        field: `options.headers.${k}`,
      });
  }
}

/** A Buffer view of the bytes (no copy). */
export function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * The bytes to publish for `message` on `topic`: the envelope must be valid,
 * the payload must match the topic's schema in the AsyncAPI document, and
 * every value must survive JSON (no NaN/Infinity, BigInt, cycles, Map/Set).
 */
export function encodeForPublish(topic: string, message: Envelope): Buffer {
  assertPublishable(topic, message);
  try {
    return encodeEnvelope(message);
  } catch (err) {
    throw invalid(
      topic,
      message,
      'message',
      `cannot be encoded as JSON: ${(err as Error)?.message ?? String(err)}`,
      err,
    );
  }
}

/** encodeForPublish's checks without the encoding. */
export function assertPublishable(topic: string, message: Envelope): void {
  const envelope = envelopeProblem(message);
  if (envelope) throw invalid(topic, message, envelopeField(envelope), envelope);
  const schema = schemaProblem(topic, message.type, message.payload);
  if (schema) throw invalid(topic, message, schema.path, `${schema.path}: ${schema.reason}`);
  const json = jsonProblem(message, 'message');
  if (json) {
    const field = json.path.replace(/^message\.?/, '');
    throw invalid(topic, message, field || 'message', `${field || 'message'}: ${json.reason}`);
  }
}

/** The field an envelopeProblem() text is about ('timestamp: must be…' -> 'timestamp'). */
function envelopeField(problem: string): string {
  if (problem.startsWith('unsupported envelope version')) return 'v';
  const colon = problem.indexOf(':');
  return colon > 0 ? problem.slice(0, colon) : 'message';
}

function invalid(topic: string, message: unknown, field: string, why: string, cause?: unknown): WhaleError {
  const type =
    typeof (message as { type?: unknown } | null)?.type === 'string' ? (message as { type: string }).type : 'message';
  return new WhaleError('ERR_INVALID_MESSAGE', `${type} on ${topic}: ${why}`, {
    field,
    ...(cause === undefined ? {} : { cause }),
  });
}
