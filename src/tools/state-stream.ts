/**
 * A state as a stream of pairs, for the tools that read every pair but keep none of them (dump,
 * hash, diff's second side): a snapshot file a chunk at a time (SnapshotReader), or the state a
 * data directory would recover, read-only and never repairing (its newest good snapshot plus the
 * committed log), without building that state in memory. The log is folded onto the few keys it
 * touches (src/tools/log-fold.ts):
 *
 *   order 'snapshot' (dump): a first pass over the snapshot reads the touched keys' values, the log
 *     is applied to them, and a second pass streams the snapshot with each touched key's value
 *     after the log at its place (the first pass noted where), then the keys the log created;
 *   order 'any' (hash, diff): one pass, the pairs the log does not touch as they come, then every
 *     key the log touched or created.
 *
 * Memory: one chunk of the snapshot, the touched keys, the log entries.
 */
import type { KvStore } from '../kv/store.js';
import type { Entry, Json, NodeId } from '../raft/types.js';
import { SnapshotReader, nodeFs, type FileSystem, type SnapshotHeader } from '../storage/index.js';
import { startProgress, type Progress } from '../cli/progress.js';
import { PROGRESS_MIN_KEYS, guard, isoTime, openReadOnly, sessionsAfter } from './load.js';
import { ToolError } from './errors.js';
import { KeySet, LogFold, pairsOutside } from './log-fold.js';

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

/**
 * How a directory's pairs may come: `'snapshot'` (the default) in the snapshot's order, each key
 * the log touched at its place with its value after the log (two passes over the snapshot when the
 * log touches keys); `'any'` for a reader that does not care (hash, diff): one pass, the keys the
 * log touched or created at the end.
 */
export type StreamOrder = 'snapshot' | 'any';

/** Open a snapshot file or a data directory as a stream of pairs (over `fs`, default node:fs). */
export function openStateStream(p: string, opts: { fs?: FileSystem; order?: StreamOrder } = {}): StateStream {
  const fsys = opts.fs ?? nodeFs;
  const st = guard(() => fsys.stat(p), p);
  return st.isDirectory() ? dirStream(p, fsys, opts.order ?? 'snapshot') : fileStream(p, fsys);
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

/**
 * A data directory's state as the tools read it, before any pair is read: its newest good snapshot
 * (found read-only, never repairing) and its committed log after it, folded onto the keys it touches.
 */
export interface DirBase {
  info: StreamInfo;
  /** The file system the directory is read through. */
  fs: FileSystem;
  /** The snapshot the state starts from (null: none, the log from index 1). */
  snapPath: string | null;
  snap: SnapshotHeader | null;
  /** The committed entries after the snapshot. */
  fold: LogFold;
}

export function openDirBase(dir: string, fsys: FileSystem = nodeFs): DirBase {
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
  return {
    info: { source: dir, kind: 'dir', index: commit, term, config, nodeId: dd.meta.nodeId, keyCount: null, createdAt: null, header: null, warnings },
    fs: dd.fs,
    snapPath,
    snap,
    fold: new LogFold(entries, commit),
  };
}

/** The client session table of a directory's state as the node loads it and the other tools report it (load.ts): the table the log rebuilt, else the snapshot's. */
export function dirSessions(afterLog: KvStore | null, snapSessions: Json | null): Json | null {
  return afterLog !== null ? sessionsAfter(afterLog, snapSessions ?? undefined) : snapSessions;
}

function dirStream(dir: string, fsys: FileSystem, order: StreamOrder): StateStream {
  const base = openDirBase(dir, fsys);
  const { fold, snapPath, snap } = base;
  let store: KvStore | null = null;
  let snapSessions: Json | null = null;
  let open: SnapshotReader | null = null;
  const openSnap = (p: string): SnapshotReader => {
    const r = guard(() => SnapshotReader.open(p, { fs: base.fs }), p);
    open = r;
    return r;
  };

  function* columns(): Generator<Columns> {
    // One bar for every pass over the snapshot (two when the log touches keys and the order is the snapshot's).
    const passes = snapPath !== null ? (fold.touchesKeys && order === 'snapshot' ? 2 : 1) : 0;
    const perPass = snap?.keyCount ?? 0;
    const bar = startProgress('reading', perPass >= PROGRESS_MIN_KEYS ? perPass * passes : 0);
    try {
      yield* order === 'any' ? onePass(bar) : dirColumns(bar, perPass);
    } finally {
      bar.stop();
    }
  }

  /** The snapshot once: pairs the log does not touch as they come, then every key the log touched or created. */
  function* onePass(bar: Progress): Generator<Columns> {
    let sessions: Json | undefined;
    if (snapPath !== null) {
      const r = openSnap(snapPath);
      const it = r.chunks();
      for (;;) {
        const next = guard(() => it.next(), snapPath);
        if (next.done) break;
        const { keys, values } = next.value;
        bar.update(r.keysRead);
        const hit = fold.note(keys, values);
        if (!hit) {
          yield { keys, values };
          continue;
        }
        // The chunk's arrays are ours (decoded for this pass): the touched pairs are squeezed out in place.
        let w = hit[0]!;
        for (let i = w + 1, h = 1; i < keys.length; i++) {
          if (h < hit.length && hit[h] === i) {
            h++;
            continue;
          }
          keys[w] = keys[i]!;
          values[w] = values[i]!;
          w++;
        }
        keys.length = w;
        values.length = w;
        if (w > 0) yield { keys, values };
      }
      sessions = r.sessions;
      snapSessions = r.sessions ?? null;
      open = null;
    }
    const s = fold.apply(sessions);
    store = s;
    const rest = pairsOutside(s);
    if (rest.keys.length > 0) yield rest;
  }

  function* dirColumns(bar: Progress, perPass: number): Generator<Columns> {
    // Pass 1: the snapshot's values of the keys the log touches, where they are (chunk number and
    // place in it), and its client table.
    const at: number[] = [];
    let sessions: Json | undefined;
    if (snapPath !== null) {
      const r1 = openSnap(snapPath);
      if (fold.touchesKeys) {
        const it = r1.chunks();
        for (let chunk = 0; ; chunk++) {
          const next = guard(() => it.next(), snapPath);
          if (next.done) break;
          const hit = fold.note(next.value.keys, next.value.values);
          if (hit) for (const i of hit) at.push(chunk, i);
          bar.update(r1.keysRead);
        }
        sessions = r1.sessions;
      } else {
        r1.close();
      }
    }
    // The committed log on that small store.
    const s = fold.apply(sessions);
    store = s;
    // Pass 2: the snapshot again, the touched keys (at the places pass 1 found them) with their
    // values after the log.
    const emitted = new KeySet();
    if (snapPath !== null) {
      const r2 = openSnap(snapPath);
      const it = r2.chunks();
      let p = 0;
      for (let chunk = 0; ; chunk++) {
        const next = guard(() => it.next(), snapPath);
        if (next.done) break;
        const { keys, values } = next.value;
        bar.update(fold.touchesKeys ? perPass + r2.keysRead : r2.keysRead);
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
    const created = pairsOutside(s, emitted);
    if (created.keys.length > 0) yield created;
  }

  return {
    info: base.info,
    batches: () => zipped(columns()),
    columns,
    sessions: () => dirSessions(store, snapSessions),
    close: () => {
      (open as SnapshotReader | null)?.close();
    },
  };
}
