// STUB: the API every other part codes against. Implementation in progress (raft core helper).
import type {
  Entry,
  Json,
  NodeId,
  RaftConfig,
  RaftMessage,
  RaftRestore,
  RaftStatus,
  Ready,
  SnapshotMeta,
} from './types.js';

export class RaftCore {
  constructor(config: RaftConfig, restore: RaftRestore) {
    void config;
    void restore;
    throw new Error('not implemented');
  }
  /** Advance logical time by one tick (elections, heartbeats, check-quorum). */
  tick(): void {}
  /** Handle one message from another node. Messages for other nodes or stale terms are handled per Raft. */
  step(msg: RaftMessage): void {
    void msg;
  }
  /** Append `data` to the log if this node is leader; null otherwise (see `leader()` for a hint). */
  propose(data: Json): { index: number; term: number } | null {
    void data;
    return null;
  }
  /** Start an election now (tests, single-node start). */
  campaign(): void {}
  hasReady(): boolean {
    return false;
  }
  /** Collect what the driver must persist, send and apply. Call `advance()` once it is done. */
  ready(): Ready {
    throw new Error('not implemented');
  }
  advance(): void {}
  /**
   * The state machine has been snapshotted at `meta.index` (<= applied) and the snapshot is durable
   * (SnapshotStore.current() now returns it). Drop log entries up to `meta.index - trailing`.
   */
  compact(meta: SnapshotMeta, trailing: number): void {
    void meta;
    void trailing;
  }
  /**
   * Reset this node to a snapshot produced locally (control messages seed_state / install_snapshot):
   * the log before and at meta.index is discarded (the suffix kept if it matches, Figure 13 rule 6),
   * commit and applied move to meta.index, term to at least meta.term.
   */
  restoreSnapshot(meta: SnapshotMeta): void {
    void meta;
  }
  /**
   * Append already-committed entries (control message seed_committed_log) and commit through
   * `commit`; they come out of the next Ready's `committed`.
   */
  seedCommitted(entries: Entry[], commit: number): void {
    void entries;
    void commit;
  }
  /** The driver applied entries through `index`. */
  appliedTo(index: number): void {
    void index;
  }
  status(): RaftStatus {
    throw new Error('not implemented');
  }
  leader(): NodeId | null {
    return null;
  }
  /** Term of the entry at `index`; valid from the snapshot index on, undefined otherwise. */
  termAt(index: number): number | undefined {
    void index;
    return undefined;
  }
  /** Entries in [from, to] that are still in the log (not compacted). */
  entries(from: number, to: number): Entry[] {
    void from;
    void to;
    return [];
  }
}
