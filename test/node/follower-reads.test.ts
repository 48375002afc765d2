/**
 * Follower reads on 3 real `serve` processes with data directories (fsync on): a follower answers a
 * read from its own state once it has applied the read index the leader confirmed
 * (raft_read_index), and every read returns the last write acknowledged before it, wherever that
 * write went; a follower cut off from the leader answers no read from its old state, and once
 * reconnected it reads the latest value.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, tmpDir } from './helpers.js';

const IDS = ['n1', 'n2', 'n3'];
let cluster: Cluster | null = null;

afterEach(async () => {
  if (cluster) for (const id of IDS) await cluster.kill9(id).catch(() => {});
  cluster = null;
});

async function start(): Promise<{ c: Cluster; leader: string; followers: string[] }> {
  const root = tmpDir('raftsnap-follower-reads-');
  const c = new Cluster(IDS, (id) => ['--data-dir', join(root, id), '--election-timeout-ms', '300', '--heartbeat-ms', '50', '--request-timeout-ms', '2000']);
  cluster = c;
  await c.start();
  const leader = await c.leader();
  // The leader's no-op is committed (a write went through) before the reads start.
  expect((await c.requestOk({ type: 'write', key: 'k', value: 0 }, { nodes: [leader] })).body.type).toBe('write_ok');
  return { c, leader, followers: IDS.filter((x) => x !== leader) };
}

async function followerReads(c: Cluster, ids: string[]): Promise<number> {
  let n = 0;
  for (const id of ids) n += (await c.stats(id))['follower_reads'] as number;
  return n;
}

describe('follower reads', () => {
  it('a follower answers reads itself, and each read returns the last write acknowledged before it (written at any node)', async () => {
    const { c, leader, followers } = await start();
    const before = await followerReads(c, followers);
    const stale: string[] = [];
    for (let v = 1; v <= 30; v++) {
      const at = IDS[v % 3]!;
      expect((await c.request(at, { type: 'write', key: 'k', value: v }, 5000)).body.type).toBe('write_ok');
      const f = followers[v % 2]!;
      const r = await c.request(f, { type: 'read', key: 'k' }, 5000);
      expect(r.body.type).toBe('read_ok');
      if (r.body['value'] !== v) stale.push(`wrote ${v} at ${at}, read ${JSON.stringify(r.body['value'])} at ${f}`);
    }
    expect(stale).toEqual([]);
    // Every one of the 30 reads was answered by a follower from its own state (none forwarded).
    expect((await followerReads(c, followers)) - before).toBe(30);
    expect((await c.stats(leader))['follower_reads']).toBe(0);
  }, 60_000);

  it('a follower cut off from the leader answers no read from its old state; reconnected, it reads the latest value', async () => {
    const { c, leader, followers } = await start();
    const f = followers[0]!;
    expect((await c.request(f, { type: 'read', key: 'k' }, 5000)).body).toMatchObject({ type: 'read_ok', value: 0 });
    c.isolate(f);
    expect((await c.requestOk({ type: 'write', key: 'k', value: 'new' }, { nodes: [leader, followers[1]!] })).body.type).toBe('write_ok');
    // Cut off, it cannot get a read index: an error (or no answer), never the old value 0.
    const r = await c.request(f, { type: 'read', key: 'k' }, 4000).catch(() => null);
    if (r) expect(r.body.type).toBe('error');
    c.heal();
    const after = await c.requestOk({ type: 'read', key: 'k' }, { nodes: [f], deadlineMs: 15_000 });
    expect(after.body).toMatchObject({ type: 'read_ok', value: 'new' });
  }, 60_000);
});
