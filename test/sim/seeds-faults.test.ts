/**
 * The storage-fault scenarios (src/sim/scenarios-faults.ts) over their seeds, with what they must
 * have exercised: crash points at every storage step, disk faults that stopped a leader and a
 * follower, control messages refused, an init with other members refused.
 */
import { describe, expect, it } from 'vitest';
import { runScenario } from '../../src/sim/scenarios.js';
import { STORAGE_STEPS } from '../../src/sim/scenarios-faults.js';
import { expectSeedPasses } from './helpers.js';

const SEEDS = Array.from({ length: 15 }, (_, i) => i + 1);

describe('simulation: crash-storage', () => {
  it('crash points land at every storage step over seeds 1-30, and every seed passes', async () => {
    const steps: Record<string, number> = {};
    const failed: string[] = [];
    for (let seed = 1; seed <= 30; seed++) {
      const r = await runScenario('crash-storage', seed);
      if (r.failure || r.stats.linearizability !== 'linearizable') failed.push(`${seed}: ${r.failure?.invariant ?? r.stats.linearizability}: ${r.failure?.message ?? ''}`);
      for (const [k, v] of Object.entries(r.stats.crashSteps)) steps[k] = (steps[k] ?? 0) + v;
    }
    expect(failed).toEqual([]);
    for (const s of STORAGE_STEPS) expect(steps[s] ?? 0, `crash points at ${s} (${JSON.stringify(steps)})`).toBeGreaterThan(0);
  });
});

describe('simulation: disk-fault', () => {
  // Seed s puts EIO / ENOSPC / EROFS (s mod 3) on the leader and the next one on a follower.
  it.each(SEEDS.slice(0, 12))('seed %i: the leader and then a follower stop on their disk fault, the cluster goes on', async (seed) => {
    const r = await runScenario('disk-fault', seed);
    expect(r.failure, `${r.failure?.invariant}: ${r.failure?.message}`).toBeNull();
    expect(r.stats.linearizability).toBe('linearizable');
    expect(r.stats.diskFaultStops).toBeGreaterThanOrEqual(2);
  });

  it('seed 4 (a follower whose snapshot save hit EROFS relayed an answer before it stopped; test/node/fail-stop-late.test.ts)', async () => {
    await expectSeedPasses('disk-fault', 4);
  });
});

describe('simulation: random, a disk fault, a restart without a reboot, then a crash', () => {
  it('seed 89: n1 restarted after an fsync EIO (page cache kept) and a later crash left a hole in its WAL (test/storage/fsyncgate-restart.test.ts)', async () => {
    await expectSeedPasses('random', 89);
  });
});

for (const scenario of ['control-messages', 'membership-restart']) {
  describe(`simulation: ${scenario}`, () => {
    it.each(SEEDS.slice(0, 8))('seed %i', async (seed) => {
      await expectSeedPasses(scenario, seed);
    });
  });
}
