/**
 * Automatic snapshots by count take turns: node r of N (its place among the sorted ids) is due at
 * the log indexes k * T + floor(r * T / N), at least T / 2 entries after the last snapshot (or the
 * start), so the nodes of a cluster, which apply the same indexes, never all encode at once.
 */
import { describe, expect, it } from 'vitest';
import { Snapshotter } from '../../src/node/snapshotter.js';
import { defaultOptions, type ServeOptions } from '../../src/node/options.js';
import { silentLogger } from '../../src/node/log.js';

function dueIndexes(nodeId: string, nodeIds: string[], opts: Partial<ServeOptions>, until: number, delay = 0, from = 0): number[] {
  const host = { nodeId, nodeIds } as never;
  const s = new Snapshotter(host, { ...defaultOptions(), snapshotThresholdBytes: 0, ...opts }, () => 0.99, silentLogger);
  const taken: number[] = [];
  let dueSince: number | null = null;
  for (let i = from + 1; i <= until; i++) {
    s.noteApplied({ index: i, term: 1, data: { op: 'write', key: 1, value: i } } as never);
    if (dueSince === null && s.due()) dueSince = i;
    // The snapshot starts `delay` entries after it is due (a write still running, say), then resets the count.
    if (dueSince !== null && i >= dueSince + delay) {
      taken.push(i);
      s.reset();
      dueSince = null;
    }
  }
  return taken;
}

describe('automatic snapshots by count take turns', () => {
  it('three nodes of threshold 30 are due at indexes a third of the threshold apart, whatever the jitter', () => {
    const ids = ['n2', 'n3', 'n1'];
    for (const jitter of [0, 0.2, 1]) {
      expect(dueIndexes('n1', ids, { snapshotThreshold: 30, snapshotJitter: jitter }, 100)).toEqual([30, 60, 90]);
      expect(dueIndexes('n2', ids, { snapshotThreshold: 30, snapshotJitter: jitter }, 100)).toEqual([40, 70, 100]);
      expect(dueIndexes('n3', ids, { snapshotThreshold: 30, snapshotJitter: jitter }, 100)).toEqual([20, 50, 80]);
    }
  });

  it('a single node snapshots every threshold entries, as before', () => {
    expect(dueIndexes('n1', ['n1'], { snapshotThreshold: 3, snapshotJitter: 0 }, 10)).toEqual([3, 6, 9]);
    expect(dueIndexes('n1', ['n1'], { snapshotThreshold: 1, snapshotJitter: 0 }, 4)).toEqual([1, 2, 3, 4]);
  });

  it('a snapshot started late keeps the node on its turn, at least half a threshold after it', () => {
    // Due at 40, taken at 47: the next turn, 70, is 23 entries later (>= 15).
    expect(dueIndexes('n2', ['n1', 'n2', 'n3'], { snapshotThreshold: 30, snapshotJitter: 0 }, 100, 7)).toEqual([47, 77]);
    // Taken at 40 + 20 = 60: 70 is only 10 later, so the turn after, 100.
    expect(dueIndexes('n2', ['n1', 'n2', 'n3'], { snapshotThreshold: 30, snapshotJitter: 0 }, 130, 20)).toEqual([60, 120]);
  });

  it('counting starts where the node starts (a restart at index 55): its first turn at least half a threshold later', () => {
    expect(dueIndexes('n1', ['n1', 'n2', 'n3'], { snapshotThreshold: 30, snapshotJitter: 0 }, 130, 0, 55)).toEqual([90, 120]);
    expect(dueIndexes('n3', ['n1', 'n2', 'n3'], { snapshotThreshold: 30, snapshotJitter: 0 }, 130, 0, 55)).toEqual([80, 110]);
  });

  it('the byte threshold is not on turns: due once the commands applied total it (times the jitter factor)', () => {
    const host = { nodeId: 'n1', nodeIds: ['n1', 'n2', 'n3'] } as never;
    const s = new Snapshotter(host, { ...defaultOptions(), snapshotThreshold: 0, snapshotThresholdBytes: 1000, snapshotJitter: 0 }, () => 0.5, silentLogger);
    let i = 0;
    while (!s.due()) s.noteApplied({ index: ++i, term: 1, data: { op: 'write', key: 1, value: 'x'.repeat(80) } } as never);
    expect(i).toBeGreaterThan(5);
    expect(i).toBeLessThan(15);
  });
});

describe('automatic snapshots take turns in a cluster of real processes', () => {
  it("three serve processes snapshot at indexes on their own turns, never at the same ones", async () => {
    const { Cluster, tmpDir } = await import('./helpers.js');
    const { join } = await import('node:path');
    const root = tmpDir('raftsnap-turns-');
    const ids = ['n3', 'n1', 'n2'];
    const c = new Cluster(ids, (id) => ['--data-dir', join(root, id), '--snapshot-threshold', '30', '--snapshot-threshold-bytes', '0', '--trailing-logs', '5', '--log-level', 'debug']);
    try {
      await c.start();
      const leader = await c.leader();
      for (let v = 0; v < 150; v++) expect((await c.request(leader, { type: 'write', key: v % 7, value: v }, 5000)).body.type).toBe('write_ok');
      // Let the followers apply the last commit (the next heartbeat) and finish their snapshots.
      await new Promise((r) => setTimeout(r, 1500));
      const taken = (id: string): number[] => [...c.stderrOf(id).matchAll(/: snapshot (\d+)\/\d+ written/g)].map((m) => Number(m[1]));
      const all = new Map<number, string>();
      for (const [rank, id] of ['n1', 'n2', 'n3'].entries()) {
        const idx = taken(id);
        expect(idx.length, `${id}: ${c.stderrOf(id).slice(-500)}`).toBeGreaterThanOrEqual(3);
        for (const i of idx) {
          // Due at 30k + 10 * rank; taken then, or a little later if a write of its entries still ran.
          const past = (((i - 10 * rank) % 30) + 30) % 30;
          expect(past, `${id} snapshot at ${i}`).toBeLessThan(10);
          expect(all.has(i), `${id} and ${all.get(i)} both at ${i}`).toBe(false);
          all.set(i, id);
        }
      }
    } finally {
      for (const id of ids) await c.kill9(id).catch(() => {});
    }
  }, 60_000);
});
