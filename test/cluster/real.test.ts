// Short runs of the real `raftsnap serve` (needs a build: dist/node/main.js).
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCluster, type ClusterOptions } from '../../src/cluster/runner.js';

const built = existsSync(fileURLToPath(new URL('../../dist/node/main.js', import.meta.url)));

function options(over: Partial<ClusterOptions>): ClusterOptions {
  const dir = mkdtempSync(join(tmpdir(), 'raftsnap-cluster-real-'));
  return {
    nodes: 3,
    time: 6,
    rate: 80,
    concurrency: 6,
    keys: 3,
    latency: 2,
    latencyDist: 'exponential',
    nemesis: ['partition', 'kill'],
    nemesisInterval: 1,
    quiet: 1,
    dataRoot: join(dir, 'data'),
    results: join(dir, 'results'),
    snapshotThreshold: 20,
    trailingLogs: 5,
    seed: 1,
    checkBudget: 20,
    statsIntervalMs: 500,
    ...over,
  };
}

describe.skipIf(!built)('raftsnap cluster with real serve processes', () => {
  it('3 nodes, 6 s, partitions and kills: linearizable, snapshots taken', async () => {
    const r = await runCluster(options({}));
    if (process.env.SHOW_REPORT) console.log(JSON.stringify({ ...r, nodes: r.nodes.map((n) => ({ ...n, lastStats: null })) }, null, 1));
    if (r.verdict !== 'linearizable') console.log(JSON.stringify(r.check.violations, null, 1));
    expect(r.problems).toEqual([]);
    expect(r.verdict).toBe('linearizable');
    expect(r.exitCode).toBe(0);
    expect(r.ops.ok).toBeGreaterThan(50);
    expect(r.nodes.every((n) => n.statsAvailable)).toBe(true);
    expect(r.totals.snapshotsTaken).toBeGreaterThan(0);
    expect(r.nodes.some((n) => n.starts > 1)).toBe(true);
  });

  it('catches a node that acknowledges before persisting (test-only switch) when every node is killed', async () => {
    // Seed 8 makes the first fault a SIGKILL of every node; no snapshot saves the state.
    const r = await runCluster(
      options({
        nemesis: ['kill'],
        seed: 8,
        // One fault (kill at +2 s, restart at +4 s), then several seconds for reads to notice.
        time: 9,
        nemesisInterval: 2,
        quiet: 1.5,
        keys: 2,
        snapshotThreshold: 1_000_000,
        nodeEnv: { RAFTSNAP_UNSAFE_ACK_BEFORE_PERSIST: '1' },
      }),
    );
    expect(r.nemesis[0]!.detail.slice(8).split(',').sort()).toEqual(['n1', 'n2', 'n3']);
    expect(r.verdict).toBe('not-linearizable');
    expect(r.exitCode).toBe(1);
  });
});
