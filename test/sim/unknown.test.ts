/**
 * A linearizability check that runs out of its budget gives no verdict, and no verdict is not a
 * pass: the run fails (`linearizability-unknown`), `npm run sim` counts it as unknown and exits 2
 * unless a definite failure (exit 1) was found too.
 */
import { describe, expect, it } from 'vitest';
import type { HistoryEvent } from '../../src/check/index.js';
import { exitStatus } from '../../src/sim/cli.js';
import { findScenario } from '../../src/sim/scenarios.js';
import { LIN_UNKNOWN } from '../../src/sim/config.js';
import { Simulation } from '../../src/sim/sim.js';
import { expectSeedPasses } from './helpers.js';

/**
 * Twelve concurrent indeterminate writes, twelve concurrent reads that each saw one of them, then a
 * read of a value never written: the search needs far more than the 4096 steps after which it
 * first looks at its deadline, so a zero budget leaves the key undecided.
 */
function hardHistory(t: number): HistoryEvent[] {
  const h: HistoryEvent[] = [];
  const ev = (type: HistoryEvent['type'], process: number, f: 'read' | 'write', value: number | null, time: number): HistoryEvent =>
    ({ type, process, f, key: 'hard', value, time }) as HistoryEvent;
  for (let i = 1; i <= 12; i++) h.push(ev('invoke', 10_000 + i, 'write', i, t), ev('invoke', 20_000 + i, 'read', null, t));
  for (let i = 1; i <= 12; i++) h.push(ev('info', 10_000 + i, 'write', i, t + 1), ev('ok', 20_000 + i, 'read', i, t + 1));
  h.push(ev('invoke', 30_000, 'read', null, t + 2), ev('ok', 30_000, 'read', 99, t + 3));
  return h;
}

describe('linearizability check without a verdict', () => {
  it('fails the run as linearizability-unknown', async () => {
    const cfg = findScenario('healthy-trim').configure(1);
    cfg.checkBudgetMs = 0;
    const sim = new Simulation(cfg);
    const r = await sim.run((s) => {
      s.endChecks.push(() => {
        s.history.push(...hardHistory(s.time));
      });
    });
    expect(r.stats.linearizability).toBe('unknown');
    expect(r.ok).toBe(false);
    expect(r.failure!.invariant).toBe(LIN_UNKNOWN);
    expect(r.failure!.message).toMatch(/did not finish within its 0 ms budget .*key "hard" undecided/);
  });

  it('without the hard key the same seed passes', async () => {
    await expectSeedPasses('healthy-trim', 1);
  });

  it('npm run sim exits 0 when all passed, 2 when the only failures are unknown, 1 on any definite failure', () => {
    const unknown = { invariant: LIN_UNKNOWN };
    const broken = { invariant: 'election-safety' };
    expect(exitStatus([])).toBe(0);
    expect(exitStatus([null, null])).toBe(0);
    expect(exitStatus([unknown])).toBe(2);
    expect(exitStatus([unknown, broken])).toBe(1);
    expect(exitStatus([broken])).toBe(1);
  });
});
