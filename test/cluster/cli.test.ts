// `raftsnap cluster` as a real process: its errors are one line naming the problem (JSON with --json).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tempDir } from './tmp.js';

const RUN = fileURLToPath(new URL('../../bin/run.js', import.meta.url));
const built = existsSync(fileURLToPath(new URL('../../dist/commands/cluster.js', import.meta.url)));
const run = (args: string[], cwd: string) => spawnSync(process.execPath, [RUN, 'cluster', ...args], { cwd, encoding: 'utf8' });

describe.skipIf(!built)('raftsnap cluster errors', () => {
  it('a missing or bad history file, a data root that is not ours: one line, non-zero exit, nothing on stdout', () => {
    const cwd = tempDir('raftsnap-cluster-cli-');
    writeFileSync(join(cwd, 'bad.jsonl'), '{"bad\n');
    mkdirSync(join(cwd, 'precious'));
    writeFileSync(join(cwd, 'precious', 'x'), 'keep');
    const cases: Array<[string[], RegExp]> = [
      [['--check', 'missing.jsonl'], /^raftsnap cluster: missing\.jsonl: no such file or directory$/],
      [['--check', 'bad.jsonl'], /^raftsnap cluster: bad\.jsonl: history line 1: not JSON$/],
      [['--data-root', 'precious', '--time', '1'], /^raftsnap cluster: data root .*precious is not empty and was not made by raftsnap cluster .*refusing to clear it$/],
    ];
    for (const [args, re] of cases) {
      const r = run(args, cwd);
      expect(r.status, r.stderr).not.toBe(0);
      const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('raftsnap cluster: seed'));
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(re);
      expect(r.stdout).toBe('');
      const j = run([...args, '--json'], cwd);
      expect(j.status).toBe(r.status);
      const doc = JSON.parse(j.stdout);
      expect(Object.keys(doc)).toEqual(['error']);
      expect(doc.error.message).toMatch(re.source.includes('missing') ? /missing\.jsonl/ : /./);
    }
  });
});
