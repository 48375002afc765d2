/**
 * A state as a stream of pairs, for the tools that read every pair but keep none of them (dump,
 * hash): a snapshot file a chunk at a time (SnapshotReader), or the state a data directory would
 * recover, read-only and never repairing (its newest good snapshot plus the committed log),
 * without building that state in memory:
 *
 *   1. recovery without the snapshot's content gives the snapshot and the committed entries after it;
 *   2. the keys those entries touch are few: their values in the snapshot are read in a first pass
 *      over it, and the entries are applied to that small store (with the snapshot's client
 *      table, so forwarded requests are de-duplicated as the node does);
 *   3. a second pass streams the snapshot, giving each touched key its value after the log (the
 *      first pass noted where each one is, so the second looks no key up), then the keys the log
 *      created.
 *
 * Memory: one chunk of the snapshot, the touched keys, the log entries. Order: the snapshot's,
 * then the keys the log created, in the order it created them.
 */
import { KvStore } from '../kv/store.js';
import { canonicalJson } from '../kv/keys.js';
import type { Entry, Json, NodeId } from '../raft/types.js';
import { SnapshotReader, nodeFs, type FileSystem, type SnapshotHeader } from '../storage/index.js';
import { startProgress, type Progress } from '../cli/progress.js';
import { PROGRESS_MIN_KEYS, guard, isoTime, openReadOnly } from './load.js';
import { ToolError } from './errors.js';

export interface StreamInfo {
  /** The path as the user gave it. */
  source: string;
  kind: 'snapshot' | 'dir';
  /** The state's index and term (a directory: its commit index). */
  index: number;
  term: number;
  config: NodeId[];
  nodeId: NodeId | null;
  /** Pairs, when known before reading (a snapshot's header). */
  keyCount: number | null;
  /** A snapshot file's creation time (ISO). */
  createdAt: string | null;
  /** A snapshot file's header. */
  header: SnapshotHeader | null;
  warnings: string[];
}

export interface StateStream {
  info: StreamInfo;
  /** The pairs, a batch at a time (a batch is valid until the next one is asked for). Once only. */
  batches(): Generator<Array<[Json, Json]>>;
  /**
   * The same pairs in the same order as columns, `keys[i] -> values[i]` (no pair arrays: the cheap
   * way for a reader that looks at every pair). Valid until the next one. Once only, instead of `batches`.
   */
  columns(): Generator<Columns>;
  /** The client session table, once the pairs have ended (null when there is none). */
  sessions(): Json | null;
  /** Release files when the stream is not read to its end. */
  close(): void;
}

export interface Columns {
  keys: Json[];
  values: Json[];
}

/** Bits of the quick filter in front of a KeySet (a power of two). */
const FILTER_BITS = 1 << 16;

/**
 * A cheap hash of a number or string key, for the filter: a few code units and the length (a
 * key's full hash is what makes a lookup of a fresh string dear).
 */
function quick(k: number | string): number {
  if (typeof k === 'number') return (k | 0) ^ ((k / 4294967296) | 0);
  const n = k.length;
  if (n === 0) return 0x9e37;
  return Math.imul(n, 0x9e3779b1) ^ Math.imul(k.charCodeAt(n - 1), 0x85ebca6b) ^ Math.imul(k.charCodeAt(n >> 1), 0xc2b2ae35) ^ (k.charCodeAt(n - 2 < 0 ? 0 : n - 2) << 7) ^ k.charCodeAt(0);
}

/**
 * A set of keys with KvStore's identity (`1` and `"1"` differ, other keys by canonical JSON), with
 * a bit filter that answers "no" for most keys not in it without hashing them.
 */
class KeySet {
  private prim = new Set<number | string>();
  private other = new Set<string>();
  private filter = new Uint32Array(FILTER_BITS >>> 5);
  add(k: Json): void {
    if (typeof k === 'number' || typeof k === 'string') {
      this.prim.add(k);
      const b = quick(k) & (FILTER_BITS - 1);
      this.filter[b >>> 5]! |= 1 << (b & 31);
    } else this.other.add(canonicalJson(k));
  }
  has(k: Json): boolean {
    if (typeof k === 'number' || typeof k === 'string') {
      const b = quick(k) & (FILTER_BITS - 1);
      if ((this.filter[b >>> 5]! & (1 << (b & 31))) === 0) return false;
      return this.prim.has(k);
    }
    return this.other.size > 0 && this.other.has(canonicalJson(k));
  }
  get size(): number {
    return this.prim.size + this.other.size;
  }
}

/** The key of a logged command, when the entry is one (lin-kv read/write/cas). */
function keyOf(data: Json): { key: Json } | null {
  if (data === null || typeof data !== 'object' || Array.isArray(data) || !('key' in data)) return null;
  return { key: data['key'] ?? null };
}

/** Open a snapshot file or a data directory as a stream of pairs (over `fs`, default node:fs). */
export function openStateStream(p: string, opts: { fs?: FileSystem } = {}): StateStream {
  const fsys = opts.fs ?? nodeFs;
  const st = guard(() => fsys.stat(p), p);
  return st.isDirectory() ? dirStream(p, fsys) : fileStream(p, fsys);
}

function* zipped(cols: Generator<Columns>): Generator<Array<[Json, Json]>> {
  for (const { keys, values } of cols) {
    const out = new Array<[Json, Json]>(keys.length);
    for (let i = 0; i < keys.length; i++) out[i] = [keys[i]!, values[i]!];
    yield out;
  }
}

function fileStream(file: string, fsys: FileSystem): StateStream {
  const r = guard(() => SnapshotReader.open(file, { fs: fsys }), file);
  const h = r.header;
  let done = false;
  function* columns(): Generator<Columns> {
    const bar = startProgress('reading', h.keyCount >= PROGRESS_MIN_KEYS ? h.keyCount : 0);
    try {
      const it = r.chunks();
      for (;;) {
        const next = guard(() => it.next(), file);
        if (next.done) break;
        bar.update(r.keysRead);
        yield next.value;
      }
    } finally {
      bar.stop();
    }
    done = true;
  }
  return {
    info: {
      source: file,
      kind: 'snapshot',
      index: h.index,
      term: h.term,
      config: [...h.config],
      nodeId: h.nodeId,
      keyCount: h.keyCount,
      createdAt: isoTime(h.createdAt),
      header: h,
      warnings: [],
    },
    batches: () => zipped(columns()),
    columns,
    sessions: () => (done ? (r.sessions ?? null) : null),
    close: () => r.close(),
  };
}

function dirStream(dir: string, fsys: FileSystem): StateStream {
  const warnings: string[] = [];
  const dd = openReadOnly(dir, warnings, fsys);
  const rec = guard(() => dd.recover({ repair: false, loadContent: false }), dir);
  for (const w of rec.warnings) warnings.push(w.message);
  const commit = Math.min(rec.hardState.commit, rec.lastIndex);
  const snap: SnapshotHeader | null = rec.snapshot?.header ?? null;
  const snapPath = rec.snapshot?.path ?? null;
  const entries: Entry[] = rec.entries.filter((e) => e.index <= commit);
  let term = snap && commit === snap.index ? snap.term : 0;
  if (entries.length > 0 && entries[entries.length - 1]!.index === commit) term = entries[entries.length - 1]!.term;
  if (commit > 0 && term === 0 && !(snap && commit === snap.index)) {
    throw new ToolError('BAD_INDEX', dir, `entry ${commit} (the commit index) is not in the log`);
  }
  const config: NodeId[] = dd.meta.members ? [...dd.meta.members] : snap ? [...snap.config] : [];
  const touched = new KeySet();
  for (const e of entries) {
    const k = keyOf(e.data);
    if (k) touched.add(k.key);
  }
  let store: KvStore | null = null;
  let snapSessions: Json | null = null;
  let open: SnapshotReader | null = null;

  function* columns(): Generator<Columns> {
    // One bar for both passes over the snapshot (the first only when the log touches keys).
    const passes = snapPath !== null ? (touched.size > 0 ? 2 : 1) : 0;
    const perPass = snap?.keyCount ?? 0;
    const bar = startProgress('reading', perPass >= PROGRESS_MIN_KEYS ? perPass * passes : 0);
    try {
      yield* dirColumns(bar, perPass);
    } finally {
      bar.stop();
    }
  }

  function* dirColumns(bar: Progress, perPass: number): Generator<Columns> {
    // Pass 1: the snapshot's values of the keys the log touches, where they are (chunk number and
    // place in it), and its client table.
    const base: Array<[Json, Json]> = [];
    const at: number[] = [];
    let sessions: Json | undefined;
    if (snapPath !== null) {
      const r1 = guard(() => SnapshotReader.open(snapPath, { fs: dd.fs }), snapPath);
      open = r1;
      if (touched.size > 0) {
        const it = r1.chunks();
        for (let chunk = 0; ; chunk++) {
          const next = guard(() => it.next(), snapPath);
          if (next.done) break;
          const { keys, values } = next.value;
          for (let i = 0; i < keys.length; i++) {
            if (!touched.has(keys[i]!)) continue;
            base.push([keys[i]!, values[i]!]);
            at.push(chunk, i);
          }
          bar.update(r1.keysRead);
        }
        sessions = r1.sessions;
      } else {
        r1.close();
      }
    }
    // The committed log on that small store.
    const s = KvStore.fromEntries(base, sessions);
    for (const e of entries) s.applyEntry(e.data, e.index);
    store = s;
    // Pass 2: the snapshot again, the touched keys (at the places pass 1 found them) with their
    // values after the log.
    const emitted = new KeySet();
    if (snapPath !== null) {
      const r2 = guard(() => SnapshotReader.open(snapPath, { fs: dd.fs }), snapPath);
      open = r2;
      const it = r2.chunks();
      let p = 0;
      for (let chunk = 0; ; chunk++) {
        const next = guard(() => it.next(), snapPath);
        if (next.done) break;
        const { keys, values } = next.value;
        bar.update(touched.size > 0 ? perPass + r2.keysRead : r2.keysRead);
        for (; p < at.length && at[p] === chunk; p += 2) {
          const i = at[p + 1]!;
          const k = keys[i]!;
          values[i] = s.get(k) ?? values[i]!;
          emitted.add(k);
        }
        yield { keys, values };
      }
      snapSessions = r2.sessions ?? null;
      open = null;
    }
    // Keys the log created.
    const ck: Json[] = [];
    const cv: Json[] = [];
    for (const [k, v] of s.entries()) {
      if (emitted.has(k)) continue;
      ck.push(k);
      cv.push(v);
    }
    if (ck.length > 0) yield { keys: ck, values: cv };
  }

  return {
    info: { source: dir, kind: 'dir', index: commit, term, config, nodeId: dd.meta.nodeId, keyCount: null, createdAt: null, header: null, warnings },
    batches: () => zipped(columns()),
    columns,
    // As the node loads it and as the other tools report it (load.ts): the table the log rebuilt,
    // else the snapshot's value as it is.
    sessions: () => (store !== null && store.sessions.size > 0 ? store.sessions.toJson() : snapSessions),
    close: () => {
      (open as SnapshotReader | null)?.close();
    },
  };
}
