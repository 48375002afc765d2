/**
 * Clock-rate skew: a node's timers (the driver's tick from NodeHost.every, a background snapshot's
 * sleep) run at its clock's rate; the nemesis skews clocks in `random`, and scenario `clock-skew`
 * runs its episodes (its seeds are in seeds-lab.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { runScenario } from '../../src/sim/scenarios.js';
import { defaultConfig } from '../../src/sim/config.js';
import { Simulation } from '../../src/sim/sim.js';

describe('clock-rate skew', () => {
  it("a node's timers run 3x slower or faster while its clock is skewed, at the normal rate again after", async () => {
    const cfg = defaultConfig(1, 'clock-unit');
    cfg.clients = 0;
    cfg.durationMs = 1300;
    cfg.quietMs = 0;
    const sim = new Simulation(cfg);
    const counts = { slow: [0, 0], fast: [0, 0], normal: [0, 0] };
    let phase = 0;
    let slept = -1;
    await sim.run((s) => {
      const [a, b, c] = s.nodes;
      s.every(a!, 10, () => counts.slow[phase]!++);
      s.every(b!, 10, () => counts.fast[phase]!++);
      s.every(c!, 10, () => counts.normal[phase]!++);
      s.at(100, 'skew', () => {
        s.setClockRate(a!, 3);
        s.setClockRate(b!, 1 / 3);
        expect(s.clockRate(a!)).toBe(3);
        const t0 = s.time;
        void s.sleep(a!, 100).then(() => {
          slept = s.time - t0;
        });
      });
      s.at(700, 'normal again', () => {
        phase = 1;
        s.setClockRate(a!, 1);
        s.setClockRate(b!, 1);
      });
    });
    // 600 ms skewed: 10 ms ticks are 30 ms apart on the slow node, 3.3 ms on the fast one.
    expect(counts.normal[0]).toBeGreaterThanOrEqual(69);
    expect(counts.normal[0]).toBeLessThanOrEqual(71);
    expect(counts.slow[0]).toBeGreaterThanOrEqual(10 + 19);
    expect(counts.slow[0]).toBeLessThanOrEqual(10 + 21);
    expect(counts.fast[0]).toBeGreaterThanOrEqual(10 + 179);
    expect(counts.fast[0]).toBeLessThanOrEqual(10 + 181);
    // 600 ms at the normal rate again.
    for (const k of ['slow', 'fast', 'normal'] as const) {
      expect(counts[k][1]).toBeGreaterThanOrEqual(59);
      expect(counts[k][1]).toBeLessThanOrEqual(61);
    }
    expect(slept).toBe(300);
    expect(sim.counters.clockSkews).toBe(2);
  });

  it('the nemesis of scenario random skews clocks, and such a run passes', async () => {
    let skewed = 0;
    for (let seed = 1; seed <= 10 && skewed === 0; seed++) {
      const r = await runScenario('random', seed);
      expect(r.failure).toBeNull();
      skewed = r.stats.clockSkews;
    }
    expect(skewed).toBeGreaterThan(0);
  });

  it('scenario clock-skew runs its five episodes and skews six clocks', async () => {
    const r = await runScenario('clock-skew', 1, { traceKeep: 100_000 });
    expect(r.failure).toBeNull();
    expect(r.stats.clockSkews).toBe(6);
    expect(r.trace.filter((l) => l.includes('SCENARIO episode'))).toHaveLength(5);
    expect(r.trace.some((l) => / leads \d+ ms after the crash/.test(l))).toBe(true);
  });
});
