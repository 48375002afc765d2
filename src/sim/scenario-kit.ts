/**
 * What scenario definitions share (scenarios.ts, scenarios-faults.ts): the Scenario shape, the
 * failure of a scenario goal, the seed's randomized base configuration, a follower picker.
 */
import { InvariantViolation } from './invariants.js';
import type { SimNode } from './node.js';
import { Random } from './random.js';
import { type SimConfig, defaultConfig } from './config.js';
import type { Simulation } from './sim.js';

export interface Scenario {
  name: string;
  description: string;
  configure(seed: number): SimConfig;
  script?(sim: Simulation): void;
}

/** A missed scenario goal (liveness or coverage): the run fails with invariant "scenario". */
export function scenarioFail(message: string): never {
  throw new InvariantViolation('scenario', message);
}

/** A follower (not the current leader), chosen by the simulation's random source. */
export function pickFollower(sim: Simulation): SimNode {
  const ldr = sim.leader();
  const cands = sim.nodes.filter((n) => n.up && n !== ldr);
  return sim.rng.pick(cands.length > 0 ? cands : sim.nodes);
}

/** The default configuration with the core's and the driver's knobs drawn from the seed. */
export function randomized(seed: number, name: string): { cfg: SimConfig; r: Random } {
  const r = new Random(seed ^ 0x5eed);
  const cfg = defaultConfig(seed, name);
  cfg.node.preVote = r.chance(0.7);
  cfg.node.checkQuorum = r.chance(0.7);
  cfg.node.maxEntriesPerAppend = r.pick([1, 4, 16]);
  cfg.node.maxInflight = r.pick([1, 4, 16]);
  cfg.node.snapshotChunkSize = r.pick([64, 256, 4096]);
  cfg.node.trailingLogs = r.pick([0, 1, 3, 8]);
  cfg.node.snapshotDelay = r.chance(0.5) ? [0, 0] : [5, 60];
  return { cfg, r };
}
