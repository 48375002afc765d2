/**
 * Durable state of a running node: the interface the Raft driver uses, `DiskStorage` over a
 * DataDir on an injected FileSystem: node:fs for a data directory, an in-memory FileSystem (MemFs)
 * when `serve` has no data directory, the simulator's SimFs in the simulator. One implementation
 * of the rules everywhere.
 *
 * Calls are synchronous: `append` and `setHardState` only buffer; `sync` writes everything buffered
 * and fsyncs once (group commit). The driver calls `sync` before it sends messages or replies.
 *
 * Fail-stop: the first error thrown by any call (a failed open, write, fsync, rename, unlink or
 * read, damage found by recovery) stops the storage; only INVALID (a call refused for its
 * arguments, before anything was written) does not. Every later call throws a
 * STOPPED StorageError naming that first failure, and nothing is written again (`abandon` releases
 * descriptors and the lock without writing; `close` does the same and throws STOPPED).
 */
import { maxSnapshotFileBytes, readLimits } from '../limits.js';
import path from 'node:path';
import type { Entry, HardState, NodeId, SnapshotMeta, SnapshotStore } from '../raft/types.js';
import { DataDir, RECV_SUFFIX, type LockIdentity, type RecoveryWarning } from './datadir.js';
import { StorageError, fsError, stoppedError } from './errors.js';
import type { FileSystem } from './fs.js';
import { closeQuietly, fsyncDir, fsyncFd, renameDurable, unlinkQuietly, writeFileAtomic, beginAtomicWrite, finishAtomicWrite, type SyncOptions } from './fsutil.js';
import { MemFs } from './mem-fs.js';
import {
  headerMeta,
  readAt,
  readSnapshotFile,
  snapshotFileName,
  verifySnapshotBytes,
  type SnapshotContent,
  type SnapshotHeader,
} from './snapshot.js';
import { ArrivingSnapshot, SnapshotReader } from './snapshot-read.js';
import { FramedSnapshot } from './snapshot-framed.js';
import { DEFAULT_SEGMENT_BYTES } from './wal.js';
import { WalWriter } from './wal-writer.js';

export const DEFAULT_RETAIN = 2;

/** Where `DiskStorage.inMemory` keeps its data directory, inside its own MemFs. */
export const MEMORY_DATA_DIR = '/raftsnap';

export interface NodeStorageOptions extends LockIdentity {
  /** The file system holding the directory (default nodeFs, node:fs). */
  fs?: FileSystem;
  /** fsync files and directories (default true). */
  fsync?: boolean;
  /** WAL segment size limit in bytes (default 4 MiB). */
  segmentBytes?: number;
  /** Snapshot files kept (default 2, at least 1). */
  retain?: number;
  /** Node id to record in (or check against) the data directory. */
  nodeId?: NodeId;
  /** Creation time recorded in a new directory's meta.json. */
  createdAt?: number;
  /** Clock for the `.torn-<ms>` names recovery gives copies of torn segments (default Date.now; the simulator's clock there). */
  now?: () => number;
}

export interface NodeRecovery<C extends SnapshotContent | null = SnapshotContent> {
  snapshot: { meta: SnapshotMeta; header: SnapshotHeader; content: C } | null;
  /** Last hard state (commit at least the snapshot index); all zero for a new node. */
  hardState: HardState;
  /** Log entries after the snapshot, contiguous. */
  entries: Entry[];
  /** What recovery found and repaired (broken snapshots, torn tail, leftovers). */
  warnings: RecoveryWarning[];
}

export interface StorageStats {
  /** Log entry records held in the WAL (including ones later replaced). */
  logEntries: number;
  /** Index of the last entry appended (or of the newest snapshot). */
  lastIndex: number;
  walSegments: number;
  walBytes: number;
  snapshots: number;
  snapshotBytes: number;
  /** Newest snapshot, if any. */
  snapshot: SnapshotMeta | null;
}

export interface NodeStorage {
  /**
   * The durable state (runs recovery with repair on disk). Buffered, unsynced writes are not
   * included. `{ content: false }`: the snapshot's checksums are verified but its state is not
   * decoded (`content` is null; read it with `openSnapshot`).
   */
  recover(): NodeRecovery;
  recover(opts: { content: false }): NodeRecovery<null>;
  /** Buffer entries; a first index at or below the last one replaces the log from there. */
  append(entries: Entry[]): void;
  /** Buffer a hard state. */
  setHardState(hs: HardState): void;
  /** Write everything buffered and fsync once. */
  sync(): void;
  /**
   * `sync` whose fsync runs off the event loop where the file system can (FileSystem.fsyncAsync):
   * resolves once everything buffered is durable; null when it already is. Until it settles every
   * other call that writes the WAL is refused (INVALID): wait for `walInFlight` first.
   */
  syncAsync(): Promise<void> | null;
  /** The running asynchronous fsync of `syncAsync` (null when none). */
  readonly walInFlight: Promise<void> | null;
  /** Durably store an encoded snapshot file taken locally, record it in the WAL, apply retention. */
  saveSnapshot(meta: SnapshotMeta, fileBytes: Uint8Array): void;
  /**
   * `saveSnapshot` with the file's fsync off the event loop (FileSystem.fsyncAsync, where there
   * is one); the WAL marker is written through `walIdle`, which runs it once no WAL fsync is in
   * flight. A failure stops the storage.
   */
  saveSnapshotAsync(meta: SnapshotMeta, fileBytes: Uint8Array, walIdle: <T>(fn: () => T) => Promise<T>): Promise<void>;
  /**
   * A stored snapshot's state a chunk at a time (the one at meta's index and term, or the newest;
   * null when there is none): header and length checked here, the CRC computed while the chunks
   * are decoded and checked at their end (`verify: 'streaming'`), so that a caller that keeps the
   * state out of sight until the end (a node installing or recovering) reads the file once, in
   * short stretches. Errors while reading do not stop the storage: the node stops itself.
   */
  openSnapshot(meta?: { index: number; term: number }): SnapshotReader | null;
  /**
   * A stored snapshot read whole into memory and checked, whose chunks can be decoded in any order
   * (format 3, FramedSnapshot); null when there is none or it is a format 1 or 2 file.
   */
  openFramed(meta: { index: number; term: number }): FramedSnapshot | null;
  /** Decode a stored snapshot: the one at meta's index and term, or the newest. */
  loadSnapshot(meta?: { index: number; term: number }): { meta: SnapshotMeta; header: SnapshotHeader; content: SnapshotContent } | null;
  /**
   * Delete the WAL (segments) whose entries all lie at or below `upToIndex`, clamped to the oldest
   * retained snapshot's index so that recovery can always fall back. Syncs buffered records first.
   * Returns the number of entry records dropped.
   */
  compactLog(upToIndex: number): number;
  /** Keep only the `retain` newest snapshots (default: the configured retain). */
  pruneSnapshots(retain?: number): void;
  snapshotStore(): SnapshotStore;
  stats(): StorageStats;
  /** Sync and release (the lock for DiskStorage). After a failure: release, then throw STOPPED. */
  close(): void;
  /**
   * Release without writing anything (after a failure, fail-stop): buffered records are dropped,
   * files closed, the lock released.
   */
  abandon(): void;
  /** The first failure once the storage has stopped (fail-stop), null while it works. */
  readonly failure: StorageError | null;
}

interface Receiving {
  meta: SnapshotMeta;
  size: number;
  received: number;
  /** Header and payload CRC, checked as the bytes arrive. */
  verify: ArrivingSnapshot;
  /** Bytes written since the receive file was last fsynced. */
  unsynced: number;
}

/**
 * A receive file is fsynced every this many bytes, so that the fsync at the end of a transfer has
 * little left to write (one long fsync of a whole large file is an event-loop pause).
 */
const RECV_SYNC_BYTES = 1 << 20;

function sameSnap(a: { index: number; term: number }, b: { index: number; term: number }): boolean {
  return a.index === b.index && a.term === b.term;
}

function checkAppend(entries: Entry[], lastIndex: number, where: string): void {
  if (entries.length === 0) return;
  if (entries[0]!.index > lastIndex + 1) {
    throw new StorageError('INVALID', where, `append of entry ${entries[0]!.index} after last index ${lastIndex} would leave a gap`);
  }
  for (let i = 1; i < entries.length; i++) {
    if (entries[i]!.index !== entries[i - 1]!.index + 1) throw new StorageError('INVALID', where, 'appended entries are not contiguous');
  }
}

// ------------------------------------------------------------------------------------------------
// Disk

interface SnapFile {
  meta: SnapshotMeta;
  header: SnapshotHeader;
  path: string;
  size: number;
}

/**
 * Highest index whose log entries compaction may delete: below both the requested index and the
 * oldest kept snapshot. The entry AT the oldest snapshot's index is kept, so that replay can still
 * compare its term with a snapshot marker at that index (Figure 13 rules 6-7): without it, a
 * snapshot received with another term could not be told from a matching one, and the entries
 * after it would wrongly survive recovery.
 */
export function compactionLimit(upToIndex: number, snaps: ReadonlyArray<{ meta: SnapshotMeta }>): number {
  const oldest = snaps.length > 0 ? snaps[0]!.meta.index : 0;
  return Math.min(upToIndex, oldest) - 1;
}

export class DiskStorage implements NodeStorage {
  readonly dir: DataDir;
  private readonly fs: FileSystem;
  private readonly sync_: SyncOptions;
  private readonly retain: number;
  private readonly segmentBytes: number;
  private readonly now: () => number;
  private writer: WalWriter | null = null;
  private lastIndex = 0;
  private snaps: SnapFile[] = [];
  private readFd: { path: string; fd: number } | null = null;
  private recv: Receiving | null = null;
  private closed = false;
  private failed: StorageError | null = null;
  private store: SnapshotStore | null = null;

  private constructor(dir: DataDir, opts: NodeStorageOptions) {
    this.dir = dir;
    this.fs = dir.fs;
    this.sync_ = dir.sync;
    this.retain = Math.max(1, opts.retain ?? DEFAULT_RETAIN);
    this.segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.now = opts.now ?? Date.now;
  }

  /**
   * Open (creating when needed) a data directory in write mode: takes the lock, refuses a live one.
   * `opts.fs` is the FileSystem (default node:fs); `opts.pid` / `opts.isPidAlive` the lock identity.
   */
  static open(dirPath: string, opts: NodeStorageOptions = {}): DiskStorage {
    const dd = DataDir.open(dirPath, {
      mode: 'write',
      create: true,
      nodeId: opts.nodeId,
      fsync: opts.fsync,
      createdAt: opts.createdAt,
      ...(opts.fs !== undefined ? { fs: opts.fs } : {}),
      ...(opts.pid !== undefined ? { pid: opts.pid } : {}),
      ...(opts.isPidAlive !== undefined ? { isPidAlive: opts.isPidAlive } : {}),
    });
    return new DiskStorage(dd, opts);
  }

  /** A new, empty node state in memory: DiskStorage over its own MemFs, at MEMORY_DATA_DIR. */
  static inMemory(opts: Omit<NodeStorageOptions, 'fs'> = {}): DiskStorage {
    return DiskStorage.open(MEMORY_DATA_DIR, { ...opts, fs: new MemFs() });
  }

  get failure(): StorageError | null {
    return this.failed;
  }

  /**
   * Run one call: refused once stopped or closed; the first error it throws stops the storage
   * (the error itself is rethrown as is), except INVALID: a call refused for its arguments before
   * anything was written (a gap in `append`, snapshot bytes of another index) leaves it usable.
   */
  private guard<T>(call: () => T): T {
    if (this.failed) throw stoppedError(this.failed);
    if (this.closed) throw new StorageError('INVALID', this.dir.path, 'storage is closed');
    try {
      return call();
    } catch (e) {
      if (!this.failed && !(e instanceof StorageError && e.code === 'INVALID')) {
        this.failed = e instanceof StorageError ? e : new StorageError('IO', this.dir.path, `unexpected failure: ${e instanceof Error ? e.message : String(e)}`, undefined, e);
        this.writer?.abandon();
        this.closeReadFd();
      }
      throw e;
    }
  }

  private ensureOpen(): WalWriter {
    if (!this.writer) this.recoverNow();
    return this.writer!;
  }

  recover(): NodeRecovery;
  recover(opts: { content: false }): NodeRecovery<null>;
  recover(opts: { content?: boolean } = {}): NodeRecovery<SnapshotContent | null> {
    return this.guard(() => this.recoverNow(opts.content !== false));
  }

  private recoverNow(loadContent = true): NodeRecovery<SnapshotContent | null> {
    // A restart: what was buffered and not synced is gone, as after a crash.
    this.writer?.abandon();
    this.writer = null;
    this.closeReadFd();
    const r = this.dir.recover({ repair: true, loadContent, now: Math.floor(this.now()) });
    this.writer = new WalWriter(this.dir.walDir, r.segments, { hardState: r.hardState, lastIndex: r.lastIndex }, { ...this.sync_, segmentBytes: this.segmentBytes });
    this.lastIndex = r.lastIndex;
    this.refreshSnaps();
    this.recv = null;
    return {
      snapshot: r.snapshot ? { meta: headerMeta(r.snapshot.header), header: r.snapshot.header, content: loadContent ? r.snapshot.content! : null } : null,
      hardState: r.hardState,
      entries: r.entries,
      warnings: r.warnings,
    };
  }

  private refreshSnaps(): void {
    this.snaps = [];
    for (const s of this.dir.listSnapshots()) {
      if (s.header) this.snaps.push({ meta: headerMeta(s.header), header: s.header, path: s.path, size: s.size });
    }
  }

  private newest(): SnapFile | null {
    return this.snaps.length > 0 ? this.snaps[this.snaps.length - 1]! : null;
  }

  append(entries: Entry[]): void {
    this.guard(() => {
      const w = this.ensureOpen();
      checkAppend(entries, Math.max(this.lastIndex, this.newest()?.meta.index ?? 0), this.dir.path);
      for (const e of entries) w.add({ type: 'entry', entry: e });
      if (entries.length > 0) this.lastIndex = entries[entries.length - 1]!.index;
    });
  }

  setHardState(hs: HardState): void {
    this.guard(() => this.ensureOpen().add({ type: 'hardState', hardState: { term: hs.term, votedFor: hs.votedFor, commit: hs.commit } }));
  }

  sync(): void {
    this.guard(() => this.ensureOpen().sync());
  }

  syncAsync(): Promise<void> | null {
    const p = this.guard(() => this.ensureOpen().syncAsync());
    if (!p) return null;
    return p.catch((e: unknown) => {
      if (!this.failed) {
        this.failed = e instanceof StorageError ? e : new StorageError('IO', this.dir.path, `unexpected failure: ${e instanceof Error ? e.message : String(e)}`, undefined, e);
        this.writer?.abandon();
        this.closeReadFd();
      }
      throw e;
    });
  }

  get walInFlight(): Promise<void> | null {
    return this.writer?.inFlight ?? null;
  }

  saveSnapshot(meta: SnapshotMeta, fileBytes: Uint8Array): void {
    this.guard(() => {
      const { h, file } = this.checkSnapshotBytes(meta, fileBytes);
      writeFileAtomic(file, fileBytes, this.sync_);
      this.recordSnapshot(h, file, fileBytes.length);
    });
  }

  saveSnapshotAsync(meta: SnapshotMeta, fileBytes: Uint8Array, walIdle: <T>(fn: () => T) => Promise<T>): Promise<void> {
    let begun: { h: SnapshotHeader; w: ReturnType<typeof beginAtomicWrite> };
    try {
      // Checks and the write into the temporary file: synchronous, a failure stops the storage at once.
      begun = this.guard(() => {
        const { h, file } = this.checkSnapshotBytes(meta, fileBytes);
        return { h, w: beginAtomicWrite(file, fileBytes, this.sync_) };
      });
    } catch (e) {
      return Promise.reject(e as Error);
    }
    const { h, w } = begun;
    return finishAtomicWrite(w, this.sync_).then(
      () => walIdle(() => this.guard(() => this.recordSnapshot(h, w.file, fileBytes.length))),
      (e: unknown) => {
        // As guard does: the first failure stops the storage.
        if (!this.failed) {
          this.failed = e instanceof StorageError ? e : new StorageError('IO', this.dir.path, `unexpected failure: ${e instanceof Error ? e.message : String(e)}`, undefined, e);
          this.writer?.abandon();
          this.closeReadFd();
        }
        throw e;
      },
    );
  }

  /** The header of snapshot bytes about to be saved, checked against `meta` (once: writing does not verify again), and the file's path. */
  private checkSnapshotBytes(meta: SnapshotMeta, fileBytes: Uint8Array): { h: SnapshotHeader; file: string } {
    this.ensureOpen();
    const h = verifySnapshotBytes(fileBytes, `snapshot ${meta.index}/${meta.term}`);
    if (!sameSnap(h, meta)) {
      throw new StorageError('INVALID', this.dir.snapDir, `snapshot bytes are for index ${h.index} term ${h.term}, not ${meta.index}/${meta.term}`);
    }
    return { h, file: path.join(this.dir.snapDir, snapshotFileName(h)) };
  }

  /** A snapshot file is durably in place: record it in the WAL (marker + fsync) and prune old ones. */
  private recordSnapshot(h: SnapshotHeader, file: string, size: number): void {
    const w = this.ensureOpen();
    this.installed(h, file, size);
    w.add({ type: 'snapshot', index: h.index, term: h.term, file: path.basename(file) });
    w.sync();
    this.prune(this.retain);
  }

  private installed(h: SnapshotHeader, file: string, size: number): void {
    this.snaps = this.snaps.filter((s) => s.path !== file);
    this.snaps.push({ meta: headerMeta(h), header: h, path: file, size });
    this.snaps.sort((a, b) => a.meta.index - b.meta.index || a.meta.term - b.meta.term);
  }

  loadSnapshot(meta?: { index: number; term: number }): { meta: SnapshotMeta; header: SnapshotHeader; content: SnapshotContent } | null {
    return this.guard(() => {
      const s = meta ? this.snaps.find((x) => sameSnap(x.meta, meta)) : this.newest();
      if (!s) return null;
      const { header, content } = readSnapshotFile(s.path, this.sync_);
      return { meta: headerMeta(header), header, content };
    });
  }

  openSnapshot(meta?: { index: number; term: number }): SnapshotReader | null {
    return this.guard(() => {
      const s = meta ? this.snaps.find((x) => sameSnap(x.meta, meta)) : this.newest();
      if (!s) return null;
      return SnapshotReader.open(s.path, { ...this.sync_, verify: 'streaming' });
    });
  }

  openFramed(meta: { index: number; term: number }): FramedSnapshot | null {
    return this.guard(() => {
      const s = this.snaps.find((x) => sameSnap(x.meta, meta));
      return s ? FramedSnapshot.open(s.path, this.sync_) : null;
    });
  }

  compactLog(upToIndex: number): number {
    return this.guard(() => {
      const w = this.ensureOpen();
      w.sync();
      const limit = compactionLimit(upToIndex, this.snaps);
      if (limit <= 0) return 0;
      const removed = w.deleteCovered(limit);
      return removed.reduce((n, s) => n + s.entryRecords, 0);
    });
  }

  pruneSnapshots(retain = this.retain): void {
    this.guard(() => this.prune(retain));
  }

  private prune(retain: number): void {
    const keep = Math.max(1, retain);
    if (this.snaps.length <= keep) return;
    const drop = this.snaps.slice(0, this.snaps.length - keep);
    for (const s of drop) {
      if (this.readFd?.path === s.path) this.closeReadFd();
      try {
        this.fs.unlink(s.path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(e, s.path, 'delete old snapshot');
      }
      this.snaps = this.snaps.filter((x) => x !== s);
    }
    fsyncDir(this.dir.snapDir, this.sync_);
  }

  private closeReadFd(): void {
    if (this.readFd) {
      closeQuietly(this.fs, this.readFd.fd);
      this.readFd = null;
    }
  }

  snapshotStore(): SnapshotStore {
    if (this.store) return this.store;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the store object's methods delegate here
    const self = this;
    this.store = {
      current() {
        if (self.failed) throw stoppedError(self.failed);
        const s = self.newest();
        return s ? { meta: { ...s.meta, config: [...s.meta.config] }, size: s.size } : null;
      },
      read(offset: number, length: number): Uint8Array {
        return self.guard(() => self.readCurrent(offset, length));
      },
      receive(meta: SnapshotMeta, size: number, offset: number, data: Uint8Array): number {
        return self.guard(() => self.receive(meta, size, offset, data));
      },
      finish(meta: SnapshotMeta): boolean {
        return self.guard(() => self.finishReceive(meta));
      },
    };
    return this.store;
  }

  private readCurrent(offset: number, length: number): Uint8Array {
    const s = this.newest();
    if (!s) throw new StorageError('INVALID', this.dir.snapDir, 'no snapshot to read');
    if (!this.readFd || this.readFd.path !== s.path) {
      this.closeReadFd();
      try {
        this.readFd = { path: s.path, fd: this.fs.open(s.path, 'r') };
      } catch (e) {
        throw fsError(e, s.path, 'open snapshot');
      }
    }
    const n = Math.max(0, Math.min(length, s.size - offset));
    const buf = Buffer.allocUnsafe(n);
    readAt(this.fs, this.readFd.fd, buf, offset, s.path);
    return buf;
  }

  private recvPath(meta: SnapshotMeta): string {
    return path.join(this.dir.snapDir, snapshotFileName(meta) + RECV_SUFFIX);
  }

  private discardRecv(): void {
    if (!this.recv) return;
    unlinkQuietly(this.fs, this.recvPath(this.recv.meta));
    this.recv = null;
  }

  private receive(meta: SnapshotMeta, size: number, offset: number, data: Uint8Array): number {
    // A transfer announcing a file larger than any snapshot within the limits is refused before a
    // byte is stored (docs/FORMAT.md, "Limits"); the leader is told nothing is held.
    if (size > maxSnapshotFileBytes(readLimits())) {
      this.discardRecv();
      return 0;
    }
    if (offset === 0) {
      this.discardRecv();
      const p = this.recvPath(meta);
      try {
        this.fs.close(this.fs.open(p, 'w', 0o644));
      } catch (e) {
        throw fsError(e, p, 'create snapshot receive file');
      }
      this.recv = { meta: { ...meta, config: [...meta.config] }, size, received: 0, verify: new ArrivingSnapshot(size, p), unsynced: 0 };
    }
    const r = this.recv;
    if (!r || !sameSnap(r.meta, meta) || r.size !== size) return 0;
    if (offset !== r.received || offset + data.length > size) return r.received;
    const p = this.recvPath(meta);
    let fd: number;
    try {
      fd = this.fs.open(p, 'r+');
    } catch (e) {
      throw fsError(e, p, 'open snapshot receive file');
    }
    try {
      writeAt(this.fs, fd, data, offset, p);
      r.unsynced += data.length;
      if (this.sync_.fsync !== false && r.unsynced >= RECV_SYNC_BYTES) {
        fsyncFd(this.fs, fd, p, 'fsync snapshot receive file');
        r.unsynced = 0;
      }
    } finally {
      closeQuietly(this.fs, fd);
    }
    r.verify.add(data);
    r.received += data.length;
    return r.received;
  }

  private finishReceive(meta: SnapshotMeta): boolean {
    const r = this.recv;
    if (!r || !sameSnap(r.meta, meta) || r.received !== r.size) {
      this.discardRecv();
      return false;
    }
    const p = this.recvPath(meta);
    let h: SnapshotHeader;
    try {
      // Header, length, limits and payload CRC: checked as the chunks arrived (nothing is read again).
      h = r.verify.finish();
      if (!sameSnap(h, meta)) throw new StorageError('INVALID', p, 'received snapshot header does not match its metadata');
    } catch (e) {
      // Bad bytes from the leader (not a local failure): the transfer is dropped and retried.
      if (!(e instanceof StorageError) || e.code === 'IO' || e.code === 'EACCES' || e.code === 'ENOENT') throw e;
      this.discardRecv();
      return false;
    }
    if (this.sync_.fsync !== false) {
      let fd: number;
      try {
        fd = this.fs.open(p, 'r+');
      } catch (e) {
        throw fsError(e, p, 'open received snapshot for fsync');
      }
      try {
        fsyncFd(this.fs, fd, p, 'fsync received snapshot');
      } finally {
        closeQuietly(this.fs, fd);
      }
    }
    const final = path.join(this.dir.snapDir, snapshotFileName(meta));
    renameDurable(p, final, this.sync_);
    this.recv = null;
    this.installed(h, final, r.size);
    const w = this.ensureOpen();
    w.add({ type: 'snapshot', index: h.index, term: h.term, file: path.basename(final) });
    w.sync();
    this.prune(this.retain);
    return true;
  }

  stats(): StorageStats {
    return this.guard(() => {
      const w = this.ensureOpen();
      const newest = this.newest();
      return {
        logEntries: w.segments.reduce((n, s) => n + s.entryRecords, 0),
        lastIndex: Math.max(this.lastIndex, newest?.meta.index ?? 0),
        walSegments: w.segments.length,
        walBytes: w.segments.reduce((n, s) => n + s.size, 0),
        snapshots: this.snaps.length,
        snapshotBytes: this.snaps.reduce((n, s) => n + s.size, 0),
        snapshot: newest ? { ...newest.meta } : null,
      };
    });
  }

  /** Release without writing anything: buffered records dropped, files closed, lock released. Never throws. */
  abandon(): void {
    if (this.closed) return;
    this.writer?.abandon();
    this.release();
  }

  close(): void {
    if (this.closed) return;
    // Refused before anything is released: the fsync in flight still needs the segment's fd.
    if (this.writer?.inFlight) throw new StorageError('INVALID', this.dir.walDir, 'WAL close while an fsync of it is in flight (a caller must wait for it first)');
    try {
      this.guard(() => {
        this.writer?.close();
        this.discardRecv();
      });
    } finally {
      if (this.failed) this.writer?.abandon();
      this.release();
    }
  }

  private release(): void {
    this.closeReadFd();
    this.recv = null;
    this.closed = true;
    this.dir.close();
  }
}

/** Write all of `data` at file position `pos` (a short write is continued). */
function writeAt(fsys: FileSystem, fd: number, data: Uint8Array, pos: number, file: string): void {
  let off = 0;
  while (off < data.length) {
    let n: number;
    try {
      n = fsys.write(fd, data, off, data.length - off, pos + off);
    } catch (e) {
      throw fsError(e, file, 'write');
    }
    if (n <= 0) throw fsError(new Error(`write returned ${n}`), file, 'write');
    off += n;
  }
}
