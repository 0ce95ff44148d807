/**
 * A data source of the DataRequest service's responder (the seed's "balance module" seam): it answers one
 * request's query with bytes, which the responder claim-checks like an update blob.
 */
export interface DataReply {
  bytes: Uint8Array;
  /** How to read the bytes: text/csv, application/x-ndjson, application/x-npy, application/json, … */
  contentType: string;
  /** Rows or examples in the answer, when the source counts them. */
  rows?: number;
}

export interface DataFetchOptions {
  /** Aborted at the request's deadline or when the requester cancels it. */
  signal: AbortSignal;
  parameters: Record<string, unknown>;
}

export interface DataSource {
  /** The sourceType requests name (`files`, `postgres`, or the author's own). */
  readonly type: string;
  /** Bytes the query would return, when the source can tell cheaply (basis of the processing-time estimate). */
  sizeOf?(query: unknown): Promise<number | undefined>;
  fetch(query: unknown, o: DataFetchOptions): Promise<DataReply>;
  close?(): Promise<void>;
}

/** What DataResponded carries in `data` for a completed request: the claim-checked bytes, never the bytes. */
export interface DataAnswer {
  ref: { sha256: string; bytes: number; inline?: string };
  contentType: string;
  bytes: number;
  rows?: number;
  source: string;
  /** The responder's own time on it. */
  ms: number;
}
