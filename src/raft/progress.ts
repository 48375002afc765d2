import type { SnapshotMeta } from './types.js';

/**
 * How the leader replicates to one follower (etcd's tracker.Progress, simplified):
 *  - probe: one append at a time until the follower's match point is found; paused after each
 *    send until a reply arrives or the next heartbeat.
 *  - replicate: optimistic pipelining of up to `maxInflight` appends; `next` runs ahead of `match`.
 *  - snapshot: the entry at `next` was compacted away; a chunked InstallSnapshot transfer runs,
 *    one chunk in flight at a time.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export interface SnapshotTransfer {
  meta: SnapshotMeta;
  size: number;
  /** Bytes the follower acknowledged holding: where the next chunk starts. */
  acked: number;
  /** A chunk is out and its reply has not arrived. */
  waiting: boolean;
  /** Heartbeats since the last chunk went out (to resend a lost chunk or reply). */
  idleHeartbeats: number;
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** Probe state: an append is out and we wait for its reply (or the next heartbeat). */
  probeSent = false;
  /** Replicate state: last index of every append in flight, oldest first. */
  inflight: number[] = [];
  /** Heard from this follower since the last check-quorum round. */
  recentActive = false;
  /** Replicate state: heartbeats in a row with appends in flight and no progress of `match`. */
  stalledHeartbeats = 0;
  matchAtHeartbeat = 0;
  snapshot: SnapshotTransfer | null = null;
  /**
   * The highest snapshot index this follower said it installed ("done") in this term: a done reply
   * counts as a completed transfer once, even when it arrives after the leader moved on.
   */
  installedThrough = 0;
  /** ReadIndex: the read round number carried by the last append sent to this follower. */
  sentReadSeq = 0;
  /**
   * The commit index its appends let it know: the highest min(leaderCommit, last index the append
   * covers) sent (a follower takes no commit index beyond what it knows matches).
   */
  toldCommit = 0;

  constructor(next: number) {
    this.next = next;
  }

  becomeProbe(next: number): void {
    this.state = 'probe';
    this.next = Math.max(next, this.match + 1);
    this.probeSent = false;
    this.inflight = [];
    this.snapshot = null;
    this.stalledHeartbeats = 0;
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.next = this.match + 1;
    this.probeSent = false;
    this.inflight = [];
    this.snapshot = null;
    this.stalledHeartbeats = 0;
  }

  becomeSnapshot(meta: SnapshotMeta, size: number): void {
    this.state = 'snapshot';
    this.probeSent = false;
    this.inflight = [];
    this.snapshot = { meta, size, acked: 0, waiting: false, idleHeartbeats: 0 };
  }

  /** Record that the follower holds everything through `index`; true if that is news. */
  updateMatch(index: number): boolean {
    let updated = false;
    if (index > this.match) {
      this.match = index;
      updated = true;
    }
    if (this.next <= index) this.next = index + 1;
    while (this.inflight.length > 0 && this.inflight[0]! <= index) this.inflight.shift();
    return updated;
  }

  inflightFull(maxInflight: number): boolean {
    return this.inflight.length >= maxInflight;
  }
}
