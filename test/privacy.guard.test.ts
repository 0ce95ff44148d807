// The privacy guard of anonymous sharing: realistic records and exactly what must come out.
import { describe, expect, it } from 'vitest';

import { createPrivacyGuard, normalizeKey, privacyGuard } from '../src/services/privacy/index.js';
import { expectWhaleError } from './helpers.js';

const table: Array<[string, unknown, unknown]> = [
  ['the contract example', { note: 'ask bob@example.com', userId: 'u1', w: [3] }, { note: 'ask [email]', w: [3] }],
  [
    'identifier keys in any case and separator style',
    {
      'user-id': 1,
      'user.id': 2,
      uid: 3,
      username: 'a',
      userName: 'b',
      customerId: 'c',
      accountId: 'd',
      fullName: 'e',
      full_name: 'f',
      displayName: 'g',
      surname: 'h',
      password: 'i',
      token: 'j',
      apiKey: 'k',
      mac: 'l',
      street: 'm',
      session: 'n',
      tel: 'o',
      latitude: 48.85,
      longitude: 2.35,
      'E-Mail': 'p',
      billingEmail: 'q',
      csrfToken: 'r',
      score: 0.93,
    },
    { score: 0.93 },
  ],
  [
    'a nested user loses its id, keeps its data',
    { user: { id: 'u-17', plan: 'pro', preferences: { theme: 'dark' } }, event: 'click' },
    { user: { plan: 'pro', preferences: { theme: 'dark' } }, event: 'click' },
  ],
  [
    'people in arrays',
    {
      users: [
        { id: 1, score: 3 },
        { uuid: 'x', score: 5 },
      ],
    },
    { users: [{ score: 3 }, { score: 5 }] },
  ],
  ['a person as a plain value', { owner: 'alice', account: 12345, model: 'resnet-50' }, { model: 'resnet-50' }],
  [
    'e-mail addresses as keys',
    { votes: { 'alice@example.com': 3, 'bob@example.org': 1 }, total: 4 },
    { votes: {}, total: 4 },
  ],
  [
    'internationalised e-mail addresses',
    { text: 'Schreib an jürgen.müller@bücher.de oder 用户@例子.广告, или почта@пример.рф.' },
    { text: 'Schreib an [email] oder [email], или [email].' },
  ],
  [
    'IPv6 and IPv4 addresses, but not times',
    { log: 'login from 2001:db8::8a2e:370:7334, then ::1 and 10.0.0.7:8080 at 10:30:15' },
    { log: 'login from [ip], then [ip] and [ip]:8080 at 10:30:15' },
  ],
  [
    'dotted quads that are versions',
    {
      msg: 'agent v1.2.3.4 (version 10.0.0.1) on Chrome/120.0.0.1 from 192.168.1.20',
      version: '1.2.3.4',
      appVersion: '4.3.2.1',
    },
    {
      msg: 'agent v1.2.3.4 (version 10.0.0.1) on Chrome/120.0.0.1 from [ip]',
      version: '1.2.3.4',
      appVersion: '4.3.2.1',
    },
  ],
  [
    'numbers and dates are not phone numbers',
    {
      pi: '3.14159265358979',
      p: '0.123456789',
      day: '2024-01-15',
      when: '15.01.2024',
      at: '2024-01-15 10:30:00',
      iso: '2024-01-15T10:30:00Z',
      count: '1 234 567',
      ts: '1705312200000',
      range: 'rows 1000000-2000000',
      list: '10 20 30 40 50',
    },
    {
      pi: '3.14159265358979',
      p: '0.123456789',
      day: '2024-01-15',
      when: '15.01.2024',
      at: '2024-01-15 10:30:00',
      iso: '2024-01-15T10:30:00Z',
      count: '1 234 567',
      ts: '1705312200000',
      range: 'rows 1000000-2000000',
      list: '10 20 30 40 50',
    },
  ],
  [
    'phone numbers',
    {
      note: 'Call me at +1 (555) 123-4567 or 555-123-4567; office: 01 23 45 67 89',
      support: 'tel 5551234567',
      us: '(555) 123-4567',
    },
    { note: 'Call me at [phone] or [phone]; office: [phone]', support: 'tel [phone]', us: '[phone]' },
  ],
  [
    'MAC addresses in text',
    { seen: 'device 00:1A:2b:3C:4d:5E and 001a.2b3c.4d5e' },
    { seen: 'device [mac] and [mac]' },
  ],
  [
    'ordinary ML data is left alone',
    {
      modelName: 'bert-base',
      maxTokens: 512,
      tokenCount: 40,
      learningRate: 0.001,
      layers: [{ units: 128 }],
      note: 'accuracy 0.9123456',
    },
    {
      modelName: 'bert-base',
      maxTokens: 512,
      tokenCount: 40,
      learningRate: 0.001,
      layers: [{ units: 128 }],
      note: 'accuracy 0.9123456',
    },
  ],
];

describe('privacyGuard on realistic records', () => {
  it.each(table)('%s', (_name, input, expected) => {
    expect(privacyGuard(input)).toEqual(expected);
  });

  it('keeps Dates, Maps, Sets and typed arrays (copies, guarded inside)', () => {
    const w = new Float32Array([1, 2]);
    const out = privacyGuard({
      when: new Date(0),
      tags: new Set(['a', 'mail bob@x.io']),
      byKey: new Map<unknown, unknown>([
        ['userId', 'u1'],
        ['score', 2],
        [7, 'call +44 20 7946 0958'],
      ]),
      w,
    }) as { when: Date; tags: Set<string>; byKey: Map<unknown, unknown>; w: Float32Array };
    expect(out.when).toBeInstanceOf(Date);
    expect(out.when.getTime()).toBe(0);
    expect(out.tags).toEqual(new Set(['a', 'mail [email]']));
    expect(out.byKey).toEqual(
      new Map<unknown, unknown>([
        ['score', 2],
        [7, 'call [phone]'],
      ]),
    );
    expect(out.w).toEqual(w);
    expect(out.w).not.toBe(w);
  });

  it('does not change its input', () => {
    const input = { userId: 'u1', note: 'bob@example.com', nested: { token: 't' } };
    const copy = structuredClone(input);
    privacyGuard(input);
    expect(input).toEqual(copy);
  });

  it('refuses circular, too deep or non-data input with a typed error, not a stack overflow', async () => {
    const a: Record<string, unknown> = { x: 1 };
    a.self = a;
    await expectWhaleError(() => privacyGuard(a), 'ERR_INVALID_ARG', 'data.self');
    let deep: unknown = 'leaf';
    for (let i = 0; i < 100_000; i++) deep = { d: deep };
    const e = await expectWhaleError(() => privacyGuard(deep), 'ERR_INVALID_ARG');
    expect(e.message).toMatch(/deeper than 100/);
    let deepArray: unknown = [];
    for (let i = 0; i < 100_000; i++) deepArray = [deepArray];
    await expectWhaleError(() => privacyGuard(deepArray), 'ERR_INVALID_ARG');
    await expectWhaleError(() => privacyGuard({ f: () => 1 }), 'ERR_INVALID_ARG', 'data.f');
    await expectWhaleError(() => privacyGuard({ r: new (class Secretive {})() }), 'ERR_INVALID_ARG', 'data.r');
    // A shared (not circular) object is fine, and the guard still works after an error.
    const shared = { k: 1 };
    expect(privacyGuard({ a: shared, b: shared })).toEqual({ a: { k: 1 }, b: { k: 1 } });
  });

  it('is configurable: allow and deny keys, detectors on/off, allowed values, custom detectors', () => {
    const guard = createPrivacyGuard({
      allowKeys: ['name'],
      denyKeys: ['projectCode', /^internal/i],
      detectors: { phone: false },
      allowValues: ['support@whale.example'],
      customDetectors: [{ pattern: /\bEMP-\d{4}\b/, replacement: '[employee]' }],
    });
    expect(
      guard({
        name: 'layer-1',
        project_code: 'X',
        internalNote: 'n',
        text: 'call 555-123-4567, mail support@whale.example or eve@evil.example, ask EMP-1234',
      }),
    ).toEqual({ name: 'layer-1', text: 'call 555-123-4567, mail support@whale.example or [email], ask [employee]' });
  });

  it('normalises keys for case and separators', () => {
    expect(['user-id', 'user.id', 'User_ID', 'userId', 'USER ID'].map(normalizeKey)).toEqual(Array(5).fill('userid'));
  });

  it('rejects bad options with a typed error naming the option', async () => {
    await expectWhaleError(
      () => createPrivacyGuard({ detectors: { fax: true } as never }),
      'ERR_INVALID_OPTION',
      'options.detectors.fax',
    );
    await expectWhaleError(
      () => createPrivacyGuard({ allowKeys: [3 as never] }),
      'ERR_INVALID_OPTION',
      'options.allowKeys[0]',
    );
    await expectWhaleError(() => createPrivacyGuard({ maxDepth: 1e9 }), 'ERR_INVALID_OPTION', 'options.maxDepth');
  });
});
