/**
 * ReadIndex in the core: a read is confirmed only after a majority answered, in the leader's term,
 * an append sent after the read arrived; a leader that has not committed an entry of its term waits
 * for its no-op; a deposed or partitioned leader never confirms.
 */
import { describe, expect, it } from 'vitest';
import { RaftCore } from '../../src/raft/core.js';
import type { AppendEntries, AppendEntriesReply, NodeId, RaftMessage } from '../../src/raft/types.js';
import { Cluster, MemSnapshots, cfg, drain } from './harness.js';

const ids3 = ['n1', 'n2', 'n3'];
const ids5 = ['n1', 'n2', 'n3', 'n4', 'n5'];

function appends(ms: RaftMessage[]): AppendEntries[] {
  return ms.filter((m): m is AppendEntries => m.type === 'raft_append_entries');
}

/** A cluster with an elected leader whose no-op is committed everywhere. */
function steady(ids: NodeId[], seed = 1): { c: Cluster; l: NodeId } {
  const c = new Cluster(ids, {}, seed);
  const l = c.elect();
  c.run(4);
  const st = c.core(l).status();
  expect(c.core(l).termAt(st.commit)).toBe(st.term);
  return { c, l };
}

/** A lone leader of term 2 over n1..n3 whose followers we play by hand. */
function loneLeader(): RaftCore {
  const l = new RaftCore(cfg('n1', ids3, new MemSnapshots(), { preVote: false }), {
    hardState: { term: 1, votedFor: null, commit: 0 }, snapshot: null, entries: [], applied: 0,
  });
  l.campaign();
  drain(l);
  l.step({ type: 'raft_request_vote_reply', from: 'n2', to: 'n1', term: 2, granted: true, preVote: false });
  expect(l.status().role).toBe('leader');
  return l;
}

function ok(from: NodeId, term: number, matchIndex: number, readSeq?: number): AppendEntriesReply {
  return { type: 'raft_append_entries_reply', from, to: 'n1', term, success: true, matchIndex, rejectHint: 0, rejectedIndex: 0, ...(readSeq !== undefined ? { readSeq } : {}) };
}

describe('ReadIndex', () => {
  it('a follower (or candidate) takes no read: readIndex returns false', () => {
    const { c, l } = steady(ids3);
    const f = ids3.find((x) => x !== l)!;
    expect(c.core(f).readIndex(1)).toBe(false);
    c.process(f);
    expect(c.node(f).readStates).toEqual([]);
  });

  it('reads in a batch share one round: one heartbeat per follower, all confirmed by a majority\'s answers', () => {
    const { c, l } = steady(ids3);
    const core = c.core(l);
    const commit = core.status().commit;
    const before = c.trace.length;
    for (let ctx = 1; ctx <= 5; ctx++) expect(core.readIndex(ctx)).toBe(true);
    c.process(l);
    const hb = appends(c.trace.slice(before));
    expect(hb.length).toBe(2); // one per follower, not one per read
    const seq = hb[0]!.readSeq!;
    expect(seq).toBeGreaterThan(0);
    for (const m of hb) expect(m).toMatchObject({ entries: [], readSeq: seq });
    expect(c.node(l).readStates).toEqual([]); // not before a majority answered
    // One follower's answer makes a majority with the leader.
    const f = hb[0]!.to;
    c.filter = (m) => m.from !== l || m.to === f;
    c.deliverAll();
    expect(c.node(l).readStates).toEqual([1, 2, 3, 4, 5].map((ctx) => ({ ctx, index: commit })));
    expect(c.node(l).readsLost).toEqual([]);
  });

  it('reads arriving while a round is out start the next round; each round needs answers to its own number', () => {
    const l = loneLeader();
    drain(l); // the no-op's appends
    l.step(ok('n2', 2, 1));
    drain(l);
    expect(l.status().commit).toBe(1);
    l.readIndex(10);
    const r1 = appends(drain(l).msgs);
    const s1 = r1[0]!.readSeq!;
    l.readIndex(11);
    const r2 = appends(drain(l).msgs);
    const s2 = r2[0]!.readSeq!;
    expect(s2).toBe(s1 + 1);
    // An answer to the first round's heartbeat confirms only the first round.
    l.step(ok('n3', 2, 1, s1));
    let out = drain(l).readies.flatMap((r) => r.readStates);
    expect(out).toEqual([{ ctx: 10, index: 1 }]);
    // An answer carrying an older number (sent before the read arrived) confirms nothing later.
    l.step(ok('n2', 2, 1, s1));
    expect(drain(l).readies.flatMap((r) => r.readStates)).toEqual([]);
    l.step(ok('n2', 2, 1, s2));
    out = drain(l).readies.flatMap((r) => r.readStates);
    expect(out).toEqual([{ ctx: 11, index: 1 }]);
  });

  it('appends carrying new entries carry the round number too: no extra heartbeat to a follower they reach', () => {
    const { c, l } = steady(ids3);
    const core = c.core(l);
    const before = c.trace.length;
    core.propose('w');
    core.readIndex(1);
    c.process(l);
    const sent = appends(c.trace.slice(before));
    expect(sent.length).toBe(2);
    for (const m of sent) expect(m.entries.length).toBe(1);
    c.deliverAll();
    expect(c.node(l).readStates.map((r) => r.ctx)).toEqual([1]);
  });

  it('a new leader answers no read before its no-op commits, then at an index at least the no-op\'s', () => {
    const l = loneLeader();
    const noop = l.status().lastIndex;
    expect(l.entries(noop, noop)).toEqual([{ index: noop, term: 2, data: null }]);
    l.readIndex(7);
    const out = drain(l);
    // No round yet: the appends are the no-op's, carrying no read round number.
    for (const m of appends(out.msgs)) expect(m.readSeq ?? 0).toBe(0);
    // A follower's answer without the no-op committed confirms nothing.
    l.step({ ...ok('n2', 2, 0), readSeq: 0 });
    expect(drain(l).readies.flatMap((r) => r.readStates)).toEqual([]);
    // The no-op commits: the read's round starts now, and a majority answer confirms it.
    l.step(ok('n3', 2, noop));
    const r = drain(l);
    expect(l.status().commit).toBe(noop);
    const hb = appends(r.msgs).filter((m) => (m.readSeq ?? 0) > 0);
    expect(hb.length).toBe(2);
    l.step(ok('n3', 2, noop, hb[0]!.readSeq));
    expect(drain(l).readies.flatMap((x) => x.readStates)).toEqual([{ ctx: 7, index: noop }]);
  });

  it('a leader deposed between noting the index and the confirmation never answers the read', () => {
    const l = loneLeader();
    drain(l);
    l.step(ok('n2', 2, 1));
    drain(l);
    l.readIndex(3);
    const seq = appends(drain(l).msgs)[0]!.readSeq!;
    // A follower moved on to term 3 (a new leader was elected): its answer deposes us.
    l.step({ type: 'raft_append_entries_reply', from: 'n3', to: 'n1', term: 3, success: false, matchIndex: 0, rejectHint: 0, rejectedIndex: 1, readSeq: seq });
    let rs = drain(l).readies;
    expect(l.status().role).toBe('follower');
    expect(rs.flatMap((r) => r.readsLost)).toEqual([3]);
    expect(rs.flatMap((r) => r.readStates)).toEqual([]);
    // A late answer of the old term with the round's number changes nothing.
    l.step(ok('n2', 2, 1, seq));
    rs = drain(l).readies;
    expect(rs.flatMap((r) => r.readStates)).toEqual([]);
  });

  it('a leader that loses check-quorum drops its unconfirmed reads', () => {
    const l = loneLeader();
    drain(l);
    l.step(ok('n2', 2, 1));
    drain(l);
    l.readIndex(4);
    drain(l);
    const lost: number[] = [];
    for (let t = 0; t < 30 && l.status().role === 'leader'; t++) {
      l.tick();
      for (const r of drain(l).readies) {
        expect(r.readStates).toEqual([]);
        lost.push(...r.readsLost);
      }
    }
    expect(l.status().role).toBe('follower');
    expect(lost).toEqual([4]);
  });

  it('a partitioned old leader never confirms a read, while the majority elects a leader that does', () => {
    const { c, l } = steady(ids5, 3);
    c.isolate(l);
    // The majority elects a new leader and commits writes the old one never sees.
    let nl: NodeId | undefined;
    for (let t = 0; t < 200 && !nl; t++) {
      c.tick();
      c.deliverAll();
      nl = c.leaders().find((x) => x !== l && c.core(x).status().term > c.core(l).status().term);
    }
    expect(nl).toBeDefined();
    c.propose(nl!, 'new');
    c.run(3);
    const newCommit = c.core(nl!).status().commit;
    // The old leader (if it still thinks it leads) takes reads; none is ever confirmed.
    const old = c.core(l);
    let asked = 0;
    for (let t = 0; t < 40; t++) {
      if (old.readIndex(100 + t)) asked++;
      c.tick([l]);
      c.deliverAll();
    }
    expect(c.node(l).readStates).toEqual([]);
    expect(c.node(l).readsLost.length).toBe(asked);
    // The new leader's reads are confirmed, at an index that includes the new write.
    c.core(nl!).readIndex(1);
    c.process(nl!);
    c.deliverAll();
    expect(c.node(nl!).readStates).toEqual([{ ctx: 1, index: newCommit }]);
    // After healing the old leader's lost reads stay lost.
    c.heal();
    c.run(20);
    expect(c.node(l).readStates).toEqual([]);
  });

  it('with answeredThrough, a read\'s index is the driver\'s figure, never below the log the leader was elected with nor above its last index', () => {
    // n1 restarts with three committed entries of term 1 it has not applied, and is elected in term 2.
    const start = (): RaftCore => {
      const l = new RaftCore(cfg('n1', ids3, new MemSnapshots(), { preVote: false }), {
        hardState: { term: 1, votedFor: null, commit: 3 }, snapshot: null, entries: [1, 2, 3].map((i) => ({ index: i, term: 1, data: `e${i}` })), applied: 0,
      });
      l.campaign();
      drain(l);
      l.step({ type: 'raft_request_vote_reply', from: 'n2', to: 'n1', term: 2, granted: true, preVote: false });
      expect(l.status().role).toBe('leader');
      return l;
    };
    const confirm = (l: RaftCore, ctx: number, answeredThrough: number | undefined): { ctx: number; index: number }[] => {
      l.readIndex(ctx, answeredThrough);
      const seq = Math.max(...appends(drain(l).msgs).map((m) => m.readSeq ?? 0));
      l.step(ok('n2', 2, 5, seq));
      return drain(l).readies.flatMap((r) => r.readStates);
    };
    for (const given of [true, false]) {
      const l = start();
      drain(l);
      // The no-op (index 4) commits; the driver has applied nothing yet.
      l.step(ok('n2', 2, 4));
      expect(l.status().commit).toBe(4);
      // Entries 1-3 may have been answered by the term-1 leader: the read includes them either way.
      expect(confirm(l, 9, given ? 0 : undefined)).toEqual([{ ctx: 9, index: given ? 3 : 4 }]);
      // A write of this term commits; nothing above 4 was answered: the read need not wait for 5.
      l.propose('w');
      drain(l);
      l.step(ok('n3', 2, 5));
      expect(l.status().commit).toBe(5);
      expect(confirm(l, 10, given ? 4 : undefined)).toEqual([{ ctx: 10, index: given ? 4 : 5 }]);
      // The client's own write at 6, not yet committed: its read waits for it; a figure past the
      // last index is capped there.
      l.propose('own');
      drain(l);
      expect(l.status()).toMatchObject({ commit: 5, lastIndex: 6 });
      expect(confirm(l, 11, given ? 6 : undefined)).toEqual([{ ctx: 11, index: given ? 6 : 5 }]);
      expect(confirm(l, 12, given ? 99 : undefined)).toEqual([{ ctx: 12, index: given ? 6 : 5 }]);
    }
  });

  it('with answeredThrough, a read\'s index covers the commit index the leader has told followers (they answer reads from their own state)', () => {
    const l = loneLeader();
    drain(l);
    l.step(ok('n2', 2, 1)); // the no-op commits
    l.propose('a');
    drain(l);
    l.step(ok('n2', 2, 2)); // 'a' commits: commit 2, not yet sent to anyone
    expect(l.status().commit).toBe(2);
    const readAt = (ctx: number, answeredThrough: number): number => {
      l.readIndex(ctx, answeredThrough);
      const out = appends(drain(l).msgs);
      const seq = Math.max(...out.map((m) => m.readSeq ?? 0));
      l.step(ok('n2', 2, l.status().lastIndex, seq));
      const rs = drain(l).readies.flatMap((r) => r.readStates);
      expect(rs.map((r) => r.ctx)).toEqual([ctx]);
      return rs[0]!.index;
    };
    // Nothing above 1 was sent to a follower yet: the driver's figure (1) stands.
    expect(readAt(1, 1)).toBe(1);
    // The round's heartbeat told n2 and n3 commit 2: a follower may have applied 'a' and answered a
    // read with it, so a later read on the leader includes it even though the driver says 1.
    expect(readAt(2, 1)).toBe(2);
  });

  describe("a follower's read index request counts as its acknowledgement (askedBy)", () => {
    it('3 voters: asked in the leader\'s term, confirmed in the next Ready with no round sent', () => {
      const l = loneLeader();
      drain(l);
      l.step(ok('n2', 2, 1)); // the no-op commits
      drain(l);
      expect(l.readIndex(7, 1, { id: 'n3', term: 2 })).toBe(true);
      const { msgs, readies } = drain(l);
      expect(readies.flatMap((r) => r.readStates)).toEqual([{ ctx: 7, index: 1 }]);
      expect(appends(msgs)).toEqual([]); // no round (n3 learns the commit index it needs once it has the entries: below)
    });

    it('3 voters: asked in an older term (or by a non-member, or before the no-op commits), it waits for a round', () => {
      for (const askedBy of [{ id: 'n3', term: 1 }, { id: 'x9', term: 2 }]) {
        const l = loneLeader();
        drain(l);
        l.step(ok('n2', 2, 1));
        drain(l);
        l.readIndex(7, 1, askedBy);
        const { msgs, readies } = drain(l);
        expect(readies.flatMap((r) => r.readStates)).toEqual([]);
        const seq = Math.max(...appends(msgs).map((m) => m.readSeq ?? 0));
        expect(seq).toBeGreaterThan(0);
        l.step(ok('n2', 2, 1, seq));
        expect(drain(l).readies.flatMap((r) => r.readStates)).toEqual([{ ctx: 7, index: 1 }]);
      }
      // Before the no-op commits: not confirmed until it has, and then by a round.
      const l = loneLeader();
      drain(l);
      l.readIndex(8, 0, { id: 'n3', term: 2 });
      expect(drain(l).readies.flatMap((r) => r.readStates)).toEqual([]);
      l.step(ok('n2', 2, 1));
      const { msgs, readies } = drain(l);
      expect(readies.flatMap((r) => r.readStates)).toEqual([]);
      const seq = Math.max(...appends(msgs).map((m) => m.readSeq ?? 0));
      l.step(ok('n2', 2, 1, seq));
      expect(drain(l).readies.flatMap((r) => r.readStates)).toEqual([{ ctx: 8, index: 1 }]);
    });

    it('the asking follower is told the commit index its read index needs at once (not at the next heartbeat), once it has the entries, once', () => {
      const l = loneLeader();
      drain(l);
      l.step(ok('n2', 2, 1));
      l.step(ok('n3', 2, 1));
      drain(l);
      l.propose('a');
      drain(l);
      l.step(ok('n2', 2, 2)); // 'a' commits at 2; n3 was last told commit 1
      expect(l.status().commit).toBe(2);
      l.readIndex(7, 2, { id: 'n3', term: 2 });
      const { msgs, readies } = drain(l);
      expect(readies.flatMap((r) => r.readStates)).toEqual([{ ctx: 7, index: 2 }]);
      // n3 has not acknowledged entry 2 yet: an append now could not let it commit 2.
      expect(appends(msgs)).toEqual([]);
      l.step(ok('n3', 2, 2));
      expect(appends(drain(l).msgs).map((m) => [m.to, m.prevLogIndex, m.leaderCommit])).toEqual([['n3', 2, 2]]);
      l.readIndex(8, 2, { id: 'n3', term: 2 });
      expect(appends(drain(l).msgs)).toEqual([]);
      // A follower that has the entries is told at once.
      l.propose('b');
      drain(l);
      l.step(ok('n2', 2, 3));
      l.step(ok('n3', 2, 3));
      drain(l);
      expect(l.status().commit).toBe(3);
      l.readIndex(9, 3, { id: 'n3', term: 2 });
      expect(appends(drain(l).msgs).map((m) => [m.to, m.prevLogIndex, m.leaderCommit])).toEqual([['n3', 3, 3]]);
    });

    it('5 voters: the asking follower and the leader are no majority, so it waits for a round', () => {
      const { c, l } = steady(ids5);
      const core = c.core(l);
      const f = ids5.find((x) => x !== l)!;
      const before = c.trace.length;
      core.readIndex(3, core.status().commit, { id: f, term: core.status().term });
      c.process(l);
      expect(c.node(l).readStates).toEqual([]);
      expect(appends(c.trace.slice(before)).length).toBe(4); // a round to every follower
      c.deliverAll();
      expect(c.node(l).readStates.map((r) => r.ctx)).toEqual([3]);
    });

    it('a deposed leader takes none (returns false)', () => {
      const { c, l } = steady(ids3);
      const f = ids3.find((x) => x !== l)!;
      expect(c.core(f).readIndex(1, 0, { id: l, term: c.core(f).status().term })).toBe(false);
    });
  });

  it('a follower acknowledges a new read round at once, before writing the entries that came with it', () => {
    const f = new RaftCore(cfg('n2', ids3, new MemSnapshots()), { hardState: { term: 2, votedFor: null, commit: 0 }, snapshot: null, entries: [], applied: 0 });
    f.step({ type: 'raft_append_entries', from: 'n1', to: 'n2', term: 2, prevLogIndex: 0, prevLogTerm: 0, entries: [{ index: 1, term: 2, data: 'w' }], leaderCommit: 0, readSeq: 5 });
    const rd = f.ready();
    expect(rd.mustSync).toBe(true);
    expect(rd.early).toEqual([{ type: 'raft_read_ack', from: 'n2', to: 'n1', term: 2, readSeq: 5 }]);
    expect(rd.messages).toMatchObject([{ type: 'raft_append_entries_reply', success: true, matchIndex: 1, readSeq: 5 }]);
    f.advance();
    // The same round again (another append of it): no second acknowledgement.
    f.step({ type: 'raft_append_entries', from: 'n1', to: 'n2', term: 2, prevLogIndex: 1, prevLogTerm: 2, entries: [], leaderCommit: 1, readSeq: 5 });
    expect(f.ready().early).toEqual([]);
    f.advance();
    // A new round on a heartbeat that needs no fsync: the reply itself echoes it, no extra message.
    f.step({ type: 'raft_append_entries', from: 'n1', to: 'n2', term: 2, prevLogIndex: 1, prevLogTerm: 2, entries: [], leaderCommit: 1, readSeq: 6 });
    const hb = f.ready();
    expect(hb).toMatchObject({ mustSync: false, early: [], messages: [{ type: 'raft_append_entries_reply', readSeq: 6 }] });
  });

  it('a leader confirms a round from read acknowledgements alone; one from an older term counts for nothing', () => {
    const l = loneLeader();
    drain(l);
    l.step(ok('n2', 2, 1));
    drain(l);
    l.readIndex(9);
    const seq = appends(drain(l).msgs)[0]!.readSeq!;
    l.step({ type: 'raft_read_ack', from: 'n3', to: 'n1', term: 1, readSeq: seq });
    expect(drain(l).readies.flatMap((r) => r.readStates)).toEqual([]);
    l.step({ type: 'raft_read_ack', from: 'n3', to: 'n1', term: 2, readSeq: seq });
    expect(drain(l).readies.flatMap((r) => r.readStates)).toEqual([{ ctx: 9, index: 1 }]);
  });

  it('a single voter confirms at once, in the next Ready', () => {
    const snaps = new MemSnapshots();
    const core = new RaftCore(cfg('n1', ['n1'], snaps), { hardState: { term: 0, votedFor: null, commit: 0 }, snapshot: null, entries: [], applied: 0 });
    expect(core.readIndex(1)).toBe(false);
    core.campaign();
    drain(core, snaps);
    core.propose('x');
    expect(core.readIndex(2)).toBe(true);
    const rs = drain(core, snaps).readies.flatMap((r) => r.readStates);
    expect(rs).toEqual([{ ctx: 2, index: 2 }]);
  });

  it('a leader whose log has no entry of its term (a local restore) appends a no-op for its reads', () => {
    const snaps = new MemSnapshots();
    const core = new RaftCore(cfg('n1', ['n1'], snaps), { hardState: { term: 3, votedFor: null, commit: 0 }, snapshot: null, entries: [], applied: 0 });
    core.campaign();
    drain(core, snaps);
    const meta = { index: 10, term: 2, config: ['n1'] };
    snaps.save(meta, Buffer.from('{}'));
    core.snapshotAvailable(meta, 2);
    core.restoreSnapshot(meta);
    expect(core.status()).toMatchObject({ role: 'leader', commit: 10, lastIndex: 10 });
    drain(core, snaps);
    core.readIndex(5);
    const rs = drain(core, snaps).readies;
    expect(core.entries(11, 11)).toEqual([{ index: 11, term: core.status().term, data: null }]);
    expect(rs.flatMap((r) => r.readStates)).toEqual([{ ctx: 5, index: 11 }]);
  });

  describe('every confirmed read index covers everything committed anywhere when the read arrived', () => {
    for (let seed = 1; seed <= 16; seed++) {
      it(`seed ${seed}: random partitions, losses and restarts`, () => {
        const c = new Cluster(ids5, { maxEntriesPerAppend: 3, maxInflight: 2 }, seed);
        const r = c.random;
        let drop = 0.1;
        c.filter = () => r() >= drop;
        // ctx -> the highest commit index of any node when the read was taken.
        const floor = new Map<number, number>();
        const reader = new Map<number, NodeId>();
        let ctx = 0;
        let confirmed = 0;
        const check = () => {
          for (const id of ids5) {
            const n = c.node(id);
            for (const rs of n.readStates.splice(0)) {
              confirmed++;
              expect(reader.get(rs.ctx), `read ${rs.ctx} confirmed on the node that took it`).toBe(id);
              expect(rs.index, `read ${rs.ctx} on ${id}`).toBeGreaterThanOrEqual(floor.get(rs.ctx)!);
              floor.delete(rs.ctx);
            }
            for (const l of n.readsLost.splice(0)) {
              expect(reader.get(l)).toBe(id);
              floor.delete(l);
            }
          }
        };
        let v = 0;
        for (let round = 0; round < 60; round++) {
          const ev = r();
          if (ev < 0.15) {
            const shuffled = ids5.slice().sort(() => r() - 0.5);
            const k = 1 + Math.floor(r() * 4);
            c.partition(shuffled.slice(0, k), shuffled.slice(k));
          } else if (ev < 0.3) {
            c.heal();
          } else if (ev < 0.36) {
            // A restarted node forgets its reads (the driver answers them when it stops).
            const id = ids5[Math.floor(r() * 5)]!;
            for (const [x, who] of reader) if (who === id && floor.has(x)) floor.delete(x);
            c.restart(id);
          }
          for (let t = 0; t < 5; t++) {
            c.tick();
            const k = Math.floor(r() * 40);
            for (let i = 0; i < k && c.deliverOne(); i++);
            for (const id of c.leaders()) if (r() < 0.6) c.propose(id, `v${v++}`);
            for (const id of ids5) {
              if (r() < 0.3) {
                const top = Math.max(...ids5.map((x) => c.core(x).status().commit));
                ctx++;
                if (c.core(id).readIndex(ctx)) {
                  floor.set(ctx, top);
                  reader.set(ctx, id);
                  c.process(id);
                }
              }
            }
            check();
          }
        }
        c.heal();
        drop = 0;
        c.run(40);
        check();
        expect(confirmed).toBeGreaterThan(0);
      });
    }
  });
});
