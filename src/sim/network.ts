/**
 * The simulated network: per-message fate (drop, delay drawn from a distribution, duplicate) and
 * partitions as a set of blocked directed links, checked when a message is delivered (a message in
 * flight when a partition starts is lost). Reordering comes from the random delays (and occasional
 * long delays). Client messages are never dropped or partitioned, only delayed.
 */
import type { Random } from './random.js';

export type DelayDist =
  | { kind: 'constant'; ms: number }
  | { kind: 'uniform'; min: number; max: number }
  | { kind: 'exponential'; min: number; mean: number };

export interface LinkConfig {
  /** Probability that a node-to-node message is lost. */
  drop: number;
  /** Probability that a node-to-node message is delivered twice. */
  duplicate: number;
  /** Probability that a message is held back much longer than usual (reordering). */
  reorder: number;
  delay: DelayDist;
}

export const RELIABLE: LinkConfig = { drop: 0, duplicate: 0, reorder: 0, delay: { kind: 'uniform', min: 1, max: 5 } };
export const LOSSY: LinkConfig = { drop: 0.1, duplicate: 0.05, reorder: 0.1, delay: { kind: 'exponential', min: 1, mean: 8 } };

export function drawDelay(rng: Random, d: DelayDist): number {
  switch (d.kind) {
    case 'constant':
      return d.ms;
    case 'uniform':
      return d.min + rng.next() * (d.max - d.min);
    case 'exponential':
      return d.min + rng.exp(d.mean);
  }
}

export type PartitionShape = 'isolate-one' | 'halves' | 'majorities-ring' | 'bridge' | 'one-way';

export class SimNetwork {
  link: LinkConfig;
  clientDelay: DelayDist = { kind: 'uniform', min: 0.5, max: 3 };
  private blocked = new Set<string>();
  /** A description of the current partition (for traces). */
  description = 'none';
  readonly stats = { sent: 0, dropped: 0, duplicated: 0, partitionDrops: 0, partitions: 0 };

  constructor(
    readonly nodes: readonly string[],
    private readonly rng: Random,
    link: LinkConfig = RELIABLE,
  ) {
    this.link = link;
  }

  /** Delivery delays (ms) of one node-to-node message: [] when dropped, two for a duplicate. */
  fate(): number[] {
    this.stats.sent++;
    const l = this.link;
    if (this.rng.chance(l.drop)) {
      this.stats.dropped++;
      return [];
    }
    const one = (): number => {
      let d = drawDelay(this.rng, l.delay);
      if (this.rng.chance(l.reorder)) d += 5 + this.rng.exp(30);
      return d;
    };
    const out = [one()];
    if (this.rng.chance(l.duplicate)) {
      this.stats.duplicated++;
      out.push(one());
    }
    return out;
  }

  clientFate(): number {
    return drawDelay(this.rng, this.clientDelay);
  }

  /** May a message from `from` reach `to` now? */
  connected(from: string, to: string): boolean {
    return !this.blocked.has(from + '>' + to);
  }

  get partitioned(): boolean {
    return this.blocked.size > 0;
  }

  heal(): void {
    this.blocked.clear();
    this.description = 'none';
  }

  /** Block every link between the given groups (nodes in no group are cut off from everyone). */
  partitionGroups(groups: string[][]): void {
    this.heal();
    const groupOf = new Map<string, number>();
    groups.forEach((g, i) => g.forEach((n) => groupOf.set(n, i)));
    for (const a of this.nodes) {
      for (const b of this.nodes) {
        if (a === b) continue;
        const ga = groupOf.get(a);
        const gb = groupOf.get(b);
        if (ga === undefined || gb === undefined || ga !== gb) this.blocked.add(a + '>' + b);
      }
    }
    this.description = groups.map((g) => g.join(',')).join(' | ');
    this.stats.partitions++;
  }

  /** Cut `node` off from everyone. */
  isolate(node: string): void {
    this.partitionGroups([[node], this.nodes.filter((n) => n !== node)]);
    this.description = `isolate ${node}`;
  }

  /** A random partition of one of Jepsen's shapes. */
  randomPartition(): PartitionShape {
    const shape = this.rng.pick<PartitionShape>(['isolate-one', 'halves', 'majorities-ring', 'bridge', 'one-way']);
    const ns = this.rng.shuffle(this.nodes);
    const n = ns.length;
    switch (shape) {
      case 'isolate-one':
        this.isolate(ns[0]!);
        break;
      case 'halves': {
        const k = Math.floor(n / 2);
        this.partitionGroups([ns.slice(0, k), ns.slice(k)]);
        break;
      }
      case 'majorities-ring': {
        // Each node talks to its neighbours on a ring: everyone sees a majority (n = 3, 5), but
        // no two see the same one.
        // (With three nodes a ring is fully connected: use a line instead, the middle node a bridge.)
        this.heal();
        for (let i = 0; i < n; i++) {
          for (let j = 0; j < n; j++) {
            if (i === j) continue;
            const dist = Math.min((i - j + n) % n, (j - i + n) % n);
            if (n <= 3 ? i + j === 2 && i !== 1 : dist > 1) this.blocked.add(ns[i]! + '>' + ns[j]!);
          }
        }
        this.description = `ring ${ns.join('-')}`;
        this.stats.partitions++;
        break;
      }
      case 'bridge': {
        // Two halves joined by one node that sees both.
        const k = Math.floor(n / 2);
        const bridge = ns[0]!;
        const a = ns.slice(1, 1 + k);
        const b = ns.slice(1 + k);
        this.partitionGroups([a.concat(bridge), b]);
        for (const x of b) {
          this.blocked.delete(bridge + '>' + x);
          this.blocked.delete(x + '>' + bridge);
        }
        this.description = `bridge ${bridge}: ${a.join(',')} | ${b.join(',')}`;
        break;
      }
      case 'one-way': {
        // One node can send but not receive (or the reverse).
        this.heal();
        const x = ns[0]!;
        const inbound = this.rng.chance(0.5);
        for (const y of ns.slice(1)) this.blocked.add(inbound ? y + '>' + x : x + '>' + y);
        this.description = `one-way ${inbound ? 'into' : 'out of'} ${x} blocked`;
        this.stats.partitions++;
        break;
      }
    }
    return shape;
  }
}
