/**
 * NodeStore over the storage library (src/storage/node-storage.ts): DiskStorage for --data-dir /
 * --data-root, DiskStorage over an in-memory FileSystem (MemFs) otherwise. Snapshots are encoded
 * here a chunk at a time with the library's SnapshotEncoder, yielding to the event loop between
 * chunks; the library then writes the file durably (temp name, fsync, rename, directory fsync)
 * and records it in the WAL.
 */
import path from 'node:path';
import type { FrozenView } from '../kv/store.js';
import type { Entry, HardState, Json, NodeId, SnapshotMeta, SnapshotStore } from '../raft/types.js';
import { DiskStorage, type NodeStorage } from '../storage/node-storage.js';
import { SnapshotEncoder } from '../storage/snapshot.js';
import type { Logger } from './log.js';
import type { ServeOptions } from './options.js';
import { SNAPSHOT_CHUNK_KEYS, type KeyedSnapshot, type NodeStore, type RecoveredState, type SnapshotState, type SnapshotStream } from './store.js';
import { realTimers } from './timers.js';

/** The pairs and (when stored) the session table of a decoded snapshot. */
function snapshotState(c: { kv: Array<[Json, Json]>; sessions?: Json }): SnapshotState {
  return c.sessions === undefined ? { pairs: c.kv } : { pairs: c.kv, sessions: c.sessions };
}

/** Let timers and I/O run (setImmediate runs after pending I/O callbacks). */
export function yieldToLoop(): Promise<void> {
  return realTimers.yield();
}

/** The data directory for this node, or null for in-memory state. */
export function dataDirFor(opts: ServeOptions, nodeId: NodeId | null): string | null {
  if (opts.dataDir !== null) return opts.dataDir;
  if (opts.dataRoot !== null && nodeId !== null) return path.join(opts.dataRoot, nodeId);
  return null;
}

export class StorageNodeStore implements NodeStore {
  readonly snapshots: SnapshotStore;

  constructor(
    private readonly storage: NodeStorage,
    readonly durable: boolean,
    readonly where: string,
    private readonly log: Logger,
    private nodeId: NodeId | null = null,
    /** How to let the event loop run between chunks of a snapshot (the server's timers). */
    private readonly yieldFn: () => Promise<void> = yieldToLoop,
    /** Clock for the snapshot header's createdAt (the simulator's, so that runs replay byte for byte). */
    private readonly clock: () => number = Date.now,
  ) {
    this.snapshots = storage.snapshotStore();
  }

  recover(): Promise<RecoveredState> {
    // The snapshot's checksums are verified here; its state is streamed by the driver (openSnapshot).
    const r = this.storage.recover({ content: false });
    for (const w of r.warnings) this.log.warn(`recovery (${this.where}): ${w.message}`);
    const recordedId = this.storage instanceof DiskStorage ? this.storage.dir.meta.nodeId : null;
    const members = this.storage instanceof DiskStorage ? this.storage.dir.meta.members : null;
    return Promise.resolve({
      hardState: r.hardState,
      snapshot: r.snapshot ? { meta: r.snapshot.meta } : null,
      entries: r.entries,
      nodeId: recordedId,
      members,
    });
  }

  setMembers(ids: NodeId[]): Promise<void> {
    if (this.storage instanceof DiskStorage) this.storage.dir.setMembers(ids);
    return Promise.resolve();
  }

  setNodeId(id: NodeId): Promise<void> {
    this.nodeId = id;
    if (this.storage instanceof DiskStorage) this.storage.dir.setNodeId(id);
    return Promise.resolve();
  }

  append(entries: Entry[]): void {
    this.storage.append(entries);
  }

  setHardState(hs: HardState): void {
    this.storage.setHardState(hs);
  }

  /**
   * Group commit. Where the file system can fsync off the event loop (a real disk, SimFs) the
   * promise resolves once the records are durable; the driver steps inputs meanwhile. Work that
   * must not overlap the WAL fsync (a snapshot's last stretch, compaction, close) waits in
   * `whenWalIdle` and runs before this promise resolves, so that the driver's next sync can never
   * starve it.
   */
  sync(): void | Promise<void> {
    const p = this.storage.syncAsync();
    if (!p) return;
    return p.then(
      () => this.runIdleJobs(null),
      (e: unknown) => {
        this.runIdleJobs(e);
        throw e;
      },
    );
  }

  /** Jobs waiting for the WAL's fsync to finish (whenWalIdle). */
  private idleJobs: Array<(err: unknown) => void> = [];

  /** True while work waits for the WAL's fsync (the simulator counts the node as waiting on its disk). */
  get waitingForDisk(): boolean {
    return this.idleJobs.length > 0 || this.diskWaits > 0;
  }

  /** Snapshot saves waiting for their file's fsync. */
  private diskWaits = 0;

  private runIdleJobs(err: unknown): void {
    const jobs = this.idleJobs;
    this.idleJobs = [];
    for (const j of jobs) j(err);
  }

  /** Run `fn` (synchronous storage work that writes the WAL) once no WAL fsync is in flight. */
  private whenWalIdle<T>(fn: () => T): Promise<T> {
    if (!this.storage.walInFlight) {
      try {
        return Promise.resolve(fn());
      } catch (e) {
        return Promise.reject(e as Error);
      }
    }
    return new Promise<T>((resolve, reject) => {
      this.idleJobs.push((err) => {
        if (err) return reject(err as Error);
        try {
          resolve(fn());
        } catch (e) {
          reject(e as Error);
        }
      });
    });
  }

  async saveSnapshot(meta: SnapshotMeta, view: FrozenView, chunkKeys = SNAPSHOT_CHUNK_KEYS): Promise<{ size: number }> {
    const enc = new SnapshotEncoder(meta, { nodeId: this.nodeId, createdAt: Math.floor(this.clock()) });
    // Yield between chunks only: a state of at most one chunk is saved without leaving the caller's
    // turn of the event loop, so that small states snapshot as soon as the threshold is reached.
    let first = true;
    // Columns, not pair arrays: the same pairs in the same order and chunking (so the same bytes),
    // without a [key, value] array per pair.
    for (const c of view.columns(chunkKeys)) {
      if (!first) await this.yieldFn();
      first = false;
      enc.addColumns(c.keys, c.values);
    }
    const bytes = enc.finish(view.sessions);
    // The file's fsync (the long part for a large state) runs off the event loop; its WAL marker
    // waits for the WAL's own fsync in flight.
    this.diskWaits++;
    try {
      await this.storage.saveSnapshotAsync(meta, bytes, (fn) => this.whenWalIdle(fn));
    } finally {
      this.diskWaits--;
    }
    return { size: bytes.length };
  }

  openSnapshot(meta: SnapshotMeta): SnapshotStream {
    const reader = this.storage.openSnapshot(meta);
    if (!reader) throw new Error(`snapshot ${meta.index}/${meta.term} is not in ${this.where}`);
    const chunks = reader.chunks();
    return {
      keyCount: reader.header.keyCount,
      next() {
        const r = chunks.next();
        return r.done ? null : r.value;
      },
      get sessions() {
        return reader.sessions;
      },
      close() {
        // Ends the generator (its finally releases the file) and the reader, if never started.
        chunks.return(undefined);
        reader.close();
      },
    };
  }

  openKeyed(meta: SnapshotMeta): KeyedSnapshot | null {
    return this.storage.openFramed(meta);
  }

  loadSnapshot(meta: SnapshotMeta): Promise<SnapshotState> {
    const s = this.storage.loadSnapshot(meta);
    if (!s) return Promise.reject(new Error(`snapshot ${meta.index}/${meta.term} is not in ${this.where}`));
    return Promise.resolve(snapshotState(s.content));
  }

  compact(compactedTo: number, retain: number): Promise<void> {
    return this.whenWalIdle(() => {
      if (compactedTo > 0) this.storage.compactLog(compactedTo);
      this.storage.pruneSnapshots(retain);
    });
  }

  stats(): Record<string, number> {
    const s = this.storage.stats();
    return {
      wal_entries: s.logEntries,
      wal_segments: s.walSegments,
      wal_bytes: s.walBytes,
      snapshot_files: s.snapshots,
      snapshot_bytes: s.snapshotBytes,
    };
  }

  close(): Promise<void> {
    return this.whenWalIdle(() => this.storage.close());
  }

  abandon(): void {
    this.storage.abandon();
  }

  get failure(): Error | null {
    return this.storage.failure;
  }
}

/** Open the store for this node: on disk when a directory is configured, in memory otherwise. */
export function openNodeStore(opts: ServeOptions, nodeId: NodeId | null, log: Logger, yieldFn: () => Promise<void> = yieldToLoop): Promise<NodeStore> {
  try {
    const dir = dataDirFor(opts, nodeId);
    if (dir === null) {
      const mem = DiskStorage.inMemory({ retain: opts.retain, segmentBytes: opts.segmentBytes, ...(nodeId !== null ? { nodeId } : {}) });
      return Promise.resolve(new StorageNodeStore(mem, false, 'memory', log, nodeId, yieldFn));
    }
    const ds = DiskStorage.open(dir, { fsync: opts.fsync, retain: opts.retain, segmentBytes: opts.segmentBytes, ...(nodeId !== null ? { nodeId } : {}) });
    if (ds.dir.staleLockPid !== null) log.warn(`${dir}: took over the lock of process ${ds.dir.staleLockPid}, which is gone`);
    return Promise.resolve(new StorageNodeStore(ds, true, dir, log, nodeId, yieldFn));
  } catch (e) {
    return Promise.reject(e instanceof Error ? e : new Error(String(e)));
  }
}
