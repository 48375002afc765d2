import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { encode as cborEncode } from 'cbor-x';
import fc from 'fast-check';
import { canonicalJson } from '../../src/kv/keys.js';
import { describe, expect, it } from 'vitest';
import type { Json } from '../../src/raft/types.js';
import {
  SNAPSHOT_FORMAT_VERSION,
  SnapshotEncoder,
  StorageError,
  assembleSnapshot,
  decodeSnapshot,
  encodeSnapshot,
  parseSnapshotFileName,
  readSnapshotFile,
  readSnapshotHeader,
  snapshotFileName,
  verifySnapshotFile,
  writeSnapshotFile,
} from '../../src/storage/index.js';
import { canon, flipBit, jsonArb, stateArb, tmpDir } from './helpers.js';

const META = { index: 42, term: 3, config: ['n1', 'n2', 'n3'] };

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof StorageError) return e.code;
    throw e;
  }
  return 'OK';
}

describe('snapshot format', () => {
  it('round-trips random states, sessions and header fields', () => {
    fc.assert(
      fc.property(
        stateArb,
        fc.option(jsonArb, { nil: undefined }),
        fc.record({
          index: fc.nat({ max: 2 ** 40 }),
          term: fc.nat({ max: 2 ** 31 }),
          config: fc.array(fc.string({ minLength: 1, maxLength: 5 }), { maxLength: 5 }),
        }),
        fc.nat({ max: 2 ** 45 }),
        fc.option(fc.string({ minLength: 1, maxLength: 6 }), { nil: null }),
        (kv, sessions, meta, createdAt, nodeId) => {
          const content = sessions === undefined ? { kv } : { kv, sessions };
          const bytes = encodeSnapshot(meta, content, { createdAt, nodeId });
          const d = decodeSnapshot(bytes);
          // Version 2 sorts each chunk's integer keys: the same pairs, in another order.
          expect(canon(d.content.kv).sort()).toEqual(canon(kv).sort());
          expect('sessions' in d.content).toBe(sessions !== undefined);
          if (sessions !== undefined) expect(JSON.stringify(d.content.sessions)).toBe(JSON.stringify(sessions));
          expect(d.header).toMatchObject({
            formatVersion: SNAPSHOT_FORMAT_VERSION,
            index: meta.index,
            term: meta.term,
            config: meta.config,
            createdAt,
            nodeId,
            keyCount: kv.length,
            hasSessions: sessions !== undefined,
            compressedSize: bytes.length - d.header.payloadOffset,
          });
        },
      ),
      { numRuns: 150 },
    );
  });

  it('keeps 1 and "1" apart, nested keys, and __proto__ as a plain key', () => {
    const proto = JSON.parse('{"__proto__": {"x": [1, "1"]}, "a": 2.5}') as Json;
    const kv: Array<[Json, Json]> = [
      [1, 'int'],
      ['1', 'str'],
      [[1, '1'], { a: [null, true] }],
      [{ b: 1 }, proto],
      [null, false],
      [1.5, -7],
      ['', ''],
    ];
    const d = decodeSnapshot(encodeSnapshot(META, { kv, sessions: null }, { createdAt: 0 }));
    // Version 2 writes a chunk's keys a group per kind (integers, template strings, others).
    expect(canon(d.content.kv).sort()).toEqual(canon(kv).sort());
    expect(d.content.kv.filter(([k]) => k === 1 || k === '1').map(([k, v]) => [k, v])).toEqual([
      [1, 'int'],
      ['1', 'str'],
    ]);
    const v = d.content.kv.find(([k]) => canonicalJson(k) === '{"b":1}')![1] as Record<string, Json>;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.keys(v)).toEqual(['__proto__', 'a']);
    expect(d.content.sessions).toBeNull();
  });

  it('is deterministic given createdAt, and the streaming encoder gives identical bytes however it is fed', () => {
    fc.assert(
      fc.property(stateArb, fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 10 }), (kv, cuts) => {
        const a = encodeSnapshot(META, { kv, sessions: { s: 1 } }, { createdAt: 5, nodeId: 'n1' });
        const b = encodeSnapshot(META, { kv, sessions: { s: 1 } }, { createdAt: 5, nodeId: 'n1' });
        expect(a.equals(b)).toBe(true);
        const enc = new SnapshotEncoder(META, { createdAt: 5, nodeId: 'n1' });
        let i = 0;
        let c = 0;
        while (i < kv.length) {
          const n = cuts[c++ % cuts.length]!;
          enc.add(kv.slice(i, i + n));
          i += n;
        }
        expect(enc.finish({ s: 1 }).equals(a)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it('addColumns, add with arrays and add with other iterables give the same bytes, mixed in any way (property)', () => {
    fc.assert(
      fc.property(stateArb, fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 1, max: 20 })), { minLength: 1, maxLength: 10 }), (kv, cuts) => {
        const want = encodeSnapshot(META, { kv }, { createdAt: 5 });
        const enc = new SnapshotEncoder(META, { createdAt: 5 });
        let i = 0;
        let c = 0;
        while (i < kv.length) {
          const [how, n] = cuts[c++ % cuts.length]!;
          const part = kv.slice(i, i + n);
          if (how === 0) enc.addColumns(part.map((p) => p[0]), part.map((p) => p[1]));
          else if (how === 1) enc.add(part);
          else enc.add(new Map(part.map((p, j) => [j, p])).values());
          i += n;
        }
        expect(enc.count).toBe(kv.length);
        expect(enc.finish().equals(want)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it('addColumns takes whole chunks as they are, and refuses columns of unequal length', () => {
    const kv: Array<[Json, Json]> = [];
    for (let i = 0; i < 3 * 8192 + 5; i++) kv.push([i, i % 5]);
    const want = encodeSnapshot(META, { kv }, { createdAt: 1 });
    const enc = new SnapshotEncoder(META, { createdAt: 1 });
    for (let i = 0; i < kv.length; i += 8192) {
      const part = kv.slice(i, i + 8192);
      enc.addColumns(part.map((p) => p[0]), part.map((p) => p[1]));
    }
    const bytes = enc.finish();
    expect(bytes.equals(want)).toBe(true);
    expect(decodeSnapshot(bytes).content.kv).toEqual(kv);
    expect(() => new SnapshotEncoder(META).addColumns([1, 2], [1])).toThrow(RangeError);
  });

  it('streams large states in fixed chunks (many chunks decode back in order)', () => {
    const kv: Array<[Json, Json]> = [];
    for (let i = 0; i < 30000; i++) kv.push([i % 3 === 0 ? String(i) : i, i % 7]);
    const enc = new SnapshotEncoder(META, { createdAt: 1 });
    for (let i = 0; i < kv.length; i += 1000) enc.add(kv.slice(i, i + 1000));
    const bytes = enc.finish();
    expect(bytes.equals(encodeSnapshot(META, { kv }, { createdAt: 1 }))).toBe(true);
    const d = decodeSnapshot(bytes);
    expect(d.content.kv.length).toBe(30000);
    const byKey = new Map(d.content.kv.map(([k, v]) => [JSON.stringify(k), v]));
    expect(byKey.size).toBe(30000);
    expect(byKey.get('"3"')).toBe(3);
    expect(byKey.get('4')).toBe(4);
    expect(d.header.rawSize).toBeGreaterThan(d.header.compressedSize);
  });

  it('names files <term>-<index>.snap so they sort in log order', () => {
    expect(snapshotFileName({ index: 255, term: 2 })).toBe('0000000000000002-00000000000000ff.snap');
    expect(parseSnapshotFileName('0000000000000002-00000000000000ff.snap')).toEqual({ term: 2, index: 255 });
    expect(parseSnapshotFileName('x.snap')).toBeNull();
    const names = [
      { index: 300, term: 5 },
      { index: 9, term: 1 },
      { index: 100, term: 2 },
    ].map(snapshotFileName);
    expect([...names].sort()).toEqual([names[1], names[2], names[0]]);
  });
});

describe('snapshot files', () => {
  function writeGood(dir: string): string {
    const kv: Array<[Json, Json]> = [];
    for (let i = 0; i < 500; i++) kv.push([i, { v: i, s: 'x'.repeat(i % 13) }]);
    return writeSnapshotFile(dir, META, { kv, sessions: { c1: 3 } }, { createdAt: 1000, nodeId: 'n1', fsync: false });
  }

  it('writes atomically under its canonical name and reads back', () => {
    const dir = tmpDir();
    const file = writeGood(dir);
    expect(path.basename(file)).toBe(snapshotFileName(META));
    expect(fs.readdirSync(dir)).toEqual([path.basename(file)]);
    const h = readSnapshotHeader(file);
    expect(h).toMatchObject({ index: 42, term: 3, keyCount: 500, nodeId: 'n1', createdAt: 1000, fileSize: fs.statSync(file).size });
    expect(readSnapshotFile(file).content.kv.length).toBe(500);
    expect(verifySnapshotFile(file).problems).toEqual([]);
  });

  it('detects every kind of damage with the right code and names the file', () => {
    const dir = tmpDir();
    const good = writeGood(dir);
    const bytes = fs.readFileSync(good);
    const h = readSnapshotHeader(good);
    const cases: Array<[string, (f: string) => void, string]> = [
      ['truncated', (f) => fs.truncateSync(f, bytes.length - 10), 'TRUNCATED'],
      ['truncated-in-header', (f) => fs.truncateSync(f, 20), 'TRUNCATED'],
      ['bit-flipped-payload', (f) => flipBit(f, h.payloadOffset + 20, 3), 'BAD_PAYLOAD_CRC'],
      ['bad-header-crc', (f) => flipBit(f, 30, 1), 'BAD_HEADER_CRC'],
      ['version', (f) => {
        const b = fs.readFileSync(f);
        b.writeUInt16BE(7, 8);
        fs.writeFileSync(f, b);
      }, 'UNSUPPORTED_VERSION'],
      ['not-a-snapshot', (f) => fs.writeFileSync(f, '{"hello": "world"}\n'), 'NOT_SNAPSHOT'],
      ['empty', (f) => fs.writeFileSync(f, ''), 'NOT_SNAPSHOT'],
      ['trailing-garbage', (f) => fs.appendFileSync(f, 'xx'), 'BAD_PAYLOAD'],
    ];
    for (const [name, damage, code] of cases) {
      const f = path.join(dir, `${name}.snap`);
      fs.copyFileSync(good, f);
      damage(f);
      const v = verifySnapshotFile(f);
      expect(v.problems.map((p) => p.code), name).toEqual([code]);
      expect(v.problems[0]!.message.startsWith(f + ': '), name).toBe(true);
      expect(v.problems[0]!.message).not.toContain('\n');
      expect(codeOf(() => readSnapshotFile(f)), name).toBe(code);
      expect(codeOf(() => decodeSnapshot(fs.readFileSync(f), f)), name).toBe(code);
    }
    // The header alone is still readable for payload damage.
    expect(readSnapshotHeader(path.join(dir, 'bit-flipped-payload.snap')).index).toBe(42);
    expect(readSnapshotHeader(path.join(dir, 'truncated.snap')).index).toBe(42);
    expect(codeOf(() => readSnapshotHeader(path.join(dir, 'bad-header-crc.snap')))).toBe('BAD_HEADER_CRC');
    expect(codeOf(() => readSnapshotHeader(path.join(dir, 'missing.snap')))).toBe('ENOENT');
    expect(codeOf(() => readSnapshotHeader(dir))).toBe('ENOTDIR');
  });

  it('a payload that passes its CRC but does not decode is BAD_PAYLOAD', () => {
    const payload = Buffer.from('not zstd at all');
    const header = cborEncode({
      index: 1, term: 1, config: [], createdAt: 0, nodeId: null, codec: 'zstd+cbor-seq',
      rawSize: 10, compressedSize: payload.length, keyCount: 0, hasSessions: false, payloadCrc: crc32(payload),
    });
    const bytes = assembleSnapshot(1, header, payload);
    expect(codeOf(() => decodeSnapshot(bytes))).toBe('BAD_PAYLOAD');
  });

  it('reports permission problems as EACCES', () => {
    if (process.getuid && process.getuid() === 0) return; // root reads everything
    const dir = tmpDir();
    const f = writeGood(dir);
    fs.chmodSync(f, 0o000);
    expect(codeOf(() => readSnapshotHeader(f))).toBe('EACCES');
  });

  it('reads a header in well under 50 ms without touching a 100 MB payload', () => {
    const dir = tmpDir();
    const good = fs.readFileSync(writeGood(dir));
    const big = path.join(dir, 'big.snap');
    fs.writeFileSync(big, good);
    fs.truncateSync(big, 100 * 1024 * 1024); // sparse: a huge "payload" we must not read
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) readSnapshotHeader(big);
    const per = (performance.now() - t0) / 10;
    expect(per).toBeLessThan(50);
    expect(readSnapshotHeader(big).fileSize).toBe(100 * 1024 * 1024);
  });

  it('leaves nothing behind when the target directory does not exist', () => {
    const dir = tmpDir();
    expect(codeOf(() => writeSnapshotFile(path.join(dir, 'nope'), META, { kv: [] }, { fsync: false }))).toBe('ENOENT');
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
