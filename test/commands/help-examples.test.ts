// Every example in the offline commands' --help runs as printed (in a directory holding copies of
// fixtures/healthy as ./raftsnap-data/n1 and n2, as `raftsnap cluster` would leave them), in the
// order a user would try them: snapshot first (the others use its backup.snap).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { runCommand } from '@oclif/test';
import { describe, expect, it } from 'vitest';
import { ROOT, tmpDir } from './helpers.js';

const RUN = path.join(ROOT, 'bin', 'run.js');

/** The examples as --help prints them (after `$ raftsnap`), without any `| ...` pipeline. */
async function examples(cmd: string): Promise<string[]> {
  const mod = (await import(/* @vite-ignore */ path.join(ROOT, 'src', 'commands', `${cmd}.ts`))) as { default: { examples?: unknown[] } };
  // Examples are given once, in the spec (src/cli/commands), and shown by --help as printed here.
  return (mod.default.examples ?? [])
    .map((e) => (typeof e === 'string' ? e : (e as { command: string }).command))
    .map((e) => e.replace('<%= config.bin %> ', '').split(' | ')[0]!.trim());
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

describe('--help examples', () => {
  it('every example of snapshot, inspect, diff, compact and restore works as printed', async () => {
    const cwd = tmpDir();
    for (const n of ['n1', 'n2']) fs.cpSync(path.join(ROOT, 'fixtures', 'healthy'), path.join(cwd, 'raftsnap-data', n), { recursive: true });
    let count = 0;
    for (const cmd of ['snapshot', 'inspect', 'diff', 'compact', 'restore', 'repair', 'version']) {
      const list = await examples(cmd);
      expect(list.length, cmd).toBeGreaterThanOrEqual(2);
      for (const ex of list) {
        const args = ex.split(/\s+/);
        expect(args[0]).toBe(cmd);
        const r = await runIn(cwd, args);
        const ok = cmd === 'diff' ? r.exit === 0 || r.exit === 1 : r.exit === 0;
        expect(ok, `raftsnap ${ex}: exit ${r.exit}: ${r.stderr}`).toBe(true);
        count++;
      }
    }
    expect(count).toBeGreaterThanOrEqual(18);
  });

  it('descriptions are paragraphs, not hard-wrapped lines re-wrapped into ragged ones', () => {
    for (const cmd of ['inspect', 'snapshot', 'compact', 'restore', 'diff', 'repair']) {
      const r = spawnSync(process.execPath, [RUN, cmd, '--help'], { encoding: 'utf8', env: { ...process.env, COLUMNS: '80' } });
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
});
