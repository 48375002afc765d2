/**
 * Issue 10, data-destroying bugs: a tool never deletes or overwrites what it did not create.
 *  - `restore FILE --data-dir D --force` replaced any directory (a folder of documents became a
 *    data directory): now only a raftsnap data directory may be replaced.
 *  - a failed restore left its temporary directory behind (`--data-dir . --force`: EBUSY, exit 2
 *    and `...restore-<pid>/`); every failure path now removes what it created and puts back what
 *    it moved (checked by failing every file-system call of a restore in turn).
 *  - `snapshot DIR --out DIR/snap/<name> --force` overwrote the node's own snapshot file.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fsFault, nodeFs, type FileSystem } from '../../src/storage/index.js';
import { restoreSnapshot } from '../../src/tools/restore.js';
import { ROOT, abs, copyFixture, inproc, tmpDir, treeHash } from './helpers.js';

const GOOD = 'fixtures/snapshots/good.snap';

/** Names in a directory, recursively (relative), sorted: "what is there?". */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const n of fs.readdirSync(d).sort()) {
      const p = path.join(d, n);
      out.push(path.join(rel, n));
      if (fs.statSync(p).isDirectory()) walk(p, path.join(rel, n));
    }
  };
  walk(dir, '');
  return out;
}

describe('restore --force replaces only a raftsnap data directory', () => {
  it('a folder of documents is refused with one line, nothing touched', async () => {
    const docs = path.join(tmpDir(), 'docs');
    fs.mkdirSync(path.join(docs, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(docs, 'letter.txt'), 'dear operator\n');
    fs.writeFileSync(path.join(docs, 'sub', 'notes.md'), '# notes\n');
    const before = treeHash(docs);
    const r = await inproc(['restore', GOOD, '--data-dir', docs, '--force']);
    expect(r.exit).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/not a raftsnap data directory/);
    expect(lines[0]).toContain('nothing was changed');
    expect(treeHash(docs)).toBe(before);
    expect(fs.readdirSync(path.dirname(docs))).toEqual(['docs']);
    const j = await inproc(['restore', GOOD, '--data-dir', docs, '--force', '--json']);
    expect(JSON.parse(j.stdout).error.code).toBe('NOT_DATA_DIR');
  });

  it('a data directory holding files of its own user is refused, naming them', async () => {
    const dir = copyFixture('healthy');
    fs.writeFileSync(path.join(abs(dir), 'my-notes.txt'), 'keep me\n');
    fs.writeFileSync(path.join(abs(dir), 'snap', 'backup-copy.bin'), 'keep me too\n');
    const before = treeHash(dir);
    const r = await inproc(['restore', GOOD, '--data-dir', dir, '--force']);
    expect(r.exit).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('my-notes.txt');
    expect(r.stderr).toContain('snap/backup-copy.bin');
    expect(treeHash(dir)).toBe(before);
  });

  it('a data directory is still replaced with --force (leftovers and LOCK of a dead process included)', async () => {
    const dir = copyFixture('leftovers');
    fs.writeFileSync(path.join(abs(dir), 'LOCK'), '999999\n');
    const r = await inproc(['restore', GOOD, '--data-dir', dir, '--force', '--node-id', 'n1']);
    expect(r.exit, r.stderr).toBe(0);
    expect((await inproc(['diff', GOOD, dir])).exit).toBe(0);
    expect(fs.readdirSync(path.dirname(abs(dir)))).toEqual(['leftovers']);
  });

  it('--data-dir . (the current directory) is refused, and no temporary directory is left anywhere', () => {
    const dir = copyFixture('healthy');
    const parent = path.dirname(abs(dir));
    const before = treeHash(dir);
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'run.js'), 'restore', abs(GOOD), '--data-dir', '.', '--force'], {
      cwd: abs(dir),
      encoding: 'utf8',
    });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/current directory/);
    expect(treeHash(dir)).toBe(before);
    expect(fs.readdirSync(parent)).toEqual(['healthy']);
  });
});

/** node:fs with one fault: call number `at` (counting every call) throws EIO; `count` says how many calls ran. */
function faultyFs(at: number): { fs: FileSystem; calls: () => number; fired: () => boolean } {
  let n = 0;
  let fired = false;
  const wrapped = {} as Record<string, unknown>;
  for (const [name, fn] of Object.entries(nodeFs)) {
    wrapped[name] = (...args: unknown[]) => {
      n++;
      if (n === at) {
        fired = true;
        throw fsFault('EIO', name, typeof args[0] === 'string' ? args[0] : undefined);
      }
      return (fn as (...a: unknown[]) => unknown)(...args);
    };
  }
  return { fs: wrapped as unknown as FileSystem, calls: () => n, fired: () => fired };
}

describe('a failed restore leaves everything as it was (every file-system call failed in turn)', () => {
  for (const kind of ['new target', 'replacing a data directory'] as const) {
    it(kind, () => {
      let at = 1;
      let failures = 0;
      for (;;) {
        const parent = tmpDir();
        const target = path.join(parent, 'deep', 'n1');
        if (kind === 'replacing a data directory') fs.cpSync(abs('fixtures/healthy'), target, { recursive: true });
        const before = listing(parent);
        const hash = kind === 'new target' ? null : treeHash(target);
        const f = faultyFs(at);
        let err: unknown = null;
        try {
          restoreSnapshot(abs(GOOD), target, { force: true, nodeId: 'n1', fs: f.fs });
        } catch (e) {
          err = e;
        }
        if (!f.fired()) {
          // The whole restore ran without reaching call `at`: every call has been failed once.
          expect(err).toBeNull();
          break;
        }
        if (err !== null) {
          failures++;
          expect(listing(parent), `fault at call ${at}: ${String(err)}`).toEqual(before);
          if (hash) expect(treeHash(target), `fault at call ${at}`).toBe(hash);
          expect((err as Error).message.split('\n')).toHaveLength(1);
        } else {
          // A fault the restore tolerates (e.g. removing the old contents after the swap): it is in place.
          expect(fs.existsSync(path.join(target, 'meta.json'))).toBe(true);
        }
        at++;
      }
      expect(failures).toBeGreaterThan(20);
    });
  }
});

describe('snapshot --out never writes into a data directory', () => {
  it('refuses DIR/snap/<name> and DIR/wal/<name> even with --force; nothing changes', async () => {
    const dir = copyFixture('healthy');
    const before = treeHash(dir);
    const own = path.join(dir, 'snap', '0000000000000003-00000000000000fa.snap');
    for (const out of [own, path.join(dir, 'snap', 'new.snap'), path.join(dir, 'wal', 'x.snap'), path.join(dir, 'meta.json')]) {
      const r = await inproc(['snapshot', dir, '--out', out, '--force']);
      expect(r.exit, out).toBe(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/data directory/);
    }
    // Another node's directory too.
    const other = copyFixture('leftovers');
    const h2 = treeHash(other);
    const r = await inproc(['snapshot', dir, '--out', path.join(other, 'snap', 'x.snap')]);
    expect(r.exit).toBe(2);
    expect(treeHash(dir)).toBe(before);
    expect(treeHash(other)).toBe(h2);
  });

  it('--force overwrites a snapshot file, never a file that is not one', async () => {
    const d = tmpDir();
    const doc = path.join(d, 'report.txt');
    fs.writeFileSync(doc, 'quarterly report\n');
    const r = await inproc(['snapshot', 'fixtures/healthy', '--out', doc, '--force']);
    expect(r.exit).toBe(2);
    expect(r.stderr).toMatch(/not a raftsnap snapshot file/);
    expect(fs.readFileSync(doc, 'utf8')).toBe('quarterly report\n');
    const snap = path.join(d, 'a.snap');
    expect((await inproc(['snapshot', 'fixtures/healthy', '--out', snap])).exit).toBe(0);
    expect((await inproc(['snapshot', 'fixtures/healthy', '--out', snap, '--force'])).exit).toBe(0);
    expect(fs.readdirSync(d).sort()).toEqual(['a.snap', 'report.txt']);
  });
});
