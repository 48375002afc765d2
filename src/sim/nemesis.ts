/**
 * The simulator's nemesis: at random intervals one action drawn from the faults a scenario turns
 * on (partitions, crashes of one node or all, crash points at file-system calls, pauses, lossy
 * links, disk faults, clock skew), carried out through the Simulation's own fault methods.
 */
import { LOSSY, RELIABLE } from './network.js';
import type { Random } from './random.js';
import type { Simulation } from './sim.js';

export class Nemesis {
  constructor(
    private readonly sim: Simulation,
    private readonly rng: Random,
  ) {}

  /** The next action, at a random time within the configured interval (nothing when no fault is on). */
  schedule(): void {
    const n = this.sim.cfg.nemesis;
    if (!(n.partitions || n.crashes || n.crashAll || n.pauses || n.flakyLinks || n.clockSkew || n.diskFaults)) return;
    const [lo, hi] = n.interval;
    this.sim.at(lo + this.rng.next() * (hi - lo), 'nemesis', () => {
      if (!this.sim.mainPhase) return;
      this.act();
      this.schedule();
    });
  }

  /** One action, drawn from the faults the scenario turned on. */
  private act(): void {
    const n = this.sim.cfg.nemesis;
    const r = this.rng;
    const acts: string[] = [];
    if (n.partitions) acts.push('partition', 'partition', 'heal');
    if (n.crashes) acts.push('crash', 'crash');
    if (n.crashAll) acts.push('crash-all');
    if (n.pauses) acts.push('pause');
    if (n.flakyLinks) acts.push('links');
    if (n.clockSkew) acts.push('skew');
    if (n.diskFaults) acts.push('disk-fault');
    const act = r.pick(acts);
    const live = this.sim.nodes.filter((x) => x.up);
    switch (act) {
      case 'partition':
        this.sim.net.randomPartition();
        this.sim.note(`PARTITION ${this.sim.net.description}`);
        break;
      case 'heal':
        this.sim.net.heal();
        this.sim.note('HEAL');
        break;
      case 'crash': {
        if (live.length === 0) break;
        // Prefer the leader now and then: that is where the interesting crashes are.
        const ldr = this.sim.leader();
        const node = ldr && r.chance(0.5) ? ldr : r.pick(live);
        if (n.crashPoints && r.chance(n.crashPointShare ?? 0.6)) {
          // (Re)arm: an aim at a step that does not come soon is replaced.
          if (n.crashPointSteps && n.crashPointSteps.length > 0 && r.chance(0.5)) {
            const step = r.pick(n.crashPointSteps);
            const k = 1 + r.int(3);
            node.aimCrash(step, k);
            this.sim.note(`${node.id} ARM crash at ${step} call ${k}`);
            break;
          }
          const k = 1 + r.int(n.crashPointCalls ?? 40);
          node.armCrash(k);
          this.sim.note(`${node.id} ARM crash at file-system call ${node.fs.calls + k}`);
        } else {
          this.sim.crash(node, r.chance(0.5));
          this.sim.scheduleRestart(node, r.range(20, 400));
        }
        break;
      }
      case 'crash-all': {
        for (const x of live) this.sim.crash(x, r.chance(0.5));
        for (const x of this.sim.nodes) this.sim.scheduleRestart(x, r.range(10, 300));
        break;
      }
      case 'pause': {
        const cand = live.filter((x) => !x.paused);
        if (cand.length === 0) break;
        const node = r.pick(cand);
        this.sim.pause(node);
        this.sim.at(r.range(50, 600), `resume ${node.id}`, () => this.sim.resume(node));
        break;
      }
      case 'links':
        this.sim.net.link = this.sim.net.link === RELIABLE ? LOSSY : RELIABLE;
        this.sim.note(`LINKS ${this.sim.net.link === RELIABLE ? 'reliable' : 'lossy'}`);
        break;
      case 'disk-fault': {
        // On the leader half the time (it writes for every client request), else any live node.
        const ldr = this.sim.leader();
        const node = ldr && r.chance(0.5) ? ldr : r.pick(live.length > 0 ? live : this.sim.nodes);
        if (!node.up || node.fault) break;
        this.sim.injectFault(node, r.pick(['EIO', 'ENOSPC', 'EROFS'] as const), r);
        break;
      }
      case 'skew': {
        // One node's clock 3x slower or faster for a while (the leader now and then).
        const ldr = this.sim.leader();
        const node = ldr && r.chance(0.4) ? ldr : r.pick(this.sim.nodes);
        if (this.sim.clockRate(node) !== 1) break;
        this.sim.setClockRate(node, r.chance(0.5) ? 3 : 1 / 3);
        this.sim.at(r.range(200, 900), `clock ${node.id} normal`, () => this.sim.setClockRate(node, 1));
        break;
      }
    }
  }
}
