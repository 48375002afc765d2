import type { Json, NodeId } from '../raft/types.js';
import { canonicalJson } from '../kv/keys.js';
import { SessionTable } from '../kv/sessions.js';
import { compareKeys, type StateHeader, type ToolState } from './state.js';

export interface HeaderDifference {
  field: string;
  a: Json;
  b: Json;
  /**
   * True for fields that are part of the state (index, term): a difference there makes the
   * states different. Fields of the file (creation time, sizes, codec) are reported but do not
   * count. Membership is reported on its own (`DiffResult.membership`).
   */
  state: boolean;
}

export interface KeyValue {
  key: Json;
  value: Json;
}

export interface KeyChange {
  key: Json;
  a: Json;
  b: Json;
}

export interface DiffResult {
  a: { source: string; kind: 'snapshot' | 'dir'; index: number; term: number; keys: number };
  b: { source: string; kind: 'snapshot' | 'dir'; index: number; term: number; keys: number };
  equal: boolean;
  header: HeaderDifference[];
  counts: { added: number; removed: number; changed: number; unchanged: number };
  /**
   * The voting members of each side (sorted): a snapshot's configuration, a directory's recorded
   * members (else its snapshot's). Reported on its own and not counted in `equal`: the same state
   * restored with another membership (`restore --config`) is the same state.
   */
  membership: { equal: boolean; a: NodeId[]; b: NodeId[] };
  /**
   * null when neither side has a client session table. Tables compare as the node loads them (a
   * directory's is rebuilt by the replay exactly as the node does); `counts` is always true (kept
   * for readers of older output).
   */
  dedup: { equal: boolean; counts: boolean } | null;
  /** Present with `keys: true`: the keys themselves, sorted (numbers, strings, then the rest). */
  keys?: { added: KeyValue[]; removed: KeyValue[]; changed: KeyChange[] };
}

const STATE_FIELDS: Array<keyof StateHeader> = ['index', 'term'];
const FILE_FIELDS: Array<keyof StateHeader> = ['formatVersion', 'codec', 'createdAt', 'rawSize', 'compressedSize'];

function fieldJson(h: StateHeader, f: keyof StateHeader): Json {
  const v = h[f];
  if (v === undefined) return null;
  return v as Json;
}

/**
 * A client session table as the node loads it (src/kv/sessions.ts), in canonical text: what the
 * node would do with it, whatever form or key order the file has (a form it cannot read is no table).
 */
export function sessionsText(j: Json | null): string {
  const t = SessionTable.fromJson(j);
  return t.size === 0 ? '' : canonicalJson(t.toJson());
}

/** Header differences of two states; file fields only when both sides are snapshot files. */
export function diffHeaders(a: ToolState, b: ToolState): HeaderDifference[] {
  const out: HeaderDifference[] = [];
  for (const f of STATE_FIELDS) {
    const va = fieldJson(a.header, f);
    const vb = fieldJson(b.header, f);
    if (canonicalJson(va) !== canonicalJson(vb)) out.push({ field: f, a: va, b: vb, state: true });
  }
  if (a.kind === 'snapshot' && b.kind === 'snapshot') {
    for (const f of FILE_FIELDS) {
      const va = fieldJson(a.header, f);
      const vb = fieldJson(b.header, f);
      if (canonicalJson(va) !== canonicalJson(vb)) out.push({ field: f, a: va, b: vb, state: false });
    }
  }
  return out;
}

/**
 * Compare two states: header fields, then keys added (in b only), removed (in a only) and changed.
 * Keys compare by value with integer and string keys distinct; values by canonical JSON (object
 * key order does not matter). Pure: no I/O.
 */
export function diffStates(a: ToolState, b: ToolState, opts: { keys?: boolean } = {}): DiffResult {
  const left = new Map<string, [Json, Json]>();
  for (const p of a.pairs) left.set(canonicalJson(p[0]), p);
  const added: KeyValue[] = [];
  const changed: KeyChange[] = [];
  let unchanged = 0;
  let nAdded = 0;
  let nChanged = 0;
  const seen = new Set<string>();
  for (const [key, vb] of b.pairs) {
    const ck = canonicalJson(key);
    seen.add(ck);
    const pa = left.get(ck);
    if (!pa) {
      nAdded++;
      if (opts.keys) added.push({ key, value: vb });
    } else if (canonicalJson(pa[1]) !== canonicalJson(vb)) {
      nChanged++;
      if (opts.keys) changed.push({ key, a: pa[1], b: vb });
    } else unchanged++;
  }
  const removed: KeyValue[] = [];
  let nRemoved = 0;
  for (const [ck, [key, va]] of left) {
    if (seen.has(ck)) continue;
    nRemoved++;
    if (opts.keys) removed.push({ key, value: va });
  }
  const header = diffHeaders(a, b);
  const bothNull = a.dedup === null && b.dedup === null;
  const dedup = bothNull ? null : { equal: sessionsText(a.dedup) === sessionsText(b.dedup), counts: true };
  const equal =
    nAdded === 0 && nRemoved === 0 && nChanged === 0 && !header.some((h) => h.state) && (dedup === null || dedup.equal || !dedup.counts);
  const side = (s: ToolState) => ({ source: s.source, kind: s.kind, index: s.header.index, term: s.header.term, keys: s.pairs.length });
  const ma = [...a.header.config].sort();
  const mb = [...b.header.config].sort();
  const result: DiffResult = {
    a: side(a),
    b: side(b),
    equal,
    header,
    counts: { added: nAdded, removed: nRemoved, changed: nChanged, unchanged },
    membership: { equal: ma.join('\0') === mb.join('\0'), a: ma, b: mb },
    dedup,
  };
  if (opts.keys) {
    const byKey = (x: { key: Json }, y: { key: Json }) => compareKeys(x.key, y.key);
    result.keys = { added: added.sort(byKey), removed: removed.sort(byKey), changed: changed.sort(byKey) };
  }
  return result;
}
