// Every example in the offline commands' --help runs as printed (in a directory holding copies of
// fixtures/healthy as ./raftsnap-data/n1 and n2, as `raftsnap cluster` would leave them), in the
// order a user would try them: snapshot first (the others use its backup.snap), the commands that
// change a directory last. The commands are the files of src/cli/commands/: a new one fails here
// until its examples are run.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { runCommand } from '@oclif/test';
import { describe, expect, it } from 'vitest';
import type { CommandSpec } from '../../src/cli/spec.js';
import { ROOT, tmpDir } from './helpers.js';

const RUN = path.join(ROOT, 'bin', 'run.js');

/** The offline commands, in the order their examples run. */
const ORDER = ['snapshot', 'inspect', 'diff', 'dump', 'hash', 'compact', 'restore', 'repair', 'version'];

/** The files of src/cli/commands/ (one offline command each). */
function specFiles(): string[] {
  return fs
    .readdirSync(path.join(ROOT, 'src', 'cli', 'commands'))
    .filter((n) => n.endsWith('.ts'))
    .map((n) => n.slice(0, -3))
    .sort();
}

async function spec(cmd: string): Promise<CommandSpec> {
  const mod = (await import(/* @vite-ignore */ path.join(ROOT, 'src', 'cli', 'commands', `${cmd}.ts`))) as { default: CommandSpec };
  return mod.default;
}

/** The examples as --help prints them (after `$ raftsnap`), without any `| ...` pipeline. */
async function examples(cmd: string): Promise<string[]> {
  // Examples are given once, in the spec (src/cli/commands), and shown by --help as printed here.
  return (await spec(cmd)).examples.map((e) => e.split(' | ')[0]!.trim());
}

/** In-process run in `cwd` (the examples use paths relative to the current directory). */
async function runIn(cwd: string, args: string[]): Promise<{ exit: number; stderr: string }> {
  const prev = process.cwd();
  process.chdir(cwd);
  try {
    const r = await runCommand(args, { root: ROOT });
    const err = r.error as { oclif?: { exit?: number } } | undefined;
    return { exit: err ? (err.oclif?.exit ?? 1) : 0, stderr: r.stderr };
  } finally {
    process.chdir(prev);
  }
}

function dataRoot(): string {
  const cwd = tmpDir();
  for (const n of ['n1', 'n2']) fs.cpSync(path.join(ROOT, 'fixtures', 'healthy'), path.join(cwd, 'raftsnap-data', n), { recursive: true });
  return cwd;
}

describe('--help examples', () => {
  it('the list covers every command of src/cli/commands/', () => {
    expect([...ORDER].sort()).toEqual(specFiles());
  });

  it('every example of every offline command works as printed', async () => {
    const cwd = dataRoot();
    let count = 0;
    for (const cmd of ORDER) {
      const list = await examples(cmd);
      expect(list.length, cmd).toBeGreaterThanOrEqual(2);
      for (const ex of list) {
        const args = ex.split(/\s+/);
        expect(args[0]).toBe(cmd);
        const r = await runIn(cwd, args);
        // diff's exit 1 is its answer "they differ" (backup.snap against n1 after the examples before it).
        const ok = cmd === 'diff' ? r.exit === 0 || r.exit === 1 : r.exit === 0;
        expect(ok, `raftsnap ${ex}: exit ${r.exit}: ${r.stderr}`).toBe(true);
        count++;
      }
    }
    expect(count).toBeGreaterThanOrEqual(29);
  });

  it('--help prints every example of the spec, and descriptions are paragraphs, not hard-wrapped lines re-wrapped into ragged ones', async () => {
    for (const cmd of ORDER) {
      const r = spawnSync(process.execPath, [RUN, cmd, '--help'], { encoding: 'utf8', env: { ...process.env, COLUMNS: '80' } });
      expect(r.status, `${cmd} --help: ${r.stderr}`).toBe(0);
      const shown = r.stdout.split('EXAMPLES')[1] ?? '';
      for (const ex of (await spec(cmd)).examples) expect(shown, `${cmd} --help`).toContain(`$ raftsnap ${ex}`);
      const desc = r.stdout.split('DESCRIPTION')[1]!.split('EXAMPLES')[0]!;
      const lines = desc.split('\n').slice(1, -1);
      // A ragged re-wrap leaves a short line followed by a non-empty one in the middle of a paragraph.
      for (let i = 0; i + 1 < lines.length; i++) {
        const cur = lines[i]!.trim();
        const next = lines[i + 1]!.trim();
        if (cur && next) expect(cur.length + 1 + next.split(' ')[0]!.length, `${cmd}: "${cur}" / "${next}"`).toBeGreaterThan(70);
      }
    }
  });

  it('every offline command runs as a process without loading oclif (the fast path of bin/run.js)', async () => {
    const cwd = dataRoot();
    // A module hook that names every @oclif module the process resolves.
    fs.writeFileSync(
      path.join(cwd, 'hook.mjs'),
      "export async function resolve(s, c, next) { if (s.includes('@oclif')) process.stderr.write('OCLIF ' + s + '\\n'); return next(s, c); }\n",
    );
    fs.writeFileSync(path.join(cwd, 'register.mjs'), "import { register } from 'node:module';\nregister('./hook.mjs', import.meta.url);\n");
    const run = (args: string[]) =>
      spawnSync(process.execPath, ['--import', path.join(cwd, 'register.mjs'), RUN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, SOURCE_DATE_EPOCH: '1704164645' } });
    // The hook sees oclif when it is loaded (--help goes to oclif).
    expect(run(['inspect', '--help']).stderr).toContain('OCLIF @oclif/core');
    // The backup.snap the other examples read.
    expect(run(['snapshot', './raftsnap-data/n1', '--out', 'backup.snap']).status).toBe(0);
    for (const cmd of ORDER) {
      const ex = (await examples(cmd))[0]!;
      const r = run(ex.split(/\s+/));
      expect(r.status, `raftsnap ${ex}: ${r.stderr}`).toBe(0);
      expect(r.stderr, `raftsnap ${ex}`).not.toContain('OCLIF');
    }
    expect(run(['--version']).stderr).not.toContain('OCLIF');
  });
});
