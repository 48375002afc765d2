// Key runs (format version 1, still written on request): a chunk whose keys are consecutive integers is written as {"start": s, "count": n}
// (docs/FORMAT.md). These tests check the round trip and exactly when the run form is used.
import { encode as cborEncode } from 'cbor-x';
import fc from 'fast-check';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { Json } from '../../src/raft/types.js';
import { ZstdFrameWriter, encodeCbor, encodeColumnsTransient, keyRunStart, zstdDecodeCborSequence } from '../../src/storage/codec.js';
import { CHUNK_PAIRS, KEY_RUN_MIN, StorageError, assembleSnapshot, decodeSnapshot, encodeSnapshot } from '../../src/storage/index.js';
import { jsonArb, keyArb } from './helpers.js';

const META = { index: 7, term: 2, config: ['n1', 'n2', 'n3'] };
const MAX = Number.MAX_SAFE_INTEGER;

/** Reference rule, written independently of the encoder: is this chunk's key column a run? */
function isRun(keys: readonly Json[]): boolean {
  if (keys.length < KEY_RUN_MIN) return false;
  const k0 = keys[0];
  if (typeof k0 !== 'number' || !Number.isSafeInteger(k0) || !Number.isSafeInteger(k0 + keys.length - 1)) return false;
  return keys.every((k, i) => k === k0 + i);
}

/** The chunk items of a snapshot's payload, as decoded CBOR (key runs come back as Map). */
function chunkItems(bytes: Buffer): unknown[][] {
  const h = decodeSnapshot(bytes).header;
  const items: unknown[][] = [];
  zstdDecodeCborSequence(bytes.subarray(h.payloadOffset), h.rawSize, (v) => {
    if (Array.isArray(v) && v.length === 2 && Array.isArray(v[1])) items.push(v);
  });
  return items;
}

/** JSON has no -0, and the format writes it as 0 in either form. */
const noNegZero = (kv: Array<[Json, Json]>): Array<[Json, Json]> => kv.map(([k, v]) => [Object.is(k, -0) ? 0 : k, v]);

/** Checks the round trip and that every chunk uses the run form exactly when the rule says so. */
function checkState(kv: Array<[Json, Json]>): void {
  const bytes = encodeSnapshot(META, { kv }, { createdAt: 1, formatVersion: 1 });
  expect(decodeSnapshot(bytes).content.kv).toEqual(noNegZero(kv));
  const items = chunkItems(bytes);
  expect(items.length).toBe(Math.ceil(kv.length / CHUNK_PAIRS));
  items.forEach((item, c) => {
    const keys = kv.slice(c * CHUNK_PAIRS, (c + 1) * CHUNK_PAIRS).map((p) => p[0]);
    if (isRun(keys)) {
      expect(item[0]).toBeInstanceOf(Map);
      const m = item[0] as Map<string, number>;
      expect([...m.keys()]).toEqual(['start', 'count']);
      expect(m.get('start')).toBe(Object.is(keys[0], -0) ? 0 : keys[0]);
      expect(m.get('count')).toBe(keys.length);
    } else {
      expect(Array.isArray(item[0])).toBe(true);
    }
  });
}

// Starts at the edges: zero, negatives, the 32-bit boundaries of CBOR integer heads, near +-2^53.
const startArb = fc.oneof(
  fc.integer({ min: -50, max: 50 }),
  fc.constantFrom(-0, 23, 255, 65535, 2 ** 32 - 8, 2 ** 32, -(2 ** 32) - 4, -(2 ** 31) - 3, MAX - 40, -MAX),
  fc.integer({ min: -MAX, max: MAX - 100 }),
);

/** A piece of a key column: a run, random keys, or a run broken by a string key. */
const segmentArb: fc.Arbitrary<Json[]> = fc.oneof(
  fc.tuple(startArb, fc.integer({ min: 1, max: 60 })).map(([s, n]) => Array.from({ length: n }, (_, i) => s + i)),
  fc.array(keyArb, { maxLength: 30 }),
  fc.tuple(startArb, fc.integer({ min: 2, max: 60 }), fc.nat()).map(([s, n, at]) => {
    const ks: Json[] = Array.from({ length: n }, (_, i) => s + i);
    ks[at % n] = String(ks[at % n]);
    return ks;
  }),
);

describe('key runs', () => {
  it('round-trip runs, non-runs, mixed key types and broken runs, using the run form exactly for runs (property)', () => {
    fc.assert(
      fc.property(fc.array(segmentArb, { maxLength: 8 }), fc.array(jsonArb, { minLength: 1, maxLength: 5 }), (segments, vals) => {
        const keys = segments.flat();
        const kv = keys.map((k, i): [Json, Json] => [k, vals[i % vals.length]!]);
        checkState(kv);
      }),
      { numRuns: 300 },
    );
  });

  it('uses the run form per chunk: runs across chunk boundaries, a run broken in one chunk only, runs past 2^32 and near 2^53 (property)', () => {
    fc.assert(
      fc.property(
        startArb,
        fc.integer({ min: 1, max: 3 * CHUNK_PAIRS + 50 }),
        fc.option(fc.nat(), { nil: undefined }),
        fc.constantFrom<'string' | 'gap' | 'float' | 'repeat'>('string', 'gap', 'float', 'repeat'),
        (start, n, breakAt, how) => {
          const kv: Array<[Json, Json]> = Array.from({ length: n }, (_, i) => [start + i, i % 5]);
          if (breakAt !== undefined) {
            const at = breakAt % n;
            const k = kv[at]![0] as number;
            kv[at]![0] = how === 'string' ? String(k) : how === 'gap' ? k + 1 : how === 'float' ? k + 0.5 : (kv[Math.max(0, at - 1)]![0] as number);
          }
          checkState(kv);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('does not use the run form for short, descending, stepped, unsafe or non-integer sequences', () => {
    const col = (keys: Json[]): boolean => isRun(keys);
    expect(col(Array.from({ length: KEY_RUN_MIN - 1 }, (_, i) => i))).toBe(false);
    expect(col(Array.from({ length: KEY_RUN_MIN }, (_, i) => i))).toBe(true);
    for (const keys of [
      Array.from({ length: 40 }, (_, i) => 40 - i),
      Array.from({ length: 40 }, (_, i) => 2 * i),
      Array.from({ length: 40 }, (_, i) => MAX - 20 + i), // runs past 2^53 - 1
      Array.from({ length: 40 }, (_, i) => 0.5 + i),
      Array.from({ length: 40 }, (_, i) => String(i)),
    ] as Json[][]) {
      expect(keyRunStart(keys, keys.length, 0, KEY_RUN_MIN)).toBe(null);
      checkState(keys.map((k, i) => [k, i]));
    }
    // The last safe run, and one starting at -0 (written as 0).
    checkState(Array.from({ length: 40 }, (_, i): [Json, Json] => [MAX - 39 + i, i]));
    checkState(Array.from({ length: 40 }, (_, i): [Json, Json] => [i === 0 ? -0 : i, i]));
  });

  it('encodeColumnsTransient writes the run map or cbor-x\'s bytes for the plain columns (property)', () => {
    fc.assert(
      fc.property(fc.array(segmentArb, { maxLength: 3 }), fc.nat(5), (segments, from) => {
        const ks = [...Array<Json>(from).fill('pad'), ...segments.flat()];
        const n = ks.length - from;
        const vs: Json[] = ks.map((_, i) => i % 3);
        const slice = ks.slice(from);
        const want = isRun(slice)
          ? encodeCbor([{ start: Object.is(slice[0], -0) ? 0 : slice[0], count: n }, vs.slice(from)])
          : encodeCbor([slice, vs.slice(from)]);
        expect(Buffer.from(encodeColumnsTransient(ks, vs, n, from, KEY_RUN_MIN)).equals(want)).toBe(true);
        // Runs off: always the plain columns.
        expect(Buffer.from(encodeColumnsTransient(ks, vs, n, from)).equals(encodeCbor([slice, vs.slice(from)]))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('makes a 1,000,000-key state of consecutive integers small and decodes it back', () => {
    const kv = Array.from({ length: 1_000_000 }, (_, i): [Json, Json] => [i, (i * 7919) % 5]);
    const bytes = encodeSnapshot(META, { kv }, { createdAt: 1, formatVersion: 1 });
    const h = decodeSnapshot(bytes).header;
    expect(h.rawSize).toBeLessThan(1.1e6); // the values, about one byte each; no keys
    const back = decodeSnapshot(bytes).content.kv;
    expect(back.length).toBe(kv.length);
    expect(back[0]).toEqual([0, 0]);
    expect(back[999_999]).toEqual([999_999, (999_999 * 7919) % 5]);
  });

  it('rejects malformed key runs as BAD_PAYLOAD', () => {
    const build = (keysItem: unknown, values: unknown[], keyCount = values.length): Buffer => {
      const w = new ZstdFrameWriter(3);
      for (const item of [['raftsnap-state', 1], [keysItem, values], { keyCount }]) w.write(encodeCbor(item));
      const payload = Buffer.from(w.end());
      const header = cborEncode({
        index: 1, term: 1, config: [], createdAt: 0, nodeId: null, codec: 'zstd+cbor-seq',
        rawSize: w.rawSize, compressedSize: payload.length, keyCount, hasSessions: false, payloadCrc: crc32(payload),
      });
      return assembleSnapshot(1, header, payload);
    };
    // Plain objects: CBOR maps without a tag (cbor-x tags a Map with 259, which the format never writes).
    const run = (start: unknown, count: unknown): Record<string, unknown> => ({ start, count });
    // A well-formed hand-made run decodes (readers accept any count, also below KEY_RUN_MIN).
    expect(decodeSnapshot(build(run(5, 3), ['a', 'b', 'c'])).content.kv).toEqual([[5, 'a'], [6, 'b'], [7, 'c']]);
    expect(decodeSnapshot(build(run(-2, 0), [])).content.kv).toEqual([]);
    const bad: Array<[string, Buffer]> = [
      ['count differs from the values', build(run(0, 4), [1, 2, 3])],
      ['start not an integer', build(run(0.5, 2), [1, 2])],
      ['start a string', build(run('0', 2), [1, 2])],
      ['negative count', build(run(0, -1), [])],
      ['past 2^53 - 1', build(run(MAX, 2), [1, 2])],
      ['unsafe start', build(run(2 ** 60, 1), [1])],
      ['missing count', build({ start: 0 }, [1])],
      ['extra field', build({ start: 0, count: 1, step: 1 }, [1])],
      ['more keys than the header', build(run(0, 3), [1, 2, 3], 2)],
    ];
    for (const [what, bytes] of bad) {
      let code = 'OK';
      try {
        decodeSnapshot(bytes);
      } catch (e) {
        if (!(e instanceof StorageError)) throw e;
        code = e.code;
      }
      expect(code, what).toBe('BAD_PAYLOAD');
    }
  });
});
