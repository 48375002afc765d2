/**
 * `diff` of two states streamed (src/tools/state-stream.ts): neither side is built in memory.
 * Side A is read once into a map from each key to its value's identity (the number, the short
 * canonical JSON or a 128-bit digest of it), side B is streamed against that map (a key found is
 * marked, so what is left unmarked was removed), and with --keys side A is read a second time for the
 * values of the keys removed or changed. The result is what `diffStates` gives (src/tools/diff.ts):
 * the same header, membership and session-table rules.
 */
import { canonicalJson } from '../kv/keys.js';
import type { Json } from '../raft/types.js';
import { diffHeaders, sessionsText, type DiffResult, type KeyChange, type KeyValue } from './diff.js';
import { bytes as utf8Bytes, encode as encodeUtf8, murmur3x86_128 } from './hash.js';
import { openStateStream, type StreamInfo } from './state-stream.js';
import { compareKeys, type ToolState } from './state.js';

const h = new Uint32Array(4);

/**
 * A value's identity for comparing, small and flat (side A's map holds one per key): a number
 * itself (0 and -0 alike, as canonical JSON has them); else its canonical JSON when it is at most
 * 12 characters (V8 keeps strings that short flat); else a 128-bit digest of the canonical JSON as
 * 9 UTF-16 units, the first a lone surrogate, which canonical JSON never holds (JSON.stringify
 * escapes one), so a digest never equals a short canonical text. Different types never meet: a
 * number against a string is unequal.
 */
function valueId(v: Json): number | string {
  if (typeof v === 'number') return v;
  const c = canonicalJson(v);
  if (c.length <= 12) return c;
  const n = encodeUtf8(c);
  murmur3x86_128(utf8Bytes, n, h);
  return String.fromCharCode(0xdfff, h[0]! & 0xffff, h[0]! >>> 16, h[1]! & 0xffff, h[1]! >>> 16, h[2]! & 0xffff, h[2]! >>> 16, h[3]! & 0xffff, h[3]! >>> 16);
}

/** A map with KvStore's key identity: numbers and strings natively (`1` and `"1"` apart), other keys by canonical JSON. */
class KeyMap<V> {
  private prim = new Map<number | string, V>();
  private other = new Map<string, V>();
  get(k: Json): V | undefined {
    return typeof k === 'number' || typeof k === 'string' ? this.prim.get(k) : this.other.get(canonicalJson(k));
  }
  set(k: Json, v: V): void {
    if (typeof k === 'number' || typeof k === 'string') this.prim.set(k, v);
    else this.other.set(canonicalJson(k), v);
  }
}

/** Marks a key of side A found in side B. */
const SEEN = '\u0000seen';

/** The ToolState fields diffHeaders reads (no pairs). */
function headerState(info: StreamInfo, sessions: Json | null): ToolState {
  const hd = info.header;
  return {
    source: info.source,
    kind: info.kind,
    header: hd
      ? {
          index: hd.index,
          term: hd.term,
          config: [...hd.config],
          createdAt: info.createdAt,
          codec: hd.codec,
          formatVersion: hd.formatVersion,
          rawSize: hd.rawSize,
          compressedSize: hd.compressedSize,
        }
      : { index: info.index, term: info.term, config: [...info.config] },
    pairs: [],
    dedup: sessions,
  };
}

export function streamDiff(a: string, b: string, opts: { keys?: boolean } = {}): { result: DiffResult; warnings: string[] } {
  const sa = openStateStream(a);
  const left = new KeyMap<number | string>();
  let keysA = 0;
  try {
    for (const { keys, values } of sa.columns()) {
      for (let i = 0; i < keys.length; i++) left.set(keys[i]!, valueId(values[i]!));
      keysA += keys.length;
    }
  } finally {
    sa.close();
  }
  const sessionsA = sa.sessions();
  const sb = openStateStream(b);
  const added: KeyValue[] = [];
  const changedB = new KeyMap<{ key: Json; b: Json }>();
  let nAdded = 0;
  let nChanged = 0;
  let unchanged = 0;
  let keysB = 0;
  let found = 0;
  try {
    for (const { keys, values } of sb.columns()) {
      keysB += keys.length;
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        const vb = values[i]!;
        const id = left.get(key);
        if (id === undefined) {
          nAdded++;
          if (opts.keys) added.push({ key, value: vb });
          continue;
        }
        found++;
        left.set(key, SEEN); // a write in place: no rehash, as a delete from a large map would cause
        if (id !== valueId(vb)) {
          nChanged++;
          if (opts.keys) changedB.set(key, { key, b: vb });
        } else unchanged++;
      }
    }
  } finally {
    sb.close();
  }
  const sessionsB = sb.sessions();
  const nRemoved = keysA - found;
  const removed: KeyValue[] = [];
  const changed: KeyChange[] = [];
  if (opts.keys && (nRemoved > 0 || nChanged > 0)) {
    // Side A again, for the values of the keys removed and changed.
    const again = openStateStream(a);
    try {
      for (const { keys, values } of again.columns()) {
        for (let i = 0; i < keys.length; i++) {
          const key = keys[i]!;
          const va = values[i]!;
          if (left.get(key) !== SEEN) removed.push({ key, value: va });
          else {
            const c = changedB.get(key);
            if (c) changed.push({ key: c.key, a: va, b: c.b });
          }
        }
      }
    } finally {
      again.close();
    }
  }
  const ta = headerState(sa.info, sessionsA);
  const tb = headerState(sb.info, sessionsB);
  const header = diffHeaders(ta, tb);
  const dedup = sessionsA === null && sessionsB === null ? null : { equal: sessionsText(sessionsA) === sessionsText(sessionsB), counts: true };
  const equal = nAdded === 0 && nRemoved === 0 && nChanged === 0 && !header.some((x) => x.state) && (dedup === null || dedup.equal || !dedup.counts);
  const ma = [...sa.info.config].sort();
  const mb = [...sb.info.config].sort();
  const result: DiffResult = {
    a: { source: a, kind: sa.info.kind, index: sa.info.index, term: sa.info.term, keys: keysA },
    b: { source: b, kind: sb.info.kind, index: sb.info.index, term: sb.info.term, keys: keysB },
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
  return { result, warnings: [...sa.info.warnings, ...sb.info.warnings] };
}
