/**
 * Issue 10, messages: usage errors on one line that say what to do (oclif's multi-line errors were
 * flattened with "; "), "did you mean" for unknown commands and flags, `--snapshot-threshold -1`
 * called "ambiguous", "1 entries", compact's two messages for a live directory and its refused
 * dry run, colour (NO_COLOR, --no-color, header rows not red) and terminal width.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { drawTable, textWidth } from '../../src/cli/table.js';
import { wantColor } from '../../src/cli/run.js';
import { ROOT, copyFixture, inproc, proc, treeHash } from './helpers.js';

const oneLine = (s: string) => s.trim().split('\n');

describe('usage errors: one line, exit 2, what to do', () => {
  const cases: Array<[string[], RegExp]> = [
    [['inspect'], /^raftsnap inspect: missing argument <path> \(snapshot file or data directory\); see raftsnap inspect --help$/],
    [['diff', 'a'], /^raftsnap diff: missing argument <b> \(snapshot file or data directory\); see raftsnap diff --help$/],
    [['restore', 'x.snap'], /^raftsnap restore: missing flag --data-dir DIR \(the data directory to create\)/],
    [['inspect', 'x', '--verfy'], /unknown flag --verfy \(did you mean --verify\?\)/],
    [['inspect', 'x', 'y'], /unexpected argument "y" \(inspect takes <path>\)/],
    [['inspect', 'x', '--top', 'abc'], /--top: expected an integer, got "abc"/],
    [['inspect', 'x', '--top', '-1'], /--top: must be at least 0, got -1/],
    [['compact', 'x', '--retain', '0'], /--retain: must be at least 1, got 0/],
    [['inspect', 'x', '--from', '3'], /--from needs --log/],
    [['inspect', 'x', '--verify', '--log'], /--verify and --log cannot be given together/],
  ];
  for (const [args, re] of cases) {
    it(args.join(' '), async () => {
      for (const r of [await inproc(args), proc(args)]) {
        expect(r.exit).toBe(2);
        expect(r.stdout).toBe('');
        expect(oneLine(r.stderr)).toHaveLength(1);
        expect(r.stderr.trim()).toMatch(re);
        expect(r.stderr).not.toContain(':;');
      }
      const j = await inproc([...args, '--json']);
      expect(j.exit).toBe(2);
      expect(JSON.parse(j.stdout).error.code).toBe('BAD_ARGS');
    });
  }

  it('an unknown command: did you mean', async () => {
    const r = proc(['inspct', 'x']);
    expect(r.exit).toBe(2);
    expect(oneLine(r.stderr)).toEqual(['raftsnap: unknown command "inspct"; did you mean "raftsnap inspect"? (raftsnap --help lists the commands)']);
    // The same through oclif (in-process: its command_not_found hook).
    const i = await inproc(['inspct', 'x']);
    expect(i.exit).toBe(2);
    expect(i.stderr.trim()).toBe('raftsnap: unknown command "inspct"; did you mean "raftsnap inspect"? (raftsnap --help lists the commands)');
    const far = proc(['frobnicate']);
    expect(far.exit).toBe(2);
    expect(far.stderr).not.toMatch(/did you mean/);
  });

  it('serve --snapshot-threshold -1 says what is wrong with -1 (not "ambiguous")', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'run.js'), 'serve', '--snapshot-threshold', '-1'], { encoding: 'utf8', input: '' });
    expect(r.status).toBe(2);
    expect(r.stderr).not.toMatch(/ambiguous/);
    expect(r.stderr).toMatch(/--snapshot-threshold: expected a non-negative integer, got "-1"/);
  });

  it('"1 entry", not "1 entries"', async () => {
    const r = await inproc(['inspect', 'fixtures/healthy', '--log', '--from', '300']);
    expect(r.stdout).toMatch(/^1 entry; commit index 290\.$/m);
  });
});

describe('compact of a live directory', () => {
  it('one message, and a dry run works and says the directory is live', async () => {
    const dir = copyFixture('locked');
    const h = treeHash(dir);
    const r = await inproc(['compact', dir]);
    expect(r.exit).toBe(2);
    expect(oneLine(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/in use by the live node with pid 1 \(LOCK\); stop that node before compacting, or use --dry-run/);
    const d = await inproc(['compact', dir, '--dry-run']);
    expect(d.exit).toBe(0);
    expect(d.stdout).toMatch(/^Dry run on .*: nothing was changed\. The directory is LIVE \(in use by pid 1\)/);
    expect(d.stderr).toMatch(/^warning: .*in use by pid 1/m);
    const j = JSON.parse((await inproc(['compact', dir, '--dry-run', '--json'])).stdout);
    expect(j.live).toEqual({ pid: 1 });
    expect(treeHash(dir)).toBe(h);
  });
});

describe('colour and width', () => {
  it('colour only on a terminal, never with NO_COLOR, --no-color or TERM=dumb', () => {
    expect(wantColor(false, {}, true)).toBe(true);
    expect(wantColor(false, {}, false)).toBe(false);
    expect(wantColor(false, { NO_COLOR: '1' }, true)).toBe(false);
    expect(wantColor(true, {}, true)).toBe(false);
    expect(wantColor(false, { TERM: 'dumb' }, true)).toBe(false);
  });

  it('header rows are bold, not red; failures red; no escape codes without colour', () => {
    const t = drawTable(['file', 'result'], [['a', 'ok'], ['b', 'FAILED']], { color: true, maxWidth: null });
    expect(t).toContain('\u001b[1mfile\u001b[22m');
    expect(t).not.toContain('\u001b[31mfile');
    expect(t).toContain('\u001b[31mFAILED\u001b[39m');
    expect(drawTable(['file'], [['FAILED']], { color: false, maxWidth: null })).not.toContain('\u001b[');
  });

  it('a table wider than the terminal is wrapped to fit, keeping every word', () => {
    const long = 'n1/snap/0000000000000003-00000000000000fa.snap (index 250, term 3) + 50 log entries (251..300)';
    for (const width of [60, 80, 40]) {
      const t = drawTable(null, [['recovery loads', long], ['node', 'n1']], { color: false, maxWidth: width });
      for (const l of t.split('\n')) expect(textWidth(l)).toBeLessThanOrEqual(width);
      const text = t.replace(/[│┌┐└┘┬┴─]/g, ' ').split(/\s+/).join('');
      expect(text).toContain(long.replace(/\s+/g, ''));
    }
  });

  it('real process: --no-color and NO_COLOR give plain text; a pipe never gets colour', () => {
    for (const env of [{ NO_COLOR: '1' }, {}]) {
      const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'run.js'), 'inspect', 'fixtures/snapshots/good.snap', '--no-color'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env } });
      expect(r.status).toBe(0);
      expect(r.stdout).not.toContain('\u001b[');
    }
  });
});
