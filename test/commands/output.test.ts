/**
 * Issue 10, misleading output:
 *  - `inspect ./raftsnap-data/n1` (the help's own example), `./n1` and paths with `..` printed
 *    doubled, non-existent paths (`raftsnap-data/n1/raftsnap-data/n1/snap/...`): every path printed
 *    now exists and starts with the base as the user typed it;
 *  - `inspect --header` on a truncated snapshot exited 0 without a word;
 *  - `snapshot DIR --index N` before the first snapshot recorded no configuration and no client
 *    sessions (and restore took such a file silently).
 * Real processes: needs `npm run build`.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataDir, DiskStorage, readSnapshotFile } from '../../src/storage/index.js';
import { EPOCH, ROOT, abs, inproc, tmpDir } from './helpers.js';

function runIn(cwd: string, args: string[]): { stdout: string; stderr: string; exit: number } {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'run.js'), ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, SOURCE_DATE_EPOCH: EPOCH },
  });
  return { stdout: r.stdout, stderr: r.stderr, exit: r.status ?? -1 };
}

/** Every token of `text` that looks like a path into a data directory (has /snap/, /wal/ or meta.json). */
function pathsIn(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(/[^\s"│(,]*(?:snap\/|wal\/|meta\.json)[^\s"│),:]*/g)) out.add(m[0]);
  return [...out];
}

describe('inspect prints real paths, as the user typed the base', () => {
  const root = () => {
    const d = tmpDir();
    fs.cpSync(abs('fixtures/healthy'), path.join(d, 'raftsnap-data', 'n1'), { recursive: true });
    return d;
  };
  const cases: Array<{ cwd: string; base: string }> = [
    { cwd: '.', base: './raftsnap-data/n1' },
    { cwd: 'raftsnap-data', base: './n1' },
    { cwd: 'raftsnap-data', base: 'n1/../n1' },
    { cwd: 'raftsnap-data/n1/snap', base: '..' },
    { cwd: 'raftsnap-data/n1/wal', base: '../' },
  ];
  for (const c of cases) {
    it(`inspect ${c.base} (in ${c.cwd}), text, --json and --verify`, () => {
      const cwd = path.join(root(), c.cwd);
      for (const extra of [[], ['--json'], ['--verify'], ['--verify', '--json']]) {
        const r = runIn(cwd, ['inspect', c.base, ...extra]);
        expect(r.exit, r.stderr).toBe(0);
        const paths = pathsIn(r.stdout);
        expect(paths.length, `${extra.join(' ')}: ${r.stdout}`).toBeGreaterThan(3);
        for (const p of paths) {
          expect(fs.existsSync(path.resolve(cwd, p)), `${p} does not exist (inspect ${c.base} ${extra.join(' ')})`).toBe(true);
          expect(p.startsWith(c.base.endsWith('/') ? c.base : `${c.base}/`), `${p} does not start with ${c.base}`).toBe(true);
        }
      }
    });
  }

  it('warnings name real paths too (a torn tail, ./torn)', () => {
    const d = tmpDir();
    fs.cpSync(abs('fixtures/torn-tail'), path.join(d, 'torn'), { recursive: true });
    const r = runIn(d, ['inspect', './torn']);
    expect(r.exit).toBe(0);
    const warn = r.stdout.split('Warnings')[1]!;
    for (const p of pathsIn(warn)) {
      expect(p.startsWith('./torn/'), p).toBe(true);
      expect(fs.existsSync(path.join(d, p)), p).toBe(true);
    }
  });
});

describe('inspect --header on a truncated snapshot', () => {
  it('says the file is shorter than its header records: one line, exit 2', async () => {
    const r = await inproc(['inspect', 'fixtures/snapshots/truncated.snap', '--header']);
    expect(r.exit).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/truncated snapshot: header announces 900 payload bytes but the file ends after 450/);
    const j = await inproc(['inspect', 'fixtures/snapshots/truncated.snap', '--header', '--json']);
    expect(j.exit).toBe(2);
    expect(JSON.parse(j.stdout).error.code).toBe('TRUNCATED');
  });

  it('and bytes after the payload', async () => {
    const f = path.join(tmpDir(), 'long.snap');
    fs.writeFileSync(f, Buffer.concat([fs.readFileSync(abs('fixtures/snapshots/good.snap')), Buffer.from('extra')]));
    const r = await inproc(['inspect', path.relative(ROOT, f), '--header']);
    expect(r.exit).toBe(2);
    expect(r.stderr).toMatch(/5 unexpected bytes after the snapshot payload/);
  });
});

describe('snapshot --index N before the first snapshot', () => {
  /** A directory with no snapshot: a no-op, writes (two of them forwarded, with a session identity), a cas. */
  function fresh(members: string[] | null): string {
    const dir = path.join(tmpDir(), 'fresh');
    const s = DiskStorage.open(abs(dir), { fsync: false, nodeId: 'n1', createdAt: 0 });
    s.recover();
    s.append([
      { index: 1, term: 1, data: null },
      { index: 2, term: 1, data: { op: 'write', key: 1, value: 'a' } },
      { index: 3, term: 1, data: { op: 'write', key: 2, value: 'b', session: { origin: 'n2/f1', id: 7 } } },
      { index: 4, term: 1, data: { op: 'write', key: 2, value: 'b', session: { origin: 'n2/f1', id: 7 } } },
      { index: 5, term: 1, data: { op: 'cas', key: 1, from: 'a', to: 'c', session: { origin: 'n2/f1', id: 8 } } },
    ]);
    s.setHardState({ term: 1, votedFor: 'n1', commit: 5 });
    s.sync();
    s.close();
    if (members) {
      const dd = DataDir.open(abs(dir), { mode: 'write', fsync: false });
      dd.setMembers(members);
      dd.close();
    }
    return path.relative(ROOT, abs(dir));
  }

  it('records the members the directory knows and the client sessions the log built, and says so', async () => {
    const dir = fresh(['n1', 'n2', 'n3']);
    const out = path.join(path.dirname(dir), 'at4.snap');
    const r = await inproc(['snapshot', dir, '--index', '4', '--out', out]);
    expect(r.exit, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/configuration +│ n1, n2, n3 \(the members recorded in meta\.json\)/);
    expect(r.stdout).toMatch(/client sessions +│ 1 origin/);
    const got = readSnapshotFile(abs(out));
    expect(got.header.config).toEqual(['n1', 'n2', 'n3']);
    expect(got.content.sessions).toEqual({ forwards: [{ origin: 'n2/f1', last: 3, low: 0, ids: [7] }] });
    const j = JSON.parse((await inproc(['snapshot', dir, '--index', '5', '--out', out, '--force', '--json'])).stdout);
    expect(j.configSource).toBe('meta.json');
    expect(j.sessions).toBe(1);
    // restore takes it, and the node would find the same table.
    const target = path.join(path.dirname(dir), 'restored');
    expect((await inproc(['restore', out, '--data-dir', target])).exit).toBe(0);
    expect((await inproc(['diff', out, target])).exit).toBe(0);
  });

  it('without recorded members and no snapshot: written with no configuration, said loudly; restore then needs --config', async () => {
    const dir = fresh(null);
    const out = path.join(path.dirname(dir), 'none.snap');
    const r = await inproc(['snapshot', dir, '--index', '3', '--out', out]);
    expect(r.exit, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/configuration +│ \(none known/);
    expect(r.stderr).toMatch(/^warning: .*no configuration/m);
    const target = path.join(path.dirname(dir), 'restored');
    const x = await inproc(['restore', out, '--data-dir', target]);
    expect(x.exit).toBe(2);
    expect(x.stderr.trim().split('\n')).toHaveLength(1);
    expect(x.stderr).toMatch(/records no configuration.*--config/);
    expect(fs.existsSync(abs(target))).toBe(false);
    expect((await inproc(['restore', out, '--data-dir', target, '--config', 'n1', '--node-id', 'n1'])).exit).toBe(0);
  });
});
