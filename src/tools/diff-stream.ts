/**
 * `diff` of two states streamed (src/tools/state-stream.ts). Side A is loaded as the node holds a
 * state (a KvStore, filled a chunk at a time: one copy of the state), side B is streamed against
 * it value against value (a key found is marked in place, so what is left unmarked was removed and
 * still holds A's value for --keys). The result is what `diffStates` gives (src/tools/diff.ts): the
 * same header, membership and session-table rules; values compare as JSON (object key order does
 * not matter, `1` and `"1"` differ).
 *
 * Two data directories whose snapshots are the same bytes (a follower holds the leader's file as
 * InstallSnapshot sent it; two copies of one directory) start from the same state: that snapshot is
 * read once, only the keys either committed log touches are compared, and no KvStore of the whole
 * state is built (sharedBaseDiff).
 */
import { KvLoad, KvStore } from '../kv/store.js';
import type { Json } from '../raft/types.js';
import { SnapshotReader, nodeFs, readAt, type FileSystem } from '../storage/index.js';
import { startProgress } from '../cli/progress.js';
import { diffHeaders, sessionsText, type DiffResult, type KeyChange, type KeyValue } from './diff.js';
import { PROGRESS_MIN_KEYS, guard } from './load.js';
import { KeySet } from './log-fold.js';
import { dirSessions, openDirBase, openStateStream, type DirBase, type StreamInfo } from './state-stream.js';
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
  const shared = sharedBaseDiff(a, b, opts);
  if (shared) return shared;
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
  return diffResult(
    { info: sa.info, sessions: sessionsA, keys: keysA },
    { info: sb.info, sessions: sessionsB, keys: keysB },
    { added: nAdded, removed: nRemoved, changed: nChanged, unchanged },
    opts.keys ? { added, removed, changed } : null,
  );
}

interface Side {
  info: StreamInfo;
  sessions: Json | null;
  keys: number;
}

/** The DiffResult of two sides, given the counts and (with --keys) the keys. */
function diffResult(
  sa: Side,
  sb: Side,
  counts: DiffResult['counts'],
  keys: { added: KeyValue[]; removed: KeyValue[]; changed: KeyChange[] } | null,
): { result: DiffResult; warnings: string[] } {
  const header = diffHeaders(headerState(sa.info, sa.sessions), headerState(sb.info, sb.sessions));
  const dedup = sa.sessions === null && sb.sessions === null ? null : { equal: sessionsText(sa.sessions) === sessionsText(sb.sessions), counts: true };
  const equal = counts.added === 0 && counts.removed === 0 && counts.changed === 0 && !header.some((x) => x.state) && (dedup === null || dedup.equal || !dedup.counts);
  const ma = [...sa.info.config].sort();
  const mb = [...sb.info.config].sort();
  const result: DiffResult = {
    a: { source: sa.info.source, kind: sa.info.kind, index: sa.info.index, term: sa.info.term, keys: sa.keys },
    b: { source: sb.info.source, kind: sb.info.kind, index: sb.info.index, term: sb.info.term, keys: sb.keys },
    equal,
    header,
    counts,
    membership: { equal: ma.join('\0') === mb.join('\0'), a: ma, b: mb },
    dedup,
  };
  if (keys) {
    const byKey = (x: { key: Json }, y: { key: Json }) => compareKeys(x.key, y.key);
    result.keys = { added: keys.added.sort(byKey), removed: keys.removed.sort(byKey), changed: keys.changed.sort(byKey) };
  }
  return { result, warnings: [...sa.info.warnings, ...sb.info.warnings] };
}

/** Bytes compared at a time by `sameBytes`. */
const COMPARE_PIECE = 1 << 20;

/** True when files `pa` (on `fa`) and `pb` (on `fb`) hold the same bytes. */
function sameBytes(fa: FileSystem, pa: string, fb: FileSystem, pb: string): boolean {
  const size = guard(() => fa.stat(pa).size, pa);
  if (guard(() => fb.stat(pb).size, pb) !== size) return false;
  const ba = Buffer.allocUnsafe(Math.min(COMPARE_PIECE, size));
  const bb = Buffer.allocUnsafe(ba.length);
  const da = guard(() => fa.open(pa, 'r'), pa);
  try {
    const db = guard(() => fb.open(pb, 'r'), pb);
    try {
      for (let at = 0; at < size; ) {
        const n = Math.min(ba.length, size - at);
        guard(() => readAt(fa, da, ba.subarray(0, n), at, pa), pa);
        guard(() => readAt(fb, db, bb.subarray(0, n), at, pb), pb);
        if (!ba.subarray(0, n).equals(bb.subarray(0, n))) return false;
        at += n;
      }
      return true;
    } finally {
      fb.close(db);
    }
  } finally {
    fa.close(da);
  }
}

/**
 * Two data directories whose snapshots are the same bytes: the snapshot read once (verified as it
 * streams, as every read of it is), both committed logs folded onto the keys they touch, and only
 * those keys compared: every other key holds the snapshot's value on both sides. Null when `a` and
 * `b` are not two such directories (the general path then reads both).
 */
export function sharedBaseDiff(a: string, b: string, opts: { keys?: boolean }): { result: DiffResult; warnings: string[] } | null {
  const isDir = (p: string): boolean => guard(() => nodeFs.stat(p), p).isDirectory();
  if (!isDir(a) || !isDir(b)) return null;
  const A: DirBase = openDirBase(a);
  const B: DirBase = openDirBase(b);
  if (A.snapPath === null || B.snapPath === null || A.snap!.index !== B.snap!.index || A.snap!.term !== B.snap!.term) return null;
  if (!sameBytes(A.fs, A.snapPath, B.fs, B.snapPath)) return null;
  const file = A.snapPath;
  // The snapshot's values of the keys either log touches (KvStore identity: `1` and `"1"` differ).
  const base = new KvStore();
  let pairs = 0;
  let touchedPairs = 0;
  let snapSessions: Json | null = null;
  const r = guard(() => SnapshotReader.open(file, { fs: A.fs }), file);
  const bar = startProgress('reading', A.snap!.keyCount >= PROGRESS_MIN_KEYS ? A.snap!.keyCount : 0);
  try {
    const it = r.chunks();
    for (;;) {
      const next = guard(() => it.next(), file);
      if (next.done) break;
      const { keys, values } = next.value;
      pairs += keys.length;
      bar.update(r.keysRead);
      const ha = A.fold.note(keys, values);
      const hb = B.fold.note(keys, values);
      if (!ha && !hb) continue;
      for (const i of ha ?? []) base.set(keys[i]!, values[i]!);
      for (const i of hb ?? []) base.set(keys[i]!, values[i]!);
      // The chunk's pairs touched by either log (a key touched by both counts once).
      touchedPairs += new Set([...(ha ?? []), ...(hb ?? [])]).size;
    }
    snapSessions = r.sessions ?? null;
  } finally {
    bar.stop();
    r.close();
  }
  const afterA = A.fold.apply(snapSessions ?? undefined);
  const afterB = B.fold.apply(snapSessions ?? undefined);
  const counts = { added: 0, removed: 0, changed: 0, unchanged: pairs - touchedPairs };
  const keys = opts.keys ? { added: [] as KeyValue[], removed: [] as KeyValue[], changed: [] as KeyChange[] } : null;
  let keysA = pairs - touchedPairs;
  let keysB = pairs - touchedPairs;
  const seen = new KeySet();
  const compare = (key: Json): void => {
    if (seen.has(key)) return;
    seen.add(key);
    // A key a log touched is in its store after the log if it exists then; any other key holds the snapshot's value.
    const va = A.fold.touched.has(key) ? afterA.get(key) : base.get(key);
    const vb = B.fold.touched.has(key) ? afterB.get(key) : base.get(key);
    if (va !== undefined) keysA++;
    if (vb !== undefined) keysB++;
    if (va === undefined && vb === undefined) return;
    if (va === undefined) {
      counts.added++;
      keys?.added.push({ key, value: vb! });
    } else if (vb === undefined) {
      counts.removed++;
      keys?.removed.push({ key, value: va });
    } else if (sameJson(va, vb)) {
      counts.unchanged++;
    } else {
      counts.changed++;
      keys?.changed.push({ key, a: va, b: vb });
    }
  };
  for (const s of [base, afterA, afterB]) for (const [key] of s.entries()) compare(key);
  return diffResult(
    { info: A.info, sessions: dirSessions(afterA, snapSessions), keys: keysA },
    { info: B.info, sessions: dirSessions(afterB, snapSessions), keys: keysB },
    counts,
    keys,
  );
}
