// Short runs of the real `raftsnap serve` (needs a build: dist/node/main.js).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { renderReport } from '../../src/cluster/report.js';
import { tempDir } from './tmp.js';
import { runCluster, type ClusterOptions } from '../../src/cluster/runner.js';

const RUN = fileURLToPath(new URL('../../bin/run.js', import.meta.url));
const built = existsSync(fileURLToPath(new URL('../../dist/node/main.js', import.meta.url)));

function options(over: Partial<ClusterOptions>): ClusterOptions {
  const dir = tempDir('raftsnap-cluster-real-');
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
    // Clients are bound to every node: the followers answer reads themselves (ReadIndex), and the
    // report sums what each incarnation counted.
    expect(r.totals.followerReads).toBeGreaterThan(0);
    expect(r.totals.followerReads).toBe(r.nodes.reduce((a, n) => a + n.followerReads, 0));
    expect(renderReport(r, { color: false })).toMatch(new RegExp(`follower reads +│ ${r.totals.followerReads} \\(ok reads: ${r.ops.byF.read.ok}\\)`));
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
        // After the restart the cluster has lost everything; the loss shows unless the first
        // operation to complete on every key is a write (about (1/3)^keys): 5 keys make a miss rare.
        keys: 5,
        snapshotThreshold: 1_000_000,
        nodeEnv: { RAFTSNAP_UNSAFE_ACK_BEFORE_PERSIST: '1' },
      }),
    );
    expect(r.nemesis[0]!.detail.slice(8).split(',').sort()).toEqual(['n1', 'n2', 'n3']);
    expect(r.verdict).toBe('not-linearizable');
    expect(r.exitCode).toBe(1);
  });

  it('the CLI with its defaults (but --time 8): report fields, a snapshot transfer, directories the offline tools read', () => {
    const cwd = tempDir('raftsnap-cluster-cli-');
    const run = (args: string[]) => spawnSync(process.execPath, [RUN, ...args], { cwd, encoding: 'utf8' });
    const r = run(['cluster', '--time', '8', '--json']);
    if (r.status !== 0) console.log(r.stdout.slice(-3000), r.stderr.slice(-3000));
    expect(r.status).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.verdict).toBe('linearizable');
    expect(rep.config).toMatchObject({ nodes: 3, nemesis: ['partition', 'kill'], snapshotThreshold: 50, trailingLogs: 10 });
    expect(rep.nemesis.some((e: { kind: string }) => e.kind === 'partition')).toBe(true);
    expect(rep.ops.ok + rep.ops.fail + rep.ops.info).toBe(rep.ops.total);
    expect(rep.throughput).toBeGreaterThan(0);
    for (const p of ['p50', 'p95', 'p99']) expect(typeof rep.latencyMs[p]).toBe('number');
    expect(typeof rep.totals.elections).toBe('number');
    expect(rep.totals.snapshotsTaken).toBeGreaterThan(0);
    expect(rep.totals.snapshotTransfers).toBeGreaterThanOrEqual(1);
    // ...and one that completed and was installed (`snapshot_transfers_sent` counts completed transfers).
    expect(rep.totals.snapshotsInstalled).toBeGreaterThanOrEqual(1);
    for (const n of rep.nodes) {
      expect(n.maxLogEntries).toBeGreaterThan(0);
      expect(n.dataDirBytes).toBeGreaterThan(0);
    }
    // The results directory and the data directories.
    const results = readdirSync(join(cwd, 'raftsnap-results'));
    expect(results).toHaveLength(2);
    expect(results.sort()).toEqual([expect.stringMatching(/^\d{4}-/), 'latest']);
    expect(readdirSync(join(cwd, 'raftsnap-results', 'latest')).sort()).toEqual([
      'history.jsonl',
      'index.html',
      'latency-quantiles.svg',
      'latency-raw.svg',
      'messages.svg',
      'n1.log',
      'n2.log',
      'n3.log',
      'rate.svg',
      'report.json',
      'timeline.html',
    ]);
    expect(rep.files).toEqual(['latency-raw.svg', 'latency-quantiles.svg', 'rate.svg', 'timeline.html', 'messages.svg', 'index.html']);
    expect(rep.network.msgsPerOp.clients).toBeGreaterThan(1.5);
    expect(rep.network.msgsPerOp.clients).toBeLessThanOrEqual(2.1);
    expect(rep.availability.okFraction).toBeGreaterThan(0.3);
    expect(JSON.parse(readFileSync(join(cwd, 'raftsnap-results', results[0]!, 'report.json'), 'utf8')).verdict).toBe('linearizable');
    for (const id of ['n1', 'n2', 'n3']) {
      const v = run(['inspect', `raftsnap-data/${id}`, '--verify']);
      expect(v.status, v.stderr).toBe(0);
    }
    const d = run(['inspect', 'raftsnap-data/n1', '--json']);
    expect(d.status, d.stderr).toBe(0);
    expect(JSON.parse(d.stdout).recovery.error).toBeNull();
    expect(run(['snapshot', 'raftsnap-data/n1', '--out', 'n1.snap']).status).toBe(0);
    expect(run(['diff', 'n1.snap', 'raftsnap-data/n1']).status).toBe(0);
    expect([0, 1]).toContain(run(['diff', 'raftsnap-data/n1', 'raftsnap-data/n2']).status);
  });
});
