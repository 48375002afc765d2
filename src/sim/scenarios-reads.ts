/**
 * Scenarios of the read path (docs/SIMULATION.md):
 *  - slow-leader-disk: the leader's fsyncs take 30x the simulated disk latency (3-120 ms), the
 *    followers' stay fast, and the slow disk moves to whoever leads every 400 ms. Entries then
 *    commit on the followers' acknowledgements before the leader's own write ends, so a follower
 *    applies (and answers follower reads from) entries the leader has not applied yet: a read on
 *    the leader after such a read must still see them (RaftCore.readIndex counts the commit index
 *    the leader sent). The history is checked for linearizability as in every scenario; that
 *    follower reads happen is checked over seeds (test/sim/seeds-reads.test.ts), not per seed
 *    (clients that happen to all pick the leader read there only);
 *  - slow-leader-crash: the same slow disk on the leader of 3 nodes, and the leader crashes every 200-400 ms
 *    (its slow fsync is then nearly always in flight; restarted 50-150 ms later). Entries are
 *    applied and answered once a majority holds them on disk, possibly before the leader's own
 *    write: only entries on the followers' disks may count, so every acknowledged write survives
 *    the crash that takes the leader's unsynced log with it (a core that counted the leader's
 *    unfinished write toward that majority loses acknowledged writes here);
 *  - paused-leader-reads: the leader is paused and cut off from the other nodes (not from the
 *    clients), the others elect a leader and commit writes, then the old leader wakes, still cut
 *    off and still believing it leads, and half the clients send it their next operations: it must
 *    answer no read from its old state (no ReadIndex round can be confirmed without the others),
 *    and a follower that asked it for a read index before must not get one.
 */
import type { SimNode } from './node.js';
import { type Scenario, randomized, scenarioFail } from './scenario-kit.js';
import type { SimConfig } from './config.js';
import type { Simulation } from './sim.js';

const SLOW = 30;
const EPISODE_MS = 400;

function slowLeaderDiskScript(sim: Simulation): void {
  let slow: SimNode | null = null;
  const move = (): void => {
    const ldr = sim.leader();
    if (ldr && ldr !== slow) {
      if (slow) slow.fsyncSlowdown = 1;
      ldr.fsyncSlowdown = SLOW;
      slow = ldr;
      sim.note(`SCENARIO slow disk on ${ldr.id}`);
    }
    if (sim.time < sim.cfg.durationMs) sim.at(EPISODE_MS, 'slow disk: follow the leader', move);
    else if (slow) slow.fsyncSlowdown = 1;
  };
  sim.at(200, 'slow disk on the leader', move);
}

/** Crash the leader (slow disk, fsync in flight) every 200-400 ms; restart it 50-150 ms later. */
function leaderCrashScript(sim: Simulation): void {
  const crash = (): void => {
    const ldr = sim.leader();
    if (ldr && sim.time < sim.cfg.durationMs - 300) {
      sim.crash(ldr, sim.rng.chance(0.5), 'scenario: leader with its slow fsync in flight');
      sim.scheduleRestart(ldr, sim.rng.range(50, 150));
    }
    if (sim.time < sim.cfg.durationMs) sim.at(sim.rng.range(200, 400), 'crash the leader', crash);
  };
  sim.at(400, 'crash the leader', crash);
}

/** How long the woken old leader stays cut off, answering (or not) the clients aimed at it. */
const WOKEN_MS = 400;

function pausedLeaderScript(sim: Simulation): void {
  const start = (): void => {
    const old = sim.leader();
    if (!old) {
      if (sim.time > 1500) scenarioFail('no leader to pause by 1500 ms');
      sim.at(20, 'paused leader: wait for a leader', start);
      return;
    }
    const term = old.status()!.term;
    sim.pause(old);
    sim.net.isolate(old.id);
    sim.note(`SCENARIO pause and isolate ${old.id} (leader of term ${term})`);
    const commit0 = sim.invariants.maxCommitted;
    const since = sim.time;
    const wake = (): void => {
      const now = sim.leader();
      const ready = now !== null && now !== old && sim.invariants.maxCommitted >= commit0 + 3;
      if (!ready) {
        if (sim.time - since > 2000) scenarioFail(`no new leader committing while ${old.id} was paused (2000 ms)`);
        sim.at(20, 'paused leader: wait for the new leader to commit', wake);
        return;
      }
      sim.resume(old);
      sim.aimClients(old, Math.ceil(sim.cfg.clients / 2));
      sim.note(`SCENARIO ${old.id} wakes, still cut off; ${now!.id} leads; clients aimed at ${old.id}`);
      sim.at(WOKEN_MS, 'paused leader: heal', () => {
        sim.net.heal();
        sim.note('SCENARIO heal');
      });
    };
    sim.at(50, 'paused leader: wait for the new leader', wake);
  };
  sim.at(300, 'paused leader: pause the leader', start);
}

/** 3 or 5 nodes, two clients per node on 2 keys: reads and writes of the same keys, close together. */
function contended(seed: number, name: string, thinkMs: [number, number], durationMs: number): SimConfig {
  const { cfg, r } = randomized(seed, name);
  cfg.nodes = r.chance(0.7) ? 3 : 5;
  cfg.clients = cfg.nodes * 2;
  cfg.keys = 2;
  cfg.thinkMs = thinkMs;
  cfg.node.snapshotThreshold = r.pick([10, 25, 100]);
  cfg.durationMs = durationMs;
  cfg.quietMs = 1000;
  return cfg;
}

export const READ_SCENARIOS: Scenario[] = [
  {
    name: 'slow-leader-disk',
    description: "the leader's fsyncs 30x slower than the followers' (the slow disk follows the leader): followers apply and answer reads ahead of the leader, whose reads must not go back",
    configure: (seed) => contended(seed, 'slow-leader-disk', [0, 2], 2000),
    script(sim) {
      slowLeaderDiskScript(sim);
    },
  },
  {
    name: 'slow-leader-crash',
    description: "the leader's fsyncs 30x slower, and the leader of 3 crashes every 200-400 ms with its write in flight: entries answered before the leader's own write must survive",
    configure: (seed) => {
      // Three nodes: a majority is then the leader and one follower, or the two followers.
      const cfg = contended(seed, 'slow-leader-crash', [0, 2], 2500);
      cfg.nodes = 3;
      cfg.clients = 6;
      return cfg;
    },
    script(sim) {
      slowLeaderDiskScript(sim);
      leaderCrashScript(sim);
    },
  },
  {
    name: 'paused-leader-reads',
    description: 'the leader is paused and cut off, the others elect a leader and commit; it wakes still cut off with clients aimed at it: no stale read',
    configure: (seed) => contended(seed, 'paused-leader-reads', [0, 5], 2500),
    script(sim) {
      pausedLeaderScript(sim);
    },
  },
];
