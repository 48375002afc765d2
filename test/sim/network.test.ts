import { describe, expect, it } from 'vitest';
import { LOSSY, RELIABLE, SimNetwork } from '../../src/sim/network.js';
import { EventQueue } from '../../src/sim/queue.js';
import { Random } from '../../src/sim/random.js';

const nodes = ['n1', 'n2', 'n3', 'n4', 'n5'];

describe('Random and EventQueue', () => {
  it('the same seed gives the same stream; different seeds differ', () => {
    const a = new Random(7);
    const b = new Random(7);
    const c = new Random(8);
    const xs = Array.from({ length: 50 }, () => a.nextU32());
    expect(Array.from({ length: 50 }, () => b.nextU32())).toEqual(xs);
    expect(Array.from({ length: 50 }, () => c.nextU32())).not.toEqual(xs);
    for (let i = 0; i < 1000; i++) {
      const x = a.next();
      expect(x >= 0 && x < 1).toBe(true);
    }
  });

  it('orders events by time, then by scheduling order', () => {
    const q = new EventQueue<string>();
    q.push(5, 'a');
    q.push(1, 'b');
    q.push(5, 'c');
    q.push(1, 'd');
    q.push(3, 'e');
    const out: string[] = [];
    for (let x = q.pop(); x; x = q.pop()) out.push(x.ev);
    expect(out).toEqual(['b', 'd', 'e', 'a', 'c']);
  });
});

describe('SimNetwork', () => {
  it('a reliable network delivers every message once, with delays in range', () => {
    const net = new SimNetwork(nodes, new Random(1), RELIABLE);
    for (let i = 0; i < 500; i++) {
      const f = net.fate();
      expect(f).toHaveLength(1);
      expect(f[0]!).toBeGreaterThanOrEqual(1);
      expect(f[0]!).toBeLessThanOrEqual(5);
    }
  });

  it('a lossy network drops, duplicates and reorders at about the configured rates', () => {
    const net = new SimNetwork(nodes, new Random(2), LOSSY);
    let dropped = 0;
    let dup = 0;
    let late = 0;
    const n = 5000;
    for (let i = 0; i < n; i++) {
      const f = net.fate();
      if (f.length === 0) dropped++;
      if (f.length === 2) dup++;
      if (f.some((d) => d > 60)) late++;
    }
    expect(dropped / n).toBeGreaterThan(0.07);
    expect(dropped / n).toBeLessThan(0.13);
    expect(dup / n).toBeGreaterThan(0.03);
    expect(late).toBeGreaterThan(0);
  });

  it('partitions block links between groups; heal restores them', () => {
    const net = new SimNetwork(nodes, new Random(3));
    net.partitionGroups([['n1', 'n2'], ['n3', 'n4', 'n5']]);
    expect(net.connected('n1', 'n2')).toBe(true);
    expect(net.connected('n1', 'n3')).toBe(false);
    expect(net.connected('n4', 'n2')).toBe(false);
    expect(net.connected('n3', 'n5')).toBe(true);
    net.heal();
    expect(net.connected('n1', 'n3')).toBe(true);
    net.isolate('n4');
    expect(nodes.filter((x) => x !== 'n4').every((x) => !net.connected(x, 'n4') && !net.connected('n4', x))).toBe(true);
  });

  it('random partitions of every shape leave each node connected to itself only by choice of shape', () => {
    const net = new SimNetwork(nodes, new Random(4));
    const shapes = new Set<string>();
    for (let i = 0; i < 200; i++) {
      shapes.add(net.randomPartition());
      expect(net.partitioned).toBe(true);
      if (net.description.startsWith('ring')) {
        // Majorities ring: every node reaches exactly a majority (itself and two neighbours).
        for (const a of nodes) expect(nodes.filter((b) => b !== a && net.connected(a, b))).toHaveLength(2);
      }
    }
    expect(shapes.size).toBe(5);
  });
});
