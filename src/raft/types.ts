/**
 * Types of the pure Raft core. The core does no I/O, keeps no timers, reads no clock and draws no
 * random numbers of its own: logical time arrives through `tick()`, randomness through the injected
 * `random` function. Snapshot bytes never pass through the core's storage: chunks to store and
 * chunks to send go out in the Ready (`snapshotChunk`, `snapshotSends`), the driver does the I/O
 * and reports back (`snapshotStored`, `snapshotAvailable`).
 */
import type { ReadState } from './read-index.js';

export type { ReadState };

export type NodeId = string;

/** A JSON value as Maelstrom carries it. */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** One log entry. `data` is opaque to the core (the driver puts state-machine commands in it). */
export interface Entry {
  index: number;
  term: number;
  /** `null` marks the no-op a new leader appends at the start of its term. */
  data: Json;
}

/** What must be on stable storage before the node votes, acknowledges an append or answers. */
export interface HardState {
  term: number;
  votedFor: NodeId | null;
  commit: number;
}

/** Metadata of a snapshot: the last entry it includes and the configuration at that point. */
export interface SnapshotMeta {
  index: number;
  term: number;
  /** Voting members (node ids) of the cluster as of `index`. */
  config: NodeId[];
}

// ---------------------------------------------------------------------------------------------
// Messages between nodes. Maelstrom carries them as message bodies; `type` names are prefixed
// `raft_` so they never collide with client or control messages.

export interface RequestVote {
  type: 'raft_request_vote';
  from: NodeId;
  to: NodeId;
  term: number;
  lastLogIndex: number;
  lastLogTerm: number;
  /** A pre-vote asks "would you vote for me at `term`?" without anyone changing term. */
  preVote: boolean;
}

export interface RequestVoteReply {
  type: 'raft_request_vote_reply';
  from: NodeId;
  to: NodeId;
  term: number;
  granted: boolean;
  preVote: boolean;
}

export interface AppendEntries {
  type: 'raft_append_entries';
  from: NodeId;
  to: NodeId;
  term: number;
  prevLogIndex: number;
  prevLogTerm: number;
  entries: Entry[];
  leaderCommit: number;
  /**
   * ReadIndex: the number of the leader's last read round started before this append was sent
   * (read-index.ts); absent or 0 when none. The follower echoes it in its reply.
   */
  readSeq?: number;
}

export interface AppendEntriesReply {
  type: 'raft_append_entries_reply';
  from: NodeId;
  to: NodeId;
  term: number;
  success: boolean;
  /** On success: the index of the last entry the follower now matches. */
  matchIndex: number;
  /** On failure: a hint where the leader should retry (follower's last index + 1, or conflict start). */
  rejectHint: number;
  /** On failure: the prevLogIndex of the refused append (lets the leader drop stale refusals); 0 on success. */
  rejectedIndex: number;
  /** The `readSeq` of the append answered (absent or 0: none): confirms the leader's read rounds up to it. */
  readSeq?: number;
}

/**
 * ReadIndex (read-index.ts): a follower that got an append of the leader's read round `readSeq` (or
 * a later one) says at once that it follows this leader in `term`, without waiting for its own
 * disk: no write of its own is behind this (a vote it gave in a later term is on disk before it
 * is sent, and a node that gave it never answers in this term again).
 */
export interface ReadAck {
  type: 'raft_read_ack';
  from: NodeId;
  to: NodeId;
  term: number;
  readSeq: number;
}

/** Raft paper Figure 13, chunked, with the last configuration on every chunk. */
export interface InstallSnapshot {
  type: 'raft_install_snapshot';
  from: NodeId;
  to: NodeId;
  term: number;
  meta: SnapshotMeta;
  /** Total size in bytes of the snapshot file being sent. */
  size: number;
  offset: number;
  /** base64 of the bytes at [offset, offset + len). */
  data: string;
  done: boolean;
}

export interface InstallSnapshotReply {
  type: 'raft_install_snapshot_reply';
  from: NodeId;
  to: NodeId;
  term: number;
  meta: SnapshotMeta;
  /** How many bytes of this snapshot the follower holds, so that the leader can resume. */
  bytesStored: number;
  /** True once the follower has installed the whole snapshot. */
  done: boolean;
}

export type RaftMessage =
  | RequestVote
  | RequestVoteReply
  | AppendEntries
  | AppendEntriesReply
  | ReadAck
  | InstallSnapshot
  | InstallSnapshotReply;

export const RAFT_MESSAGE_TYPES: ReadonlySet<string> = new Set([
  'raft_request_vote',
  'raft_request_vote_reply',
  'raft_append_entries',
  'raft_append_entries_reply',
  'raft_read_ack',
  'raft_install_snapshot',
  'raft_install_snapshot_reply',
]);

// ---------------------------------------------------------------------------------------------
// Snapshot transfer through the Ready: the core decides, the driver does the I/O.

/** A durable local snapshot file: the one a leader sends to followers that need a snapshot. */
export interface LocalSnapshot {
  meta: SnapshotMeta;
  /** Size of the file in bytes. */
  size: number;
}

/**
 * An InstallSnapshot message to send, without its bytes: the driver reads bytes
 * [offset, offset + length) of the local snapshot `meta` (the one it last told the core about
 * through `snapshotAvailable` or at construction) and sends `installSnapshotMessage(send, bytes)`.
 * If its newest snapshot is no longer `meta` (a newer one was saved since this Ready), it drops the
 * send: the core restarts the transfer with the newer one when told (`snapshotAvailable`).
 */
export interface SnapshotSend {
  from: NodeId;
  to: NodeId;
  term: number;
  meta: SnapshotMeta;
  /** Total size of the snapshot file. */
  size: number;
  offset: number;
  /** Bytes to read: min(snapshotChunkSize, size - offset); 0 for an empty final chunk. */
  length: number;
  /** offset + length === size. */
  done: boolean;
}

/**
 * A chunk received from the leader for the driver to store, in step 1 of the Ready (with the
 * entries and the hard state, before anything is sent): write `data` at `offset` of the snapshot
 * being received (offset 0 starts a new transfer, discarding any partial one); when `last`, the
 * transfer is complete: verify it (checksums, header matches `meta`), fsync, rename, fsync the
 * directory and record it. Then report with `snapshotStored`: no reply goes to the leader before.
 */
export interface SnapshotChunk {
  meta: SnapshotMeta;
  size: number;
  offset: number;
  data: Uint8Array;
  /** offset + data.length === size and the leader marked it done: verify and install after writing. */
  last: boolean;
}

/**
 * The driver-side contract of a snapshot store (implemented by the storage library and the
 * simulator's disk). The core never calls it: the driver does, to carry out `Ready.snapshotChunk`
 * and `Ready.snapshotSends`. It lives here only until the storage library declares it itself.
 */
export interface SnapshotStore {
  /** The newest complete local snapshot, to send to followers, or null when there is none. */
  current(): LocalSnapshot | null;
  /** Bytes [offset, offset+length) of the current snapshot (shorter at the end). */
  read(offset: number, length: number): Uint8Array;
  /**
   * Receive one chunk of a snapshot from the leader (Figure 13 steps 2-4). Chunks arrive in order;
   * offset 0 starts a new transfer and discards any partial one. Returns how many bytes of this
   * snapshot are now held; a chunk at an unexpected offset stores nothing and returns the count
   * held so far, so that the leader resumes from there.
   */
  receive(meta: SnapshotMeta, size: number, offset: number, data: Uint8Array): number;
  /**
   * The last chunk arrived: verify the received snapshot (checksums) and make it durable.
   * Returns false when it is damaged; the partial transfer is then discarded.
   */
  finish(meta: SnapshotMeta): boolean;
}

// ---------------------------------------------------------------------------------------------
// The output of the core, handled by the driver in this order (etcd's Ready loop):
//  1. persist `entries`, `hardState`; fsync; then store `snapshotChunk` (on its last chunk: verify,
//     fsync, rename, record) and report it with `snapshotStored` before going on
//  2. send `messages`, and `snapshotSends` with their bytes read from the local snapshot
//  3. restore the state machine from `snapshot`, then apply `committed` entries
//  4. call `advance()`.

export interface Ready {
  /** Set when the hard state changed since the last Ready. */
  hardState: HardState | null;
  /**
   * Entries to append to stable storage. If the first entry's index is at or below the last stored
   * index, the stored log from that index on is replaced (a conflicting suffix was truncated).
   */
  entries: Entry[];
  /**
   * `entries` is not empty, or the term or vote changed: fsync before sending `messages` (etcd's
   * MustSync). False when only the commit index changed: it may be written without an fsync (a
   * lost commit index is learnt again from the leader).
   */
  mustSync: boolean;
  /**
   * A snapshot received from the leader (its last chunk stored and reported with `snapshotStored`
   * while an earlier Ready was handled) that the driver must restore the state machine from. The
   * stored log is REPLACED by it: every stored entry is dropped, then `entries` (the suffix the
   * core kept, Figure 13 rule 6; empty when the whole log was discarded, rule 7) is stored. The
   * storage library does the dropping itself: the record it wrote when it installed the file makes
   * replay drop the entries the snapshot covers, and those after it unless the entry at its index
   * has its term.
   */
  snapshot: SnapshotMeta | null;
  /** A chunk from the leader to store in step 1 and report with `snapshotStored`. */
  snapshotChunk: SnapshotChunk | null;
  /** Messages to send once the above is durable (or at once, when `sendFirst`). */
  messages: RaftMessage[];
  /** Messages that depend on nothing of this Ready (a follower's read acknowledgements): send them first. */
  early: RaftMessage[];
  /**
   * The node leads and this Ready changes neither term nor vote: `messages` and `snapshotSends` may
   * be sent before step 1, in parallel with the leader's own write (Raft thesis 10.2.1; etcd's
   * leader does so). The leader counts itself toward a commit only once `advance()` said its
   * entries are persisted.
   */
  sendFirst: boolean;
  /** InstallSnapshot messages to send once their bytes are read from the local snapshot. */
  snapshotSends: SnapshotSend[];
  /** Newly committed entries to apply, in index order, after `snapshot` if any. */
  committed: Entry[];
  /**
   * Every entry of `committed` was on this node's disk before this Ready, or is known to be on a
   * majority's disks without this node's write (and there is no `snapshot`): they may be applied,
   * and their requests answered, before step 1.
   */
  applyFirst: boolean;
  /**
   * Reads (`RaftCore.readIndex`) whose leadership round a majority confirmed: answer each from the
   * state machine once it has applied `index` (after this Ready's `committed`, or later ones).
   */
  readStates: ReadState[];
  /**
   * Reads that will never be confirmed: this node stopped being leader before their round was.
   * Nothing of them took effect; the driver answers them as failed (or asks the new leader).
   */
  readsLost: number[];
}

export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

export interface RaftConfig {
  id: NodeId;
  /** All voting members including `id`. */
  peers: NodeId[];
  /** Election timeout is drawn uniformly in [electionTicks, 2*electionTicks) ticks. */
  electionTicks: number;
  heartbeatTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  /** Most entries in one append message. */
  maxEntriesPerAppend: number;
  /** Most unacknowledged append messages in flight to one follower. */
  maxInflight: number;
  /** Bytes of snapshot per InstallSnapshot chunk. */
  snapshotChunkSize: number;
  /** Uniform random number in [0, 1); injected so that the core is deterministic. */
  random: () => number;
  /** The newest durable local snapshot file at start (what the store recovered), or null. */
  localSnapshot: LocalSnapshot | null;
}

/** The durable state a core starts from (empty for a fresh node). */
export interface RaftRestore {
  hardState: HardState;
  snapshot: SnapshotMeta | null;
  /** Log entries after the snapshot (or from index 1), contiguous. */
  entries: Entry[];
  /** The index up to which the state machine has applied (at least snapshot.index). */
  applied: number;
}

export interface RaftStatus {
  id: NodeId;
  role: Role;
  term: number;
  leader: NodeId | null;
  commit: number;
  applied: number;
  firstIndex: number;
  lastIndex: number;
  snapshot: SnapshotMeta | null;
  votedFor: NodeId | null;
}
