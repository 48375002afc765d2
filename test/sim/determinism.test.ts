import { execFileSync } from 'node:child_process';
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
    const b = await runScenario('crash-all-5', 4, {});
    expect(b.trace).toEqual([]);
    expect(a.traceHash).toBe(b.traceHash);
    expect(a.steps).toBe(b.steps);
  });

  it('a replay in another process takes the same run (temporary file names do not carry the simulator\'s pid)', async () => {
    // random seed 3 stops a node on a full disk while it writes a WAL segment's temporary file, whose
    // name is in the trace; the names once carried process.pid, so a replay hashed differently.
    const here = await runScenario('random', 3, { traceKeep: 100000 });
    expect(here.trace.some((l) => l.includes('.tmp-'))).toBe(true);
    const out = execFileSync(process.execPath, ['dist/sim/cli.js', '--seed', '3', '--scenario', 'random'], { encoding: 'utf8' });
    const line = out.split('\n').find((l) => l.startsWith('{'));
    expect(line).toBeDefined();
    expect((JSON.parse(line!) as { traceHash: string }).traceHash).toBe(here.traceHash);
  });
});
