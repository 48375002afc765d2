/**
 * Durable state of a running node: the interface the Raft driver uses, on disk (DiskStorage, a
 * DataDir) or in memory (MemoryStorage, when `serve` has no data directory). Both follow the same
 * rules (the in-memory one keeps the same WAL records and replays them the same way).
 *
 * Calls are synchronous: `append` and `setHardState` only buffer; `sync` writes everything buffered
 * and fsyncs once (group commit). The driver calls `sync` before it sends messages or replies.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Entry, HardState, NodeId, SnapshotMeta, SnapshotStore } from '../raft/types.js';
import { DataDir, RECV_SUFFIX, type RecoveryWarning } from './datadir.js';
import { StorageError, fsError } from './errors.js';
import { fsyncDir, renameDurable, writeFileAtomic, type SyncOptions } from './fsutil.js';
import { LogReplay } from './replay.js';
import {
  decodeSnapshot,
  headerMeta,
  readSnapshotFile,
  snapshotFileName,
  verifySnapshotBytes,
  type SnapshotContent,
  type SnapshotHeader,
} from './snapshot.js';
import { DEFAULT_SEGMENT_BYTES, WalWriter, type WalRecord } from './wal.js';

export const DEFAULT_RETAIN = 2;

export interface NodeStorageOptions {
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
}

export interface NodeRecovery {
  snapshot: { meta: SnapshotMeta; header: SnapshotHeader; content: SnapshotContent } | null;
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
  /** The durable state (runs recovery with repair on disk). Buffered, unsynced writes are not included. */
  recover(): NodeRecovery;
  /** Buffer entries; a first index at or below the last one replaces the log from there. */
  append(entries: Entry[]): void;
  /** Buffer a hard state. */
  setHardState(hs: HardState): void;
  /** Write everything buffered and fsync once. */
  sync(): void;
  /** Durably store an encoded snapshot file taken locally, record it in the WAL, apply retention. */
  saveSnapshot(meta: SnapshotMeta, fileBytes: Uint8Array): void;
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
  /** Sync and release (the lock for DiskStorage). */
  close(): void;
  /**
   * Release without writing anything (after a failure, fail-stop): buffered records are dropped,
   * files closed, the lock released.
   */
  abandon(): void;
}

interface Receiving {
  meta: SnapshotMeta;
  size: number;
  received: number;
}

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
  private readonly sync_: SyncOptions;
  private readonly retain: number;
  private readonly segmentBytes: number;
  private writer: WalWriter | null = null;
  private lastIndex = 0;
  private snaps: SnapFile[] = [];
  private readFd: { path: string; fd: number } | null = null;
  private recv: Receiving | null = null;
  private closed = false;
  private store: SnapshotStore | null = null;

  private constructor(dir: DataDir, opts: NodeStorageOptions) {
    this.dir = dir;
    this.sync_ = { fsync: opts.fsync !== false };
    this.retain = Math.max(1, opts.retain ?? DEFAULT_RETAIN);
    this.segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  }

  /** Open (creating when needed) a data directory in write mode: takes the lock, refuses a live one. */
  static open(dirPath: string, opts: NodeStorageOptions = {}): DiskStorage {
    const dd = DataDir.open(dirPath, { mode: 'write', create: true, nodeId: opts.nodeId, fsync: opts.fsync, createdAt: opts.createdAt });
    return new DiskStorage(dd, opts);
  }

  private check(): void {
    if (this.closed) throw new StorageError('INVALID', this.dir.path, 'storage is closed');
  }

  private ensureOpen(): WalWriter {
    if (!this.writer) this.recover();
    return this.writer!;
  }

  recover(): NodeRecovery {
    this.check();
    if (this.writer) {
      this.writer.discardPending();
      this.writer.close();
    }
    this.writer = null;
    const r = this.dir.recover({ repair: true });
    this.writer = new WalWriter(this.dir.walDir, r.segments, { hardState: r.hardState, lastIndex: r.lastIndex }, { fsync: this.sync_.fsync, segmentBytes: this.segmentBytes });
    this.lastIndex = r.lastIndex;
    this.refreshSnaps();
    this.recv = null;
    return {
      snapshot: r.snapshot ? { meta: headerMeta(r.snapshot.header), header: r.snapshot.header, content: r.snapshot.content! } : null,
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
    this.check();
    const w = this.ensureOpen();
    checkAppend(entries, Math.max(this.lastIndex, this.newest()?.meta.index ?? 0), this.dir.path);
    for (const e of entries) w.add({ type: 'entry', entry: e });
    if (entries.length > 0) this.lastIndex = entries[entries.length - 1]!.index;
  }

  setHardState(hs: HardState): void {
    this.check();
    this.ensureOpen().add({ type: 'hardState', hardState: { term: hs.term, votedFor: hs.votedFor, commit: hs.commit } });
  }

  sync(): void {
    this.check();
    this.ensureOpen().sync();
  }

  saveSnapshot(meta: SnapshotMeta, fileBytes: Uint8Array): void {
    this.check();
    const w = this.ensureOpen();
    const h = verifySnapshotBytes(fileBytes, `snapshot ${meta.index}/${meta.term}`);
    if (!sameSnap(h, meta)) {
      throw new StorageError('INVALID', this.dir.snapDir, `snapshot bytes are for index ${h.index} term ${h.term}, not ${meta.index}/${meta.term}`);
    }
    // Checked once, above: write the file itself (writeSnapshotFile would verify the same bytes again).
    const file = path.join(this.dir.snapDir, snapshotFileName(h));
    writeFileAtomic(file, fileBytes, { fsync: this.sync_.fsync });
    this.installed(h, file, fileBytes.length);
    w.add({ type: 'snapshot', index: h.index, term: h.term, file: path.basename(file) });
    w.sync();
    this.pruneSnapshots();
  }

  private installed(h: SnapshotHeader, file: string, size: number): void {
    this.snaps = this.snaps.filter((s) => s.path !== file);
    this.snaps.push({ meta: headerMeta(h), header: h, path: file, size });
    this.snaps.sort((a, b) => a.meta.index - b.meta.index || a.meta.term - b.meta.term);
  }

  loadSnapshot(meta?: { index: number; term: number }): { meta: SnapshotMeta; header: SnapshotHeader; content: SnapshotContent } | null {
    this.check();
    const s = meta ? this.snaps.find((x) => sameSnap(x.meta, meta)) : this.newest();
    if (!s) return null;
    const { header, content } = readSnapshotFile(s.path);
    return { meta: headerMeta(header), header, content };
  }

  compactLog(upToIndex: number): number {
    this.check();
    const w = this.ensureOpen();
    w.sync();
    const limit = compactionLimit(upToIndex, this.snaps);
    if (limit <= 0) return 0;
    const removed = w.deleteCovered(limit);
    return removed.reduce((n, s) => n + s.entryRecords, 0);
  }

  pruneSnapshots(retain = this.retain): void {
    this.check();
    const keep = Math.max(1, retain);
    if (this.snaps.length <= keep) return;
    const drop = this.snaps.slice(0, this.snaps.length - keep);
    for (const s of drop) {
      if (this.readFd?.path === s.path) this.closeReadFd();
      try {
        fs.unlinkSync(s.path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(e, s.path, 'delete old snapshot');
      }
    }
    this.snaps = this.snaps.slice(this.snaps.length - keep);
    fsyncDir(this.dir.snapDir, this.sync_);
  }

  private closeReadFd(): void {
    if (this.readFd) {
      fs.closeSync(this.readFd.fd);
      this.readFd = null;
    }
  }

  snapshotStore(): SnapshotStore {
    if (this.store) return this.store;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the store object's methods delegate here
    const self = this;
    this.store = {
      current() {
        const s = self.newest();
        return s ? { meta: { ...s.meta, config: [...s.meta.config] }, size: s.size } : null;
      },
      read(offset: number, length: number): Uint8Array {
        const s = self.newest();
        if (!s) throw new StorageError('INVALID', self.dir.snapDir, 'no snapshot to read');
        if (!self.readFd || self.readFd.path !== s.path) {
          self.closeReadFd();
          try {
            self.readFd = { path: s.path, fd: fs.openSync(s.path, 'r') };
          } catch (e) {
            throw fsError(e, s.path, 'open snapshot');
          }
        }
        const n = Math.max(0, Math.min(length, s.size - offset));
        const buf = Buffer.allocUnsafe(n);
        let off = 0;
        while (off < n) {
          const r = fs.readSync(self.readFd.fd, buf, off, n - off, offset + off);
          if (r === 0) break;
          off += r;
        }
        return buf.subarray(0, off);
      },
      receive(meta: SnapshotMeta, size: number, offset: number, data: Uint8Array): number {
        return self.receive(meta, size, offset, data);
      },
      finish(meta: SnapshotMeta): boolean {
        return self.finishReceive(meta);
      },
    };
    return this.store;
  }

  private recvPath(meta: SnapshotMeta): string {
    return path.join(this.dir.snapDir, snapshotFileName(meta) + RECV_SUFFIX);
  }

  private discardRecv(): void {
    if (!this.recv) return;
    try {
      fs.unlinkSync(this.recvPath(this.recv.meta));
    } catch {
      // already gone
    }
    this.recv = null;
  }

  private receive(meta: SnapshotMeta, size: number, offset: number, data: Uint8Array): number {
    this.check();
    if (offset === 0) {
      this.discardRecv();
      try {
        fs.writeFileSync(this.recvPath(meta), Buffer.alloc(0));
      } catch (e) {
        throw fsError(e, this.recvPath(meta), 'create snapshot receive file');
      }
      this.recv = { meta: { ...meta, config: [...meta.config] }, size, received: 0 };
    }
    const r = this.recv;
    if (!r || !sameSnap(r.meta, meta) || r.size !== size) return 0;
    if (offset !== r.received || offset + data.length > size) return r.received;
    const p = this.recvPath(meta);
    let fd: number;
    try {
      fd = fs.openSync(p, 'r+');
    } catch (e) {
      throw fsError(e, p, 'open snapshot receive file');
    }
    try {
      fs.writeSync(fd, data, 0, data.length, offset);
    } finally {
      fs.closeSync(fd);
    }
    r.received += data.length;
    return r.received;
  }

  private finishReceive(meta: SnapshotMeta): boolean {
    this.check();
    const r = this.recv;
    if (!r || !sameSnap(r.meta, meta) || r.received !== r.size) {
      this.discardRecv();
      return false;
    }
    const p = this.recvPath(meta);
    let h: SnapshotHeader;
    try {
      const bytes = fs.readFileSync(p);
      h = verifySnapshotBytes(bytes, p);
      if (!sameSnap(h, meta)) throw new StorageError('INVALID', p, 'received snapshot header does not match its metadata');
    } catch (e) {
      if (!(e instanceof StorageError)) throw e;
      this.discardRecv();
      return false;
    }
    if (this.sync_.fsync) {
      const fd = fs.openSync(p, 'r+');
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
    const final = path.join(this.dir.snapDir, snapshotFileName(meta));
    renameDurable(p, final, this.sync_);
    this.recv = null;
    this.installed(h, final, r.size);
    const w = this.ensureOpen();
    w.add({ type: 'snapshot', index: h.index, term: h.term, file: path.basename(final) });
    w.sync();
    this.pruneSnapshots();
    return true;
  }

  stats(): StorageStats {
    this.check();
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
  }

  abandon(): void {
    if (this.closed) return;
    this.writer?.discardPending();
    this.close();
  }

  close(): void {
    if (this.closed) return;
    try {
      this.writer?.close();
    } finally {
      this.closeReadFd();
      this.discardRecv();
      this.closed = true;
      this.dir.close();
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Memory

interface MemSnap {
  meta: SnapshotMeta;
  header: SnapshotHeader;
  bytes: Buffer;
}

/**
 * In-memory NodeStorage with the same behaviour as DiskStorage: records are kept as they would be
 * written, `sync` makes buffered records "durable", and `recover` replays durable records with the
 * same rules. Survives a simulated restart when the same object is reused.
 */
export class MemoryStorage implements NodeStorage {
  private records: Array<{ rec: WalRecord; size: number }> = [];
  private pending: WalRecord[] = [];
  private snaps: MemSnap[] = [];
  private lastIndex = 0;
  private recv: (Receiving & { chunks: Buffer[] }) | null = null;
  private readonly retain: number;
  private store: SnapshotStore | null = null;
  private closed = false;

  constructor(opts: Pick<NodeStorageOptions, 'retain'> = {}) {
    this.retain = Math.max(1, opts.retain ?? DEFAULT_RETAIN);
  }

  private check(): void {
    if (this.closed) throw new StorageError('INVALID', '<memory>', 'storage is closed');
  }

  private newest(): MemSnap | null {
    return this.snaps.length > 0 ? this.snaps[this.snaps.length - 1]! : null;
  }

  recover(): NodeRecovery {
    this.check();
    this.pending = [];
    this.recv = null;
    const replay = new LogReplay();
    for (const r of this.records) replay.apply(r.rec, { file: '<memory>' });
    const s = this.newest();
    const pos = s ? { index: s.meta.index, term: s.meta.term } : null;
    const entries = replay.entriesAfter(pos, '<memory>');
    this.lastIndex = entries.length > 0 ? entries[entries.length - 1]!.index : (pos?.index ?? 0);
    let snapshot: NodeRecovery['snapshot'] = null;
    if (s) {
      const { header, content } = decodeSnapshot(s.bytes, '<memory>');
      snapshot = { meta: headerMeta(header), header, content };
    }
    return { snapshot, hardState: replay.hardStateWith(pos), entries, warnings: [] };
  }

  append(entries: Entry[]): void {
    this.check();
    checkAppend(entries, Math.max(this.lastIndex, this.newest()?.meta.index ?? 0), '<memory>');
    for (const e of entries) this.pending.push({ type: 'entry', entry: structuredClone(e) });
    if (entries.length > 0) this.lastIndex = entries[entries.length - 1]!.index;
  }

  setHardState(hs: HardState): void {
    this.check();
    this.pending.push({ type: 'hardState', hardState: { term: hs.term, votedFor: hs.votedFor, commit: hs.commit } });
  }

  sync(): void {
    this.check();
    for (const rec of this.pending) this.records.push({ rec, size: 0 });
    this.pending = [];
  }

  private install(h: SnapshotHeader, bytes: Buffer): void {
    this.snaps = this.snaps.filter((s) => !sameSnap(s.meta, h));
    this.snaps.push({ meta: headerMeta(h), header: h, bytes });
    this.snaps.sort((a, b) => a.meta.index - b.meta.index || a.meta.term - b.meta.term);
    this.pending.push({ type: 'snapshot', index: h.index, term: h.term, file: snapshotFileName(h) });
    this.sync();
    this.pruneSnapshots();
  }

  saveSnapshot(meta: SnapshotMeta, fileBytes: Uint8Array): void {
    this.check();
    const h = verifySnapshotBytes(fileBytes, `snapshot ${meta.index}/${meta.term}`);
    if (!sameSnap(h, meta)) {
      throw new StorageError('INVALID', '<memory>', `snapshot bytes are for index ${h.index} term ${h.term}, not ${meta.index}/${meta.term}`);
    }
    this.install(h, Buffer.from(fileBytes));
  }

  loadSnapshot(meta?: { index: number; term: number }): { meta: SnapshotMeta; header: SnapshotHeader; content: SnapshotContent } | null {
    this.check();
    const s = meta ? this.snaps.find((x) => sameSnap(x.meta, meta)) : this.newest();
    if (!s) return null;
    const { header, content } = decodeSnapshot(s.bytes, '<memory>');
    return { meta: headerMeta(header), header, content };
  }

  compactLog(upToIndex: number): number {
    this.check();
    this.sync();
    const limit = compactionLimit(upToIndex, this.snaps);
    if (limit <= 0) return 0;
    // Drop the longest prefix of records whose entries all lie at or below `limit`, keeping the
    // last hard state of that prefix at the front (as a new disk segment starts with one).
    let cut = 0;
    let hs: WalRecord | null = null;
    let dropped = 0;
    while (cut < this.records.length) {
      const r = this.records[cut]!.rec;
      if (r.type === 'entry' && r.entry.index > limit) break;
      if (r.type === 'hardState') hs = r;
      if (r.type === 'entry') dropped++;
      cut++;
    }
    if (cut === 0) return 0;
    const rest = this.records.slice(cut);
    this.records = hs ? [{ rec: hs, size: 0 }, ...rest] : rest;
    return dropped;
  }

  pruneSnapshots(retain = this.retain): void {
    this.check();
    const keep = Math.max(1, retain);
    if (this.snaps.length > keep) this.snaps = this.snaps.slice(this.snaps.length - keep);
  }

  snapshotStore(): SnapshotStore {
    if (this.store) return this.store;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the store object's methods delegate here
    const self = this;
    this.store = {
      current() {
        const s = self.newest();
        return s ? { meta: { ...s.meta, config: [...s.meta.config] }, size: s.bytes.length } : null;
      },
      read(offset: number, length: number): Uint8Array {
        const s = self.newest();
        if (!s) throw new StorageError('INVALID', '<memory>', 'no snapshot to read');
        return s.bytes.subarray(offset, Math.min(s.bytes.length, offset + length));
      },
      receive(meta: SnapshotMeta, size: number, offset: number, data: Uint8Array): number {
        self.check();
        if (offset === 0) self.recv = { meta: { ...meta, config: [...meta.config] }, size, received: 0, chunks: [] };
        const r = self.recv;
        if (!r || !sameSnap(r.meta, meta) || r.size !== size) return 0;
        if (offset !== r.received || offset + data.length > size) return r.received;
        r.chunks.push(Buffer.from(data));
        r.received += data.length;
        return r.received;
      },
      finish(meta: SnapshotMeta): boolean {
        self.check();
        const r = self.recv;
        self.recv = null;
        if (!r || !sameSnap(r.meta, meta) || r.received !== r.size) return false;
        const bytes = Buffer.concat(r.chunks, r.size);
        let h: SnapshotHeader;
        try {
          h = verifySnapshotBytes(bytes, '<received snapshot>');
        } catch (e) {
          if (e instanceof StorageError) return false;
          throw e;
        }
        if (!sameSnap(h, meta)) return false;
        self.install(h, bytes);
        return true;
      },
    };
    return this.store;
  }

  stats(): StorageStats {
    this.check();
    const newest = this.newest();
    let logEntries = 0;
    for (const r of this.records) if (r.rec.type === 'entry') logEntries++;
    return {
      logEntries,
      lastIndex: Math.max(this.lastIndex, newest?.meta.index ?? 0),
      walSegments: 0,
      walBytes: 0,
      snapshots: this.snaps.length,
      snapshotBytes: this.snaps.reduce((n, s) => n + s.bytes.length, 0),
      snapshot: newest ? { ...newest.meta } : null,
    };
  }

  close(): void {
    if (this.closed) return;
    this.sync();
    this.closed = true;
  }

  abandon(): void {
    this.pending = [];
    this.closed = true;
  }

  /** Reopen after `close` (a simulated restart keeps what was synced). */
  reopen(): void {
    this.closed = false;
    this.pending = [];
  }
}
