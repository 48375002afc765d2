import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeSnapshot } from '../../src/storage/snapshot.js';
import { dirSize, ROOT, RUN, runServe, tmpDir } from './helpers.js';

const INIT = JSON.stringify({ src: 'c0', dest: 'n1', body: { type: 'init', msg_id: 1, node_id: 'n1', node_ids: ['n1'] } });
const line = (msgId: number, body: Record<string, unknown>): string => JSON.stringify({ src: 'c1', dest: 'n1', body: { ...body, msg_id: msgId } });
const bodies = (lines: string[]): Array<Record<string, unknown>> => lines.map((l) => (JSON.parse(l) as { body: Record<string, unknown> }).body);

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  dirs = [];
});
function tmp(): string {
  const d = tmpDir();
  dirs.push(d);
  return d;
}

describe('single node on a data directory', () => {
  it('keeps the log on disk bounded under 20,000 writes with a small threshold, and recovers', async () => {
    const dir = path.join(tmp(), 'n1');
    const flags = ['--data-dir', dir, '--fsync', 'false', '--snapshot-threshold', '500', '--trailing-logs', '100', '--retain', '2', '--segment-size', '64KiB'];
    const input = [INIT];
    for (let i = 0; i < 20_000; i++) input.push(line(i + 2, { type: 'write', key: i % 1000, value: i }));
    input.push(line(30_000, { type: 'get_stats' }));
    const r = await runServe(input.join('\n') + '\n', flags);
    expect(r.code, r.stderr).toBe(0);
    const out = bodies(r.lines);
    expect(out.filter((b) => b['type'] === 'write_ok')).toHaveLength(20_000);
    const stats = out[out.length - 1]!;
    expect(stats['type']).toBe('get_stats_ok');
    expect(stats['snapshots_taken'] as number).toBeGreaterThanOrEqual(10);
    // In the core: about threshold * (1 + jitter) + trailing entries (plus what arrived while the
    // last snapshot was being written).
    expect(stats['log_entries'] as number).toBeLessThan(2000);
    // On disk: covered WAL segments are deleted, at most --retain snapshots are kept.
    expect(stats['wal_entries'] as number).toBeLessThan(4000);
    expect(stats['snapshot_files'] as number).toBeLessThanOrEqual(2);
    const snaps = fs.readdirSync(path.join(dir, 'snap')).filter((n) => n.endsWith('.snap'));
    expect(snaps.length).toBeLessThanOrEqual(2);
    expect(dirSize(dir)).toBeLessThan(8 * 1024 * 1024);

    // Restart on the directory: the newest snapshot plus the WAL after it give the same state.
    const again = await runServe([INIT, line(2, { type: 'read', key: 999 }), line(3, { type: 'read', key: 0 }), line(4, { type: 'get_state' })].join('\n') + '\n', flags);
    expect(again.code, again.stderr).toBe(0);
    const b = bodies(again.lines);
    expect(b[1]).toMatchObject({ type: 'read_ok', value: 19_999 });
    expect(b[2]).toMatchObject({ type: 'read_ok', value: 19_000 });
    expect(Object.keys(b[3]!['state'] as object)).toHaveLength(1000);
  });

  it('kill -9 right after acknowledged writes loses none of them (fsync on)', async () => {
    const dir = path.join(tmp(), 'n1');
    const { spawn } = await import('node:child_process');
    const p = spawn(process.execPath, [RUN, 'serve', '--data-dir', dir, '--snapshot-threshold', '7'], { cwd: ROOT });
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stdin.write(INIT + '\n');
    for (let i = 0; i < 30; i++) p.stdin.write(line(i + 2, { type: 'write', key: `k${i}`, value: i }) + '\n');
    const deadline = Date.now() + 10_000;
    while ((out.match(/write_ok/g) ?? []).length < 30 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect((out.match(/write_ok/g) ?? []).length).toBe(30);
    p.kill('SIGKILL');
    await new Promise((r) => p.once('exit', r));
    const again = await runServe([INIT, line(2, { type: 'get_state' })].join('\n') + '\n', ['--data-dir', dir]);
    const st = bodies(again.lines)[1]!['state'] as Record<string, number>;
    for (let i = 0; i < 30; i++) expect(st[`k${i}`]).toBe(i);
  });

  it('the hidden RAFTSNAP_UNSAFE_ACK_BEFORE_PERSIST=1 switch acknowledges without persisting, loudly', async () => {
    const dir = path.join(tmp(), 'n1');
    const env = { RAFTSNAP_UNSAFE_ACK_BEFORE_PERSIST: '1' };
    const r = await runServe([INIT, line(2, { type: 'write', key: 'x', value: 1 })].join('\n') + '\n', ['--data-dir', dir], env);
    expect(r.stderr).toMatch(/WARNING.*RAFTSNAP_UNSAFE_ACK_BEFORE_PERSIST/);
    expect(bodies(r.lines)[1]).toMatchObject({ type: 'write_ok' });
    const again = await runServe([INIT, line(2, { type: 'read', key: 'x' })].join('\n') + '\n', ['--data-dir', dir]);
    expect(again.stderr).not.toMatch(/UNSAFE/);
    expect(bodies(again.lines)[1]).toMatchObject({ type: 'read_ok', value: null });
    // Off by default: the same without the variable keeps the write.
    const dir2 = path.join(tmp(), 'n1');
    await runServe([INIT, line(2, { type: 'write', key: 'x', value: 1 })].join('\n') + '\n', ['--data-dir', dir2]);
    const kept = await runServe([INIT, line(2, { type: 'read', key: 'x' })].join('\n') + '\n', ['--data-dir', dir2]);
    expect(bodies(kept.lines)[1]).toMatchObject({ type: 'read_ok', value: 1 });
  });

  it('--data-root puts the state in DIR/<node_id>, and a directory of another node is refused', async () => {
    const root = tmp();
    const r = await runServe([INIT, line(2, { type: 'write', key: 'a', value: 1 })].join('\n') + '\n', ['--data-root', root]);
    expect(r.code).toBe(0);
    expect(fs.existsSync(path.join(root, 'n1', 'meta.json'))).toBe(true);
    const other = JSON.stringify({ src: 'c0', dest: 'n2', body: { type: 'init', msg_id: 1, node_id: 'n2', node_ids: ['n2'] } });
    const bad = await runServe(other + '\n', ['--data-dir', path.join(root, 'n1')]);
    expect(bad.code).toBe(1);
    expect(bodies(bad.lines)[0]).toMatchObject({ type: 'error', code: 13 });
    expect(bad.stderr).toMatch(/n1/);
  });

  const hasRestore = fs.existsSync(path.join(ROOT, 'dist/commands/restore.js'));
  it.skipIf(!hasRestore)('serves the state of a directory made by `raftsnap restore`', async () => {
    const d = tmp();
    const file = path.join(d, 'in.snap');
    fs.writeFileSync(file, encodeSnapshot({ index: 42, term: 3, config: ['n1'] }, { kv: [['a', 1], [7, { b: [true] }]] }));
    const dir = path.join(d, 'restored');
    const res = spawnSync(process.execPath, [RUN, 'restore', file, '--data-dir', dir, '--node-id', 'n1'], { cwd: ROOT, encoding: 'utf8' });
    expect(res.status, res.stderr + res.stdout).toBe(0);
    const r = await runServe([INIT, line(2, { type: 'read', key: 'a' }), line(3, { type: 'read', key: 7 }), line(4, { type: 'get_log_info' })].join('\n') + '\n', ['--data-dir', dir]);
    expect(r.code, r.stderr).toBe(0);
    const b = bodies(r.lines);
    expect(b[1]).toMatchObject({ type: 'read_ok', value: 1 });
    expect(b[2]).toMatchObject({ type: 'read_ok', value: { b: [true] } });
    expect(b[3]!['snapshot_index']).toBe(42);
  });
});
