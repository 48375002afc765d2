/**
 * Mutation check: deliberately broken nodes must make the simulator fail within the default seed
 * count (`npm run sim` runs 20 seeds of every scenario). Node n1 is broken:
 *  - ack-before-persist: the driver skips the store (ServerEnv.unsafeAckBeforePersist);
 *  - no-wal-fsync: the WAL fsync before an acknowledgement is left out (broken-fs.ts);
 *  - no-snapshot-dir-fsync: the directory fsync after a snapshot rename is left out (broken-fs.ts).
 */
import { describe, expect, it } from 'vitest';
import { runScenario } from '../../src/sim/scenarios.js';
import type { Broken } from '../../src/sim/config.js';

/** The first failure among seeds 1..n of `scenario` with `broken` (as "seed: invariant"), if any. */
async function failures(scenario: string, n: number, broken: Broken): Promise<string[]> {
  for (let seed = 1; seed <= n; seed++) {
    const r = await runScenario(scenario, seed, { broken });
    if (!r.ok) return [`${seed}: ${r.failure!.invariant}`];
  }
  return [];
}

const SAFETY = ['committed-entry-lost', 'hard-state-lost', 'election-safety', 'leader-completeness', 'state-machine-safety', 'linearizability', 'log-matching', 'snapshot-regressed', 'recovery'];

describe('a deliberately broken node (storage acknowledges before persisting)', () => {
  it('is caught: some seed among the first 10 fails an invariant or the linearizability check', async () => {
    expect((await failures('random', 10, 'ack-before-persist')).length).toBeGreaterThan(0);
  });

  it('is caught by the full-cluster crash scenario on its first seeds', async () => {
    const r = await runScenario('crash-all-5', 1, { broken: 'ack-before-persist' });
    expect(r.ok).toBe(false);
    expect(SAFETY).toContain(r.failure!.invariant);
  });

  it('the same seeds pass with a correct node', async () => {
    for (let seed = 1; seed <= 3; seed++) {
      const r = await runScenario('crash-all-5', seed, {});
      expect(r.failure).toBeNull();
    }
  });
});

describe('broken storage: the WAL fsync before an acknowledgement left out (no-wal-fsync)', () => {
  it('is caught within the default 20 seeds of random and of crash-all-5', async () => {
    for (const scenario of ['random', 'crash-all-5']) {
      const f = await failures(scenario, 20, 'no-wal-fsync');
      expect(f.length, scenario).toBeGreaterThan(0);
      expect(SAFETY).toContain(f[0]!.split(': ')[1]);
    }
  });
});

describe('broken storage: the directory fsync after a snapshot rename left out (no-snapshot-dir-fsync)', () => {
  it('is caught within the default 20 seeds of crash-storage, and of random', async () => {
    for (const scenario of ['crash-storage', 'random']) {
      const f = await failures(scenario, 20, 'no-snapshot-dir-fsync');
      expect(f.length, scenario).toBeGreaterThan(0);
      // The snapshot the WAL records is gone: an older one comes back, or none and the log it
      // covered was already deleted.
      expect(['snapshot-regressed', 'recovery', 'committed-entry-lost']).toContain(f[0]!.split(': ')[1]);
    }
  });

  it('the same seeds pass with correct storage', async () => {
    for (const seed of [10, 17]) {
      for (const scenario of ['crash-storage', 'random']) {
        const r = await runScenario(scenario, seed, {});
        expect(r.failure, `${scenario} ${seed}`).toBeNull();
      }
    }
  });
});
