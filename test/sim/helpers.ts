import { expect } from 'vitest';
import { type RunOptions, replayCommand, runScenario } from '../../src/sim/scenarios.js';

/** Options of the seed suites: the storage rules exactly as src/storage has them (no bug assumed fixed). */
export const SUITE_OPTS: RunOptions = {};

export async function expectSeedPasses(scenario: string, seed: number, opts: RunOptions = SUITE_OPTS): Promise<void> {
  const r = await runScenario(scenario, seed, opts);
  const why = r.failure ? `${r.failure.invariant} at step ${r.failure.step}: ${r.failure.message}\nreplay: ${replayCommand(scenario, seed, opts)}` : '';
  expect(r.failure, why).toBeNull();
  // Neither 'not-linearizable' nor 'unknown' (no verdict within the budget is not a pass).
  expect(r.stats.linearizability).toBe('linearizable');
}
