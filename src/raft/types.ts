/**
 * Types of the pure Raft core. The core does no I/O, keeps no timers, reads no clock and draws no
 * random numbers of its own: logical time arrives through `tick()`, randomness through the injected
 * `random` function, and snapshot bytes through the injected `SnapshotStore`.
 */

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
  | InstallSnapshot
  | InstallSnapshotReply;

export const RAFT_MESSAGE_TYPES: ReadonlySet<string> = new Set([
  'raft_request_vote',
  'raft_request_vote_reply',
  'raft_append_entries',
  'raft_append_entries_reply',
  'raft_install_snapshot',
  'raft_install_snapshot_reply',
]);

// ---------------------------------------------------------------------------------------------
// Snapshot bytes are kept outside the core; the driver injects where they live.

export interface SnapshotStore {
  /** The newest complete local snapshot, to send to followers, or null when there is none. */
  current(): { meta: SnapshotMeta; size: number } | null;
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
//  1. persist `snapshot` (already durable through SnapshotStore.finish), `entries`, `hardState`; fsync
//  2. send `messages`
//  3. apply `snapshot` to the state machine (restore), then `committed` entries
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
   * A snapshot received from the leader that the driver must restore the state machine from. When
   * set, the stored log is REPLACED: drop every stored entry (also those after `snapshot.index`),
   * record the snapshot, then store `entries` (the suffix the core kept, Figure 13 rule 6; empty
   * when the whole log was discarded, rule 7). Stale entries left after the snapshot would break
   * the log matching property after a restart.
   */
  snapshot: SnapshotMeta | null;
  /** Messages to send once the above is durable. */
  messages: RaftMessage[];
  /** Newly committed entries to apply, in index order, after `snapshot` if any. */
  committed: Entry[];
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
  snapshots: SnapshotStore;
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
