import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Cluster, ROOT, runServe, sleep, tmpDir } from './helpers.js';

const msg = (src: string, dest: string, body: Record<string, unknown>): string => JSON.stringify({ src, dest, body });
const parse = (lines: string[]): Array<{ src: string; dest: string; body: Record<string, unknown> }> => lines.map((l) => JSON.parse(l));

describe('protocol edges of the real process', () => {
  it('answers before init with error 11, and a member of a cluster with no known leader with error 11', async () => {
    const input = [
      msg('c1', 'n1', { type: 'read', msg_id: 1, key: 1 }),
      msg('c0', 'n1', { type: 'init', msg_id: 2, node_id: 'n1', node_ids: ['n1', 'n2', 'n3'] }),
      msg('c1', 'n1', { type: 'write', msg_id: 3, key: 1, value: 1 }),
      msg('c1', 'n1', { type: 'get_stats', msg_id: 4 }),
    ];
    const r = await runServe(input.join('\n') + '\n');
    expect(r.code).toBe(0);
    const out = parse(r.lines);
    const toClients = out.filter((m) => m.dest.startsWith('c'));
    expect(toClients.every((m) => m.src === 'n1')).toBe(true);
    expect(toClients.map((m) => [m.body['type'], m.body['code'], m.body['in_reply_to']])).toEqual([
      ['error', 11, 1],
      ['init_ok', undefined, 2],
      ['error', 11, 3],
      ['get_stats_ok', undefined, 4],
    ]);
    const stats = toClients[3]!.body;
    for (const k of ['role', 'term', 'leader', 'elections', 'leader_changes', 'snapshots_taken', 'snapshots_installed', 'snapshot_transfers_sent', 'log_entries', 'first_index', 'last_index', 'commit_index', 'applied', 'snapshot_index']) {
      expect(stats, k).toHaveProperty(k);
    }
    // One counter for every message sent, from 0.
    expect(out.map((m) => m.body['msg_id'])).toEqual(out.map((_, i) => i));
  });

  it('keeps running after garbage, including binary junk and huge lines', async () => {
    const input = [
      msg('c0', 'n1', { type: 'init', msg_id: 1, node_id: 'n1', node_ids: ['n1'] }),
      '\u0000\u0001\u0002',
      '{"src":"c1","dest":"n1","body":' + '['.repeat(5000),
      'x'.repeat(200_000),
      '{"src":"c1","dest":"n1","body":{"type":"write","msg_id":2,"key":"k","value":1}}',
      '{"src":"c1","dest":"n1","body":{"type":"read","msg_id":3,"key":"k"}}',
    ];
    const r = await runServe(input.join('\n') + '\n');
    expect(r.code).toBe(0);
    expect(parse(r.lines).map((m) => m.body['type'])).toEqual(['init_ok', 'write_ok', 'read_ok']);
    expect(r.stderr).toMatch(/not JSON/);
  });

  it('exits 0 on EOF with nothing sent, and exits 2 on a bad flag', async () => {
    expect((await runServe('')).code).toBe(0);
    const bad = await runServe('', ['--fsync', 'maybe']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--fsync/);
  });
});

describe('bin/maelstrom-node', () => {
  it('starts serve, in memory without RAFTSNAP_DATA_ROOT and in DIR/<node_id> with it', () => {
    const input = [
      msg('c0', 'n1', { type: 'init', msg_id: 1, node_id: 'n1', node_ids: ['n1'] }),
      msg('c1', 'n1', { type: 'write', msg_id: 2, key: 1, value: 2 }),
    ].join('\n') + '\n';
    const bin = path.join(ROOT, 'bin/maelstrom-node');
    const env = { ...process.env };
    delete env['RAFTSNAP_DATA_ROOT'];
    const mem = spawnSync(bin, [], { input, encoding: 'utf8', env, cwd: os_tmp() });
    expect(mem.status, mem.stderr).toBe(0);
    expect(parse(mem.stdout.trim().split('\n')).map((m) => m.body['type'])).toEqual(['init_ok', 'write_ok']);
    const root = tmpDir();
    const disk = spawnSync(bin, [], { input, encoding: 'utf8', env: { ...env, RAFTSNAP_DATA_ROOT: root }, cwd: os_tmp() });
    expect(disk.status, disk.stderr).toBe(0);
    expect(fs.existsSync(path.join(root, 'n1', 'meta.json'))).toBe(true);
    fs.rmSync(root, { recursive: true, force: true });
  });
});

function os_tmp(): string {
  return fs.realpathSync(process.env['TMPDIR'] ?? '/tmp');
}

describe('indefinite answers once a request may be in the log', () => {
  let cluster: Cluster | null = null;
  let root = '';
  afterEach(async () => {
    if (cluster) for (const id of cluster.ids) await cluster.kill9(id);
    cluster = null;
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it('a leader cut off from its followers answers pending writes with 0 or 13, never 11 or 14', async () => {
    root = tmpDir();
    const ids = ['n1', 'n2', 'n3'];
    const c = new Cluster(ids, () => ['--data-root', root, '--fsync', 'false', '--tick-ms', '10', '--election-timeout-ms', '200', '--heartbeat-ms', '50', '--request-timeout-ms', '3000']);
    cluster = c;
    await c.start();
    const leader = await c.leader();
    const follower = ids.find((x) => x !== leader)!;
    c.isolate(leader);
    const [direct, forwarded] = await Promise.all([
      c.request(leader, { type: 'write', key: 'p', value: 1 }, 8000),
      // A follower may still forward to the old leader for a moment: that answer must be indefinite too.
      (async () => {
        await sleep(20);
        return c.request(follower, { type: 'write', key: 'q', value: 2 }, 8000, 'c2');
      })(),
    ]);
    expect(direct.body['type']).toBe('error');
    expect([0, 13]).toContain(direct.body['code']);
    if (forwarded.body['type'] === 'error') expect([0, 11, 13]).toContain(forwarded.body['code']);
    c.heal();
    const after = await c.requestOk({ type: 'read', key: 'p' });
    expect(after.body['type']).toBe('read_ok');
    await c.stop();
    cluster = null;
  });
});
