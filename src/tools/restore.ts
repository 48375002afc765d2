/**
 * `restore`: build a complete fresh data directory from a snapshot file. The file is verified
 * first; the directory is built next to the target under a temporary name and renamed into place,
 * so that the target is either untouched or complete. With --force an existing data directory is
 * moved aside first and deleted only once the new one is in place; nothing else is ever replaced
 * (a directory that is not a raftsnap data directory, or one holding files raftsnap did not write,
 * is refused). Every failure removes what restore created and puts back what it moved.
 */
import path from 'node:path';
import {
  DataDir,
  WalWriter,
  SnapshotEncoder,
  SnapshotReader,
  fsyncDir,
  isPidAlive,
  nodeFs,
  readLockPid,
  SNAP_DIR,
  snapshotFileName,
  writeSnapshotFile,
  type FileSystem,
  type SnapshotHeader,
  type SyncOptions,
} from '../storage/index.js';
import type { Json, NodeId } from '../raft/types.js';
import { ToolError, toToolError } from './errors.js';
import { StateHasher, hashState, sessionsHash } from './hash.js';
import { foreignEntries, freshSibling, holdsCwd, isDataDir, removeTree, statOrNull } from './files.js';
import { guard, isoTime, PROGRESS_MIN_KEYS, toolNow } from './load.js';
import { startProgress } from '../cli/progress.js';

export interface RestoreResult {
  file: string;
  dataDir: string;
  nodeId: NodeId | null;
  index: number;
  term: number;
  config: NodeId[];
  keys: number;
  hardState: { term: number; votedFor: null; commit: number };
  /** The previous contents of the target were replaced (--force). */
  replaced: boolean;
  /** The new directory recovers exactly the snapshot's state. */
  verified: boolean;
  createdAt: string;
  warnings: string[];
}

/**
 * Read a snapshot file once and verify it, streamed: its bytes (copied as they are when the
 * configuration stays), its header, every chunk decoded under the limits, and, when `hashFor` says
 * so (the file is to be encoded again with another configuration), the state hash and session table of
 * its contents, which the restored directory must then recover. The state is never built in
 * memory (docs/FORMAT.md, "Limits").
 */
function readSnapshotVerified(fsys: FileSystem, file: string, hashFor: (h: SnapshotHeader) => boolean): { header: SnapshotHeader; bytes: Buffer; hash: string | null; keys: number; sessions: Json | undefined } {
  const st = guard(() => fsys.stat(file), file);
  if (st.isDirectory()) throw new ToolError('ENOTDIR', file, 'is a directory, expected a snapshot file');
  const bytes = guard(() => fsys.readFile(file), file);
  const r = guard(() => SnapshotReader.fromBytes(bytes, file), file);
  const h = hashFor(r.header) ? new StateHasher() : null;
  const bar = startProgress('verifying', r.header.keyCount >= PROGRESS_MIN_KEYS ? r.header.keyCount : 0);
  try {
    const it = r.chunks();
    for (;;) {
      const next = guard(() => it.next(), file);
      if (next.done) break;
      if (h) {
        const { keys, values } = next.value;
        for (let i = 0; i < keys.length; i++) h.add(keys[i]!, values[i]!);
      }
      bar.update(r.keysRead);
    }
  } finally {
    bar.stop();
  }
  return { header: r.header, bytes, hash: h ? h.digest() : null, keys: r.keysRead, sessions: r.sessions };
}

/** The snapshot `bytes` again with another configuration: the same pairs, streamed chunk by chunk into a new file. */
function withConfig(bytes: Buffer, file: string, meta: { index: number; term: number; config: NodeId[] }, opts: { createdAt: number; nodeId: NodeId | null }): Buffer {
  const r = SnapshotReader.fromBytes(bytes, file);
  const enc = new SnapshotEncoder(meta, opts);
  for (const c of r.chunks()) enc.addColumns(c.keys, c.values);
  return enc.finish(r.sessions);
}

/** `--config n1,n2,n3`: node ids separated by commas (or spaces), no duplicates. */
export function parseConfig(text: string): NodeId[] {
  const ids = text.split(/[\s,]+/).filter(Boolean);
  if (ids.length === 0) throw new ToolError('BAD_ARGS', null, '--config needs at least one node id (e.g. --config n1,n2,n3)');
  const seen = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) throw new ToolError('BAD_ARGS', null, `--config names ${id} twice`);
    seen.add(id);
  }
  return ids;
}

export interface RestoreOptions {
  nodeId?: string;
  force?: boolean;
  /**
   * The voting members to record instead of the file's own configuration (as `etcdutl snapshot
   * restore --initial-cluster` does), in the restored snapshot and as the directory's members
   * (meta.json), which the node's `init` must then list exactly: restoring a backup of a 3-node
   * cluster onto a single node needs `[that node]`.
   */
  config?: NodeId[];
  /** File system (default node:fs) and fsync (default true). */
  fs?: FileSystem;
  fsync?: boolean;
}

interface Target {
  exists: boolean;
  nonEmpty: boolean;
  oldNodeId: NodeId | null;
}

/** What is at the target, and whether restore may replace it; throws (nothing changed) when not. */
function checkTarget(fsys: FileSystem, dataDir: string, force: boolean): Target {
  const st = guard(() => statOrNull(fsys, dataDir), dataDir);
  if (!st) return { exists: false, nonEmpty: false, oldNodeId: null };
  if (!st.isDirectory()) throw new ToolError('ENOTDIR', dataDir, 'exists and is not a directory (nothing was changed)');
  if (holdsCwd(dataDir)) {
    throw new ToolError('BAD_ARGS', dataDir, 'is the current directory (or holds it); run restore from another directory (nothing was changed)');
  }
  const entries = guard(() => fsys.readdir(dataDir), dataDir);
  const pid = guard(() => readLockPid(dataDir, { fs: fsys }), dataDir);
  if (pid !== null && isPidAlive(pid)) {
    throw new ToolError('LOCKED', dataDir, `directory is in use by pid ${pid}; stop that node before restoring into it (nothing was changed)`);
  }
  if (entries.length === 0) return { exists: true, nonEmpty: false, oldNodeId: null };
  if (!force) {
    throw new ToolError('NOT_EMPTY', dataDir, `directory is not empty (${entries.length} ${entries.length === 1 ? 'entry' : 'entries'}); use --force to replace it (nothing was changed)`);
  }
  if (!isDataDir(dataDir, fsys)) {
    throw new ToolError(
      'NOT_DATA_DIR',
      dataDir,
      'is not a raftsnap data directory (no meta.json of one); --force replaces only a data directory, so nothing was changed (give an empty or new directory)',
    );
  }
  const foreign = guard(() => foreignEntries(dataDir, fsys), dataDir);
  if (foreign.length > 0) {
    const shown = foreign.slice(0, 5).join(', ') + (foreign.length > 5 ? `, and ${foreign.length - 5} more` : '');
    throw new ToolError(
      'NOT_DATA_DIR',
      dataDir,
      `holds files raftsnap did not write (${shown}); move them out first: --force replaces only raftsnap's own files (nothing was changed)`,
    );
  }
  let oldNodeId: NodeId | null = null;
  try {
    oldNodeId = DataDir.open(dataDir, { mode: 'read', fs: fsys }).meta.nodeId;
  } catch {
    oldNodeId = null;
  }
  return { exists: true, nonEmpty: true, oldNodeId };
}

/** Undo steps, run newest first on failure. */
class Undo {
  private steps: Array<{ what: string; run: () => void }> = [];
  push(what: string, run: () => void): void {
    this.steps.push({ what, run });
  }
  /** Run every step; returns what could not be undone. */
  runAll(): string[] {
    const failed: string[] = [];
    while (this.steps.length > 0) {
      const s = this.steps.pop()!;
      try {
        s.run();
      } catch (e) {
        failed.push(`${s.what} (${(e as Error).message})`);
      }
    }
    return failed;
  }
  clear(): void {
    this.steps = [];
  }
}

export function restoreSnapshot(file: string, dataDir: string, opts: RestoreOptions = {}): RestoreResult {
  const fsys = opts.fs ?? nodeFs;
  const sync: SyncOptions = { fs: fsys, fsync: opts.fsync !== false };
  const warnings: string[] = [];

  // 1. The snapshot must be sound before anything is touched.
  // The state hash is needed only when the file is encoded again (--config): see step 4.
  const configText = opts.config ? opts.config.join('\0') : null;
  const first = readSnapshotVerified(fsys, file, (h) => configText !== null && configText !== h.config.join('\0'));
  const { header, bytes, hash, keys, sessions } = first;
  const config = opts.config ? [...opts.config] : [...header.config];
  if (config.length === 0) {
    throw new ToolError(
      'BAD_ARGS',
      file,
      'the snapshot records no configuration (no cluster members); give --config with the members of the cluster it will run in (nothing was changed)',
    );
  }

  // 2. The target: absent, an empty directory, or (with --force) a data directory not held by a live node.
  const target = checkTarget(fsys, dataDir, opts.force === true);
  const nodeId = opts.nodeId ?? target.oldNodeId ?? header.nodeId ?? null;
  if (opts.config) {
    if (nodeId === null) throw new ToolError('BAD_ARGS', null, '--config needs a node id: give --node-id too');
    if (!config.includes(nodeId)) {
      throw new ToolError('BAD_ARGS', null, `--config ${config.join(',')} does not include this node, ${nodeId} (nothing was changed)`);
    }
  }
  if (!opts.config && nodeId !== null && !config.includes(nodeId)) {
    throw new ToolError(
      'BAD_ARGS',
      null,
      `node ${nodeId} is not a member of the snapshot's configuration (${config.join(', ')}); give --config with the members of the cluster it will run in (nothing was changed)`,
    );
  }
  const rewrite = opts.config !== undefined && config.join('\0') !== header.config.join('\0');

  const abs = path.resolve(dataDir);
  const parent = path.dirname(abs);
  const undo = new Undo();
  const createdAt = toolNow();
  const hardState = { term: header.term, votedFor: null, commit: header.index };
  let aside: string | null = null;
  const missing: string[] = [];
  let tmpDir: string | null = null;
  try {
    // 3. Build the new directory next to the target (its missing parents are created, and removed again on failure).
    for (let d = parent; !statOrNull(fsys, d); d = path.dirname(d)) {
      missing.unshift(d);
      if (path.dirname(d) === d) break;
    }
    for (const d of missing) {
      fsys.mkdir(d);
      undo.push(`remove ${d}`, () => fsys.rmdir(d));
    }
    const tmp = freshSibling(fsys, abs, 'restore');
    tmpDir = tmp;
    fsys.mkdir(tmp);
    undo.push(`remove ${tmp}`, () => removeTree(fsys, tmp));
    const dd = DataDir.create(tmp, { nodeId: nodeId ?? undefined, createdAt, ...sync });
    try {
      // The members the node will have to be started with (its `init` must list exactly these).
      dd.setMembers(config);
      if (rewrite) {
        // Same index, term and state; a new configuration means a new header, so a new file.
        writeSnapshotFile(dd.snapDir, withConfig(bytes, file, { index: header.index, term: header.term, config }, { createdAt, nodeId }), sync);
      } else writeSnapshotFile(dd.snapDir, bytes, sync);
      const w = new WalWriter(dd.walDir, [], { hardState, lastIndex: header.index }, sync);
      w.add({ type: 'snapshot', index: header.index, term: header.term, file: snapshotFileName(header) });
      w.close();
    } finally {
      dd.close();
    }
    // 4. It must recover exactly the snapshot's state, at the same index, with the members
    // recorded. The file's bytes copied as they are: recovery must pick that file, hold its very
    // bytes (read back) and replay nothing. Encoded again (another configuration): the same state
    // hash and session table, streamed (src/tools/hash.ts).
    const members = DataDir.open(tmp, { fs: fsys }).meta.members ?? [];
    const sameMembers = [...members].sort().join('\0') === [...config].sort().join('\0');
    let same: boolean;
    if (hash !== null) {
      const back = hashState(tmp, [], { fs: fsys });
      same = back.hash === hash && back.sessions === sessionsHash(sessions ?? null) && back.index === header.index;
    } else {
      const rec = DataDir.open(tmp, { mode: 'read', fs: fsys }).recover({ repair: false, loadContent: false });
      same =
        rec.snapshot !== null &&
        rec.snapshot.path === path.join(tmp, SNAP_DIR, snapshotFileName(header)) &&
        rec.entries.length === 0 &&
        Math.min(rec.hardState.commit, rec.lastIndex) === header.index &&
        fsys.readFile(rec.snapshot.path).equals(bytes);
    }
    if (!same || !sameMembers) {
      throw new ToolError('INTERNAL', dataDir, 'the restored directory does not recover the snapshot state; nothing was changed');
    }

    // 5. Into place: the old directory aside (or the empty one removed), the new one renamed in.
    if (target.nonEmpty) {
      const a = freshSibling(fsys, abs, 'old');
      fsys.rename(abs, a);
      aside = a;
      undo.push(`move ${a} back to ${abs}`, () => fsys.rename(a, abs));
    } else if (target.exists) {
      fsys.rmdir(abs);
      undo.push(`re-create the empty directory ${abs}`, () => fsys.mkdir(abs));
    }
    fsys.rename(tmp, abs);
    undo.push(`move the new directory ${abs} back to ${tmp}`, () => fsys.rename(abs, tmp));
    // Durable: the renames in the parent, and each directory created above it in its own parent.
    fsyncDir(parent, sync);
    for (const d of missing) fsyncDir(path.dirname(d), sync);
  } catch (e) {
    const failed = undo.runAll();
    const t0 = toToolError(e, dataDir);
    // Name the file as the user typed the target: the temporary directory (a pid in its name) or
    // a file in it stands for the target; a parent made for it, relative when the target was.
    let named = t0.file;
    if (named !== null && path.isAbsolute(named)) {
      if (tmpDir !== null && (named === tmpDir || named.startsWith(tmpDir + path.sep))) named = dataDir;
      else if (!path.isAbsolute(dataDir)) named = path.relative(process.cwd(), named) || '.';
    }
    const t = named === t0.file ? t0 : new ToolError(t0.code, named, t0.problem, t0.exit);
    if (failed.length > 0) {
      // Could not put everything back: say where things are, never leave the user guessing.
      throw new ToolError(t.code, t.file, `${t.problem}; could not undo: ${failed.join('; ')}${aside ? `; the previous contents may be in ${aside}` : ''}`);
    }
    if (t.problem.includes('nothing was changed')) throw t;
    throw new ToolError(t.code, t.file, `${t.problem} (nothing was changed)`);
  }
  undo.clear();
  // 6. The new directory is in place and durable: the old contents go.
  if (aside) {
    try {
      removeTree(fsys, aside);
    } catch (e) {
      warnings.push(`${aside}: the previous contents could not be removed (${toToolError(e, aside).problem}); remove that directory by hand`);
    }
  }
  return {
    file,
    dataDir,
    nodeId,
    index: header.index,
    term: header.term,
    config,
    keys,
    hardState,
    replaced: target.nonEmpty,
    verified: true,
    createdAt: isoTime(createdAt),
    warnings,
  };
}
