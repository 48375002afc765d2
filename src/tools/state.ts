import type { Json, NodeId } from '../raft/types.js';
import { canonicalJson } from '../kv/keys.js';

/**
 * What the tools know about a state: the snapshot-like header and the key/value pairs. A snapshot
 * file gives it directly; a data directory gives the state recovery would produce (newest good
 * snapshot plus the committed log replayed on top).
 */
export interface StateHeader {
  /** Last included index and its term. */
  index: number;
  term: number;
  config: NodeId[];
  /** Only for snapshot files: ISO time the file was written. */
  createdAt?: string | null;
  codec?: string;
  formatVersion?: number;
  rawSize?: number;
  compressedSize?: number;
}

export interface ToolState {
  /** The path as the user gave it. */
  source: string;
  kind: 'snapshot' | 'dir';
  header: StateHeader;
  pairs: Array<[Json, Json]>;
  /** Client de-duplication table when the state has one. */
  dedup: Json | null;
}

const RANK: Record<string, number> = { number: 0, string: 1, boolean: 2, object: 3 };

function rank(k: Json): number {
  if (k === null) return 3;
  if (Array.isArray(k)) return 4;
  const r = RANK[typeof k];
  return r === 3 ? 5 : (r ?? 6);
}

/** A total order on keys for stable listings: numbers, then strings, then the rest by JSON text. */
export function compareKeys(a: Json, b: Json): number {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  const ca = canonicalJson(a);
  const cb = canonicalJson(b);
  return ca < cb ? -1 : ca > cb ? 1 : 0;
}

/** Key text for people: `7`, `"a"`, `[1,2]`. Integer and string keys stay distinct (`1` vs `"1"`). */
export function showJson(v: Json, max = 60): string {
  const s = canonicalJson(v);
  return s.length > max ? s.slice(0, max - 1) + '…' : s;
}

/**
 * How many client-session origins a table holds (src/kv/sessions.ts: `{forwards: [...]}`, one per
 * forwarding process); an older form counts its entries. Null when there is no table.
 */
export function countSessions(s: Json | undefined | null): number | null {
  if (s === undefined || s === null) return null;
  if (Array.isArray(s)) return s.length;
  if (typeof s === 'object') {
    const fw = s['forwards'];
    if (Array.isArray(fw)) return fw.length;
    return Object.keys(s).length;
  }
  return 1;
}

/** Deep equality of two JSON values as the state knows them (object key order does not matter). */
export function sameJson(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i]!, b[i]!)) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k) || !sameJson(a[k]!, b[k]!)) return false;
  }
  return true;
}
