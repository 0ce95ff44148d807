// The one WhaleError-code → HTTP status table (src/transport/http-json.ts) that every route answers through.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { WhaleError, type WhaleErrorCode } from '../src/common/errors.js';
import { errorAnswer, HTTP_STATUS, HttpError } from '../src/transport/http-json.js';

/** Every code of the WhaleErrorCode union, read from its declaration. */
function declaredCodes(): string[] {
  const text = readFileSync(join(__dirname, '..', 'src', 'common', 'errors.ts'), 'utf8');
  const union = /export type WhaleErrorCode =([\s\S]*?);/.exec(text)![1]!;
  return [...union.matchAll(/'(ERR_[A-Z0-9_]+)'/g)].map((m) => m[1]!);
}

describe('HTTP status of each WhaleError code', () => {
  it('every WhaleErrorCode has a status, and only those', () => {
    const codes = declaredCodes();
    expect(codes.length).toBeGreaterThan(40);
    expect(Object.keys(HTTP_STATUS).sort()).toEqual([...codes].sort());
    for (const c of codes) expect(HTTP_STATUS[c as WhaleErrorCode], c).toBeGreaterThanOrEqual(400);
  });

  it.each([
    ['ERR_INVALID_ARG', 400],
    ['ERR_SHAPE_MISMATCH', 400],
    ['ERR_NON_FINITE', 400],
    ['ERR_NOT_FOUND', 404],
    ['ERR_MODEL_NOT_FOUND', 404],
    ['ERR_PAYLOAD_TOO_LARGE', 413],
    ['ERR_QUOTA_EXCEEDED', 429],
    ['ERR_CANCELLED', 499],
    ['ERR_MODEL_NOT_READY', 503],
    ['ERR_OVERLOADED', 503],
    ['ERR_SHUTTING_DOWN', 503],
    ['ERR_DEADLINE_EXCEEDED', 504],
    ['ERR_TIMEOUT', 504],
    ['ERR_NATIVE', 500],
    ['ERR_INVALID_OPTION', 500],
    ['ERR_CONFIG', 500],
  ] as const)('%s → %i', (code, status) => {
    expect(HTTP_STATUS[code]).toBe(status);
    expect(errorAnswer(new WhaleError(code, 'm', { field: 'f' }))).toEqual({
      status,
      body: { error: 'm', code, field: 'f' },
    });
  });

  it("errors that are not WhaleErrors are 500 without a code; a route's HttpError keeps its status", () => {
    expect(errorAnswer(new TypeError('boom'))).toEqual({ status: 500, body: { error: 'internal error: boom' } });
    expect(errorAnswer('text')).toEqual({ status: 500, body: { error: 'internal error: text' } });
    expect(errorAnswer(new HttpError(405, '/x accepts GET'))).toEqual({
      status: 405,
      body: { error: '/x accepts GET' },
    });
    expect(errorAnswer(new WhaleError('ERR_INVALID_ARG', 'no field')).body).toEqual({
      error: 'no field',
      code: 'ERR_INVALID_ARG',
    });
  });

  it('no route keeps its own status table or JSON sender', () => {
    for (const f of [
      'server/http-server.ts',
      'server/extensions/routing-routes.ts',
      'server/extensions/resources-routes.ts',
      'server/extensions/monitoring-routes.ts',
      'core/monitoring/visualization/dashboard-generator.ts',
    ]) {
      const text = readFileSync(join(__dirname, '..', 'src', f), 'utf8');
      expect(text, f).not.toMatch(/Record<WhaleErrorCode, number>|function (send|sendJson|readJson)\(/);
      expect(text, f).toMatch(/transport\/http-json\.js/);
    }
  });
});
