/**
 * `raftsnap repair` (issue 10): a way out of corruption, only when asked, saying what is lost;
 * rehearsed on an in-memory copy first; never on a live directory; copies kept of everything it
 * changes. Golden outputs in fixtures/golden/repair-*.txt.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, abs, copyFixture, golden, inproc, proc, treeHash } from './helpers.js';

const norm = (text: string, dir: string) => text.split(dir).join('DIR');

describe('repair', () => {
  it('without a flag: describes the damage, changes nothing, exit 1 (golden)', async () => {
    const dir = copyFixture('corrupt-mid-wal');
    const h = treeHash(dir);
    const r = await inproc(['repair', dir]);
    expect(r.exit).toBe(1);
    golden('repair-check.txt', norm(r.stdout, dir));
    expect(r.stdout).toContain(`raftsnap repair ${dir} --cut-wal --dry-run`);
    expect(treeHash(dir)).toBe(h);
    const healthy = await inproc(['repair', 'fixtures/healthy']);
    expect(healthy.exit).toBe(0);
    expect(healthy.stdout).toMatch(/WAL damage +│ none/);
  });

  it('--cut-wal --dry-run: rehearsed on a copy, says what is lost and that it recovers afterwards (golden)', async () => {
    const dir = copyFixture('corrupt-mid-wal');
    const h = treeHash(dir);
    const r = await inproc(['repair', dir, '--cut-wal', '--dry-run']);
    expect(r.exit).toBe(0);
    golden('repair-dry-run.txt', norm(r.stdout, dir));
    const j = JSON.parse((await inproc(['repair', dir, '--cut-wal', '--dry-run', '--json'])).stdout);
    expect(j).toMatchObject({ dryRun: true, changed: false, walDamage: { offset: 1221 }, after: { recovers: true, snapshotIndex: 250, lastIndex: 285 } });
    expect(j.lost).toMatchObject({ unreadableFrom: 286, lastDurableCommit: 280, unreadableMayBeAcknowledged: true });
    expect(treeHash(dir)).toBe(h);
  });

  it('--cut-wal: cuts after keeping a copy; the directory recovers and a node serves it', async () => {
    const dir = copyFixture('corrupt-mid-wal');
    const seg = path.join(abs(dir), 'wal', '000000000000000b-000000000000010f.wal');
    const original = fs.readFileSync(seg);
    const r = await inproc(['repair', dir, '--cut-wal', '--json']);
    expect(r.exit, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.changed).toBe(true);
    expect(j.after.recovers).toBe(true);
    expect(fs.statSync(seg).size).toBe(1221);
    const copy = path.join(ROOT, j.copies[0] as string);
    expect(fs.readFileSync(copy).equals(original)).toBe(true);
    expect((await inproc(['inspect', dir])).exit).toBe(0);
    // A second run has nothing left to cut.
    const again = await inproc(['repair', dir, '--cut-wal']);
    expect(again.exit).toBe(0);
    expect(again.stdout).toMatch(/^Nothing to repair/);
    const init = JSON.stringify({ src: 'c0', dest: 'n1', body: { type: 'init', msg_id: 1, node_id: 'n1', node_ids: ['n1'] } }) + '\n';
    const s = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'run.js'), 'serve', '--data-dir', abs(dir), '--fsync', 'false'], { encoding: 'utf8', input: init });
    expect(s.status, s.stderr).toBe(0);
    expect(JSON.parse(s.stdout.trim().split('\n')[0]!).body.type).toBe('init_ok');
  });

  it('--quarantine-snapshot renames a damaged snapshot to *.broken; the state is what recovery gave before', async () => {
    const dir = copyFixture('broken-snapshot');
    const before = await inproc(['snapshot', dir, '--out', path.join(path.dirname(dir), 'before.snap')]);
    expect(before.exit).toBe(0);
    const r = await inproc(['repair', dir, '--quarantine-snapshot']);
    expect(r.exit, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Repaired /);
    expect(fs.existsSync(path.join(abs(dir), 'snap', '0000000000000003-00000000000000fa.snap.broken'))).toBe(true);
    expect((await inproc(['diff', path.join(path.dirname(dir), 'before.snap'), dir])).exit).toBe(0);
  });

  it('a live directory: refused (one line, exit 2), a dry run reads it; nothing changed', async () => {
    const dir = copyFixture('locked');
    const h = treeHash(dir);
    const r = proc(['repair', dir, '--cut-wal']);
    expect(r.exit).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/in use by the live node with pid 1/);
    const d = await inproc(['repair', dir, '--cut-wal', '--dry-run']);
    expect(d.exit).toBe(0);
    expect(d.stderr).toMatch(/in use by pid 1/);
    expect(treeHash(dir)).toBe(h);
  });

  it('bad input: missing path, a file, not a data directory: one line, exit 2, --json error', async () => {
    for (const [p, code] of [['tmp/no-such-dir', 'ENOENT'], ['fixtures/snapshots/good.snap', 'ENOTDIR'], ['fixtures/snapshots', 'NOT_DATA_DIR']] as const) {
      const r = await inproc(['repair', p, '--cut-wal']);
      expect(r.exit, p).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(p);
      const j = await inproc(['repair', p, '--json']);
      expect(JSON.parse(j.stdout).error.code).toBe(code);
    }
  });

  it('other commands point to it on damage', async () => {
    for (const args of [['snapshot', 'fixtures/corrupt-mid-wal', '--out', 'tmp/never.snap'], ['diff', 'fixtures/healthy', 'fixtures/corrupt-mid-wal']]) {
      const r = await inproc(args);
      expect(r.exit).toBe(2);
      expect(r.stderr).toContain('`raftsnap repair fixtures/corrupt-mid-wal` shows what a repair would keep and lose');
    }
  });
});
