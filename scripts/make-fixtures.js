#!/usr/bin/env node
// Builds fixtures/: small data directories and snapshot files, healthy and damaged, for the tests
// and for trying the offline commands. Deterministic: fixed times, fixed data, fixed temp names;
// re-running gives identical bytes. Needs the compiled library (npm run build).
//
//   node scripts/make-fixtures.js [outDir]      (default: fixtures/ at the repository root)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DiskStorage,
  assembleSnapshot,
  encodeSnapshot,
  listSegmentFiles,
  readSnapshotHeader,
  readWal,
} from '../dist/storage/index.js';
import { KvStore, asKvCommand } from '../dist/kv/index.js';
import { Random } from '../dist/cluster/random.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(process.argv[2] ?? path.join(here, '..', 'fixtures'));
const CREATED = Date.UTC(2024, 0, 2, 3, 4, 5); // fixed creation time of every file
const CONFIG = ['n1', 'n2', 'n3'];
// The files of the first format stay as they were made: format version 1 (docs/FORMAT.md), which
// readers must go on reading. good-v2.snap and good-v3.snap hold good.snap's state in versions 2
// and 3 (3: the version written now).
const V1 = { formatVersion: 1 };

// --- deterministic data --------------------------------------------------------------------

/** 300 log entries of lin-kv commands (a no-op opens each term), terms 1..3. */
function makeLog() {
  const rnd = new Random(7);
  const entries = [];
  let term = 0;
  for (let index = 1; index <= 300; index++) {
    const newTerm = index === 1 || index === 121 || index === 241;
    if (newTerm) {
      term += 1;
      entries.push({ index, term, data: null });
      continue;
    }
    const key = rnd.int(40);
    const r = rnd.next();
    let data;
    if (r < 0.6) data = { op: 'write', key, value: rnd.int(100) };
    else if (r < 0.8) data = { op: 'cas', key, from: rnd.int(100), to: rnd.int(100) };
    else data = { op: 'read', key };
    entries.push({ index, term, data });
  }
  return entries;
}

function stateAt(entries, index) {
  const kv = new KvStore();
  for (const e of entries) {
    if (e.index > index) break;
    const cmd = asKvCommand(e.data);
    if (cmd) kv.apply(cmd);
  }
  return [...kv.entries()];
}

// --- helpers ---------------------------------------------------------------------------------
function rm(p) {
  fs.rmSync(p, { recursive: true, force: true });
}

function flipBit(file, offset, bit = 0) {
  const b = fs.readFileSync(file);
  b[offset] ^= 1 << bit;
  fs.writeFileSync(file, b);
}

function copyDir(from, to) {
  fs.cpSync(from, to, { recursive: true });
}

function lastSegment(dir) {
  const segs = listSegmentFiles(path.join(dir, 'wal'));
  return segs[segs.length - 1].path;
}

// --- snapshot files --------------------------------------------------------------------------
function makeSnapshots(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const kv = [
    [1, 'integer key 1'],
    ['1', 'string key "1"'],
    [[1, 2], { nested: ['array', 'key'] }],
    [{ user: 'ada' }, { visits: 3, tags: ['x', 'y'] }],
    [null, false],
    ['unicode-\u00e9\u4e2d', 'value-\u00fc'],
  ];
  for (let i = 0; i < 200; i++) kv.push([100 + i, i * 3]);
  kv.push(['big', 'x'.repeat(2000)]);
  const meta = { index: 120, term: 3, config: CONFIG };
  const sessions = { c1: { seq: 4, reply: { type: 'write_ok' } } };
  const good = encodeSnapshot(meta, { kv, sessions }, { createdAt: CREATED, nodeId: 'n1', ...V1 });
  const p = (n) => path.join(dir, n);
  fs.writeFileSync(p('good.snap'), good);
  fs.writeFileSync(p('good-v2.snap'), encodeSnapshot(meta, { kv, sessions }, { createdAt: CREATED, nodeId: 'n1', formatVersion: 2 }));
  fs.writeFileSync(p('good-v3.snap'), encodeSnapshot(meta, { kv, sessions }, { createdAt: CREATED, nodeId: 'n1', formatVersion: 3 }));
  const h = readSnapshotHeader(p('good.snap'));

  fs.writeFileSync(p('truncated.snap'), good.subarray(0, h.payloadOffset + Math.floor(h.compressedSize / 2)));
  fs.writeFileSync(p('bitflip-payload.snap'), good);
  flipBit(p('bitflip-payload.snap'), h.payloadOffset + Math.floor(h.compressedSize / 2), 4);
  fs.writeFileSync(p('bad-header-crc.snap'), good);
  flipBit(p('bad-header-crc.snap'), 20, 0);
  // A well-formed file (checksums right) of a format version this build does not know.
  const headerBytes = good.subarray(16, h.payloadOffset - 4);
  fs.writeFileSync(p('future-version.snap'), assembleSnapshot(99, headerBytes, good.subarray(h.payloadOffset)));
  fs.writeFileSync(p('not-a-snapshot.snap'), '{"this": "is JSON, not a raftsnap snapshot"}\n');

  // Two snapshots for `diff`: b changes 2 keys, removes 1, adds 2 (and has another index/term).
  const base = [];
  for (let i = 0; i < 50; i++) base.push([i, i * 10]);
  base.push(['name', 'alpha']);
  const a = encodeSnapshot({ index: 500, term: 4, config: CONFIG }, { kv: base }, { createdAt: CREATED, nodeId: 'n1', ...V1 });
  const bkv = base
    .filter(([k]) => k !== 7)
    .map(([k, v]) => (k === 3 ? [k, 'changed'] : k === 'name' ? [k, 'beta'] : [k, v]));
  bkv.push(['7', 'string seven (integer 7 was removed)'], [[50], { added: true }]);
  const b = encodeSnapshot({ index: 530, term: 5, config: CONFIG }, { kv: bkv }, { createdAt: CREATED + 60_000, nodeId: 'n2', ...V1 });
  fs.writeFileSync(p('diff-a.snap'), a);
  fs.writeFileSync(p('diff-b.snap'), b);
}

// --- data directories ------------------------------------------------------------------------
function makeHealthy(dir, log) {
  const s = DiskStorage.open(dir, { fsync: false, segmentBytes: 2048, retain: 3, nodeId: 'n1', createdAt: CREATED });
  s.recover();
  const snapAt = new Set([100, 200, 250]);
  for (let i = 0; i < log.length; i += 10) {
    const batch = log.slice(i, i + 10);
    s.append(batch);
    const last = batch[batch.length - 1];
    s.setHardState({ term: last.term, votedFor: 'n1', commit: Math.min(last.index, 290) });
    s.sync();
    if (snapAt.has(last.index)) {
      const meta = { index: last.index, term: last.term, config: CONFIG };
      const sessions = { c1: { seq: last.index } };
      s.saveSnapshot(meta, encodeSnapshot(meta, { kv: stateAt(log, last.index), sessions }, { createdAt: CREATED + last.index * 1000, nodeId: 'n1', ...V1 }));
      if (last.index === 200) s.compactLog(100);
    }
  }
  s.close();
}

function main() {
  const names = ['snapshots', 'healthy', 'torn-tail', 'corrupt-mid-wal', 'leftovers', 'locked', 'broken-snapshot', 'README.md'];
  fs.mkdirSync(out, { recursive: true });
  for (const n of names) rm(path.join(out, n));

  makeSnapshots(path.join(out, 'snapshots'));
  const log = makeLog();
  const healthy = path.join(out, 'healthy');
  makeHealthy(healthy, log);

  // torn-tail: the last write of the last segment is cut short (a crash mid-append).
  copyDir(healthy, path.join(out, 'torn-tail'));
  const torn = lastSegment(path.join(out, 'torn-tail'));
  fs.truncateSync(torn, fs.statSync(torn).size - 7);

  // corrupt-mid-wal: a bit flipped inside an entry record with valid records after it.
  copyDir(healthy, path.join(out, 'corrupt-mid-wal'));
  const cseg = lastSegment(path.join(out, 'corrupt-mid-wal'));
  const recs = [...readWal([cseg])].filter((r) => r.type === 'entry');
  flipBit(cseg, recs[Math.floor(recs.length / 2)].offset + 12, 2);

  // leftovers: temporary files of interrupted writes and a partial snapshot receive.
  const lo = path.join(out, 'leftovers');
  copyDir(healthy, lo);
  fs.writeFileSync(path.join(lo, 'snap', '0000000000000003-0000000000000118.snap.tmp-4242-1'), 'interrupted snapshot write');
  fs.writeFileSync(path.join(lo, 'snap', '0000000000000004-0000000000000190.snap.recv'), 'partial transfer from a leader');
  fs.writeFileSync(path.join(lo, 'wal', '0000000000000099-000000000000012d.wal.tmp-4242-2'), 'interrupted segment creation');
  fs.writeFileSync(path.join(lo, 'meta.json.tmp-4242-3'), '{"format": "raftsnap-da');

  // locked: a live node holds the directory (pid 1 is always alive).
  copyDir(healthy, path.join(out, 'locked'));
  fs.writeFileSync(path.join(out, 'locked', 'LOCK'), '1\n');

  // broken-snapshot: the newest snapshot's payload is damaged; recovery falls back to the older one.
  const bs = path.join(out, 'broken-snapshot');
  copyDir(healthy, bs);
  const snaps = fs.readdirSync(path.join(bs, 'snap')).filter((n) => n.endsWith('.snap')).sort();
  const newest = path.join(bs, 'snap', snaps[snaps.length - 1]);
  flipBit(newest, readSnapshotHeader(newest).payloadOffset + 5, 1);

  fs.writeFileSync(path.join(out, 'README.md'), README);
}

const README = `# Fixtures

Made by \`node scripts/make-fixtures.js\` (after \`npm run build\`); deterministic, so re-running it
gives identical bytes (test/storage/fixtures.test.ts checks this). Do not edit by hand.
Formats: docs/FORMAT.md.

## Snapshot files (\`snapshots/\`)

| file | what it is | expected error |
|---|---|---|
| good.snap | index 120, term 3, config n1 n2 n3, node n1, 207 keys of mixed types (\`1\` and \`"1"\`, array, object and null keys, a 2 KB value) and a sessions table; format version 1, as every other file here but good-v2.snap and good-v3.snap | none |
| good-v2.snap | good.snap's state written in format version 2 (integer keys sorted and delta-coded, integer values as varints) | none |
| good-v3.snap | good.snap's state written in format version 3 (version 2's payload in zstd frames: the state item, one chunk of 207 pairs of the shards 0 to 64, the end item; the frame table in the header) | none |
| truncated.snap | good.snap cut in the middle of the payload | TRUNCATED |
| bitflip-payload.snap | good.snap with one bit flipped in the payload | BAD_PAYLOAD_CRC |
| bad-header-crc.snap | good.snap with one bit flipped in the header | BAD_HEADER_CRC |
| future-version.snap | good.snap re-framed as format version 99 (checksums valid) | UNSUPPORTED_VERSION |
| not-a-snapshot.snap | a JSON text file | NOT_SNAPSHOT |
| diff-a.snap | index 500, term 4: keys 0..49 (value 10*k) and "name" = "alpha" | none |
| diff-b.snap | index 530, term 5, node n2: like diff-a but key 3 and "name" changed, integer key 7 removed, string key "7" and array key [50] added | none |

## Data directories

All hold node n1's state after 300 log entries of lin-kv commands (\`{op: 'write'|'cas'|'read', ...}\`,
a no-op \`null\` opening each of terms 1, 2, 3), with snapshots at indexes 100, 200 and 250, WAL
segments of about 2 KB written 10 entries per sync (segments 1 to 3, entries 1..90, were deleted by
log compaction after the snapshot at 200, so wal/ starts with segment 4), and a last hard state of
term 3, voted for n1, commit 290.

| directory | what is wrong | recovery |
|---|---|---|
| healthy/ | nothing | snapshot 250 + entries 251..300, commit 290 |
| torn-tail/ | the last WAL segment lost its last 7 bytes (a crash during the last write: its commit record is incomplete) | warnings (torn tail, unsealed records); with repair the tail is cut after copying the segment to \`*.torn-<ms>\`, and the complete records of that write are kept and sealed with a commit record |
| corrupt-mid-wal/ | one bit flipped in an entry record in the middle of the last segment, valid records and commit records after it | CORRUPT_WAL naming the segment and offset |
| leftovers/ | orphaned temporary files (\`*.tmp-4242-N\`) in the directory, snap/ and wal/, and a partial receive \`snap/*.snap.recv\` | warnings; removed with repair |
| locked/ | \`LOCK\` holds pid 1, a live process | write mode refused (LOCKED); read mode reads it and reports the lock |
| broken-snapshot/ | the newest snapshot (index 250) has a flipped payload bit | falls back to snapshot 200 (renamed \`*.broken\` with repair) |
`;

main();
console.log(`fixtures written to ${out}`);
