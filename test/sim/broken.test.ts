import { describe, expect, it } from 'vitest';
import { runScenario } from '../../src/sim/scenarios.js';

describe('a deliberately broken node (storage acknowledges before persisting)', () => {
  it('is caught: some seed among the first 10 fails an invariant or the linearizability check', async () => {
    const failures: string[] = [];
    for (let seed = 1; seed <= 10; seed++) {
      const r = await runScenario('random', seed, { broken: 'ack-before-persist' });
      if (!r.ok) failures.push(`${seed}: ${r.failure!.invariant}`);
    }
    expect(failures.length).toBeGreaterThan(0);
  });

  it('is caught by the full-cluster crash scenario on its first seeds', async () => {
    const r = await runScenario('crash-all-5', 1, { broken: 'ack-before-persist' });
    expect(r.ok).toBe(false);
    expect(['committed-entry-lost', 'election-safety', 'leader-completeness', 'state-machine-safety', 'linearizability', 'log-matching', 'snapshot-regressed']).toContain(r.failure!.invariant);
  });

  it('the same seeds pass with a correct node', async () => {
    for (let seed = 1; seed <= 3; seed++) {
      const r = await runScenario('crash-all-5', seed, {});
      expect(r.failure).toBeNull();
    }
  });
});
