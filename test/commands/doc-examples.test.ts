/**
 * The examples in README.md and docs/*.md are run, so that they cannot drift from the output
 * (issue 10: README's `FAIL` for `FAILED`, "every command takes --json" while serve refused it).
 *
 * Every ```console block is a session: each `$ ` line (with `\` continuation lines) is run by bash,
 * in order, in a scratch directory set up for that file (below), with `raftsnap` and
 * `npx raftsnap` running this build, stderr merged into stdout and SOURCE_DATE_EPOCH=1704164645;
 * the lines after it, up to the next `$ `, are its expected output. Placeholders: a line that is
 * only `...` stands for any number of lines; `...` inside a line for any text. A block preceded by
 * `<!-- doc-test: not run: <reason> -->` is not run (a cluster run, whose output depends on timing).
 * UPDATE_DOCS=1 writes the actual output into the file for every failing example that has no
 * placeholder (review the diff: the point is to see what changed). Real processes: needs `npm run build`.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EPOCH, ROOT, tmpDir } from './helpers.js';

/** What each file's examples run on (copies of fixtures/), as the file says in its text. */
const SETUP: Record<string, Record<string, string>> = {
  'README.md': { fixtures: 'fixtures', n1: 'fixtures/healthy' },
  'docs/TOOLS.md': {
    snapshots: 'fixtures/snapshots',
    n1: 'fixtures/healthy',
    torn: 'fixtures/torn-tail',
    broken: 'fixtures/broken-snapshot',
    locked: 'fixtures/locked',
    corrupt: 'fixtures/corrupt-mid-wal',
    hostile: 'fixtures/hostile',
    'root/n1': 'fixtures/healthy',
    'root/n2': 'fixtures/healthy',
    'root/n3': 'fixtures/torn-tail',
  },
};

interface Example {
  line: number;
  command: string;
  expected: string[];
}

interface Block {
  line: number;
  examples: Example[];
  skipped: string | null;
}

function blocks(text: string): Block[] {
  const lines = text.split('\n');
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```console') continue;
    let j = i - 1;
    while (j >= 0 && lines[j]!.trim() === '') j--;
    const m = j >= 0 ? /^<!-- doc-test: not run: (.+) -->$/.exec(lines[j]!.trim()) : null;
    const block: Block = { line: i + 1, examples: [], skipped: m ? m[1]! : null };
    let k = i + 1;
    for (; k < lines.length && lines[k] !== '```'; k++) {
      const l = lines[k]!;
      if (l.startsWith('$ ')) {
        let command = l.slice(2);
        while (command.endsWith('\\') && k + 1 < lines.length) command += '\n' + lines[++k]!;
        block.examples.push({ line: k + 1, command, expected: [] });
      } else if (block.examples.length > 0) block.examples[block.examples.length - 1]!.expected.push(l);
    }
    out.push(block);
    i = k;
  }
  return out;
}

/** Does `actual` match `expected` (with `...` placeholders)? */
function matches(expected: string[], actual: string[]): boolean {
  const lineRe = (e: string) => new RegExp('^' + e.split('...').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
  const memo = new Map<string, boolean>();
  const go = (i: number, j: number): boolean => {
    const key = `${i},${j}`;
    if (memo.has(key)) return memo.get(key)!;
    let r: boolean;
    if (i === expected.length) r = j === actual.length;
    else if (expected[i] === '...') r = go(i + 1, j) || (j < actual.length && go(i, j + 1));
    else r = j < actual.length && lineRe(expected[i]!).test(actual[j]!) && go(i + 1, j + 1);
    memo.set(key, r);
    return r;
  };
  return go(0, 0);
}

function run(file: string, examples: Example[]): string[][] {
  const dir = tmpDir();
  for (const [name, from] of Object.entries(SETUP[file] ?? {})) fs.cpSync(path.join(ROOT, from), path.join(dir, name), { recursive: true });
  const bin = path.join(dir, '.bin');
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, 'raftsnap'), `#!/bin/sh\nexec "${process.execPath}" "${path.join(ROOT, 'bin', 'run.js')}" "$@"\n`, { mode: 0o755 });
  const script = [
    'exec 2>&1',
    'npx() { if [ "$1" = raftsnap ]; then shift; raftsnap "$@"; else command npx "$@"; fi; }',
    '__m() { local r=$?; printf "\\n@@@doc-test@@@\\n"; return $r; }',
    ...examples.flatMap((e) => ['__m', e.command]),
    '__m',
  ].join('\n');
  const r = spawnSync('bash', ['-c', script], {
    cwd: dir,
    encoding: 'utf8',
    input: '',
    timeout: 120_000,
    env: { ...process.env, PATH: `${bin}:${process.env['PATH']}`, SOURCE_DATE_EPOCH: EPOCH, NO_COLOR: '1' },
  });
  const parts = r.stdout.split('\n@@@doc-test@@@\n');
  // parts[0] is before the first marker; the last follows the closing one.
  return parts.slice(1, examples.length + 1).map((p) => p.replace(/\n$/, '').split('\n').filter((l, i, a) => !(a.length === 1 && l === '')).map((l) => l.trimEnd()));
}

const files = ['README.md', ...fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

describe('documented examples run as printed', () => {
  for (const file of files) {
    const all = blocks(fs.readFileSync(path.join(ROOT, file), 'utf8'));
    const runnable = all.filter((b) => b.skipped === null && b.examples.length > 0);
    if (runnable.length === 0) continue;
    it(`${file}: ${runnable.reduce((n, b) => n + b.examples.length, 0)} commands in ${runnable.length} blocks`, () => {
      const examples = runnable.flatMap((b) => b.examples);
      const got = run(file, examples);
      const failures: string[] = [];
      const rewrites: Array<{ e: Example; actual: string[] }> = [];
      examples.forEach((e, i) => {
        const actual = got[i] ?? ['(no output captured)'];
        const expected = e.expected.map((l) => l.trimEnd());
        if (!matches(expected, actual)) {
          if (process.env['UPDATE_DOCS'] === '1' && !expected.some((l) => l.includes('...'))) rewrites.push({ e, actual });
          else failures.push(`${file}:${e.line}: $ ${e.command}\n--- documented\n${expected.join('\n')}\n--- actual\n${actual.join('\n')}`);
        }
      });
      if (rewrites.length > 0) {
        const lines = fs.readFileSync(path.join(ROOT, file), 'utf8').split('\n');
        // From the bottom, so that earlier line numbers stay right: replace the lines after each command.
        for (const { e, actual } of rewrites.reverse()) lines.splice(e.line, e.expected.length, ...actual);
        fs.writeFileSync(path.join(ROOT, file), lines.join('\n'));
      }
      expect(failures.join('\n\n')).toBe('');
    });
  }

  it('every block that is not run says why', () => {
    for (const file of files) {
      for (const b of blocks(fs.readFileSync(path.join(ROOT, file), 'utf8'))) {
        if (b.skipped !== null) expect(b.skipped.length, `${file}:${b.line}`).toBeGreaterThan(10);
      }
    }
  });
});
