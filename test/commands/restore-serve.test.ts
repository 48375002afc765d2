// `restore` builds a directory that a real `raftsnap serve` process serves: init, then reads of
// keys of every kind, compared with the snapshot's own values.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/kv/keys.js';
import type { Json } from '../../src/raft/types.js';
import { readSnapshotFile } from '../../src/storage/index.js';
import { ROOT, abs, inproc, proc, tmpDir } from './helpers.js';

const built = fs.existsSync(path.join(ROOT, 'dist', 'node', 'main.js'));

/** Pipes `lines` into `raftsnap serve <args>`, waits for its exit, returns the bodies by in_reply_to. */
function serve(args: string[], lines: object[]): Promise<{ code: number | null; byReply: Map<number, Record<string, unknown>>; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(ROOT, 'bin', 'run.js'), 'serve', ...args], { cwd: ROOT });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    const timer = setTimeout(() => p.kill('SIGKILL'), 20_000);
    p.on('exit', (code) => {
      clearTimeout(timer);
      const byReply = new Map<number, Record<string, unknown>>();
      for (const l of out.split('\n').filter(Boolean)) {
        const m = JSON.parse(l) as { body: Record<string, unknown> };
        if (typeof m.body.in_reply_to === 'number') byReply.set(m.body.in_reply_to, m.body);
      }
      resolve({ code, byReply, stderr: err });
    });
    p.stdin.end(lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  });
}

describe.skipIf(!built)('restore, then a real serve process on the directory', () => {
  it('--config n1 makes a one-node cluster of a 3-node snapshot; every read gives the snapshot value', async () => {
    const file = 'fixtures/snapshots/good.snap';
    const dir = path.join(tmpDir(), 'n1');
    const r = await inproc(['restore', file, '--data-dir', dir, '--node-id', 'n1', '--config', 'n1', '--json']);
    expect(r.exit, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ index: 120, term: 3, config: ['n1'], keys: 207, verified: true });
    // The membership is the only difference from the file, reported on its own: the states are equal.
    const d = await inproc(['diff', file, dir, '--json']);
    expect(d.exit).toBe(0);
    const dj = JSON.parse(d.stdout);
    expect(dj.header).toEqual([]);
    expect(dj.membership).toEqual({ equal: false, a: ['n1', 'n2', 'n3'], b: ['n1'] });
    expect(dj.counts).toMatchObject({ added: 0, removed: 0, changed: 0, unchanged: 207 });

    const want = readSnapshotFile(abs(file)).content.kv;
    const pick: Array<[Json, Json]> = want.filter(([k]) => typeof k !== 'number' || k === 1 || k === 256).slice(0, 12);
    const msgs: object[] = [{ src: 'c0', dest: 'n1', body: { type: 'init', msg_id: 1, node_id: 'n1', node_ids: ['n1'] } }];
    pick.forEach(([k], i) => msgs.push({ src: 'c1', dest: 'n1', body: { type: 'read', msg_id: 10 + i, key: k } }));
    msgs.push({ src: 'c1', dest: 'n1', body: { type: 'read', msg_id: 99, key: 'never-written' } });
    const s = await serve(['--data-dir', abs(dir), '--fsync', 'false'], msgs);
    expect(s.code, s.stderr).toBe(0);
    expect(s.byReply.get(1)!.type).toBe('init_ok');
    pick.forEach(([k, v], i) => {
      const b = s.byReply.get(10 + i)!;
      expect(b.type, `key ${canonicalJson(k)}: ${JSON.stringify(b)}`).toBe('read_ok');
      expect(canonicalJson(b.value as Json)).toBe(canonicalJson(v));
    });
    expect(s.byReply.get(99)).toMatchObject({ type: 'read_ok', value: null });
  });

  it('--config must name the node and only plausible ids; nothing is created on refusal', () => {
    const parent = tmpDir();
    const r = proc(['restore', 'fixtures/snapshots/good.snap', '--data-dir', path.join(parent, 'x'), '--node-id', 'n4', '--config', 'n1,n2']);
    expect(r.exit).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/--config .*n4/);
    expect(fs.readdirSync(abs(parent))).toEqual([]);
  });
});
