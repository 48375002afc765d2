import { describe, expect, it } from 'vitest';
import { NO_NEMESIS, defaultConfig } from '../../src/sim/config.js';
import { Simulation } from '../../src/sim/sim.js';

describe('nemesis', () => {
  it('a configuration with disk faults as its only fault still injects them (and stays linearizable)', async () => {
    const cfg = defaultConfig(7);
    cfg.nemesis = { ...NO_NEMESIS, diskFaults: true, interval: [100, 200] };
    const r = await new Simulation(cfg).run();
    expect(r.stats.diskFaults).toBeGreaterThan(0);
    expect(r.ok).toBe(true);
  });
});
