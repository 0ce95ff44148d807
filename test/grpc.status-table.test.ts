// The WhaleError-code → gRPC status table (src/server/grpc/status.ts), beside HTTP's (src/transport/http-json.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';

import { WhaleError, type WhaleErrorCode } from '../src/common/errors.js';
import { GRPC_STATUS, grpcError } from '../src/server/grpc/status.js';
import { HTTP_STATUS } from '../src/transport/http-json.js';

function declaredCodes(): string[] {
  const text = readFileSync(join(__dirname, '..', 'src', 'common', 'errors.ts'), 'utf8');
  const union = /export type WhaleErrorCode =([\s\S]*?);/.exec(text)![1]!;
  return [...union.matchAll(/'(ERR_[A-Z0-9_]+)'/g)].map((m) => m[1]!);
}

/** The gRPC statuses that agree with each HTTP status of the HTTP table. */
const AGREES: Record<number, status[]> = {
  400: [status.INVALID_ARGUMENT],
  401: [status.UNAUTHENTICATED],
  403: [status.PERMISSION_DENIED],
  404: [status.NOT_FOUND],
  409: [status.ABORTED, status.ALREADY_EXISTS],
  413: [status.RESOURCE_EXHAUSTED],
  429: [status.RESOURCE_EXHAUSTED],
  499: [status.CANCELLED],
  503: [status.UNAVAILABLE],
  504: [status.DEADLINE_EXCEEDED],
  500: [status.INTERNAL],
};

describe('gRPC status of each WhaleError code', () => {
  it('every WhaleErrorCode has a status, and only those; none is OK or UNKNOWN', () => {
    const codes = declaredCodes();
    expect(codes.length).toBeGreaterThan(40);
    expect(Object.keys(GRPC_STATUS).sort()).toEqual([...codes].sort());
    for (const c of codes) expect([status.OK, status.UNKNOWN], c).not.toContain(GRPC_STATUS[c as WhaleErrorCode]);
  });

  it('each status agrees with the HTTP table', () => {
    for (const c of declaredCodes() as WhaleErrorCode[]) {
      expect(AGREES[HTTP_STATUS[c]], `${c}: HTTP ${HTTP_STATUS[c]}`).toContain(GRPC_STATUS[c]);
    }
  });

  it('the error travels as the details, its code and field in the metadata, a retry hint as retry-after; others are INTERNAL', () => {
    const e = grpcError(new WhaleError('ERR_OVERLOADED', 'busy', { field: 'body', retryAfterMs: 1500 }));
    expect(e.code).toBe(status.UNAVAILABLE);
    expect(e.details).toBe('busy');
    expect(e.metadata.get('whale-code')).toEqual(['ERR_OVERLOADED']);
    expect(e.metadata.get('whale-field')).toEqual(['body']);
    expect(e.metadata.get('retry-after')).toEqual(['2']);
    expect(grpcError(new WhaleError('ERR_MODEL_NOT_FOUND', 'no model')).code).toBe(status.NOT_FOUND);
    const other = grpcError(new TypeError('boom'));
    expect(other).toMatchObject({ code: status.INTERNAL, details: 'internal error: boom' });
  });
});
