/**
 * FeedbackAnalyzer: joins user feedback with the request it is about (model,
 * version, pipeline level, task, recorded when the request was routed),
 * aggregates it per model/version/level in tumbling windows (thumbs-up rate
 * with a Wilson interval, mean rating and quality with normal intervals,
 * correction count) and raises a QualityDrop when a window is significantly
 * worse than the previous one: one-sided p < alpha for the thumbs-up rate
 * (two-proportion z-test) or the rating (Welch z-test), with both windows
 * holding at least minSamples and the drop at least minDrop.
 */
import { WhaleError } from '../../../common/errors.js';
import { BoundedMap } from '../metrics/bounded-map.js';
import { feedbackQuality, parseFeedback, type FeedbackInput } from './feedback.js';
import { meanDropP, meanInterval, proportionDropP, wilson, type Interval } from './stats.js';

export interface RequestRoute {
  model: string;
  version?: string;
  level?: string;
  task?: string;
}

export interface JoinedFeedback extends FeedbackInput {
  route: RequestRoute;
  /** In [0, 1]: see feedbackQuality. */
  quality: number;
  /** Whether the route came from the request log (else from the feedback itself). */
  joined: boolean;
  receivedAt: number;
}

export interface QualityDrop {
  model: string;
  version: string;
  level: string;
  metric: 'thumbsUpRate' | 'rating';
  previous: number;
  current: number;
  pValue: number;
  windowStart: number;
}

interface Sums {
  up: number;
  thumbs: number;
  ratingSum: number;
  ratingSq: number;
  ratings: number;
  qualitySum: number;
  qualitySq: number;
  qualityN: number;
  corrections: number;
}

export interface FeedbackStats {
  thumbsUpRate: Interval;
  rating: Interval;
  quality: Interval;
  corrections: number;
}

interface Series {
  index: number;
  current: Sums;
  previous: Sums | undefined;
  alerted: Set<QualityDrop['metric']>;
}

export interface FeedbackAnalyzerOptions {
  windowMs?: number;
  /** Requests remembered for the join (default 100 000, oldest forgotten first), and their estimated bytes (default 32 MiB). */
  maxRequests?: number;
  maxRequestBytes?: number;
  /**
   * Whether this node serves the model (and version) a feedback names when it
   * is not joined to a routed request: feedback for others is refused
   * (ERR_MODEL_NOT_FOUND), so made-up names create no series. Default: any.
   */
  serves?: (model: string, version: string | undefined) => boolean;
  minSamples?: number;
  alpha?: number;
  /** Smallest drop worth an alert: in rate for thumbs, in stars for ratings (default 0.1). */
  minDrop?: number;
  now?: () => number;
}

const SEP = '\u0000';
/** model/version/level series kept (feedback may name models this node never routed). */
const MAX_SERIES = 1024;

export class FeedbackAnalyzer {
  /** Routed answers: who answered (the join), who received it and whether its one vote was given (HTTP feedback). */
  private readonly requests: BoundedMap<string, { route: RequestRoute; caller?: string; voted: boolean }>;
  private readonly series = new Map<string, Series>();
  private readonly feedbackListeners = new Set<(f: JoinedFeedback) => void>();
  private readonly dropListeners = new Set<(d: QualityDrop) => void>();
  private readonly windowMs: number;
  private readonly maxRequests: number;
  private readonly minSamples: number;
  private readonly alpha: number;
  private readonly minDrop: number;
  private readonly now: () => number;
  private readonly serves: FeedbackAnalyzerOptions['serves'];

  constructor(o: FeedbackAnalyzerOptions = {}) {
    this.windowMs = option(o.windowMs ?? 600_000, 'windowMs', (v) => v > 0);
    this.maxRequests = option(o.maxRequests ?? 100_000, 'maxRequests', (v) => Number.isInteger(v) && v > 0);
    this.minSamples = option(o.minSamples ?? 30, 'minSamples', (v) => Number.isInteger(v) && v > 1);
    this.alpha = option(o.alpha ?? 0.01, 'alpha', (v) => v > 0 && v < 1);
    this.minDrop = option(o.minDrop ?? 0.1, 'minDrop', (v) => v >= 0);
    this.now = o.now ?? Date.now;
    const maxBytes = option(o.maxRequestBytes ?? 32 * 1024 * 1024, 'maxRequestBytes', (v) => v > 0);
    this.requests = new BoundedMap(this.maxRequests, { maxBytes });
    this.serves = o.serves;
  }

  /** Remembers who answered a request, for the feedback that may follow. */
  recordRequest(requestId: string, route: RequestRoute): void {
    if (typeof requestId !== 'string' || requestId.length === 0)
      throw new WhaleError('ERR_INVALID_ARG', 'requestId: must be a non-empty string', { field: 'requestId' });
    this.requests.set(requestId, { route: { ...route }, voted: false });
  }

  /**
   * Binds a routed answer to the caller that received it (an API key's id, or 'anonymous'): feedback given
   * with `from` must then come from that caller, once (hardening round 2, item 8).
   */
  bindCaller(requestId: string, caller: string): void {
    const a = this.requests.get(requestId);
    if (a) a.caller = caller;
  }

  routeOf(requestId: string): RequestRoute | undefined {
    return this.requests.get(requestId)?.route;
  }

  /**
   * Validates, joins and counts one feedback. ERR_NOT_FOUND (field requestId)
   * when the request is unknown here and the feedback does not name the model.
   */
  submitFeedback(raw: unknown, from?: { caller: string }): JoinedFeedback {
    const f = parseFeedback(raw);
    const answer = this.requests.get(f.requestId);
    if (answer && from) {
      if (answer.caller !== undefined && answer.caller !== from.caller) {
        throw new WhaleError('ERR_FORBIDDEN', 'feedback.requestId: that answer was given to another caller', {
          field: 'feedback.requestId',
        });
      }
      if (answer.voted)
        throw new WhaleError('ERR_CONFLICT', 'feedback.requestId: this answer already has its feedback', {
          field: 'feedback.requestId',
        });
    }
    const known = answer?.route;
    if (!known && f.model === undefined) {
      throw new WhaleError(
        'ERR_NOT_FOUND',
        `feedback.requestId: no routed request '${f.requestId}' is known here (give model, version and level with the feedback)`,
        {
          field: 'feedback.requestId',
        },
      );
    }
    if (!known && this.serves && !this.serves(f.model!, f.version)) {
      const what = f.version === undefined ? `model '${f.model}'` : `model '${f.model}' version '${f.version}'`;
      throw new WhaleError('ERR_MODEL_NOT_FOUND', `feedback.model: this node serves no ${what}`, {
        field: 'feedback.model',
      });
    }
    const route: RequestRoute = known ?? {
      model: f.model!,
      ...(f.version === undefined ? {} : { version: f.version }),
      ...(f.level === undefined ? {} : { level: f.level }),
    };
    const joined: JoinedFeedback = {
      ...f,
      route,
      quality: feedbackQuality(f),
      joined: known !== undefined,
      receivedAt: this.now(),
    };
    if (answer && from) answer.voted = true;
    this.count(joined);
    for (const l of this.feedbackListeners) l(joined);
    return joined;
  }

  onFeedback(listener: (f: JoinedFeedback) => void): () => void {
    this.feedbackListeners.add(listener);
    return () => this.feedbackListeners.delete(listener);
  }

  onQualityDrop(listener: (d: QualityDrop) => void): () => void {
    this.dropListeners.add(listener);
    return () => this.dropListeners.delete(listener);
  }

  /** The current and previous windows' figures for a model (merged over versions/levels unless given). */
  stats(
    model: string,
    key: { version?: string; level?: string } = {},
  ): { current: FeedbackStats; previous: FeedbackStats } {
    const cur = emptySums();
    const prev = emptySums();
    for (const [id, s] of this.series) {
      const [m, v, l] = id.split(SEP);
      if (
        m !== model ||
        (key.version !== undefined && v !== key.version) ||
        (key.level !== undefined && l !== key.level)
      )
        continue;
      const { current, previous } = this.roll(s);
      add(cur, current);
      if (previous) add(prev, previous);
    }
    return { current: describe(cur), previous: describe(prev) };
  }

  /** Every model/version/level with feedback in the current window. */
  keys(): { model: string; version: string; level: string }[] {
    return [...this.series.keys()].map((id) => {
      const [model, version, level] = id.split(SEP) as [string, string, string];
      return { model, version, level };
    });
  }

  private count(f: JoinedFeedback): void {
    const id = [f.route.model, f.route.version ?? '', f.route.level ?? ''].join(SEP);
    let s = this.series.get(id);
    if (!s) {
      if (this.series.size >= MAX_SERIES) this.series.delete(this.series.keys().next().value!);
      s = { index: this.windowIndex(), current: emptySums(), previous: undefined, alerted: new Set() };
      this.series.set(id, s);
    }
    const { current } = this.roll(s);
    if (f.thumbs !== undefined) {
      current.thumbs++;
      if (f.thumbs === 'up') current.up++;
    }
    if (f.rating !== undefined) {
      current.ratings++;
      current.ratingSum += f.rating;
      current.ratingSq += f.rating * f.rating;
    }
    if (f.correction !== undefined) current.corrections++;
    current.qualityN++;
    current.qualitySum += f.quality;
    current.qualitySq += f.quality * f.quality;
    this.detect(id, s);
  }

  private detect(id: string, s: Series): void {
    const prev = s.previous;
    if (!prev) return;
    const cur = s.current;
    const [model, version, level] = id.split(SEP) as [string, string, string];
    const raise = (metric: QualityDrop['metric'], previous: number, current: number, pValue: number) => {
      if (s.alerted.has(metric) || pValue >= this.alpha || previous - current < this.minDrop) return;
      s.alerted.add(metric);
      const drop: QualityDrop = {
        model,
        version,
        level,
        metric,
        previous,
        current,
        pValue,
        windowStart: s.index * this.windowMs,
      };
      for (const l of this.dropListeners) l(drop);
    };
    if (prev.thumbs >= this.minSamples && cur.thumbs >= this.minSamples) {
      raise(
        'thumbsUpRate',
        prev.up / prev.thumbs,
        cur.up / cur.thumbs,
        proportionDropP(prev.up, prev.thumbs, cur.up, cur.thumbs),
      );
    }
    if (prev.ratings >= this.minSamples && cur.ratings >= this.minSamples) {
      const a = { sum: prev.ratingSum, sumSq: prev.ratingSq, n: prev.ratings };
      const b = { sum: cur.ratingSum, sumSq: cur.ratingSq, n: cur.ratings };
      raise('rating', a.sum / a.n, b.sum / b.n, meanDropP(a, b));
    }
  }

  /** Moves a series to the current window (the closing one becomes `previous`). */
  private roll(s: Series): Series {
    const index = this.windowIndex();
    if (index !== s.index) {
      s.previous = index === s.index + 1 ? s.current : undefined;
      s.current = emptySums();
      s.index = index;
      s.alerted.clear();
    }
    return s;
  }

  private windowIndex(): number {
    return Math.floor(this.now() / this.windowMs);
  }
}

function emptySums(): Sums {
  return {
    up: 0,
    thumbs: 0,
    ratingSum: 0,
    ratingSq: 0,
    ratings: 0,
    qualitySum: 0,
    qualitySq: 0,
    qualityN: 0,
    corrections: 0,
  };
}

function add(into: Sums, s: Sums): void {
  for (const k of Object.keys(into) as (keyof Sums)[]) into[k] += s[k];
}

function describe(s: Sums): FeedbackStats {
  return {
    thumbsUpRate: wilson(s.up, s.thumbs),
    rating: meanInterval(s.ratingSum, s.ratingSq, s.ratings),
    quality: meanInterval(s.qualitySum, s.qualitySq, s.qualityN),
    corrections: s.corrections,
  };
}

function option(v: number, name: string, ok: (v: number) => boolean): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v))
    throw new WhaleError('ERR_INVALID_OPTION', `options.${name}: out of range (${String(v)})`, {
      field: `options.${name}`,
    });
  return v;
}
