import { describe, expect, it } from 'vitest';
import { Nemesis, partitionGrudges } from '../../src/cluster/nemesis.js';
import { latencySampler, Random } from '../../src/cluster/random.js';

const hears = (g: Map<string, Set<string>>, dest: string, src: string): boolean => !g.get(dest)?.has(src);

describe('partition shapes', () => {
  const five = ['n1', 'n2', 'n3', 'n4', 'n5'];

  it('one cuts one node off in both directions', () => {
    const { grudges } = partitionGrudges('one', five, new Random(1));
    const isolated = five.filter((n) => five.every((m) => m === n || (!hears(grudges, n, m) && !hears(grudges, m, n))));
    expect(isolated).toHaveLength(1);
    const rest = five.filter((n) => n !== isolated[0]);
    for (const a of rest) for (const b of rest) expect(hears(grudges, a, b)).toBe(true);
  });

  it('majority splits 5 nodes into 2 and 3, 3 nodes into 1 and 2', () => {
    const { grudges } = partitionGrudges('majority', five, new Random(2));
    const side = (n: string): string[] => five.filter((m) => hears(grudges, n, m));
    const sizes = five.map((n) => side(n).length).sort();
    expect(sizes).toEqual([2, 2, 3, 3, 3]);
    const three = ['n1', 'n2', 'n3'];
    const g3 = partitionGrudges('majority', three, new Random(2)).grudges;
    expect(three.map((n) => three.filter((m) => hears(g3, n, m)).length).sort()).toEqual([1, 2, 2]);
  });

  it('minority-third cuts off fewer than a third of the nodes (none of 3, 1 of 5, 2 of 7), cleanly', () => {
    for (const [n, k] of [[3, 0], [4, 1], [5, 1], [7, 2], [9, 2], [10, 3]] as const) {
      const nodes = Array.from({ length: n }, (_, i) => `n${i + 1}`);
      const { grudges, detail } = partitionGrudges('minority-third', nodes, new Random(n));
      const side = (x: string): string[] => nodes.filter((m) => hears(grudges, x, m));
      const sizes = nodes.map((x) => side(x).length);
      expect(sizes.filter((s) => s === k).length, `${n} nodes`).toBe(k);
      expect(sizes.filter((s) => s === n - k).length).toBe(n - k);
      if (k === 0) expect(detail).toMatch(/no node cut off/);
      // clean: two sides, everyone hears all of its own side
      for (const a of nodes) for (const b of side(a)) expect(hears(grudges, b, a)).toBe(true);
    }
  });

  it('majorities-ring: every node hears a majority, no two the same one', () => {
    for (const nodes of [five, ['n1', 'n2', 'n3'], ['a', 'b', 'c', 'd', 'e', 'f', 'g']]) {
      const { grudges } = partitionGrudges('majorities-ring', nodes, new Random(3));
      const views = nodes.map((n) => nodes.filter((m) => hears(grudges, n, m)).sort().join(','));
      for (const n of nodes) expect(nodes.filter((m) => hears(grudges, n, m)).length).toBe(Math.floor(nodes.length / 2) + 1);
      expect(new Set(views).size).toBe(nodes.length);
    }
  });
});

describe('latency distributions', () => {
  it('have the requested mean', () => {
    for (const dist of ['constant', 'uniform', 'exponential'] as const) {
      const s = latencySampler(dist, 20, new Random(4));
      let sum = 0;
      for (let i = 0; i < 20000; i++) {
        const d = s();
        expect(d).toBeGreaterThanOrEqual(0);
        sum += d;
      }
      expect(Math.abs(sum / 20000 - 20)).toBeLessThan(1);
    }
    expect(latencySampler('exponential', 0, new Random(1))()).toBe(0);
  });
});

describe('the first fault', () => {
  it('isolates a follower when the runner knows the roles, so that the leader keeps committing past it', async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const isolated: string[] = [];
      let t = 0;
      const nem = new Nemesis(
        ['partition'],
        1,
        new Random(seed),
        {
          nodeIds: ['n1', 'n2', 'n3'],
          followers: () => ['n3'],
          partition: (g) => {
            for (const [dest, srcs] of g) if (srcs.size === 2) isolated.push(dest);
          },
          healNetwork: () => {},
          kill: () => {},
          restart: async () => {},
          pause: () => {},
          resume: () => {},
        },
        () => (t += 1),
      );
      await nem.run(4);
      expect(isolated[0]).toBe('n3');
    }
  });
});
