/**
 * The `auth` settings of whale.config.json: `{ keys?: ApiKeyRecord[], keysFile?: string,
 * inference?: 'open' | 'keyed' }`. Keys come from the config, from the keys file (relative
 * to the config) or from WHALE_API_KEYS_FILE, which replaces auth.keysFile.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';

import { configError, objectAt, optional, stringAt, arrayAt } from '../common/validate.js';
import { checkRecord, type ApiKeyRecord } from './api-keys.js';

export interface AuthConfig {
  keys: ApiKeyRecord[];
  inference: 'open' | 'keyed';
}

export function parseAuth(raw: unknown, baseDir: string, keysFileFromEnv: string | undefined): AuthConfig {
  const a = objectAt(raw ?? {}, 'auth', ['keys', 'keysFile', 'inference']);
  const keys = (optional(a.keys, (v) => arrayAt(v, 'auth.keys')) ?? []).map((k, i) =>
    checkRecord(k, `auth.keys[${i}]`),
  );
  const fileField = keysFileFromEnv !== undefined ? 'WHALE_API_KEYS_FILE' : 'auth.keysFile';
  const file = keysFileFromEnv ?? optional(a.keysFile, (v) => stringAt(v, 'auth.keysFile'));
  if (file !== undefined) keys.push(...readKeysFile(isAbsolute(file) ? file : resolve(baseDir, file), fileField));
  const inference = (optional(a.inference, (v) => stringAt(v, 'auth.inference', { oneOf: ['open', 'keyed'] })) ??
    'open') as AuthConfig['inference'];
  return { keys, inference };
}

export function readKeysFile(path: string, field: string): ApiKeyRecord[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw configError(
      field,
      `cannot read the keys file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw configError(field, `the keys file ${path} is not valid JSON`);
  }
  if (!Array.isArray(raw)) throw configError(field, `the keys file ${path} must hold a JSON array of key records`);
  return raw.map((k, i) => checkRecord(k, `${field}[${i}]`));
}
