/** A small seeded random source for the runner's choices (workload, nemesis, latency). */
export class Random {
  private s: number;

  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }

  shuffle<T>(xs: readonly T[]): T[] {
    const a = xs.slice();
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  }

  /** A non-empty random subset. */
  subset<T>(xs: readonly T[]): T[] {
    const k = 1 + this.int(xs.length);
    return this.shuffle(xs).slice(0, k);
  }
}

export type LatencyDist = 'constant' | 'uniform' | 'exponential';
export const LATENCY_DISTS: readonly LatencyDist[] = ['constant', 'uniform', 'exponential'];

/** Returns a sampler of per-message delays (ms) with the given mean. */
export function latencySampler(dist: LatencyDist, mean: number, rnd: Random): () => number {
  if (mean <= 0) return () => 0;
  switch (dist) {
    case 'constant':
      return () => mean;
    case 'uniform':
      return () => rnd.next() * 2 * mean;
    case 'exponential':
      return () => -mean * Math.log(1 - rnd.next());
  }
}
