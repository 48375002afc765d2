// `raftsnap cluster --bin`: nodes that are not raftsnap's, written in Python for these tests
// (test/fixtures/lin-kv-*.py), started as Maelstrom's --bin starts them.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tempDir } from './tmp.js';
import { runCluster, type ClusterOptions } from '../../src/cluster/runner.js';

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
const LEADER = fixture('lin-kv-leader.py');
const LOCAL_READS = fixture('lin-kv-local-reads.py');
const RUN = fileURLToPath(new URL('../../bin/run.js', import.meta.url));
const python = spawnSync('python3', ['--version']).status === 0;
const built = existsSync(fileURLToPath(new URL('../../dist/commands/cluster.js', import.meta.url)));

function options(over: Partial<ClusterOptions>): ClusterOptions {
  const dir = tempDir('raftsnap-cluster-bin-');
  return {
    nodes: 3,
    time: 3,
    rate: 80,
    concurrency: 6,
    keys: 3,
    latency: 2,
    latencyDist: 'exponential',
    nemesis: ['partition'],
    nemesisInterval: 0.5,
    quiet: 0.5,
    dataRoot: join(dir, 'data'),
    results: join(dir, 'results'),
    seed: 3,
    checkBudget: 20,
    bin: LEADER,
    ...over,
  };
}

describe.skipIf(!python)('raftsnap cluster --bin (foreign nodes in Python)', () => {
  it('a single-leader node passes under partitions; it runs with exactly the given arguments in the shared working directory', async () => {
    const o = options({ time: 4, binArgs: ['--durable'] });
    const r = await runCluster(o);
    if (r.verdict !== 'linearizable') console.log(JSON.stringify(r.check.violations, null, 1));
    expect(r.problems).toEqual([]);
    expect(r.verdict).toBe('linearizable');
    expect(r.exitCode).toBe(0);
    expect(r.ops.ok).toBeGreaterThan(50);
    expect(r.nemesis.filter((e) => e.kind === 'partition').length).toBeGreaterThanOrEqual(2);
    // Cut off from the leader, a node answers timeouts: indeterminate writes, failed reads.
    expect(r.ops.info + r.ops.fail).toBeGreaterThan(0);
    expect(r.nodeStats).toBe(false);
    expect(r.warnings).toEqual([]);
    expect(r.nodeProgram).toBe(`${LEADER} --durable`);
    const shared = join(o.dataRoot, 'shared');
    expect(readFileSync(join(o.results!, 'n2.log'), 'utf8')).toContain(`lin-kv-leader started (durable=True) in ${shared}`);
    // The leader (first of init's node_ids) kept its state in the shared directory.
    expect(existsSync(join(shared, 'n1.state.json'))).toBe(true);
  });

  it('kill and restart work for any binary: a durable leader passes, one that keeps its state in memory is caught', async () => {
    // Seed 8: the first fault kills every node (see real.test.ts).
    const kill = { nemesis: ['kill' as const], seed: 8, time: 5, nemesisInterval: 1.5, quiet: 1.5, keys: 5 };
    const durable = await runCluster(options({ ...kill, binArgs: ['--durable'] }));
    expect(durable.nemesis[0]!.detail).toMatch(/^SIGKILL .*n1/);
    expect(durable.nodes.every((n) => n.starts === 2)).toBe(true);
    expect(durable.problems).toEqual([]);
    expect(durable.verdict).toBe('linearizable');
    const forgetful = await runCluster(options(kill));
    expect(forgetful.verdict).toBe('not-linearizable');
    expect(forgetful.exitCode).toBe(1);
  });

  it.skipIf(!built)('the CLI catches a node that answers reads from local state: not linearizable, exit 1', () => {
    const cwd = tempDir('raftsnap-cluster-bin-cli-');
    const r = spawnSync(
      process.execPath,
      [RUN, 'cluster', '--bin', LOCAL_READS, '--time', '3', '--keys', '2', '--nemesis', 'none', '--seed', '5', '--json'],
      { cwd, encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(1);
    const rep = JSON.parse(r.stdout);
    expect(rep.verdict).toBe('not-linearizable');
    expect(rep.check.violations.length).toBeGreaterThan(0);
    expect(rep.nodeProgram).toBe(LOCAL_READS);
  });
});
