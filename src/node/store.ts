/**
 * What the driver needs from durable storage. The implementation (storage-adapter.ts) is a thin
 * layer over the storage library in src/storage/; the driver never touches files itself.
 */
import type { FrozenView } from '../kv/store.js';
import type { Entry, HardState, Json, NodeId, SnapshotMeta, SnapshotStore } from '../raft/types.js';

/** Keys encoded per chunk between yields to the event loop. */
export const SNAPSHOT_CHUNK_KEYS = 2048;

/** A snapshot's state-machine contents: the pairs and the client session table (when stored). */
export interface SnapshotState {
  pairs: Array<[Json, Json]>;
  sessions?: Json;
}

/**
 * A stored snapshot's state a chunk at a time (install, recovery): `next()` decodes and checks the
 * next chunk (null at the end, when the payload's CRC has been checked and `sessions` is set) and
 * throws at the first problem; `close()` releases the file (idempotent).
 */
export interface SnapshotStream {
  /** Keys the header announces. */
  readonly keyCount: number;
  next(): { keys: Json[]; values: Json[] } | null;
  /** The session table, once `next()` returned null (undefined when none is stored). */
  readonly sessions: Json | undefined;
  close(): void;
}

/**
 * A stored snapshot whose chunks can be decoded in any order, each on its own (format 3): a
 * recovering node loads first the chunks that may hold the keys it is asked about (keyed-load.ts).
 */
export interface KeyedSnapshot {
  /** The chunks in file order, each with the range of its keys' shards (kv/shards.ts keyShard). */
  readonly chunks: ReadonlyArray<{ readonly pairs: number; readonly firstShard: number; readonly lastShard: number }>;
  /**
   * Chunk `j`'s pairs a part at a time (each decoded when asked for, checked; the chunk's own
   * checks when the last has been given): throws at a problem.
   */
  groups(j: number): Iterable<{ keys: Json[]; values: Json[] }>;
  /** The client session table (undefined when none is stored). */
  readonly sessions: Json | undefined;
}

export interface RecoveredState {
  hardState: HardState;
  /**
   * The newest valid snapshot, or null; with its state-machine contents when they were decoded
   * (`pairs`), otherwise the driver streams them with `NodeStore.openSnapshot(meta)`.
   */
  snapshot: { meta: SnapshotMeta; pairs?: Iterable<readonly [Json, Json]>; sessions?: Json } | null;
  /** Log entries after the snapshot, contiguous. */
  entries: Entry[];
  /** Node id recorded in the directory, if any. */
  nodeId: NodeId | null;
  /** The cluster's members recorded in the directory (first init, or restore); null or absent: none. */
  members?: NodeId[] | null;
}

export interface NodeStore {
  /** True when state lives on disk (false: in memory). */
  readonly durable: boolean;
  /** Human description for logs ("memory", or the directory path). */
  readonly where: string;
  /** Load what the directory holds (empty state for a new directory or memory). */
  recover(): Promise<RecoveredState>;
  /** Record which node owns this directory (after `init`). */
  setNodeId(id: NodeId): Promise<void>;
  /** Record the cluster's members (after the first `init` on a directory that has none); absent in memory. */
  setMembers?(ids: NodeId[]): Promise<void>;
  /** Append entries; a first index at or below the last stored one replaces the suffix from there. */
  append(entries: Entry[]): void;
  setHardState(hs: HardState): void;
  /**
   * Make everything appended/set so far durable (group commit: one fsync). A promise: the fsync
   * runs off the event loop and is done when it resolves (the driver may step inputs meanwhile,
   * but takes no next Ready); a rejection is a failed fsync (fail-stop).
   */
  sync(): void | Promise<void>;
  /**
   * The snapshot files, used by the driver only (the Raft core does no I/O): in step 1 of a Ready it
   * stores `Ready.snapshotChunk` (`receive`, on the last chunk `finish`, which verifies, fsyncs,
   * renames and records the file) and reports the result to the core; in step 2 it reads the bytes
   * of `Ready.snapshotSends` (`read`) from the snapshot `current()` names. A failure throws, and
   * the node stops.
   */
  readonly snapshots: SnapshotStore;
  /**
   * Encode and durably save a snapshot of `view` at `meta`, a chunk at a time, yielding to the event
   * loop between chunks. Returns the file size. Afterwards `snapshots.current()` returns it, and the
   * caller tells the core (`snapshotAvailable(meta, size)`) that it is the file to send.
   */
  saveSnapshot(meta: SnapshotMeta, view: FrozenView, chunkKeys?: number): Promise<{ size: number }>;
  /**
   * Stream the state of the stored snapshot at `meta` (install after a transfer, recovery at
   * start). Throws when there is none; a failure while streaming throws from `next()`.
   */
  openSnapshot(meta: SnapshotMeta): SnapshotStream;
  /**
   * The stored snapshot at `meta` with chunks to be decoded in any order (recovery at start), or
   * null when its file cannot be read that way (formats 1 and 2: `openSnapshot` streams them).
   * Absent: never. Throws when the file cannot be read or fails its checks.
   */
  openKeyed?(meta: SnapshotMeta): KeyedSnapshot | null;
  /** Decode the state of the current snapshot (after a transfer finished, or for replays). */
  loadSnapshot(meta: SnapshotMeta): Promise<SnapshotState>;
  /**
   * The core dropped log entries up to `compactedTo` (inclusive): let storage delete what is
   * covered, keeping the `retain` newest snapshots.
   */
  compact(compactedTo: number, retain: number): Promise<void>;
  /** Storage figures for get_stats (WAL entries/bytes, snapshot files). */
  stats?(): Record<string, number>;
  /** Sync and release (lock file etc.). */
  close(): Promise<void>;
  /** Release without writing anything more (the node stopped after a failure). */
  abandon(): void;
  /** The storage's first failure once it has stopped (fail-stop), null while it works; absent: not known. */
  readonly failure?: Error | null;
}
