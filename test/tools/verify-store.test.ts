// The read-back check of snapshot and compact (src/tools/snapshot.ts): a file encoded from a store
// reads back as that store; a file that differs by one value, one key or the session table, or a
// file of the same pairs in another order still reads back (a format may group a chunk's keys).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KvStore } from '../../src/kv/store.js';
import type { Json } from '../../src/raft/types.js';
import { CHUNK_PAIRS, encodeSnapshot } from '../../src/storage/index.js';
import { encodeStore, verifyAgainstStore } from '../../src/tools/snapshot.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rs-verify-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const N = 2 * CHUNK_PAIRS + 123;
function pairs(): Array<[Json, Json]> {
  const out: Array<[Json, Json]> = [];
  for (let i = 0; i < N; i++) {
    const k: Json = i % 3 === 0 ? i : i % 3 === 1 ? `user:${i}` : [i, 'x'];
    out.push([k, i % 2 === 0 ? { b: i, a: [1, 'two', null] } : `v${i}`]);
  }
  return out;
}
function storeOf(ps: Array<[Json, Json]>): KvStore {
  return KvStore.fromEntries(ps);
}
const meta = { index: 7, term: 2, config: ['n1'] };
function write(name: string, bytes: Buffer): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, bytes);
  return f;
}

describe('verifyAgainstStore', () => {
  it('a file encoded from the store reads back as it', () => {
    const s = storeOf(pairs());
    const f = write('ok.snap', encodeStore(s, meta, null, { createdAt: 0, nodeId: 'n1' }));
    expect(verifyAgainstStore(f, f, s, 7, null).keyCount).toBe(N);
  });

  it('one value, one key or the session table different: CORRUPT', () => {
    const s = storeOf(pairs());
    const f = write('base.snap', encodeStore(s, meta, null, { createdAt: 0, nodeId: 'n1' }));
    const changed = storeOf(pairs());
    changed.set('user:4', 'other');
    expect(() => verifyAgainstStore(f, f, changed, 7, null)).toThrow(/does not read back as the state.*user:4/);
    const moreKeys = storeOf(pairs());
    moreKeys.set('extra', 1);
    expect(() => verifyAgainstStore(f, f, moreKeys, 7, null)).toThrow(/does not read back/);
    expect(() => verifyAgainstStore(f, f, storeOf(pairs()), 7, { forwards: [{ origin: 'c1', last: 3, low: 0, ids: [1] }] })).toThrow(/client session table/);
    expect(() => verifyAgainstStore(f, f, storeOf(pairs()), 8, null)).toThrow(/index 7/);
  });

  it('the same pairs in another order (a format may group a chunk): accepted; a changed value still caught', () => {
    const ps = pairs().reverse();
    const f = write('rev.snap', encodeSnapshot(meta, { kv: ps }, { createdAt: 0 }));
    expect(verifyAgainstStore(f, f, storeOf(pairs()), 7, null).keyCount).toBe(N);
    const changed = storeOf(pairs());
    changed.set([5, 'x'], 0);
    expect(() => verifyAgainstStore(f, f, changed, 7, null)).toThrow(/\[5,"x"\]/);
  });
});
