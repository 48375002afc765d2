/**
 * A received snapshot is verified as its chunks arrive (ArrivingSnapshot): the same verdicts as
 * verifying the whole file at the end, whatever the chunk sizes; the node storage discards a
 * transfer whose bytes are bad and keeps one that is sound.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Json, SnapshotMeta } from '../../src/raft/types.js';
import { StorageError } from '../../src/storage/errors.js';
import { DiskStorage } from '../../src/storage/node-storage.js';
import { ArrivingSnapshot, verifySnapshotBytes } from '../../src/storage/snapshot-read.js';
import { encodeSnapshot } from '../../src/storage/snapshot.js';

const META: SnapshotMeta = { index: 9, term: 2, config: ['n1', 'n2'] };
const PAIRS: Array<[Json, Json]> = Array.from({ length: 2000 }, (_, i) => [`key-${i}`, { v: i, s: `value-${(i * 7919) % 1000}` }]);
const BYTES = encodeSnapshot(META, { kv: PAIRS }, { createdAt: 0 });

function arrive(bytes: Uint8Array, piece: number): SnapshotErrorOr {
  const a = new ArrivingSnapshot(bytes.length, 'x.recv');
  for (let off = 0; off < bytes.length; off += piece) a.add(bytes.subarray(off, off + piece));
  try {
    return { header: a.finish() };
  } catch (e) {
    return { error: e as StorageError };
  }
}
type SnapshotErrorOr = { header: ReturnType<ArrivingSnapshot['finish']> } | { error: StorageError };

function whole(bytes: Uint8Array): SnapshotErrorOr {
  try {
    return { header: verifySnapshotBytes(bytes, 'x.recv') };
  } catch (e) {
    return { error: e as StorageError };
  }
}

describe('ArrivingSnapshot', () => {
  it('accepts a sound file in pieces of any size, with the header it would have at the end', () => {
    for (const piece of [1, 7, 16, 100, 4096, BYTES.length]) {
      const r = arrive(BYTES, piece);
      expect('header' in r ? r.header : r.error).toEqual(verifySnapshotBytes(BYTES));
    }
  });

  it('gives the verdict of a whole-file check for damaged files, in pieces of any size', () => {
    const cases: Array<[string, Buffer]> = [];
    const flipPayload = Buffer.from(BYTES);
    flipPayload[flipPayload.length - 10]! ^= 0x40;
    cases.push(['payload byte', flipPayload]);
    const flipHeader = Buffer.from(BYTES);
    flipHeader[20]! ^= 0x01;
    cases.push(['header byte', flipHeader]);
    const magic = Buffer.from(BYTES);
    magic[0] = 0x41;
    cases.push(['magic', magic]);
    for (const [what, bytes] of cases) {
      const expected = whole(bytes);
      expect('error' in expected, what).toBe(true);
      for (const piece of [3, 64, 5000]) {
        const r = arrive(bytes, piece);
        expect('error' in r, `${what}, pieces of ${piece}`).toBe(true);
        if ('error' in r && 'error' in expected) expect(r.error.code).toBe(expected.error.code);
      }
    }
  });

  it('refuses a transfer that ends early', () => {
    const a = new ArrivingSnapshot(BYTES.length, 'x.recv');
    a.add(BYTES.subarray(0, BYTES.length - 1));
    expect(() => a.finish()).toThrow(/truncated/);
  });
});

describe('DiskStorage: a received snapshot', () => {
  function receiveAll(bytes: Buffer, chunk: number): { ok: boolean; failure: Error | null; dir: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftsnap-arriving-'));
    const ds = DiskStorage.open(dir, { fsync: true, nodeId: 'n2' });
    ds.recover();
    const st = ds.snapshotStore();
    for (let off = 0; off < bytes.length; off += chunk) st.receive(META, bytes.length, off, bytes.subarray(off, off + chunk));
    const ok = st.finish(META);
    const failure = ds.failure;
    ds.close();
    return { ok, failure, dir };
  }

  it('is kept when sound (verified as it arrived, 1 MiB fsyncs along the way) and loads', () => {
    const { ok, failure, dir } = receiveAll(BYTES, 1000);
    expect(ok).toBe(true);
    expect(failure).toBeNull();
    const again = DiskStorage.open(dir, { fsync: true, nodeId: 'n2' });
    expect(again.recover().snapshot?.content.kv.length).toBe(PAIRS.length);
    again.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is discarded when a byte was damaged on the way; the storage goes on', () => {
    const bad = Buffer.from(BYTES);
    bad[bad.length - 100]! ^= 0xff;
    const { ok, failure, dir } = receiveAll(bad, 1000);
    expect(ok).toBe(false);
    expect(failure).toBeNull();
    expect(fs.readdirSync(path.join(dir, 'snap')).filter((f) => f.endsWith('.snap'))).toEqual([]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
