/**
 * Issue 10: `serve --data-dir` pointing at a file or a directory that is not a data directory was
 * reported only once `init` arrived, and with no input the process exited 0 without a word; a
 * LOCK was left behind after SIGTERM and after a failed start. Real processes (npm run build).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, abs, copyFixture, tmpDir, treeHash } from './helpers.js';

const RUN = path.join(ROOT, 'bin', 'run.js');
const serve = (args: string[], input = '') => spawnSync(process.execPath, [RUN, 'serve', ...args], { cwd: ROOT, encoding: 'utf8', input, timeout: 20_000 });
const INIT = JSON.stringify({ src: 'c0', dest: 'n1', body: { type: 'init', msg_id: 1, node_id: 'n1', node_ids: ['n1', 'n2', 'n3'] } }) + '\n';

describe('serve --data-dir is checked at start', () => {
  it('a file: one line at once, exit 2, with no input at all', () => {
    const f = path.join(tmpDir(), 'afile');
    fs.writeFileSync(f, 'not a directory\n');
    const r = serve(['--data-dir', f]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^FATAL: cannot open the data directory: .*afile: not a directory/);
    expect(fs.readFileSync(f, 'utf8')).toBe('not a directory\n');
  });

  it('a directory that is not a data directory: exit 2, nothing created in it', () => {
    const d = path.join(tmpDir(), 'docs');
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'letter.txt'), 'hello\n');
    const r = serve(['--data-dir', d]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/not a raftsnap data directory/);
    expect(fs.readdirSync(d)).toEqual(['letter.txt']);
  });

  it('a corrupt WAL: said at start, exit 1 without input; init is still answered with the error; no LOCK left', () => {
    const dir = copyFixture('corrupt-mid-wal');
    const h = treeHash(dir);
    const r = serve(['--data-dir', abs(dir)]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^FATAL: cannot recover the data directory .*WAL corrupt.*raftsnap repair .* --dry-run/m);
    const i = serve(['--data-dir', abs(dir)], INIT);
    expect(i.status).toBe(1);
    expect(JSON.parse(i.stdout.trim()).body).toMatchObject({ type: 'error', code: 13 });
    expect(fs.existsSync(path.join(abs(dir), 'LOCK'))).toBe(false);
    expect(treeHash(dir)).toBe(h);
  });

  // A failed start is said once: `init` arriving afterwards is answered with the error (code 13) but
  // adds no second FATAL line, and the exit code stays the start's (2: cannot open, 1: cannot recover).
  for (const [what, make, code] of [
    ['a file', (d: string) => fs.writeFileSync(path.join(d, 'x'), 'text\n'), 2],
    ['a directory that is not a data directory', (d: string) => (fs.mkdirSync(path.join(d, 'x')), fs.writeFileSync(path.join(d, 'x', 'letter.txt'), 'hello\n')), 2],
    ['a corrupt WAL', (d: string) => fs.cpSync(path.join(ROOT, 'fixtures', 'corrupt-mid-wal'), path.join(d, 'x'), { recursive: true }), 1],
  ] as const) {
    it(`${what}, then init: one FATAL line, init answered 13, exit ${code}, nothing changed`, () => {
      const d = tmpDir();
      make(d);
      const target = path.join(d, 'x');
      const h = treeHash(d);
      const r = serve(['--data-dir', target], INIT);
      const fatal = r.stderr.split('\n').filter((l) => l.startsWith('FATAL'));
      expect(fatal, r.stderr).toHaveLength(1);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(JSON.parse(r.stdout.trim()).body).toMatchObject({ type: 'error', code: 13, in_reply_to: 1 });
      expect(r.status).toBe(code);
      expect(treeHash(d)).toBe(h);
    });
  }

  it('a good directory and no input: exit 0, LOCK released', () => {
    const dir = copyFixture('healthy');
    const r = serve(['--data-dir', abs(dir), '--fsync', 'false']);
    expect(r.status).toBe(0);
    expect(fs.existsSync(path.join(abs(dir), 'LOCK'))).toBe(false);
  });

  it('a stale LOCK is taken over with a clear line', () => {
    const dir = copyFixture('healthy');
    fs.writeFileSync(path.join(abs(dir), 'LOCK'), '999999\n');
    const r = serve(['--data-dir', abs(dir), '--fsync', 'false'], INIT);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/took over the lock of process 999999, which is gone/);
    expect(fs.existsSync(path.join(abs(dir), 'LOCK'))).toBe(false);
  });

  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    it(`${sig}: the node stops at once and releases its LOCK`, async () => {
      const dir = copyFixture('healthy');
      const p = spawn(process.execPath, [RUN, 'serve', '--data-dir', abs(dir), '--fsync', 'false'], { cwd: ROOT });
      let err = '';
      p.stderr.on('data', (d) => (err += d));
      p.stdin.write(INIT);
      await new Promise<void>((resolve) => {
        const t = setInterval(() => {
          if (err.includes('recovered from')) {
            clearInterval(t);
            resolve();
          }
        }, 20);
      });
      expect(fs.existsSync(path.join(abs(dir), 'LOCK'))).toBe(true);
      const code = await new Promise<number | null>((resolve) => {
        p.on('exit', (c) => resolve(c));
        p.kill(sig);
      });
      expect(code).toBe(sig === 'SIGTERM' ? 143 : 130);
      expect(err).toMatch(new RegExp(`${sig}: stopping now; lock of .* released`));
      expect(fs.existsSync(path.join(abs(dir), 'LOCK'))).toBe(false);
    });
  }
});
