import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tempDir } from './tmp.js';
import { parseHistoryText } from '../../src/check/index.js';
import { renderReport } from '../../src/cluster/report.js';
import { DATA_ROOT_MARKER, clusterExitCode, defaultNemesisInterval, prepareDataRoot, runCluster, type ClusterOptions } from '../../src/cluster/runner.js';

const FAKE = fileURLToPath(new URL('./fixtures/fake-node.mjs', import.meta.url));

function options(over: Partial<ClusterOptions> = {}): ClusterOptions {
  const dir = tempDir('raftsnap-cluster-test-');
  return {
    nodes: 3,
    time: 3,
    rate: 60,
    concurrency: 6,
    keys: 3,
    latency: 2,
    latencyDist: 'exponential',
    nemesis: ['partition', 'kill', 'pause'],
    nemesisInterval: 0.4,
    quiet: 0.5,
    dataRoot: join(dir, 'data'),
    results: join(dir, 'results'),
    snapshotThreshold: 100,
    trailingLogs: 10,
    seed: 1,
    checkBudget: 10,
    nodeScript: FAKE,
    statsIntervalMs: 300,
    ...over,
  };
}

describe('raftsnap cluster runner (fake nodes)', () => {
  it('runs a correct cluster under partitions, kills and pauses: linearizable', async () => {
    const o = options({ time: 4.5 });
    const r = await runCluster(o);
    if (process.env.SHOW_REPORT) console.log(JSON.stringify(r, null, 1));
    expect(r.problems).toEqual([]);
    expect(r.verdict).toBe('linearizable');
    expect(r.exitCode).toBe(0);
    expect(r.ops.ok).toBeGreaterThan(20);
    expect(r.ops.total).toBe(r.ops.ok + r.ops.fail + r.ops.info);
    expect(new Set(r.nemesis.map((e) => e.kind))).toEqual(new Set(['partition', 'kill', 'pause', 'heal']));
    expect(r.nemesis[0]!.detail).toMatch(/^one: /);
    // Killed nodes were restarted on their data directory and answered init again.
    expect(r.nodes.some((n) => n.starts > 1)).toBe(true);
    expect(r.crashes).toEqual([]);
    expect(r.totals.elections).toBeGreaterThanOrEqual(1);
    expect(r.nodes.every((n) => n.statsAvailable)).toBe(true);
    expect(r.nodes.find((n) => n.id === 'n1')!.dataDirBytes).toBeGreaterThan(0);
    // Files in the results directory.
    const history = parseHistoryText(readFileSync(join(o.results!, 'history.jsonl'), 'utf8'));
    expect(history.length).toBe(2 * r.ops.total);
    expect(JSON.parse(readFileSync(join(o.results!, 'report.json'), 'utf8')).verdict).toBe('linearizable');
    const log = readFileSync(join(o.results!, 'n1.log'), 'utf8');
    expect(log).toContain('fake node started with serve --data-dir');
    expect(log).toContain('--snapshot-threshold 100 --trailing-logs 10');
    expect(existsSync(join(o.dataRoot, DATA_ROOT_MARKER))).toBe(true);
  });

  it('flags a node that serves stale reads as not linearizable', async () => {
    const r = await runCluster(options({ time: 2.5, nemesis: [], nodeEnv: { FAKE_BROKEN: 'stale' }, keys: 2, rate: 100, seed: 2 }));
    expect(r.verdict).toBe('not-linearizable');
    expect(r.exitCode).toBe(1);
    expect(r.problems[0]).toMatch(/not linearizable/);
    expect(r.check.violations.length).toBeGreaterThan(0);
    expect(r.check.violations[0]!.message).toMatch(/cannot all be ordered/);
  });

  it('reports a node that exits when not killed, and exits non-zero', async () => {
    const r = await runCluster(
      options({ time: 2, nemesis: [], nodeEnv: { FAKE_CRASH_NODE: 'n2', FAKE_CRASH_AFTER_MS: '500' } }),
    );
    expect(r.crashes.map((c) => [c.id, c.code])).toEqual([['n2', 3]]);
    expect(r.exitCode).toBe(1);
    expect(r.problems.join('\n')).toMatch(/n2 exited unexpectedly \(code 3\)/);
  });

  it('exit codes as Maelstrom: 0 valid, 1 invalid or a node crashed, 2 unknown', () => {
    expect(clusterExitCode('linearizable', false)).toBe(0);
    expect(clusterExitCode('not-linearizable', false)).toBe(1);
    expect(clusterExitCode('linearizable', true)).toBe(1);
    expect(clusterExitCode('unknown', false)).toBe(2);
    // A crash is a definite failure: it outranks a verdict the check could not reach.
    expect(clusterExitCode('unknown', true)).toBe(1);
  });

  it('a run without a single ok operation is called linearizable only with a loud warning, marked in report.json', async () => {
    const o = options({ time: 1, nemesis: [], nodeEnv: { FAKE_UNAVAILABLE: '1' } });
    const r = await runCluster(o);
    expect(r.ops.total).toBeGreaterThan(5);
    expect(r.ops.ok).toBe(0);
    expect(r.verdict).toBe('linearizable');
    expect(r.vacuous).toBe(true);
    expect(r.warnings[0]).toMatch(/no operation completed ok: the verdict is vacuous/);
    expect(JSON.parse(readFileSync(join(o.results!, 'report.json'), 'utf8')).vacuous).toBe(true);
    expect(renderReport(r, { color: false })).toMatch(/Linearizable, but vacuously: no operation completed ok\.$/);
  });

  it('refuses a node program that does not exist before touching the data root', async () => {
    const o = options({ nodeScript: join(tempDir('raftsnap-cluster-nobin-'), 'missing.js') });
    await expect(runCluster(o)).rejects.toThrow(/missing\.js: no such file/);
    expect(existsSync(o.dataRoot)).toBe(false);
  });

  it('counts messages to unknown destinations', async () => {
    const r = await runCluster(options({ time: 1, nemesis: [], nodeEnv: { FAKE_BAD_DEST: '1' } }));
    expect(r.network.dropped.unknownDest).toBe(3);
    expect(r.network.errors.join('\n')).toMatch(/unknown destination "n99"/);
  });

  it('binds each client to one node for the whole run, as Jepsen and Maelstrom do', async () => {
    const o = options({ time: 1.5, nemesis: [] });
    const r = await runCluster(o);
    const history = parseHistoryText(readFileSync(join(o.results!, 'history.jsonl'), 'utf8'));
    const nodeOfWorker = new Map<number, Set<string>>();
    for (const e of history) {
      const w = e.process % o.concurrency;
      if (!nodeOfWorker.has(w)) nodeOfWorker.set(w, new Set());
      nodeOfWorker.get(w)!.add(String((e as { node?: string }).node));
    }
    expect(r.ops.total).toBeGreaterThan(10);
    for (const [w, nodes] of nodeOfWorker) expect([...nodes]).toEqual([`n${(w % o.nodes) + 1}`]);
  });

  it('warns when the nemesis was asked for but no fault fitted into the run', async () => {
    const r = await runCluster(options({ time: 1, nemesisInterval: 3, nemesis: ['partition'] }));
    expect(r.nemesis).toEqual([]);
    expect(r.warnings.join('\n')).toMatch(/no fault was injected/);
  });

  it('the default nemesis interval leaves room for faults in a short run, 3 s in a long one', () => {
    expect(defaultNemesisInterval(20, 5)).toBe(3);
    expect(defaultNemesisInterval(60, 5)).toBe(3);
    const short = defaultNemesisInterval(8, 2);
    // at least one fault: a healthy period, the fault, and the start-up slack before the quiet end
    expect(2 * short + 0.5).toBeLessThanOrEqual(8 - 2);
    expect(short).toBeGreaterThanOrEqual(0.5);
  });

  it('a second run keeps the files a user put in the data root (only recorded node directories are cleared)', async () => {
    const root = join(tempDir('raftsnap-cluster-root-'), 'data');
    await prepareDataRoot(root, ['n1', 'n2']);
    mkdirSync(join(root, 'n1'), { recursive: true });
    writeFileSync(join(root, 'n1', 'old'), 'from the first run');
    writeFileSync(join(root, 'notes.txt'), 'a user file');
    mkdirSync(join(root, 'mine'));
    writeFileSync(join(root, 'mine', 'x'), 'keep');
    await prepareDataRoot(root, ['n1', 'n2']);
    expect(readFileSync(join(root, 'notes.txt'), 'utf8')).toBe('a user file');
    expect(readFileSync(join(root, 'mine', 'x'), 'utf8')).toBe('keep');
    expect(existsSync(join(root, 'n1', 'old'))).toBe(false);
    expect(existsSync(join(root, 'n1'))).toBe(true);
  });

  it('refuses a non-empty data root it did not make, and a node directory no earlier run recorded', async () => {
    const dir = tempDir('raftsnap-cluster-root-');
    writeFileSync(join(dir, 'precious.txt'), 'keep me');
    await expect(prepareDataRoot(dir, ['n1'])).rejects.toThrow(/is not empty and was not made by raftsnap cluster .*refusing to use it/);
    expect(readFileSync(join(dir, 'precious.txt'), 'utf8')).toBe('keep me');
    // One it made is cleared: only the directories it recorded.
    const mine = join(dir, 'mine');
    await prepareDataRoot(mine, ['n1']);
    expect(JSON.parse(readFileSync(join(mine, DATA_ROOT_MARKER), 'utf8')).dirs).toEqual(['n1']);
    writeFileSync(join(mine, 'n1', 'x'), 'old');
    // A user's own n2 next to it: a 2-node run would have to clear it, so it refuses, before touching n1.
    mkdirSync(join(mine, 'n2'));
    writeFileSync(join(mine, 'n2', 'y'), 'user data');
    await expect(prepareDataRoot(mine, ['n1', 'n2'])).rejects.toThrow(/n2 exists but no earlier run recorded it as its own .*refusing to clear it/);
    expect(readFileSync(join(mine, 'n1', 'x'), 'utf8')).toBe('old');
    expect(readFileSync(join(mine, 'n2', 'y'), 'utf8')).toBe('user data');
    // A 1-node run clears n1 and leaves n2 alone.
    await prepareDataRoot(mine, ['n1']);
    expect(existsSync(join(mine, 'n1', 'x'))).toBe(false);
    expect(readFileSync(join(mine, 'n2', 'y'), 'utf8')).toBe('user data');
    // A marker from a version that did not record its directories owns none of them.
    writeFileSync(join(mine, DATA_ROOT_MARKER), JSON.stringify({ createdBy: 'raftsnap cluster', at: 'then' }));
    await expect(prepareDataRoot(mine, ['n1'])).rejects.toThrow(/n1 exists but no earlier run recorded it/);
    // A tampered marker cannot make it remove anything outside the root.
    writeFileSync(join(mine, DATA_ROOT_MARKER), JSON.stringify({ createdBy: 'raftsnap cluster', dirs: ['../precious.txt'] }));
    await expect(prepareDataRoot(mine, ['n3'])).rejects.toThrow(/malformed "dirs" list/);
    writeFileSync(join(mine, DATA_ROOT_MARKER), '{');
    await expect(prepareDataRoot(mine, ['n3'])).rejects.toThrow(/cannot be read \(not JSON\)/);
    expect(readFileSync(join(dir, 'precious.txt'), 'utf8')).toBe('keep me');
    await expect(prepareDataRoot(join(dir, 'precious.txt'), ['n1'])).rejects.toThrow(/is not a directory/);
  });

});
