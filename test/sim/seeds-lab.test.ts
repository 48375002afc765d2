import { describe, it } from 'vitest';
import { expectSeedPasses } from './helpers.js';

// The classic lab's snapshot tests, as scenarios (src/sim/scenarios.ts).
const SCENARIOS = ['healthy-trim', 'install-snapshot', 'install-snapshot-lossy', 'lagging-restart', 'crash-all-5', 'restart-single-ops', 'clock-skew'];
const SEEDS = Array.from({ length: 30 }, (_, i) => i + 1);

for (const scenario of SCENARIOS) {
  describe(`simulation: ${scenario}`, () => {
    it.each(SEEDS)('seed %i', async (seed) => {
      await expectSeedPasses(scenario, seed);
    });
  });
}
