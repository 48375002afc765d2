import { describe, it } from 'vitest';
import { expectSeedPasses } from './helpers.js';

// The nemesis scenario: partitions, crashes (also inside a Ready, torn writes), full-cluster
// crashes, pauses, lossy links; random snapshot thresholds (1 = after every entry). Bigger runs:
// `npm run sim -- --seeds 1000 --scenario random`.
const SEEDS = Array.from({ length: 100 }, (_, i) => i + 1);

describe('simulation: random', () => {
  it.each(SEEDS)('seed %i', async (seed) => {
    await expectSeedPasses('random', seed);
  });
});
