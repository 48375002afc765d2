/**
 * Data directory: layout, lock, listings and recovery (see docs/FORMAT.md).
 *
 *   <dir>/meta.json     {"format": "raftsnap-data", "version": 1, "nodeId": "n1" | null, "created": <ms>}
 *   <dir>/LOCK          decimal pid of the live node holding the directory
 *   <dir>/snap/*.snap   snapshot files `<term %016x>-<index %016x>.snap`
 *   <dir>/wal/*.wal     WAL segments `<seq %016x>-<firstIndex %016x>.wal`
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Entry, HardState, NodeId } from '../raft/types.js';
import { LogReplay } from './replay.js';
import { StorageError, fsError } from './errors.js';
import { TEMP_NAME_RE, fsyncDir, isPidAlive, listDir, renameDurable, statOrNull, tempName, writeAll, writeFileAtomic, type SyncOptions } from './fsutil.js';
import {
  decodeSnapshot,
  parseSnapshotFileName,
  readSnapshotHeader,
  verifySnapshotBytes,
  type SnapshotContent,
  type SnapshotHeader,
} from './snapshot.js';
import {
  SEGMENT_HEADER_BYTES,
  listSegmentFiles,
  scanSegmentFile,
  type SegmentDamage,
  type SegmentScan,
  type SegmentState,
} from './wal.js';

export const DATA_DIR_FORMAT = 'raftsnap-data';
export const DATA_DIR_FORMAT_VERSION = 1;
export const META_FILE = 'meta.json';
export const LOCK_FILE = 'LOCK';
export const SNAP_DIR = 'snap';
export const WAL_DIR = 'wal';
export const BROKEN_SUFFIX = '.broken';
export const RECV_SUFFIX = '.recv';
export const TORN_RE = /\.torn-\d+$/;

export interface DataDirMeta {
  format: typeof DATA_DIR_FORMAT;
  version: number;
  nodeId: NodeId | null;
  /** Creation time, ms since the epoch. */
  created: number;
}

export interface OpenOptions extends SyncOptions {
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

export type RecoveryWarningKind = 'broken-snapshot' | 'torn-tail' | 'temp-file' | 'partial-receive' | 'stale-lock' | 'snapshot-name';

export interface RecoveryWarning {
  kind: RecoveryWarningKind;
  file: string;
  offset?: number;
  /** One line: what is wrong and what recovery did (repair) or would do (read-only). */
  message: string;
}

export interface RecoverOptions {
  /** Change the directory to fix what is found (write mode only). Default false: change nothing. */
  repair?: boolean;
  /** Decode the snapshot's payload (default true); false only verifies its checksums. */
  loadContent?: boolean;
  /** Time used in `.torn-<ms>` names (default Date.now()). */
  now?: number;
}

export interface RecoveredSnapshot {
  header: SnapshotHeader;
  path: string;
  /** Null when `loadContent: false`. */
  content: SnapshotContent | null;
}

export interface Recovery {
  snapshot: RecoveredSnapshot | null;
  /** Last hard state recorded, with `commit` raised to at least the snapshot's index. */
  hardState: HardState;
  /** Log entries after the snapshot's index (or from 1), contiguous. */
  entries: Entry[];
  /** Index of the last entry (the snapshot's index when there is none after it). */
  lastIndex: number;
  /** Snapshot markers found in the WAL, oldest first. */
  markers: Array<{ index: number; term: number; file: string }>;
  warnings: RecoveryWarning[];
  /** Whether this call changed anything on disk. */
  repaired: boolean;
  /** WAL segments as they are after recovery. */
  segments: SegmentState[];
}

function readMeta(dir: string): DataDirMeta {
  const file = path.join(dir, META_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
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
    throw new StorageError('UNSUPPORTED_VERSION', file, `unsupported data directory version ${String(o.version)} (this build reads version ${DATA_DIR_FORMAT_VERSION})`);
  }
  return {
    format: DATA_DIR_FORMAT,
    version: o.version,
    nodeId: typeof o.nodeId === 'string' ? o.nodeId : null,
    created: typeof o.created === 'number' ? o.created : 0,
  };
}

function metaBytes(meta: DataDirMeta): Buffer {
  return Buffer.from(JSON.stringify(meta, null, 2) + '\n');
}

/** The pid in a LOCK file, or null when there is no lock file or it does not hold a pid. */
export function readLockPid(dir: string): number | null {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8');
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
  private closed = false;
  private readonly syncOpts: SyncOptions;

  private constructor(p: string, mode: 'read' | 'write', meta: DataDirMeta, lockedBy: number | null, stale: number | null, sync: SyncOptions) {
    this.path = p;
    this.snapDir = path.join(p, SNAP_DIR);
    this.walDir = path.join(p, WAL_DIR);
    this.mode = mode;
    this.meta = meta;
    this.lockedBy = lockedBy;
    this.staleLockPid = stale;
    this.syncOpts = sync;
  }

  get fsync(): boolean {
    return this.syncOpts.fsync !== false;
  }

  /** Create a new data directory (it must not exist or be empty) and open it in write mode. */
  static create(dir: string, opts: Omit<OpenOptions, 'mode' | 'create'> = {}): DataDir {
    const st = statOrNull(dir);
    if (st) {
      if (!st.isDirectory()) throw new StorageError('ENOTDIR', dir, 'exists and is not a directory');
      if (listDir(dir).length > 0) throw new StorageError('EXISTS', dir, 'directory is not empty');
    }
    return DataDir.open(dir, { ...opts, mode: 'write', create: true });
  }

  static open(dir: string, opts: OpenOptions = {}): DataDir {
    const mode = opts.mode ?? 'read';
    const sync: SyncOptions = { fsync: opts.fsync !== false };
    const st = statOrNull(dir);
    if (!st) {
      if (!(opts.create && mode === 'write')) throw new StorageError('ENOENT', dir, 'no such data directory');
      try {
        fs.mkdirSync(dir, { recursive: true });
      } catch (e) {
        throw fsError(e, dir, 'create data directory');
      }
      fsyncDir(path.dirname(path.resolve(dir)), sync);
    } else if (!st.isDirectory()) {
      throw new StorageError('ENOTDIR', dir, 'not a directory (expected a raftsnap data directory)');
    }
    try {
      fs.accessSync(dir, mode === 'write' ? fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK : fs.constants.R_OK | fs.constants.X_OK);
    } catch (e) {
      throw fsError(e, dir, mode === 'write' ? 'open data directory for writing' : 'open data directory');
    }

    if (mode === 'read') {
      const meta = readMeta(dir);
      const pid = readLockPid(dir);
      const alive = pid !== null && isPidAlive(pid);
      return new DataDir(dir, 'read', meta, alive ? pid : null, pid !== null && !alive ? pid : null, sync);
    }

    const stale = acquireLock(dir, sync);
    try {
      let meta: DataDirMeta;
      const metaPath = path.join(dir, META_FILE);
      if (!statOrNull(metaPath)) {
        const others = listDir(dir).filter((n) => n !== LOCK_FILE && !n.startsWith(`${LOCK_FILE}.tmp-`));
        if (!opts.create) throw new StorageError('NOT_DATA_DIR', dir, `not a raftsnap data directory (no ${META_FILE})`);
        if (others.length > 0) throw new StorageError('NOT_DATA_DIR', dir, `not a raftsnap data directory (no ${META_FILE}) and not empty`);
        meta = { format: DATA_DIR_FORMAT, version: DATA_DIR_FORMAT_VERSION, nodeId: opts.nodeId ?? null, created: opts.createdAt ?? Date.now() };
        mkdirDurable(path.join(dir, SNAP_DIR), sync);
        mkdirDurable(path.join(dir, WAL_DIR), sync);
        writeFileAtomic(metaPath, metaBytes(meta), sync);
      } else {
        meta = readMeta(dir);
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
      return new DataDir(dir, 'write', meta, null, stale, sync);
    } catch (e) {
      releaseLock(dir);
      throw e;
    }
  }

  /** Release the lock (write mode). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.mode === 'write') releaseLock(this.path);
  }

  /** Record the node id in meta.json (write mode; refused when another id is recorded). */
  setNodeId(nodeId: NodeId): void {
    this.requireWrite('set the node id');
    if (this.meta.nodeId === nodeId) return;
    if (this.meta.nodeId !== null) throw new StorageError('NODE_MISMATCH', this.path, `data directory belongs to node ${this.meta.nodeId}, not ${nodeId}`);
    this.meta = { ...this.meta, nodeId };
    writeFileAtomic(path.join(this.path, META_FILE), metaBytes(this.meta), this.syncOpts);
  }

  requireWrite(what: string): void {
    if (this.closed) throw new StorageError('INVALID', this.path, `cannot ${what}: data directory is closed`);
    if (this.mode !== 'write') throw new StorageError('INVALID', this.path, `cannot ${what}: data directory is open read-only`);
  }

  /** Snapshot files (valid names only), oldest first (by index, then term), with their headers. */
  listSnapshots(): SnapshotListing[] {
    const out: SnapshotListing[] = [];
    if (!statOrNull(this.snapDir)) return out;
    for (const name of listDir(this.snapDir)) {
      const parsed = parseSnapshotFileName(name);
      if (!parsed) continue;
      const p = path.join(this.snapDir, name);
      const st = statOrNull(p);
      if (!st || !st.isFile()) continue;
      let header: SnapshotHeader | null = null;
      let error: StorageError | null = null;
      try {
        header = readSnapshotHeader(p);
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
    if (!statOrNull(this.walDir)) return [];
    return listSegmentFiles(this.walDir).map((f) => {
      const size = statOrNull(f.path)?.size ?? 0;
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
        scan = scanSegmentFile(f.path);
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
      if (!statOrNull(d)) continue;
      for (const name of listDir(d)) {
        let kind: LeftoverKind | null = null;
        if (TEMP_NAME_RE.test(name)) kind = 'temp';
        else if (d === this.snapDir && name.endsWith(RECV_SUFFIX)) kind = 'recv';
        else if (name.endsWith(BROKEN_SUFFIX)) kind = 'broken';
        else if (TORN_RE.test(name)) kind = 'torn';
        if (!kind) continue;
        const p = path.join(d, name);
        out.push({ kind, name, path: p, size: statOrNull(p)?.size ?? 0 });
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
    return recoverDir(this, repair, opts.loadContent !== false, opts.now ?? Date.now(), this.syncOpts);
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

function mkdirDurable(dir: string, sync: SyncOptions): void {
  if (statOrNull(dir)) return;
  try {
    fs.mkdirSync(dir);
  } catch (e) {
    throw fsError(e, dir, 'create directory');
  }
  fsyncDir(path.dirname(dir), sync);
}

/** Take `<dir>/LOCK` for this process. Returns the pid of a stale lock that was taken over, if any. */
function acquireLock(dir: string, sync: SyncOptions): number | null {
  const lockPath = path.join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    const tmp = tempName(lockPath);
    let fd: number;
    try {
      fd = fs.openSync(tmp, 'wx', 0o644);
    } catch (e) {
      throw fsError(e, dir, 'create lock file');
    }
    try {
      writeAll(fd, [Buffer.from(`${process.pid}\n`)], tmp);
      if (sync.fsync !== false) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    try {
      try {
        fs.linkSync(tmp, lockPath);
        fsyncDir(dir, sync);
        return null;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError(e, lockPath, 'create lock file');
      }
      const pid = readLockPid(dir);
      if (pid !== null && isPidAlive(pid)) {
        const who = pid === process.pid ? 'this process' : `live process ${pid}`;
        throw new StorageError('LOCKED', dir, `data directory is locked by ${who} (${LOCK_FILE}); stop that node first or use a read-only command`);
      }
      // Stale: the holder is gone. Replace the lock, then check we own it (another taker may race us).
      fs.renameSync(tmp, lockPath);
      fsyncDir(dir, sync);
      if (readLockPid(dir) === process.pid) return pid ?? 0;
    } finally {
      try {
        fs.unlinkSync(tmp);
      } catch {
        // linked or renamed away already
      }
    }
  }
  throw new StorageError('LOCKED', dir, 'could not take the data directory lock (another process keeps taking it)');
}

function releaseLock(dir: string): void {
  try {
    if (readLockPid(dir) === process.pid) fs.unlinkSync(path.join(dir, LOCK_FILE));
  } catch {
    // nothing to release
  }
}

// ------------------------------------------------------------------------------------------------
// Recovery

function recoverDir(dd: DataDir, repair: boolean, loadContent: boolean, now: number, sync: SyncOptions): Recovery {
  const warnings: RecoveryWarning[] = [];
  let repaired = false;

  if (dd.staleLockPid !== null && dd.mode === 'read') {
    warnings.push({ kind: 'stale-lock', file: path.join(dd.path, LOCK_FILE), message: `${path.join(dd.path, LOCK_FILE)}: stale lock of process ${dd.staleLockPid}, which is not running` });
  }

  // 1. Orphaned temporaries and partial receives.
  for (const l of dd.leftovers()) {
    if (l.kind !== 'temp' && l.kind !== 'recv') continue;
    const what = l.kind === 'temp' ? 'orphaned temporary file' : 'partially received snapshot';
    if (repair) {
      try {
        fs.unlinkSync(l.path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(e, l.path, 'remove leftover');
      }
      repaired = true;
      warnings.push({ kind: l.kind === 'temp' ? 'temp-file' : 'partial-receive', file: l.path, message: `${l.path}: ${what} (${l.size} bytes), removed` });
    } else {
      warnings.push({ kind: l.kind === 'temp' ? 'temp-file' : 'partial-receive', file: l.path, message: `${l.path}: ${what} (${l.size} bytes), recovery would remove it` });
    }
  }
  if (repair && repaired) {
    fsyncDir(dd.path, sync);
    fsyncDir(dd.snapDir, sync);
    fsyncDir(dd.walDir, sync);
  }

  // 2. The newest snapshot that passes its checksums.
  let snapshot: RecoveredSnapshot | null = null;
  const candidates = dd.listSnapshots().reverse();
  for (const c of candidates) {
    try {
      let bytes: Buffer;
      try {
        bytes = fs.readFileSync(c.path);
      } catch (e) {
        throw fsError(e, c.path, 'read snapshot');
      }
      let header: SnapshotHeader;
      let content: SnapshotContent | null = null;
      if (loadContent) ({ header, content } = decodeSnapshot(bytes, c.path));
      else header = verifySnapshotBytes(bytes, c.path);
      if (header.index !== c.index || header.term !== c.term) {
        warnings.push({
          kind: 'snapshot-name',
          file: c.path,
          message: `${c.path}: file name says index ${c.index} term ${c.term} but the header says index ${header.index} term ${header.term}; the header is used`,
        });
      }
      snapshot = { header, path: c.path, content };
      break;
    } catch (e) {
      if (!(e instanceof StorageError) || e.code === 'EACCES') throw e;
      const next = candidates[candidates.indexOf(c) + 1];
      const fallback = next ? `falling back to ${next.name}` : 'no older snapshot to fall back to';
      if (repair) {
        renameDurable(c.path, c.path + BROKEN_SUFFIX, sync);
        repaired = true;
        warnings.push({ kind: 'broken-snapshot', file: c.path, offset: e.offset, message: `${e.message}; renamed to ${c.name}${BROKEN_SUFFIX}, ${fallback}` });
      } else {
        warnings.push({ kind: 'broken-snapshot', file: c.path, offset: e.offset, message: `${e.message}; recovery would rename it to ${c.name}${BROKEN_SUFFIX}, ${fallback}` });
      }
    }
  }

  // 3. Replay the WAL.
  const files = statOrNull(dd.walDir) ? listSegmentFiles(dd.walDir) : [];
  const segments: SegmentState[] = [];
  const replay = new LogReplay();


  for (let i = 0; i < files.length; i++) {
    const f = files[i]!;
    const isLast = i === files.length - 1;
    const scan = scanSegmentFile(f.path);
    if (scan.damage) {
      const d = scan.damage;
      if (!isLast || !d.tailOnly) {
        const where = isLast ? 'valid records follow it' : 'it is not in the last segment';
        throw new StorageError('CORRUPT_WAL', f.path, `WAL corrupt in the middle of the log: ${d.reason}; ${where}, so this is not a torn write`, d.offset);
      }
      const tornName = `${f.name}.torn-${now}`;
      const lost = scan.size - scan.validEnd;
      if (repair) {
        const tornPath = path.join(dd.walDir, tornName);
        if (scan.header === null) {
          renameDurable(f.path, tornPath, sync);
        } else {
          cutSegment(f.path, tornPath, scan.validEnd, sync);
        }
        repaired = true;
        warnings.push({
          kind: 'torn-tail',
          file: f.path,
          offset: d.offset,
          message: `${f.path}: torn tail at offset ${d.offset} (${d.reason}); ${scan.header === null ? 'segment moved' : `cut ${lost} bytes`}, copy kept as ${tornName}`,
        });
      } else {
        warnings.push({
          kind: 'torn-tail',
          file: f.path,
          offset: d.offset,
          message: `${f.path}: torn tail at offset ${d.offset} (${d.reason}); recovery would ${scan.header === null ? 'set the segment aside' : `cut ${lost} bytes`} after keeping a copy`,
        });
      }
      if (scan.header === null) continue;
    }
    const seg: SegmentState = {
      name: f.name,
      path: f.path,
      seq: f.seq,
      firstIndex: f.firstIndex,
      size: repair && scan.damage ? scan.validEnd : scan.size,
      entryRecords: 0,
      minIndex: 0,
      maxIndex: 0,
    };
    for (const r of scan.records) {
      const rec = r.record;
      if (rec.type === 'entry') {
        const e = rec.entry;
        seg.entryRecords += 1;
        if (seg.minIndex === 0 || e.index < seg.minIndex) seg.minIndex = e.index;
        if (e.index > seg.maxIndex) seg.maxIndex = e.index;
      }
      replay.apply(rec, { file: f.path, offset: r.offset });
    }
    segments.push(seg);
  }

  // 4. Entries after the snapshot.
  const snapPos = snapshot ? { index: snapshot.header.index, term: snapshot.header.term } : null;
  const entries = replay.entriesAfter(snapPos, dd.path);
  const hardState = replay.hardStateWith(snapPos);
  const markers = replay.markers;
  const si = snapPos ? snapPos.index : 0;
  return {
    snapshot,
    hardState,
    entries,
    lastIndex: entries.length > 0 ? entries[entries.length - 1]!.index : si,
    markers,
    warnings,
    repaired,
    segments,
  };
}

/** Keep a copy of the segment at `copyPath`, then cut it to `validEnd` bytes. */
function cutSegment(file: string, copyPath: string, validEnd: number, sync: SyncOptions): void {
  try {
    fs.copyFileSync(file, copyPath, fs.constants.COPYFILE_EXCL);
    if (sync.fsync !== false) {
      const cfd = fs.openSync(copyPath, 'r+');
      try {
        fs.fsyncSync(cfd);
      } finally {
        fs.closeSync(cfd);
      }
    }
  } catch (e) {
    throw fsError(e, copyPath, 'keep a copy of the torn segment');
  }
  fsyncDir(path.dirname(copyPath), sync);
  try {
    const fd = fs.openSync(file, 'r+');
    try {
      fs.ftruncateSync(fd, Math.max(validEnd, SEGMENT_HEADER_BYTES));
      if (sync.fsync !== false) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    throw fsError(e, file, 'cut the torn tail');
  }
}
