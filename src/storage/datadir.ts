/**
 * Data directory: layout, lock, listings and recovery (see docs/FORMAT.md).
 *
 *   <dir>/meta.json     {"format": "raftsnap-data", "version": 1, "nodeId": "n1" | null, "created": <ms>,
 *                        "members": ["n1", "n2", "n3"] (once recorded)}
 *   <dir>/LOCK          decimal pid of the live node holding the directory
 *   <dir>/snap/*.snap   snapshot files `<term %016x>-<index %016x>.snap`
 *   <dir>/wal/*.wal     WAL segments `<seq %016x>-<firstIndex %016x>.wal`
 */
import path from 'node:path';
import type { HardState, NodeId } from '../raft/types.js';
import { StorageError, fsError } from './errors.js';
import type { FileSystem } from './fs.js';
import {
  TEMP_NAME_RE,
  closeQuietly,
  createTemp,
  fsOf,
  fsyncDir,
  fsyncFd,
  isPidAlive,
  listDir,
  statOrNull,
  unlinkQuietly,
  writeAll,
  writeFileAtomic,
  type IoOptions,
  type SyncOptions,
} from './fsutil.js';
import { BROKEN_SUFFIX, recoverDir, type RecoverOptions, type Recovery } from './recovery.js';
import { parseSnapshotFileName, readSnapshotHeader, type SnapshotHeader } from './snapshot.js';
import { listSegmentFiles, scanSegmentFile, type SegmentDamage, type SegmentScan } from './wal.js';

export { BROKEN_SUFFIX } from './recovery.js';
export type { RecoveryWarningKind, RecoveryWarning, RecoverOptions, RecoveredSnapshot, Recovery } from './recovery.js';

export const DATA_DIR_FORMAT = 'raftsnap-data';
export const DATA_DIR_FORMAT_VERSION = 1;
export const META_FILE = 'meta.json';
export const LOCK_FILE = 'LOCK';
export const SNAP_DIR = 'snap';
export const WAL_DIR = 'wal';
export const RECV_SUFFIX = '.recv';
export const TORN_RE = /\.torn-\d+$/;
/** Largest meta.json read (one is a few hundred bytes; a long members list stays far below). */
export const META_MAX_BYTES = 1024 * 1024;

export interface DataDirMeta {
  format: typeof DATA_DIR_FORMAT;
  version: number;
  nodeId: NodeId | null;
  /** Creation time, ms since the epoch. */
  created: number;
  /**
   * The cluster's voting members, once recorded: by the node's first `init` (its node_ids), or by
   * `raftsnap restore` (--config, else the snapshot's configuration). Null: not recorded yet
   * (written only when set, so older directories read as null).
   */
  members: NodeId[] | null;
}

/**
 * Who holds the LOCK: the pid written into it and how to tell whether a pid recorded there is
 * still alive. Default: this process (`process.pid`) and `kill(pid, 0)` (`isPidAlive`). The
 * simulator runs several nodes in one process and gives each incarnation its own pid, so that a
 * crashed node's lock counts as stale.
 */
export interface LockIdentity {
  pid?: number;
  isPidAlive?: (pid: number) => boolean;
}

/** Options of DataDir.open: the FileSystem (`fs`), fsync, and the lock identity. */
export interface OpenOptions extends SyncOptions, LockIdentity {
  /** 'write' takes the lock (refusing a live one); 'read' reports `lockedBy` and reads anyway. Default 'read'. */
  mode?: 'read' | 'write';
  /** Create the directory (or initialise an empty one) when it is not a data directory yet (write mode). */
  create?: boolean;
  /** Expected node id: refused (NODE_MISMATCH) when the directory belongs to another node; recorded when it has none. */
  nodeId?: NodeId;
  /** Creation time to record in a new meta.json (default Date.now()). */
  createdAt?: number;
}

export interface SnapshotListing {
  name: string;
  path: string;
  /** From the file name. */
  index: number;
  term: number;
  size: number;
  /** Header when it could be read and its checksum matches (payload NOT verified here). */
  header: SnapshotHeader | null;
  error: StorageError | null;
}

export interface SegmentListing {
  name: string;
  path: string;
  seq: number;
  /** First index from the file name. */
  firstIndex: number;
  size: number;
  /** Records whose checksums passed (all kinds, up to any damage). */
  recordCount: number;
  /** Entry records and the index range they cover (0 when none). */
  entryCount: number;
  minIndex: number;
  maxIndex: number;
  /** Last hard state recorded in this segment. */
  hardState: HardState | null;
  snapshotMarkers: Array<{ index: number; term: number; file: string }>;
  /** First damaged record, if any. */
  damage: SegmentDamage | null;
  /** Unreadable segment (bad header, permissions). */
  error: StorageError | null;
}

export type LeftoverKind = 'temp' | 'recv' | 'broken' | 'torn';

export interface Leftover {
  kind: LeftoverKind;
  name: string;
  path: string;
  size: number;
}

function readMeta(fsys: FileSystem, dir: string): DataDirMeta {
  const file = path.join(dir, META_FILE);
  let text: string;
  try {
    // A few hundred bytes; a larger file is not read into memory (docs/FORMAT.md, "Limits").
    const size = fsys.stat(file).size;
    if (size > META_MAX_BYTES) throw new StorageError('LIMIT', file, `meta.json of ${size} bytes, more than the limit of ${META_MAX_BYTES}; not read`);
    text = fsys.readFile(file).toString('utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new StorageError('NOT_DATA_DIR', dir, `not a raftsnap data directory (no ${META_FILE})`);
    }
    throw fsError(e, file, 'read');
  }
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    throw new StorageError('NOT_DATA_DIR', file, 'not a raftsnap data directory (meta.json is not valid JSON)');
  }
  const o = m as Partial<DataDirMeta> | null;
  if (!o || typeof o !== 'object' || o.format !== DATA_DIR_FORMAT) {
    throw new StorageError('NOT_DATA_DIR', file, `not a raftsnap data directory (meta.json format is not "${DATA_DIR_FORMAT}")`);
  }
  if (o.version !== DATA_DIR_FORMAT_VERSION) {
    throw new StorageError('UNSUPPORTED_VERSION', file, `unsupported data directory version ${describeVersion(o.version)} (this build reads version ${DATA_DIR_FORMAT_VERSION})`);
  }
  return {
    format: DATA_DIR_FORMAT,
    version: o.version,
    nodeId: typeof o.nodeId === 'string' ? o.nodeId : null,
    created: typeof o.created === 'number' ? o.created : 0,
    members: readMembers(o.members, file),
  };
}

/**
 * A meta.json `version` for a message, on one line and short whatever the file holds (a string is
 * quoted as JSON: it may hold a newline; an array nested 5,000 deep is not printed: found by the fuzzer).
 */
function describeVersion(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  if (typeof v === 'string') return JSON.stringify(v.length > 32 ? v.slice(0, 32) + '…' : v);
  return Array.isArray(v) ? '(an array)' : '(an object)';
}

/** meta.json `members`: absent or null (not recorded), else a non-empty list of distinct node ids. */
function readMembers(v: unknown, file: string): NodeId[] | null {
  if (v === undefined || v === null) return null;
  const problem = membersProblem(v);
  if (problem) throw new StorageError('NOT_DATA_DIR', file, `meta.json "members" ${problem}`);
  return [...(v as NodeId[])];
}

/** Why `v` is not a list of members (a non-empty array of distinct non-empty strings), or null. */
function membersProblem(v: unknown): string | null {
  if (!Array.isArray(v) || v.length === 0) return 'must be a non-empty list of node ids';
  if (!v.every((x) => typeof x === 'string' && x !== '')) return 'must hold node ids (non-empty strings)';
  if (new Set(v).size !== v.length) return 'names a node twice';
  return null;
}

function metaBytes(meta: DataDirMeta): Buffer {
  const { members, ...rest } = meta;
  return Buffer.from(JSON.stringify(members === null ? rest : { ...rest, members }, null, 2) + '\n');
}

/** The pid in a LOCK file, or null when there is no lock file or it does not hold a pid. */
export function readLockPid(dir: string, opts: IoOptions = {}): number | null {
  let text: string;
  try {
    text = fsOf(opts).readFile(path.join(dir, LOCK_FILE)).toString('utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fsError(e, path.join(dir, LOCK_FILE), 'read');
  }
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

export class DataDir {
  readonly path: string;
  readonly snapDir: string;
  readonly walDir: string;
  readonly mode: 'read' | 'write';
  meta: DataDirMeta;
  /** Read mode: pid of the live process holding the lock, if any. */
  readonly lockedBy: number | null;
  /** A lock file whose process is gone (taken over in write mode). */
  readonly staleLockPid: number | null;
  /** The file system the directory lives on. */
  readonly fs: FileSystem;
  /** The pid this DataDir writes into LOCK (write mode). */
  readonly pid: number;
  private closed = false;
  private readonly syncOpts: SyncOptions;

  private constructor(p: string, mode: 'read' | 'write', meta: DataDirMeta, lockedBy: number | null, stale: number | null, sync: SyncOptions, pid: number) {
    this.path = p;
    this.snapDir = path.join(p, SNAP_DIR);
    this.walDir = path.join(p, WAL_DIR);
    this.mode = mode;
    this.meta = meta;
    this.lockedBy = lockedBy;
    this.staleLockPid = stale;
    this.syncOpts = sync;
    this.fs = fsOf(sync);
    this.pid = pid;
  }

  get fsync(): boolean {
    return this.syncOpts.fsync !== false;
  }

  /** fsync setting and FileSystem, for the writers working in this directory. */
  get sync(): SyncOptions {
    return this.syncOpts;
  }

  /** Create a new data directory (it must not exist or be empty) and open it in write mode. */
  static create(dir: string, opts: Omit<OpenOptions, 'mode' | 'create'> = {}): DataDir {
    const fsys = fsOf(opts);
    const st = statOrNull(fsys, dir);
    if (st) {
      if (!st.isDirectory()) throw new StorageError('ENOTDIR', dir, 'exists and is not a directory');
      if (listDir(fsys, dir).length > 0) throw new StorageError('EXISTS', dir, 'directory is not empty');
    }
    return DataDir.open(dir, { ...opts, mode: 'write', create: true });
  }

  static open(dir: string, opts: OpenOptions = {}): DataDir {
    const mode = opts.mode ?? 'read';
    const fsys = fsOf(opts);
    const sync: SyncOptions = { fsync: opts.fsync !== false, fs: fsys };
    const lock: Lock = { pid: opts.pid ?? process.pid, isPidAlive: opts.isPidAlive ?? isPidAlive };
    const st = statOrNull(fsys, dir);
    if (!st) {
      if (!(opts.create && mode === 'write')) throw new StorageError('ENOENT', dir, 'no such data directory');
      // Like mkdir -p, but durable: each directory created is a new name in its parent, so every
      // parent is fsynced, not only the last one's.
      const created = missingDirs(fsys, dir);
      try {
        fsys.mkdir(dir, { recursive: true });
      } catch (e) {
        throw fsError(e, dir, 'create data directory');
      }
      for (const d of created) fsyncDir(path.dirname(d), sync);
    } else if (!st.isDirectory()) {
      throw new StorageError('ENOTDIR', dir, 'not a directory (expected a raftsnap data directory)');
    }
    try {
      fsys.access(dir, mode);
    } catch (e) {
      throw fsError(e, dir, mode === 'write' ? 'open data directory for writing' : 'open data directory');
    }

    if (mode === 'read') {
      const meta = readMeta(fsys, dir);
      const pid = readLockPid(dir, sync);
      const alive = pid !== null && lockHolderAlive(fsys, dir, pid, lock);
      return new DataDir(dir, 'read', meta, alive ? pid : null, pid !== null && !alive ? pid : null, sync, lock.pid);
    }

    const stale = acquireLock(dir, sync, lock);
    try {
      let meta: DataDirMeta;
      const metaPath = path.join(dir, META_FILE);
      if (!statOrNull(fsys, metaPath)) {
        const others = listDir(fsys, dir).filter((n) => !leftByFirstStart(fsys, dir, n));
        if (!opts.create) throw new StorageError('NOT_DATA_DIR', dir, `not a raftsnap data directory (no ${META_FILE})`);
        if (others.length > 0) throw new StorageError('NOT_DATA_DIR', dir, `not a raftsnap data directory (no ${META_FILE}) and not empty`);
        meta = { format: DATA_DIR_FORMAT, version: DATA_DIR_FORMAT_VERSION, nodeId: opts.nodeId ?? null, created: opts.createdAt ?? Date.now(), members: null };
        mkdirDurable(path.join(dir, SNAP_DIR), sync);
        mkdirDurable(path.join(dir, WAL_DIR), sync);
        writeFileAtomic(metaPath, metaBytes(meta), sync);
      } else {
        meta = readMeta(fsys, dir);
        if (opts.nodeId !== undefined && meta.nodeId !== null && meta.nodeId !== opts.nodeId) {
          throw new StorageError('NODE_MISMATCH', dir, `data directory belongs to node ${meta.nodeId}, not ${opts.nodeId}`);
        }
        if (opts.nodeId !== undefined && meta.nodeId === null) {
          meta = { ...meta, nodeId: opts.nodeId };
          writeFileAtomic(metaPath, metaBytes(meta), sync);
        }
        mkdirDurable(path.join(dir, SNAP_DIR), sync);
        mkdirDurable(path.join(dir, WAL_DIR), sync);
      }
      return new DataDir(dir, 'write', meta, null, stale, sync, lock.pid);
    } catch (e) {
      releaseLock(dir, sync, lock.pid);
      throw e;
    }
  }

  /** Release the lock (write mode). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.mode === 'write') releaseLock(this.path, this.syncOpts, this.pid);
  }

  /** Record the node id in meta.json (write mode; refused when another id is recorded). */
  setNodeId(nodeId: NodeId): void {
    this.requireWrite('set the node id');
    if (this.meta.nodeId === nodeId) return;
    if (this.meta.nodeId !== null) throw new StorageError('NODE_MISMATCH', this.path, `data directory belongs to node ${this.meta.nodeId}, not ${nodeId}`);
    this.meta = { ...this.meta, nodeId };
    writeFileAtomic(path.join(this.path, META_FILE), metaBytes(this.meta), this.syncOpts);
  }

  /**
   * Record the cluster's voting members in meta.json (write mode). Whether a new list may replace a
   * recorded one is the caller's rule (the node refuses an `init` that differs; restore builds a
   * fresh directory).
   */
  setMembers(members: NodeId[]): void {
    this.requireWrite('record the members');
    const problem = membersProblem(members);
    if (problem) throw new StorageError('INVALID', this.path, `members ${problem}`);
    if (this.meta.members !== null && this.meta.members.join('\0') === members.join('\0')) return;
    this.meta = { ...this.meta, members: [...members] };
    writeFileAtomic(path.join(this.path, META_FILE), metaBytes(this.meta), this.syncOpts);
  }

  requireWrite(what: string): void {
    if (this.closed) throw new StorageError('INVALID', this.path, `cannot ${what}: data directory is closed`);
    if (this.mode !== 'write') throw new StorageError('INVALID', this.path, `cannot ${what}: data directory is open read-only`);
  }

  /** Snapshot files (valid names only), oldest first (by index, then term), with their headers. */
  listSnapshots(): SnapshotListing[] {
    const out: SnapshotListing[] = [];
    if (!statOrNull(this.fs, this.snapDir)) return out;
    for (const name of listDir(this.fs, this.snapDir)) {
      const parsed = parseSnapshotFileName(name);
      if (!parsed) continue;
      const p = path.join(this.snapDir, name);
      const st = statOrNull(this.fs, p);
      if (!st || !st.isFile()) continue;
      let header: SnapshotHeader | null = null;
      let error: StorageError | null = null;
      try {
        header = readSnapshotHeader(p, this.syncOpts);
      } catch (e) {
        if (!(e instanceof StorageError)) throw e;
        error = e;
      }
      out.push({ name, path: p, index: parsed.index, term: parsed.term, size: st.size, header, error });
    }
    return out.sort((a, b) => a.index - b.index || a.term - b.term);
  }

  /** WAL segments in sequence order with their index ranges (each segment is read in full). */
  listSegments(): SegmentListing[] {
    if (!statOrNull(this.fs, this.walDir)) return [];
    return listSegmentFiles(this.walDir, this.syncOpts).map((f) => {
      const size = statOrNull(this.fs, f.path)?.size ?? 0;
      const base: SegmentListing = {
        ...f,
        size,
        recordCount: 0,
        entryCount: 0,
        minIndex: 0,
        maxIndex: 0,
        hardState: null,
        snapshotMarkers: [],
        damage: null,
        error: null,
      };
      let scan: SegmentScan;
      try {
        scan = scanSegmentFile(f.path, this.syncOpts);
      } catch (e) {
        if (!(e instanceof StorageError)) throw e;
        return { ...base, error: e };
      }
      summarise(scan, base);
      return base;
    });
  }

  /** Temporary, partially received, broken and torn-copy files left in the directory. */
  leftovers(): Leftover[] {
    const out: Leftover[] = [];
    for (const d of [this.path, this.snapDir, this.walDir]) {
      if (!statOrNull(this.fs, d)) continue;
      for (const name of listDir(this.fs, d)) {
        let kind: LeftoverKind | null = null;
        if (TEMP_NAME_RE.test(name)) kind = 'temp';
        else if (d === this.snapDir && name.endsWith(RECV_SUFFIX)) kind = 'recv';
        else if (name.endsWith(BROKEN_SUFFIX)) kind = 'broken';
        else if (TORN_RE.test(name)) kind = 'torn';
        if (!kind) continue;
        const p = path.join(d, name);
        out.push({ kind, name, path: p, size: statOrNull(this.fs, p)?.size ?? 0 });
      }
    }
    return out;
  }

  /**
   * Recovery rules (docs/FORMAT.md): newest snapshot passing its checksums (a failing one renamed
   * `*.broken` with repair), WAL replayed after it, last hard state, torn tail cut (copy kept) with
   * repair, CORRUPT_WAL on damage inside the log, orphaned temporaries removed with repair.
   * Without `repair` nothing on disk changes and `warnings` say what repair would do.
   */
  recover(opts: RecoverOptions = {}): Recovery {
    const repair = opts.repair === true;
    if (repair) this.requireWrite('repair');
    return recoverDir(this, repair, opts.loadContent !== false, opts.now ?? Date.now());
  }

  get lockPath(): string {
    return path.join(this.path, LOCK_FILE);
  }
}

function summarise(scan: SegmentScan, into: SegmentListing): void {
  into.damage = scan.damage;
  into.recordCount = scan.records.length;
  for (const r of scan.records) {
    const rec = r.record;
    if (rec.type === 'entry') {
      into.entryCount += 1;
      if (into.minIndex === 0 || rec.entry.index < into.minIndex) into.minIndex = rec.entry.index;
      if (rec.entry.index > into.maxIndex) into.maxIndex = rec.entry.index;
    } else if (rec.type === 'hardState') into.hardState = rec.hardState;
    else into.snapshotMarkers.push({ index: rec.index, term: rec.term, file: rec.file });
  }
}

/** The directories `mkdir -p dir` would create, outermost first. */
function missingDirs(fsys: FileSystem, dir: string): string[] {
  const out: string[] = [];
  for (let d = path.resolve(dir); !statOrNull(fsys, d); d = path.dirname(d)) {
    out.unshift(d);
    if (path.dirname(d) === d) break;
  }
  return out;
}

/**
 * In a directory without meta.json: is `name` something a first start leaves before its meta.json
 * is durable (the lock, lock and meta.json temporaries, the empty snap/ and wal/ made just before
 * meta.json)? A directory holding only those is one a crashed first start half created: creating
 * it again is safe. Anything else is foreign, and the directory is refused.
 */
function leftByFirstStart(fsys: FileSystem, dir: string, name: string): boolean {
  if (name === LOCK_FILE) return true;
  const tmp = TEMP_NAME_RE.exec(name);
  if (tmp) return name.slice(0, tmp.index) === LOCK_FILE || name.slice(0, tmp.index) === META_FILE;
  if (name !== SNAP_DIR && name !== WAL_DIR) return false;
  const p = path.join(dir, name);
  return statOrNull(fsys, p)?.isDirectory() === true && listDir(fsys, p).length === 0;
}

function mkdirDurable(dir: string, sync: SyncOptions): void {
  const fsys = fsOf(sync);
  if (statOrNull(fsys, dir)) return;
  try {
    fsys.mkdir(dir);
  } catch (e) {
    throw fsError(e, dir, 'create directory');
  }
  fsyncDir(path.dirname(dir), sync);
}

interface Lock {
  pid: number;
  isPidAlive: (pid: number) => boolean;
}

/**
 * Locks this process holds, per FileSystem, as `<pid>:<absolute dir>`. A LOCK holding the pid of
 * the opener is live only if the opener took it (it is in here): otherwise it was left by an
 * earlier process that had the same pid, which is gone since the pid is ours now (a node running
 * as pid 1 in a container has that pid at every restart). The simulator, which runs several
 * "processes" in one, gives each incarnation its own pid or a fresh FileSystem object.
 */
const heldLocks = new WeakMap<FileSystem, Set<string>>();

function lockKey(dir: string, pid: number): string {
  return `${pid}:${path.resolve(dir)}`;
}

/** Is the pid found in `dir`'s LOCK a live holder, for an opener with identity `lock`? */
function lockHolderAlive(fsys: FileSystem, dir: string, pid: number, lock: Lock): boolean {
  if (pid === lock.pid) return heldLocks.get(fsys)?.has(lockKey(dir, pid)) === true;
  return lock.isPidAlive(pid);
}

function noteHeld(fsys: FileSystem, dir: string, pid: number): void {
  let set = heldLocks.get(fsys);
  if (!set) heldLocks.set(fsys, (set = new Set()));
  set.add(lockKey(dir, pid));
}

/** Take `<dir>/LOCK` for `lock.pid`. Returns the pid of a stale lock that was taken over, if any. */
function acquireLock(dir: string, sync: SyncOptions, lock: Lock): number | null {
  const fsys = fsOf(sync);
  const lockPath = path.join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    const { tmp, fd } = createTemp(lockPath, fsys, 'create lock file');
    try {
      try {
        writeAll(fsys, fd, [Buffer.from(`${lock.pid}\n`)], tmp);
        if (sync.fsync !== false) fsyncFd(fsys, fd, tmp);
      } finally {
        closeQuietly(fsys, fd);
      }
      try {
        fsys.link(tmp, lockPath);
        fsyncDir(dir, sync);
        noteHeld(fsys, dir, lock.pid);
        return null;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError(e, lockPath, 'create lock file');
      }
      const pid = readLockPid(dir, sync);
      if (pid !== null && lockHolderAlive(fsys, dir, pid, lock)) {
        const who = pid === lock.pid ? 'this process' : `live process ${pid}`;
        throw new StorageError('LOCKED', dir, `data directory is locked by ${who} (${LOCK_FILE}); stop that node first or use a read-only command`);
      }
      // Stale: the holder is gone. Replace the lock, then check we own it (another taker may race us).
      try {
        fsys.rename(tmp, lockPath);
      } catch (e) {
        throw fsError(e, lockPath, 'take over stale lock file');
      }
      fsyncDir(dir, sync);
      if (readLockPid(dir, sync) === lock.pid) {
        noteHeld(fsys, dir, lock.pid);
        return pid ?? 0;
      }
    } finally {
      unlinkQuietly(fsys, tmp); // linked or renamed away already, usually
    }
  }
  throw new StorageError('LOCKED', dir, 'could not take the data directory lock (another process keeps taking it)');
}

function releaseLock(dir: string, sync: SyncOptions, pid: number): void {
  heldLocks.get(fsOf(sync))?.delete(lockKey(dir, pid));
  try {
    if (readLockPid(dir, sync) === pid) fsOf(sync).unlink(path.join(dir, LOCK_FILE));
  } catch {
    // nothing to release
  }
}
