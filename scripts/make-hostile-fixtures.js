#!/usr/bin/env node
// Builds fixtures/hostile/: small files with valid checksums that declare or hold more than a
// reader accepts (docs/FORMAT.md, "Limits"), made with the library's own encoder where it can
// make them and sealed with correct checksums where it cannot. Each is refused with LIMIT (or
// BAD_PAYLOAD where noted) within bounded memory; test/storage/limits-hostile.test.ts runs the
// commands on them. Deterministic: re-running gives identical bytes. Needs `npm run build`.
//
//   node scripts/make-hostile-fixtures.js [outDir]      (default: fixtures/hostile/)
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { encodeSnapshot, encodeSegmentHeader, encodeRecord, sealBatch, SEGMENT_HEADER_BYTES, segmentFileName } from '../dist/storage/index.js';
import { cbor, snapshotFromItems, snapshotFromPayload, stateItems, walRecord, zstdFrame } from '../dist/fuzz/seal.js';

const require = createRequire(import.meta.url);
const zstd = require('zstd-napi/binding.js');

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(process.argv[2] ?? path.join(here, '..', 'fixtures', 'hostile'));
const CREATED = Date.UTC(2024, 0, 2, 3, 4, 5);
const META = { index: 1, term: 1, config: ['n1'] };

fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
const made = [];
function write(name, bytes, what) {
  fs.writeFileSync(path.join(out, name), bytes);
  made.push([name, bytes.length, what]);
}

// 1. The file: one key whose value is 400 MB of one letter, made by encodeSnapshot.
write(
  'value-400mb.snap',
  encodeSnapshot(META, { kv: [['k', 'a'.repeat(400 * 1024 * 1024)]] }, { createdAt: CREATED, nodeId: 'n1', formatVersion: 1 }),
  'one key whose value is 400 MB of one letter (encodeSnapshot); LIMIT from the string head, before it is decoded',
);

// 2. Just over serve's value limit: a key and value of 65,537 characters as JSON.
write(
  'value-64k-plus-1.snap',
  encodeSnapshot(META, { kv: [['k', 'a'.repeat(65536 - 3 - 2 + 1)]] }, { createdAt: CREATED, nodeId: 'n1', formatVersion: 1 }),
  'a key and value of 65,537 characters as JSON, one more than serve accepts; LIMIT',
);

// 3. Nesting: 65 levels (one more than serve accepts), and 1,000,000 levels (raw CBOR).
let v = 0;
for (let i = 0; i < 65; i++) v = [v];
write('deep-65.snap', encodeSnapshot(META, { kv: [[1, v]] }, { createdAt: CREATED, nodeId: 'n1', formatVersion: 1 }), 'a value nested 65 levels deep; LIMIT');
{
  const raw = Buffer.concat([cbor(['raftsnap-state', 1]), Buffer.from([0x82, 0x81, 0x01, 0x81]), Buffer.alloc(1_000_000, 0x81), Buffer.from([0x00]), cbor({ keyCount: 1 })]);
  const { payload, rawSize } = zstdFrame(raw);
  write('deep-1m.snap', snapshotFromPayload(payload, rawSize, { keyCount: 1, createdAt: CREATED }), 'a value nested 1,000,000 levels deep (raw CBOR); LIMIT, no stack overflow');
}

// 4. Declared lengths beyond the bytes that remain: a 4 GiB string, a 2^32-1 element array.
{
  const state = cbor(['raftsnap-state', 1]);
  const str = Buffer.concat([state, Buffer.from([0x82, 0x81, 0x01, 0x81, 0x7b, 0, 0, 0, 1, 0, 0, 0, 0])]);
  let f = zstdFrame(str);
  write('string-4gib.snap', snapshotFromPayload(f.payload, f.rawSize, { keyCount: 1, createdAt: CREATED }), 'a text string declaring 4 GiB in a payload of a few bytes; LIMIT');
  const arr = Buffer.concat([state, Buffer.from([0x82, 0x80, 0x9a, 0xff, 0xff, 0xff, 0xff])]);
  f = zstdFrame(arr);
  write('array-4g.snap', snapshotFromPayload(f.payload, f.rawSize, { keyCount: 0, createdAt: CREATED }), 'a values array declaring 2^32-1 elements; LIMIT');
}

// 5. Zip bombs: a frame that decompresses to 1 GiB behind a header declaring 1 KiB; a header
// declaring 3 GiB (beyond --max-state-bytes); a frame asking for a 1 GiB zstd window.
{
  const w = new zstd.CCtx();
  w.setParameter(zstd.CParameter.compressionLevel, 19);
  const zeros = Buffer.alloc(1 << 20);
  const chunks = [];
  const outBuf = Buffer.alloc(zstd.cStreamOutSize());
  const push = (src, end) => {
    let s = src;
    for (;;) {
      const [remaining, written, read] = w.compressStream2(outBuf, s, end ? zstd.EndDirective.end : zstd.EndDirective.continue);
      chunks.push(Buffer.from(outBuf.subarray(0, written)));
      s = s.subarray(read);
      if (end ? remaining === 0 : s.length === 0) break;
    }
  };
  push(cbor(['raftsnap-state', 1]), false);
  for (let i = 0; i < 1024; i++) push(zeros, false);
  push(Buffer.alloc(0), true);
  const payload = Buffer.concat(chunks);
  write('bomb-1gib.snap', snapshotFromPayload(payload, 1024, { keyCount: 0, createdAt: CREATED }), 'a zstd frame of 1 GiB of zeros behind a header declaring 1 KiB; LIMIT after 1 KiB');

  const small = zstdFrame(stateItems([[1, 1]]).map(cbor));
  write('state-3gib.snap', snapshotFromPayload(small.payload, 3 * 1024 ** 3, { keyCount: 1, createdAt: CREATED }), 'a header declaring 3 GiB decompressed (beyond --max-state-bytes); LIMIT before the payload is read');

  const wc = new zstd.CCtx();
  wc.setParameter(zstd.CParameter.compressionLevel, 3);
  wc.setParameter(zstd.CParameter.windowLog, 30);
  const raw = Buffer.concat(stateItems([[1, 'x'.repeat(100)]]).map(cbor));
  const big = Buffer.alloc(raw.length + 1024);
  const [, n0] = wc.compressStream2(big, raw, zstd.EndDirective.continue);
  const [, n1] = wc.compressStream2(big.subarray(n0), Buffer.alloc(0), zstd.EndDirective.end);
  write('window-1gib.snap', snapshotFromPayload(big.subarray(0, n0 + n1), raw.length, { keyCount: 1, createdAt: CREATED }), 'a zstd frame asking for a 1 GiB window; LIMIT, the window is never allocated');

  write('keys-2p40.snap', snapshotFromItems(stateItems([[1, 1]]), { keyCount: 2 ** 40, createdAt: CREATED }), 'a header declaring 2^40 keys in a payload of a few bytes; LIMIT');

  const pairs = Array.from({ length: 8193 }, (_, i) => [i, i]);
  write('chunk-8193.snap', snapshotFromItems(stateItems(pairs, 10_000), { keyCount: 8193, createdAt: CREATED }), 'a chunk of 8,193 pairs (writers write at most 8,192); LIMIT');
}

// 5b. Format version 2 (docs/FORMAT.md, "Payload"): group items [n, keys, values] with varint columns.
{
  const V2 = { formatVersion: 2 };
  const state = cbor(['raftsnap-state', 2]);
  const v2 = (items, keyCount, what, name) => {
    const f = zstdFrame([state, ...items, cbor({ keyCount })]);
    write(name, snapshotFromPayload(f.payload, f.rawSize, { keyCount, createdAt: CREATED, ...V2 }), what);
  };
  write(
    'v2-value-400mb.snap',
    encodeSnapshot(META, { kv: [[1, 'a'.repeat(400 * 1024 * 1024)]] }, { createdAt: CREATED, nodeId: 'n1', ...V2 }),
    'version 2: an integer key (a delta column) whose value is 400 MB of one letter (encodeSnapshot); LIMIT from the string head',
  );
  const zeros = Buffer.alloc(8193);
  v2([cbor([8193, { base: 0, deltas: zeros }, { ints: zeros }])], 8193, 'version 2: a group of 8,193 pairs (writers write at most 8,192); LIMIT', 'v2-group-8193.snap');
  // A delta column declaring 4 GiB (a byte string head of 2^32) in a payload of a few bytes.
  const head4g = Buffer.from([0x5b, 0, 0, 0, 1, 0, 0, 0, 0]);
  v2(
    [Buffer.concat([Buffer.from([0x83, 0x01, 0xa2]), cbor('base'), cbor(0), cbor('deltas'), head4g])],
    1,
    'version 2: a delta column declaring 4 GiB for one pair; BAD_PAYLOAD before anything is allocated',
    'v2-deltas-4gib.snap',
  );
  // Deltas that add up past 2^53 - 1: every key must be a safe integer.
  const big = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]);
  v2([cbor([2, { base: 2 ** 52, deltas: Buffer.concat([Buffer.from([0]), big]) }, [1, 2]])], 2, 'version 2: delta-coded keys that leave the safe integers; BAD_PAYLOAD', 'v2-keys-past-2p53.snap');
  // A value nested 1,000,000 levels deep in a group's plain values column (raw CBOR).
  v2(
    [Buffer.concat([Buffer.from([0x83, 0x01, 0xa2]), cbor('base'), cbor(7), cbor('deltas'), cbor(Buffer.from([0])), Buffer.from([0x81]), Buffer.alloc(1_000_000, 0x81), Buffer.from([0x00])])],
    1,
    'version 2: a value nested 1,000,000 levels deep in a group (raw CBOR); LIMIT, no stack overflow',
    'v2-deep-1m.snap',
  );
}

// 6. Data directories whose WAL holds an entry over a limit (a valid checksum, a valid commit).
function dataDir(name, entryData, what) {
  const d = path.join(out, name);
  fs.mkdirSync(path.join(d, 'snap'), { recursive: true });
  fs.mkdirSync(path.join(d, 'wal'), { recursive: true });
  fs.writeFileSync(path.join(d, 'meta.json'), JSON.stringify({ format: 'raftsnap-data', version: 1, nodeId: 'n1', created: CREATED, members: ['n1'] }, null, 2) + '\n');
  const recs = [
    encodeRecord({ type: 'hardState', hardState: { term: 1, votedFor: 'n1', commit: 0 } }),
    encodeRecord({ type: 'entry', entry: { index: 1, term: 1, data: null } }),
    walRecord(1, Buffer.concat([Buffer.from([0x83, 0x02, 0x01]), entryData])),
    encodeRecord({ type: 'hardState', hardState: { term: 1, votedFor: 'n1', commit: 2 } }),
  ];
  const seg = Buffer.concat([encodeSegmentHeader(1, 1), ...recs, ...sealBatch(SEGMENT_HEADER_BYTES, recs)]);
  fs.writeFileSync(path.join(d, 'wal', segmentFileName(1, 1)), seg);
  made.push([name + '/', seg.length, what]);
}
dataDir('wal-value-70k', cbor({ op: 'write', key: 'k', value: 'v'.repeat(70_000) }), 'a data directory whose WAL entry 2 writes a 70,000-character value; LIMIT naming the segment and offset');
{
  let d = cbor(0);
  const heads = Buffer.alloc(100, 0x81);
  d = Buffer.concat([Buffer.from([0xa3]), cbor('op'), cbor('write'), cbor('key'), cbor(1), cbor('value'), heads, d]);
  dataDir('wal-deep', d, 'a data directory whose WAL entry 2 writes a value nested 100 levels deep; LIMIT');
}

const lines = made.map(([n, size, what]) => `| ${n} | ${size} | ${what} |`);
fs.writeFileSync(
  path.join(out, 'README.md'),
  `# Hostile fixtures\n\nMade by \`node scripts/make-hostile-fixtures.js\` (after \`npm run build\`); do not edit by hand.\n` +
    `Files with valid checksums that hold or declare more than a reader accepts (docs/FORMAT.md, "Limits").\n` +
    `test/storage/limits-hostile.test.ts runs inspect, inspect --verify and restore on them: each is refused\n` +
    `with one line and a non-zero exit, within 200 MB of memory, and nothing is changed.\n\n` +
    `| file | bytes | what it is |\n|---|---|---|\n${lines.join('\n')}\n`,
);
console.log(`wrote ${made.length} hostile fixtures to ${out}`);
