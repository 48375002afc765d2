import { describe, expect, it } from 'vitest';
import { RaftCore } from '../../src/raft/core.js';
import type { AppendEntries, AppendEntriesReply, RaftMessage } from '../../src/raft/types.js';
import { Cluster, MemSnapshots, cfg, drain, ents } from './harness.js';

const ids3 = ['n1', 'n2', 'n3'];
const ids5 = ['n1', 'n2', 'n3', 'n4', 'n5'];

describe('log matching (Raft paper Figure 7)', () => {
  const leaderTerms = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  const cases: Record<string, number[]> = {
    a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
    b: [1, 1, 1, 4],
    c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    e: [1, 1, 1, 4, 4, 4, 4],
    f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
  };
  for (const [name, terms] of Object.entries(cases)) {
    it(`follower (${name}) converges to the term-8 leader's log`, () => {
      // n1 = leader-to-be, n2 = a follower with the leader's log (gives the vote), n3 = case (name).
      const c = new Cluster(ids3, {}, 3, (id) => ({
        hs: { term: 7, votedFor: null, commit: 0 },
        entries: id === 'n3' ? ents(terms) : ents(leaderTerms),
      }));
      c.core('n1').campaign();
      c.process('n1');
      c.deliverAll();
      expect(c.core('n1').status()).toMatchObject({ role: 'leader', term: 8 });
      for (let i = 0; i < 6; i++) {
        c.tick(['n1']);
        c.deliverAll();
      }
      const want = c.core('n1').entries(1, 100);
      expect(want.length).toBe(11);
      expect(want[10]).toEqual({ index: 11, term: 8, data: null });
      expect(c.core('n3').entries(1, 100)).toEqual(want);
      expect(c.node('n3').stored.entries).toEqual(want); // storage got the replaced suffix right
      expect(c.core('n3').status().commit).toBe(11);
      // Backtracking needed only a few round trips (conflict hints skip whole terms).
      const rejects = c.trace.filter((m) => m.type === 'raft_append_entries_reply' && m.from === 'n3' && !m.success);
      expect(rejects.length).toBeLessThanOrEqual(3);
    });
  }

  it('the conflict hint skips the follower\'s whole run of the conflicting term, or points past its log', () => {
    const f = new RaftCore(cfg('n2', ids3, new MemSnapshots()), {
      hardState: { term: 3, votedFor: null, commit: 1 }, snapshot: null, entries: ents([1, 1, 2, 2, 2, 2, 2]), applied: 0,
    });
    const ae = (prev: number, prevTerm: number): AppendEntries => ({
      type: 'raft_append_entries', from: 'n1', to: 'n2', term: 3, prevLogIndex: prev, prevLogTerm: prevTerm, entries: [], leaderCommit: 1,
    });
    f.step(ae(7, 3));
    expect(drain(f).msgs).toMatchObject([{ success: false, rejectHint: 3, rejectedIndex: 7 }]);
    f.step(ae(9, 3));
    expect(drain(f).msgs).toMatchObject([{ success: false, rejectHint: 8, rejectedIndex: 9 }]);
    f.step(ae(2, 1));
    expect(drain(f).msgs).toMatchObject([{ success: true, matchIndex: 2 }]);
    // A matching append with nothing new never truncates.
    expect(f.status().lastIndex).toBe(7);
  });

  it('entries already present are not truncated by a shorter (reordered) append', () => {
    const f = new RaftCore(cfg('n2', ids3, new MemSnapshots()), {
      hardState: { term: 2, votedFor: null, commit: 0 }, snapshot: null, entries: ents([1, 2, 2, 2]), applied: 0,
    });
    f.step({ type: 'raft_append_entries', from: 'n1', to: 'n2', term: 2, prevLogIndex: 1, prevLogTerm: 1, entries: ents([2], 2), leaderCommit: 0 });
    const out = drain(f);
    expect(out.msgs).toMatchObject([{ success: true, matchIndex: 2 }]);
    expect(f.status().lastIndex).toBe(4);
    expect(out.readies.flatMap((r) => r.entries)).toEqual([]);
  });
});

describe('commitment (Raft paper Figure 8)', () => {
  it('counts replicas only for entries of the current term', () => {
    const l = new RaftCore(cfg('n1', ids5, new MemSnapshots()), {
      hardState: { term: 3, votedFor: null, commit: 1 }, snapshot: null, entries: ents([1, 2]), applied: 0,
    });
    l.campaign();
    for (const p of ['n2', 'n3']) l.step({ type: 'raft_request_vote_reply', from: p, to: 'n1', term: 4, granted: true, preVote: true });
    expect(l.status().role).toBe('candidate');
    for (const p of ['n2', 'n3']) l.step({ type: 'raft_request_vote_reply', from: p, to: 'n1', term: 4, granted: true, preVote: false });
    expect(l.status()).toMatchObject({ role: 'leader', term: 4, lastIndex: 3 });
    expect(l.entries(3, 3)).toEqual([{ index: 3, term: 4, data: null }]);
    drain(l);
    const ok = (from: string, matchIndex: number): AppendEntriesReply => ({
      type: 'raft_append_entries_reply', from, to: 'n1', term: 4, success: true, matchIndex, rejectHint: 0, rejectedIndex: 0,
    });
    // The term-2 entry at index 2 is on a majority (n1, n2, n3) but must not be committed by counting.
    l.step(ok('n2', 2));
    l.step(ok('n3', 2));
    expect(l.status().commit).toBe(1);
    l.step(ok('n2', 3));
    expect(l.status().commit).toBe(1); // index 3 only on n1, n2
    l.step(ok('n3', 3));
    expect(l.status().commit).toBe(3); // the term-4 entry commits, and index 2 with it
    const committed = drain(l).readies.flatMap((r) => r.committed);
    expect(committed.map((e) => e.index)).toEqual([2, 3]);
  });

  it('a follower never commits beyond what the append showed to match', () => {
    const f = new RaftCore(cfg('n2', ids3, new MemSnapshots()), {
      hardState: { term: 2, votedFor: null, commit: 0 }, snapshot: null, entries: ents([1, 1, 1, 1]), applied: 0,
    });
    // Heartbeat anchored at index 1 with leaderCommit 10: entries 2..4 might not be the leader's.
    f.step({ type: 'raft_append_entries', from: 'n1', to: 'n2', term: 2, prevLogIndex: 1, prevLogTerm: 1, entries: [], leaderCommit: 10 });
    drain(f);
    expect(f.status().commit).toBe(1);
  });
});

describe('flow control', () => {
  it('respects maxInflight and maxEntriesPerAppend, pipelines in replicate state, and catches up after loss', () => {
    const c = new Cluster(ids3, { maxInflight: 2, maxEntriesPerAppend: 3 });
    const l = c.elect();
    c.run(4);
    const f = ids3.find((x) => x !== l)!;
    let blockReplies = true;
    c.filter = (m) => !(blockReplies && m.from === f && m.type === 'raft_append_entries_reply');
    const before = c.trace.length;
    for (let i = 0; i < 20; i++) c.propose(l, i);
    c.deliverAll();
    const sent = c.trace.slice(before).filter((m): m is AppendEntries => m.type === 'raft_append_entries' && m.to === f && m.entries.length > 0);
    expect(sent.length).toBe(2); // the pipeline is full, nothing more until acknowledgements come back
    for (const m of sent) expect(m.entries.length).toBeLessThanOrEqual(3);
    blockReplies = false;
    c.run(20); // the lost acknowledgements are detected by the stalled-heartbeat rule
    const last = c.core(l).status().lastIndex;
    expect(c.core(f).status().lastIndex).toBe(last);
    expect(c.core(f).status().commit).toBe(last);
    for (const m of c.trace.filter((m): m is AppendEntries => m.type === 'raft_append_entries')) expect(m.entries.length).toBeLessThanOrEqual(3);
  });

  it('batches proposals made between two Readys into one append', () => {
    const c = new Cluster(ids3, { maxEntriesPerAppend: 64 });
    const l = c.elect();
    c.run(4);
    const before = c.trace.length;
    for (let i = 0; i < 10; i++) c.core(l).propose(i);
    c.process(l);
    const aes = c.trace.slice(before).filter((m): m is AppendEntries => m.type === 'raft_append_entries' && m.entries.length > 0);
    expect(aes.length).toBe(2); // one per follower
    expect(aes[0]!.entries.length).toBe(10);
  });
});

describe('safety under a lossy network with partitions, compaction and restarts', () => {
  for (let seed = 1; seed <= 12; seed++) {
    it(`seed ${seed}`, () => {
      const c = new Cluster(ids5, { maxEntriesPerAppend: 3, maxInflight: 2, snapshotChunkSize: 24 }, seed);
      const r = c.random;
      let drop = 0.1;
      c.filter = () => r() >= drop;
      let n = 0;
      for (let round = 0; round < 40; round++) {
        const ev = r();
        if (ev < 0.15) {
          const shuffled = ids5.slice().sort(() => r() - 0.5);
          const k = 1 + Math.floor(r() * 4);
          c.partition(shuffled.slice(0, k), shuffled.slice(k));
        } else if (ev < 0.3) {
          c.heal();
        } else if (ev < 0.4) {
          c.restart(ids5[Math.floor(r() * 5)]!);
        } else if (ev < 0.5) {
          drop = r() * 0.3;
        }
        for (let t = 0; t < 5; t++) {
          c.tick();
          // deliver in random-sized bursts so that messages interleave with ticks
          const k = Math.floor(r() * 40);
          for (let i = 0; i < k && c.deliverOne(); i++);
          for (const id of c.leaders()) if (r() < 0.7) c.propose(id, `v${n++}`);
        }
        for (const id of ids5) {
          if (r() < 0.15 && c.node(id).sm.index > 0) c.snapshot(id, Math.floor(r() * 3));
        }
      }
      // Heal and settle: everybody converges to the same applied state.
      c.heal();
      drop = 0;
      c.run(60);
      const l = c.leaders();
      expect(l.length).toBe(1);
      c.propose(l[0]!, 'final');
      c.run(10);
      const ref = c.node(l[0]!).sm;
      for (const id of ids5) {
        expect(c.node(id).sm.index, id).toBe(ref.index);
        expect(c.node(id).sm.values, id).toEqual(ref.values);
      }
      for (const [term, ls] of c.leadersByTerm) expect(ls.size, `term ${term}`).toBe(1);
    });
  }
});

/** Messages of one type. */
export function ofType<T extends RaftMessage['type']>(ms: RaftMessage[], t: T): Extract<RaftMessage, { type: T }>[] {
  return ms.filter((m) => m.type === t) as Extract<RaftMessage, { type: T }>[];
}

describe('persistence before counting (Raft thesis 10.2.1)', () => {
  it('a leader sends its appends before writing them, and counts itself only once advance() says they are on disk', () => {
    const c = new Cluster(ids3);
    const l = c.elect();
    c.run(4);
    const core = c.core(l);
    const commit = core.status().commit;
    const r = core.propose('w')!;
    const rd = core.ready();
    expect(rd.sendFirst).toBe(true);
    expect(rd.mustSync).toBe(true);
    const f = ids3.find((x) => x !== l)!;
    // A follower's acknowledgement arrives before the leader's own write finished: one copy on disk
    // is not a majority of three.
    core.step({ type: 'raft_append_entries_reply', from: f, to: l, term: r.term, success: true, matchIndex: r.index, rejectHint: 0, rejectedIndex: 0 });
    expect(core.status().commit).toBe(commit);
    core.advance();
    expect(core.status().commit).toBe(r.index);
  });

  it('takeLeaderMessages: while a sendFirst Ready is written, a leader sends the appends of new proposals at once; not after a Ready with a new vote, not once deposed', () => {
    const c = new Cluster(ids3);
    const l = c.elect();
    c.run(4);
    const core = c.core(l);
    const commit = core.status().commit;
    const r1 = core.propose('w1')!;
    const rd = core.ready();
    expect(rd.sendFirst).toBe(true);
    // The Ready's write runs; a second proposal arrives meanwhile.
    const r2 = core.propose('w2')!;
    const early = core.takeLeaderMessages();
    const appends = ofType(early, 'raft_append_entries');
    expect(appends.length).toBe(2);
    for (const a of appends) expect(a.entries.map((e) => e.index)).toContain(r2.index);
    // Nothing is counted for the leader's own unwritten entries: both followers' acks commit.
    const [f1, f2] = ids3.filter((x) => x !== l);
    core.step({ type: 'raft_append_entries_reply', from: f1!, to: l, term: r1.term, success: true, matchIndex: r2.index, rejectHint: 0, rejectedIndex: 0 });
    expect(core.status().commit).toBe(commit);
    core.step({ type: 'raft_append_entries_reply', from: f2!, to: l, term: r1.term, success: true, matchIndex: r2.index, rejectHint: 0, rejectedIndex: 0 });
    expect(core.status().commit).toBe(r2.index);
    core.advance();
    // Deposed while a Ready is written (a higher term): nothing is taken early.
    core.propose('w3');
    core.ready();
    core.step({ type: 'raft_append_entries', from: f1!, to: l, term: r1.term + 5, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0 });
    expect(core.status().role).toBe('follower');
    expect(core.takeLeaderMessages()).toEqual([]);
  });

  it('takeDuringWrite: a follower acknowledges a read round at once while its write runs; the leader gets the read confirmed and the stable committed entries', () => {
    const c = new Cluster(ids3);
    const l = c.elect();
    c.run(4);
    const [f1, f2] = ids3.filter((x) => x !== l) as [string, string];
    const leader = c.core(l);
    const follower = c.core(f1);
    // The follower writes a Ready with new entries (an append from the leader)...
    const r1 = leader.propose('w1')!;
    const appends = ofType(drain(leader).msgs, 'raft_append_entries').filter((m) => m.to === f1);
    follower.step(appends[0]!);
    const frd = follower.ready();
    expect(frd.entries.map((e) => e.index)).toContain(r1.index);
    // ... and meanwhile a read round's heartbeat arrives: the acknowledgement is taken at once.
    expect(leader.readIndex(7)).toBe(true);
    const round = ofType(drain(leader).msgs, 'raft_append_entries').find((m) => m.to === f1 && (m.readSeq ?? 0) > 0)!;
    follower.step(round);
    const during = follower.takeDuringWrite(false);
    const acks = during.messages.filter((m) => m.type === 'raft_read_ack');
    expect(acks).toHaveLength(1);
    expect(during.committed).toEqual([]); // nothing it holds on disk is committed beyond what it applied
    // The replies that echo the entries wait for the write (the next Ready).
    expect(during.messages.some((m) => m.type === 'raft_append_entries_reply')).toBe(false);
    follower.advance();
    // The leader, writing a Ready of its own, is confirmed by the ack and hands the read out at once.
    leader.propose('w2');
    const lrd = leader.ready();
    expect(lrd.sendFirst).toBe(true);
    leader.step(acks[0]!);
    const confirmed = leader.takeDuringWrite(true);
    expect(confirmed.readStates.map((r) => r.ctx)).toEqual([7]);
    // w1 is committed by a follower's ack (the leader's own copy of w1 is on its disk: it was in an
    // earlier Ready) and is handed out to apply while the leader still writes w2; w2 is not (unstable).
    leader.step({ type: 'raft_append_entries_reply', from: f2, to: l, term: r1.term, success: true, matchIndex: r1.index, rejectHint: 0, rejectedIndex: 0 });
    expect(leader.takeDuringWrite(false).committed).toEqual([]); // not while the driver has not applied what the Ready hands out
    const applied = leader.takeDuringWrite(true).committed.map((e) => e.index);
    expect(applied).toEqual([r1.index]);
    leader.advance();
    expect(leader.ready().committed.map((e) => e.index)).not.toContain(r1.index); // handed out once
  });

  it('takeLeaderMessages: nothing early while the Ready that records a new term and vote is written (the node won meanwhile)', () => {
    const core = new RaftCore(cfg('n1', ids3, new MemSnapshots(), { preVote: false }), {
      hardState: { term: 1, votedFor: null, commit: 0 }, snapshot: null, entries: [], applied: 0,
    });
    core.campaign();
    const rd = core.ready(); // term 2, vote for itself: must be durable before anything is sent
    expect(rd.sendFirst).toBe(false);
    expect(rd.hardState).toMatchObject({ term: 2, votedFor: 'n1' });
    // While it is written, the votes arrive (stepped during the write) and the node leads.
    core.step({ type: 'raft_request_vote_reply', from: 'n2', to: 'n1', term: 2, granted: true, preVote: false });
    core.step({ type: 'raft_request_vote_reply', from: 'n3', to: 'n1', term: 2, granted: true, preVote: false });
    expect(core.status().role).toBe('leader');
    core.propose('x');
    expect(core.takeLeaderMessages()).toEqual([]);
    core.advance();
    // Once written, the leader's next Ready (its no-op and the proposal) is sendFirst again.
    expect(core.ready().sendFirst).toBe(true);
  });

  it('a follower whose commit index alone changed need not fsync (mustSync false); entries or a vote must', () => {
    const f = new RaftCore(cfg('n2', ids3, new MemSnapshots()), {
      hardState: { term: 2, votedFor: null, commit: 0 }, snapshot: null, entries: ents([1, 2]), applied: 0,
    });
    f.step({ type: 'raft_append_entries', from: 'n1', to: 'n2', term: 2, prevLogIndex: 2, prevLogTerm: 2, entries: [], leaderCommit: 2 });
    const rd = f.ready();
    expect(rd).toMatchObject({ hardState: { commit: 2 }, entries: [], mustSync: false, sendFirst: false });
    f.advance();
    f.step({ type: 'raft_append_entries', from: 'n1', to: 'n2', term: 2, prevLogIndex: 2, prevLogTerm: 2, entries: ents([2], 3), leaderCommit: 2 });
    expect(f.ready().mustSync).toBe(true);
    f.advance();
    // A vote (a node that has heard from no leader, so no stickiness).
    const v = new RaftCore(cfg('n2', ids3, new MemSnapshots()), { hardState: { term: 2, votedFor: null, commit: 0 }, snapshot: null, entries: [], applied: 0 });
    v.step({ type: 'raft_request_vote', from: 'n3', to: 'n2', term: 3, lastLogIndex: 9, lastLogTerm: 3, preVote: false });
    expect(v.ready()).toMatchObject({ mustSync: true, hardState: { term: 3, votedFor: 'n3' } });
  });
});

describe('applying before this node\'s own write completes (applyFirst, takeDuringWrite)', () => {
  it('a follower applies what the leader says is committed (on a majority of disks), while its own write of it may still run', () => {
    const f = new RaftCore(cfg('n2', ids3, new MemSnapshots()), { hardState: { term: 2, votedFor: null, commit: 0 }, snapshot: null, entries: [], applied: 0 });
    // Entries and the commit that covers entry 1 in one append: entry 1 is written in this very
    // Ready, but the leader counted it committed on a majority of disks without this node.
    f.step({ type: 'raft_append_entries', from: 'n1', to: 'n2', term: 2, prevLogIndex: 0, prevLogTerm: 0, entries: ents([2, 2]), leaderCommit: 1 });
    const rd = f.ready();
    expect(rd.entries.map((e) => e.index)).toEqual([1, 2]);
    expect(rd.committed.map((e) => e.index)).toEqual([1]);
    expect(rd.applyFirst).toBe(true);
    // Its acknowledgement still waits for the write (it is an ordinary message, sent after it).
    expect(rd.messages).toMatchObject([{ type: 'raft_append_entries_reply', success: true, matchIndex: 2 }]);
    expect(rd.early).toEqual([]);
    expect(f.stableIndex()).toBe(0);
    // While that write runs, a heartbeat commits entry 2 (still being written): applied at once.
    f.step({ type: 'raft_append_entries', from: 'n1', to: 'n2', term: 2, prevLogIndex: 2, prevLogTerm: 2, entries: [], leaderCommit: 2 });
    expect(f.takeDuringWrite(true).committed.map((e) => e.index)).toEqual([2]);
    f.advance();
    expect(f.stableIndex()).toBe(2);
    expect(f.status().applied).toBe(2);
  });

  it('a leader of three applies an entry both followers acknowledged before its own write of it completes', () => {
    const l = new RaftCore(cfg('n1', ids3, new MemSnapshots(), { preVote: false }), { hardState: { term: 1, votedFor: null, commit: 0 }, snapshot: null, entries: [], applied: 0 });
    l.campaign();
    drain(l);
    l.step({ type: 'raft_request_vote_reply', from: 'n2', to: 'n1', term: 2, granted: true, preVote: false });
    drain(l);
    expect(l.status().role).toBe('leader');
    const ack = (from: string, matchIndex: number): AppendEntriesReply => ({
      type: 'raft_append_entries_reply', from, to: 'n1', term: 2, success: true, matchIndex, rejectHint: 0, rejectedIndex: 0, readSeq: 0,
    });
    l.step(ack('n2', 1));
    drain(l);
    l.propose('x');
    const rd = l.ready(); // the leader's write of entry 2 starts
    expect(rd.entries.map((e) => e.data)).toEqual(['x']);
    expect(rd.committed).toEqual([]);
    // One follower's acknowledgement is not a majority without the leader's own (unfinished) write.
    l.step(ack('n2', 2));
    expect(l.status().commit).toBe(1);
    expect(l.takeDuringWrite(true).committed).toEqual([]);
    // Both followers hold it on disk: committed on a majority, applied while the leader still writes.
    l.step(ack('n3', 2));
    expect(l.status().commit).toBe(2);
    expect(l.stableIndex()).toBe(1);
    expect(l.takeDuringWrite(true).committed.map((e) => e.data)).toEqual(['x']);
    l.advance();
    expect(l.status().applied).toBe(2);
  });

  it('a single voter never applies an entry before the write that stores it', () => {
    const one = new RaftCore(cfg('n1', ['n1'], new MemSnapshots()), { hardState: { term: 0, votedFor: null, commit: 0 }, snapshot: null, entries: [], applied: 0 });
    one.campaign();
    drain(one);
    one.propose('x');
    const rd = one.ready();
    expect(rd.committed.map((e) => e.data)).toEqual(['x']);
    expect(rd.applyFirst).toBe(false);
    one.propose('y');
    expect(one.takeDuringWrite(true).committed).toEqual([]);
    one.advance();
    const next = one.ready();
    expect(next.committed.map((e) => e.data)).toEqual(['y']);
    expect(next.applyFirst).toBe(false);
  });
});
