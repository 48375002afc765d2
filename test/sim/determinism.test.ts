import { describe, expect, it } from 'vitest';
import { runScenario } from '../../src/sim/scenarios.js';

describe('determinism', () => {
  it('the same seed replays the same run (identical trace hash, history and stats)', async () => {
    for (const [scenario, seed] of [['random', 1], ['lagging-restart', 3]] as const) {
      const a = await runScenario(scenario, seed, {});
      const b = await runScenario(scenario, seed, {});
      expect(b.traceHash).toBe(a.traceHash);
      expect(b.stats).toEqual(a.stats);
      expect(b.steps).toBe(a.steps);
      expect(a.stats.ops).toBeGreaterThan(50);
    }
  });

  it('different seeds take different runs', async () => {
    const a = await runScenario('random', 1, {});
    const b = await runScenario('random', 2, {});
    expect(a.traceHash).not.toBe(b.traceHash);
  });

  it('a trace with kept lines hashes the same as one without', async () => {
    const a = await runScenario('crash-all-5', 4, { traceKeep: 50 });
    expect(a.trace.length).toBeGreaterThan(0);
    expect(a.trace.length).toBeLessThanOrEqual(50);
  });
});
