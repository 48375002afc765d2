// Snapshot format version 3 (docs/FORMAT.md, "Version 3: frames"): the payload of version 2 as
// one zstd frame for the state item, one per chunk and one for the end item, with a frame table in
// the header (sizes, pairs and the range of the keys' shards of each chunk). Round trips of states
// built by the state machine, the table's tightness, FramedSnapshot (chunks on their own, in any
// order), the streaming reader across frame boundaries, and every rule of the table and of the
// frames refused with its code.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Json } from '../../src/raft/types.js';
import { KvStore } from '../../src/kv/store.js';
import { OTHER_SHARD, SHARDS, intShardSpan, keyShard, shardOf } from '../../src/kv/shards.js';
import {
  CHUNK_PAIRS,
  V3_CHUNK_PAIRS,
  V3_GROUP_PAIRS,
  V3_INT_GROUP_PAIRS,
  FramedSnapshot,
  MemFs,
  SNAPSHOT_FORMAT_VERSION,
  SnapshotEncoder,
  SnapshotReader,
  StorageError,
  decodeSnapshot,
  encodeSnapshot,
  readSnapshotFile,
  verifySnapshotFile,
  type SnapshotChunk,
  type SnapshotReadOptions,
} from '../../src/storage/index.js';
import { cbor, groupItems, snapshotFromFrames, snapshotFromItems, snapshotFromPayload, zstdFrame, type HandChunk } from '../../src/fuzz/seal.js';
import { canon, tmpDir } from './helpers.js';

const META = { index: 42, term: 3, config: ['n1', 'n2', 'n3'] };
const OPTS = { createdAt: Date.UTC(2024, 0, 2), nodeId: 'n1' };
const SESSIONS: Json = { forwards: [{ origin: 'n2/c1', last: 40, low: 0, ids: [3, 1, 1] }] };

/** xorshift32: deterministic values that zstd cannot squeeze much. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>>= 0);
  };
}

/** A state built through the state machine (writes in this order), with or without a session table. */
function store(pairs: Array<[Json, Json]>, sessions?: Json): KvStore {
  return KvStore.fromEntries(pairs, sessions);
}

/** Encode a store as the node does: its frozen view's columns, `chunk` pairs a call. */
function encodeStore(s: KvStore, chunk = 16384, formatVersion?: 1 | 2 | 3): Buffer {
  const view = s.freeze();
  const enc = new SnapshotEncoder(META, { ...OPTS, ...(formatVersion ? { formatVersion } : {}) });
  for (const c of view.columns(chunk)) enc.addColumns(c.keys, c.values);
  const bytes = enc.finish(view.sessions);
  view.release();
  return bytes;
}

const intPairs = (n: number, from = 0): Array<[Json, Json]> => Array.from({ length: n }, (_, i) => [from + i, i * 7] as [Json, Json]);
const stringPairs = (n: number): Array<[Json, Json]> => Array.from({ length: n }, (_, i) => [`key-${i}`, { v: i, s: 'x'.repeat(i % 5) }] as [Json, Json]);
const OTHER_KEYS: Json[] = [null, true, false, [], [1, 2], ['a', [null]], {}, { a: 1 }, { b: [1, { c: 'd' }] }];

/** Pairs of a snapshot, as a sorted list of canonical texts (group order within a chunk is the writer's). */
const sorted = (kv: Array<[Json, Json]>): string[] => canon(kv).sort();

function refusal(f: () => unknown): StorageError {
  let err: unknown = null;
  try {
    f();
  } catch (e) {
    err = e;
  }
  if (!(err instanceof StorageError)) throw new Error(`expected a StorageError, got ${err === null ? 'none' : String(err)}`);
  expect(err.message).not.toContain('\n');
  return err;
}

function expectRefused(f: () => unknown, code: string, re: RegExp): void {
  const e = refusal(f);
  expect(e.code).toBe(code);
  expect(e.message).toMatch(re);
}

/** Write `bytes` to a fresh temporary file. */
function tempFile(bytes: Uint8Array, name = 'x.snap'): string {
  const f = path.join(tmpDir('raftsnap-frames-'), name);
  fs.writeFileSync(f, bytes);
  return f;
}

/** Every chunk of a file through the streaming reader. */
function readChunks(file: string, opts: SnapshotReadOptions = {}): { chunks: SnapshotChunk[]; sessions: Json | undefined; keysRead: number } {
  const r = SnapshotReader.open(file, opts);
  const chunks = [...r.chunks()].map((c) => ({ ...c, keys: [...c.keys], values: [...c.values], keyBytes: [...c.keyBytes], valueBytes: [...c.valueBytes] }));
  return { chunks, sessions: r.sessions, keysRead: r.keysRead };
}

/** A deterministic xorshift32 generator of numbers in [0, 1). */
function uniform(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('snapshot format version 3: writing and reading', () => {
  it('is the version written by default, and its header has the frame table', () => {
    expect(SNAPSHOT_FORMAT_VERSION).toBe(3);
    const bytes = encodeSnapshot(META, { kv: intPairs(20_000) }, OPTS);
    expect(bytes.readUInt16BE(8)).toBe(3);
    const h = decodeSnapshot(bytes).header;
    expect(h.formatVersion).toBe(3);
    const f = h.frames!;
    // The state item ["raftsnap-state", 3] (17 bytes) alone; the end item {"keyCount": 20000} alone.
    expect(f.state).toMatchObject({ offset: 0, rawOffset: 0, rawSize: 17 });
    expect(f.end.rawSize).toBe(cbor({ keyCount: 20_000 }).length);
    expect(f.chunks.map((c) => c.pairs)).toEqual([...Array<number>(Math.floor(20_000 / V3_CHUNK_PAIRS)).fill(V3_CHUNK_PAIRS), 20_000 % V3_CHUNK_PAIRS]);
    // Frames follow each other with no gap, and fill the payload exactly.
    const all = [f.state, ...f.chunks, f.end];
    for (let j = 1; j < all.length; j++) {
      expect(all[j]!.offset).toBe(all[j - 1]!.offset + all[j - 1]!.size);
      expect(all[j]!.rawOffset).toBe(all[j - 1]!.rawOffset + all[j - 1]!.rawSize);
    }
    expect(f.end.offset + f.end.size).toBe(h.compressedSize);
    expect(f.end.rawOffset + f.end.rawSize).toBe(h.rawSize);
    // Each frame is a zstd frame of its own (magic number at its start).
    const payload = bytes.subarray(h.payloadOffset);
    for (const sp of all) expect(payload.readUInt32LE(sp.offset)).toBe(0xfd2fb528);
    // Integer keys 0..19999 are in the blocks of 4096 of shards 0..4: chunk j holds keys from
    // j * V3_CHUNK_PAIRS on.
    const shardRange = (j: number): number[] => [j * V3_CHUNK_PAIRS, Math.min(20_000, (j + 1) * V3_CHUNK_PAIRS) - 1].map((k) => k >>> 12);
    expect(f.chunks.map((c) => [c.firstShard, c.lastShard])).toEqual(f.chunks.map((_, j) => shardRange(j)));
    expect(f.chunks[f.chunks.length - 1]!.lastShard).toBe(4);
  });

  const states: Array<[string, Array<[Json, Json]>, Json | undefined]> = [
    ['integer keys, several chunks', intPairs(20_000), undefined],
    ['integer keys beyond the blocks (negative, 2^31 and more, fractions)', [...intPairs(50, -25), [2 ** 31, 1], [2 ** 53 - 1, 2], [0.5, 3], [-0.25, 4], [1e300, 5]], SESSIONS],
    ['string keys of every shard, several chunks', stringPairs(9_000), SESSIONS],
    ['non-primitive keys (shard 64) only', OTHER_KEYS.map((k, i) => [k, i] as [Json, Json]), undefined],
    ['all kinds mixed, several chunks', [...stringPairs(6_000), ...intPairs(10_000, 5_000), ...OTHER_KEYS.map((k, i) => [k, [i]] as [Json, Json]), ['1', 'string one']], SESSIONS],
    ['the empty state', [], undefined],
    ['the empty state with sessions', [], SESSIONS],
  ];
  for (const [name, pairs, sessions] of states) {
    it(`round-trips a state machine's state: ${name}`, () => {
      const s = store(pairs, sessions);
      const bytes = encodeStore(s);
      const { header, content } = decodeSnapshot(bytes);
      expect(header.formatVersion).toBe(3);
      expect(header.keyCount).toBe(s.size);
      expect(header.hasSessions).toBe(sessions !== undefined);
      expect(content.kv.length).toBe(s.size);
      expect(sorted(content.kv)).toEqual(sorted([...s.entries()]));
      expect(content.sessions).toEqual(s.freeze().sessions);
      expect('sessions' in content).toBe(sessions !== undefined);
      // The file's chunks are the store's chunks of V3_CHUNK_PAIRS pairs in its order, each as its frame says.
      const entries = [...s.entries()];
      const f = header.frames!;
      expect(f.chunks.length).toBe(Math.ceil(s.size / V3_CHUNK_PAIRS));
      const framed = FramedSnapshot.fromBytes(bytes)!;
      f.chunks.forEach((c, j) => {
        const part = entries.slice(j * V3_CHUNK_PAIRS, (j + 1) * V3_CHUNK_PAIRS);
        const got = framed.chunk(j);
        expect(sorted(got.keys.map((k, i) => [k, got.values[i]!]))).toEqual(sorted(part));
        expect(c.pairs).toBe(part.length);
      });
      expect(framed.sessions).toEqual(content.sessions);
      // The same state in version 2 holds the same pairs (in chunks of another size).
      const v2 = decodeSnapshot(encodeStore(s, 16384, 2)).content.kv;
      expect(sorted(content.kv)).toEqual(sorted(v2));
    });
  }

  it('a chunk frame holds its keys of each kind as groups of at most V3_GROUP_PAIRS, in the order version 2 writes as one group per kind', () => {
    // One chunk of every kind in a random order: integer keys, template keys (many of one template,
    // and more distinct templates than a group holds pairs), hex keys and other keys.
    const r = rng(7);
    const pairs: Array<[Json, Json]> = [];
    const letters = (i: number): string => i.toString(26).replace(/[0-9]/g, (d) => 'qrstuvwxyz'[Number(d)]!);
    for (let i = 0; i < V3_CHUNK_PAIRS; i++) {
      const kind = r() % 5;
      const key: Json =
        kind === 0 ? r() % 100_000 : kind === 1 ? `user:${r() % 1_000_000}` : kind === 2 ? `t${letters(i)}:${i}` : kind === 3 ? (r() >>> 0).toString(16).padStart(8, '0') + 'ab' : [i];
      pairs.push([key, r() % 3 === 0 ? r() % 100 : { i }]);
    }
    const order = (formatVersion: 2 | 3): { groups: SnapshotChunk[]; file: Int32Array } => {
      const enc = new SnapshotEncoder(META, { ...OPTS, formatVersion, recordOrder: true });
      enc.add(pairs);
      const bytes = enc.finish();
      return { groups: [...SnapshotReader.fromBytes(bytes).chunks()], file: enc.fileOrder() };
    };
    const v2 = order(2);
    const v3 = order(3);
    expect(v2.groups.length).toBe(4); // one group per kind
    expect(v3.groups.length).toBeGreaterThan(V3_CHUNK_PAIRS / V3_GROUP_PAIRS);
    for (const g of v3.groups) expect(g.keys.length).toBeLessThanOrEqual(V3_GROUP_PAIRS); // values not all integers
    // The same pairs in the same order, cut into smaller groups.
    expect(v3.file).toEqual(v2.file);
    const flat = (gs: SnapshotChunk[]): string[] => canon(gs.flatMap((g) => g.keys.map((k, i) => [k, g.values[i]!] as [Json, Json])));
    expect(flat(v3.groups)).toEqual(flat(v2.groups));
    expect(flat(v3.groups).sort()).toEqual(sorted(pairs));
  });

  it('a group whose values are all integers may hold up to V3_INT_GROUP_PAIRS: one group per kind and frame for an integer state', () => {
    const groupsOf = (pairs: Array<[Json, Json]>): SnapshotChunk[] => {
      const enc = new SnapshotEncoder(META, { ...OPTS, formatVersion: 3 });
      enc.add(pairs);
      const groups = [...SnapshotReader.fromBytes(enc.finish()).chunks()];
      expect(canon(groups.flatMap((g) => g.keys.map((k, i) => [k, g.values[i]!] as [Json, Json]))).sort()).toEqual(sorted(pairs));
      return groups;
    };
    expect(V3_INT_GROUP_PAIRS).toBe(V3_CHUNK_PAIRS);
    // Integer keys (shuffled) and user:<n> keys, integer values: one group of each kind per frame.
    const r = rng(11);
    const ints: Array<[Json, Json]> = Array.from({ length: 2 * V3_CHUNK_PAIRS }, (_, i) => [(i * 7919) % 1_000_003, r() % 1000]);
    expect(groupsOf(ints).map((g) => g.keys.length)).toEqual([V3_CHUNK_PAIRS, V3_CHUNK_PAIRS]);
    const users: Array<[Json, Json]> = Array.from({ length: V3_CHUNK_PAIRS }, (_, i) => [`user:${(i * 31) % 100_000}`, i]);
    expect(groupsOf(users).map((g) => g.keys.length)).toEqual([V3_CHUNK_PAIRS]);
    // One value that is not an integer: the groups around it are cut at V3_GROUP_PAIRS again, and
    // no group longer than that holds anything but integer values.
    const spoilt = ints.slice(0, V3_CHUNK_PAIRS).map(([k, v], i): [Json, Json] => [k, i === 5000 ? { v } : v]);
    const groups = groupsOf(spoilt);
    expect(groups.length).toBeGreaterThan(1);
    for (const g of groups) {
      if (g.keys.length > V3_GROUP_PAIRS) expect(g.values.every((v) => Number.isInteger(v))).toBe(true);
      if (g.values.some((v) => !Number.isInteger(v))) expect(g.keys.length).toBeLessThanOrEqual(V3_GROUP_PAIRS);
    }
  });

  it('the frame table is tight for the shard order of a state machine: each chunk declares exactly the shards of its keys', () => {
    const s = store([...stringPairs(12_000), ...intPairs(30_000, 100_000), ...OTHER_KEYS.map((k, i) => [k, i] as [Json, Json]), ...intPairs(3, 2 ** 40)]);
    const bytes = encodeStore(s);
    const framed = FramedSnapshot.fromBytes(bytes)!;
    const nonEmpty = new Set([...s.entries()].map(([k]) => keyShard(k)));
    let prevLast = -1;
    let seen = 0;
    for (let j = 0; j < framed.chunks.length; j++) {
      const c = framed.chunks[j]!;
      const shards = framed.chunk(j).keys.map((k) => keyShard(k));
      expect(Math.min(...shards), `chunk ${j}`).toBe(c.firstShard);
      expect(Math.max(...shards), `chunk ${j}`).toBe(c.lastShard);
      // Shard order: the chunks' ranges follow each other, sharing at most a boundary shard.
      expect(c.firstShard).toBeGreaterThanOrEqual(prevLast);
      prevLast = c.lastShard;
      // Every shard of the state inside the range, past its first, has keys in this chunk.
      const mine = new Set(shards);
      for (let sh = c.firstShard; sh <= c.lastShard; sh++) if (sh > c.firstShard && sh < c.lastShard && nonEmpty.has(sh)) expect(mine.has(sh), `chunk ${j} shard ${sh}`).toBe(true);
      seen += shards.length;
    }
    expect(seen).toBe(s.size);
    expect(framed.chunks[framed.chunks.length - 1]!.lastShard).toBe(OTHER_SHARD);
    expect(framed.chunks[0]!.firstShard).toBe(Math.min(...nonEmpty));
  });

  it('intShardSpan gives the shards of integer spans exactly as keyShard of each key does, or null', () => {
    const rnd = uniform(0x2545f491);
    const ends = [0, 1, 4095, 4096, 64 * 4096 - 1, 64 * 4096, 2 ** 31 - 4097, 2 ** 31 - 1, 2 ** 31, -1, -4096];
    const spans: Array<[number, number]> = [];
    for (const a of ends) for (const b of ends) spans.push([a, b]);
    for (let t = 0; t < 2000; t++) {
      const a = Math.floor(rnd() * 2 ** 31);
      spans.push([a, a + Math.floor(rnd() * (rnd() < 0.5 ? 8192 : 600_000))]);
    }
    let told = 0;
    for (const [min, max] of spans) {
      const got = intShardSpan(min, max);
      if (got === null) continue;
      told++;
      // Every integer of the span has a shard within the range, and both ends are reached.
      let lo = Infinity;
      let hi = -1;
      for (let k = min; k <= max; k += Math.max(1, Math.floor((max - min) / 5000))) {
        lo = Math.min(lo, keyShard(k));
        hi = Math.max(hi, keyShard(k));
      }
      lo = Math.min(lo, keyShard(max));
      hi = Math.max(hi, keyShard(max));
      expect(got, `${min}..${max}`).toEqual([keyShard(min), keyShard(max)]);
      expect([lo, hi], `${min}..${max}`).toEqual(got);
    }
    expect(told).toBeGreaterThan(1000);
    expect(intShardSpan(64 * 4096 - 1, 64 * 4096)).toBeNull(); // shard 63, then 0: wraps
    expect(intShardSpan(-1, 5)).toBeNull();
    expect(intShardSpan(0, 2 ** 31)).toBeNull();
  });

  it('every chunk frame declares exactly the shards of its keys, for integer keys in any order and span', () => {
    const rnd = uniform(0x9e3779b9);
    // Spans within one block, across blocks, across the turn of the shards, negative and past
    // 2^31 (hashed): each 8,192 pairs, fed in order, reversed or shuffled.
    const starts = [0, 4000, 64 * 4096 - 5000, 2 ** 31 - 8192, 2 ** 31 - 100, -3000, 10 ** 12];
    const keys: number[] = [];
    for (const s0 of starts) {
      const run = Array.from({ length: V3_CHUNK_PAIRS }, (_, i) => s0 + i * (s0 === 4000 ? 37 : 1));
      if (rnd() < 0.5) run.reverse();
      for (let i = run.length - 1; i > 0 && s0 % 2 === 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        [run[i], run[j]] = [run[j]!, run[i]!];
      }
      keys.push(...run);
    }
    const enc = new SnapshotEncoder({ index: 1, term: 1, config: ['n1'] }, { createdAt: 0 });
    for (let i = 0; i < keys.length; i += 3000) enc.addColumns(keys.slice(i, i + 3000), keys.slice(i, i + 3000).map((k) => k % 7));
    const framed = FramedSnapshot.fromBytes(enc.finish())!;
    expect(framed.chunks.length).toBe(starts.length);
    for (let j = 0; j < framed.chunks.length; j++) {
      const shards = framed.chunk(j).keys.map((k) => keyShard(k));
      expect([framed.chunks[j]!.firstShard, framed.chunks[j]!.lastShard], `chunk ${j}`).toEqual([Math.min(...shards), Math.max(...shards)]);
    }
  });

  it('the chunks whose range holds a key shard are the ones to decode to find the key', () => {
    const pairs: Array<[Json, Json]> = [...stringPairs(20_000), ...intPairs(20_000, 7), ...OTHER_KEYS.map((k, i) => [k, i] as [Json, Json])];
    const s = store(pairs);
    const framed = FramedSnapshot.fromBytes(encodeStore(s))!;
    const r = rng(9);
    const probes: Json[] = [...OTHER_KEYS, 'key-0', 'key-19999', 7, 20_006, 'absent', 123_456];
    for (let i = 0; i < 40; i++) probes.push(pairs[r() % pairs.length]![0]);
    for (const key of probes) {
      const sh = keyShard(key);
      const want = s.get(key);
      const candidates = framed.chunks.map((c, j) => ({ c, j })).filter(({ c }) => c.firstShard <= sh && sh <= c.lastShard);
      expect(candidates.length).toBeLessThan(framed.chunks.length);
      let found: Json | undefined;
      for (const { j } of candidates) {
        const ch = framed.chunk(j);
        const at = canon(ch.keys.map((k) => [k, null] as [Json, Json])).indexOf(canon([[key, null]])[0]!);
        if (at >= 0) found = ch.values[at];
      }
      expect(canon([[key, found ?? null]]), JSON.stringify(key)).toEqual(canon([[key, want ?? null]]));
    }
  });

  it('keyShard is shardOf for numbers and strings, 64 for every other key', () => {
    expect(SHARDS).toBe(64);
    expect(OTHER_SHARD).toBe(64);
    for (const k of [0, 4095, 4096, 2 ** 31 - 1, -1, 0.5, 2 ** 31, 'a', '', 'x'.repeat(40)]) expect(keyShard(k)).toBe(shardOf(k));
    for (const k of OTHER_KEYS) expect(keyShard(k)).toBe(64);
    // Integers 0..2^31-1 by blocks of 4096; other numbers by their String() form.
    expect([0, 4095, 4096, 8191, 8192, 64 * 4096, 64 * 4096 + 4096].map(shardOf)).toEqual([0, 0, 1, 1, 2, 0, 1]);
    expect(shardOf(-5)).toBe(shardOf('-5'));
    expect(shardOf(2 ** 31)).toBe(shardOf('2147483648'));
    expect(shardOf(1.5)).toBe(shardOf('1.5'));
    expect(shardOf(-0)).toBe(shardOf(0));
    // Strings: the length and at most the last 16 code units.
    expect(shardOf('A' + 'z'.repeat(16))).toBe(shardOf('B' + 'z'.repeat(16)));
    // The test values of docs/FORMAT.md ("The key shard"): part of the format, files record them.
    const vectors: Array<[Json, number]> = [
      ['', 28],
      ['a', 30],
      ['user:42', 8],
      ['\u00e9', 26],
      ['-1', 49],
      [-1, 49],
      [1.5, 10],
      [2147483648, 57],
      [2147483647, 63],
      [4096, 1],
      [262144, 0],
      [1e21, 48],
      ['x'.repeat(20), 36],
      ['y' + 'x'.repeat(19), 36],
      [null, 64],
      [[1], 64],
      [{}, 64],
    ];
    for (const [k, want] of vectors) expect(keyShard(k), JSON.stringify(k)).toBe(want);
  });

  it('FramedSnapshot.chunk(j), in any order of j, gives exactly the pairs of the whole decode', () => {
    const s = store([...stringPairs(9_000), ...intPairs(9_000, 50), ...OTHER_KEYS.map((k, i) => [k, { i }] as [Json, Json])], SESSIONS);
    const bytes = encodeStore(s, 5000);
    const whole = decodeSnapshot(bytes);
    const framed = FramedSnapshot.fromBytes(bytes, 'x.snap')!;
    expect(framed.header).toEqual(whole.header);
    expect(framed.chunks).toEqual(whole.header.frames!.chunks);
    expect(framed.sessions).toEqual(whole.content.sessions);
    const n = framed.chunks.length;
    expect(n).toBe(Math.ceil((18_000 + OTHER_KEYS.length) / V3_CHUNK_PAIRS));
    const starts = framed.chunks.map((_, j) => framed.chunks.slice(0, j).reduce((a, c) => a + c.pairs, 0));
    const slice = (j: number): Array<[Json, Json]> => whole.content.kv.slice(starts[j], starts[j]! + framed.chunks[j]!.pairs);
    const orders = [
      [0, 1, 2],
      [2, 1, 0],
      [1, 2, 0, 1],
      [2, 2, 0],
    ];
    for (const order of orders) {
      for (const j of order) {
        const c = framed.chunk(j);
        // Exactly: the same pairs in the same order as the whole decode gives them.
        expect(canon(c.keys.map((k, i) => [k, c.values[i]!]))).toEqual(canon(slice(j)));
      }
    }
    expect(() => framed.chunk(n)).toThrow(RangeError);
    expect(() => framed.chunk(-1)).toThrow(RangeError);
    // The same through a file system.
    const mfs = new MemFs();
    mfs.mkdir('/s', { recursive: true });
    const fd = mfs.open('/s/x.snap', 'w');
    mfs.write(fd, bytes, 0, bytes.length);
    mfs.close(fd);
    const opened = FramedSnapshot.open('/s/x.snap', { fs: mfs })!;
    expect(canon(Array.from({ length: n }, (_, j) => opened.chunk(j)).flatMap((c) => c.keys.map((k, i) => [k, c.values[i]!] as [Json, Json])))).toEqual(canon(whole.content.kv));
    const missing = refusal(() => FramedSnapshot.open('/s/none.snap', { fs: mfs }));
    expect(missing.code).toBe('ENOENT');
    expect(missing.message).toContain('/s/none.snap');
  });

  it('FramedSnapshot is null for a version 1 or 2 file (one frame: no chunk can be read alone)', () => {
    const s = store([...stringPairs(100), ...intPairs(100)], SESSIONS);
    for (const v of [1, 2] as const) {
      const bytes = encodeStore(s, 16384, v);
      expect(bytes.readUInt16BE(8)).toBe(v);
      expect(decodeSnapshot(bytes).header.frames).toBeNull();
      expect(FramedSnapshot.fromBytes(bytes)).toBeNull();
      expect(FramedSnapshot.fromBytes(encodeSnapshot(META, { kv: [] }, { formatVersion: v }))).toBeNull();
    }
    const fixtures = path.resolve(__dirname, '../../fixtures/snapshots');
    for (const f of ['good.snap', 'good-v2.snap']) expect(FramedSnapshot.open(path.join(fixtures, f)), f).toBeNull();
    // It still checks what it is given: a damaged version 2 file is refused, not null.
    const bad = Buffer.from(encodeStore(s, 16384, 2));
    bad[bad.length - 3]! ^= 0x10;
    expect(refusal(() => FramedSnapshot.fromBytes(bad)).code).toBe('BAD_PAYLOAD_CRC');
  });

  it('fixtures/snapshots/good-v3.snap holds good.snap\'s state in one chunk frame of the shards 0 to 64', () => {
    const dir = path.resolve(__dirname, '../../fixtures/snapshots');
    const v1 = readSnapshotFile(path.join(dir, 'good.snap'));
    const v3 = readSnapshotFile(path.join(dir, 'good-v3.snap'));
    expect(v3.header.formatVersion).toBe(3);
    expect(sorted(v3.content.kv)).toEqual(sorted(v1.content.kv));
    expect(v3.content.sessions).toEqual(v1.content.sessions);
    expect(v3.header.frames!.chunks.map((c) => [c.pairs, c.firstShard, c.lastShard])).toEqual([[207, 0, 64]]);
    const f = FramedSnapshot.open(path.join(dir, 'good-v3.snap'))!;
    const c = f.chunk(0);
    expect(canon(c.keys.map((k, i) => [k, c.values[i]!]))).toEqual(canon(v3.content.kv));
  });

  it('SnapshotReader.open reads a version 3 file across frame and piece boundaries as decodeSnapshot does (verify first and streaming)', () => {
    // Values zstd cannot squeeze: the file is several of the streaming reader's 64 KiB pieces.
    const r = rng(5);
    const pairs: Array<[Json, Json]> = [];
    for (let i = 0; i < 30_000; i++) pairs.push([i % 3 === 0 ? i : `k${r().toString(36)}`, r().toString(36) + r().toString(36)]);
    pairs.push([[1], 'array key'], [null, { x: r() }]);
    const s = store(pairs, SESSIONS);
    const bytes = encodeStore(s, 3000);
    const h = decodeSnapshot(bytes).header;
    expect(h.compressedSize).toBeGreaterThan(4 * 65536);
    expect(h.frames!.chunks.length).toBe(Math.ceil(30_002 / V3_CHUNK_PAIRS));
    // Frame boundaries fall inside the reader's pieces.
    expect(h.frames!.chunks.some((c) => (h.payloadOffset + c.offset) % 65536 !== 0 && Math.floor((h.payloadOffset + c.offset) / 65536) !== Math.floor((h.payloadOffset + c.offset + c.size) / 65536))).toBe(true);
    const mem = SnapshotReader.fromBytes(bytes);
    const want = [...mem.chunks()];
    const file = tempFile(bytes);
    for (const verify of ['first', 'streaming'] as const) {
      const got = readChunks(file, { verify });
      expect(got.chunks.length, verify).toBe(want.length);
      for (let i = 0; i < want.length; i++) expect(got.chunks[i], `${verify} chunk ${i}`).toEqual(want[i]);
      expect(got.sessions).toEqual(mem.sessions);
      expect(got.keysRead).toBe(s.size);
    }
    const whole = readSnapshotFile(file, { verify: 'streaming' });
    expect(canon(whole.content.kv)).toEqual(canon(decodeSnapshot(bytes).content.kv));
    expect(whole.content.sessions).toEqual(SESSIONS);
    expect(verifySnapshotFile(file)).toMatchObject({ problems: [], keys: s.size });
  });

  it('writes the same bytes however the encoder is fed (add, addColumns, any chunk sizes)', () => {
    const pairs: Array<[Json, Json]> = [...intPairs(9_000, 3), ...stringPairs(9_000), ...OTHER_KEYS.map((k, i) => [k, i] as [Json, Json])];
    const want = encodeSnapshot(META, { kv: pairs, sessions: SESSIONS }, OPTS);
    expect(want.readUInt16BE(8)).toBe(3);
    const fed = (feed: (e: SnapshotEncoder) => void): Buffer => {
      const e = new SnapshotEncoder(META, OPTS);
      feed(e);
      return e.finish(SESSIONS);
    };
    for (const size of [1, 7, 1000, CHUNK_PAIRS - 1, CHUNK_PAIRS, CHUNK_PAIRS + 1, 16384, 100_000]) {
      const byAdd = fed((e) => {
        for (let i = 0; i < pairs.length; i += size) e.add(pairs.slice(i, i + size));
      });
      expect(byAdd.equals(want), `add ${size}`).toBe(true);
      const byColumns = fed((e) => {
        for (let i = 0; i < pairs.length; i += size) {
          const part = pairs.slice(i, i + size);
          e.addColumns(
            part.map((p) => p[0]),
            part.map((p) => p[1]),
          );
        }
      });
      expect(byColumns.equals(want), `addColumns ${size}`).toBe(true);
    }
    const byIterable = fed((e) => e.add(new Map(pairs.map((p, i) => [i, p])).values()));
    expect(byIterable.equals(want)).toBe(true);
    // A store's frozen view, fed in chunks of any size: the same bytes for the same order.
    const s = store(pairs, SESSIONS);
    const ref = encodeStore(s, 16384);
    for (const size of [1, 999, CHUNK_PAIRS, 50_000]) expect(encodeStore(s, size).equals(ref), `columns ${size}`).toBe(true);
  });
});

// ------------------------------------------------------------------------------------------------
// Hand-made files: every rule of the frame table and of the frames.

const STATE3 = ['raftsnap-state', 3];
/** A hand-made chunk frame of `pairs` and what the table says of it (tight shards). */
function chunkOf(pairs: Array<[Json, Json]>): { items: unknown[]; entry: HandChunk } {
  const shards = pairs.map(([k]) => keyShard(k));
  return { items: groupItems(pairs), entry: { pairs: pairs.length, firstShard: Math.min(...shards), lastShard: Math.max(...shards) } };
}
const A: Array<[Json, Json]> = [
  [1, 'one'],
  [2, 'two'],
  [3, 'three'],
];
const B: Array<[Json, Json]> = [
  [4096, 'four'],
  [4097, 'five'],
  ['s', 'six'],
  [null, 'seven'],
  [[8], 'eight'],
];

/** A hand-made version 3 file of the chunks A and B (8 pairs), sealed; `edit` changes the frames or the table first. */
function handMade(edit: (frames: unknown[][], table: HandChunk[]) => void = () => {}, h: Parameters<typeof snapshotFromFrames>[2] = {}): Buffer {
  const a = chunkOf(A);
  const b = chunkOf(B);
  const frames: unknown[][] = [[STATE3], a.items, b.items, [{ keyCount: 8 }]];
  const table = [a.entry, b.entry];
  edit(frames, table);
  return snapshotFromFrames(frames, table, h);
}

/** The true table of a hand-made file, to edit: [[size, raw], [[size, raw, pairs, first, last], ...], [size, raw]]. */
function tableOf(bytes: Buffer): { stateFrame: number[]; chunkFrames: number[][]; endFrame: number[] } {
  const f = decodeSnapshot(bytes).header.frames!;
  return {
    stateFrame: [f.state.size, f.state.rawSize],
    chunkFrames: f.chunks.map((c) => [c.size, c.rawSize, c.pairs, c.firstShard, c.lastShard]),
    endFrame: [f.end.size, f.end.rawSize],
  };
}

/** Every reader of a whole file refuses it with `code` and a message matching `re`: in memory, from a file (both verifications), and FramedSnapshot (when it reads the chunks, each of them). */
function refusedByAll(bytes: Buffer, code: string, re: RegExp, framed: 'open' | 'chunk' | 'none' = 'open'): void {
  expectRefused(() => decodeSnapshot(bytes, 'x.snap'), code, re);
  const file = tempFile(bytes);
  for (const verify of ['first', 'streaming'] as const) expectRefused(() => readChunks(file, { verify }), code, re);
  expect(verifySnapshotFile(file).problems.map((p) => p.code)).toEqual([code]);
  if (framed === 'none') {
    // not FramedSnapshot (a version 1 or 2 file, or a test that checks it on its own)
  } else if (framed === 'open') {
    expectRefused(() => FramedSnapshot.fromBytes(bytes, 'x.snap'), code, re);
  } else {
    const f = FramedSnapshot.fromBytes(bytes, 'x.snap')!;
    const errors = f.chunks.map((_, j) => {
      try {
        f.chunk(j);
        return null;
      } catch (e) {
        return e;
      }
    });
    const bad = errors.filter((e) => e !== null);
    expect(bad.length).toBeGreaterThan(0);
    for (const e of bad) {
      expect(e).toBeInstanceOf(StorageError);
      expect((e as StorageError).code).toBe(code);
      expect((e as StorageError).message).toMatch(re);
    }
  }
}

describe('snapshot format version 3: hand-made files', () => {
  it('a well-formed hand-made file reads (the refusals below each change one thing of it)', () => {
    const bytes = handMade();
    const { header, content } = decodeSnapshot(bytes);
    expect(header.frames!.chunks.map((c) => [c.pairs, c.firstShard, c.lastShard])).toEqual([
      [3, 0, 0],
      [5, 1, 64],
    ]);
    expect(sorted(content.kv)).toEqual(sorted([...A, ...B]));
    const f = FramedSnapshot.fromBytes(bytes)!;
    expect(canon(f.chunk(1).keys.map((k, i) => [k, f.chunk(1).values[i]!]))).toEqual(canon(content.kv.slice(3)));
    expect(readChunks(tempFile(bytes), { verify: 'streaming' }).keysRead).toBe(8);
    // A chunk frame of several groups, and one of exactly CHUNK_PAIRS pairs, are fine too.
    const big = intPairs(CHUNK_PAIRS, 10).map(([k, v]) => [String(k), v] as [Json, Json]);
    const g = chunkOf(big);
    expect(g.items.length).toBe(1);
    const two = chunkOf(A);
    const ok = snapshotFromFrames([[STATE3], [...two.items, ...groupItems(B)], g.items, [{ keyCount: 8 + CHUNK_PAIRS }]], [{ pairs: 8, firstShard: 0, lastShard: 64 }, g.entry]);
    expect(decodeSnapshot(ok).content.kv.length).toBe(8 + CHUNK_PAIRS);
  });

  describe('the frame table (a damaged header: BAD_HEADER_CRC, before any payload byte is read)', () => {
    const base = handMade();
    const t = tableOf(base);
    const withTable = (extra: Record<string, unknown>, h: Parameters<typeof snapshotFromFrames>[2] = {}): Buffer => handMade(undefined, { ...h, extra });
    const damaged = (bytes: Buffer, re: RegExp): void => {
      expectRefused(() => decodeSnapshot(bytes, 'x.snap'), 'BAD_HEADER_CRC', re);
      expectRefused(() => FramedSnapshot.fromBytes(bytes, 'x.snap'), 'BAD_HEADER_CRC', re);
      expectRefused(() => SnapshotReader.open(tempFile(bytes)), 'BAD_HEADER_CRC', re);
      expect(refusal(() => decodeSnapshot(bytes, 'x.snap')).message).toMatch(/^x\.snap: snapshot header passes its checksum but /);
    };

    it('sizes that do not add up to the payload (compressed or decompressed)', () => {
      const c = t.chunkFrames;
      damaged(withTable({ chunkFrames: [[c[0]![0]! + 1, ...c[0]!.slice(1)], c[1]] }), /its frames add up to \d+ bytes \(\d+ decompressed\), not the payload's \d+ \(\d+\)/);
      damaged(withTable({ endFrame: [t.endFrame[0], t.endFrame[1]! + 1] }), /its frames add up to/);
      damaged(withTable({ stateFrame: [t.stateFrame[0]! - 1, t.stateFrame[1]] }), /its frames add up to/);
      damaged(withTable({ chunkFrames: [c[0]] }), /its frames add up to/);
      // The payload's own sizes: the header's compressedSize against the table (the file is longer or shorter then).
      damaged(handMade(undefined, { rawSize: decodeSnapshot(base).header.rawSize + 5 }), /its frames add up to/);
    });

    it("chunk pairs that do not add up to keyCount", () => {
      damaged(handMade(undefined, { keyCount: 9 }), /its chunk frames hold 8 pairs, not the 9 keys it declares/);
      damaged(handMade(undefined, { keyCount: 7 }), /its chunk frames hold 8 pairs, not the 7 keys it declares/);
      // No chunk frame at all but a key.
      damaged(snapshotFromFrames([[STATE3], [{ keyCount: 1 }]], [], { keyCount: 1 }), /its chunk frames hold 0 pairs, not the 1 keys/);
    });

    it('a chunk of 0 or of more than 8192 pairs', () => {
      damaged(handMade((_, table) => void (table[0]!.pairs = 0), { keyCount: 5 }), /chunk frame 0 declares 0 pairs \(1 to 8192\)/);
      damaged(handMade((_, table) => void (table[1]!.pairs = CHUNK_PAIRS + 1), { keyCount: 3 + CHUNK_PAIRS + 1 }), /chunk frame 1 declares 8193 pairs \(1 to 8192\)/);
    });

    it('a shard range reversed or beyond 64', () => {
      damaged(handMade((_, table) => Object.assign(table[1]!, { firstShard: 5, lastShard: 3 })), /chunk frame 1 declares the shards 5 to 3 \(a range within 0 to 64\)/);
      damaged(handMade((_, table) => Object.assign(table[1]!, { firstShard: 1, lastShard: 65 })), /chunk frame 1 declares the shards 1 to 65/);
      damaged(handMade((_, table) => Object.assign(table[0]!, { firstShard: 65, lastShard: 65 })), /chunk frame 0 declares the shards 65 to 65/);
      damaged(handMade((_, table) => Object.assign(table[0]!, { firstShard: -1 })), /chunk frame 0 is not a list of 5 non-negative integers/);
    });

    it('missing or ill-typed fields, and empty frames', () => {
      const c = t.chunkFrames;
      damaged(withTable({ stateFrame: undefined }), /field "stateFrame" is not a list of 2 non-negative integers/);
      damaged(withTable({ endFrame: undefined }), /field "endFrame" is not a list of 2 non-negative integers/);
      damaged(withTable({ chunkFrames: undefined }), /field "chunkFrames" is missing or not a list/);
      damaged(withTable({ chunkFrames: { 0: c[0] } }), /field "chunkFrames" is missing or not a list/);
      damaged(withTable({ chunkFrames: 'x' }), /field "chunkFrames" is missing or not a list/);
      damaged(withTable({ stateFrame: 'frame' }), /field "stateFrame" is not a list of 2/);
      damaged(withTable({ stateFrame: [t.stateFrame[0]] }), /field "stateFrame" is not a list of 2/);
      damaged(withTable({ stateFrame: [...t.stateFrame, 0] }), /field "stateFrame" is not a list of 2/);
      damaged(withTable({ endFrame: [t.endFrame[0]! + 0.5, t.endFrame[1]! - 0.5] }), /field "endFrame" is not a list of 2 non-negative integers/);
      damaged(withTable({ endFrame: [String(t.endFrame[0]), t.endFrame[1]] }), /field "endFrame" is not a list of 2/);
      damaged(withTable({ endFrame: [2 ** 53, t.endFrame[1]] }), /field "endFrame" is not a list of 2/);
      damaged(withTable({ chunkFrames: [c[0]!.slice(0, 4), c[1]] }), /chunk frame 0 is not a list of 5 non-negative integers/);
      damaged(withTable({ chunkFrames: [c[0], [...c[1]!, 0]] }), /chunk frame 1 is not a list of 5/);
      damaged(withTable({ chunkFrames: [c[0], null] }), /chunk frame 1 is not a list of 5/);
      damaged(withTable({ chunkFrames: [c[0], [c[1]![0], c[1]![1], '5', 1, 64]] }), /chunk frame 1 is not a list of 5/);
      // An empty frame (0 bytes, or nothing decompressed), even where the sums would still add up.
      damaged(withTable({ stateFrame: [0, t.stateFrame[1]], chunkFrames: [[c[0]![0]! + t.stateFrame[0]!, ...c[0]!.slice(1)], c[1]] }), /field "stateFrame" declares an empty frame/);
      damaged(withTable({ chunkFrames: [[c[0]![0], 0, ...c[0]!.slice(2)], [c[1]![0], c[1]![1]! + c[0]![1]!, ...c[1]!.slice(2)]] }), /chunk frame 0 declares an empty frame/);
    });

    it('the table is read in version 3 only: a version 2 file whose header has such fields reads as version 2', () => {
      const v2 = snapshotFromItems([['raftsnap-state', 2], ...groupItems(A), { keyCount: 3 }], { formatVersion: 2, keyCount: 3, extra: { stateFrame: 'x', chunkFrames: 5 } });
      const { header, content } = decodeSnapshot(v2);
      expect(header.frames).toBeNull();
      expect(content.kv).toEqual(A);
      expect(FramedSnapshot.fromBytes(v2)).toBeNull();
    });
  });

  describe('the frames (BAD_PAYLOAD: the checksums pass, the content breaks a rule)', () => {
    it('a chunk frame holding a key outside its declared shards: every reader, FramedSnapshot.chunk too', () => {
      // Chunk A's keys are in shard 0; declared 1..1.
      const bytes = handMade((_, table) => Object.assign(table[0]!, { firstShard: 1, lastShard: 1 }));
      refusedByAll(bytes, 'BAD_PAYLOAD', /has key 1 of shard 0 in a chunk frame of the shards 1 to 1/, 'chunk');
      // The other chunk still reads on its own.
      const f = FramedSnapshot.fromBytes(bytes)!;
      expect(f.chunk(1).keys.length).toBe(5);
      // The non-primitive keys of B are in shard 64: a range ending at 63 leaves them out.
      const b = handMade((_, table) => Object.assign(table[1]!, { lastShard: 63 }));
      refusedByAll(b, 'BAD_PAYLOAD', /has key (null|\[8\]) of shard 64 in a chunk frame of the shards 1 to 63/, 'chunk');
      // A string key whose shard is outside.
      const sh = shardOf('s');
      const c = handMade((frames, table) => {
        frames[2] = groupItems([['s', 1]]);
        frames[1] = groupItems([...A, ...B.filter(([k]) => k !== 's')]);
        table[0] = { pairs: 7, firstShard: 0, lastShard: 64 };
        table[1] = { pairs: 1, firstShard: sh === 0 ? 1 : 0, lastShard: sh === 0 ? 1 : sh - 1 };
      });
      refusedByAll(c, 'BAD_PAYLOAD', new RegExp(`has key "s" of shard ${sh} in a chunk frame`), 'chunk');
    });

    it('a chunk frame whose pairs differ from the table (the sum still right)', () => {
      const bytes = handMade((_, table) => {
        table[0]!.pairs = 4;
        table[1]!.pairs = 4;
      });
      refusedByAll(bytes, 'BAD_PAYLOAD', /has a chunk frame of [35] pairs where its header declares 4/, 'chunk');
      expectRefused(() => decodeSnapshot(bytes), 'BAD_PAYLOAD', /has a chunk frame of 3 pairs where its header declares 4/);
      const f = FramedSnapshot.fromBytes(bytes)!;
      expectRefused(() => f.chunk(0), 'BAD_PAYLOAD', /has a chunk frame of 3 pairs where its header declares 4/);
      expectRefused(() => f.chunk(1), 'BAD_PAYLOAD', /has a chunk frame of 5 pairs where its header declares 4/);
    });

    it('a state frame with more than the state item, or without it', () => {
      refusedByAll(handMade((frames) => void frames[0]!.push({ keyCount: 8 })), 'BAD_PAYLOAD', /has more than the state item in its first frame|does not start with the state item alone/);
      expectRefused(() => decodeSnapshot(handMade((frames) => void frames[0]!.push({ keyCount: 8 }))), 'BAD_PAYLOAD', /has more than the state item in its first frame/);
      expectRefused(() => FramedSnapshot.fromBytes(handMade((frames) => void frames[0]!.push({ keyCount: 8 }))), 'BAD_PAYLOAD', /does not start with the state item alone/);
      // The state item of another version.
      refusedByAll(handMade((frames) => void (frames[0] = [['raftsnap-state', 2]])), 'BAD_PAYLOAD', /does not start with the state item/);
      // The state item in the first chunk frame, the state frame holding a group: not the same file.
      refusedByAll(
        handMade((frames) => {
          frames[0] = [STATE3, ...(frames[1] as unknown[])];
          frames[1] = [[0, [], []]];
        }),
        'BAD_PAYLOAD',
        /has more than the state item in its first frame|does not start with the state item alone/,
      );
    });

    it('an end frame with two items, a group, or no end item', () => {
      expectRefused(() => decodeSnapshot(handMade((frames) => void frames[3]!.push({ keyCount: 8 }))), 'BAD_PAYLOAD', /has items after the end item/);
      refusedByAll(handMade((frames) => void frames[3]!.push({ keyCount: 8 })), 'BAD_PAYLOAD', /has items after the end item|has no end item alone in its last frame/);
      expectRefused(() => FramedSnapshot.fromBytes(handMade((frames) => void frames[3]!.push({ keyCount: 8 }))), 'BAD_PAYLOAD', /has no end item alone in its last frame/);
      refusedByAll(handMade((frames) => void frames[3]!.unshift(...groupItems([[7, 7]]))), 'BAD_PAYLOAD', /has a chunk in its end frame|has no end item alone in its last frame/);
      refusedByAll(handMade((frames) => void (frames[3] = [['not', 'an end item']])), 'BAD_PAYLOAD', /has a (malformed )?chunk|has no end item alone in its last frame/);
      // The end item in a chunk frame (and the end frame holding the chunk).
      refusedByAll(
        handMade((frames) => {
          frames[2] = [...(frames[2] as unknown[]), { keyCount: 8 }];
          frames[3] = [{ keyCount: 8 }];
        }),
        'BAD_PAYLOAD',
        /has an item that is not a group in a chunk frame/,
        'chunk',
      );
      // Its count differs from the header's.
      refusedByAll(handMade((frames) => void (frames[3] = [{ keyCount: 9 }])), 'BAD_PAYLOAD', /holds 8 keys but the header says 8|has an end item of 9 keys but the header says 8/);
    });

    it("the end item's count is named on one line whatever it holds", () => {
      const bytes = handMade((frames) => void (frames[3] = [{ keyCount: 'eight\nlines\u001b[31m' }]));
      expectRefused(() => decodeSnapshot(bytes, 'x.snap'), 'BAD_PAYLOAD', /holds 8 keys but the header says 8/);
      expectRefused(() => FramedSnapshot.fromBytes(bytes, 'x.snap'), 'BAD_PAYLOAD', /has an end item of .* keys but the header says 8/);
      const long = handMade((frames) => void (frames[3] = [{ keyCount: 'x'.repeat(100_000) }]));
      expect(refusal(() => FramedSnapshot.fromBytes(long, 'x.snap')).message.length).toBeLessThan(400);
    });

    it('a version 1 chunk item in a chunk frame', () => {
      refusedByAll(handMade((frames) => void (frames[1] = [[A.map((p) => p[0]), A.map((p) => p[1])]])), 'BAD_PAYLOAD', /has a malformed chunk/, 'chunk');
      refusedByAll(handMade((frames) => void (frames[1] = [[{ start: 1, count: 3 }, A.map((p) => p[1])]])), 'BAD_PAYLOAD', /has a malformed chunk/, 'chunk');
    });

    it('frame sizes that split a frame: one ends early, the next starts inside it (the sums still right)', () => {
      const base = handMade();
      const t = tableOf(base);
      const c = t.chunkFrames;
      for (const d of [1, 3, -1, -3]) {
        // d bytes of chunk frame 0 counted in the state frame (d < 0: the other way).
        const bytes = handMade(undefined, { extra: { stateFrame: [t.stateFrame[0]! + d, t.stateFrame[1]], chunkFrames: [[c[0]![0]! - d, ...c[0]!.slice(1)], c[1]] } });
        refusedByAll(bytes, 'BAD_PAYLOAD', /cannot be decompressed|truncated|after the end of the zstd frame|decompress/);
      }
      // The raw sizes shifted between two frames: one decompresses to less than it declares
      // (BAD_PAYLOAD), the other to more (LIMIT, as any frame holding more than its header says).
      const raw = handMade(undefined, { extra: { chunkFrames: [[c[0]![0], c[0]![1]! + 2, ...c[0]!.slice(2)], [c[1]![0], c[1]![1]! - 2, ...c[1]!.slice(2)]] } });
      refusedByAll(raw, 'BAD_PAYLOAD', /cannot be decompressed \(decompressed \d+ bytes, the header declares \d+\)/, 'none');
      expect(FramedSnapshot.fromBytes(raw)).not.toBeNull();
      const f = FramedSnapshot.fromBytes(raw)!;
      expectRefused(() => f.chunk(0), 'BAD_PAYLOAD', /cannot be decompressed \(decompressed \d+ bytes, the header declares \d+\)/);
      expectRefused(() => f.chunk(1), 'LIMIT', /decompresses to more than the \d+ bytes its header declares/);
    });

    it('two zstd frames declared as one frame: refused in memory as from a file (found writing these tests)', () => {
      const t = tableOf(handMade());
      const c = t.chunkFrames;
      // Chunks A and B declared as one chunk frame of 8 pairs (the bytes of two frames). The file
      // reader refused it; the readers of bytes in memory (decodeSnapshot, FramedSnapshot) read it.
      const merged = handMade(undefined, { extra: { chunkFrames: [[c[0]![0]! + c[1]![0]!, c[0]![1]! + c[1]![1]!, 8, 0, 64]] } });
      refusedByAll(merged, 'BAD_PAYLOAD', /cannot be decompressed \(.*(after the end of the zstd frame|declares)/, 'chunk');
      expectRefused(() => decodeSnapshot(merged), 'BAD_PAYLOAD', /cannot be decompressed \(\d+ bytes after the end of the zstd frame\)/);
      // The end frame followed by a skippable frame (12 bytes that zstd would pass over).
      const skip = Buffer.alloc(12);
      skip.writeUInt32LE(0x184d2a50, 0);
      skip.writeUInt32LE(4, 4);
      const base = handMade();
      const h = decodeSnapshot(base).header;
      const withSkip = snapshotFromPayload(Buffer.concat([base.subarray(h.payloadOffset), skip]), h.rawSize, {
        formatVersion: 3,
        keyCount: 8,
        extra: { ...t, endFrame: [t.endFrame[0]! + 12, t.endFrame[1]] },
      });
      refusedByAll(withSkip, 'BAD_PAYLOAD', /cannot be decompressed \(12 bytes after the end of the zstd frame\)/);
      // Versions 1 and 2 had the same gap: a payload of two frames, or a frame and a skippable frame, read from memory only.
      for (const v of [1, 2]) {
        const a = zstdFrame([cbor(['raftsnap-state', v])]);
        const b = zstdFrame([cbor([[1, 2], ['a', 'b']]), cbor({ keyCount: 2 })]);
        const two = snapshotFromPayload(Buffer.concat([a.payload, b.payload]), a.rawSize + b.rawSize, { keyCount: 2, formatVersion: v });
        refusedByAll(two, 'BAD_PAYLOAD', /cannot be decompressed \(.*(after the end of the zstd frame|declares)/, 'none');
        const one = zstdFrame([cbor(['raftsnap-state', v]), cbor([[1, 2], ['a', 'b']]), cbor({ keyCount: 2 })]);
        const skipped = snapshotFromPayload(Buffer.concat([one.payload, skip]), one.rawSize, { keyCount: 2, formatVersion: v });
        refusedByAll(skipped, 'BAD_PAYLOAD', /cannot be decompressed \(12 bytes after the end of the zstd frame\)/, 'none');
      }
    });

    it('a state frame holding a group or a long string is a damaged payload, not a limit to raise (found writing these tests; versions 1 and 2 too)', () => {
      refusedByAll(handMade((frames) => void (frames[0] = groupItems([[9, 9]]))), 'BAD_PAYLOAD', /does not start with the state item/);
      refusedByAll(handMade((frames) => void (frames[0] = [['raftsnap-state', 'x'.repeat(100)]])), 'BAD_PAYLOAD', /does not start with the state item/);
      refusedByAll(handMade((frames) => void frames[0]!.push(...groupItems([[9, 9]]))), 'BAD_PAYLOAD', /has more than the state item in its first frame|does not start with the state item alone/);
      for (const v of [1, 2]) {
        const first = v === 1 ? [[1], ['a']] : groupItems([[1, 'a']])[0];
        refusedByAll(snapshotFromItems([first, ['raftsnap-state', v], { keyCount: 1 }], { keyCount: 1, formatVersion: v }), 'BAD_PAYLOAD', /does not start with the state item/, 'none');
      }
    });
  });
});
