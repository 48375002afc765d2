/**
 * Scenario dup-forward-restart: forwards delivered again after the leader that executed them was
 * restarted. Before forward identities were part of the replicated state (client sessions), the
 * copies were executed again and overwrote later writes (not linearizable).
 */
import { describe, expect, it } from 'vitest';
import { runScenario } from '../../src/sim/scenarios.js';

describe('scenario dup-forward-restart', () => {
  it.each([1, 2, 3, 4, 5, 6])('seed %i', async (seed) => {
    const r = await runScenario('dup-forward-restart', seed);
    expect(r.failure).toBeNull();
    expect(r.ok).toBe(true);
  });
});
