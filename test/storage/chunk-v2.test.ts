// Snapshot format version 2 (docs/FORMAT.md, "Payload"): group items [n, keys, values] with sorted,
// delta-coded integer keys and varint integer values. Round trips, exactly when each form is used,
// and the reader's checks of every field of the new forms.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Json } from '../../src/raft/types.js';
import { canonicalJson } from '../../src/kv/keys.js';
import { zstdDecodeCborSequence } from '../../src/storage/codec.js';
import { CHUNK_PAIRS, StorageError, decodeSnapshot, encodeSnapshot, SNAPSHOT_FORMAT_VERSION } from '../../src/storage/index.js';
import { snapshotFromItems } from '../../src/fuzz/seal.js';
import { jsonArb, keyArb } from './helpers.js';

const META = { index: 7, term: 2, config: ['n1', 'n2', 'n3'] };
const MAX = Number.MAX_SAFE_INTEGER;

/** JSON has no -0: the format writes it as 0. */
const noNegZero = (x: Json): Json => (Object.is(x, -0) ? 0 : x);

/**
 * The pairs as a state would see them: grouped by key (canonical JSON), the pairs of one key in
 * their order. Decoding must give exactly this, whatever the order of the keys.
 */
function byKey(kv: Array<[Json, Json]>): string[] {
  const m = new Map<string, string[]>();
  for (const [k, v] of kv) {
    const ck = canonicalJson(noNegZero(k));
    (m.get(ck) ?? m.set(ck, []).get(ck)!).push(canonicalJson(v));
  }
  return [...m.entries()].map(([k, vs]) => `${k}=${vs.join(',')}`).sort();
}

/** The group items of a snapshot's payload, as decoded CBOR. */
function groups(bytes: Buffer): unknown[][] {
  const h = decodeSnapshot(bytes).header;
  const items: unknown[][] = [];
  zstdDecodeCborSequence(bytes.subarray(h.payloadOffset), h.rawSize, (v) => {
    if (Array.isArray(v) && v.length === 3) items.push(v);
  });
  return items;
}

function roundTrip(kv: Array<[Json, Json]>): Array<[Json, Json]> {
  const bytes = encodeSnapshot(META, { kv }, { createdAt: 1 });
  const got = decodeSnapshot(bytes).content.kv;
  expect(got.length).toBe(kv.length);
  expect(byKey(got)).toEqual(byKey(kv));
  return got;
}

const intKey = fc.oneof(
  fc.integer({ min: -50, max: 50 }),
  fc.constantFrom(-0, 23, 24, 127, 128, 255, 16383, 16384, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, -(2 ** 32), MAX, -MAX, MAX - 1, 2 ** 52, -(2 ** 52)),
  fc.integer({ min: -MAX, max: MAX }),
);
const intValue = fc.oneof(
  fc.integer({ min: -5, max: 5 }),
  fc.constantFrom(-0, 63, 64, -64, -65, 2 ** 31, -(2 ** 31) - 1, 2 ** 52 - 1, -(2 ** 52) + 1, 2 ** 52, -(2 ** 52), MAX, -MAX),
  fc.integer({ min: -MAX, max: MAX }),
);

describe('snapshot format version 2', () => {
  it('writes version 2 on request (version 3, its chunks in frames of their own, by default)', () => {
    const bytes = encodeSnapshot(META, { kv: [[1, 2]] }, { createdAt: 1, formatVersion: 2 });
    expect(SNAPSHOT_FORMAT_VERSION).toBe(3);
    expect(bytes.readUInt16BE(8)).toBe(2);
    expect(decodeSnapshot(bytes).header.formatVersion).toBe(2);
    expect(decodeSnapshot(bytes).header.frames).toBeNull();
    expect(decodeSnapshot(encodeSnapshot(META, { kv: [[1, 2]] }, { createdAt: 1 })).header.formatVersion).toBe(3);
  });

  it('round-trips any pairs: the same pairs for every key, in their order (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.oneof(intKey, keyArb), fc.oneof(intValue, jsonArb)), { maxLength: 80 }), (kv) => {
        roundTrip(kv);
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips integer keys of wide ranges and repeated keys (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(intKey, intValue), { maxLength: 200 }), fc.array(fc.nat(199), { maxLength: 20 }), (kv, dups) => {
        // Repeated keys: the later pair must still win.
        const withDups = [...kv, ...dups.filter((d) => d < kv.length).map((d) => [kv[d]![0], `later-${d}`] as [Json, Json])];
        roundTrip(withDups);
      }),
      { numRuns: 300 },
    );
  });

  it('sorts integer keys and writes them as deltas, integer values as varints; other keys keep their order', () => {
    const kv: Array<[Json, Json]> = [
      [30, 1],
      ['b', 'x'],
      [10, -2],
      [null, [1]],
      [20, 3],
      ['a', { y: 1 }],
    ];
    const items = groups(encodeSnapshot(META, { kv }, { createdAt: 1 }));
    expect(items.length).toBe(3);
    const [n, keys, values] = items[0]!;
    expect(n).toBe(3);
    expect(keys).toBeInstanceOf(Map);
    const km = keys as Map<string, unknown>;
    expect([...km.keys()]).toEqual(['base', 'deltas']);
    expect(km.get('base')).toBe(10);
    expect([...(km.get('deltas') as Uint8Array)]).toEqual([0, 10, 10]);
    const vm = values as Map<string, unknown>;
    expect([...vm.keys()]).toEqual(['ints']);
    expect([...(vm.get('ints') as Uint8Array)]).toEqual([3, 6, 2]); // -2, 3, 1 zigzag
    // Strings without digits are templates of their own; null goes into the plain group.
    const tm = items[1]![1] as Map<string, unknown>;
    expect(tm.get('templates')).toEqual(['b', 'a']);
    expect(items[1]![2]).toEqual(['x', new Map([['y', 1]])]);
    expect(items[2]).toEqual([1, [null], [[1]]]);
  });

  it('writes string keys as templates and numbers, hex keys as bytes, and others plainly', () => {
    const kv: Array<[Json, Json]> = [
      ['user:42', 1],
      ['user:7', 2],
      ['/org/3/repo/12/x-99.json', 3],
      ['3fa9b2c4d5e6f708', 4],
      ['user:007', 5], // a leading zero: plain
      ['n1234567890123456', 6], // 16 digits: plain
      ['DEADBEEF', 7], // upper case: a template of no numbers
      ['0', 8],
    ];
    const items = groups(encodeSnapshot(META, { kv }, { createdAt: 1 }));
    expect(items.length).toBe(3);
    const t = items[0]![1] as Map<string, unknown>;
    expect(t.get('templates')).toEqual(['user:0', '/org/0/repo/0/x-0.json', 'DEADBEEF', '0']);
    // Ordered by template, then last number: user:7, user:42, the path, DEADBEEF, "0".
    expect([...(t.get('ids') as Uint8Array)]).toEqual([0, 0, 1, 2, 3]);
    // user:7 (7 - 0 zigzag 14), user:42 (35 -> 70), 3, 12, 99 (zigzag 198 = 0xc6 0x01), "0" (0).
    expect([...(t.get('nums') as Uint8Array)]).toEqual([14, 70, 3, 12, 0xc6, 0x01, 0]);
    expect([...((items[0]![2] as Map<string, Uint8Array>).get('ints') as Uint8Array)]).toEqual([4, 2, 6, 14, 16]);
    const h = items[1]![1] as Map<string, unknown>;
    // 8 bytes; the varint of 0x3fa9b2c4 (the first key: its difference to 0); the other 4 bytes.
    expect([...(h.get('hex') as Uint8Array)]).toEqual([8, 0xc4, 0xe5, 0xa6, 0xfd, 0x03, 0xd5, 0xe6, 0xf7, 0x08]);
    expect(items[2]!.slice(0, 2)).toEqual([2, ['user:007', 'n1234567890123456']]);
    roundTrip(kv);
  });

  it('round-trips string keys at every edge of the template and hex forms', () => {
    const edge = [
      '', '0', '00', '01', '10', 'a0', '0a', '999999999999999', '1000000000000000', 'x999999999999999y', '-5', '5-', '1.5', '1e5',
      'deadbeef', 'deadbee', 'deadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef', 'deadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef00',
      '12345678', 'ffffffff', '00000000a', '00000000aa', 'é9', '\u{1F600}7', 'a\u00000b', 'user:0', 'user:00',
    ];
    const kv: Array<[Json, Json]> = edge.map((k, i) => [k, i]);
    roundTrip(kv);
    roundTrip([...kv, ...kv.map(([k]) => [k, 'again'] as [Json, Json])]);
  });

  it('round-trips many keys of one template in any order, with numbers up to 15 digits (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('user:', 'a/', '', 'x-'), fc.oneof(fc.nat(), fc.integer({ min: 0, max: 999_999_999_999_999 })), fc.constantFrom('', '.json', '/b7')), { maxLength: 100 }), (parts) => {
        roundTrip(parts.map(([a, n, b], i) => [`${a}${n}${b}`, i]));
      }),
      { numRuns: 200 },
    );
  });

  it('puts integer keys spanning more than 2^53 - 1 in the plain group, in input order', () => {
    const kv: Array<[Json, Json]> = [
      [MAX, 1],
      [-MAX, 2],
      ['s', 3],
      [0, 4],
    ];
    const items = groups(encodeSnapshot(META, { kv }, { createdAt: 1 }));
    expect(items.length).toBe(2);
    expect(items[1]!.slice(0, 2)).toEqual([3, [MAX, -MAX, 0]]);
    expect([...((items[1]![2] as Map<string, Uint8Array>).get('ints') as Uint8Array)]).toEqual([2, 4, 8]);
    roundTrip(kv);
  });

  it('writes values of magnitude 2^52 or more, and non-integers, as plain CBOR', () => {
    for (const v of [2 ** 52, -(2 ** 52), 0.5, MAX]) {
      const items = groups(encodeSnapshot(META, { kv: [[1, 0], [2, v]] }, { createdAt: 1 }));
      expect(items[0]![2]).toEqual([0, v]);
    }
  });

  it('sorts a shuffled chunk of consecutive keys into deltas of 1 and gives the state back', () => {
    const n = CHUNK_PAIRS * 2 + 5;
    const kv: Array<[Json, Json]> = [];
    for (let i = 0; i < n; i++) kv.push([(i * 7919) % n, i % 5]);
    const bytes = encodeSnapshot(META, { kv }, { createdAt: 1, formatVersion: 2 });
    const items = groups(bytes);
    expect(items.map((g) => g[0])).toEqual([CHUNK_PAIRS, CHUNK_PAIRS, 5]);
    roundTrip(kv);
    // The same pairs in order compress to far less than shuffled ones, but both decode.
    const sorted = [...kv].sort((a, b) => (a[0] as number) - (b[0] as number));
    roundTrip(sorted);
  });

  it('writes the same bytes however the pairs were fed (add, addColumns, chunk sizes)', async () => {
    const { SnapshotEncoder } = await import('../../src/storage/snapshot.js');
    const kv: Array<[Json, Json]> = [];
    for (let i = 0; i < CHUNK_PAIRS + 300; i++) kv.push([i % 3 === 0 ? `k${i}` : (i * 31) % 100003, i % 7 === 0 ? { i } : i]);
    const whole = encodeSnapshot(META, { kv }, { createdAt: 1 });
    const enc = new SnapshotEncoder(META, { createdAt: 1 });
    for (let i = 0; i < kv.length; i += 1000) {
      const part = kv.slice(i, i + 1000);
      enc.addColumns(
        part.map((p) => p[0]),
        part.map((p) => p[1]),
      );
    }
    expect(enc.finish().equals(whole)).toBe(true);
  });

  it('still writes and reads version 1 on request', () => {
    const kv: Array<[Json, Json]> = [
      [3, 1],
      [1, 'x'],
    ];
    const bytes = encodeSnapshot(META, { kv }, { createdAt: 1, formatVersion: 1 });
    expect(bytes.readUInt16BE(8)).toBe(1);
    expect(decodeSnapshot(bytes).content.kv).toEqual(kv);
  });
});

describe('reading version 2 groups: every rule checked', () => {
  const state = ['raftsnap-state', 2];
  const snap = (groupItems: unknown[], keyCount: number): Buffer => snapshotFromItems([state, ...groupItems, { keyCount }], { keyCount, formatVersion: 2 });
  const refused = (bytes: Buffer, code: string, re: RegExp): void => {
    let err: unknown;
    try {
      decodeSnapshot(bytes, 'x.snap');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe(code);
    expect((err as StorageError).message).toMatch(re);
  };
  // Objects: the hand-made items are written as plain CBOR maps (a JS Map would get cbor-x's tag).
  const cols = (base: number, deltas: number[]) => ({ base, deltas: Buffer.from(deltas) });

  it('reads a hand-made group, in any key order', () => {
    const kv = decodeSnapshot(snap([[3, cols(5, [0, 2, 1]), ['a', 'b', 'c']], [2, [9, 'z'], [1, 2]]], 5)).content.kv;
    expect(kv).toEqual([
      [5, 'a'],
      [7, 'b'],
      [8, 'c'],
      [9, 1],
      ['z', 2],
    ]);
  });

  it('refuses varints that are too long, too many, too few, or past the safe integers', () => {
    refused(snap([[2, cols(0, [0])]], 2), 'BAD_PAYLOAD', /malformed|expected an array/);
    refused(snap([[2, cols(0, [0]), [1, 2]]], 2), 'BAD_PAYLOAD', /holds 1 varints where 2/);
    refused(snap([[1, cols(0, [0, 1]), [1]]], 1), 'BAD_PAYLOAD', /1 bytes after its 1 varints/);
    refused(snap([[1, cols(0, [0x80]), [1]]], 1), 'BAD_PAYLOAD', /ends inside a varint/);
    refused(snap([[2, cols(0, [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0]), [1, 2]]], 2), 'BAD_PAYLOAD', /longer than 8 bytes/);
    refused(snap([[1, cols(0, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f]), [1]]], 1), 'BAD_PAYLOAD', /beyond the safe integers/);
    refused(snap([[2, cols(MAX - 1, [0, 2]), [1, 2]]], 2), 'BAD_PAYLOAD', /leave the safe integers/);
    refused(snap([[1, cols(0.5, [0]), [1]]], 1), 'BAD_PAYLOAD', /base is not a safe integer/);
  });

  it('refuses malformed columns and counts', () => {
    refused(snap([[2, [1, 2], [1]]], 2), 'BAD_PAYLOAD', /column of 1 elements in a group of 2/);
    refused(snap([[1, { base: 0 }, [1]]], 1), 'BAD_PAYLOAD', /malformed integer key column/);
    refused(snap([[1, { start: 0, count: 1 }, [1]]], 1), 'BAD_PAYLOAD', /unknown field/);
    refused(snap([[1, [1], { ints: Buffer.from([1]), base: 0 }]], 1), 'BAD_PAYLOAD', /malformed integer value column/);
    refused(snap([[1, [1], { ints: [1] }]], 1), 'BAD_PAYLOAD', /not a scalar/);
    refused(snap([[1, [1], { ints: Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9]) }]], 1), 'BAD_PAYLOAD', /more than the varints of 1 pairs/);
    refused(snap([['1', [1], [1]]], 1), 'BAD_PAYLOAD', /pair count is not an unsigned integer/);
    refused(snap([[3, [1, 2, 3], [1, 2, 3]]], 2), 'BAD_PAYLOAD', /more keys than the header's 2/);
    refused(snap([[CHUNK_PAIRS + 1, [], []]], 0), 'LIMIT', /chunk of 8193 pairs/);
  });

  it('refuses malformed template and hex columns', () => {
    const tk = (templates: unknown, ids: number[], nums: number[]) => ({ templates, ids: Buffer.from(ids), nums: Buffer.from(nums) });
    // A good one first: "user:5" and "user:7" (5 zigzag 10, then +2 zigzag 4).
    expect(decodeSnapshot(snap([[2, tk(['user:0'], [0, 0], [10, 4]), [1, 2]]], 2)).content.kv).toEqual([
      ['user:5', 1],
      ['user:7', 2],
    ]);
    refused(snap([[1, tk(['a'], [1], []), [1]]], 1), 'BAD_PAYLOAD', /refers to template 1 of 1/);
    refused(snap([[1, tk(['a0'], [0], []), [1]]], 1), 'BAD_PAYLOAD', /ends before its last varint/);
    refused(snap([[1, tk(['a'], [0], [1]), [1]]], 1), 'BAD_PAYLOAD', /numbers after its last key/);
    refused(snap([[1, tk(['a'], [0, 0], []), [1]]], 1), 'BAD_PAYLOAD', /template ids after its last key/);
    refused(snap([[1, tk(['a0'], [0], [1]), [1]]], 1), 'BAD_PAYLOAD', /not a non-negative safe integer/);
    refused(snap([[1, tk([7], [0], []), [1]]], 1), 'BAD_PAYLOAD', /template that is not text/);
    refused(snap([[1, tk(['a', 'b'], [0], []), [1]]], 1), 'BAD_PAYLOAD', /2 templates for 1 keys/);
    refused(snap([[1, { templates: ['a'], ids: Buffer.from([0]) }, [1]]], 1), 'BAD_PAYLOAD', /malformed template key column/);
    refused(snap([[1, { templates: 'a', ids: Buffer.from([0]), nums: Buffer.from([]) }, [1]]], 1), 'BAD_PAYLOAD', /templates field that is not an array/);
    refused(snap([[1, { templates: ['x'.repeat(70000)], ids: Buffer.from([0]), nums: Buffer.from([]) }, [1]]], 1), 'LIMIT', /take 70003 bytes as JSON/);
    const hex = (b: number[]) => ({ hex: Buffer.from(b) });
    expect(decodeSnapshot(snap([[1, hex([4, 0xff, 0xff, 0xff, 0xff, 0x0f]), [1]]], 1)).content.kv).toEqual([['ffffffff', 1]]);
    refused(snap([[1, hex([3, 0, 1, 2]), [1]]], 1), 'BAD_PAYLOAD', /hex key of 3 bytes/);
    refused(snap([[2, hex([4, 0xff, 0xff, 0xff, 0xff, 0x0f, 4, 1]), [1, 2]]], 2), 'BAD_PAYLOAD', /first four bytes overflow/);
    refused(snap([[1, hex([4, 0, 9]), [1]]], 1), 'BAD_PAYLOAD', /bytes after its last key/);
    refused(snap([[1, hex([5, 0]), [1]]], 1), 'BAD_PAYLOAD', /ends inside a key/);
    refused(snap([[1, { hex: Buffer.from([4, 0]), base: 0 }, [1]]], 1), 'BAD_PAYLOAD', /malformed hex key column/);
  });

  it('checks each key and value of a group against the limits', () => {
    const deep: Json = JSON.parse('['.repeat(70) + ']'.repeat(70)) as Json;
    refused(snap([[1, [1], [deep]]], 1), 'LIMIT', /nested more than 64 levels/);
    refused(snap([[1, ['k'], ['x'.repeat(70000)]]], 1), 'LIMIT', /take \d+ bytes as JSON|string of/);
    refused(snap([[1, cols(0, [0]), [Infinity]]], 1), 'LIMIT', /not finite/);
  });

  it('does not take groups in a version 1 file', () => {
    const b = snapshotFromItems([['raftsnap-state', 1], [1, [1], [1]], { keyCount: 1 }], { keyCount: 1 });
    refused(b, 'BAD_PAYLOAD', /malformed chunk/);
  });
});
