/**
 * Issue 10, "Done when": every offline command on bad input (a missing path, a damaged file, a live
 * directory, no permission) says so in one clear line (`raftsnap <command>: <file>: <problem>`, or
 * `{"error": {...}}` on stdout under --json), exits non-zero and changes no file: the whole tree
 * the command was given (inputs and the place it would write) is hashed before and after.
 *
 * The matrix below has a row per command of src/cli/commands/ and a column per kind of bad input;
 * a cell that does not apply says why (it is listed as a skipped test with that reason). Real
 * processes (`node bin/run.js`, run `npm run build` first), in a fresh directory per cell:
 *
 *   missing     a path that does not exist
 *   damaged     a damaged file: fixtures/snapshots/truncated.snap, fixtures/hostile/bomb-1gib.snap,
 *               fixtures/corrupt-mid-wal (a flipped bit in a synced WAL record), a data directory
 *               whose meta.json is cut short
 *   live        a data directory held by a real running `serve --data-dir` (its LOCK names the
 *               process, which is alive). Commands that would change it refuse; commands that only
 *               read it read it with one `warning:` line (src/tools/load.ts: "a live lock only gives
 *               a warning"), exit 0 and change nothing: that is not an error, and the cell says so.
 *   unreadable  the input cannot be read (mode 000 / 0700, owned by root). Mode bits do not stop
 *               root, so as root the command runs as the unprivileged user nobody (uid 65534).
 *   unwritable  the place a command writes is not writable (owned by root, mode 0755; run as nobody)
 *   read-only   the place a command writes is on a read-only mount (`mount --bind` then `remount,ro`;
 *               needs root, skipped with the reason otherwise)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EPOCH, ROOT, isRoot, tmpDir, treeHash } from './helpers.js';

const RUN = path.join(ROOT, 'bin', 'run.js');
const NOBODY = 65534;

type Column = 'missing' | 'damaged' | 'live' | 'unreadable' | 'unwritable' | 'read-only';
const COLUMNS: Column[] = ['missing', 'damaged', 'live', 'unreadable', 'unwritable', 'read-only'];

/** One command line of a cell: its words (paths relative to the cell's directory). */
interface Variant {
  args: string[];
  /**
   * 'refuse' (default): one line, non-zero exit, nothing changed. 'reads': the command reads a live
   * directory as designed: one warning line, exit 0 (or diff's 1), nothing changed in the directory.
   */
  outcome?: 'refuse' | 'reads';
  /** Paths (relative to the cell's directory) to make unreadable for this variant. */
  unreadable?: string[];
}

/** A cell: the command lines to try, or why the cell does not apply. */
type Cell = Variant[] | string;

/**
 * Each cell's directory holds: good.snap, truncated.snap, bomb.snap (copies of the fixtures),
 * healthy/ and corrupt/ (fixtures/healthy, fixtures/corrupt-mid-wal), broken-meta/ (healthy with
 * its meta.json cut short) and out/ (an empty directory to write to). `live` is the directory the
 * running serve holds (a copy of fixtures/healthy in a directory of its own).
 */
const MATRIX: Record<string, Record<Column, Cell>> = {
  inspect: {
    missing: [{ args: ['missing.snap'] }, { args: ['missing-dir'] }],
    damaged: [{ args: ['truncated.snap'] }, { args: ['bomb.snap'] }, { args: ['corrupt'] }, { args: ['broken-meta'] }],
    live: [{ args: ['LIVE'], outcome: 'reads' }],
    unreadable: [{ args: ['good.snap'], unreadable: ['good.snap'] }, { args: ['healthy'], unreadable: ['healthy'] }],
    unwritable: 'inspect writes nothing',
    'read-only': 'inspect writes nothing',
  },
  snapshot: {
    missing: [{ args: ['missing-dir', '--out', 'out/x.snap'] }],
    damaged: [{ args: ['corrupt', '--out', 'out/x.snap'] }, { args: ['broken-meta', '--out', 'out/x.snap'] }],
    live: [{ args: ['LIVE', '--out', 'out/x.snap'], outcome: 'reads' }],
    unreadable: [{ args: ['healthy', '--out', 'out/x.snap'], unreadable: ['healthy'] }],
    unwritable: [{ args: ['healthy', '--out', 'out/x.snap'] }],
    'read-only': [{ args: ['healthy', '--out', 'ro/x.snap'] }],
  },
  compact: {
    missing: [{ args: ['missing-dir'] }],
    damaged: [{ args: ['corrupt'] }, { args: ['broken-meta'] }],
    live: [{ args: ['LIVE'] }, { args: ['LIVE', '--dry-run'], outcome: 'reads' }],
    unreadable: [{ args: ['healthy'], unreadable: ['healthy'] }],
    unwritable: [{ args: ['healthy'] }],
    'read-only': [{ args: ['ro/healthy'] }],
  },
  restore: {
    missing: [{ args: ['missing.snap', '--data-dir', 'out/new'] }],
    damaged: [{ args: ['truncated.snap', '--data-dir', 'out/new'] }, { args: ['bomb.snap', '--data-dir', 'out/new'] }],
    live: [{ args: ['good.snap', '--data-dir', 'LIVE', '--force'] }],
    unreadable: [{ args: ['good.snap', '--data-dir', 'out/new'], unreadable: ['good.snap'] }],
    unwritable: [{ args: ['good.snap', '--data-dir', 'out/new'] }, { args: ['good.snap', '--data-dir', 'healthy', '--force'] }],
    'read-only': [{ args: ['good.snap', '--data-dir', 'ro/new'] }, { args: ['good.snap', '--data-dir', 'ro/healthy', '--force'] }],
  },
  diff: {
    missing: [{ args: ['missing.snap', 'good.snap'] }, { args: ['good.snap', 'missing-dir'] }],
    damaged: [{ args: ['good.snap', 'truncated.snap'] }, { args: ['corrupt', 'good.snap'] }],
    live: [{ args: ['LIVE', 'healthy'], outcome: 'reads' }],
    unreadable: [{ args: ['good.snap', 'healthy'], unreadable: ['good.snap'] }, { args: ['good.snap', 'healthy'], unreadable: ['healthy'] }],
    unwritable: 'diff writes nothing',
    'read-only': 'diff writes nothing',
  },
  dump: {
    missing: [{ args: ['missing.snap'] }],
    damaged: [{ args: ['truncated.snap'] }, { args: ['bomb.snap'] }, { args: ['corrupt'] }, { args: ['broken-meta'] }],
    live: [{ args: ['LIVE'], outcome: 'reads' }],
    unreadable: [{ args: ['good.snap'], unreadable: ['good.snap'] }, { args: ['healthy'], unreadable: ['healthy'] }],
    unwritable: 'dump writes nothing (stdout only)',
    'read-only': 'dump writes nothing (stdout only)',
  },
  hash: {
    missing: [{ args: ['healthy', 'missing-dir'] }],
    damaged: [{ args: ['truncated.snap'] }, { args: ['corrupt'] }, { args: ['broken-meta'] }],
    live: [{ args: ['LIVE'], outcome: 'reads' }],
    unreadable: [{ args: ['healthy'], unreadable: ['healthy'] }, { args: ['good.snap', 'healthy'], unreadable: ['good.snap'] }],
    unwritable: 'hash writes nothing',
    'read-only': 'hash writes nothing',
  },
  repair: {
    missing: [{ args: ['missing-dir'] }],
    // A damaged WAL or snapshot is what repair is for (test/commands/repair.test.ts); a damaged
    // meta.json is not something it repairs.
    damaged: [{ args: ['broken-meta'] }, { args: ['broken-meta', '--cut-wal'] }],
    live: [{ args: ['LIVE', '--cut-wal'] }, { args: ['LIVE'], outcome: 'reads' }],
    unreadable: [{ args: ['corrupt', '--cut-wal'], unreadable: ['corrupt'] }],
    unwritable: [{ args: ['corrupt', '--cut-wal'] }],
    'read-only': [{ args: ['ro/corrupt', '--cut-wal'] }],
  },
  version: {
    missing: 'version takes no path',
    damaged: 'version takes no path',
    live: 'version takes no path',
    unreadable: 'version takes no path',
    unwritable: 'version writes nothing',
    'read-only': 'version writes nothing',
  },
};

/** The one line a refusal must be, by column (besides naming the command). */
const EXPECTED: Record<Column, RegExp> = {
  missing: /: missing[-\w.]*: no such file or directory/,
  // Names the damaged file (the WAL segment inside corrupt/, the meta.json) and what is wrong with it.
  damaged: /(truncated\.snap|bomb\.snap|corrupt\/wal\/\w+-\w+\.wal|broken-meta\/meta\.json): .*(truncated|checksum|corrupt|decompresses|not valid JSON)/,
  live: /in use by (the live node with )?pid \d+/,
  unreadable: /permission denied/,
  unwritable: /permission denied/,
  'read-only': /read-only file system/,
};

interface Run {
  stdout: string;
  stderr: string;
  exit: number;
}

function run(cwd: string, args: string[], unprivileged: boolean): Run {
  const r = spawnSync(process.execPath, [RUN, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, SOURCE_DATE_EPOCH: EPOCH, NO_COLOR: '1' },
    timeout: 60_000,
    ...(unprivileged && isRoot ? { uid: NOBODY, gid: NOBODY } : {}),
  });
  return { stdout: r.stdout, stderr: r.stderr, exit: r.status ?? -1 };
}

const lines = (s: string) => s.split('\n').filter((l) => l !== '');

/** A fresh directory with every input of a cell (see MATRIX); readable by nobody. */
function cellDir(): string {
  const d = tmpDir();
  const fx = (p: string) => path.join(ROOT, 'fixtures', p);
  fs.copyFileSync(fx('snapshots/good.snap'), path.join(d, 'good.snap'));
  fs.copyFileSync(fx('snapshots/truncated.snap'), path.join(d, 'truncated.snap'));
  fs.copyFileSync(fx('hostile/bomb-1gib.snap'), path.join(d, 'bomb.snap'));
  fs.cpSync(fx('healthy'), path.join(d, 'healthy'), { recursive: true });
  fs.cpSync(fx('corrupt-mid-wal'), path.join(d, 'corrupt'), { recursive: true });
  fs.cpSync(fx('healthy'), path.join(d, 'broken-meta'), { recursive: true });
  const meta = path.join(d, 'broken-meta', 'meta.json');
  fs.writeFileSync(meta, fs.readFileSync(meta).subarray(0, 20));
  fs.mkdirSync(path.join(d, 'out'));
  // mkdtemp makes 0700: let the unprivileged runs in (they still cannot write anything: root owns it all).
  fs.chmodSync(d, 0o755);
  return d;
}

// ------------------------------------------------------------------------------------------------
// A live directory: a real `serve --data-dir` holding its LOCK.

let live: { proc: ChildProcess; dir: string; pid: number } | null = null;

/** Directories this file makes outside a test (helpers' tmpDir removes its own after each test). */
const suiteDirs: string[] = [];

function suiteDir(): string {
  fs.mkdirSync(path.join(ROOT, 'tmp'), { recursive: true });
  const d = fs.mkdtempSync(path.join(ROOT, 'tmp', 'bad-input-'));
  fs.chmodSync(d, 0o755);
  suiteDirs.push(d);
  return d;
}

async function startLive(): Promise<{ proc: ChildProcess; dir: string; pid: number }> {
  const base = suiteDir();
  const dir = path.join(base, 'live');
  fs.cpSync(path.join(ROOT, 'fixtures', 'healthy'), dir, { recursive: true });
  const p = spawn(process.execPath, [RUN, 'serve', '--data-dir', dir, '--fsync', 'false'], { cwd: ROOT, stdio: ['pipe', 'ignore', 'pipe'] });
  let err = '';
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const lock = path.join(dir, 'LOCK');
  const t0 = Date.now();
  for (;;) {
    if (p.exitCode !== null) throw new Error(`serve exited ${p.exitCode}: ${err}`);
    if (fs.existsSync(lock) && fs.readFileSync(lock, 'utf8').trim() === String(p.pid)) break;
    if (Date.now() - t0 > 20_000) {
      p.kill();
      throw new Error(`serve took no LOCK within 20 s: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  // Opened and recovered: it writes nothing more until input comes.
  await new Promise((r) => setTimeout(r, 300));
  return { proc: p, dir, pid: p.pid! };
}

// ------------------------------------------------------------------------------------------------
// A read-only mount of a cell's directory at <cell>/ro (root only).

function roMount(cell: string): { ok: true; undo: () => void } | { ok: false; reason: string } {
  if (!isRoot) return { ok: false, reason: 'a read-only mount needs root' };
  const ro = path.join(cell, 'ro');
  const src = path.join(cell, 'ro-src');
  fs.mkdirSync(ro);
  fs.mkdirSync(src);
  for (const n of ['healthy', 'corrupt']) if (fs.existsSync(path.join(cell, n))) fs.cpSync(path.join(cell, n), path.join(src, n), { recursive: true });
  const bind = spawnSync('mount', ['--bind', src, ro], { encoding: 'utf8' });
  if (bind.status !== 0) return { ok: false, reason: `mount --bind failed: ${bind.stderr.trim()}` };
  const remount = spawnSync('mount', ['-o', 'remount,ro,bind', ro], { encoding: 'utf8' });
  const undo = () => void spawnSync('umount', [ro]);
  if (remount.status !== 0) {
    undo();
    return { ok: false, reason: `remount read-only failed: ${remount.stderr.trim()}` };
  }
  return { ok: true, undo };
}

let roReason: string | null = null;

beforeAll(async () => {
  live = await startLive();
  // Can this machine make a read-only mount? (Decided once; each cell makes its own.)
  const m = roMount(suiteDir());
  if (m.ok) m.undo();
  else roReason = m.reason;
}, 60_000);

afterAll(async () => {
  const p = live?.proc;
  if (p) {
    await new Promise<void>((resolve) => {
      if (p.exitCode !== null) return resolve();
      p.on('exit', () => resolve());
      p.stdin!.end(); // end of input: the node finishes and releases its LOCK
    });
  }
  for (const d of suiteDirs) fs.rmSync(d, { recursive: true, force: true });
});

// ------------------------------------------------------------------------------------------------

function checkRefusal(cmd: string, col: Column, r: Run, json: Run): void {
  const shown = `stdout: ${r.stdout}\nstderr: ${r.stderr}`;
  expect(r.exit, shown).not.toBe(0);
  expect(lines(r.stderr), shown).toHaveLength(1);
  const line = lines(r.stderr)[0]!;
  expect(line, shown).toMatch(new RegExp(`^raftsnap ${cmd}: `));
  expect(line, shown).toMatch(EXPECTED[col]);
  // No machine paths: the files are named as the user typed them (relative here).
  expect(line, shown).not.toContain(ROOT);
  // --json: the same error as one JSON document on stdout, nothing on stderr, the same exit; or, for
  // dump once its streamed document has begun (src/cli/commands/dump.ts), the same line on stderr.
  expect(json.exit, json.stderr).toBe(r.exit);
  let doc: { error?: { message: string; exit: number } } | null = null;
  try {
    doc = JSON.parse(json.stdout) as typeof doc;
  } catch {
    doc = null;
  }
  if (doc === null && cmd === 'dump') {
    expect(lines(json.stderr), json.stdout).toEqual([line]);
    return;
  }
  expect(json.stderr, json.stdout).toBe('');
  if (doc !== null && doc.error === undefined && cmd === 'inspect') {
    // inspect of a directory that would not recover: its report as far as it goes (as the text
    // before the line), the problem among its warnings, and the same exit.
    const problem = line.replace(/^raftsnap inspect: /, '').replace(/; `raftsnap repair .*$/, '');
    expect((doc as { warnings?: string[] }).warnings, json.stdout).toContain(problem);
    return;
  }
  const e = doc!.error!;
  expect(`raftsnap ${cmd}: ${e.message}`).toBe(line.replace(/; see raftsnap \w+ --help$/, ''));
  expect(e.exit).toBe(r.exit);
}

/** LIVE: the live directory, relative to the cell's directory (as a user would type it). */
function expandLive(cwd: string, args: string[]): string[] {
  return args.map((a) => (a === 'LIVE' ? path.relative(cwd, live!.dir) : a));
}

describe('bad input: one clear line, a non-zero exit, no file changed', () => {
  it('the matrix has a row for every command of src/cli/commands/ and a cell for every column', () => {
    const files = fs.readdirSync(path.join(ROOT, 'src', 'cli', 'commands')).filter((n) => n.endsWith('.ts')).map((n) => n.slice(0, -3));
    expect(Object.keys(MATRIX).sort()).toEqual(files.sort());
    for (const row of Object.values(MATRIX)) expect(Object.keys(row).sort()).toEqual([...COLUMNS].sort());
  });

  for (const [cmd, row] of Object.entries(MATRIX)) {
    for (const col of COLUMNS) {
      const cell = row[col];
      if (typeof cell === 'string') {
        it.skip(`${cmd} × ${col}: does not apply (${cell})`, () => {});
        continue;
      }
      const needsNobody = col === 'unreadable' || col === 'unwritable';
      it(`${cmd} × ${col}`, (ctx) => {
        if (col === 'read-only' && roReason !== null) ctx.skip(`no read-only mount: ${roReason}`);
        // As another user, root-owned files cannot be written: that needs root to start the command as nobody.
        if (col === 'unwritable' && !isRoot) ctx.skip('run as root: the command runs as nobody on files root owns');
        for (const v of cell) {
          const cwd = cellDir();
          const mount = col === 'read-only' ? roMount(cwd) : null;
          if (mount && !mount.ok) throw new Error(mount.reason);
          const args = [cmd, ...(col === 'live' ? expandLive(cwd, v.args) : v.args)];
          try {
            for (const u of v.unreadable ?? []) fs.chmodSync(path.join(cwd, u), fs.statSync(path.join(cwd, u)).isDirectory() ? 0o700 : 0o000);
            const before = treeHash(cwd);
            const liveBefore = treeHash(live!.dir);
            const r = run(cwd, args, needsNobody);
            const json = v.outcome === 'reads' ? null : run(cwd, [...args, '--json'], needsNobody);
            const shown = `raftsnap ${args.join(' ')}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
            if (v.outcome === 'reads') {
              // Not an error: read-only on a live directory, said in one warning line.
              expect(cmd === 'diff' ? [0, 1] : [0], shown).toContain(r.exit);
              expect(lines(r.stderr), shown).toEqual([expect.stringMatching(new RegExp(`^warning: .*in use by pid ${live!.pid}`))]);
            } else checkRefusal(cmd, col, r, json!);
            // Nothing changed: the cell's inputs and where it would write (a snapshot written to
            // out/ from a live directory is that command's output, not a change to what it read).
            if (!(cmd === 'snapshot' && v.outcome === 'reads')) expect(treeHash(cwd), `${shown}\nthe tree changed`).toBe(before);
            else expect(fs.readdirSync(path.join(cwd, 'out'))).toEqual(['x.snap']);
            expect(treeHash(live!.dir), `${shown}\nthe live directory changed`).toBe(liveBefore);
          } finally {
            if (mount?.ok) mount.undo();
            for (const u of v.unreadable ?? []) fs.chmodSync(path.join(cwd, u), fs.statSync(path.join(cwd, u)).isDirectory() ? 0o755 : 0o644);
          }
        }
      }, 60_000);
    }
  }

  it('the live directory is still the running node\'s (its LOCK), and it exits cleanly at the end of its input', () => {
    expect(live!.proc.exitCode).toBe(null);
    expect(fs.readFileSync(path.join(live!.dir, 'LOCK'), 'utf8').trim()).toBe(String(live!.pid));
  });
});
