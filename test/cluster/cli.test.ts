// `raftsnap cluster` as a real process: its errors are one line naming the problem (JSON with --json).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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
    mkdirSync(join(cwd, 'theirs', 'n1'), { recursive: true });
    writeFileSync(join(cwd, 'theirs', '.raftsnap-cluster'), JSON.stringify({ createdBy: 'raftsnap cluster', dirs: ['n9'] }));
    const cases: Array<[string[], RegExp]> = [
      [['--check', 'missing.jsonl'], /^raftsnap cluster: missing\.jsonl: no such file or directory$/],
      [['--check', 'bad.jsonl'], /^raftsnap cluster: bad\.jsonl: history line 1: not JSON$/],
      [['--data-root', 'precious', '--time', '1'], /^raftsnap cluster: data root .*precious is not empty and was not made by raftsnap cluster .*refusing to use it \(pass another --data-root\)$/],
      [['--data-root', 'theirs', '--time', '1'], /^raftsnap cluster: data root .*theirs: n1 exists but no earlier run recorded it as its own .*refusing to clear it/],
    ];
    for (const [args, re] of cases) {
      const r = run(args, cwd);
      expect(r.status, r.stderr).toBe(2); // the check could not be made: 2, as Maelstrom's "unknown", never 1
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

  it('exit 2 when the run cannot be made: a bad flag value, a node program that does not exist', () => {
    const cwd = tempDir('raftsnap-cluster-cli-');
    const cases: Array<[string[], RegExp]> = [
      [['--time', 'abc'], /--time.*expected a non-negative number, got abc/],
      [['--nemesis', 'bogus', '--time', '1'], /unknown nemesis bogus/],
      [['--time', '1', '--node-script', 'missing.js'], /missing\.js: no such file/],
      [['--time', '1', '--bin', 'missing-node'], /^raftsnap cluster: missing-node: no such file \(the --bin node program\)$/m],
      [['--time', '1', '--bin', 'plain.txt'], /^raftsnap cluster: plain\.txt: not executable/m],
      [['--time', '1', '--', '--durable'], /arguments after -- are for a --bin node program/],
      [['--time', '1', 'stray'], /unexpected argument stray/],
    ];
    writeFileSync(join(cwd, 'plain.txt'), 'not a program');
    for (const [args, re] of cases) {
      const r = run(args, cwd);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(re);
    }
  });

  it('--check: 0 linearizable, 1 not linearizable, 2 unknown (budget exceeded); a history without an ok operation warns', () => {
    const cwd = tempDir('raftsnap-cluster-cli-');
    const ev = (type: string, process: number, f: string, value: unknown, time: number) => JSON.stringify({ type, process, f, key: 0, value, time });
    const write = (name: string, lines: string[]) => writeFileSync(join(cwd, name), lines.join('\n') + '\n');
    write('ok.jsonl', [ev('invoke', 0, 'write', 1, 0), ev('ok', 0, 'write', 1, 1), ev('invoke', 1, 'read', null, 2), ev('ok', 1, 'read', 1, 3)]);
    write('bad.jsonl', [ev('invoke', 0, 'write', 1, 0), ev('ok', 0, 'write', 1, 1), ev('invoke', 1, 'read', null, 2), ev('ok', 1, 'read', 2, 3)]);
    write('none.jsonl', [ev('invoke', 0, 'write', 1, 0), ev('fail', 0, 'write', 1, 1)]);
    // Many concurrent indeterminate writes and reads, then a read of a value never written: the
    // search needs far more than its first 4096 steps, so a zero budget gives "unknown".
    const hard: string[] = [];
    for (let i = 1; i <= 12; i++) hard.push(ev('invoke', i, 'write', i, 0), ev('invoke', 100 + i, 'read', null, 0));
    for (let i = 1; i <= 12; i++) hard.push(ev('info', i, 'write', i, 1), ev('ok', 100 + i, 'read', i, 1));
    hard.push(ev('invoke', 999, 'read', null, 2), ev('ok', 999, 'read', 99, 3));
    write('hard.jsonl', hard);
    const cases: Array<[string, number, RegExp]> = [
      ['ok.jsonl', 0, /^linearizable: /],
      ['bad.jsonl', 1, /^not-linearizable: /],
      ['hard.jsonl', 2, /^unknown: /],
      ['none.jsonl', 0, /^linearizable: /],
    ];
    for (const [file, status, re] of cases) {
      const r = run(['--check', file, '--check-budget', '0'], cwd);
      expect(r.status, `${file}: ${r.stderr}`).toBe(status);
      expect(r.stdout).toMatch(re);
      if (file === 'none.jsonl') expect(r.stderr).toMatch(/WARNING: no operation completed ok: the verdict is vacuous/);
      else expect(r.stderr).toBe('');
    }
    const j = run(['--check', 'none.jsonl', '--json'], cwd);
    expect(JSON.parse(j.stdout)).toMatchObject({ verdict: 'linearizable', vacuous: true });
  });
});

describe.skipIf(!built)('raftsnap cluster interrupted', () => {
  it('Ctrl-C stops the run and still writes the history, the report and the pictures (exit 130)', async () => {
    const cwd = tempDir('raftsnap-cluster-sigint-');
    const fake = fileURLToPath(new URL('./fixtures/fake-node.mjs', import.meta.url));
    const child = spawn(process.execPath, [RUN, 'cluster', '--time', '30', '--node-script', fake, '--nemesis', 'partition', '--nemesis-interval', '0.5'], {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (stderr.includes('started n1')) {
          clearInterval(poll);
          setTimeout(resolve, 2500);
        }
      }, 100);
    });
    const t0 = Date.now();
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code, stderr).toBe(130);
    expect(Date.now() - t0).toBeLessThan(15_000);
    const dir = join(cwd, 'raftsnap-results', 'latest');
    for (const f of ['history.jsonl', 'report.json', 'index.html', 'timeline.html', 'latency-raw.svg', 'rate.svg', 'messages.svg']) {
      expect(existsSync(join(dir, f)), f).toBe(true);
    }
    const rep = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    expect(rep).toMatchObject({ aborted: true, exitCode: 130, verdict: 'linearizable' });
    expect(rep.ops.total).toBeGreaterThan(20);
    expect(rep.durationS).toBeLessThan(15);
    expect(stdout).toMatch(/Interrupted: Linearizable\./);
  });
});
