/**
 * `diff` of two states streamed (src/tools/state-stream.ts). Side A is loaded as the node holds a
 * state (a KvStore, filled a chunk at a time: one copy of the state), side B is streamed against
 * it value against value (a key found is marked in place, so what is left unmarked was removed and
 * still holds A's value for --keys). The result is what `diffStates` gives (src/tools/diff.ts): the
 * same header, membership and session-table rules; values compare as JSON (object key order does
 * not matter, `1` and `"1"` differ).
 */
import { KvLoad, KvStore } from '../kv/store.js';
import type { Json } from '../raft/types.js';
import { diffHeaders, sessionsText, type DiffResult, type KeyChange, type KeyValue } from './diff.js';
import { openStateStream, type StreamInfo } from './state-stream.js';
import { compareKeys, sameJson, type ToolState } from './state.js';

/** Put in place of side A's value once B has the key. */
const SEEN: Json = Object.freeze({ seen: true }) as Json;

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
  // Side A as the node holds a state (a KvStore, loaded a chunk at a time as the node loads one):
  // one copy of it, and B compared value against value, with no third pass for --keys.
  const sa = openStateStream(a, { order: 'any' });
  const load = new KvLoad();
  let keysA = 0;
  try {
    for (const { keys, values } of sa.columns()) {
      load.add(keys, values);
      keysA += keys.length;
    }
  } finally {
    sa.close();
  }
  const sessionsA = sa.sessions();
  const left = new KvStore();
  left.replace(load);
  const sb = openStateStream(b, { order: 'any' });
  const added: KeyValue[] = [];
  const changed: KeyChange[] = [];
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
        const va = left.get(key);
        if (va === undefined) {
          nAdded++;
          if (opts.keys) added.push({ key, value: vb });
          continue;
        }
        found++;
        if (va === SEEN) {
          nChanged++; // a key B holds twice
          continue;
        }
        left.set(key, SEEN); // a write in place: no rehash, as a delete from a large map would cause
        if (!sameJson(va, vb)) {
          nChanged++;
          if (opts.keys) changed.push({ key, a: va, b: vb });
        } else unchanged++;
      }
    }
  } finally {
    sb.close();
  }
  const sessionsB = sb.sessions();
  const nRemoved = keysA - found;
  const removed: KeyValue[] = [];
  if (opts.keys && nRemoved > 0) {
    // What B did not mark still holds A's value.
    for (const [key, va] of left.entries()) if (va !== SEEN) removed.push({ key, value: va });
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
