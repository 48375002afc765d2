/**
 * Recovery that answers before the whole state is loaded (src/node/keyed-load.ts): a node
 * restarted on a format 3 snapshot makes it the state machine at once and loads it chunk by chunk;
 * a request for a key waits only for the chunks that may hold it, entries after the snapshot are
 * applied in order once their keys are in, and what needs the whole state waits for all of it.
 */
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { shardOf } from '../../src/kv/shards.js';
import { KeyedSource } from '../../src/node/keyed-load.js';
import type { ServeOptions } from '../../src/node/options.js';
import { MemorySink } from '../../src/node/protocol.js';
import { RaftServer } from '../../src/node/server.js';
import { statsBody } from '../../src/node/stats.js';
import type { KeyedSnapshot, NodeStore } from '../../src/node/store.js';
import type { Entry, Json, SnapshotMeta } from '../../src/raft/types.js';
import { DiskStorage } from '../../src/storage/node-storage.js';
import { V3_CHUNK_PAIRS, encodeSnapshot } from '../../src/storage/snapshot.js';
import { inProcessServer, slicingTimers, tmpDir } from './helpers.js';

const SOLO: SnapshotMeta = { index: 50, term: 1, config: ['n1'] };
const KEYS = 60_000; // chunks of V3_CHUNK_PAIRS pairs, over all 64 shards

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  dirs = [];
});


/** A single node's directory: a snapshot at 50 of `k0..k59999 -> i` (keys in shard order, as a node writes them), then `log`, committed. */
function soloDir(log: Array<Entry['data']>): string {
  const dir = tmpDir();
  dirs.push(dir);
  const kv: Array<[Json, Json]> = Array.from({ length: KEYS }, (_, i): [Json, Json] => [`k${i}`, i]).sort((a, b) => shardOf(a[0] as string) - shardOf(b[0] as string));
  const ds = DiskStorage.open(dir, { fsync: false, nodeId: 'n1' });
  ds.dir.setMembers(['n1']);
  ds.saveSnapshot(SOLO, encodeSnapshot(SOLO, { kv }, { createdAt: 0 }));
  const entries = log.map((data, i) => ({ index: 51 + i, term: 1, data }));
  if (entries.length > 0) ds.append(entries);
  ds.setHardState({ term: 1, votedFor: 'n1', commit: 50 + entries.length });
  ds.sync();
  ds.close();
  return dir;
}

interface Solo {
  server: RaftServer;
  fatal: Error[];
  /** Chunks decoded so far, in order. */
  decoded: number[];
  /** Per output line, the chunks decoded by the time it was written. */
  decodedAt: number[];
  chunks: number;
  send(body: Record<string, unknown>): void;
  bodies(type?: string): Array<Record<string, unknown>>;
}

function solo(dir: string, opts: Partial<ServeOptions> = {}, breakChunk = -1): Solo {
  const decoded: number[] = [];
  const decodedAt: number[] = [];
  const sink = new MemorySink();
  const push = sink.write.bind(sink);
  sink.write = (text: string) => {
    const before = sink.lines.length;
    push(text);
    for (let i = before; i < sink.lines.length; i++) decodedAt.push(decoded.length);
  };
  let chunks = 0;
  const wrap = (s: NodeStore): NodeStore => {
    const open = s.openKeyed!.bind(s);
    s.openKeyed = (meta) => {
      const k = open(meta);
      if (!k) return null;
      chunks = k.chunks.length;
      const w: KeyedSnapshot = {
        chunks: k.chunks,
        sessions: k.sessions,
        groups: (j) => {
          if (j === breakChunk) throw new Error(`chunk ${j} of the test's snapshot cannot be read`);
          decoded.push(j);
          return k.groups(j);
        },
      };
      return w;
    };
    return s;
  };
  const fatal: Error[] = [];
  const server = inProcessServer(sink, { dataDir: dir, fsync: false, ...opts }, slicingTimers(), { wrapStore: wrap, onFatal: (e) => fatal.push(e) });
  let msgId = 1;
  const n: Solo = {
    server,
    fatal,
    decoded,
    decodedAt,
    get chunks() {
      return chunks;
    },
    send(body) {
      server.handleLine(JSON.stringify({ src: 'c1', dest: 'n1', body: { ...body, msg_id: msgId++ } }));
    },
    bodies: (type) =>
      sink.lines.map((l) => (JSON.parse(l) as { body: Record<string, unknown> }).body).filter((b) => type === undefined || b['type'] === type),
  };
  n.send({ type: 'init', node_id: 'n1', node_ids: ['n1'] });
  return n;
}

/** The index in the output of the first line whose body has type `type`. */
function lineOf(n: Solo, type: string): number {
  return n.bodies().findIndex((b) => b['type'] === type);
}

describe('recovery of a format 3 snapshot: keys are answered as their chunks come in', () => {
  it('answers a read once its chunks are in, before the whole state is loaded, with the log after the snapshot applied', async () => {
    const dir = soloDir([
      { op: 'write', key: 'k1', value: 'after' },
      { op: 'cas', key: 'k2', from: 2, to: 'cas-ed' },
      { op: 'write', key: 'new', value: 'fresh' },
    ]);
    const n = solo(dir);
    n.send({ type: 'read', key: 'k1' });
    await new Promise((r) => setImmediate(r));
    expect(statsBody(n.server)['loading_snapshot']).toBe(true);
    n.send({ type: 'read', key: 'k59999' });
    n.send({ type: 'read', key: 'new' });
    n.send({ type: 'cas', key: 'k2', from: 'cas-ed', to: 'again' });
    n.send({ type: 'read', key: 'k2' });
    await n.server.idle();
    expect(n.fatal).toEqual([]);
    expect(n.chunks).toBe(Math.ceil(KEYS / V3_CHUNK_PAIRS));
    // Every answer is right: the snapshot's pairs with the three entries after it.
    expect(n.bodies('read_ok').map((b) => b['value'])).toEqual(['after', 59999, 'fresh', 'again']);
    expect(n.bodies('cas_ok')).toHaveLength(1);
    // The first read went out when only the chunks its key may be in had been decoded.
    const first = lineOf(n, 'read_ok');
    expect(n.decodedAt[first]).toBeGreaterThan(0);
    expect(n.decodedAt[first]).toBeLessThan(n.chunks);
    // In the end the whole state is there, each chunk decoded once.
    expect([...n.decoded].sort((a, b) => a - b)).toEqual(Array.from({ length: n.chunks }, (_, j) => j));
    expect(n.server.kv.size).toBe(KEYS + 1);
    expect(n.server.kv.get('k59998')).toBe(59998);
    expect(n.server.kv.get('k1')).toBe('after');
    expect(n.server.loadingSnapshot).toBeNull();
    expect(statsBody(n.server)).toMatchObject({ loading_snapshot: false, keys: KEYS + 1, applied: 55 });
    await n.server.end();
  });

  it('a cas against a key of the snapshot sees the snapshot value, never the empty state', async () => {
    const dir = soloDir([]);
    const n = solo(dir);
    n.send({ type: 'cas', key: 'k7', from: 7, to: 'seven' });
    n.send({ type: 'cas', key: 'k40000', from: 1, to: 'no' });
    n.send({ type: 'read', key: 'k7' });
    await n.server.idle();
    expect(n.fatal).toEqual([]);
    expect(n.bodies('cas_ok')).toHaveLength(1);
    expect(n.bodies('error').map((b) => b['code'])).toEqual([22]);
    expect(n.bodies('read_ok').map((b) => b['value'])).toEqual(['seven']);
    await n.server.end();
  });

  it('a chunk that cannot be read stops the node: one line naming the load, nothing answered after', async () => {
    const dir = soloDir([]);
    const n = solo(dir, {}, 5);
    n.send({ type: 'read', key: 'k1' });
    await n.server.idle();
    await new Promise((r) => setTimeout(r, 20));
    expect(n.fatal).toHaveLength(1);
    expect(n.fatal[0]!.message).toMatch(/chunk 5/);
    expect(n.server.stopped).toBe(true);
  });

  it('a format 2 snapshot is loaded whole before a read is answered (no chunk can be read on its own)', async () => {
    const dir = tmpDir();
    dirs.push(dir);
    const ds = DiskStorage.open(dir, { fsync: false, nodeId: 'n1' });
    ds.dir.setMembers(['n1']);
    ds.saveSnapshot(SOLO, encodeSnapshot(SOLO, { kv: [['a', 1]] }, { createdAt: 0, formatVersion: 2 }));
    ds.setHardState({ term: 1, votedFor: 'n1', commit: 50 });
    ds.sync();
    ds.close();
    const n = solo(dir);
    n.send({ type: 'read', key: 'a' });
    await n.server.idle();
    expect(n.decoded).toEqual([]); // not through the keyed path
    expect(n.bodies('read_ok').map((b) => b['value'])).toEqual([1]);
    await n.server.end();
  });
});

describe('KeyedSource: which chunk comes next, and when a key is readable', () => {
  /** Chunks over shard ranges; chunk j's pairs are the keys given. */
  function source(ranges: Array<[number, number]>, onReady: () => void = () => {}): { src: KeyedSource; order: number[] } {
    const order: number[] = [];
    const snap: KeyedSnapshot = {
      chunks: ranges.map(([firstShard, lastShard]) => ({ pairs: 1, firstShard, lastShard })),
      sessions: undefined,
      groups: (j) => {
        order.push(j);
        return [{ keys: [], values: [] }];
      },
    };
    return { src: new KeyedSource(snap, onReady), order };
  }
  const keyOfShard = (s: number): string => {
    for (let i = 0; ; i++) if (shardOf(`x${i}`) === s) return `x${i}`;
  };

  it('loads in file order, and first the chunks covering a shard asked for; readable once all of them are in', () => {
    let ready = 0;
    const { src, order } = source([[0, 1], [1, 3], [3, 3], [4, 9], [9, 9], [9, 64]], () => ready++);
    const k9 = keyOfShard(9);
    expect(src.readable(k9)).toBe(false);
    // Shard 9 is in chunks 3, 4 and 5: they come first, in order.
    // A chunk is in once its last part was added: at the next call.
    for (let i = 0; i < 3; i++) src.next();
    expect(order).toEqual([3, 4, 5]);
    expect(src.readable(k9)).toBe(false);
    src.next();
    expect(order).toEqual([3, 4, 5, 0]);
    expect(ready).toBe(1);
    expect(src.readable(k9)).toBe(true);
    expect(src.readable(null)).toBe(true); // shard 64 was only in chunk 5
    expect(src.readable(keyOfShard(1))).toBe(false);
    while (src.next() !== null);
    expect(order).toEqual([3, 4, 5, 0, 1, 2]);
    expect(src.readable(keyOfShard(2))).toBe(true);
    expect(src.keyCount).toBe(6);
  });

  it('a key asked for sets the chunk being loaded aside: its chunks come first, then the one set aside goes on where it stopped', () => {
    const parts: string[] = [];
    const snap: KeyedSnapshot = {
      chunks: [{ pairs: 2, firstShard: 0, lastShard: 0 }, { pairs: 2, firstShard: 1, lastShard: 1 }, { pairs: 2, firstShard: 7, lastShard: 7 }],
      sessions: undefined,
      groups: function* (j) {
        for (const g of ['a', 'b']) {
          parts.push(`${j}${g}`);
          yield { keys: [], values: [] };
        }
      },
    };
    let ready = 0;
    const src = new KeyedSource(snap, () => ready++);
    src.next(); // chunk 0, its first part
    expect(src.readable(keyOfShard(7))).toBe(false);
    src.next();
    src.next();
    src.next(); // chunk 2 is in: shard 7 readable
    expect(parts).toEqual(['0a', '2a', '2b', '0b']);
    expect(ready).toBe(1);
    expect(src.readable(keyOfShard(7))).toBe(true);
    expect(src.readable(keyOfShard(0))).toBe(false); // its last part is added, counted at the next call
    while (src.next() !== null);
    expect(parts).toEqual(['0a', '2a', '2b', '0b', '1a', '1b']);
    expect(src.readable(keyOfShard(0))).toBe(true);
  });

  it('a shard no chunk covers is readable at once; an entry that is no command can always be applied', () => {
    const { src } = source([[5, 5]]);
    expect(src.readable(keyOfShard(6))).toBe(true);
    expect(src.canApply(null)).toBe(true);
    expect(src.canApply({ op: 'write', key: keyOfShard(5), value: 1 })).toBe(false);
  });
});
