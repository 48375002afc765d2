// Limits on what the readers accept from a file (docs/FORMAT.md, "Limits"): each is one clear
// LIMIT error naming the file, the offset and the limit, checked before anything is allocated for
// it, and recovery changes nothing on disk when it meets one.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_READ_LIMITS, MAX_VALUE_CHARS, MAX_VALUE_DEPTH, limitsFromEnv, parseLimit, readLimits, setReadLimits, type ReadLimits } from '../../src/limits.js';
import { MAX_VALUE_CHARS as WIRE_VALUE_CHARS, MAX_VALUE_DEPTH as WIRE_VALUE_DEPTH, MAX_LINE_CHARS } from '../../src/node/wire-limits.js';
import { cbor, snapshotFromItems, snapshotFromPayload, stateItems, walRecord, zstdFrame } from '../../src/fuzz/seal.js';
import {
  DataDir,
  SEGMENT_HEADER_BYTES,
  StorageError,
  decodeSnapshot,
  encodeSegmentHeader,
  encodeSnapshot,
  readSnapshotFile,
  scanSegmentBytes,
  sealBatch,
  verifySnapshotBytes,
  verifySnapshotFile,
  writeSnapshotFile,
} from '../../src/storage/index.js';
import { SnapshotReader } from '../../src/storage/snapshot-read.js';
import type { Json } from '../../src/raft/types.js';
import { tmpDir } from './helpers.js';

afterEach(() => {
  setReadLimits(null);
});

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof StorageError) return e.code;
    throw e;
  }
  return 'OK';
}

function errOf(f: () => unknown): StorageError {
  try {
    f();
  } catch (e) {
    if (e instanceof StorageError) return e;
    throw e;
  }
  throw new Error('expected a StorageError');
}

const nested = (depth: number): Json => {
  let v: Json = 0;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
};

describe('limits: one place, the same numbers as serve', () => {
  it('the file limits default to the wire limits where they mean the same thing', () => {
    expect(WIRE_VALUE_CHARS).toBe(MAX_VALUE_CHARS);
    expect(WIRE_VALUE_DEPTH).toBe(MAX_VALUE_DEPTH);
    expect(MAX_LINE_CHARS).toBe(32 * 1024 * 1024);
    expect(DEFAULT_READ_LIMITS.maxValueBytes).toBe(MAX_VALUE_CHARS);
    expect(DEFAULT_READ_LIMITS.maxDepth).toBe(MAX_VALUE_DEPTH);
  });

  it('environment variables and flags set them; a bad setting is one clear error', () => {
    expect(limitsFromEnv({ RAFTSNAP_MAX_VALUE_BYTES: '1M', RAFTSNAP_MAX_DEPTH: '100' })).toMatchObject({ maxValueBytes: 1 << 20, maxDepth: 100 });
    expect(parseLimit('2G', 'x')).toBe(2 * 1024 ** 3);
    expect(parseLimit('64KiB', 'x')).toBe(65536);
    expect(() => parseLimit('-1', '--max-depth')).toThrow(/--max-depth: "-1" is not a positive whole number/);
    expect(() => limitsFromEnv({ RAFTSNAP_MAX_STATE_BYTES: 'lots' })).toThrow(/RAFTSNAP_MAX_STATE_BYTES/);
    expect(setReadLimits({ maxDepth: 3 }).maxDepth).toBe(3);
    expect(readLimits().maxValueBytes).toBe(MAX_VALUE_CHARS);
  });
});

describe('snapshot payload limits', () => {
  it('a key and value of exactly the limit as JSON are read; one character more is LIMIT', () => {
    // JSON of ["k", "aaa..."]: key "k" is 3 characters, the value n + 2.
    const fits = 'a'.repeat(MAX_VALUE_CHARS - 3 - 2);
    const ok = encodeSnapshot({ index: 1, term: 1, config: [] }, { kv: [['k', fits]] });
    expect(decodeSnapshot(ok).content.kv[0]![1]).toBe(fits);
    const over = encodeSnapshot({ index: 1, term: 1, config: [] }, { kv: [['k', fits + 'a']] });
    const e = errOf(() => decodeSnapshot(over, 'over.snap'));
    expect(e.code).toBe('LIMIT');
    expect(e.message).toMatch(/^over\.snap: snapshot payload holds key "k" whose key and value take 65537 bytes as JSON, more than the limit of 65536/);
    expect(e.message).toMatch(/--max-value-bytes or RAFTSNAP_MAX_VALUE_BYTES raises it/);
    expect(e.offset).toBeGreaterThan(0);
    // The operator who knows better raises it.
    expect(decodeSnapshot(over, 'over.snap', { ...DEFAULT_READ_LIMITS, maxValueBytes: 1 << 20 }).content.kv).toHaveLength(1);
  });

  it('escapes count as serve counts them: 20,000 control characters are 120,000 characters of JSON', () => {
    const bytes = encodeSnapshot({ index: 1, term: 1, config: [] }, { kv: [['k', '\u0001'.repeat(20_000)]] });
    expect(bytes.length).toBeLessThan(1000);
    expect(codeOf(() => decodeSnapshot(bytes))).toBe('LIMIT');
  });

  it('a string far beyond the limit is refused from its CBOR head, before it is decoded', () => {
    // 50 MB of one letter: a few KB compressed, refused without allocating the string.
    const huge = snapshotFromItems([['raftsnap-state', 1], [['k'], ['x'.repeat(50 << 20)]], { keyCount: 1 }], { keyCount: 1 });
    expect(huge.length).toBeLessThan(20_000);
    const e = errOf(() => decodeSnapshot(huge, 'huge.snap'));
    expect(e.code).toBe('LIMIT');
    expect(e.message).toMatch(/a string of 52428800 bytes, larger than a key and value within the limit of 65536 bytes as JSON/);
  });

  it('nesting: depth 64 is read, 65 is LIMIT (key or value, as serve)', () => {
    expect(decodeSnapshot(encodeSnapshot({ index: 1, term: 1, config: [] }, { kv: [[1, nested(64)]] })).content.kv).toHaveLength(1);
    const deep = encodeSnapshot({ index: 1, term: 1, config: [] }, { kv: [[1, nested(65)]] });
    const e = errOf(() => decodeSnapshot(deep, 'deep.snap'));
    expect(e.code).toBe('LIMIT');
    expect(e.message).toMatch(/nested more than 64 levels deep.*--max-depth or RAFTSNAP_MAX_DEPTH/);
    const deepKey = encodeSnapshot({ index: 1, term: 1, config: [] }, { kv: [[nested(65), 1]] });
    expect(codeOf(() => decodeSnapshot(deepKey))).toBe('LIMIT');
    // 100,000 levels: refused by the scan, no stack overflow in the decoder.
    const raw = Buffer.concat([cbor(['raftsnap-state', 1]), Buffer.from([0x82, 0x81, 0x01, 0x81]), Buffer.alloc(100_000, 0x81), Buffer.from([0x00]), cbor({ keyCount: 1 })]);
    const { payload, rawSize } = zstdFrame(raw);
    expect(codeOf(() => decodeSnapshot(snapshotFromPayload(payload, rawSize, { keyCount: 1 })))).toBe('LIMIT');
  });

  it('declared lengths and counts beyond the bytes that remain are LIMIT, not an allocation', () => {
    const state = cbor(['raftsnap-state', 1]);
    // A chunk whose values array declares 2^32 - 1 elements.
    const count = Buffer.concat([state, Buffer.from([0x82, 0x80, 0x9b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff])]);
    // A text string declaring 4 GiB.
    const str = Buffer.concat([state, Buffer.from([0x82, 0x81, 0x01, 0x81, 0x7b, 0, 0, 0, 1, 0, 0, 0, 0])]);
    for (const raw of [count, str]) {
      const { payload, rawSize } = zstdFrame(raw);
      const e = errOf(() => decodeSnapshot(snapshotFromPayload(payload, rawSize, { keyCount: 0 }), 'x.snap'));
      expect(e.code).toBe('LIMIT');
      expect(e.message).toMatch(/declares .* where only \d+ (bytes )?remain|larger than a key and value/);
    }
  });

  it('a chunk of more than 8192 pairs is LIMIT', () => {
    const pairs: Array<[Json, Json]> = Array.from({ length: 8193 }, (_, i) => [i, i]);
    const bytes = snapshotFromItems(stateItems(pairs, 10_000), { keyCount: 8193 });
    expect(errOf(() => decodeSnapshot(bytes)).message).toMatch(/a chunk of 8193 pairs, more than the 8192/);
    expect(decodeSnapshot(snapshotFromItems(stateItems(pairs, 8192), { keyCount: 8193 })).content.kv).toHaveLength(8193);
  });

  it('a payload that decompresses to more than its header declares is LIMIT, and the window never exceeds the declared size', () => {
    const items = stateItems([[1, 'x'.repeat(1000)]]);
    const { payload, rawSize } = zstdFrame(items.map(cbor));
    const short = snapshotFromPayload(payload, rawSize, { rawSize: rawSize - 10, keyCount: 1 });
    const e = errOf(() => decodeSnapshot(short, 'bomb.snap'));
    expect(e.code).toBe('LIMIT');
    // A frame larger than the 8 MiB window is streamed: the same through the streaming path.
    const big = zstdFrame([cbor(['raftsnap-state', 1]), ...Array.from({ length: 200 }, (_, i) => cbor([[i], ['y'.repeat(60_000)]])), cbor({ keyCount: 200 })]);
    expect(big.rawSize).toBeGreaterThan(8 << 20);
    expect(decodeSnapshot(snapshotFromPayload(big.payload, big.rawSize, { keyCount: 200 })).content.kv).toHaveLength(200);
    expect(codeOf(() => decodeSnapshot(snapshotFromPayload(big.payload, big.rawSize, { keyCount: 200, rawSize: big.rawSize - 1 })))).toBe('LIMIT');
    expect(codeOf(() => decodeSnapshot(snapshotFromPayload(big.payload, big.rawSize, { keyCount: 200, rawSize: big.rawSize + 1 })))).toBe('BAD_PAYLOAD');
  });

  it('header limits: a payload beyond maxStateBytes, or more keys than bytes, before the payload is read', () => {
    const bytes = encodeSnapshot({ index: 1, term: 1, config: [] }, { kv: [[1, 1]] });
    const small: ReadLimits = { ...DEFAULT_READ_LIMITS, maxStateBytes: 10 };
    const e = errOf(() => verifySnapshotBytes(bytes, 's.snap', small));
    expect(e.code).toBe('LIMIT');
    expect(e.message).toMatch(/declares a payload of \d+ bytes decompressed, more than the limit of 10 \(--max-state-bytes or RAFTSNAP_MAX_STATE_BYTES raises it\)/);
    const lying = snapshotFromItems(stateItems([[1, 1]]), { keyCount: 1_000_000_000 });
    expect(errOf(() => decodeSnapshot(lying)).message).toMatch(/declares 1000000000 keys, more than its payload of \d+ bytes can hold/);
  });

  it('readSnapshotFile and verifySnapshotFile read a file a piece at a time with the same limits', () => {
    const dir = tmpDir();
    const over = encodeSnapshot({ index: 1, term: 1, config: [] }, { kv: [['k', 'a'.repeat(70_000)]] });
    const f = writeSnapshotFile(dir, over, { fsync: false });
    expect(codeOf(() => readSnapshotFile(f))).toBe('LIMIT');
    const v = verifySnapshotFile(f);
    expect(v.problems[0]!.code).toBe('LIMIT');
    expect(v.problems[0]!.message).toContain(f);
    setReadLimits({ maxValueBytes: 100_000 });
    expect(readSnapshotFile(f).content.kv).toHaveLength(1);
    expect(verifySnapshotFile(f)).toMatchObject({ problems: [], keys: 1 });
  });

  it('the streaming reader yields one chunk at a time and checks the CRC before the first', () => {
    const pairs: Array<[Json, Json]> = Array.from({ length: 20_000 }, (_, i) => [i, `v${i}`]);
    const bytes = encodeSnapshot({ index: 7, term: 2, config: ['n1'] }, { kv: pairs, sessions: { s: 1 } }, { formatVersion: 2 });
    const dir = tmpDir();
    const f = writeSnapshotFile(dir, bytes, { fsync: false });
    const r = SnapshotReader.open(f);
    const sizes: number[] = [];
    for (const c of r.chunks()) sizes.push(c.keys.length);
    expect(sizes).toEqual([8192, 8192, 3616]);
    expect(r.sessions).toEqual({ s: 1 });
    // One flipped payload byte: refused when opened, before any chunk.
    const bad = Buffer.from(bytes);
    bad[bad.length - 5] ^= 1;
    fs.writeFileSync(path.join(dir, 'bad.snap'), bad);
    expect(codeOf(() => SnapshotReader.open(path.join(dir, 'bad.snap')))).toBe('BAD_PAYLOAD_CRC');
  });
});

describe('numbers JSON cannot carry (serve refuses them on the wire)', () => {
  it('NaN and the infinities, as half, single or double floats, are LIMIT in a snapshot and in a WAL record', () => {
    for (const v of [NaN, Infinity, -Infinity]) {
      const e = errOf(() => decodeSnapshot(encodeSnapshot({ index: 1, term: 1, config: [] }, { kv: [[1, v]] }), 'nan.snap'));
      expect(e.code).toBe('LIMIT');
      expect(e.message).toMatch(/a number that is not finite \(NaN or an infinity\), which JSON cannot carry and serve never accepts/);
    }
    const state = cbor(['raftsnap-state', 1]);
    const end = cbor({ keyCount: 1 });
    for (const f of [[0xf9, 0x7c, 0x00], [0xf9, 0x7e, 0x00], [0xfa, 0xff, 0x80, 0, 0], [0xfb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0]]) {
      const { payload, rawSize } = zstdFrame(Buffer.concat([state, Buffer.from([0x82, 0x81, 0x01, 0x81, ...f]), end]));
      expect(codeOf(() => decodeSnapshot(snapshotFromPayload(payload, rawSize, { keyCount: 1 })))).toBe('LIMIT');
    }
    // Finite floats are fine, however they are written.
    for (const f of [[0xf9, 0x3c, 0x00], [0xfa, 0x3f, 0xc0, 0, 0], [0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]]) {
      const { payload, rawSize } = zstdFrame(Buffer.concat([state, Buffer.from([0x82, 0x81, 0x01, 0x81, ...f]), end]));
      expect(decodeSnapshot(snapshotFromPayload(payload, rawSize, { keyCount: 1 })).content.kv[0]![1]).toBeTypeOf('number');
    }
    const rec = walRecord(1, cbor([1, 1, { op: 'write', key: 'k', value: Infinity }]));
    const seg = Buffer.concat([encodeSegmentHeader(1, 1), rec, ...sealBatch(SEGMENT_HEADER_BYTES, [rec])]);
    expect(errOf(() => scanSegmentBytes(seg, 'w.wal')).message).toMatch(/^w\.wal: WAL record of type 1 holds a number that is not finite/);
  });
});

describe('WAL record limits', () => {
  const segment = (records: Buffer[]): Buffer => Buffer.concat([encodeSegmentHeader(1, 1), ...records, ...sealBatch(SEGMENT_HEADER_BYTES, records)]);
  const entry = (data: Json) => walRecord(1, cbor([1, 1, data]));

  it('an entry whose key and value are larger than serve accepts is LIMIT naming the segment and offset', () => {
    const seg = segment([walRecord(2, cbor([1, null, 0])), entry({ op: 'write', key: 'k', value: 'v'.repeat(70_000) })]);
    const e = errOf(() => scanSegmentBytes(seg, 'wal/0001.wal'));
    expect(e.code).toBe('LIMIT');
    expect(e.file).toBe('wal/0001.wal');
    expect(e.offset).toBe(SEGMENT_HEADER_BYTES + 9 + 4);
    expect(e.message).toMatch(/WAL record of type 1 holds entry 1 whose key and values take more than 65536 bytes as JSON/);
    expect(scanSegmentBytes(segment([entry({ op: 'write', key: 'k', value: 'v'.repeat(60_000) })]), 'w').records).toHaveLength(1);
  });

  it('deep nesting and huge declared lengths inside a record with a valid checksum are LIMIT, not a torn tail', () => {
    expect(codeOf(() => scanSegmentBytes(segment([entry({ op: 'write', key: 1, value: nested(65) })]), 'w'))).toBe('LIMIT');
    expect(scanSegmentBytes(segment([entry({ op: 'write', key: 1, value: nested(64) })]), 'w').records).toHaveLength(1);
    const declared = walRecord(1, Buffer.from([0x83, 0x01, 0x01, 0x7a, 0xff, 0xff, 0xff, 0xff]));
    expect(codeOf(() => scanSegmentBytes(segment([declared]), 'w'))).toBe('LIMIT');
  });

  it('recovery meets a LIMIT and stops: nothing is cut, renamed or removed, even with repair', () => {
    const dir = tmpDir();
    const dd = DataDir.create(dir, { fsync: false, nodeId: 'n1' });
    dd.close();
    const segFile = path.join(dir, 'wal', '0000000000000001-0000000000000001.wal');
    fs.writeFileSync(segFile, segment([walRecord(2, cbor([1, null, 0])), entry({ op: 'write', key: 'k', value: 'v'.repeat(70_000) })]));
    const before = fs.readFileSync(segFile);
    const w = DataDir.open(dir, { mode: 'write', fsync: false });
    try {
      expect(codeOf(() => w.recover({ repair: true }))).toBe('LIMIT');
    } finally {
      w.close();
    }
    expect(fs.readFileSync(segFile).equals(before)).toBe(true);
    expect(fs.readdirSync(path.join(dir, 'wal'))).toEqual([path.basename(segFile)]);
  });

  it('a snapshot over a limit is not "broken": recovery stops without renaming it', () => {
    const dir = tmpDir();
    const dd = DataDir.create(dir, { fsync: false, nodeId: 'n1' });
    const f = writeSnapshotFile(dd.snapDir, encodeSnapshot({ index: 1, term: 1, config: ['n1'] }, { kv: [['k', 'a'.repeat(70_000)]] }), { fsync: false });
    try {
      expect(codeOf(() => dd.recover({ repair: true }))).toBe('LIMIT');
    } finally {
      dd.close();
    }
    expect(fs.existsSync(f)).toBe(true);
    setReadLimits({ maxValueBytes: 1 << 20 });
    const again = DataDir.open(dir, { mode: 'read' });
    expect(again.recover().snapshot?.content?.kv).toHaveLength(1);
  });
});

describe('meta.json limit', () => {
  it('a meta.json larger than 1 MiB is not read', () => {
    const dir = tmpDir();
    DataDir.create(dir, { fsync: false }).close();
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(path.join(dir, 'meta.json'), JSON.stringify({ ...meta, pad: 'x'.repeat(2 << 20) }));
    const e = errOf(() => DataDir.open(dir));
    expect(e.code).toBe('LIMIT');
    expect(e.message).toMatch(/meta\.json of \d+ bytes, more than the limit of 1048576; not read/);
  });
});
