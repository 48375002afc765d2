/**
 * The driver while a Ready's WAL fsync runs off the event loop: it steps the inputs that need no
 * finished Ready (client requests, Raft messages, ticks) and batches them into the next Ready, but
 * acknowledges nothing before the fsync completes and answers a client only for entries on this
 * node's disk or known on a majority's, and a failed fsync stops the node. The disk is a SimFs whose asynchronous fsyncs complete only when the test says so.
 */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/node/log.js';
import { defaultOptions, type ServeOptions } from '../../src/node/options.js';
import { MemorySink, Outbox } from '../../src/node/protocol.js';
import { RaftServer } from '../../src/node/server.js';
import { StorageNodeStore } from '../../src/node/storage-adapter.js';
import { SimFs } from '../../src/sim/sim-fs.js';
import { DiskStorage } from '../../src/storage/node-storage.js';

interface Harness {
  server: RaftServer;
  sim: SimFs;
  held: Array<() => void>;
  fatal: Error[];
  send(body: Record<string, unknown>): void;
  /** A message from another node (or client) `src`. */
  from(src: string, body: Record<string, unknown>): void;
  bodies(): Array<Record<string, unknown>>;
  /** Every message sent, with its destination. */
  sent(): Array<{ dest: string; body: Record<string, unknown> }>;
  /** Let queued work and promise chains run (not the held fsyncs). */
  settle(): Promise<void>;
  /** Complete the oldest held fsync, then settle. */
  complete(): Promise<void>;
}

function harness(options: Partial<ServeOptions> = {}): Harness {
  const sim = new SimFs();
  const held: Array<() => void> = [];
  sim.deferFsync = (run) => held.push(run);
  const opts: ServeOptions = { ...defaultOptions(), dataDir: '/data/n1', snapshotThreshold: 0, ...options };
  const sink = new MemorySink();
  const fatal: Error[] = [];
  let id = 1;
  const server = new RaftServer({
    outbox: new Outbox(sink),
    options: opts,
    log: silentLogger,
    openStore: (nodeId) => {
      const ds = DiskStorage.open('/data/n1', { fs: sim, fsync: true, pid: 1, isPidAlive: () => false, createdAt: 0, ...(nodeId ? { nodeId } : {}) });
      return Promise.resolve(new StorageNodeStore(ds, true, '/data/n1', silentLogger, nodeId));
    },
    random: () => 0.5,
    onFatal: (e) => fatal.push(e),
  });
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
  };
  return {
    server,
    sim,
    held,
    fatal,
    send(body) {
      server.handleLine(JSON.stringify({ src: 'c1', dest: 'n1', body: { ...body, msg_id: id++ } }));
    },
    from(src, body) {
      server.handleLine(JSON.stringify({ src, dest: 'n1', body: { ...body, msg_id: id++ } }));
    },
    bodies: () => sink.lines.map((l) => (JSON.parse(l) as { body: Record<string, unknown> }).body),
    sent: () => sink.lines.map((l) => JSON.parse(l) as { dest: string; body: Record<string, unknown> }),
    settle,
    async complete() {
      held.shift()!();
      await settle();
    },
  };
}

const oks = (h: Harness): number => h.bodies().filter((b) => b.type === 'write_ok').length - 1;

/** Initialized, elected, and one write (key 0) done, so that the node leads with its no-op committed. */
async function started(h: Harness): Promise<void> {
  h.send({ type: 'init', node_id: 'n1', node_ids: ['n1'] });
  await h.settle();
  h.send({ type: 'write', key: 0, value: 0 });
  await h.settle();
  while (h.held.length > 0) await h.complete();
  expect(h.bodies().map((b) => b.type)).toEqual(['init_ok', 'write_ok']);
  expect(h.server.core!.status().role).toBe('leader');
}

/**
 * n1 initialized as a follower of n2 in a 3-node cluster: `w` makes a write entry of term 1 on key
 * k, `append` sends n2's append of `entries` after `prev` with the leader's commit index.
 */
async function follower(h: Harness): Promise<{
  w: (index: number, value: string) => Record<string, unknown>;
  append: (prev: number, entries: unknown[], leaderCommit: number) => void;
}> {
  h.send({ type: 'init', node_id: 'n1', node_ids: ['n1', 'n2', 'n3'] });
  await h.settle();
  return {
    w: (index, value) => ({ index, term: 1, data: { op: 'write', key: 'k', value } }),
    append: (prev, entries, leaderCommit) =>
      h.from('n2', { type: 'raft_append_entries', term: 1, prevLogIndex: prev, prevLogTerm: prev === 0 ? 0 : 1, entries, leaderCommit }),
  };
}

describe('stepping inputs while the WAL fsync runs', () => {
  it('answers a write only once its fsync completed, and batches the writes that arrived meanwhile into the next Ready', async () => {
    const h = harness();
    await started(h);
    h.send({ type: 'write', key: 1, value: 1 });
    await h.settle();
    // The write is written; its fsync is held: nothing is answered.
    expect(h.held).toHaveLength(1);
    expect(h.server.waitingForWrite).toBe(true);
    expect(oks(h)).toBe(0);
    const before = h.server.core!.status().lastIndex;
    for (let k = 2; k <= 6; k++) h.send({ type: 'write', key: k, value: k });
    await h.settle();
    // Stepped into the core (appended to the leader's log) while the fsync ran, but not answered,
    // and not written either: one fsync is still all that runs.
    expect(h.server.core!.status().lastIndex).toBe(before + 5);
    expect(h.held).toHaveLength(1);
    expect(oks(h)).toBe(0);
    expect(h.server.stats.inputsDuringWrite).toBe(5);
    await h.complete();
    // The first write is answered; the five that came meanwhile are in one new write.
    expect(oks(h)).toBe(1);
    expect(h.held).toHaveLength(1);
    await h.complete();
    expect(oks(h)).toBe(6);
    expect(h.held).toHaveLength(0);
    expect(h.fatal).toEqual([]);
  });

  it('a read stepped while a write is being written is answered after that write, with its value (reads confirmed during a write wait for their read index)', async () => {
    const h = harness();
    await started(h);
    h.send({ type: 'write', key: 1, value: 'new' });
    await h.settle();
    expect(h.held).toHaveLength(1);
    h.send({ type: 'read', key: 1 });
    await h.settle();
    // Confirmed at once (a single voter), but its read index is the write's: not answered yet.
    expect(h.bodies().filter((b) => b.type === 'read_ok')).toEqual([]);
    await h.complete();
    const types = h.bodies().map((b) => b.type);
    expect(types.slice(-2)).toEqual(['write_ok', 'read_ok']);
    expect(h.bodies().find((b) => b.type === 'read_ok')!.value).toBe('new');
    expect(h.fatal).toEqual([]);
  });

  it('a message that needs a finished Ready (a control message) waits, and so does everything behind it', async () => {
    const h = harness();
    await started(h);
    h.send({ type: 'write', key: 1, value: 1 });
    await h.settle();
    expect(h.held).toHaveLength(1);
    h.send({ type: 'get_log_info' }); // a control message, not order-free: waits for the Ready
    h.send({ type: 'write', key: 2, value: 2 }); // behind it: waits too
    await h.settle();
    const last = h.server.core!.status().lastIndex;
    await h.settle();
    expect(h.server.core!.status().lastIndex).toBe(last);
    expect(h.bodies().map((b) => b.type)).toEqual(['init_ok', 'write_ok']);
    while (h.held.length > 0) await h.complete();
    expect(oks(h)).toBe(2);
    expect(h.fatal).toEqual([]);
  });

  it('a failed asynchronous fsync stops the node: the write gets the indefinite 13, nothing is acknowledged after', async () => {
    const h = harness();
    await started(h);
    h.sim.addFault({ kind: 'fsync', error: 'EIO', path: /\.wal$/, times: 1 });
    h.send({ type: 'write', key: 1, value: 1 });
    await h.settle();
    h.send({ type: 'write', key: 2, value: 2 });
    await h.settle();
    await h.complete();
    expect(h.fatal).toHaveLength(1);
    expect(h.fatal[0]!.message).toMatch(/fsync WAL segment failed.*EIO/);
    const bodies = h.bodies().slice(2);
    expect(bodies.filter((b) => b.type === 'write_ok')).toEqual([]);
    expect(bodies.filter((b) => b.type === 'error').map((b) => b.code)).toEqual([13, 13]);
    expect(h.held).toHaveLength(0); // never retried
  });

  // A follower applies what the leader's commit index covers (on a majority's disks) before and
  // during its own write of it: a read it answers at a read index waits for no fsync of its own.
  it('a follower applies what the leader says is committed before and during its own write of it, and acknowledges entries only once written', async () => {
    const h = harness();
    const { w, append } = await follower(h);
    append(0, [w(1, 'a')], 0);
    await h.settle();
    expect(h.held).toHaveLength(1);
    await h.complete(); // entry 1 is on disk
    expect(h.server.applied).toBe(0);
    // Entry 2 to write, entry 1 committed: applied before the write of entry 2 completes.
    append(1, [w(2, 'b')], 1);
    await h.settle();
    expect(h.held).toHaveLength(1);
    expect(h.server.applied).toBe(1);
    // A client's read on the follower, while that write runs: the leader's read index is 1.
    h.send({ type: 'read', key: 'k' });
    await h.settle();
    const ask = h.sent().find((m) => m.dest === 'n2' && m.body.type === 'raft_read_index')!;
    expect(ask).toBeDefined();
    h.from('n2', { type: 'raft_read_index_reply', in_reply_to: ask.body.msg_id, index: 1 });
    await h.settle();
    expect(h.held).toHaveLength(1);
    expect(h.bodies().filter((b) => b.type === 'read_ok')).toEqual([expect.objectContaining({ value: 'a' })]);
    // Entry 2 committed while this node's own write of it still runs: the leader counted it on a
    // majority of disks, so it is applied (and a read at index 2 answered) at once, but this node
    // acknowledges entries 2 and 3 only once it has written them.
    append(2, [w(3, 'c')], 2);
    await h.settle();
    expect(h.held).toHaveLength(1);
    expect(h.server.applied).toBe(2);
    h.send({ type: 'read', key: 'k' });
    await h.settle();
    const ask2 = h.sent().filter((m) => m.dest === 'n2' && m.body.type === 'raft_read_index').at(-1)!;
    expect(ask2.body.msg_id).not.toBe(ask.body.msg_id);
    h.from('n2', { type: 'raft_read_index_reply', in_reply_to: ask2.body.msg_id, index: 2 });
    await h.settle();
    expect(h.bodies().filter((b) => b.type === 'read_ok')).toEqual([expect.objectContaining({ value: 'a' }), expect.objectContaining({ value: 'b' })]);
    expect(h.bodies().filter((b) => b.type === 'raft_append_entries_reply' && b.success === true)).toHaveLength(1);
    await h.complete();
    expect(h.bodies().filter((b) => b.type === 'raft_append_entries_reply' && b.success === true)).toHaveLength(2);
    while (h.held.length > 0) await h.complete();
    expect(h.bodies().filter((b) => b.type === 'raft_append_entries_reply' && b.success === true).length).toBeGreaterThanOrEqual(3);
    expect(h.fatal).toEqual([]);
  });

  it('a snapshot is never taken at an applied index beyond what this node has written', async () => {
    const h = harness({ snapshotThreshold: 1, snapshotJitter: 0 });
    const { w, append } = await follower(h);
    append(0, [w(1, 'a')], 0);
    await h.settle();
    expect(h.held).toHaveLength(1); // entry 1 being written
    // Meanwhile entry 2 arrives with commit 2: both applied at once, entry 2 not even handed out yet.
    append(1, [w(2, 'b')], 2);
    await h.settle();
    expect(h.server.applied).toBe(2);
    expect(h.server.core!.stableIndex()).toBe(0);
    // Entry 1's write completes: the snapshot is due, but the state holds entry 2, not yet written.
    await h.complete();
    expect(h.server.core!.stableIndex()).toBe(1);
    expect(h.held).toHaveLength(1); // entry 2's write, and no snapshot file being written
    expect(h.sim.readdir('/data/n1/snap')).toEqual([]);
    // Entry 2's write completes: now a snapshot at 2 is taken (its own fsyncs are held too).
    while (h.held.length > 0) await h.complete();
    expect(h.server.core!.stableIndex()).toBe(2);
    expect(h.server.stats.snapshotsTaken).toBe(1);
    expect(h.server.core!.status().snapshot).toMatchObject({ index: 2 });
    expect(h.fatal).toEqual([]);
  });
});
