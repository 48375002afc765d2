// snapshot, compact and restore on copies of the fixtures and on directories built with the
// storage library; checked with diff, the storage library's own recovery, and replays.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/kv/keys.js';
import { KvStore, asKvCommand } from '../../src/kv/store.js';
import type { Json } from '../../src/raft/types.js';
import { DataDir, DiskStorage, encodeSnapshot, readSnapshotFile, readWal } from '../../src/storage/index.js';
import { abs, copyFixture, golden, inproc, isRoot, proc, tmpDir, treeHash } from './helpers.js';

const canon = (pairs: Array<[Json, Json]>) => pairs.map(([k, v]) => canonicalJson(k) + '=' + canonicalJson(v)).sort();
const walBytes = (dir: string) => fs.readdirSync(path.join(abs(dir), 'wal')).reduce((n, f) => n + fs.statSync(path.join(abs(dir), 'wal', f)).size, 0);

describe('snapshot', () => {
  it('writes the state at the commit index, verified; the directory is unchanged; diff says equal', async () => {
    const d = tmpDir();
    const out = path.relative(process.cwd(), path.join(d, 'h.snap'));
    const before = treeHash('fixtures/healthy');
    const r = await inproc(['snapshot', 'fixtures/healthy', '--out', out, '--json']);
    expect(r.exit).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ index: 290, term: 3, keys: 40, verified: true, createdAt: '2024-01-02T03:04:05.000Z' });
    expect(treeHash('fixtures/healthy')).toBe(before);
    expect((await inproc(['diff', out, 'fixtures/healthy'])).exit).toBe(0);
    // refuses to overwrite without --force
    const again = await inproc(['snapshot', 'fixtures/healthy', '--out', out]);
    expect(again.exit).toBe(2);
    expect(again.stderr).toMatch(/already exists; use --force/);
    expect((await inproc(['snapshot', 'fixtures/healthy', '--out', out, '--force'])).exit).toBe(0);
  });

  it('--index N equals an independent replay to N (from an older snapshot)', async () => {
    const out = path.join(tmpDir(), 'at150.snap');
    const r = await inproc(['snapshot', 'fixtures/healthy', '--index', '150', '--out', out]);
    expect(r.exit).toBe(0);
    // Independent: snapshot at 100 plus WAL entries 101..150.
    const base = readSnapshotFile(abs('fixtures/healthy/snap/0000000000000001-0000000000000064.snap'));
    const kv = KvStore.fromEntries(base.content.kv);
    for (const item of readWal(abs('fixtures/healthy/wal'))) {
      if (item.type !== 'entry' || item.entry.index <= 100 || item.entry.index > 150) continue;
      const c = item.entry.data === null ? null : asKvCommand(item.entry.data);
      if (c) kv.apply(c);
    }
    const got = readSnapshotFile(out);
    expect(got.header.index).toBe(150);
    expect(got.header.term).toBe(2);
    expect(canon(got.content.kv)).toEqual(canon([...kv.entries()]));
  });

  it('refuses an index beyond commit or before what the directory can rebuild', async () => {
    const beyond = await inproc(['snapshot', 'fixtures/healthy', '--index', '291', '--out', 'tmp/never.snap']);
    expect(beyond.exit).toBe(2);
    expect(beyond.stderr).toMatch(/beyond the commit index 290/);
    const early = await inproc(['snapshot', 'fixtures/healthy', '--index', '50', '--out', 'tmp/never.snap']);
    expect(early.exit).toBe(2);
    expect(early.stderr).toMatch(/before the oldest snapshot/);
    expect(fs.existsSync(abs('tmp/never.snap'))).toBe(false);
  });

  it('reads a locked directory with a warning; default name <term>-<index>.snap (real process)', () => {
    const out = path.relative(abs('.'), path.join(tmpDir(), 'x.snap'));
    const r = proc(['snapshot', 'fixtures/locked', '--out', out]);
    expect(r.exit).toBe(0);
    expect(r.stderr).toMatch(/in use by pid 1; reading anyway/);
    const j = proc(['snapshot', 'fixtures/healthy', '--out', out, '--force', '--json']);
    expect(JSON.parse(j.stdout).file).toBe(out);
  });
});

describe('compact', () => {
  it('keeps the recovered state identical and shrinks the WAL (golden output)', async () => {
    const dir = copyFixture('leftovers');
    const snap = path.join(path.dirname(dir), 'before.snap');
    expect((await inproc(['snapshot', dir, '--out', snap])).exit).toBe(0);
    const walBefore = walBytes(dir);
    const r = await inproc(['compact', dir, '--json']);
    expect(r.exit).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.verified).toBe(true);
    expect(j.after.wal.bytes).toBeLessThan(j.before.wal.bytes);
    expect(walBytes(dir)).toBeLessThan(walBefore);
    expect(j.after.leftovers.count).toBe(0);
    expect(fs.readdirSync(path.join(abs(dir), 'snap')).filter((n) => n.endsWith('.snap'))).toHaveLength(2);
    expect((await inproc(['diff', snap, dir])).exit).toBe(0);
    // The storage library's own recovery agrees.
    const s = DiskStorage.open(abs(dir), { fsync: false });
    const rec = s.recover();
    s.close();
    expect(rec.snapshot!.meta.index).toBe(290);
    expect(rec.entries.map((e) => e.index)).toEqual([291, 292, 293, 294, 295, 296, 297, 298, 299, 300]);
    // Again: nothing left to fold.
    const again = await inproc(['compact', dir]);
    expect(again.exit).toBe(0);
    expect(again.stdout).toMatch(/none needed/);
  });

  it('golden table output on a copy (paths normalised)', async () => {
    const dir = copyFixture('healthy');
    const r = await inproc(['compact', dir, '--retain', '1', '--trailing', '5']);
    expect(r.exit).toBe(0);
    golden('compact.txt', r.stdout.split(dir).join('DIR'));
    const j = await inproc(['inspect', dir, '--json']);
    const doc = JSON.parse(j.stdout);
    expect(doc.snapshots).toHaveLength(1);
    expect(doc.recovery).toMatchObject({ snapshotIndex: 290, firstIndex: 291, lastIndex: 300, commit: 290 });
    expect(doc.wal).toHaveLength(1);
    expect(doc.wal[0]).toMatchObject({ minIndex: 286, maxIndex: 300, entries: 15 });
  });

  it('--dry-run changes nothing and says what it would do', async () => {
    const dir = copyFixture('healthy');
    const before = treeHash(dir);
    const r = await inproc(['compact', dir, '--dry-run', '--json']);
    expect(r.exit).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.dryRun).toBe(true);
    expect(j.newSnapshot.index).toBe(290);
    expect(j.removed.segments).toHaveLength(8);
    expect(treeHash(dir)).toBe(before);
    // The estimate is what the real run gives.
    const real = JSON.parse((await inproc(['compact', dir, '--json'])).stdout);
    expect(real.after.wal).toEqual(j.after.wal);
    expect(real.after.snapshots).toEqual(j.after.snapshots);
  });

  it('refuses a locked directory and a corrupt WAL, changing nothing (real process)', () => {
    const locked = copyFixture('locked');
    const h = treeHash(locked);
    const r = proc(['compact', locked]);
    expect(r.exit).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/in use by the live node with pid 1/);
    // A dry run changes nothing: it works on a live directory and says that it is live (issue 10).
    const dry = proc(['compact', locked, '--dry-run']);
    expect(dry.exit).toBe(0);
    expect(dry.stdout).toMatch(/LIVE \(in use by pid 1\)/);
    expect(treeHash(locked)).toBe(h);
    const corrupt = copyFixture('corrupt-mid-wal');
    const h2 = treeHash(corrupt);
    const c = proc(['compact', corrupt, '--json']);
    expect(c.exit).toBe(2);
    expect(JSON.parse(c.stdout).error.code).toBe('CORRUPT_WAL');
    expect(treeHash(corrupt)).toBe(h2);
  });

  it('repairs a torn tail and a broken snapshot on the way, state unchanged', async () => {
    for (const name of ['torn-tail', 'broken-snapshot']) {
      const dir = copyFixture(name);
      const snap = path.join(path.dirname(dir), 'before.snap');
      expect((await inproc(['snapshot', dir, '--out', snap])).exit).toBe(0);
      const r = await inproc(['compact', dir, '--json']);
      expect(r.exit).toBe(0);
      expect(JSON.parse(r.stdout).repairs.length).toBeGreaterThan(0);
      expect((await inproc(['diff', snap, dir])).exit).toBe(0);
      expect((await inproc(['inspect', dir, '--verify'])).exit).toBe(0);
    }
  });
});

describe('restore', () => {
  it('builds a directory that the storage library recovers to the same state', async () => {
    const target = path.join(tmpDir(), 'n1');
    // A member of the snapshot's configuration (n1, n2, n3): another id would need --config.
    const r = await inproc(['restore', 'fixtures/snapshots/good.snap', '--data-dir', target, '--node-id', 'n2', '--json']);
    expect(r.exit).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ index: 120, term: 3, keys: 207, nodeId: 'n2', hardState: { term: 3, commit: 120 }, verified: true });
    const s = DiskStorage.open(abs(target), { fsync: false, nodeId: 'n2' });
    const rec = s.recover();
    s.close();
    const want = readSnapshotFile(abs('fixtures/snapshots/good.snap'));
    expect(rec.snapshot!.meta).toEqual({ index: 120, term: 3, config: ['n1', 'n2', 'n3'] });
    expect(canon(rec.snapshot!.content.kv)).toEqual(canon(want.content.kv));
    expect(rec.hardState.term).toBeGreaterThanOrEqual(3);
    expect(rec.hardState.commit).toBe(120);
    expect(DataDir.open(abs(target)).meta.nodeId).toBe('n2');
    expect((await inproc(['diff', 'fixtures/snapshots/good.snap', target])).exit).toBe(0);
    expect((await inproc(['inspect', target, '--verify'])).exit).toBe(0);
    // No temporary directory left next to it.
    expect(fs.readdirSync(path.dirname(abs(target)))).toEqual(['n1']);
  });

  it('refuses a non-empty target without --force; with --force replaces it', async () => {
    const target = copyFixture('healthy');
    const h = treeHash(target);
    const r = await inproc(['restore', 'fixtures/snapshots/good.snap', '--data-dir', target]);
    expect(r.exit).toBe(2);
    expect(r.stderr).toMatch(/not empty.*--force/);
    expect(treeHash(target)).toBe(h);
    const f = await inproc(['restore', 'fixtures/snapshots/good.snap', '--data-dir', target, '--force']);
    expect(f.exit).toBe(0);
    expect(f.stdout).toMatch(/previous contents replaced/);
    expect(DataDir.open(abs(target)).meta.nodeId).toBe('n1'); // kept from the old directory
    expect((await inproc(['diff', 'fixtures/snapshots/good.snap', target])).exit).toBe(0);
    expect(fs.readdirSync(path.dirname(abs(target)))).toEqual(['healthy']);
  });

  it('verifies first: a damaged file creates nothing; a locked target is refused even with --force', async () => {
    const parent = tmpDir();
    for (const bad of ['truncated', 'bitflip-payload', 'bad-header-crc', 'future-version', 'not-a-snapshot']) {
      const r = await inproc(['restore', `fixtures/snapshots/${bad}.snap`, '--data-dir', path.join(parent, 'x')]);
      expect(r.exit).toBe(2);
      expect(r.stderr).toContain(`fixtures/snapshots/${bad}.snap`);
    }
    expect(fs.readdirSync(parent)).toEqual([]);
    const locked = copyFixture('locked');
    const h = treeHash(locked);
    const r = proc(['restore', 'fixtures/snapshots/good.snap', '--data-dir', locked, '--force']);
    expect(r.exit).toBe(2);
    expect(r.stderr).toMatch(/in use by pid 1/);
    expect(treeHash(locked)).toBe(h);
  });

  it('a target that is a file is refused', async () => {
    const r = await inproc(['restore', 'fixtures/snapshots/good.snap', '--data-dir', 'fixtures/snapshots/diff-a.snap', '--force']);
    expect(r.exit).toBe(2);
    expect(r.stderr).toMatch(/diff-a.snap: exists and is not a directory/);
  });
});

describe('permissions', () => {
  it.skipIf(isRoot)('an unreadable directory is one clear line (skipped as root: root reads through mode 000)', async () => {
    const dir = copyFixture('healthy');
    fs.chmodSync(abs(dir), 0o000);
    try {
      const r = await inproc(['inspect', dir]);
      expect(r.exit).toBe(2);
      expect(r.stderr).toMatch(/permission denied/);
    } finally {
      fs.chmodSync(abs(dir), 0o755);
    }
  });

  it('a file where a directory is expected (stands in for permissions when running as root)', async () => {
    for (const cmd of [['compact', 'fixtures/snapshots/good.snap'], ['snapshot', 'fixtures/snapshots/good.snap'], ['inspect', 'fixtures/snapshots/good.snap/x']]) {
      const r = await inproc(cmd);
      expect(r.exit).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain('fixtures/snapshots/good.snap');
    }
  });
});

describe('directories built with the storage library', () => {
  it('a directory with no snapshot: snapshot, compact, diff', async () => {
    const dir = path.join(tmpDir(), 'fresh');
    const s = DiskStorage.open(abs(dir), { fsync: false, nodeId: 'n2', createdAt: 0 });
    s.recover();
    s.append([
      { index: 1, term: 1, data: null },
      { index: 2, term: 1, data: { op: 'write', key: 1, value: 'a' } },
      { index: 3, term: 1, data: { op: 'write', key: '1', value: 'b' } },
      { index: 4, term: 1, data: { op: 'cas', key: 1, from: 'a', to: 'c' } },
    ]);
    s.setHardState({ term: 1, votedFor: 'n2', commit: 4 });
    s.sync();
    s.close();
    const out = path.join(path.dirname(dir), 'f.snap');
    expect((await inproc(['snapshot', dir, '--out', out])).exit).toBe(0);
    const got = readSnapshotFile(abs(out));
    expect(canon(got.content.kv)).toEqual(canon([[1, 'c'], ['1', 'b']]));
    const c = await inproc(['compact', dir, '--json']);
    expect(c.exit).toBe(0);
    expect((await inproc(['diff', out, dir])).exit).toBe(0);
    // A snapshot whose state differs: exit 1.
    const other = path.join(path.dirname(dir), 'o.snap');
    fs.writeFileSync(abs(other), encodeSnapshot({ index: 4, term: 1, config: [] }, { kv: [[1, 'c']] }, { createdAt: 0 }));
    const d = await inproc(['diff', other, dir, '--keys', '--json']);
    expect(d.exit).toBe(1);
    expect(JSON.parse(d.stdout).keys.added).toEqual([{ key: '1', value: 'b' }]);
  });
});
