/**
 * Bugs the simulator found, one test each (they failed until the bug was fixed).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runScenario } from '../../src/sim/scenarios.js';
import { defaultConfig } from '../../src/sim/config.js';
import { Simulation } from '../../src/sim/sim.js';
import type { SimNode } from '../../src/sim/node.js';
import { DiskStorage } from '../../src/storage/node-storage.js';
import { encodeSnapshot } from '../../src/storage/snapshot.js';
import type { Entry } from '../../src/raft/types.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('bug wal-gap (fixed in a472f14): recovery failed after a snapshot marker lands in a later segment than entries beyond it', () => {
  // A node snapshots at its applied index S while its log already holds S+1 (appended, not yet
  // applied). If the WAL rotated between entry S+1 and the snapshot's marker record, the marker
  // opens the new segment. Once compaction deletes the older segment (all its entries are covered
  // by newer snapshots), replay meets the marker first (resetting the log to S) and then entry
  // S+2: LogReplay throws LOG_GAP and the node can never restart, although the newest snapshot
  // covers everything that is missing. Found by: npm run sim -- --seed 1 --scenario crash-all-5
  it('real DiskStorage: the directory recovers after compaction', () => {
    const e = (i: number): Entry => ({ index: i, term: 1, data: { op: 'write', key: 1, value: i } });
    const snap = (i: number) => encodeSnapshot({ index: i, term: 1, config: ['n1'] }, { kv: [[1, i]] }, { createdAt: 0 });
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'raftsnap-walgap-'));
    dirs.push(root);
    const dir = path.join(root, 'n1');
    const o = { fsync: false, segmentBytes: 180, retain: 2, nodeId: 'n1' };
    const st = DiskStorage.open(dir, o);
    st.recover();
    for (let i = 1; i <= 6; i++) {
      st.append([e(i)]);
      st.setHardState({ term: 1, votedFor: 'n1', commit: i - 1 });
      st.sync();
    }
    st.saveSnapshot({ index: 5, term: 1, config: ['n1'] }, snap(5)); // applied 5; the log holds 6
    for (let i = 7; i <= 9; i++) {
      st.append([e(i)]);
      st.sync();
    }
    st.saveSnapshot({ index: 8, term: 1, config: ['n1'] }, snap(8));
    st.saveSnapshot({ index: 9, term: 1, config: ['n1'] }, snap(9));
    st.compactLog(9);
    st.close();
    const again = DiskStorage.open(dir, o);
    try {
      const r = again.recover();
      expect(r.snapshot!.meta.index).toBe(9);
    } finally {
      again.close();
    }
  });

  it('simulator, crash-all-5 seed 1 (mirrors the storage rules without assuming the fix)', async () => {
    const r = await runScenario('crash-all-5', 1);
    expect(r.failure).toBeNull();
  });
});

describe('bug dup-forward (src/node/server.ts): a duplicated raft_forward was executed twice', () => {
  // Found once the simulator hosted the real server: over a network that duplicates messages a
  // follower's forward reached the leader twice, the leader proposed the write twice and its
  // second copy overwrote a later write (not linearizable). The leader now drops a forward it has
  // seen (by sender, the sender's process and msg_id). Unit test: test/node/forward.test.ts.
  it.each([23, 74])('install-snapshot-lossy seed %i', async (seed) => {
    const r = await runScenario('install-snapshot-lossy', seed);
    expect(r.failure).toBeNull();
  });
});

// -------------------------------------------------------------------------------------------------
// The 11 scenario goals missed in 32,000 runs (`npm run sim -- --seeds 4000 --first 5000`).

describe('install-snapshot-lossy seed 6436: the goal was stated too tightly (fixed in the scenario)', () => {
  // The scenario heals once the leader compacted past the isolated node's log, but the network
  // checks partitions at delivery: an append the leader had sent 14 ms before that compaction
  // (entries 9..22, all the node lacked) arrived 3 ms after the heal, and the node caught up by log.
  // Correct Raft, but not the InstallSnapshot the scenario is there to test. Lines sent to or by
  // the isolated node are now lost at send (Simulation.sendFilters).
  it('passes, and the lagging node catches up by InstallSnapshot', async () => {
    const r = await runScenario('install-snapshot-lossy', 6436);
    expect(r.failure).toBeNull();
    expect(r.stats.snapshotsInstalled).toBeGreaterThan(0);
  });
});

describe('fixed bug wal-after-install (src/node/server.ts installSnapshot): a follower that catches up by InstallSnapshot never deleted WAL segments', () => {
  // healthy-trim seeds 5362, 6165, 7783, 8668, 8837 ("n2 keeps 4/5 WAL segments after
  // compaction"): with --trailing-logs 0 and one append in flight, a slow follower is always a
  // little behind the leader's compaction point and catches up by InstallSnapshot again and again
  // (seed 8668: n2 installed 43 snapshots, took 3 of its own). Segments are deleted only in
  // Snapshotter.commit, after a snapshot of the node's own; installSnapshot never calls
  // store.compact, and each install resets the snapshotter's count, so such a follower keeps every
  // segment since its last own snapshot (seed 8668: segments from index 1 to 242, snapshot 240).
  // Adding `await this.store!.compact(this.core!.status().firstIndex - 1, this.opts.retain)` after
  // the install passes all 4,000 healthy-trim seeds 5000-8999 (checked on a patched build).
  it.each([5362, 6165, 7783, 8668, 8837])('healthy-trim seed %i: passes', async (seed) => {
    const r = await runScenario('healthy-trim', seed);
    expect(r.failure).toBeNull();
    expect(r.stats.linearizability).toBe('linearizable');
  });

  it.each([1, 2, 3])('reproduction, seed %i: a follower behind a slow link keeps at most 25 entry records in its WAL', async (seed) => {
    const r = await slowLinkFollower(seed);
    expect(r.installs, 'precondition: the follower caught up by InstallSnapshot again and again').toBeGreaterThanOrEqual(20);
    // The healthy-trim bound (retain 2 x threshold 5 + trailing 0 + 2 x 3 clients + 4). Unfixed, on
    // the real storage (WAL format 2, 2 KiB segments): 116-135 entry records in 97-98 segments on
    // seeds 1-3 (the other nodes 8-11 records).
    expect(r.walEntries, `the follower installed ${r.installs} snapshots and took ${r.own} of its own`).toBeLessThanOrEqual(25);
  });
});

describe('fixed bug vote-resets-timer (src/raft/core.ts step): a rejected RequestVote of a higher term restarted the election timer', () => {
  // lagging-restart seeds 5123, 6285, 6370, 6895, 6914 ("had not installed a snapshot by 2900 ms"),
  // all with pre-vote off. The isolated node comes back with a high term and a stale log; it
  // cannot win, but each of its RequestVotes makes the others adopt its term through
  // becomeFollower, which calls resetTimers: their election timers start again with a new random
  // timeout. Raft's Figure 2 restarts it only on an append from the current leader or a granted
  // vote. So a node that cannot win keeps the nodes that can from timing out; they lead only when
  // one of them draws a shorter timeout than the stale node's next one (about one round in two or
  // three): seed 5123 lost five rounds in a row. With the timer kept on a rejected vote, leaders
  // came 240 ms (median) / 395 ms (max) after the heal instead of 355 / 1080 ms (471 seeds without
  // pre-vote), and all 4,000 lagging-restart seeds 5000-8999 pass (patched build).
  it.each([5123, 6285, 6370, 6895, 6914])('lagging-restart seed %i: passes', async (seed) => {
    const r = await runScenario('lagging-restart', seed);
    expect(r.failure).toBeNull();
    expect(r.stats.linearizability).toBe('linearizable');
  });

  // The same weakness made deterministic by clock-rate skew: the node that alone can win (the
  // longer log) runs 3x slow, so its timeout (450-870 ms) is always longer than the gap between
  // the other node's RequestVotes (150-290 ms), and with the timer restarted by each of them it
  // never campaigns: no leader for as long as the skew lasts (scenario clock-skew, episode 4, with
  // pre-vote off: 8 of its first 100 seeds).
  // Seeds are runs, not a property: any change to the traffic draws other delays. Seed 22 was one
  // of these until follower reads changed its messages; it now draws a split vote (both nodes
  // candidates in one term) that the 1500 ms window does not cover. With the fix 58 of seeds 1-60
  // (those where the slow node holds the longer log) elect within the window, with the timer
  // restarted by a rejected vote 1 of them does.
  it.each([7, 23, 31])('reproduction, seed %i: a leader within 1500 ms although the up-to-date voter runs 3x slow', async (seed) => {
    const r = await slowVoterAfterLeaderCrash(seed);
    expect(r.longerLog, 'precondition: the slow node holds the longer log').toBe(true);
    expect(r.electedAfterMs, 'no leader within 1500 ms of the crash').not.toBeNull();
  });
});

/**
 * Three nodes, pre-vote and check-quorum off. Crash follower A, let the leader L and follower B
 * commit for 300 ms, then skew B's clock 3x slow, crash L and restart A: A (shorter log, normal
 * clock) cannot win, B (longer log) can. Returns how long after the crash a leader came (within
 * 1500 ms) or null.
 */
async function slowVoterAfterLeaderCrash(seed: number): Promise<{ electedAfterMs: number | null; longerLog: boolean }> {
  const cfg = defaultConfig(seed, 'slow-voter');
  cfg.node.preVote = false;
  cfg.node.checkQuorum = false;
  cfg.durationMs = 3000;
  cfg.quietMs = 1000;
  const sim = new Simulation(cfg);
  let electedAfterMs: number | null = null;
  let longerLog = false;
  const r = await sim.run((s) => {
    const begin = (): void => {
      const leader = s.leader();
      if (!leader) {
        s.at(20, 'wait for a leader', begin);
        return;
      }
      const [a, b] = s.nodes.filter((n) => n !== leader) as [SimNode, SimNode];
      s.crash(a, false, 'test');
      s.at(300, 'crash the leader, restart the stale follower', async () => {
        s.setClockRate(b, 3);
        s.crash(leader, false, 'test');
        await s.restart(a);
        longerLog = b.status()!.lastIndex > a.status()!.lastIndex;
        const t0 = s.time;
        const poll = (): void => {
          if (s.leader()) electedAfterMs = s.time - t0;
          else if (s.time - t0 < 1500) s.at(10, 'wait for a new leader', poll);
        };
        poll();
        s.at(1500, 'restore', async () => {
          s.setClockRate(b, 1);
          await s.restart(leader);
        });
      });
    };
    s.at(300, 'begin', begin);
  });
  expect(r.failure).toBeNull();
  return { electedAfterMs, longerLog };
}

/**
 * Three nodes, --trailing-logs 0, snapshots every 5 entries, one append of one entry in flight;
 * every line to one follower arrives 10 ms late (a slow link): it stays just behind the leader's
 * compaction point and catches up by InstallSnapshot again and again, receiving entries by log in
 * between (what healthy-trim's failing seeds did by chance). Returns the entry records in its WAL near
 * the end of the main phase.
 */
async function slowLinkFollower(seed: number): Promise<{ walEntries: number; installs: number; own: number }> {
  const cfg = defaultConfig(seed, 'slow-link');
  cfg.node.trailingLogs = 0;
  cfg.node.snapshotThreshold = 5;
  cfg.node.maxInflight = 1;
  cfg.node.maxEntriesPerAppend = 1;
  cfg.durationMs = 4000;
  cfg.quietMs = 500;
  const sim = new Simulation(cfg);
  const out = { walEntries: -1, installs: 0, own: 0 };
  const r = await sim.run((s) => {
    let f: SimNode | null = null;
    s.sendFilters.push((from, to, line) => {
      if (f === null || to !== f || !s.mainPhase) return true;
      s.inject(from.id, to, line, 10);
      return false;
    });
    const begin = (): void => {
      const leader = s.leader();
      if (!leader) {
        s.at(20, 'wait for a leader', begin);
        return;
      }
      f = s.nodes.find((n) => n !== leader)!;
    };
    s.at(300, 'begin', begin);
    s.at(3900, 'measure', () => {
      out.walEntries = f!.walStats().entries;
      out.installs = f!.stats.snapshotsInstalled;
      out.own = f!.stats.snapshotsTaken;
    });
  });
  expect(r.failure).toBeNull();
  return out;
}
