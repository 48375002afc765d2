/**
 * The leader's ReadIndex bookkeeping (Raft dissertation 6.4; etcd-io/raft read_only.go): reads
 * answered without a log entry and without a lease or a clock.
 *
 *  1. A read arrives (`add`). If the leader has not yet committed an entry of its own term (its
 *     no-op), its commit index may lag behind entries committed by earlier leaders: the read waits
 *     until it has (`ownTermCommitted`).
 *     Its read index is the commit index when it arrived (or, for one that waited, when the no-op
 *     committed).
 *  2. Reads queued since the last round form the next round (`startRound`), which gets the next
 *     sequence number. Every append the leader sends from then on carries that number (`seq`), and
 *     a follower echoes the number of the append it answers. One round serves every read that
 *     arrived before it.
 *  3. A round is confirmed once a majority (the leader included) answered, in the leader's term, an
 *     append carrying its number or a later one (`ack`): a majority still followed this leader after
 *     the reads arrived, so no other leader can have committed anything before them. Its reads come
 *     out as ReadStates: the driver answers each from the state machine once it has applied the
 *     read index.
 *  4. A leader that loses its role before a round is confirmed answers none of its reads (`drop`):
 *     a deposed or partitioned old leader never answers.
 */
import type { NodeId } from './types.js';

/** A read confirmed by ReadIndex: answer it from the state machine once applied >= `index`. */
export interface ReadState {
  /** The driver's name for the read (given to `RaftCore.readIndex`). */
  ctx: number;
  index: number;
}

interface Round {
  seq: number;
  reads: ReadState[];
}

export class ReadIndex {
  /** Reads waiting for the leader's first commit in its term. */
  private awaitingOwnTerm: number[] = [];
  /** Reads that arrived since the last round started, with their read index. */
  private queued: ReadState[] = [];
  /** Rounds started and not yet confirmed, oldest first. */
  private rounds: Round[] = [];
  /** Number of the last round started; grows over the core's whole life (never reused in a term). */
  private last = 0;
  /** Highest round number each follower answered in this term. */
  private readonly acked = new Map<NodeId, number>();

  /** The number every append sent now carries: the last round started. */
  get seq(): number {
    return this.last;
  }

  /** Reads waiting to form a round. */
  get hasQueued(): boolean {
    return this.queued.length > 0;
  }

  /** Reads in any state (queued, waiting for the no-op, or in a round). */
  get size(): number {
    return this.awaitingOwnTerm.length + this.queued.length + this.rounds.reduce((n, r) => n + r.reads.length, 0);
  }

  /**
   * A read arrived at the leader, whose commit index is `commit`; `ownTermCommitted`: the entry at
   * `commit` is of the leader's term.
   */
  add(ctx: number, commit: number, ownTermCommitted: boolean): void {
    if (ownTermCommitted) this.queued.push({ ctx, index: commit });
    else this.awaitingOwnTerm.push(ctx);
  }

  /** The leader committed an entry of its term, through `commit`: waiting reads may form a round. */
  ownTermCommitted(commit: number): void {
    if (this.awaitingOwnTerm.length === 0) return;
    for (const ctx of this.awaitingOwnTerm) this.queued.push({ ctx, index: commit });
    this.awaitingOwnTerm = [];
  }

  /** Start a round for the queued reads; returns its number. */
  startRound(): number {
    this.last++;
    this.rounds.push({ seq: this.last, reads: this.queued });
    this.queued = [];
    return this.last;
  }

  /** `from` answered, in this term, an append carrying round number `seq`. */
  ack(from: NodeId, seq: number): void {
    if (!Number.isSafeInteger(seq) || seq <= 0 || seq > this.last) return;
    if ((this.acked.get(from) ?? 0) < seq) this.acked.set(from, seq);
  }

  /**
   * The rounds a majority confirmed, oldest first, as ReadStates. `voters` are the other voting
   * members; the leader counts itself.
   */
  confirmed(voters: readonly NodeId[], quorum: number): ReadState[] {
    const out: ReadState[] = [];
    while (this.rounds.length > 0) {
      const r = this.rounds[0]!;
      let n = 1;
      for (const v of voters) if ((this.acked.get(v) ?? 0) >= r.seq) n++;
      if (n < quorum) break;
      this.rounds.shift();
      for (const x of r.reads) out.push(x);
    }
    return out;
  }

  /** Leadership lost (or begun afresh): every read not yet confirmed, to be answered as failed. */
  drop(): number[] {
    const out = [...this.awaitingOwnTerm];
    for (const r of this.rounds) for (const x of r.reads) out.push(x.ctx);
    for (const x of this.queued) out.push(x.ctx);
    this.awaitingOwnTerm = [];
    this.queued = [];
    this.rounds = [];
    this.acked.clear();
    return out;
  }
}
