/**
 * Personal data inside strings: e-mail addresses (internationalised too),
 * MAC, IPv6 and IPv4 addresses, phone numbers. Each detector finds candidates
 * with a pattern and then decides from the candidate's shape and the text
 * before it, so that decimals (`3.14159265358979`), dates (`2024-01-15`),
 * grouped thousands (`1 234 567`) and versions (`v1.2.3.4`, `Chrome/1.2.3.4`)
 * stay as they are.
 */
import { isIPv4, isIPv6 } from 'node:net';

export type DetectorName = 'email' | 'mac' | 'ipv6' | 'ipv4' | 'phone';

export interface ValueContext {
  /** The value sits under a version-like key (`version`, `appVersion`): dotted quads are versions. */
  versionKey: boolean;
}

export interface CustomDetector {
  /** Matches what to replace; made global if it is not. */
  pattern: RegExp;
  replacement: string;
}

export interface ValueRules {
  enabled: ReadonlySet<DetectorName>;
  /** Detected strings kept as they are (an exact string or a pattern the whole match satisfies). */
  allowValues: ReadonlyArray<string | RegExp>;
  custom: readonly CustomDetector[];
}

export const ALL_DETECTORS: readonly DetectorName[] = ['email', 'mac', 'ipv6', 'ipv4', 'phone'];

const W = String.raw`\p{L}\p{M}\p{N}`;
const EMAIL = new RegExp(
  String.raw`(?<![${W}._%+-])[${W}_%+-]+(?:\.[${W}_%+-]+)*@(?:[${W}](?:[${W}-]*[${W}])?\.)+(?:xn--[a-z0-9-]+|[\p{L}\p{M}]{2,})(?![${W}])`,
  'gu',
);
const MAC =
  /(?<![\w:-])[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}(?![\w:-])|(?<![\w.])[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}(?![\w.])/g;
const IPV6 =
  /(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{0,4})(?:%[\w.]+)?(?![\w:]|\.\d)/g;
const IPV4 = /(?<![\w.@])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)/g;
const PHONE = /(?<![\w.,+-])\+?(?:\(\d{1,4}\)\s?)?\d[\d\s().-]{5,}\d(?![\w:/]|[.,]\d)/g;

/** Words before a dotted quad that make it a version, not an address. */
const VERSION_CUE =
  /(?:\b(?:v|ver|version|release|build|rev|revision|firmware|fw|sdk|api)\s*[:=#]?\s*|[A-Za-z0-9]\/)$/i;
/** Words before digits that make them a phone number. */
const PHONE_CUE =
  /\b(?:tel|telephone|phone|ph|call|mobile|mob|cell|fax|whatsapp|sms|text|contact|reach|dial)\b[^\d\n]{0,12}$/i;
const DATE = /^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})$/;
const DECIMAL = /^-?\d+[.,]\d+$/;
const THOUSANDS = /^\d{1,3}(?:([ .,\u00a0])\d{3})(?:\1\d{3})*$/;

export function redactString(s: string, ctx: ValueContext, rules: ValueRules): string {
  let out = s;
  const on = (d: DetectorName) => rules.enabled.has(d);
  const keep = (m: string) => rules.allowValues.some((a) => (typeof a === 'string' ? a === m : fullMatch(a, m)));
  if (on('email')) out = out.replace(EMAIL, (m) => (keep(m) ? m : '[email]'));
  if (on('mac')) out = out.replace(MAC, (m) => (keep(m) ? m : '[mac]'));
  if (on('ipv6'))
    out = out.replace(IPV6, (m) => (!keep(m) && /[0-9A-Fa-f]/.test(m) && isIPv6(m.replace(/%.*$/, '')) ? '[ip]' : m));
  if (on('ipv4') && !ctx.versionKey) {
    out = out.replace(IPV4, (m, offset: number, whole: string) =>
      !keep(m) && isIPv4(m) && !VERSION_CUE.test(whole.slice(Math.max(0, offset - 24), offset)) ? '[ip]' : m,
    );
  }
  if (on('phone')) {
    out = out.replace(PHONE, (m, offset: number, whole: string) =>
      !keep(m) && isPhone(m.trim(), whole.slice(Math.max(0, offset - 32), offset)) ? m.replace(m.trim(), '[phone]') : m,
    );
  }
  for (const c of rules.custom) out = out.replace(c.pattern, (m) => (keep(m) ? m : c.replacement));
  return out;
}

/** Whether any detector would change s (used on object keys: an e-mail as a key drops the entry). */
export function containsPersonalData(s: string, rules: ValueRules): boolean {
  return redactString(s, { versionKey: false }, rules) !== s;
}

function isPhone(c: string, before: string): boolean {
  const digits = c.replace(/\D/g, '');
  if (digits.length < 7 || digits.length > 15) return false;
  if (DECIMAL.test(c) || DATE.test(c) || THOUSANDS.test(c)) return false;
  if (c.startsWith('+')) return digits.length >= 8;
  if (PHONE_CUE.test(before)) return true;
  if (/^\(\d{2,4}\)\s?\d{3,4}[\s.-]?\d{3,4}$/.test(c)) return true; // (555) 123-4567
  const seps = new Set(c.replace(/[\d()]/g, ''));
  if (seps.size !== 1 || digits.length < 9) return false;
  const groups = c.split(/[\s.-]/);
  if (groups.length < 3 || !groups.slice(1).every((g) => g.length >= 2 && g.length <= 4) || groups[0]!.length > 4)
    return false;
  // Space-grouped digits are lists as often as phone numbers: only the common national shapes count.
  if (seps.has(' ')) return groups[0]!.startsWith('0') || /^\d{3} \d{3} \d{4}$/.test(c);
  return true;
}

function fullMatch(p: RegExp, s: string): boolean {
  const m = new RegExp(p.source, p.flags.replace('g', '')).exec(s);
  return m !== null && m.index === 0 && m[0].length === s.length;
}
