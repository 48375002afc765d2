/**
 * Safety invariants, checked incrementally as the simulation runs (cheap enough for every step):
 *
 *  - election safety: at most one leader per term, over the whole run (crashes included);
 *  - log matching: an (index, term) pair names one entry cluster-wide, with one predecessor term:
 *    checked on every entry a node persists, which by induction gives "same index and term =>
 *    same entries before it" among retained entries (and a full pairwise check at the end);
 *  - leader completeness: a leader's log holds every entry committed in an earlier term (checked
 *    when it becomes leader, and for leaders in office whenever an older-term entry commits). The
 *    term an entry was committed in, not the entry's own term, is what counts: a stale leader of
 *    term 2 need not hold an entry of term 1 that the leader of term 3 committed. The simulator
 *    does not see that term, so it uses the term of the node that first reported the commit, an
 *    upper bound (usually the committing leader itself, through its persisted commit index);
 *  - state machine safety: no two nodes apply different commands at one index, and snapshots at
 *    one index hold the same state;
 *  - durability: a node restarting after a crash still holds every committed entry it had
 *    persisted (a sync returned) and its last persisted term and vote, and its durable snapshot
 *    never moves backwards; snapshot indexes never regress within a process either;
 *  - fail-stop: once a node's storage failed, it sends nothing but answers with error 11 or 13.
 * A violated invariant throws InvariantViolation, which the simulator turns into a failure report.
 */
import { canonicalJson } from '../kv/keys.js';
import type { RecoveredState } from '../node/store.js';
import type { Entry, HardState, Json, NodeId, RaftStatus, SnapshotMeta } from '../raft/types.js';
import type { NodeObserver, SimNode } from './node.js';

export class InvariantViolation extends Error {
  constructor(
    readonly invariant: string,
    message: string,
  ) {
    super(`${invariant}: ${message}`);
  }
}

function entryKey(e: Entry): string {
  return JSON.stringify(e.data);
}

function stateDigest(pairs: Iterable<readonly [Json, Json]>): string {
  const items: string[] = [];
  for (const [k, v] of pairs) items.push(canonicalJson(k) + '=' + canonicalJson(v));
  items.sort();
  return items.join(';');
}

export class Invariants implements NodeObserver {
  /** term -> leader */
  readonly leaders = new Map<number, NodeId>();
  /** "index:term" -> { data, prevTerm } */
  private readonly entries = new Map<string, { data: string; prevTerm: number | undefined }>();
  /**
   * index -> committed { term, data, by }: `by` is the current term of the node that first
   * reported the commit, at least the term the entry was committed in (see the file comment).
   */
  readonly committed = new Map<number, { term: number; data: string; by: number }>();
  maxCommitted = 0;
  /** index -> data of the applied entry (state machine safety) */
  private readonly appliedAt = new Map<number, string>();
  /** snapshot index -> state digest */
  private readonly snapshotState = new Map<number, string>();
  private readonly snapIndex = new Map<NodeId, number>();
  private readonly diskSnapIndex = new Map<NodeId, number>();
  private readonly leaderOf = new Map<NodeId, number>();
  /** Checks done, for the report. */
  checks = 0;

  constructor(private readonly nodes: () => readonly SimNode[]) {}

  private fail(invariant: string, message: string): never {
    throw new InvariantViolation(invariant, message);
  }

  // -------------------------------------------------------------------------------------------
  // Hooks from the nodes

  /**
   * The node recovered `rec` from its disk. Held against what it had made durable before it went
   * down (`node.acked`, its newest stored snapshot, the core's compaction point): every committed
   * entry it had persisted above the recovered snapshot, its term and its vote must be back, and
   * no snapshot older than one it had made durable.
   */
  onRecovered(node: SimNode, rec: RecoveredState): void {
    const recSnap = rec.snapshot ? rec.snapshot.meta.index : 0;
    const durable = this.diskSnapIndex.get(node.id) ?? 0;
    if (recSnap < durable) {
      this.fail('snapshot-regressed', `${node.id} restarted from snapshot ${recSnap}, but snapshot ${durable} was durable before`);
    }
    const compacted = this.snapIndex.get(node.id) ?? 0;
    if (recSnap < compacted) {
      this.fail('snapshot-regressed', `${node.id} restarted from snapshot ${recSnap}, but its log was compacted through snapshot ${compacted} before`);
    }
    const a = node.acked;
    const hs = rec.hardState;
    if (hs.term < a.term || (hs.term === a.term && a.votedFor !== null && hs.votedFor !== a.votedFor)) {
      this.fail(
        'hard-state-lost',
        `${node.id} had persisted term ${a.term} (vote ${a.votedFor ?? 'none'}), but recovered term ${hs.term} (vote ${hs.votedFor ?? 'none'})`,
      );
    }
    const recTerm = new Map<number, number>();
    for (const e of rec.entries) recTerm.set(e.index, e.term);
    for (let i = 0; i < a.terms.length; i++) {
      const idx = a.offset + 1 + i;
      if (idx <= recSnap) continue;
      const c = this.committed.get(idx);
      if (!c || c.term !== a.terms[i]) continue;
      if (recTerm.get(idx) !== c.term) {
        this.fail(
          'committed-entry-lost',
          `${node.id} persisted committed entry ${idx} (term ${c.term}) before it went down, but recovered ${recTerm.has(idx) ? `term ${recTerm.get(idx)}` : 'nothing'} at that index (snapshot ${recSnap}, log ${rec.entries.length > 0 ? `${rec.entries[0]!.index}..${rec.entries[rec.entries.length - 1]!.index}` : 'empty'})`,
        );
      }
    }
    this.snapIndex.set(node.id, recSnap);
    this.diskSnapIndex.set(node.id, Math.max(durable, recSnap));
    this.leaderOf.delete(node.id);
    // What the node restarts with must agree with what the cluster committed.
    for (const e of rec.entries) this.checkEntry(node, e, undefined);
    if (rec.snapshot) this.checkSnapshotMeta(node, rec.snapshot.meta);
  }

  /** Called by the simulator right before a node's process dies: note how far it had compacted. */
  beforeCrash(node: SimNode): void {
    if (node.core) this.noteSnapshot(node);
    this.leaderOf.delete(node.id);
  }

  /**
   * A line a node wrote after its storage failed. It must stop (fail-stop): no Raft message, no
   * forward, no answer but the errors 11 (nothing entered a log) and 13 (it may have), to a client
   * or in a reply to a forward or a read index request.
   */
  onOutputAfterFailure(node: SimNode, line: string, failure: Error): void {
    let m: { dest?: string; body?: { type?: string; code?: number; outcome?: { kind?: string; code?: number } } };
    try {
      m = JSON.parse(line) as typeof m;
    } catch {
      m = {};
    }
    const b = m.body ?? {};
    const code = b.type === 'error' ? b.code : (b.type === 'raft_forward_reply' || b.type === 'raft_read_index_reply') && b.outcome?.kind === 'error' ? b.outcome.code : undefined;
    if (code === 11 || code === 13) return;
    this.fail('fail-stop', `${node.id} sent ${b.type ?? '?'} to ${m.dest ?? '?'} after its storage failed (${failure.message}): ${line.length > 160 ? line.slice(0, 160) + '...' : line}`);
  }

  /** Entries and hard state of a Ready were synced (the core still holds them). */
  onPersisted(node: SimNode, rd: { entries: Entry[]; hardState: HardState | null; prevTerm?: number | undefined }): void {
    const core = node.core!;
    // The term before the first entry as of the sync call (inputs stepped while the fsync ran may
    // have changed the core's log since).
    let prevTerm: number | undefined = rd.entries.length > 0 ? ('prevTerm' in rd ? rd.prevTerm : core.termAt(rd.entries[0]!.index - 1)) : undefined;
    for (const e of rd.entries) {
      this.checkEntry(node, e, prevTerm);
      prevTerm = e.term;
    }
    if (rd.hardState) {
      const c = rd.hardState.commit;
      if (c > this.maxCommitted || c > 0) this.recordCommitted(node, c);
    }
    this.noteSnapshot(node);
  }

  /** A snapshot transfer finished and the file is durable. */
  onSnapshotReceived(node: SimNode, meta: SnapshotMeta): void {
    this.checkSnapshotMeta(node, meta);
  }

  onApplied(node: SimNode, e: Entry): void {
    const k = e.term + ':' + entryKey(e);
    const prev = this.appliedAt.get(e.index);
    if (prev === undefined) this.appliedAt.set(e.index, k);
    else if (prev !== k) this.fail('state-machine-safety', `${node.id} applied ${k} at index ${e.index}, another node applied ${prev}`);
    this.commit(node, e.index, e.term, entryKey(e));
  }

  /** The driver loads a snapshot into its state machine (these pairs). */
  onSnapshotRestored(node: SimNode, meta: SnapshotMeta, pairs: Iterable<readonly [Json, Json]>): void {
    this.checkSnapshotMeta(node, meta);
    this.checkSnapshotState(node, meta.index, stateDigest(pairs));
    this.noteSnapshot(node);
  }

  onSnapshotTaken(node: SimNode, meta: SnapshotMeta, pairs: Array<[Json, Json]>): void {
    this.checkSnapshotMeta(node, meta);
    this.checkSnapshotState(node, meta.index, stateDigest(pairs));
    const d = this.diskSnapIndex.get(node.id) ?? 0;
    const now = node.storedSnapshotIndex;
    if (now < d) this.fail('snapshot-regressed', `${node.id}: newest durable snapshot went from ${d} to ${now}`);
    this.diskSnapIndex.set(node.id, now);
  }

  // -------------------------------------------------------------------------------------------
  // Per-step checks

  /** After every simulation step. */
  afterStep(): void {
    this.checks++;
    for (const n of this.nodes()) {
      if (!n.up || !n.core) continue;
      const st = n.core.status();
      n.noteLogLength(st.lastIndex - st.firstIndex + 1);
      this.noteSnapshot(n, st);
      if (st.role === 'leader') {
        const other = this.leaders.get(st.term);
        if (other === undefined) {
          this.leaders.set(st.term, n.id);
        } else if (other !== n.id) {
          this.fail('election-safety', `two leaders in term ${st.term}: ${other} and ${n.id}`);
        }
        if (this.leaderOf.get(n.id) !== st.term) {
          this.leaderOf.set(n.id, st.term);
          this.checkLeaderComplete(n, st.term, 1);
        }
      } else {
        this.leaderOf.delete(n.id);
      }
    }
  }

  /** Full checks for the end of a run (pairwise log matching, committed entries on a majority). */
  finalCheck(): void {
    const ns = this.nodes().filter((n) => n.up && n.core);
    for (let a = 0; a < ns.length; a++) {
      for (let b = a + 1; b < ns.length; b++) this.checkLogMatching(ns[a]!, ns[b]!);
    }
    const all = this.nodes();
    const majority = Math.floor(all.length / 2) + 1;
    for (const [idx, c] of this.committed) {
      let have = 0;
      for (const n of all) {
        if (!n.core) continue;
        const st = n.core.status();
        if ((st.snapshot && st.snapshot.index >= idx) || n.core.termAt(idx) === c.term || idx < st.firstIndex) have++;
      }
      if (have < majority) this.fail('committed-entry-lost', `committed entry ${idx} (term ${c.term}) is held by only ${have} of ${all.length} nodes`);
    }
  }

  checkLogMatching(a: SimNode, b: SimNode): void {
    const ca = a.core!;
    const cb = b.core!;
    const sa = ca.status();
    const sb = cb.status();
    const lo = Math.max(sa.firstIndex, sb.firstIndex);
    const hi = Math.min(sa.lastIndex, sb.lastIndex);
    const ea = ca.entries(lo, hi);
    const eb = cb.entries(lo, hi);
    let match = -1;
    for (let i = ea.length - 1; i >= 0; i--) {
      if (ea[i]!.term === eb[i]!.term) {
        match = i;
        break;
      }
    }
    for (let i = 0; i <= match; i++) {
      if (ea[i]!.term !== eb[i]!.term || entryKey(ea[i]!) !== entryKey(eb[i]!)) {
        this.fail('log-matching', `${a.id} and ${b.id} agree on entry ${lo + match} (term ${ea[match]!.term}) but differ at ${lo + i}`);
      }
    }
  }

  // -------------------------------------------------------------------------------------------

  private checkEntry(node: SimNode, e: Entry, prevTerm: number | undefined): void {
    const key = e.index + ':' + e.term;
    const data = entryKey(e);
    const seen = this.entries.get(key);
    if (!seen) {
      this.entries.set(key, { data, prevTerm });
    } else {
      if (seen.data !== data) this.fail('log-matching', `${node.id} holds entry ${key} = ${data}, another node holds ${seen.data}`);
      if (prevTerm !== undefined) {
        if (seen.prevTerm === undefined) seen.prevTerm = prevTerm;
        else if (seen.prevTerm !== prevTerm) {
          this.fail('log-matching', `${node.id} holds entry ${key} after an entry of term ${prevTerm}, another node after term ${seen.prevTerm}`);
        }
      }
    }
  }

  private recordCommitted(node: SimNode, commit: number): void {
    const core = node.core!;
    const st = core.status();
    const from = Math.max(st.firstIndex, this.lowWater(node));
    if (commit < from) return;
    for (const e of core.entries(from, commit)) this.commit(node, e.index, e.term, entryKey(e));
    this.commitWater.set(node.id, commit);
  }

  private readonly commitWater = new Map<NodeId, number>();
  private lowWater(node: SimNode): number {
    return (this.commitWater.get(node.id) ?? 0) + 1;
  }

  private commit(node: SimNode, index: number, term: number, data: string): void {
    const c = this.committed.get(index);
    if (c) {
      if (c.term !== term || c.data !== data) {
        this.fail('state-machine-safety', `${node.id} committed ${term}:${data} at index ${index}, but ${c.term}:${c.data} was committed there`);
      }
      return;
    }
    const by = Math.max(term, node.core?.status().term ?? 0);
    this.committed.set(index, { term, data, by });
    if (index > this.maxCommitted) this.maxCommitted = index;
    // Leaders already in office of terms after the one it was committed in must hold it.
    for (const n of this.nodes()) {
      if (!n.up || !n.core) continue;
      const st = n.core.status();
      if (st.role !== 'leader' || st.term <= by) continue;
      if (index < st.firstIndex) continue;
      const t = n.core.termAt(index);
      if (t !== term) {
        this.fail('leader-completeness', `entry ${index} (term ${term}) committed by term ${by} at the latest, but ${n.id}, leader of term ${st.term}, holds ${t === undefined ? 'nothing' : `term ${t}`} there`);
      }
    }
  }

  private checkLeaderComplete(n: SimNode, term: number, _from: number): void {
    const core = n.core!;
    const st = core.status();
    const snap = st.snapshot ? st.snapshot.index : 0;
    for (let i = Math.max(st.firstIndex, snap + 1); i <= this.maxCommitted; i++) {
      const c = this.committed.get(i);
      if (!c || c.by >= term) continue;
      const t = core.termAt(i);
      if (t !== c.term) {
        this.fail('leader-completeness', `${n.id} became leader of term ${term} without committed entry ${i} (term ${c.term}); it holds ${t === undefined ? 'nothing' : `term ${t}`} there`);
      }
    }
    if (snap < this.maxCommitted && st.lastIndex < this.maxCommitted) {
      const c = this.committed.get(this.maxCommitted)!;
      if (c.by < term) {
        this.fail('leader-completeness', `${n.id} became leader of term ${term} with last index ${st.lastIndex} < committed index ${this.maxCommitted}`);
      }
    }
  }

  private checkSnapshotMeta(node: SimNode, meta: SnapshotMeta): void {
    const c = this.committed.get(meta.index);
    if (c && c.term !== meta.term) {
      this.fail('state-machine-safety', `${node.id} has a snapshot at ${meta.index} of term ${meta.term}, but the committed entry there has term ${c.term}`);
    }
  }

  private checkSnapshotState(node: SimNode, index: number, digest: string): void {
    const d = this.snapshotState.get(index);
    if (d === undefined) this.snapshotState.set(index, digest);
    else if (d !== digest) this.fail('state-machine-safety', `${node.id}'s state at index ${index} differs from another node's state at that index`);
  }

  private noteSnapshot(node: SimNode, status?: RaftStatus): void {
    const st = status ?? node.core?.status();
    if (!st) return;
    const now = st.snapshot ? st.snapshot.index : 0;
    const before = this.snapIndex.get(node.id) ?? 0;
    if (now < before) this.fail('snapshot-regressed', `${node.id}: snapshot index went from ${before} to ${now}`);
    this.snapIndex.set(node.id, now);
    const d = node.storedSnapshotIndex;
    const dBefore = this.diskSnapIndex.get(node.id) ?? 0;
    if (d < dBefore) this.fail('snapshot-regressed', `${node.id}: newest durable snapshot went from ${dBefore} to ${d}`);
    this.diskSnapIndex.set(node.id, d);
  }
}
