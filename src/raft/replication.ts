/**
 * The leader's side of replication: one Progress per follower (progress.ts) and the appends,
 * heartbeats and snapshot chunks it sends them, and what their replies change. Part of the pure
 * core (core.ts owns the term, the commit index and the roles; it creates one Replication per term
 * it leads and hands it the replies of that term).
 *
 *  - probe / replicate / snapshot per follower; a refused append carries `rejectedIndex` (stale
 *    refusals are dropped) and `rejectHint` (one round trip skips a whole conflicting term).
 *  - proposals made between two Readys go out as one batched append (up to maxEntriesPerAppend per
 *    message, at most maxInflight appends in flight in replicate state).
 *  - heartbeats in replicate state are anchored at the match index so that reordering never fails
 *    them; appends that made no progress for several heartbeats are assumed lost and the follower
 *    is probed again.
 *  - InstallSnapshot only when the entry a follower needs was compacted; one chunk in flight per
 *    follower; the reply's bytesStored says where to continue; a chunk or reply lost is resent from
 *    the last acknowledged offset after an election timeout's worth of heartbeats; a changed local
 *    snapshot restarts the transfer at offset 0; after `done` replication resumes after the snapshot.
 *  - every append carries the ReadIndex round number (read-index.ts) and a reply echoes it.
 */
import type { RaftLog } from './log.js';
import { Progress } from './progress.js';
import { sameMeta } from './snapshot.js';
import type { AppendEntries, AppendEntriesReply, Entry, InstallSnapshotReply, LocalSnapshot, NodeId, RaftConfig, RaftMessage, SnapshotSend } from './types.js';

/** What replication needs of the core. */
export interface ReplicationContext {
  readonly id: NodeId;
  readonly cfg: RaftConfig;
  readonly log: RaftLog;
  /** The leader's term (constant for one Replication). */
  readonly term: number;
  /**
   * The commit index to put in an append now. The core notes it: a follower may apply (and answer
   * reads from) up to what it was told (RaftCore.readIndex).
   */
  advertiseCommit(): number;
  /** The newest local snapshot: the one sent to followers that need a snapshot. */
  local(): LocalSnapshot | null;
  /** The ReadIndex round number every append carries now. */
  readSeq(): number;
  send(m: RaftMessage): void;
  sendSnapshot(s: SnapshotSend): void;
  /** A follower's match index advanced: the commit index may move. */
  matched(): void;
  /** A follower answered, in this term, an append carrying read round `seq`. */
  answered(from: NodeId, seq: number): void;
  /** A follower installed the snapshot it was sent. */
  snapshotSent(): void;
}

export class Replication {
  readonly progress = new Map<NodeId, Progress>();
  /** Followers waiting to learn that their read index is committed, once they have its entries (sendCommit). */
  private readonly commitWanted = new Map<NodeId, number>();

  /** Start leading `followers`, whose logs are first probed at `next`. */
  constructor(
    private readonly ctx: ReplicationContext,
    followers: readonly NodeId[],
    next: number,
  ) {
    for (const p of followers) this.progress.set(p, new Progress(next));
  }

  /** The highest index known to be replicated on `p` (0 when unknown). */
  matchOf(p: NodeId): number {
    return this.progress.get(p)?.match ?? 0;
  }

  /** Check-quorum: the members among `voters` heard from since the last call (which resets it). */
  takeActive(voters: readonly NodeId[]): number {
    let active = 0;
    for (const [p, pr] of this.progress) {
      if (pr.recentActive && voters.includes(p)) active++;
      pr.recentActive = false;
    }
    return active;
  }

  /** Send every follower what flow control allows (new proposals). */
  broadcast(): void {
    for (const [p, pr] of this.progress) this.sendAppends(p, pr);
  }

  /** Send every follower an append, empty if it needs nothing (the start of a term). */
  broadcastEmpty(): void {
    for (const [p, pr] of this.progress) this.sendAppend(p, pr, true);
  }

  /** Followers that got no append carrying read round `seq` get an empty one that does. */
  readHeartbeats(seq: number): void {
    for (const [p, pr] of this.progress) if (pr.sentReadSeq < seq) this.readHeartbeat(p, pr);
  }

  /** The local snapshot changed: transfers of another snapshot restart with it at 0. */
  snapshotChanged(meta: LocalSnapshot['meta'], size: number): void {
    for (const [p, pr] of this.progress) {
      const t = pr.snapshot;
      if (pr.state === 'snapshot' && t && (!sameMeta(t.meta, meta) || t.size !== size)) this.sendSnapshotChunk(p, pr);
    }
  }

  /**
   * An empty append that only asks the follower to answer (and so to confirm a read round),
   * anchored where it cannot disturb replication: the match index (a refusal there is stale and
   * ignored), or our compaction point while a snapshot is on its way. Not counted as a heartbeat.
   */
  private readHeartbeat(p: NodeId, pr: Progress): void {
    const log = this.ctx.log;
    const atMatch = pr.state !== 'snapshot' ? log.termAt(pr.match) : undefined;
    const prev = atMatch !== undefined ? pr.match : log.offset;
    this.sendAppendMessage(p, pr, prev, log.termAt(prev)!, []);
  }

  private sendAppendMessage(p: NodeId, pr: Progress, prev: number, prevTerm: number, entries: Entry[]): void {
    const c = this.ctx;
    const readSeq = c.readSeq();
    pr.sentReadSeq = readSeq;
    const leaderCommit = c.advertiseCommit();
    pr.toldCommit = Math.max(pr.toldCommit, Math.min(leaderCommit, prev + entries.length));
    c.send({
      type: 'raft_append_entries', from: c.id, to: p, term: c.term,
      prevLogIndex: prev, prevLogTerm: prevTerm, entries, leaderCommit, readSeq,
    } satisfies AppendEntries);
  }

  /**
   * A follower waits to apply `index` (its read index, at most the commit index): if no append let
   * it know that much is committed, send it one now rather than at the next heartbeat (an empty
   * append at its match index, as for a read round), or, while it has not yet acknowledged the
   * entries through `index`, once it has (onAppendReply).
   */
  sendCommit(p: NodeId, index: number): void {
    const pr = this.progress.get(p);
    if (!pr || pr.toldCommit >= index) return;
    if (pr.match >= index) this.readHeartbeat(p, pr);
    else this.commitWanted.set(p, Math.max(index, this.commitWanted.get(p) ?? 0));
  }

  private sendWantedCommit(p: NodeId, pr: Progress): void {
    const want = this.commitWanted.get(p);
    if (want === undefined || pr.match < want) return;
    this.commitWanted.delete(p);
    if (pr.toldCommit < want) this.readHeartbeat(p, pr);
  }

  /** Send as many appends as flow control allows (replicate pipelines, probe sends one). */
  private sendAppends(p: NodeId, pr: Progress): void {
    while (this.sendAppend(p, pr, false) && pr.state === 'replicate') {
      // keep pipelining
    }
  }

  /**
   * Send one append (or start a snapshot transfer if the entries it needs were compacted).
   * Returns true if something was sent.
   */
  private sendAppend(p: NodeId, pr: Progress, allowEmpty: boolean): boolean {
    const { cfg, log } = this.ctx;
    if (pr.state === 'snapshot') return false;
    if (pr.state === 'probe' && pr.probeSent) return false;
    if (pr.state === 'replicate' && pr.inflightFull(cfg.maxInflight)) return false;
    if (pr.next > log.lastIndex + 1) pr.next = log.lastIndex + 1;
    const prev = pr.next - 1;
    const prevTerm = log.termAt(prev);
    if (prevTerm === undefined) return this.startSnapshot(p, pr);
    const ents = log.slice(pr.next, Math.min(log.lastIndex, prev + cfg.maxEntriesPerAppend));
    if (ents.length === 0 && !allowEmpty) return false;
    this.sendAppendMessage(p, pr, prev, prevTerm, ents);
    if (pr.state === 'replicate') {
      if (ents.length > 0) {
        const last = ents[ents.length - 1]!.index;
        pr.next = last + 1;
        pr.inflight.push(last);
      }
    } else {
      pr.probeSent = true;
    }
    return true;
  }

  /** The heartbeat timer fired. */
  heartbeat(): void {
    const { cfg, log } = this.ctx;
    const perElection = Math.ceil(cfg.electionTicks / cfg.heartbeatTicks);
    const stallLimit = Math.max(2, Math.ceil(perElection / 2));
    const chunkResendLimit = Math.max(2, perElection);
    for (const [p, pr] of this.progress) {
      switch (pr.state) {
        case 'snapshot': {
          const s = pr.snapshot!;
          if (!s.waiting || ++s.idleHeartbeats >= chunkResendLimit) {
            this.sendSnapshotChunk(p, pr); // the chunk or its reply was lost: resend from the acknowledged offset
          } else {
            // Keep the follower's election timer quiet while a (large) chunk is on its way. Anchored at
            // our compaction point: the follower refuses it (ignored) or, if it turns out to hold
            // everything through there already, answers with its commit index and the transfer ends.
            this.sendAppendMessage(p, pr, log.offset, log.termAt(log.offset)!, []);
          }
          break;
        }
        case 'probe':
          pr.probeSent = false;
          this.sendAppend(p, pr, true);
          break;
        case 'replicate': {
          if (pr.inflight.length > 0 && pr.match === pr.matchAtHeartbeat) pr.stalledHeartbeats++;
          else pr.stalledHeartbeats = 0;
          pr.matchAtHeartbeat = pr.match;
          if (pr.stalledHeartbeats >= stallLimit) {
            // Appends in flight made no progress for a while: assume they were lost, probe again.
            pr.becomeProbe(pr.match + 1);
            this.sendAppend(p, pr, true);
            break;
          }
          // Anchor the heartbeat at the match point so that reordering never makes it fail.
          const t = log.termAt(pr.match);
          if (t !== undefined) {
            this.sendAppendMessage(p, pr, pr.match, t, []);
          } else {
            pr.becomeProbe(pr.match + 1);
            this.sendAppend(p, pr, true);
          }
          break;
        }
      }
    }
  }

  /** A follower's answer to an append, in this term. */
  onAppendReply(m: AppendEntriesReply): void {
    const pr = this.progress.get(m.from);
    if (!pr) return;
    pr.recentActive = true;
    // Any answer in our term (success or refusal) says the follower still follows us.
    if (m.readSeq) this.ctx.answered(m.from, m.readSeq);
    if (m.success) {
      const updated = pr.updateMatch(m.matchIndex);
      if (pr.state === 'probe') {
        pr.becomeReplicate();
      } else if (pr.state === 'snapshot') {
        // The follower caught up by log after all (a late reply): drop the transfer.
        if (pr.match >= this.ctx.log.offset) pr.becomeReplicate();
      }
      // Followers learn a new commit index from the next append or heartbeat (no eager broadcast).
      if (updated) this.ctx.matched();
      this.sendAppends(m.from, pr);
      this.sendWantedCommit(m.from, pr);
      return;
    }
    // Refusal.
    if (pr.state === 'snapshot') return;
    if (m.rejectedIndex <= pr.match) return; // stale
    if (pr.state === 'probe' && m.rejectedIndex !== pr.next - 1) return; // refusal of an older probe
    const hint = Math.max(1, Math.min(m.rejectHint, m.rejectedIndex));
    pr.becomeProbe(hint);
    this.sendAppend(m.from, pr, true);
  }

  /** A follower acknowledged read round `seq` (a ReadAck), in this term. */
  onReadAck(from: NodeId, seq: number): void {
    const pr = this.progress.get(from);
    if (!pr) return;
    pr.recentActive = true;
    this.ctx.answered(from, seq);
  }

  private startSnapshot(p: NodeId, pr: Progress): boolean {
    const cur = this.ctx.local();
    if (!cur || cur.meta.index < this.ctx.log.offset) return false; // nothing to send (cannot happen if the driver is consistent)
    pr.becomeSnapshot(cur.meta, cur.size);
    this.sendSnapshotChunk(p, pr);
    return true;
  }

  /** Send the chunk at the acknowledged offset; restart from 0 if the leader's snapshot changed. */
  private sendSnapshotChunk(p: NodeId, pr: Progress): void {
    const c = this.ctx;
    const s = pr.snapshot!;
    const cur = c.local();
    if (!cur) return;
    if (!sameMeta(cur.meta, s.meta) || cur.size !== s.size) {
      s.meta = cur.meta;
      s.size = cur.size;
      s.acked = 0;
    }
    if (s.acked > s.size || s.acked < 0) s.acked = 0;
    const length = Math.min(c.cfg.snapshotChunkSize, s.size - s.acked);
    // The driver reads the bytes and sends the message (installSnapshotMessage).
    c.sendSnapshot({
      from: c.id, to: p, term: c.term, meta: { index: s.meta.index, term: s.meta.term, config: [...s.meta.config] },
      size: s.size, offset: s.acked, length, done: s.acked + length >= s.size,
    });
    s.waiting = true;
    s.idleHeartbeats = 0;
  }

  /** A follower's answer to a snapshot chunk, in this term. */
  onInstallSnapshotReply(m: InstallSnapshotReply): void {
    const pr = this.progress.get(m.from);
    if (!pr) return;
    pr.recentActive = true;
    if (m.done && m.meta.index > pr.installedThrough) {
      // The follower installed a snapshot we sent, perhaps one we have since replaced: count it once.
      pr.installedThrough = m.meta.index;
      this.ctx.snapshotSent();
    }
    const s = pr.snapshot;
    if (pr.state !== 'snapshot' || !s || !sameMeta(s.meta, m.meta)) {
      // A reply about a transfer we already left (or an older snapshot): only learn the match.
      if (m.done && m.meta.index > pr.match) {
        pr.updateMatch(m.meta.index);
        this.ctx.matched();
      }
      return;
    }
    if (m.done) {
      pr.updateMatch(m.meta.index);
      pr.becomeReplicate(); // resume at meta.index + 1
      this.ctx.matched();
      this.sendAppends(m.from, pr);
      if (pr.inflight.length === 0) this.sendAppend(m.from, pr, true); // at least a heartbeat with the commit index
      return;
    }
    if (!s.waiting) return; // a duplicate reply: one chunk in flight at a time
    s.waiting = false;
    s.acked = m.bytesStored;
    this.sendSnapshotChunk(m.from, pr);
  }
}
