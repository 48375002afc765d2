/**
 * Read-only loading of states for the tools: a snapshot file as it is, a data directory as the
 * state recovery would produce (newest good snapshot + committed log replayed), or at a given
 * index. Nothing here changes a file.
 */
import fs from 'node:fs';
import { KvLoad, KvStore } from '../kv/store.js';
import type { Entry, Json, NodeId } from '../raft/types.js';
import {
  DataDir,
  LogReplay,
  StorageError,
  SnapshotReader,
  readSnapshotFile,
  readWal,
  type FileSystem,
  type Recovery,
  type SnapshotContent,
  type SnapshotHeader,
} from '../storage/index.js';
import { startProgress } from '../cli/progress.js';
import { ToolError, toToolError } from './errors.js';
import type { ToolState } from './state.js';

export type PathKind = 'file' | 'dir';

/** What a path is; a ToolError naming it when it is missing or unreadable. */
export function pathKind(p: string): PathKind {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch (e) {
    throw toToolError(e, p);
  }
  return st.isDirectory() ? 'dir' : 'file';
}

/** The time to stamp on files the tools write: SOURCE_DATE_EPOCH (seconds) when set, for reproducible output. */
export function toolNow(): number {
  const s = process.env['SOURCE_DATE_EPOCH'];
  if (s && /^\d+$/.test(s)) return Number(s) * 1000;
  return Date.now();
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

/** Wrap storage calls: every StorageError/fs error becomes a one-line ToolError naming its file. */
export function guard<T>(fn: () => T, file: string | null = null): T {
  try {
    return fn();
  } catch (e) {
    throw toToolError(e, file);
  }
}

export function snapshotState(source: string, header: SnapshotHeader, content: SnapshotContent): ToolState {
  return {
    source,
    kind: 'snapshot',
    header: {
      index: header.index,
      term: header.term,
      config: [...header.config],
      createdAt: isoTime(header.createdAt),
      codec: header.codec,
      formatVersion: header.formatVersion,
      rawSize: header.rawSize,
      compressedSize: header.compressedSize,
    },
    pairs: content.kv,
    dedup: content.sessions ?? null,
  };
}

/** Open a data directory read-only; a live lock only gives a warning. */
export function openReadOnly(dir: string, warnings: string[], fsys?: FileSystem): DataDir {
  const dd = guard(() => DataDir.open(dir, { mode: 'read', ...(fsys ? { fs: fsys } : {}) }), dir);
  if (dd.lockedBy !== null) warnings.push(`${dir}: directory is in use by pid ${dd.lockedBy}; reading anyway`);
  return dd;
}

/**
 * Apply committed log entries to a store exactly as the node does (src/node/state-machine.ts `apply`):
 * `null` is a leader's no-op, anything that is not a KV command is skipped, and an entry whose
 * forward identity (`session`) was already applied is not executed again (the store's session table,
 * seeded from the base snapshot's `sessions`).
 */
export function applyEntries(store: KvStore, entries: Entry[], upTo: number, label = 'replay'): number {
  const todo = entries.filter((e) => e.index <= upTo);
  const bar = startProgress(label, todo.length > 50_000 ? todo.length : 0);
  let n = 0;
  for (const e of todo) {
    store.applyEntry(e.data, e.index);
    n++;
    if ((n & 0x3fff) === 0) bar.update(n);
  }
  bar.stop();
  return n;
}

/** Where a directory's configuration came from. */
export type ConfigSource = 'meta.json' | 'snapshot' | 'newer snapshot' | 'none';

/** Where a directory's state came from, whatever form the state is held in. */
export interface DirOrigin {
  configSource: ConfigSource;
  recovery: Recovery;
  nodeId: NodeId | null;
  /** The snapshot the state was built from (null: the log from index 1) and the entries replayed on it. */
  base: { file: string | null; index: number };
  replayed: number;
  warnings: string[];
}

/** A directory's state as pairs (small states, diff, tests). */
export interface DirState extends DirOrigin {
  state: ToolState;
}

/** Term of entry `index` in `entries` (after a snapshot at snapIndex/snapTerm). */
function termAt(index: number, snap: { index: number; term: number } | null, entries: Entry[]): number | undefined {
  if (snap && index === snap.index) return snap.term;
  if (index === 0) return 0;
  const first = entries.length > 0 ? entries[0]!.index : 0;
  return entries[index - first]?.term;
}

/**
 * The state of a data directory at its commit index (what a node would serve after recovery), or
 * at `at` when given. Read-only. Recovery warnings are returned as lines.
 */
export function loadDirState(dir: string, opts: { at?: number; fs?: FileSystem } = {}): DirState {
  const warnings: string[] = [];
  const dd = openReadOnly(dir, warnings, opts.fs);
  const rec = guard(() => dd.recover({ repair: false }), dir);
  return buildDirState(dir, dd, rec, warnings, opts.at);
}

/** The state's index, term and configuration, and its client session table as the node rebuilds it (null: none). */
export interface DirHeader extends DirOrigin {
  header: { index: number; term: number; config: NodeId[] };
  dedup: Json | null;
}

/** A directory's state as the node holds it (a KvStore), with where it came from. */
export interface DirStore extends DirHeader {
  store: KvStore;
}

/** The state of `dd` given its recovery: DirStore's pairs as an array (small states, diff, tests). */
export function buildDirState(dir: string, dd: DataDir, rec: Recovery, warnings: string[], atIndex?: number): DirState {
  const d = buildDirStore(dir, dd, rec, warnings, atIndex);
  return {
    state: { source: dir, kind: 'dir', header: d.header, pairs: [...d.store.entries()], dedup: d.dedup },
    configSource: d.configSource,
    recovery: d.recovery,
    nodeId: d.nodeId,
    base: d.base,
    replayed: d.replayed,
    warnings: d.warnings,
  };
}

/**
 * The chunks of a snapshot file, read as the node reads one (checksums and limits as it streams),
 * each handed to `take` (which may keep the arrays), with a progress bar for a large one. Returns
 * the file's session table, raw.
 */
export function streamSnapshotFile(file: string, fsys: FileSystem, take: (keys: Json[], values: Json[]) => void): Json | undefined {
  const r = guard(() => SnapshotReader.open(file, { fs: fsys }), file);
  const bar = startProgress('loading', r.header.keyCount >= PROGRESS_MIN_KEYS ? r.header.keyCount : 0);
  try {
    const it = r.chunks();
    for (;;) {
      const next = guard(() => it.next(), file);
      if (next.done) break;
      take(next.value.keys, next.value.values);
      bar.update(r.keysRead);
    }
  } finally {
    r.close();
    bar.stop();
  }
  return r.sessions;
}

/** Pairs of a snapshot file straight into a new store (no array of pairs); its session table, raw. */
function storeFromFile(file: string, fsys: FileSystem): { store: KvStore; sessions: Json | undefined } {
  // As the node loads a snapshot (src/node/install.ts): columns straight into a KvLoad, then one switch.
  const load = new KvLoad();
  const sessions = streamSnapshotFile(file, fsys, (keys, values) => load.add(keys, values));
  const store = new KvStore();
  store.replace(load, sessions);
  return { store, sessions };
}

/** States of at least this many keys show a progress bar on a terminal. */
export const PROGRESS_MIN_KEYS = 100_000;

/** What a directory's state at an index is made of: a base snapshot, the entries after it, the header. */
export interface DirBase {
  /** The state's index (the commit index, or the one asked for), its term and configuration. */
  header: { index: number; term: number; config: NodeId[] };
  configSource: ConfigSource;
  /** The base snapshot's header (null: the log from index 1), its content when the recovery loaded it, its file. */
  snapshot: SnapshotHeader | null;
  content: SnapshotContent | null;
  file: string | null;
  /** The log entries after the base snapshot (those above `header.index` are not part of the state). */
  entries: Entry[];
  recovery: Recovery;
  nodeId: NodeId | null;
}

/**
 * Where the state of `dd` at its commit index (or `atIndex`) comes from, given its recovery (which
 * may have loaded the snapshot's content or not): the base snapshot, an older one when `atIndex`
 * is before the newest, the entries to replay, the term and configuration at that index.
 */
export function dirBase(dir: string, dd: DataDir, rec: Recovery, warnings: string[], atIndex?: number): DirBase {
  for (const w of rec.warnings) warnings.push(w.message);
  const snap = rec.snapshot ? { index: rec.snapshot.header.index, term: rec.snapshot.header.term } : null;
  const commit = Math.min(rec.hardState.commit, rec.lastIndex);
  if (rec.hardState.commit > rec.lastIndex) {
    warnings.push(`${dir}: hard state commit ${rec.hardState.commit} is beyond the last log entry ${rec.lastIndex}; using ${rec.lastIndex}`);
  }
  const at = atIndex ?? commit;
  if (at > commit) throw new ToolError('BAD_INDEX', dir, `index ${at} is beyond the commit index ${commit}`);

  let header: SnapshotHeader | null = rec.snapshot?.header ?? null;
  let content: SnapshotContent | null = rec.snapshot?.content ?? null;
  let entries = rec.entries;
  let baseFile: string | null = rec.snapshot?.path ?? null;
  if (snap && at < snap.index) {
    // An older snapshot plus the WAL after it.
    const older = olderBase(dd, dir, at);
    header = older.header;
    content = older.content;
    entries = older.entries;
    baseFile = older.file;
  }
  const base = header ? { index: header.index, term: header.term } : null;
  const term = termAt(at, base, entries);
  if (term === undefined) {
    throw new ToolError('BAD_INDEX', dir, `entry ${at} is not in the log (it holds ${entries.length > 0 ? `${entries[0]!.index}..${entries[entries.length - 1]!.index}` : 'no entries'})`);
  }
  // The members the directory records (first init, or restore); else its snapshot's configuration;
  // else (a state before the first snapshot) any snapshot's: membership is fixed at the first init.
  let config: NodeId[] = [];
  let configSource: ConfigSource = 'none';
  if (dd.meta.members) {
    config = [...dd.meta.members];
    configSource = 'meta.json';
  } else if (header) {
    config = [...header.config];
    configSource = 'snapshot';
  } else {
    const any = guard(() => dd.listSnapshots(), dir).find((s) => s.header && s.header.config.length > 0);
    if (any) {
      config = [...any.header!.config];
      configSource = 'newer snapshot';
    }
  }
  if (config.length === 0) {
    configSource = 'none';
    warnings.push(`${dir}: the state at index ${at} has no configuration: no members are recorded in meta.json and no snapshot names them; the file records none (restore will need --config)`);
  }
  return { header: { index: at, term, config }, configSource, snapshot: header, content, file: baseFile, entries, recovery: rec, nodeId: dd.meta.nodeId };
}

/**
 * The state of `dd` at its commit index (or `atIndex`) as a KvStore, built as the node builds it:
 * the whole snapshot loaded, every entry applied to it (the reference the streaming tools are
 * tested against). The snapshot is streamed into the store when the recovery did not load it.
 */
export function buildDirStore(dir: string, dd: DataDir, rec: Recovery, warnings: string[], atIndex?: number): DirStore {
  const b = dirBase(dir, dd, rec, warnings, atIndex);
  let store: KvStore;
  let snapSessions: Json | undefined;
  if (b.content) {
    store = KvStore.fromEntries(b.content.kv, b.content.sessions);
    snapSessions = b.content.sessions;
  } else if (b.snapshot && b.file !== null) {
    ({ store, sessions: snapSessions } = storeFromFile(b.file, dd.fs));
  } else store = new KvStore();
  const replayed = applyEntries(store, b.entries, b.header.index);
  return {
    store,
    header: b.header,
    dedup: sessionsAfter(store, snapSessions),
    configSource: b.configSource,
    recovery: rec,
    nodeId: b.nodeId,
    base: { file: b.file, index: b.snapshot ? b.snapshot.index : 0 },
    replayed,
    warnings,
  };
}

/**
 * The client session table as the node rebuilds it: the base snapshot's, with the replayed entries
 * applied (held by `store`). A table the node cannot read (an older form) is carried as it is.
 */
export function sessionsAfter(store: KvStore, snapSessions: Json | undefined): Json | null {
  return store.sessions.size > 0 ? store.sessions.toJson() : (snapSessions ?? null);
}

/** The state of a data directory as a KvStore (see buildDirStore), read-only; the snapshot streamed into it. */
export function loadDirStore(dir: string, opts: { at?: number; fs?: FileSystem } = {}): DirStore {
  const warnings: string[] = [];
  const dd = openReadOnly(dir, warnings, opts.fs);
  const rec = guard(() => dd.recover({ repair: false, loadContent: false }), dir);
  return buildDirStore(dir, dd, rec, warnings, opts.at);
}

/** The newest good snapshot at or below `at` and the log entries after it (replayed from the WAL). */
function olderBase(
  dd: DataDir,
  dir: string,
  at: number,
): { header: SnapshotHeader | null; content: SnapshotContent | null; entries: Entry[]; file: string | null } {
  const all = guard(() => dd.listSnapshots(), dir);
  const snaps = all.filter((s) => s.header && s.index <= at);
  const oldest = all.find((s) => s.header);
  let header: SnapshotHeader | null = null;
  let content: SnapshotContent | null = null;
  let file: string | null = null;
  for (const s of snaps.reverse()) {
    try {
      ({ header, content } = readSnapshotFile(s.path, { fs: dd.fs }));
      file = s.path;
      break;
    } catch (e) {
      if (!(e instanceof StorageError) || e.code === 'LIMIT') throw e;
    }
  }
  const replay = new LogReplay();
  guard(() => {
    for (const item of readWal(dd.walDir, { fs: dd.fs })) {
      if (item.type === 'damage') {
        if (item.lastSegment && item.tailOnly) break;
        throw new StorageError('CORRUPT_WAL', item.file, `WAL corrupt (not a torn tail): ${item.reason}`, item.offset);
      }
      replay.apply(item, { file: item.file, offset: item.offset });
    }
  }, dir);
  const pos = header ? { index: header.index, term: header.term } : null;
  let entries: Entry[];
  try {
    entries = replay.entriesAfter(pos, dir);
  } catch {
    entries = [];
  }
  const first = pos ? pos.index + 1 : 1;
  if (!header && (entries.length === 0 || entries[0]!.index !== 1)) {
    throw new ToolError(
      'BAD_INDEX',
      dir,
      `index ${at} is before the oldest snapshot${oldest ? ` (index ${oldest.index})` : ''} and the log no longer holds the entries before it`,
    );
  }
  if (entries.length > 0 && entries[0]!.index !== first) {
    throw new ToolError('BAD_INDEX', dir, `cannot rebuild index ${at}: the log after snapshot ${pos?.index} was compacted away`);
  }
  return { header, content, entries, file };
}

/** A snapshot file, read and verified. */
export function loadSnapshotState(file: string): ToolState {
  const { header, content } = guard(() => readSnapshotFile(file), file);
  return snapshotState(file, header, content);
}

/** Either kind, by what the path is. */
export async function loadState(p: string): Promise<{ state: ToolState; warnings: string[] }> {
  if (pathKind(p) === 'dir') {
    const d = loadDirState(p);
    return { state: d.state, warnings: d.warnings };
  }
  return { state: loadSnapshotState(p), warnings: [] };
}
