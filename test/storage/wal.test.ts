import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raft/types.js';
import {
  DiskStorage,
  SEGMENT_HEADER_BYTES,
  encodeRecord,
  encodeSnapshot,
  encodeSegmentHeader,
  listSegmentFiles,
  sealBatch,
  WAL_SECTOR_BYTES,
  parseSegmentFileName,
  readWal,
  scanSegmentBytes,
  segmentFileName,
  type WalRecord,
} from '../../src/storage/index.js';
import { tmpDir } from './helpers.js';

const cmd = (i: number) => ({ op: 'write', key: i % 10, value: i });
const entries = (from: number, to: number, term: number): Entry[] => {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push({ index: i, term, data: cmd(i) });
  return out;
};

describe('WAL records and segments', () => {
  it('encodes and scans every record type', () => {
    const recs: WalRecord[] = [
      { type: 'hardState', hardState: { term: 2, votedFor: 'n1', commit: 0 } },
      { type: 'entry', entry: { index: 1, term: 2, data: null } },
      { type: 'entry', entry: { index: 2, term: 2, data: { op: 'cas', key: [1, '1'], from: 1, to: { a: 1 } } } },
      { type: 'snapshot', index: 2, term: 2, file: 'x.snap' },
      { type: 'hardState', hardState: { term: 3, votedFor: null, commit: 2 } },
    ];
    const body = recs.map(encodeRecord);
    const buf = Buffer.concat([encodeSegmentHeader(1, 1), ...body, ...sealBatch(SEGMENT_HEADER_BYTES, body)]);
    const scan = scanSegmentBytes(buf, 'seg');
    expect(scan.damage).toBeNull();
    expect(scan.header).toEqual({ version: 2, seq: 1, firstIndex: 1 });
    expect(scan.records.map((r) => r.record)).toEqual(recs);
    expect(scan.records[0]!.offset).toBe(SEGMENT_HEADER_BYTES);
    expect(scan.validEnd).toBe(buf.length);
    expect(scan.sealedEnd).toBe(buf.length);
    // The commit record sits on a 512-byte boundary, after zero padding.
    const boundary = buf.length - (buf.length % WAL_SECTOR_BYTES);
    expect(buf.readUInt32BE(boundary) + 8).toBe(buf.length - boundary);
    // Version 1 (no commit records) is read too.
    const v1 = scanSegmentBytes(Buffer.concat([encodeSegmentHeader(1, 1, 1), ...body]), 'seg');
    expect(v1.header!.version).toBe(1);
    expect(v1.records.map((r) => r.record)).toEqual(recs);
    expect(v1.damage).toBeNull();
  });

  it('names segments <seq>-<firstIndex>.wal', () => {
    expect(segmentFileName(3, 4097)).toBe('0000000000000003-0000000000001001.wal');
    expect(parseSegmentFileName('0000000000000003-0000000000001001.wal')).toEqual({ seq: 3, firstIndex: 4097 });
  });

  it('version 2: damage with a commit record after it is corruption, without one a torn tail', () => {
    const recs = [1, 2, 3].map((i) => encodeRecord({ type: 'entry', entry: { index: i, term: 1, data: cmd(i) } }));
    const first = Buffer.concat([encodeSegmentHeader(1, 1), recs[0]!, ...sealBatch(SEGMENT_HEADER_BYTES, [recs[0]!])]);
    const second = [recs[1]!, recs[2]!];
    const whole = Buffer.concat([first, ...second, ...sealBatch(first.length, second)]);
    expect(scanSegmentBytes(whole, 'seg').damage).toBeNull();
    // Garbage in the second write, not sealed (a crash before its commit reached the disk): torn.
    const torn = Buffer.from(whole.subarray(0, first.length + recs[1]!.length + 5));
    torn[torn.length - 2] ^= 0xff;
    expect(scanSegmentBytes(torn, 'seg').damage).toMatchObject({ tailOnly: true, offset: first.length + recs[1]!.length });
    // The same bytes sealed by their commit: they had been synced, so this is bit rot.
    const rot = Buffer.from(whole);
    rot[first.length + recs[1]!.length + 12] ^= 0x01;
    expect(scanSegmentBytes(rot, 'seg').damage).toMatchObject({ tailOnly: false, offset: first.length + recs[1]!.length });
    // Bit rot in the first write (its commit follows), likewise.
    const early = Buffer.from(whole);
    early[SEGMENT_HEADER_BYTES + 12] ^= 0x01;
    expect(scanSegmentBytes(early, 'seg').damage).toMatchObject({ tailOnly: false, offset: SEGMENT_HEADER_BYTES });
    // The zero padding changed: the commit's own checksum covers it.
    const pad = Buffer.from(whole);
    expect(first.readUInt32BE(WAL_SECTOR_BYTES) + 8).toBe(first.length - WAL_SECTOR_BYTES); // the first commit, at 512
    pad[WAL_SECTOR_BYTES - 3] = 7;
    expect(scanSegmentBytes(pad, 'seg').damage).toMatchObject({ tailOnly: false, offset: SEGMENT_HEADER_BYTES + recs[0]!.length });
  });

  it('version 1: tells a torn tail (cut short, nothing valid after) from damage (valid records after, or a complete record)', () => {
    const recs = [1, 2, 3].map((i) => encodeRecord({ type: 'entry', entry: { index: i, term: 1, data: cmd(i) } }));
    const whole = Buffer.concat([encodeSegmentHeader(1, 1, 1), ...recs]);
    const torn = whole.subarray(0, whole.length - 3);
    const t = scanSegmentBytes(torn, 'seg');
    expect(t.records.length).toBe(2);
    expect(t.damage).toMatchObject({ tailOnly: true, offset: SEGMENT_HEADER_BYTES + recs[0]!.length + recs[1]!.length });
    expect(t.validEnd).toBe(t.damage!.offset);

    const mid = Buffer.from(whole);
    mid[SEGMENT_HEADER_BYTES + 12] ^= 0xff; // inside record 1's payload
    const m = scanSegmentBytes(mid, 'seg');
    expect(m.records.length).toBe(0);
    expect(m.damage).toMatchObject({ tailOnly: false, offset: SEGMENT_HEADER_BYTES });

    const zeros = Buffer.concat([whole, Buffer.alloc(100)]);
    expect(scanSegmentBytes(zeros, 'seg').damage).toMatchObject({ tailOnly: true, offset: whole.length });

    const lastBad = Buffer.from(whole);
    lastBad[lastBad.length - 2] ^= 0x01; // complete last record, checksum fails: not a torn write
    expect(scanSegmentBytes(lastBad, 'seg').damage).toMatchObject({ tailOnly: false, offset: whole.length - recs[2]!.length });
  });
});

describe('WAL through DiskStorage', () => {
  it('an entry at or below the last index replaces the log from there on', () => {
    const dir = tmpDir();
    const s = DiskStorage.open(dir, { fsync: false });
    s.recover();
    s.append(entries(1, 10, 1));
    s.setHardState({ term: 1, votedFor: 'n1', commit: 3 });
    s.sync();
    s.append(entries(6, 8, 2)); // conflicting suffix 6..10 replaced by 6..8 of term 2
    s.setHardState({ term: 2, votedFor: 'n2', commit: 5 });
    s.sync();
    s.close();
    const r = DiskStorage.open(dir, { fsync: false });
    const rec = r.recover();
    expect(rec.entries.map((e) => [e.index, e.term])).toEqual([
      ...[1, 2, 3, 4, 5].map((i) => [i, 1]),
      [6, 2],
      [7, 2],
      [8, 2],
    ]);
    expect(rec.hardState).toEqual({ term: 2, votedFor: 'n2', commit: 5 });
    r.close();
  });

  it('refuses an append that would leave a gap', () => {
    const s = DiskStorage.open(tmpDir(), { fsync: false });
    s.recover();
    s.append(entries(1, 3, 1));
    expect(() => s.append(entries(5, 6, 1))).toThrow(/gap/);
    s.close();
  });

  it('buffers until sync: unsynced records are lost on a crash', () => {
    const dir = tmpDir();
    const s = DiskStorage.open(dir, { fsync: false });
    s.recover();
    s.append(entries(1, 3, 1));
    s.sync();
    s.append(entries(4, 5, 1));
    expect(s.recover().entries.length).toBe(3); // recover() = restart: buffered records dropped
    s.close();
  });

  it('rotates at the size limit, each new segment starting with the hard state; deletes covered segments', () => {
    const dir = tmpDir();
    const s = DiskStorage.open(dir, { fsync: false, segmentBytes: 600 });
    s.recover();
    for (let i = 1; i <= 200; i += 5) {
      s.append(entries(i, i + 4, 1));
      s.setHardState({ term: 1, votedFor: 'n1', commit: i });
      s.sync();
    }
    const segs = listSegmentFiles(path.join(dir, 'wal'));
    expect(segs.length).toBeGreaterThan(5);
    expect(segs.map((x) => x.seq)).toEqual(segs.map((_, i) => i + 1));
    // Each segment after the first begins with a hard state, and file names carry the first index.
    for (const seg of segs.slice(1)) {
      const first = [...readWal([seg.path])][0]!;
      expect(first.type).toBe('hardState');
      const firstEntry = [...readWal([seg.path])].find((x) => x.type === 'entry');
      if (firstEntry && firstEntry.type === 'entry') expect(firstEntry.entry.index).toBe(seg.firstIndex);
    }
    const before = s.stats();
    expect(before.logEntries).toBe(200);
    // Without a snapshot nothing can be deleted (recovery would have nothing to start from).
    expect(s.compactLog(150)).toBe(0);
    // Take a snapshot at 150, then compact.
    s.saveSnapshot({ index: 150, term: 1, config: ['n1'] }, encodeSnapshot({ index: 150, term: 1, config: ['n1'] }, { kv: [[1, 1]] }, { createdAt: 0 }));
    const dropped = s.compactLog(150);
    expect(dropped).toBeGreaterThan(0);
    const after = listSegmentFiles(path.join(dir, 'wal'));
    expect(after.length).toBeLessThan(segs.length);
    // Every remaining entry is needed or newer; no deleted segment held an entry above 150.
    const remaining = [...readWal(path.join(dir, 'wal'))].filter((x) => x.type === 'entry');
    expect(Math.min(...remaining.map((x) => (x.type === 'entry' ? x.entry.index : 0)))).toBeLessThanOrEqual(151);
    expect(s.stats().logEntries).toBe(200 - dropped);
    s.close();
    const r = DiskStorage.open(dir, { fsync: false });
    const rec = r.recover();
    expect(rec.snapshot!.meta.index).toBe(150);
    expect(rec.entries.map((e) => e.index)).toEqual(entries(151, 200, 1).map((e) => e.index));
    expect(rec.hardState.commit).toBe(196);
    r.close();
  });

  it('the streaming reader yields records with file and offset', () => {
    const dir = tmpDir();
    const s = DiskStorage.open(dir, { fsync: false });
    s.recover();
    s.append(entries(1, 4, 1));
    s.sync();
    s.close();
    const items = [...readWal(path.join(dir, 'wal'))];
    const seg = listSegmentFiles(path.join(dir, 'wal'))[0]!;
    expect(items.every((i) => i.file === seg.path)).toBe(true);
    expect(items[0]).toMatchObject({ type: 'hardState', offset: SEGMENT_HEADER_BYTES });
    const es = items.filter((i) => i.type === 'entry');
    expect(es.length).toBe(4);
    const raw = fs.readFileSync(seg.path);
    for (const e of es) expect(raw.readUInt32BE(e.offset) + 8).toBe(e.size);
  });
});
