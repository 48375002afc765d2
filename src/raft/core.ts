/**
 * The pure, deterministic Raft core.
 *
 * No I/O, no timers, no clock, no randomness of its own: time is `tick()`, randomness is
 * `config.random`. Snapshot files are the driver's: the core names the chunks to send and to
 * store in its Ready and keeps only byte counts. The same inputs give the same outputs, so a
 * simulator can run a whole cluster in one process from one seed.
 *
 * Driver contract (etcd's Ready loop): while `hasReady()`, take `ready()`, then
 *  1. persist: if `snapshot` is set, replace the stored log by the snapshot (drop every stored
 *     entry; the storage library's record of the received snapshot does this on replay); store
 *     `entries` (a first index at or below the last stored one replaces the suffix); store
 *     `hardState`; fsync. Then store `snapshotChunk` (on its last chunk also verify, fsync, rename
 *     and record the file) and report the result with `snapshotStored()`, which queues the reply to
 *     the leader (and, for a complete snapshot, Figure 13 rules 5-8) for the next Ready;
 *  2. send `messages`, and `snapshotSends` with their bytes read from the local snapshot
 *     (`installSnapshotMessage`); they depend only on what step 1 made durable, or earlier Readys;
 *  3. restore the state machine from `snapshot` (durable since its `snapshotStored`), then apply
 *     `committed` in order;
 *  4. `advance()` (marks the entries stable and the committed ones applied).
 * `mustSync` false (only the commit index changed): step 1 needs no fsync. `sendFirst` (a leader,
 * no new term or vote): step 2's sends may go before step 1, in parallel with the leader's own
 * write; the leader counts itself toward a commit only for entries `advance()` marked stable.
 * `applyFirst` (every committed entry is on this node's disk already, or on a majority's without
 * it: `commitDurable`): step 3 may go before step 1; `takeDuringWrite` hands out the entries that
 * commit while step 1 runs on the same terms. A single voter's entries never qualify.
 * Inputs (`step`, `tick`, `propose`, `snapshotAvailable`) may arrive between `ready()` and
 * `advance()`; what they produce comes out in the next Ready. A storage failure in step 1 stops
 * the node (the driver throws): the chunk is then never reported and never answered.
 *
 * Behaviour in brief:
 *  - elections: randomized timeout in [electionTicks, 2*electionTicks); pre-vote (no term change
 *    until a majority would vote); check-quorum (a leader that did not hear from a majority within
 *    electionTicks steps down) with leader stickiness (a node that heard from a leader within
 *    electionTicks ignores (pre)vote requests of higher terms). A single voter elects itself on
 *    its first tick or `campaign()`; `restoreSnapshot`/`seedCommitted` never elect on their own.
 *  - a new leader appends a no-op (`data: null`); commit advances only by counting replicas of an
 *    entry of the current term (Figure 8).
 *  - replication, leader side (replication.ts): per-follower probe / replicate / snapshot states,
 *    batched and pipelined appends, heartbeats, chunked InstallSnapshot of the local snapshot the
 *    driver last reported (`snapshotAvailable`, or `localSnapshot` at start).
 *  - replication, follower side (here): an append whose prevLogIndex lies below the follower's
 *    commit (for example inside its snapshot) is trimmed to the part after the commit index, or
 *    answered success with matchIndex = commit; a refusal carries `rejectedIndex` and `rejectHint`
 *    (the follower's lastIndex+1 when its log is too short, else the first index of its run of the
 *    conflicting term, never at or below its commit index).
 *  - receiving (snapshot.ts, SnapshotReceiver): one chunk at a time goes to the driver to store;
 *    its reply is produced only when the driver reports it stored (the last one: verified and
 *    durable); a chunk at another offset than the bytes held is answered with that count.
 *
 * Reads: ReadIndex (read-index.ts), never a lease or a clock. `readIndex(ctx)` on the leader queues
 * a read, whose read index is the commit index when it arrived (once the leader committed an entry
 * of its term, its no-op; until then it waits); reads queued between two Readys form one round;
 * every append sent from then on carries the round's number, followers echo it, and a round
 * answered by a majority in the leader's term comes out in `Ready.readStates`. Leaving the leader
 * role drops the unconfirmed reads into `Ready.readsLost`. A follower's reads take the same path on
 * the leader (the driver asks for a read index and answers from the follower's own state once it
 * has applied it), so a read index never lies below the commit index the leader has sent.
 */
import { RaftLog } from './log.js';
import { ReadIndex, type ReadState } from './read-index.js';
import { Replication } from './replication.js';
import { compareMeta, copyMeta, SnapshotReceiver } from './snapshot.js';
import type {
  AppendEntries,
  AppendEntriesReply,
  Entry,
  HardState,
  InstallSnapshot,
  InstallSnapshotReply,
  Json,
  LocalSnapshot,
  NodeId,
  RaftConfig,
  RaftMessage,
  RaftRestore,
  RaftStatus,
  ReadAck,
  Ready,
  RequestVote,
  RequestVoteReply,
  Role,
  SnapshotMeta,
  SnapshotSend,
} from './types.js';

/** Counters for the cluster runner's report. */
export interface RaftStats {
  /** Pre-vote rounds started (only with preVote). */
  preVotesStarted: number;
  /** Real elections started (term bumped as candidate). */
  electionsStarted: number;
  becameLeader: number;
  /** InstallSnapshot transfers this node completed as leader (follower answered done). */
  snapshotsSent: number;
  /** Snapshots received from a leader and installed. */
  snapshotsInstalled: number;
  /** Times this node stepped down as leader because check-quorum failed. */
  checkQuorumStepDowns: number;
}

export class RaftCore {
  private readonly cfg: RaftConfig;
  private readonly id: NodeId;
  private peers: NodeId[];
  private readonly log: RaftLog;

  private term: number;
  private votedFor: NodeId | null;
  private commit: number;
  private role: Role = 'follower';
  private leaderId: NodeId | null = null;

  /** Newest snapshot known (local compaction, install, restore). */
  private snapshotMeta: SnapshotMeta | null;
  /** The newest durable local snapshot file, as the driver reported it: what a leader sends. */
  private local: LocalSnapshot | null;
  /** Follower: the snapshot being received from the leader (snapshot.ts). */
  private readonly receiver = new SnapshotReceiver();
  /**
   * The highest index known to be on the disks of a majority of voters without counting this
   * node's entries still being written: a follower learns it as the leader's commit index (the
   * leader counts itself only for entries on its own disk), a leader of several voters from the
   * followers' acknowledgements (each sent after its fsync). Committed entries up to it may be
   * applied, and their clients answered, before this node's own write of them completes: they
   * survive any crash of this node. A single voter has none: its commit is its own fsync.
   */
  private commitDurable = 0;
  /** What the driver has applied (advance / appliedTo). */
  private applied: number;
  /** Last index handed out in Ready.committed or takeDuringWrite (or covered by a Ready.snapshot). */
  private applyCursor: number;
  /** Index of the no-op this node appended when it last became leader (0 before). */
  private termStart = 0;
  /**
   * Leader: the highest commit index it sent to a follower in this term. A follower applies up to
   * what it was told and answers reads from that state (follower reads), so a read on this leader
   * must include it (readIndex).
   */
  private commitAdvertised = 0;

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedTimeout = 0;

  private readonly votes = new Map<NodeId, boolean>();
  /** Leader: replication to the followers, for the term it leads; null otherwise. */
  private leading: Replication | null = null;

  private msgs: RaftMessage[] = [];
  private early: RaftMessage[] = [];
  /** Follower: the highest read round acknowledged to the current leader in this term. */
  private readAcked = 0;
  private sends: SnapshotSend[] = [];
  private pendingSnapshot: SnapshotMeta | null = null;
  private lastHardState: HardState;
  /** The Ready handed out last, until advanced, was `sendFirst` (true when none is in flight). */
  private lastReadySendFirst = true;
  /** Applied index the pending Ready will reach once the driver has handled it. */
  private readyApplied: number | null = null;
  /** A proposal was appended since the last flush of appends to followers. */
  private proposalsPending = false;
  /** Leader: ReadIndex rounds and the reads waiting for them. */
  private readonly reads = new ReadIndex();
  /** A read round started: followers that get no append carrying its number get a heartbeat. */
  private readRoundStarted = false;
  private readStates: ReadState[] = [];
  private readsLost: number[] = [];

  private readonly counters: RaftStats = {
    preVotesStarted: 0,
    electionsStarted: 0,
    becameLeader: 0,
    snapshotsSent: 0,
    snapshotsInstalled: 0,
    checkQuorumStepDowns: 0,
  };

  constructor(config: RaftConfig, restore: RaftRestore) {
    if (config.electionTicks < 1 || config.heartbeatTicks < 1) throw new RangeError('electionTicks and heartbeatTicks must be >= 1');
    if (config.maxEntriesPerAppend < 1 || config.maxInflight < 1 || config.snapshotChunkSize < 1) {
      throw new RangeError('maxEntriesPerAppend, maxInflight and snapshotChunkSize must be >= 1');
    }
    this.cfg = config;
    this.id = config.id;
    this.peers = [...config.peers];
    const ls = config.localSnapshot;
    if (ls && (!Number.isSafeInteger(ls.size) || ls.size < 0)) throw new RangeError(`local snapshot size ${ls.size} is not a byte count`);
    this.local = ls ? { meta: copyMeta(ls.meta), size: ls.size } : null;
    const snap = restore.snapshot;
    // Membership is static: the voters are the ones given at start (Maelstrom's init). A snapshot's
    // configuration is recorded with it, not adopted, so a snapshot restored into a cluster of
    // another shape (raftsnap restore, disaster recovery) serves under the cluster it runs in.
    this.snapshotMeta = snap;
    // The stored log may start before the snapshot (trailing entries kept by compaction).
    let offset = snap ? snap.index : 0;
    let offsetTerm = snap ? snap.term : 0;
    let entries = restore.entries;
    if (entries.length > 0) {
      const first = entries[0]!.index;
      if (first > offset + 1) throw new RangeError(`log starts at ${first}, after snapshot index ${offset} + 1`);
      if (first <= offset) {
        const at = entries[offset - first];
        if (at && at.term !== offsetTerm) {
          throw new RangeError(`stored entry ${offset} has term ${at.term}, snapshot says ${offsetTerm}`);
        }
        // Trailing entries kept before the snapshot: the log's compacted prefix ends at the first one.
        const head = entries[0]!;
        offset = head.index;
        offsetTerm = head.term;
        entries = entries.slice(1);
      }
    }
    this.log = new RaftLog(offset, offsetTerm, entries);
    const hs = restore.hardState;
    this.term = hs.term;
    this.votedFor = hs.votedFor;
    this.commit = Math.min(Math.max(hs.commit, snap ? snap.index : 0), this.log.lastIndex);
    this.applied = Math.min(Math.max(restore.applied, snap ? snap.index : 0), this.commit);
    this.applyCursor = this.applied;
    this.lastHardState = { ...hs };
    this.resetTimers();
  }

  // -------------------------------------------------------------------------------------------
  // Inputs

  /** Advance logical time by one tick (elections, heartbeats, check-quorum). */
  tick(): void {
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  /** Handle one message from another node. Messages for other nodes or stale terms are handled per Raft. */
  step(m: RaftMessage): void {
    if (m.to !== this.id || m.from === this.id) return;
    if (m.term > this.term) {
      if (m.type === 'raft_request_vote') {
        // Leader stickiness: a node that heard from a live leader recently ignores (pre)votes.
        if (this.inLease()) return;
        // Adopt the term, but keep the election timer: only an append from the leader or a granted
        // vote restarts it (Figure 2). A candidate with a stale log would otherwise hold back, vote
        // after vote, the node that can win (lagging-restart seeds 5123, 6285, 6370, 6895, 6914).
        if (!m.preVote) this.becomeFollower(m.term, null, false);
      } else if (m.type === 'raft_request_vote_reply' && m.preVote && m.granted) {
        // A granted pre-vote carries the proposed term; nobody changes term for it.
      } else {
        const lead = m.type === 'raft_append_entries' || m.type === 'raft_install_snapshot' ? m.from : null;
        this.becomeFollower(m.term, lead);
      }
    } else if (m.term < this.term) {
      // Answer stale senders with our term so that they step down; ignore stale replies.
      switch (m.type) {
        case 'raft_append_entries':
          this.send<AppendEntriesReply>({
            type: 'raft_append_entries_reply', from: this.id, to: m.from, term: this.term,
            success: false, matchIndex: 0, rejectHint: 0, rejectedIndex: m.prevLogIndex, readSeq: m.readSeq ?? 0,
          });
          break;
        case 'raft_install_snapshot':
          this.send<InstallSnapshotReply>({
            type: 'raft_install_snapshot_reply', from: this.id, to: m.from, term: this.term,
            meta: m.meta, bytesStored: 0, done: false,
          });
          break;
        case 'raft_request_vote':
          this.send<RequestVoteReply>({
            type: 'raft_request_vote_reply', from: this.id, to: m.from, term: this.term, granted: false, preVote: m.preVote,
          });
          break;
        default:
          break;
      }
      return;
    }

    switch (m.type) {
      case 'raft_request_vote':
        return this.onRequestVote(m);
      case 'raft_request_vote_reply':
        return this.onVoteReply(m);
      case 'raft_append_entries':
        return this.onAppend(m);
      case 'raft_append_entries_reply':
        if (this.role === 'leader') this.leading!.onAppendReply(m);
        return;
      case 'raft_read_ack':
        if (this.role === 'leader') this.leading!.onReadAck(m.from, m.readSeq);
        return;
      case 'raft_install_snapshot':
        return this.onInstallSnapshot(m);
      case 'raft_install_snapshot_reply':
        if (this.role === 'leader') this.leading!.onInstallSnapshotReply(m);
        return;
      default:
        return;
    }
  }

  /** Append `data` to the log if this node is leader; null otherwise (see `leader()` for a hint). */
  propose(data: Json): { index: number; term: number } | null {
    if (this.role !== 'leader') return null;
    const e: Entry = { index: this.log.lastIndex + 1, term: this.term, data };
    this.log.append([e]);
    this.proposalsPending = true;
    this.maybeCommit();
    return { index: e.index, term: e.term };
  }

  /**
   * A linearizable read named `ctx` (ReadIndex, read-index.ts): if this node is leader, it comes out
   * of a later Ready's `readStates` once a majority confirmed the leadership after this call (with
   * the index to apply first), or in `readsLost` if the node stops being leader before. Returns
   * false (nothing queued) when this node is not the leader.
   *
   * The read index is the commit index now (etcd's ReadIndex), unless the driver gives
   * `answeredThrough`: its promise that no client was answered for an entry of this leader's term
   * above that index, and that no answer the read must follow is above it (the driver's applied
   * index, raised to the client's own earlier writes when it keeps a client's requests in order;
   * only the leader that proposed an entry answers for it, once applied). Then the index is the
   * highest of it, the end of the log this node was elected with (entries earlier leaders may
   * have answered for) and the commit index this leader has sent to followers (a follower answers
   * reads from its own state machine, which may be ahead of the leader's), at most the last index: a read does not wait for entries other clients
   * have in flight, committed or not, and one above the commit index (a client's own write in
   * flight) is answered once that entry is applied. Any index from that figure up to the last one
   * gives a linearizable read once confirmed: what it returns was the state at a point between its
   * arrival and its answer.
   *
   * `askedBy`: the read is a follower's (it asked for a read index, in `term`, after its reads
   * arrived). Its request counts as its acknowledgement: where it and the leader are a majority,
   * the read is confirmed in the next Ready without a round.
   */
  readIndex(ctx: number, answeredThrough?: number, askedBy?: { id: NodeId; term: number }): boolean {
    if (this.role !== 'leader') return false;
    const own = this.log.termAt(this.commit) === this.term;
    const index = own && answeredThrough !== undefined ? Math.min(this.log.lastIndex, Math.max(answeredThrough, this.termStart - 1, this.commitAdvertised)) : this.commit;
    // A voter that asked in this term, after its reads arrived, still followed this leader then:
    // its request is its acknowledgement of a round for those reads. With it and the leader a
    // majority (3 voters, or 2), no round is needed: no other leader can have been elected by the
    // time it asked, nor committed anything before.
    if (own && askedBy && askedBy.term === this.term && askedBy.id !== this.id && this.peers.includes(askedBy.id) && this.quorum() <= 2) {
      this.readStates.push({ ctx, index });
      // It answers once it has applied `index`: it must learn that much is committed.
      this.leading?.sendCommit(askedBy.id, index);
      return true;
    }
    this.reads.add(ctx, index, own);
    // No entry of this term in the log (a local restore replaced it): the read needs one committed.
    if (!own && this.log.lastTerm !== this.term) this.propose(null);
    return true;
  }

  /** Start an election now (tests, single-node start). Goes through pre-vote when enabled. */
  campaign(): void {
    if (this.role === 'leader' || !this.promotable()) return;
    if (this.cfg.preVote) this.becomePreCandidate();
    else this.becomeCandidate();
  }

  // -------------------------------------------------------------------------------------------
  // Ready loop

  hasReady(): boolean {
    this.flush();
    return (
      this.msgs.length > 0 ||
      this.early.length > 0 ||
      this.readStates.length > 0 ||
      this.readsLost.length > 0 ||
      this.sends.length > 0 ||
      this.receiver.waiting ||
      this.pendingSnapshot !== null ||
      this.log.unstableFrom <= this.log.lastIndex ||
      this.commit > this.applyCursor ||
      this.hardStateChanged()
    );
  }

  /** Collect what the driver must persist, send and apply. Call `advance()` once it is done. */
  ready(): Ready {
    this.flush();
    const hardState = this.hardStateChanged() ? this.hardState() : null;
    // etcd's MustSync: a new term or vote, or entries, must be on disk before anything is sent that
    // depends on them; a commit index alone need not be (it is learnt again from the leader).
    const voteChanged = hardState !== null && (hardState.term !== this.lastHardState.term || hardState.votedFor !== this.lastHardState.votedFor);
    if (hardState) this.lastHardState = hardState;
    const entries = this.log.handOut();
    const mustSync = voteChanged || entries.length > 0;
    // A leader's messages (appends, heartbeats) may go out while it writes its own log (Raft thesis
    // 10.2.1, as etcd's leader does): it counts itself toward a commit only for entries on its disk.
    const sendFirst = this.role === 'leader' && !voteChanged;
    this.lastReadySendFirst = sendFirst;
    const snapshot = this.pendingSnapshot;
    this.pendingSnapshot = null;
    const snapshotChunk = this.receiver.take();
    const messages = this.msgs;
    this.msgs = [];
    // Read acknowledgements matter only when the replies that echo the same round wait for a disk
    // write (an fsync or a snapshot chunk); otherwise those replies go out just as soon.
    const early = mustSync || snapshotChunk !== null ? this.early : [];
    this.early = [];
    const snapshotSends = this.sends;
    this.sends = [];
    const committed = this.commit > this.applyCursor ? this.log.slice(this.applyCursor + 1, this.commit) : [];
    // Committed entries already on this node's disk (from earlier Readys), or on a majority's
    // (commitDurable), may be applied before this Ready's own write: nothing of them waits for it.
    const applyFirst = snapshot === null && (committed.length === 0 || committed[committed.length - 1]!.index <= this.applicable());
    this.applyCursor = Math.max(this.applyCursor, this.commit);
    this.readyApplied = Math.max(this.readyApplied ?? 0, snapshot ? snapshot.index : 0, committed.length ? committed[committed.length - 1]!.index : 0);
    const readStates = this.readStates;
    this.readStates = [];
    const readsLost = this.readsLost;
    this.readsLost = [];
    return { hardState, entries, mustSync, snapshot, snapshotChunk, messages, early, sendFirst, snapshotSends, committed, applyFirst, readStates, readsLost };
  }

  /**
   * What may be carried out at once while a Ready's write is in flight, besides the leader's
   * messages (takeLeaderMessages): a follower's read acknowledgements (they claim nothing about
   * its log, only that it still follows this leader in this term; held back when the term itself
   * is not yet recorded in a Ready), and the reads confirmed or lost since the last Ready (a read
   * index is the commit index when the read arrived: answering once the state machine has applied
   * it needs nothing of the write). Without this they would wait for the write and the next Ready,
   * and a read round would pay for every fsync of the followers on its way.
   *
   * With `applyNow` (the driver has applied everything the Ready being written handed out, and it
   * installs no snapshot), also the entries committed since that are already on this node's disk
   * (below `unstableFrom`) or known on a majority's (`commitDurable`, this node's own write of them
   * may still run): applying them waits for nothing.
   */
  takeDuringWrite(applyNow: boolean): { messages: RaftMessage[]; readStates: ReadState[]; readsLost: number[]; committed: Entry[] } {
    const messages = this.takeLeaderMessages();
    if (this.early.length > 0 && this.term === this.lastHardState.term) {
      for (const m of this.early) messages.push(m);
      this.early = [];
    }
    const readStates = this.readStates;
    const readsLost = this.readsLost;
    if (readStates.length > 0) this.readStates = [];
    if (readsLost.length > 0) this.readsLost = [];
    let committed: Entry[] = [];
    if (applyNow && this.pendingSnapshot === null) {
      const upTo = Math.min(this.commit, this.applicable());
      if (upTo > this.applyCursor) {
        committed = this.log.slice(this.applyCursor + 1, upTo);
        this.applyCursor = upTo;
        this.readyApplied = Math.max(this.readyApplied ?? 0, upTo);
      }
    }
    return { messages, readStates, readsLost, committed };
  }

  /**
   * A leader's messages produced since the last Ready (appends, heartbeats, read rounds), taken
   * out before the next one: the driver sends them while the last Ready's write is still running,
   * if that Ready was `sendFirst` (a Ready that records a new term or vote must be durable before
   * anything is sent in it). A leader's messages depend on nothing of its own disk but its
   * term and vote (its own new entries count toward a commit only once `advance()` marked them
   * stable), so this is `sendFirst` carried on to the inputs stepped meanwhile. Empty unless the
   * node still leads in the term and with the vote of the last Ready; snapshot sends, read states
   * and everything else stay for the next Ready.
   */
  takeLeaderMessages(): RaftMessage[] {
    if (!this.lastReadySendFirst || this.role !== 'leader' || this.term !== this.lastHardState.term || this.votedFor !== this.lastHardState.votedFor) return [];
    this.flush();
    if (this.msgs.length === 0) return [];
    const m = this.msgs;
    this.msgs = [];
    return m;
  }

  /** The driver handled the last Ready: persisted, sent, restored and applied it. */
  advance(): void {
    // No Ready in flight: the last recorded term and vote are durable.
    this.lastReadySendFirst = true;
    this.log.stableTo();
    // The leader's own entries are on its disk now: they count toward the commit index.
    if (this.role === 'leader') this.maybeCommit();
    if (this.readyApplied !== null) {
      this.applied = Math.max(this.applied, Math.min(this.readyApplied, this.commit));
      this.readyApplied = null;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Snapshot storage reports (the driver carried out a Ready's snapshot work, or saved one)

  /**
   * The driver stored the Ready's `snapshotChunk` of `meta`: `held` is how many bytes of that
   * snapshot its store now holds (what `receive` returned; 0 when the final verification failed and
   * the partial transfer was discarded); `installed` is true when that was the last chunk and the
   * complete snapshot verified and is durable (file fsynced and renamed, directory fsynced, recorded
   * in the log), so it is now the newest local snapshot. Queues the reply to the leader (if it is
   * still our leader in the same term) and, for an installed snapshot newer than what we hold,
   * Figure 13 rules 6-8: the log is compacted or discarded and the next Ready's `snapshot` tells the
   * driver to restore the state machine from it. Throws when no such chunk was handed out.
   */
  snapshotStored(meta: SnapshotMeta, held: number, installed: boolean): void {
    const s = this.receiver.stored(meta, held, installed);
    const c = s.chunk;
    if (installed) {
      this.snapshotAvailable(c.meta, c.size);
      // Rule 5: keep it only if it is newer than what we hold (our commit may have moved meanwhile).
      if (c.meta.index > this.holdsThrough()) {
        this.installLocal(c.meta);
        this.applyCursor = c.meta.index;
        if (this.readyApplied !== null) this.readyApplied = Math.min(this.readyApplied, c.meta.index);
        this.pendingSnapshot = copyMeta(c.meta);
        this.counters.snapshotsInstalled++;
      }
    }
    // A newer term began meanwhile: its leader sends its own chunks (we resume from `held`).
    if (this.term !== s.term || this.role !== 'follower' || this.leaderId !== s.from) return;
    this.send<InstallSnapshotReply>({
      type: 'raft_install_snapshot_reply', from: this.id, to: s.from, term: this.term,
      meta: copyMeta(c.meta), bytesStored: installed ? c.size : held, done: installed,
    });
  }

  /**
   * A durable local snapshot file of `size` bytes at `meta` is now the newest the driver's store
   * holds (after a save, or a control reset): the one sent to followers that need a snapshot.
   * An older one than the current is ignored. Transfers of another snapshot restart with it at 0.
   */
  snapshotAvailable(meta: SnapshotMeta, size: number): void {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`raft: snapshot size ${size} is not a byte count`);
    if (this.local && compareMeta(meta, this.local.meta) < 0) return;
    this.local = { meta: copyMeta(meta), size };
    this.leading?.snapshotChanged(meta, size);
  }

  // -------------------------------------------------------------------------------------------
  // Compaction and local state changes

  /**
   * The state machine has been snapshotted at `meta.index` (<= applied) and the snapshot is durable
   * (reported with `snapshotAvailable`). Drop log entries up to `meta.index - trailing`.
   * Returns false (and changes nothing) when `meta.index` is beyond what was applied or does not
   * match the log's term at that index.
   */
  compact(meta: SnapshotMeta, trailing: number): boolean {
    if (meta.index > this.applied) return false;
    const t = this.log.termAt(meta.index);
    if (t !== undefined && t !== meta.term) return false;
    const to = Math.min(meta.index, meta.index - Math.max(0, Math.floor(trailing)));
    if (to > this.log.offset) this.log.compactTo(to);
    if (!this.snapshotMeta || meta.index > this.snapshotMeta.index) this.snapshotMeta = { ...meta, config: [...meta.config] };
    return true;
  }

  /**
   * Reset this node to a snapshot produced locally (control messages seed_state / install_snapshot;
   * its file is reported with `snapshotAvailable`):
   * the log before and at meta.index is discarded (the suffix kept if it matches, Figure 13 rule 6),
   * commit and applied move to meta.index, term to at least meta.term. The driver has restored the
   * state machine itself (no Ready.snapshot); it replaces its stored log by the snapshot, and the
   * kept suffix comes again in the next Ready's entries. Returns false (nothing changed) for a
   * snapshot older than the current one.
   */
  restoreSnapshot(meta: SnapshotMeta): boolean {
    if (this.snapshotMeta && meta.index < this.snapshotMeta.index) return false;
    if (meta.term > this.term) this.becomeFollower(meta.term, null);
    this.installLocal(meta);
    this.applied = meta.index;
    this.applyCursor = meta.index;
    this.readyApplied = null;
    if (this.role === 'leader') this.maybeCommit();
    return true;
  }

  /**
   * Append already-committed entries (control message seed_committed_log) and commit through
   * `commit`; they come out of the next Ready's `committed`.
   */
  seedCommitted(entries: Entry[], commit: number): void {
    const fresh = entries.filter((e) => e.index > this.log.offset);
    if (fresh.length > 0) {
      const first = fresh[0]!.index;
      if (first > this.log.lastIndex + 1) throw new RangeError(`seeded entries start at ${first}, after last index ${this.log.lastIndex} + 1`);
      let from = 0;
      while (from < fresh.length && this.log.termAt(fresh[from]!.index) === fresh[from]!.term) from++;
      if (from < fresh.length) this.log.append(fresh.slice(from));
      const maxTerm = Math.max(...fresh.map((e) => e.term));
      if (maxTerm > this.term) this.becomeFollower(maxTerm, null);
    }
    const c = Math.min(commit, this.log.lastIndex);
    if (c > this.commit) this.commit = c;
  }

  /** The driver applied entries through `index`. */
  appliedTo(index: number): void {
    const i = Math.min(index, this.commit);
    if (i > this.applied) this.applied = i;
  }

  // -------------------------------------------------------------------------------------------
  // Queries

  status(): RaftStatus {
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      leader: this.leaderId,
      commit: this.commit,
      applied: this.applied,
      firstIndex: this.log.firstIndex,
      lastIndex: this.log.lastIndex,
      snapshot: this.snapshotMeta ? { ...this.snapshotMeta, config: [...this.snapshotMeta.config] } : null,
      votedFor: this.votedFor,
    };
  }

  stats(): RaftStats {
    return { ...this.counters };
  }

  /** Replication state of each follower (leader only; empty otherwise). For tests and debugging. */
  progressOf(): Map<NodeId, { match: number; next: number; state: string; snapshotAcked: number | null }> {
    const out = new Map<NodeId, { match: number; next: number; state: string; snapshotAcked: number | null }>();
    for (const [id, pr] of this.leading?.progress ?? []) {
      out.set(id, { match: pr.match, next: pr.next, state: pr.state, snapshotAcked: pr.snapshot ? pr.snapshot.acked : null });
    }
    return out;
  }

  /** Voting members: the peers given at start (membership is static). */
  config(): NodeId[] {
    return [...this.peers];
  }

  leader(): NodeId | null {
    return this.leaderId;
  }

  /** The current term. */
  currentTerm(): number {
    return this.term;
  }

  /** Term of the entry at `index`; valid from the snapshot index on, undefined otherwise. */
  termAt(index: number): number | undefined {
    const t = this.log.termAt(index);
    if (t !== undefined) return t;
    // The snapshot's own index, when trailing entries were kept (it is then inside the log anyway).
    if (this.snapshotMeta && index === this.snapshotMeta.index) return this.snapshotMeta.term;
    return undefined;
  }

  /**
   * The last index on this node's disk: entries after it are in a Ready being written, or still to
   * be handed out. Applied entries may lie beyond it (commitDurable); a snapshot of the state
   * machine is taken only at an applied index at or below it (the snapshotter checks), so that a
   * snapshot never covers entries the WAL may not hold yet.
   */
  stableIndex(): number {
    return Math.min(this.log.lastIndex, this.log.unstableFrom - 1);
  }

  /** Entries in [from, to] that are still in the log (not compacted). */
  entries(from: number, to: number): Entry[] {
    return this.log.slice(from, to);
  }

  // -------------------------------------------------------------------------------------------
  // Roles and timers

  private quorum(): number {
    return Math.floor(this.peers.length / 2) + 1;
  }

  private promotable(): boolean {
    return this.peers.includes(this.id);
  }

  private isSingleton(): boolean {
    return this.peers.length === 1 && this.peers[0] === this.id;
  }

  private others(): NodeId[] {
    return this.peers.filter((p) => p !== this.id);
  }

  private inLease(): boolean {
    return this.cfg.checkQuorum && this.leaderId !== null && this.electionElapsed < this.cfg.electionTicks;
  }

  private resetTimers(): void {
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    const e = this.cfg.electionTicks;
    this.randomizedTimeout = e + Math.min(e - 1, Math.floor(this.cfg.random() * e));
  }

  private becomeFollower(term: number, lead: NodeId | null, resetTimer = true): void {
    this.loseReads();
    if (term !== this.term || lead !== this.leaderId) this.readAcked = 0;
    if (term !== this.term) {
      this.term = term;
      this.votedFor = null;
    }
    this.role = 'follower';
    this.leaderId = lead;
    this.votes.clear();
    this.leading = null;
    this.proposalsPending = false;
    if (resetTimer) this.resetTimers();
    else this.heartbeatElapsed = 0;
  }

  private becomePreCandidate(): void {
    this.loseReads();
    this.role = 'pre-candidate';
    this.leaderId = null;
    this.votes.clear();
    this.leading = null;
    this.resetTimers();
    this.counters.preVotesStarted++;
    this.votes.set(this.id, true);
    if (this.tally().granted >= this.quorum()) return this.becomeCandidate();
    this.requestVotes(true);
  }

  private becomeCandidate(): void {
    this.loseReads();
    this.role = 'candidate';
    this.term += 1;
    this.votedFor = this.id;
    this.leaderId = null;
    this.votes.clear();
    this.leading = null;
    this.resetTimers();
    this.counters.electionsStarted++;
    this.votes.set(this.id, true);
    if (this.tally().granted >= this.quorum()) return this.becomeLeader();
    this.requestVotes(false);
  }

  private requestVotes(preVote: boolean): void {
    for (const p of this.others()) {
      this.send<RequestVote>({
        type: 'raft_request_vote', from: this.id, to: p,
        term: preVote ? this.term + 1 : this.term,
        lastLogIndex: this.log.lastIndex, lastLogTerm: this.log.lastTerm, preVote,
      });
    }
  }

  private becomeLeader(): void {
    this.loseReads();
    this.role = 'leader';
    this.leaderId = this.id;
    this.votes.clear();
    this.resetTimers();
    this.counters.becameLeader++;
    const next = this.log.lastIndex + 1;
    this.termStart = next;
    this.commitAdvertised = 0;
    this.leading = new Replication(
      {
        id: this.id, cfg: this.cfg, log: this.log, term: this.term,
        advertiseCommit: () => {
          if (this.commit > this.commitAdvertised) this.commitAdvertised = this.commit;
          return this.commit;
        },
        local: () => this.local,
        readSeq: () => this.reads.seq,
        send: (m) => this.send(m),
        sendSnapshot: (send) => this.sends.push(send),
        matched: () => void this.maybeCommit(),
        answered: (from, seq) => {
          this.reads.ack(from, seq);
          this.collectReads();
        },
        snapshotSent: () => void this.counters.snapshotsSent++,
      },
      this.others(),
      next,
    );
    // The no-op of the new term: commits everything before it (only current-term entries count).
    this.log.append([{ index: next, term: this.term, data: null }]);
    this.maybeCommit();
    this.leading.broadcastEmpty();
  }

  private tally(): { granted: number; rejected: number } {
    let granted = 0;
    let rejected = 0;
    for (const [id, v] of this.votes) {
      if (!this.peers.includes(id)) continue;
      if (v) granted++;
      else rejected++;
    }
    return { granted, rejected };
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (!this.promotable()) return;
    if (this.isSingleton() || this.electionElapsed >= this.randomizedTimeout) this.campaign();
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTicks) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) {
        const active = 1 + this.leading!.takeActive(this.peers);
        if (active < this.quorum()) {
          this.counters.checkQuorumStepDowns++;
          this.becomeFollower(this.term, null);
          return;
        }
      }
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.leading!.heartbeat();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Votes

  private onRequestVote(m: RequestVote): void {
    // Here m.term >= this.term (a real vote at a higher term already made us a follower of it).
    const canVote =
      this.votedFor === m.from ||
      (this.votedFor === null && this.leaderId === null) ||
      (m.preVote && m.term > this.term);
    const lastTerm = this.log.lastTerm;
    const upToDate = m.lastLogTerm > lastTerm || (m.lastLogTerm === lastTerm && m.lastLogIndex >= this.log.lastIndex);
    if (canVote && upToDate) {
      if (!m.preVote) {
        this.votedFor = m.from;
        this.electionElapsed = 0;
      }
      this.send<RequestVoteReply>({ type: 'raft_request_vote_reply', from: this.id, to: m.from, term: m.term, granted: true, preVote: m.preVote });
    } else {
      this.send<RequestVoteReply>({ type: 'raft_request_vote_reply', from: this.id, to: m.from, term: this.term, granted: false, preVote: m.preVote });
    }
  }

  private onVoteReply(m: RequestVoteReply): void {
    if (m.preVote) {
      if (this.role !== 'pre-candidate') return;
      if (m.granted && m.term !== this.term + 1) return;
    } else if (this.role !== 'candidate' || m.term !== this.term) {
      return;
    }
    if (!this.votes.has(m.from)) this.votes.set(m.from, m.granted);
    const { granted, rejected } = this.tally();
    if (granted >= this.quorum()) {
      if (m.preVote) this.becomeCandidate();
      else this.becomeLeader();
    } else if (rejected >= this.quorum()) {
      this.becomeFollower(this.term, null);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Follower side of replication

  private heardFromLeader(from: NodeId): void {
    if (this.role !== 'follower') this.becomeFollower(this.term, from);
    if (this.leaderId !== from) this.readAcked = 0;
    this.leaderId = from;
    this.electionElapsed = 0;
  }

  private onAppend(m: AppendEntries): void {
    if (this.role === 'leader') return; // two leaders in one term cannot happen
    this.heardFromLeader(m.from);
    // The append's read round number goes back with the answer (ReadIndex, read-index.ts), and at
    // once, before this node's own write, in a read acknowledgement when it is a new round.
    const readSeq = m.readSeq ?? 0;
    if (readSeq > this.readAcked) {
      this.readAcked = readSeq;
      this.early.push({ type: 'raft_read_ack', from: this.id, to: m.from, term: this.term, readSeq } satisfies ReadAck);
    }
    const reject = (hint: number) =>
      this.send<AppendEntriesReply>({
        type: 'raft_append_entries_reply', from: this.id, to: m.from, term: this.term,
        success: false, matchIndex: 0, rejectHint: hint, rejectedIndex: m.prevLogIndex, readSeq,
      });
    const accept = (matchIndex: number) =>
      this.send<AppendEntriesReply>({
        type: 'raft_append_entries_reply', from: this.id, to: m.from, term: this.term,
        success: true, matchIndex, rejectHint: 0, rejectedIndex: 0, readSeq,
      });

    // Figure 2's receiver rules 2-5 (log.ts): match, append what is new, learn the commit index.
    const r = this.log.receive(m.prevLogIndex, m.prevLogTerm, m.entries, this.commit);
    if ('rejectHint' in r) {
      reject(r.rejectHint);
      return;
    }
    const c = Math.min(m.leaderCommit, r.match);
    if (c > this.commit) this.commit = c;
    if (c > this.commitDurable) this.commitDurable = c;
    accept(r.match);
  }

  private onInstallSnapshot(m: InstallSnapshot): void {
    if (this.role === 'leader') return;
    this.heardFromLeader(m.from);
    const reply = (bytesStored: number, done: boolean) =>
      this.send<InstallSnapshotReply>({
        type: 'raft_install_snapshot_reply', from: this.id, to: m.from, term: this.term, meta: m.meta, bytesStored, done,
      });
    if (m.meta.index <= this.holdsThrough()) {
      // Not newer than what we hold: nothing to install, but let the leader move on (our log
      // matches the leader's through our commit index, so through meta.index).
      reply(m.size, true);
      return;
    }
    // The chunk goes to the driver to store (its reply waits for snapshotStored), or is answered now.
    const held = this.receiver.offer(m, this.term);
    if (held !== null) reply(held, false);
  }

  /** Everything through this index is ours already: committed or in our snapshot. */
  private holdsThrough(): number {
    return Math.max(this.commit, this.snapshotMeta ? this.snapshotMeta.index : 0);
  }

  /** Figure 13 rules 6-8 on the log and the volatile state (not the state machine). */
  private installLocal(meta: SnapshotMeta): void {
    if (meta.index <= this.log.lastIndex && this.log.termAt(meta.index) === meta.term && meta.index >= this.log.offset) {
      this.log.compactTo(meta.index); // rule 6: keep the entries after it
    } else {
      this.log.reset(meta.index, meta.term); // rule 7
    }
    // The stored log is replaced by the snapshot: persist the kept suffix again.
    this.log.markUnstableFrom(meta.index + 1);
    if (meta.index > this.commit) this.commit = meta.index;
    if (this.commit > this.log.lastIndex) this.commit = this.log.lastIndex; // local restore that discarded the log
    if (this.commitDurable > this.commit) this.commitDurable = this.commit;
    this.snapshotMeta = { ...meta, config: [...meta.config] };
  }

  /**
   * Entries up to this index may be applied before this node's pending writes complete (at most
   * the commit index is, of course): those on its disk, and those durable on a majority.
   */
  private applicable(): number {
    return Math.max(this.stableIndex(), this.commitDurable);
  }

  // -------------------------------------------------------------------------------------------
  // Leader side of replication

  private maybeCommit(): boolean {
    if (this.role !== 'leader') return false;
    const matches: number[] = [];
    for (const p of this.peers) {
      // The leader itself: through the entries on its disk (it may send before writing them). A
      // single voter sends nothing: its entries are committed with the fsync that stores them, in
      // the same Ready, before anything is applied.
      if (p === this.id) matches.push(this.isSingleton() ? this.log.lastIndex : this.stableIndex());
      else matches.push(this.leading?.matchOf(p) ?? 0);
    }
    matches.sort((a, b) => b - a);
    const n = matches[this.quorum() - 1] ?? 0;
    // Figure 8: only entries of the current term are committed by counting replicas.
    if (n > this.commit && this.log.termAt(n) === this.term) {
      this.commit = n;
      if (!this.isSingleton()) this.commitDurable = n;
      this.reads.ownTermCommitted(n);
      return true;
    }
    return false;
  }

  /** Before a Ready: start a read round for the reads queued, then send the batched proposals. */
  private flush(): void {
    this.flushReads();
    this.flushProposals();
    if (this.readRoundStarted) {
      this.readRoundStarted = false;
      // Followers that got no append carrying the new round's number get a heartbeat with it.
      this.leading?.readHeartbeats(this.reads.seq);
    }
  }

  private flushReads(): void {
    if (this.role !== 'leader' || !this.reads.hasQueued) return;
    this.reads.startRound();
    this.readRoundStarted = true;
    this.collectReads(); // a single voter confirms at once
  }

  private collectReads(): void {
    for (const rs of this.reads.confirmed(this.others(), this.quorum())) this.readStates.push(rs);
  }

  /** The leadership ended (or a new one begins): reads not yet confirmed are lost. */
  private loseReads(): void {
    for (const c of this.reads.drop()) this.readsLost.push(c);
    this.readRoundStarted = false;
  }

  private flushProposals(): void {
    if (!this.proposalsPending) return;
    this.proposalsPending = false;
    if (this.role !== 'leader') return;
    this.leading?.broadcast();
  }

  // -------------------------------------------------------------------------------------------

  private hardState(): HardState {
    return { term: this.term, votedFor: this.votedFor, commit: this.commit };
  }

  private hardStateChanged(): boolean {
    const h = this.lastHardState;
    return h.term !== this.term || h.votedFor !== this.votedFor || h.commit !== this.commit;
  }

  private send<M extends RaftMessage>(m: M): void {
    this.msgs.push(m);
  }
}
