import { describe, expect, it } from 'vitest';
import { RaftCore } from '../../src/raft/core.js';
import type { RequestVote } from '../../src/raft/types.js';
import { Cluster, MemSnapshots, cfg, drain } from './harness.js';

const ids3 = ['n1', 'n2', 'n3'];
const ids5 = ['n1', 'n2', 'n3', 'n4', 'n5'];

function oneLeaderPerTerm(c: Cluster): void {
  for (const [term, ls] of c.leadersByTerm) expect(ls.size, `term ${term}: ${[...ls]}`).toBe(1);
}

describe('elections', () => {
  it('elects exactly one leader, and the others follow it', () => {
    const c = new Cluster(ids3);
    const l = c.elect();
    c.run(30);
    expect(c.leaders()).toEqual([l]);
    for (const id of ids3) expect(c.core(id).leader()).toBe(l);
    oneLeaderPerTerm(c);
    // The new leader's no-op is committed everywhere.
    for (const id of ids3) expect(c.core(id).status().commit).toBe(1);
    expect(c.core(l).stats().becameLeader).toBe(1);
  });

  it('keeps one leader per term through random partitions (many seeds)', () => {
    for (let seed = 1; seed <= 15; seed++) {
      const c = new Cluster(ids5, {}, seed);
      const r = c.random;
      for (let round = 0; round < 12; round++) {
        const shuffled = ids5.slice().sort(() => r() - 0.5);
        const k = 1 + Math.floor(r() * 4);
        c.partition(shuffled.slice(0, k), shuffled.slice(k));
        c.run(25);
        const l = c.leaders()[0];
        if (l) c.propose(l, `s${seed}r${round}`);
        c.heal();
        c.run(10);
      }
      oneLeaderPerTerm(c);
    }
  });

  it('randomizes the election timeout within [electionTicks, 2*electionTicks)', () => {
    for (let seed = 1; seed < 40; seed++) {
      const core = new RaftCore(cfg('n1', ids3, new MemSnapshots(), { preVote: false }, seed), {
        hardState: { term: 0, votedFor: null, commit: 0 }, snapshot: null, entries: [], applied: 0,
      });
      let t = 0;
      while (core.status().role === 'follower') {
        core.tick();
        t++;
      }
      expect(t).toBeGreaterThanOrEqual(10);
      expect(t).toBeLessThan(20);
    }
  });

  it('pre-vote: a partitioned node does not inflate terms and does not disrupt the leader when it returns', () => {
    const c = new Cluster(ids3);
    const l = c.elect();
    const term = c.core(l).status().term;
    const f = ids3.find((x) => x !== l)!;
    c.isolate(f);
    c.run(200);
    expect(c.core(f).status().term).toBe(term); // pre-vote failed every time, no term bump
    expect(c.core(f).stats().preVotesStarted).toBeGreaterThan(3);
    expect(c.core(f).stats().electionsStarted).toBe(0);
    c.heal();
    c.run(30);
    expect(c.leaders()).toEqual([l]);
    expect(c.core(l).status().term).toBe(term);
    expect(c.core(f).leader()).toBe(l);
  });

  it('without pre-vote the same partition inflates the term (control experiment)', () => {
    const c = new Cluster(ids3, { preVote: false, checkQuorum: false });
    const l = c.elect();
    const term = c.core(l).status().term;
    const f = ids3.find((x) => x !== l)!;
    c.isolate(f);
    c.run(100);
    expect(c.core(f).status().term).toBeGreaterThan(term + 2);
  });

  it('check-quorum: a leader cut off from the majority steps down; the majority elects another', () => {
    const c = new Cluster(ids5);
    const l = c.elect();
    c.isolate(l);
    c.run(25);
    expect(c.core(l).status().role).toBe('follower');
    expect(c.core(l).stats().checkQuorumStepDowns).toBe(1);
    const others = c.leaders();
    expect(others.length).toBe(1);
    expect(others[0]).not.toBe(l);
    c.heal();
    c.run(20);
    expect(c.leaders()).toEqual(others);
    oneLeaderPerTerm(c);
  });

  it('leader stickiness: a follower that heard from the leader recently ignores a higher-term vote request', () => {
    const c = new Cluster(ids3);
    const l = c.elect();
    const f = ids3.find((x) => x !== l)!;
    const other = ids3.find((x) => x !== l && x !== f)!;
    const st = c.core(f).status();
    const lastIndex = st.lastIndex;
    for (const preVote of [false, true]) {
      const req: RequestVote = {
        type: 'raft_request_vote', from: other, to: f, term: st.term + 1,
        lastLogIndex: lastIndex + 10, lastLogTerm: st.term, preVote,
      };
      c.core(f).step(req);
      const out = drain(c.core(f));
      expect(out.msgs).toEqual([]);
      expect(c.core(f).status().term).toBe(st.term);
    }
    // Without a recent leader (lease expired), the same request gets a vote.
    const lone = new RaftCore(cfg('n2', ids3, new MemSnapshots()), { hardState: { term: 1, votedFor: null, commit: 0 }, snapshot: null, entries: [], applied: 0 });
    lone.step({ type: 'raft_request_vote', from: 'n3', to: 'n2', term: 2, lastLogIndex: 0, lastLogTerm: 0, preVote: false });
    const out = drain(lone);
    expect(out.msgs).toMatchObject([{ type: 'raft_request_vote_reply', granted: true, term: 2, to: 'n3' }]);
    expect(out.readies[0]!.hardState).toEqual({ term: 2, votedFor: 'n3', commit: 0 }); // the vote is persisted with the reply
  });

  it('denies votes to a candidate with a less up-to-date log; grants only once per term', () => {
    const mk = () =>
      new RaftCore(cfg('n1', ids3, new MemSnapshots()), {
        hardState: { term: 3, votedFor: null, commit: 0 },
        snapshot: null,
        entries: [{ index: 1, term: 1, data: 1 }, { index: 2, term: 3, data: 2 }],
        applied: 0,
      });
    const a = mk();
    a.step({ type: 'raft_request_vote', from: 'n2', to: 'n1', term: 4, lastLogIndex: 5, lastLogTerm: 2, preVote: false });
    expect(drain(a).msgs).toMatchObject([{ granted: false, term: 4 }]);
    a.step({ type: 'raft_request_vote', from: 'n2', to: 'n1', term: 4, lastLogIndex: 1, lastLogTerm: 3, preVote: false });
    expect(drain(a).msgs).toMatchObject([{ granted: false }]);
    a.step({ type: 'raft_request_vote', from: 'n2', to: 'n1', term: 4, lastLogIndex: 2, lastLogTerm: 3, preVote: false });
    expect(drain(a).msgs).toMatchObject([{ granted: true }]);
    a.step({ type: 'raft_request_vote', from: 'n3', to: 'n1', term: 4, lastLogIndex: 9, lastLogTerm: 4, preVote: false });
    expect(drain(a).msgs).toMatchObject([{ granted: false }]);
    // A pre-vote changes nothing on the voter.
    const b = mk();
    b.step({ type: 'raft_request_vote', from: 'n2', to: 'n1', term: 4, lastLogIndex: 2, lastLogTerm: 3, preVote: true });
    const out = drain(b);
    expect(out.msgs).toMatchObject([{ granted: true, preVote: true, term: 4 }]);
    expect(b.status().term).toBe(3);
    expect(b.status().votedFor).toBe(null);
  });

  it('a stale-term append gets our term back, and the stale leader steps down', () => {
    const c = new Cluster(ids3);
    const l = c.elect();
    c.isolate(l);
    c.run(40);
    const nl = c.leaders().find((x) => x !== l)!;
    expect(nl).toBeDefined();
    c.heal();
    c.run(20);
    expect(c.leaders()).toEqual([nl]);
    expect(c.core(l).leader()).toBe(nl);
  });
});

describe('single node', () => {
  it('becomes leader on the first tick and commits proposals through Ready', () => {
    const snaps = new MemSnapshots();
    const core = new RaftCore(cfg('n1', ['n1'], snaps), { hardState: { term: 0, votedFor: null, commit: 0 }, snapshot: null, entries: [], applied: 0 });
    core.tick();
    expect(core.status().role).toBe('leader');
    const r1 = drain(core).readies;
    expect(r1.length).toBe(1);
    expect(r1[0]!.hardState).toEqual({ term: 1, votedFor: 'n1', commit: 1 });
    expect(r1[0]!.entries).toEqual([{ index: 1, term: 1, data: null }]);
    expect(r1[0]!.committed).toEqual([{ index: 1, term: 1, data: null }]);
    expect(r1[0]!.messages).toEqual([]);
    expect(core.propose({ op: 'write' })).toEqual({ index: 2, term: 1 });
    const rd = core.ready();
    expect(rd.entries).toEqual([{ index: 2, term: 1, data: { op: 'write' } }]);
    expect(rd.committed).toEqual(rd.entries);
    expect(rd.hardState!.commit).toBe(2);
    core.advance();
    expect(core.hasReady()).toBe(false);
    expect(core.status().applied).toBe(2);
  });

  it('campaign() elects a single node at once', () => {
    const core = new RaftCore(cfg('n1', ['n1'], new MemSnapshots()), { hardState: { term: 4, votedFor: null, commit: 0 }, snapshot: null, entries: [], applied: 0 });
    core.campaign();
    expect(core.status()).toMatchObject({ role: 'leader', term: 5, leader: 'n1', commit: 1 });
  });
});

describe('determinism', () => {
  function scenario(seed: number): string {
    const c = new Cluster(ids5, { maxEntriesPerAppend: 2, snapshotChunkSize: 8 }, seed);
    const r = c.random;
    c.filter = () => r() > 0.1;
    for (let i = 0; i < 60; i++) {
      if (i === 5) c.isolate('n5');
      if (i === 35) c.heal();
      c.run(3);
      const l = c.leaders()[0];
      if (l) c.propose(l, i);
      if (i % 20 === 10 && l) c.snapshot(l, 1);
    }
    return JSON.stringify(c.trace);
  }
  it('same seed => identical message trace; another seed differs', () => {
    const a = scenario(42);
    const kinds = new Set((JSON.parse(a) as Array<{ type: string }>).map((m) => m.type));
    expect([...kinds].sort()).toEqual([
      'raft_append_entries', 'raft_append_entries_reply', 'raft_install_snapshot', 'raft_install_snapshot_reply',
      'raft_request_vote', 'raft_request_vote_reply',
    ]);
    expect(scenario(42)).toBe(a);
    expect(scenario(43)).not.toBe(a);
  });
});

describe('a rejected RequestVote of a higher term', () => {
  it('adopts the term but keeps the election timer running (Figure 2: only a leader append or a granted vote restarts it)', () => {
    // n1 holds a log entry of term 1; n2 asks for votes in term 9 with an empty log: rejected.
    const core = new RaftCore(cfg('n1', ids3, new MemSnapshots(), { preVote: false, checkQuorum: false }, 3), {
      hardState: { term: 1, votedFor: 'n1', commit: 0 }, snapshot: null, entries: [{ index: 1, term: 1, data: null }], applied: 0,
    });
    // Ticks until n1 would campaign on its own, measured on an identical core.
    const twin = new RaftCore(cfg('n1', ids3, new MemSnapshots(), { preVote: false, checkQuorum: false }, 3), {
      hardState: { term: 1, votedFor: 'n1', commit: 0 }, snapshot: null, entries: [{ index: 1, term: 1, data: null }], applied: 0,
    });
    let timeout = 0;
    while (twin.status().role === 'follower') {
      twin.tick();
      timeout++;
    }
    for (let i = 0; i < timeout - 1; i++) core.tick();
    const vote: RequestVote = { type: 'raft_request_vote', from: 'n2', to: 'n1', term: 9, lastLogIndex: 0, lastLogTerm: 0, preVote: false };
    core.step(vote);
    drain(core);
    expect(core.status().term).toBe(9);
    expect(core.status().votedFor).toBeNull();
    // The next tick is the one at which n1 campaigns, as if the stale vote had not come.
    core.tick();
    expect(core.status().role).toBe('candidate');
    expect(core.status().term).toBe(10);
  });

  it('a granted vote restarts the timer', () => {
    const core = new RaftCore(cfg('n1', ids3, new MemSnapshots(), { preVote: false, checkQuorum: false }, 3), {
      hardState: { term: 1, votedFor: null, commit: 0 }, snapshot: null, entries: [], applied: 0,
    });
    for (let i = 0; i < 9; i++) core.tick();
    core.step({ type: 'raft_request_vote', from: 'n2', to: 'n1', term: 2, lastLogIndex: 0, lastLogTerm: 0, preVote: false } as RequestVote);
    drain(core);
    expect(core.status().votedFor).toBe('n2');
    for (let i = 0; i < 9; i++) core.tick();
    expect(core.status().role).toBe('follower');
  });
});
