import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createRequire } from 'node:module';
import {
  cborItemEnd,
  decodeCborSequence,
  encodeCbor,
  encodeColumnsTransient,
  zstdDecodeCborSequence,
  ZstdFrameWriter,
  ZstdStreamError,
} from '../../src/storage/codec.js';
import { jsonArb } from './helpers.js';

const require = createRequire(import.meta.url);
const zstd = require('zstd-napi/binding.js') as typeof import('zstd-napi/binding.js');

function frame(items: unknown[], level = 3): { payload: Buffer; raw: Buffer } {
  const raw = Buffer.concat(items.map((x) => encodeCbor(x)));
  const w = new ZstdFrameWriter(level, 7);
  for (let i = 0; i < raw.length; i += 1000) w.write(raw.subarray(i, i + 1000));
  const payload = w.end();
  return { payload, raw };
}

// Values at every boundary of the column encoder's fast paths.
const edgeInts = [0, 23, 24, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -0, -1, -24, -25, -256, -257, -65536, -65537, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 32), -(2 ** 32) - 1, -(2 ** 53)];
const utf16 = fc.array(fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0, max: 0xffff }), fc.constantFrom(0xd800, 0xdc00, 0xdbff, 0xdfff, 0xe9)), { maxLength: 300 }).map((cs) => String.fromCharCode(...cs));
const asciiOfLength = fc.integer({ min: 0, max: 70000 }).map((n) => 'abcdefghij'.repeat(Math.ceil(n / 10)).slice(0, n));
const columnValue = fc.oneof(
  fc.constantFrom(...edgeInts),
  fc.integer(),
  fc.double(),
  utf16,
  asciiOfLength,
  fc.constantFrom(null, true, false, undefined, 'é'.repeat(30), '\u{1F600}'.repeat(40)),
  jsonArb,
);

describe('encodeColumnsTransient', () => {
  it('writes exactly the bytes cbor-x writes for [keys, values] (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(columnValue, columnValue), { maxLength: 40 }), fc.nat(5), (pairs, from) => {
        const ks = [...Array<unknown>(from).fill(7), ...pairs.map((p) => p[0])];
        const vs = [...Array<unknown>(from).fill('x'), ...pairs.map((p) => p[1])];
        const want = encodeCbor([pairs.map((p) => p[0]), pairs.map((p) => p[1])]);
        expect(Buffer.from(encodeColumnsTransient(ks, vs, pairs.length, from)).equals(want)).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it('handles long arrays and every length of ASCII string around the head boundaries', () => {
    const ks: unknown[] = [];
    const vs: unknown[] = [];
    for (let n = 0; n < 300; n++) {
      ks.push(n * 1000003);
      vs.push('q'.repeat(n));
    }
    vs.push('z'.repeat(65535), 'z'.repeat(65536));
    ks.push(1, 2);
    const want = encodeCbor([ks, vs]);
    expect(Buffer.from(encodeColumnsTransient(ks, vs, ks.length)).equals(want)).toBe(true);
  });
});

describe('cborItemEnd', () => {
  it('finds the end of any encoded JSON value and reports every strict prefix as incomplete (property)', () => {
    fc.assert(
      fc.property(jsonArb, (v) => {
        const b = encodeCbor(v);
        expect(cborItemEnd(b, 0, b.length)).toBe(b.length);
        for (let n = 0; n < b.length; n++) expect(cborItemEnd(b, 0, n)).toBe(-1);
      }),
      { numRuns: 200 },
    );
  });

  it('handles indefinite lengths, tags and floats, and rejects reserved bytes', () => {
    // [_ 1, "ab", {_ "k": 1.5}] then a tagged uint
    const b = Buffer.from([0x9f, 0x01, 0x62, 0x61, 0x62, 0xbf, 0x61, 0x6b, 0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xc1, 0x1a, 0, 0, 0, 1]);
    expect(cborItemEnd(b, 0, b.length)).toBe(19);
    expect(cborItemEnd(b, 19, b.length)).toBe(25);
    expect(() => cborItemEnd(Buffer.from([0x1c]), 0, 1)).toThrow();
    expect(() => cborItemEnd(Buffer.from([0xff]), 0, 1)).toThrow();
  });
});

describe('zstdDecodeCborSequence', () => {
  it('decodes the same items as a one-shot decode, whatever the window (property)', () => {
    fc.assert(
      fc.property(fc.array(jsonArb, { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 64 }), (items, win) => {
        const { payload, raw } = frame(items);
        const want: unknown[] = [];
        decodeCborSequence(raw, (x) => {
          want.push(x);
        });
        const got: unknown[] = [];
        zstdDecodeCborSequence(payload, raw.length, (x) => got.push(x), win);
        expect(got).toEqual(want);
      }),
      { numRuns: 100 },
    );
  });

  it('streams a payload larger than its window, with items larger than the window', () => {
    const items: unknown[] = [];
    for (let c = 0; c < 20; c++) items.push([Array.from({ length: 3000 }, (_, i) => c * 3000 + i), Array.from({ length: 3000 }, (_, i) => `v${i}`.padEnd(40, 'x'))]);
    const { payload, raw } = frame(items);
    let n = 0;
    zstdDecodeCborSequence(payload, raw.length, (x) => {
      expect(x).toEqual(items[n++]);
    }, 4096);
    expect(n).toBe(items.length);
  });

  it('fails on a wrong size, a truncated frame, trailing bytes and bytes that are not zstd', () => {
    const { payload, raw } = frame([[1, 2, 3], 'abc', { k: 1 }]);
    const noop = (): void => {};
    expect(() => zstdDecodeCborSequence(payload, raw.length + 1, noop)).toThrow(ZstdStreamError);
    expect(() => zstdDecodeCborSequence(payload, raw.length - 1, noop)).toThrow(ZstdStreamError);
    expect(() => zstdDecodeCborSequence(payload.subarray(0, payload.length - 2), raw.length, noop)).toThrow();
    expect(() => zstdDecodeCborSequence(Buffer.concat([payload, Buffer.from([0])]), raw.length, noop)).toThrow(ZstdStreamError);
    expect(() => zstdDecodeCborSequence(Buffer.from('not zstd at all'), 10, noop)).toThrow(ZstdStreamError);
    // a frame whose content ends inside a CBOR item
    const w = new ZstdFrameWriter(3);
    w.write(encodeCbor([1, 2, 3, 'abcdef']).subarray(0, 6));
    expect(() => zstdDecodeCborSequence(w.end(), 6, noop)).toThrow();
  });
});

describe('ZstdFrameWriter', () => {
  it('gives the same frame as a one-shot compression, with free bytes in front of it', () => {
    const raw = Buffer.alloc(3 << 20);
    for (let i = 0; i < raw.length; i++) raw[i] = (i * 2654435761) >>> 27;
    const w = new ZstdFrameWriter(3, 100);
    for (let i = 0; i < raw.length; i += 77777) w.write(raw.subarray(i, i + 77777));
    const { buf, offset } = w.endWithHeadroom();
    expect(offset).toBe(100);
    const out = Buffer.allocUnsafe(raw.length);
    expect(new zstd.DCtx().decompress(out, buf.subarray(offset))).toBe(raw.length);
    expect(out.equals(raw)).toBe(true);
    expect(w.compressedSize).toBe(buf.length - offset);
  });
});

describe('toJson', () => {
  // Found by the fuzzer (a version 2 seed): an integer beyond 64 bits' float range inside an array
  // came back as a BigInt, which JSON.stringify cannot write. Version 1 files had the same hole.
  it('refuses a 64-bit integer nested in an array, in either format version', async () => {
    const { NotJsonError, toJson } = await import('../../src/storage/codec.js');
    const { snapshotFromItems } = await import('../../src/fuzz/seal.js');
    const { decodeSnapshot, StorageError } = await import('../../src/storage/index.js');
    expect(() => toJson([1, [2n ** 64n - 1n]])).toThrow(NotJsonError);
    expect(toJson([undefined, [undefined]])).toEqual([null, [null]]);
    const big = Buffer.from([0x1b, 0xf6, 0xf5, 0x20, 0x2c, 0x6b, 0x8e, 0x83, 0x83]); // 2^64 - ..., an 8-byte CBOR integer
    const value = Buffer.concat([Buffer.from([0x82, 0x01]), big]);
    const v1 = snapshotFromItems([['raftsnap-state', 1], Buffer.concat([Buffer.from([0x82, 0x81, 0x01, 0x81]), value]), { keyCount: 1 }], { keyCount: 1 });
    const v2 = snapshotFromItems([['raftsnap-state', 2], Buffer.concat([Buffer.from([0x83, 0x01, 0x81, 0x01, 0x81]), value]), { keyCount: 1 }], { keyCount: 1, formatVersion: 2 });
    for (const file of [v1, v2]) {
      let err: unknown;
      try {
        decodeSnapshot(file, 'x.snap');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(StorageError);
      expect((err as InstanceType<typeof StorageError>).code).toBe('BAD_PAYLOAD');
      expect((err as Error).message).toMatch(/non-JSON value \(unexpected bigint\)/);
    }
  });
});
