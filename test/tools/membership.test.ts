/**
 * Where a restored node takes its members, and how `diff` reports membership (issue 7). Before:
 * docs/TOOLS.md said a restored node takes its members from the snapshot while the node took them
 * from `init` (so `restore --config` had no effect on a node started with another list), and
 * `diff` of a snapshot and its restore with --config said "States differ" for the configuration
 * alone. Now the data directory records the members (restore writes --config, else the snapshot's
 * configuration), `init` must list exactly them, and diff reports membership on a line of its own,
 * not as a state difference. Process tests need `npm run build`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataDir } from '../../src/storage/index.js';
import { diffStates } from '../../src/tools/diff.js';
import { restoreSnapshot } from '../../src/tools/restore.js';
import type { ToolState } from '../../src/tools/state.js';
import { abs, inproc, tmpDir } from '../commands/helpers.js';
import { runServe } from '../node/helpers.js';

const GOOD = 'fixtures/snapshots/good.snap'; // index 120, term 3, configuration n1, n2, n3
const built = fs.existsSync(abs('dist/node/main.js'));

const init = (ids: string[]): string => JSON.stringify({ src: 'c0', dest: 'n1', body: { type: 'init', msg_id: 1, node_id: 'n1', node_ids: ids } });
const read = (key: number): string => JSON.stringify({ src: 'c1', dest: 'n1', body: { type: 'read', msg_id: 2, key } });
const bodies = (lines: string[]) => lines.map((l) => (JSON.parse(l) as { body: Record<string, unknown> }).body);

describe('restore records the members in the data directory', () => {
  it('without --config: the snapshot configuration', () => {
    const dir = path.join(tmpDir(), 'n2');
    const r = restoreSnapshot(abs(GOOD), dir, { nodeId: 'n2' });
    expect(r.config).toEqual(['n1', 'n2', 'n3']);
    expect(DataDir.open(dir).meta.members).toEqual(['n1', 'n2', 'n3']);
  });

  it('with --config: those members', () => {
    const dir = path.join(tmpDir(), 'n1');
    restoreSnapshot(abs(GOOD), dir, { nodeId: 'n1', config: ['n1'] });
    expect(DataDir.open(dir).meta.members).toEqual(['n1']);
  });

  it('a node outside the snapshot configuration needs --config; nothing is created', () => {
    const parent = tmpDir();
    expect(() => restoreSnapshot(abs(GOOD), path.join(parent, 'n4'), { nodeId: 'n4' })).toThrow(/n4 is not a member .*n1, n2, n3.*--config/);
    expect(fs.readdirSync(parent)).toEqual([]);
  });
});

describe.skipIf(!built)('a restored node takes its members from the directory: init must list them', () => {
  it('restored without --config, a single-node init is refused (22, both lists named, exit 1); the 3-node one is taken', async () => {
    const dir = path.join(tmpDir(), 'n1');
    restoreSnapshot(abs(GOOD), dir, { nodeId: 'n1' });
    const r = await runServe([init(['n1']), read(1)].join('\n') + '\n', ['--data-dir', dir, '--fsync', 'false']);
    expect(r.code).toBe(1);
    expect(bodies(r.lines)).toEqual([expect.objectContaining({ type: 'error', code: 22, in_reply_to: 1 })]);
    expect(r.stderr).toMatch(/records the members \[n1, n2, n3\], but init lists \[n1\]/);
    const ok = await runServe(init(['n1', 'n2', 'n3']) + '\n', ['--data-dir', dir, '--fsync', 'false']);
    expect(ok.code).toBe(0);
    expect(bodies(ok.lines).map((b) => b['type'])).toEqual(['init_ok']);
  });

  it('restored with --config n1, the node serves alone; a 3-node init is refused', async () => {
    const dir = path.join(tmpDir(), 'n1');
    restoreSnapshot(abs(GOOD), dir, { nodeId: 'n1', config: ['n1'] });
    const r = await runServe([init(['n1']), read(1)].join('\n') + '\n', ['--data-dir', dir, '--fsync', 'false']);
    expect(r.code, r.stderr).toBe(0);
    expect(bodies(r.lines).map((b) => b['type'])).toEqual(['init_ok', 'read_ok']);
    const bad = await runServe(init(['n1', 'n2', 'n3']) + '\n', ['--data-dir', dir, '--fsync', 'false']);
    expect(bad.code).toBe(1);
    expect(bodies(bad.lines)).toEqual([expect.objectContaining({ type: 'error', code: 22 })]);
  });
});

function st(over: Partial<ToolState['header']>, pairs: ToolState['pairs'] = [[1, 1]]): ToolState {
  return { source: 'x', kind: 'snapshot', header: { index: 5, term: 2, config: ['n1', 'n2', 'n3'], ...over }, pairs, dedup: null };
}

describe('diff reports membership on its own line, not as a state difference', () => {
  it('diffStates: membership alone leaves the states equal and says so; with a key change both are reported', () => {
    const one = diffStates(st({}), st({ config: ['n1'] }));
    expect(one.equal).toBe(true);
    expect(one.header).toEqual([]);
    expect(one.membership).toEqual({ equal: false, a: ['n1', 'n2', 'n3'], b: ['n1'] });
    expect(diffStates(st({}), st({ config: ['n3', 'n1', 'n2'] })).membership).toEqual({ equal: true, a: ['n1', 'n2', 'n3'], b: ['n1', 'n2', 'n3'] });
    const both = diffStates(st({}), st({ config: ['n1'] }, [[1, 2]]));
    expect(both.equal).toBe(false);
    expect(both.membership.equal).toBe(false);
    expect(both.counts.changed).toBe(1);
  });

  it('a snapshot and its restore with --config n1: exit 0, and the text says membership is the difference', async () => {
    const dir = path.relative(abs('.'), path.join(tmpDir(), 'n1'));
    expect((await inproc(['restore', GOOD, '--data-dir', dir, '--node-id', 'n1', '--config', 'n1'])).exit).toBe(0);
    const j = await inproc(['diff', GOOD, dir, '--json']);
    expect(j.exit).toBe(0);
    const d = JSON.parse(j.stdout);
    expect(d).toMatchObject({ equal: true, header: [], membership: { equal: false, a: ['n1', 'n2', 'n3'], b: ['n1'] } });
    const t = await inproc(['diff', GOOD, dir]);
    expect(t.exit).toBe(0);
    expect(t.stdout).toMatch(/Membership differs \(not counted as a state difference\): A n1, n2, n3; B n1/);
    expect(t.stdout).toMatch(/States are equal\.$/m);
  });

  it("a data directory's membership is the one it records, before its first snapshot too", async () => {
    const dir = path.join(tmpDir(), 'n1');
    DataDir.create(dir, { nodeId: 'n1', fsync: false }).close();
    const dd = DataDir.open(dir, { mode: 'write', fsync: false });
    dd.setMembers(['n1', 'n2']);
    dd.close();
    const other = path.join(tmpDir(), 'n2');
    DataDir.create(other, { nodeId: 'n2', fsync: false }).close();
    const d = JSON.parse((await inproc(['diff', dir, other, '--json'])).stdout);
    expect(d.membership).toEqual({ equal: false, a: ['n1', 'n2'], b: [] });
    expect(d.equal).toBe(true);
  });
});
