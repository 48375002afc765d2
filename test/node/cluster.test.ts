import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, sleep, tmpDir } from './helpers.js';

const IDS = ['n1', 'n2', 'n3'];
let cluster: Cluster | null = null;
let root = '';

afterEach(async () => {
  if (cluster) {
    for (const id of IDS) await cluster.kill9(id).catch(() => {});
  }
  cluster = null;
  if (root) fs.rmSync(root, { recursive: true, force: true });
  root = '';
});

async function waitFor(what: string, f: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await f()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('3-node cluster of real `serve` processes with data directories', () => {
  it('elects a leader, forwards from followers, survives kill -9 of a follower and of the leader', async () => {
    root = tmpDir();
    const c = new Cluster(IDS, () => ['--data-root', root, '--tick-ms', '10', '--election-timeout-ms', '300', '--heartbeat-ms', '50']);
    cluster = c;
    await c.start();
    const leader = await c.leader();
    const followers = IDS.filter((x) => x !== leader);
    // Writes through every node (followers forward to the leader).
    for (let k = 0; k < 12; k++) {
      const r = await c.requestOk({ type: 'write', key: k, value: k * 10 }, { nodes: [IDS[k % 3]!] });
      expect(r.body.type).toBe('write_ok');
    }
    const cas = await c.requestOk({ type: 'cas', key: 0, from: 0, to: 5 }, { nodes: [followers[0]!] });
    expect(cas.body.type).toBe('cas_ok');
    const bad = await c.requestOk({ type: 'cas', key: 1, from: 999, to: 5 }, { nodes: [followers[1]!] });
    expect(bad.body).toMatchObject({ type: 'error', code: 22 });

    // kill -9 a follower, write more, restart it (init again): it rejoins with its state.
    const f = followers[0]!;
    await c.kill9(f);
    for (let k = 12; k < 20; k++) await c.requestOk({ type: 'write', key: k, value: k * 10 }, { nodes: [leader] });
    await c.startNode(f);
    await waitFor('restarted follower to catch up', async () => (await c.stats(f))['applied'] === (await c.stats(leader))['applied']);
    const st = (await c.request(f, { type: 'get_state' })).body['state'] as Record<string, number>;
    expect(st['0']).toBe(5);
    expect(st['19']).toBe(190);

    // kill -9 the leader: a new one is elected, nothing acknowledged is lost.
    await c.kill9(leader);
    const newLeader = await c.leader();
    expect(newLeader).not.toBe(leader);
    for (let k = 0; k < 20; k++) {
      const r = await c.requestOk({ type: 'read', key: k }, { nodes: [followers[1]!, newLeader] });
      expect(r.body).toMatchObject({ type: 'read_ok', value: k === 0 ? 5 : k * 10 });
    }
    await c.startNode(leader);
    const r = await c.requestOk({ type: 'read', key: 19 }, { nodes: [leader] });
    expect(r.body).toMatchObject({ type: 'read_ok', value: 190 });
    const codes = await c.stop();
    expect(Object.values(codes)).toEqual([0, 0, 0]);
    expect(c.stdoutGarbage).toEqual([]);
    cluster = null;
  });

  it('a follower that missed more than the leader keeps catches up by InstallSnapshot, then by log', async () => {
    root = tmpDir();
    const c = new Cluster(IDS, () => [
      '--data-root', root, '--fsync', 'false', '--tick-ms', '10', '--election-timeout-ms', '300', '--heartbeat-ms', '50',
      '--snapshot-threshold', '40', '--snapshot-jitter', '0', '--trailing-logs', '5', '--chunk-size', '256',
    ]);
    cluster = c;
    await c.start();
    const leader = await c.leader();
    const lagger = IDS.find((x) => x !== leader)!;
    c.isolate(lagger);
    for (let k = 0; k < 150; k++) await c.requestOk({ type: 'write', key: k % 60, value: k }, { nodes: [leader] });
    const ls = await c.stats(leader);
    expect(ls['snapshot_index'] as number).toBeGreaterThan(0);
    expect(ls['first_index'] as number).toBeGreaterThan(2);
    expect((await c.stats(lagger))['applied'] as number).toBeLessThan(ls['first_index'] as number);
    c.heal();
    await waitFor('lagging follower to install a snapshot', async () => ((await c.stats(lagger))['snapshots_installed'] as number) >= 1);
    await waitFor('lagging follower to catch up', async () => (await c.stats(lagger))['applied'] === (await c.stats(leader))['applied']);
    const sent = await c.stats(leader);
    expect(sent['snapshot_transfers_sent'] as number).toBeGreaterThanOrEqual(1);
    // Completed transfers never outnumber started ones (a restarted transfer counts as started again).
    expect(sent['snapshot_transfers_started'] as number).toBeGreaterThanOrEqual(sent['snapshot_transfers_sent'] as number);
    // Then plain log replication: new writes reach it without another snapshot transfer.
    const installs = (await c.stats(lagger))['snapshots_installed'];
    for (let k = 0; k < 10; k++) await c.requestOk({ type: 'write', key: 'after', value: k }, { nodes: [leader] });
    await waitFor('follower to apply by log', async () => (await c.stats(lagger))['applied'] === (await c.stats(leader))['applied']);
    expect((await c.stats(lagger))['snapshots_installed']).toBe(installs);
    const a = (await c.request(leader, { type: 'get_state' })).body['state'];
    const b = (await c.request(lagger, { type: 'get_state' })).body['state'];
    expect(b).toEqual(a);
    // Its data directory recovers the same state after kill -9.
    await c.kill9(lagger);
    await c.startNode(lagger);
    await waitFor('restarted follower to catch up', async () => (await c.stats(lagger))['applied'] === (await c.stats(leader))['applied']);
    expect((await c.request(lagger, { type: 'get_state' })).body['state']).toEqual(a);
    expect(fs.readdirSync(path.join(root, lagger, 'snap')).some((n) => n.endsWith('.snap'))).toBe(true);
    await c.stop();
    cluster = null;
  });
});
