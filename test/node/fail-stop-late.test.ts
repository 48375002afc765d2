/**
 * Fail-stop when the failure reaches the driver late: a background snapshot save fails inside the
 * storage at once (DiskStorage stops), but the rejected promise reaches the Snapshotter's catch,
 * and so `stop`, only some microtasks later; a store whose saveSnapshot adds a few promise hops
 * (any decorator, such as the simulator's) makes that window wide enough for queued input to be
 * handled. Found by the simulator (scenario disk-fault seed 4: a follower whose snapshot hit EROFS
 * relayed a forwarded answer afterwards). The driver now checks the store's failure before every
 * input and every Ready: nothing is sent after the storage failed but 11 and 13 answers.
 */
import { describe, expect, it } from 'vitest';
import type { Logger } from '../../src/node/log.js';
import { defaultOptions, type ServeOptions } from '../../src/node/options.js';
import { MemorySink, Outbox } from '../../src/node/protocol.js';
import { RaftServer } from '../../src/node/server.js';
import { StorageNodeStore } from '../../src/node/storage-adapter.js';
import type { Timers } from '../../src/node/timers.js';
import { SimFs } from '../../src/sim/sim-fs.js';
import { DiskStorage } from '../../src/storage/node-storage.js';

const still: Timers = { every: () => () => {}, now: () => 0, yield: () => Promise.resolve() };

function follower(hops: number) {
  const fs = new SimFs();
  const opts: ServeOptions = { ...defaultOptions(), dataDir: null, dataRoot: '/data', snapshotThreshold: 1, snapshotJitter: 0 };
  const sink = new MemorySink();
  const logs: string[] = [];
  const log: Logger = { info() {}, debug() {}, warn: (m) => logs.push(m) };
  const fatal: Error[] = [];
  const server = new RaftServer({
    outbox: new Outbox(sink),
    options: opts,
    log,
    timers: still,
    random: () => 0.5,
    openStore: (id) => {
      const ds = DiskStorage.open(`/data/${id}`, { fs, nodeId: id!, createdAt: 0, now: () => 0 });
      const store = new StorageNodeStore(ds, true, `/data/${id}`, log, id, still.yield, still.now);
      const save = store.saveSnapshot.bind(store);
      store.saveSnapshot = (...a) => {
        let p = save(...a);
        for (let i = 0; i < hops; i++) p = p.then((x) => x);
        return p;
      };
      return Promise.resolve(store);
    },
    onFatal: (e) => fatal.push(e),
  });
  const deliver = (src: string, body: Record<string, unknown>): void => server.handleLine(JSON.stringify({ src, dest: 'n1', body }));
  const sent = (): Array<{ dest: string; body: { type: string; code?: number } }> => sink.lines.map((l) => JSON.parse(l) as { dest: string; body: { type: string } });
  return { fs, server, deliver, sent, logs, fatal };
}

describe('fail-stop: a background snapshot failure that reaches the driver late', () => {
  it.each([0, 3])('a follower whose snapshot save fails sends nothing after it (%i extra promise hops in the store)', async (hops) => {
    const f = follower(hops);
    f.deliver('c0', { type: 'init', msg_id: 1, node_id: 'n1', node_ids: ['n1', 'n2', 'n3'] });
    await f.server.idle();
    expect(f.sent().map((m) => m.body.type)).toEqual(['init_ok']);
    // The snapshot directory refuses new files from now: the first snapshot save fails.
    f.fs.addFault({ path: '/data/n1/snap', kind: 'open', error: 'EIO' });
    // Entry 1 committed (snapshot threshold 1: a snapshot is saved, and fails, right after it is
    // applied), then a heartbeat already queued behind it, which a running follower would answer.
    f.deliver('n2', { type: 'raft_append_entries', term: 1, prevLogIndex: 0, prevLogTerm: 0, entries: [{ index: 1, term: 1, data: { op: 'write', key: 1, value: 1 } }], leaderCommit: 1, msg_id: 1 });
    f.deliver('n2', { type: 'raft_append_entries', term: 1, prevLogIndex: 1, prevLogTerm: 1, entries: [], leaderCommit: 1, msg_id: 2 });
    await f.server.idle();
    await f.server.snapshotter.settle();
    await f.server.idle();
    expect(f.fatal).toHaveLength(1);
    expect(f.logs.filter((l) => l.startsWith('FATAL'))).toHaveLength(1);
    expect(f.logs.find((l) => l.startsWith('FATAL'))).toMatch(/EIO.*snap/);
    // One answer: to the append it persisted before the failure; none to the heartbeat.
    const replies = f.sent().filter((m) => m.body.type === 'raft_append_entries_reply');
    expect(replies).toHaveLength(1);
  });
});
