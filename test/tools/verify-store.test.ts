// The verification of snapshot and compact (src/tools/snapshot.ts): a store's snapshot is read back
// through the node's reader and checked pair by pair against the store, at the place the encoder
// says it put each pair; bytes of another state (one value, one key, the session table, the index),
// or an order that is not a one-to-one placing, are refused. The file written is then compared
// byte for byte.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KvStore } from '../../src/kv/store.js';
import type { Json } from '../../src/raft/types.js';
import { CHUNK_PAIRS, SnapshotEncoder, SnapshotReader, encodeSnapshot } from '../../src/storage/index.js';
import { HeldState } from '../../src/tools/held-state.js';
import { checkWrittenFile, encodeState, verifyEncoded } from '../../src/tools/snapshot.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rs-verify-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const N = 2 * CHUNK_PAIRS + 123;
/** Every kind of key the v2 writer groups (integers out of order, templates, hex ids, others). */
function pairs(): Array<[Json, Json]> {
  const out: Array<[Json, Json]> = [];
  for (let i = 0; i < N; i++) {
    const kind = i % 5;
    const k: Json = kind === 0 ? (i * 7919) % 100_003 : kind === 1 ? `user:${i}` : kind === 2 ? (0x1000_0000 + i * 104_729).toString(16) : kind === 3 ? [i, 'x'] : `/a/b${i % 17}/c`.repeat(1 + (i % 3)) + i;
    out.push([k, i % 2 === 0 ? { b: i, a: [1, 'two', null] } : i % 3 === 0 ? i - 50 : `v${i}`]);
  }
  return out;
}
function storeOf(ps: Array<[Json, Json]>): KvStore {
  return KvStore.fromEntries(ps);
}
const meta = { index: 7, term: 2, config: ['n1'] };
const want = (over: Partial<Parameters<typeof verifyEncoded>[3]> = {}) => ({ size: N, index: 7, sessions: null, shown: 'x.snap', ...over });

/** Bytes and order of the store's pairs, and a fresh walk of its input chunks. */
function encoded(s: KvStore, formatVersion: 1 | 2 = 2): { bytes: Buffer; order: Int32Array } {
  const view = s.freeze();
  const enc = new SnapshotEncoder(meta, { createdAt: 0, recordOrder: true, formatVersion });
  for (const c of view.columns(CHUNK_PAIRS)) enc.addColumns(c.keys, c.values);
  const bytes = enc.finish();
  view.release();
  return { bytes, order: enc.fileOrder() };
}
const input = (s: KvStore) => s.freeze().columns(CHUNK_PAIRS);

describe('SnapshotEncoder.fileOrder', () => {
  it('names, for each pair of the file, the place of the pair in the input (the v2 writer regroups every chunk)', () => {
    const ps = pairs();
    const s = storeOf(ps);
    const inputPairs = s.freeze().entries();
    const { bytes, order } = encoded(s);
    const back: Array<[Json, Json]> = [];
    for (const c of SnapshotReader.fromBytes(bytes).chunks()) for (let i = 0; i < c.keys.length; i++) back.push([c.keys[i]!, c.values[i]!]);
    expect(back).toHaveLength(N);
    expect(back.map((_, p) => inputPairs[order[p]!])).toEqual(back);
    expect(order.some((g, p) => g !== p)).toBe(true); // really regrouped
    expect(new Set(order).size).toBe(N);
    // Version 1 keeps the input order.
    expect([...encoded(s, 1).order]).toEqual(Array.from({ length: N }, (_, i) => i));
  });
});

describe('encodeState: verified before it is returned', () => {
  it('a held state encodes and verifies, and reads back as its pairs; the state is not changed', () => {
    const held = new HeldState();
    const ps = pairs();
    for (let i = 0; i < ps.length; i += 1000) {
      const part = ps.slice(i, i + 1000);
      held.push(part.map((p) => p[0]), part.map((p) => p[1]));
    }
    expect([...held.columns()].map((c) => c.keys.length)).toEqual([CHUNK_PAIRS, CHUNK_PAIRS, 123]);
    const r = encodeState(held, meta, { forwards: [] }, { createdAt: 0, nodeId: 'n1', shown: 'ok.snap' });
    expect(r.header.keyCount).toBe(N);
    const back: Array<[Json, Json]> = [];
    for (const c of SnapshotReader.fromBytes(r.bytes).chunks()) for (let i = 0; i < c.keys.length; i++) back.push([c.keys[i]!, c.values[i]!]);
    const sorted = (xs: Array<[Json, Json]>) => xs.map((x) => JSON.stringify(x)).sort();
    expect(sorted(back)).toEqual(sorted(pairs()));
    expect([...held.columns()].flatMap((c) => c.keys)).toEqual(ps.map((p) => p[0]));
  });

  it('the bytes of another state are refused: one value, one key more, the session table, the index', () => {
    const base = encoded(storeOf(pairs()));
    const changed = storeOf(pairs());
    changed.set('user:6', 'other');
    expect(() => verifyEncoded(base.bytes, base.order, input(changed), want())).toThrow(/does not read back as the state.*user:6/);
    const moreKeys = storeOf(pairs());
    moreKeys.set('extra', 1);
    expect(() => verifyEncoded(base.bytes, base.order, input(moreKeys), want({ size: N + 1 }))).toThrow(/does not read back/);
    expect(() => verifyEncoded(base.bytes, base.order, input(storeOf(pairs())), want({ sessions: { forwards: [{ origin: 'c1', last: 3, low: 0, ids: [1] }] } }))).toThrow(/client session table/);
    expect(() => verifyEncoded(base.bytes, base.order, input(storeOf(pairs())), want({ index: 8 }))).toThrow(/index 7/);
    expect(verifyEncoded(base.bytes, base.order, input(storeOf(pairs())), want()).keyCount).toBe(N);
  });

  it('an order that places two pairs at one input place, or outside their chunk, is refused', () => {
    const base = encoded(storeOf(pairs()));
    const twice = base.order.slice();
    twice[5] = twice[6]!;
    expect(() => verifyEncoded(base.bytes, twice, input(storeOf(pairs())), want())).toThrow(/pair 5 is placed|reads back as/);
    const outside = base.order.slice();
    outside[3] = CHUNK_PAIRS + 1;
    expect(() => verifyEncoded(base.bytes, outside, input(storeOf(pairs())), want())).toThrow(/pair 3 is placed at 8193/);
  });

  it('a file of the same pairs in another order is refused when the order does not say so', () => {
    const rev = encodeSnapshot(meta, { kv: storeOf(pairs()).freeze().entries().reverse() }, { createdAt: 0, formatVersion: 1 });
    const identity = Int32Array.from({ length: N }, (_, i) => i);
    expect(() => verifyEncoded(rev, identity, input(storeOf(pairs())), want())).toThrow(/does not read back/);
  });
});

describe('checkWrittenFile', () => {
  it('the same bytes pass; one byte changed, or a shorter file, is CORRUPT', () => {
    const { bytes } = encoded(storeOf(pairs()));
    const f = path.join(dir, 'w.snap');
    fs.writeFileSync(f, bytes);
    expect(() => checkWrittenFile(f, 'w.snap', bytes)).not.toThrow();
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 10]! ^= 0x40;
    fs.writeFileSync(f, flipped);
    expect(() => checkWrittenFile(f, 'w.snap', bytes)).toThrow(/w\.snap.*does not read back as the bytes written \(they differ/);
    fs.writeFileSync(f, bytes.subarray(0, bytes.length - 1));
    expect(() => checkWrittenFile(f, 'w.snap', bytes)).toThrow(/bytes, \d+ written/);
  });
});
