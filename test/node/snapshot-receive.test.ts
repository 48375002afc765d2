/**
 * The driver carries out the core's snapshot work (the core does no I/O): a follower stores each
 * InstallSnapshot chunk in step 1 of a Ready and answers the leader only after it is stored (the
 * last one: verified, fsynced, renamed and recorded); a storage failure there stops the node with
 * the chunk unanswered, like every other storage failure.
 */
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/node/log.js';
import { defaultOptions, type ServeOptions } from '../../src/node/options.js';
import { MemorySink, Outbox } from '../../src/node/protocol.js';
import { RaftServer } from '../../src/node/server.js';
import { openNodeStore } from '../../src/node/storage-adapter.js';
import type { NodeStore } from '../../src/node/store.js';
import type { Json, SnapshotMeta } from '../../src/raft/types.js';
import { StorageError } from '../../src/storage/errors.js';
import { encodeSnapshot } from '../../src/storage/snapshot.js';
import { noTimers, tmpDir } from './helpers.js';

const IDS = ['n1', 'n2', 'n3'];
const META: SnapshotMeta = { index: 50, term: 1, config: IDS };
const PAIRS: Array<[Json, Json]> = Array.from({ length: 300 }, (_, i) => [`key-${i}`, `value-${(i * 7919) % 1000}`]);
const BYTES = encodeSnapshot(META, { kv: PAIRS }, { createdAt: 0 });
const CHUNK = Math.ceil(BYTES.length / 3);

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  dirs = [];
});

interface Follower {
  server: RaftServer;
  sink: MemorySink;
  fatal: Error[];
  /** Store calls, each with the number of lines written before it. */
  calls: Array<{ op: 'receive' | 'finish'; linesBefore: number }>;
  fromLeader(body: Record<string, unknown>): Promise<void>;
  replies(): Array<{ line: number; body: Record<string, unknown> }>;
}

/** Node n2 of three on `dir`, no timers (no elections): driven by the messages the test sends as n1. */
async function follower(dir: string, fail: { receive?: number; finish?: boolean } = {}): Promise<Follower> {
  const opts: ServeOptions = { ...defaultOptions(), dataDir: dir, fsync: false };
  const sink = new MemorySink();
  const log: Logger = { info() {}, debug() {}, warn() {} };
  const fatal: Error[] = [];
  const calls: Follower['calls'] = [];
  const wrap = (s: NodeStore): NodeStore => {
    const sn = s.snapshots;
    const receive = sn.receive.bind(sn);
    const finish = sn.finish.bind(sn);
    let receives = 0;
    sn.receive = (meta, size, offset, data) => {
      calls.push({ op: 'receive', linesBefore: sink.lines.length });
      if (++receives === fail.receive) throw new StorageError('IO', 'snapshots/x.recv', 'write snapshot receive file failed: EIO: i/o error, write');
      return receive(meta, size, offset, data);
    };
    sn.finish = (meta) => {
      calls.push({ op: 'finish', linesBefore: sink.lines.length });
      if (fail.finish) throw new StorageError('IO', 'snapshots/x.recv', 'fsync snapshot failed: EIO: i/o error, fsync');
      return finish(meta);
    };
    return s;
  };
  const server = new RaftServer({
    outbox: new Outbox(sink),
    options: opts,
    log,
    openStore: async (id) => wrap(await openNodeStore(opts, id, log)),
    random: () => 0.5,
    timers: noTimers,
    onFatal: (e) => fatal.push(e),
  });
  let msgId = 1;
  const f: Follower = {
    server,
    sink,
    fatal,
    calls,
    async fromLeader(body) {
      server.handleLine(JSON.stringify({ src: 'n1', dest: 'n2', body: { ...body, msg_id: msgId++ } }));
      await server.idle();
    },
    replies: () =>
      sink.lines
        .map((l, line) => ({ line, body: (JSON.parse(l) as { body: Record<string, unknown> }).body }))
        .filter((x) => x.body['type'] === 'raft_install_snapshot_reply'),
  };
  server.handleLine(JSON.stringify({ src: 'c0', dest: 'n2', body: { type: 'init', node_id: 'n2', node_ids: IDS, msg_id: 0 } }));
  await server.idle();
  return f;
}

function chunk(offset: number): Record<string, unknown> {
  const data = BYTES.subarray(offset, offset + CHUNK);
  return { type: 'raft_install_snapshot', term: 1, meta: META, size: BYTES.length, offset, data: data.toString('base64'), done: offset + data.length === BYTES.length };
}

describe('follower: InstallSnapshot chunks stored by the driver', () => {
  it('answers each chunk after storing it, the last after the verified file is durable; the state survives a restart', async () => {
    const dir = tmpDir();
    dirs.push(dir);
    const f = await follower(dir);
    for (const off of [0, CHUNK, 2 * CHUNK]) await f.fromLeader(chunk(off));
    const rs = f.replies();
    expect(rs.map((r) => [r.body['bytesStored'], r.body['done']])).toEqual([[CHUNK, false], [2 * CHUNK, false], [BYTES.length, true]]);
    expect(f.calls.map((c) => c.op)).toEqual(['receive', 'receive', 'receive', 'finish']);
    // Every reply line was written after the store call it answers.
    const stores = f.calls.filter((c) => c.op === 'receive');
    rs.forEach((r, i) => expect(r.line).toBeGreaterThanOrEqual(stores[i]!.linesBefore));
    expect(rs[2]!.line).toBeGreaterThanOrEqual(f.calls[3]!.linesBefore);
    expect(f.server.applied).toBe(50);
    expect(f.server.kv.size).toBe(PAIRS.length);
    expect(f.fatal).toEqual([]);
    await f.server.end();

    const again = await follower(dir);
    expect(again.server.applied).toBe(50);
    expect(again.server.kv.size).toBe(PAIRS.length);
    expect(again.server.core!.status().snapshot).toMatchObject({ index: 50, term: 1 });
    await again.server.end();
  });

  it('a failed chunk write stops the node: that chunk and later ones are never answered', async () => {
    const dir = tmpDir();
    dirs.push(dir);
    const f = await follower(dir, { receive: 2 });
    await f.fromLeader(chunk(0));
    await f.fromLeader(chunk(CHUNK));
    expect(f.fatal.length).toBe(1);
    expect(f.fatal[0]!.message).toMatch(/EIO/);
    await f.fromLeader(chunk(CHUNK));
    await f.fromLeader(chunk(2 * CHUNK));
    expect(f.replies().map((r) => r.body['bytesStored'])).toEqual([CHUNK]);
    expect(f.server.stopped).toBe(true);
  });

  it('a failed fsync of the received snapshot stops the node: no done reply, nothing installed', async () => {
    const dir = tmpDir();
    dirs.push(dir);
    const f = await follower(dir, { finish: true });
    for (const off of [0, CHUNK, 2 * CHUNK]) await f.fromLeader(chunk(off));
    expect(f.fatal.length).toBe(1);
    expect(f.replies().map((r) => r.body['done'])).toEqual([false, false]);
    expect(f.server.applied).toBe(0);
  });
});
