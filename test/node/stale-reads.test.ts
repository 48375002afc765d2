/**
 * A leader that was stopped (SIGSTOP) and cut off while the others elected a new leader and took a
 * write wakes up still believing it leads. With ReadIndex it cannot confirm its leadership and
 * never answers the read; the deliberately broken switch RAFTSNAP_UNSAFE_LOCAL_READS=1 (answer
 * reads locally on the leader) is caught by the same test: it answers the old value.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, sleep, type Msg } from './helpers.js';

const IDS = ['n1', 'n2', 'n3'];
const ARGS = ['--tick-ms', '10', '--election-timeout-ms', '300', '--heartbeat-ms', '50', '--request-timeout-ms', '3000'];
let cluster: Cluster | null = null;

afterEach(async () => {
  if (cluster) {
    for (const id of IDS) {
      cluster.nodes.get(id)?.proc.kill('SIGCONT');
      await cluster.kill9(id).catch(() => {});
    }
  }
  cluster = null;
});

async function leaderAmong(c: Cluster, ids: string[], deadlineMs = 10_000): Promise<string> {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    for (const id of ids) {
      try {
        if ((await c.stats(id))['role'] === 'leader') return id;
      } catch {
        /* next */
      }
    }
    await sleep(30);
  }
  throw new Error(`no leader among ${ids.join(', ')}`);
}

/** Run the scenario; returns the woken old leader's answer to the read (null: none within the time). */
async function wokenLeaderRead(env: NodeJS.ProcessEnv): Promise<Msg | null> {
  const c = new Cluster(IDS, () => ARGS, env);
  cluster = c;
  await c.start();
  const old = await leaderAmong(c, IDS);
  const others = IDS.filter((x) => x !== old);
  expect((await c.requestOk({ type: 'write', key: 'k', value: 'old' }, { nodes: [old] })).body.type).toBe('write_ok');
  // Settle: everybody has applied it, so the old leader's state holds 'old'.
  await sleep(200);
  const proc = c.nodes.get(old)!.proc;
  proc.kill('SIGSTOP');
  c.isolate(old);
  const fresh = await leaderAmong(c, others);
  expect((await c.requestOk({ type: 'write', key: 'k', value: 'new' }, { nodes: [fresh] })).body.type).toBe('write_ok');
  // The write 'new' is acknowledged. The old leader wakes, still cut off, and is asked to read.
  proc.kill('SIGCONT');
  try {
    return await c.request(old, { type: 'read', key: 'k' }, 4000);
  } catch {
    return null;
  }
}

describe('a SIGSTOPped leader that wakes up', () => {
  it('never answers a stale read (ReadIndex): the read fails with 11', async () => {
    const r = await wokenLeaderRead({});
    // It cannot confirm its leadership; check-quorum deposes it and the read is lost: a definite 11.
    expect(r?.body).toMatchObject({ type: 'error', code: 11 });
  }, 60_000);

  it('the broken switch (reads answered locally on the leader) is caught: it answers the old value', async () => {
    const r = await wokenLeaderRead({ RAFTSNAP_UNSAFE_LOCAL_READS: '1' });
    expect(r?.body).toMatchObject({ type: 'read_ok', value: 'old' });
    for (const id of IDS) expect(cluster!.stderrOf(id)).toContain('RAFTSNAP_UNSAFE_LOCAL_READS=1');
  }, 60_000);
});
