/**
 * Recovery refuses what it cannot prove. Only an incomplete tail (what a crash leaves: a prefix of
 * the last unsynced write, at 512-byte sector granularity, the last sector kept possibly garbled)
 * is cut as torn; damage to bytes that were synced (bit rot), at the end of the log or in the
 * middle, is CORRUPT_WAL with the file and offset. docs/FORMAT.md, "Torn or corrupt".
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raft/types.js';
import {
  DataDir,
  DiskStorage,
  MemFs,
  StorageError,
  WAL_SECTOR_BYTES,
  encodeRecord,
  encodeSegmentHeader,
  encodeSnapshot,
  listSegmentFiles,
  nodeFs,
  readWal,
  type FileSystem,
} from '../../src/storage/index.js';
import { Random } from '../../src/cluster/random.js';
import { verifyPath } from '../../src/tools/inspect.js';
import { tmpDir } from './helpers.js';

const entries = (from: number, to: number, term = 1): Entry[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ index: from + i, term, data: { op: 'write', key: from + i, value: 'v'.repeat((from + i) % 97) } }));

function err(f: () => unknown): StorageError {
  try {
    f();
  } catch (e) {
    if (e instanceof StorageError) return e;
    throw e;
  }
  throw new Error('expected a StorageError');
}

const DIR = '/d';

/** Five synced batches of entries on a fresh MemFs: batch b holds entries 10b-9..10b and a hard state committing 10b-5. */
function fiveBatches(): MemFs {
  const mem = new MemFs(() => 0);
  const s = DiskStorage.open(DIR, { fs: mem, createdAt: 0, nodeId: 'n1' });
  s.recover();
  for (let b = 1; b <= 5; b++) {
    s.append(entries(10 * b - 9, 10 * b));
    s.setHardState({ term: 1, votedFor: 'n1', commit: 10 * b - 5 });
    s.sync();
  }
  s.close();
  return mem;
}

function lastSegment(fsys: FileSystem): string {
  const segs = listSegmentFiles(path.join(DIR, 'wal'), { fs: fsys });
  return segs[segs.length - 1]!.path;
}

function setBytes(fsys: FileSystem, file: string, bytes: Uint8Array): void {
  const fd = fsys.open(file, 'w');
  fsys.write(fd, bytes, 0, bytes.length);
  fsys.close(fd);
}

function flip(fsys: FileSystem, file: string, offset: number, bit = 0): void {
  const b = fsys.readFile(file);
  b[offset] = b[offset]! ^ (1 << bit);
  setBytes(fsys, file, b);
}

function recoverRo(fsys: FileSystem) {
  return DataDir.open(DIR, { fs: fsys }).recover();
}

function recoverRepair(fsys: FileSystem) {
  const dd = DataDir.open(DIR, { fs: fsys, mode: 'write' });
  try {
    return dd.recover({ repair: true, now: 1 });
  } finally {
    dd.close();
  }
}

describe('bit rot in synced records is corruption, never a torn tail', () => {
  it('a flipped bit in the last synced entry is CORRUPT_WAL naming file and offset (it was acknowledged)', () => {
    const mem = fiveBatches();
    const seg = lastSegment(mem);
    const last = [...readWal([seg], { fs: mem })].filter((x) => x.type === 'entry').at(-1)!;
    expect(last.type === 'entry' && last.entry.index).toBe(50);
    flip(mem, seg, last.offset + 12);
    const before = mem.readFile(seg);
    for (const rec of [() => recoverRo(mem), () => recoverRepair(mem)]) {
      const e = err(rec);
      expect(e.code).toBe('CORRUPT_WAL');
      expect(e.file).toBe(seg);
      expect(e.offset).toBe(last.offset);
      expect(e.message).toContain(`(at offset ${last.offset})`);
    }
    expect(mem.readFile(seg).equals(before)).toBe(true);
  });

  it('a flipped bit in the last synced hard state (a vote) is CORRUPT_WAL', () => {
    const mem = fiveBatches();
    const seg = lastSegment(mem);
    const hs = [...readWal([seg], { fs: mem })].filter((x) => x.type === 'hardState').at(-1)!;
    flip(mem, seg, hs.offset + 10, 3);
    expect(err(() => recoverRo(mem))).toMatchObject({ code: 'CORRUPT_WAL', file: seg, offset: hs.offset });
  });

  it('a flipped bit in the length of the last synced record (it now runs past the end) is CORRUPT_WAL', () => {
    const mem = fiveBatches();
    const seg = lastSegment(mem);
    const hs = [...readWal([seg], { fs: mem })].filter((x) => x.type === 'hardState').at(-1)!;
    flip(mem, seg, hs.offset + 1, 6); // length += 2^22
    expect(err(() => recoverRo(mem))).toMatchObject({ code: 'CORRUPT_WAL', file: seg, offset: hs.offset });
  });

  it('a sector of synced records zeroed (a lost write) is CORRUPT_WAL', () => {
    const mem = fiveBatches();
    const seg = lastSegment(mem);
    const b = mem.readFile(seg);
    b.fill(0, WAL_SECTOR_BYTES, 2 * WAL_SECTOR_BYTES);
    setBytes(mem, seg, b);
    expect(err(() => recoverRo(mem)).code).toBe('CORRUPT_WAL');
  });

  it('inspect --verify calls bit rot in the last record a corrupt record, not a torn tail', () => {
    const dir = path.join(tmpDir(), 'd');
    const s = DiskStorage.open(dir, { fsync: false });
    s.recover();
    s.append(entries(1, 10));
    s.setHardState({ term: 1, votedFor: 'n1', commit: 10 });
    s.sync();
    s.close();
    const seg = listSegmentFiles(path.join(dir, 'wal'))[0]!.path;
    const last = [...readWal([seg])].filter((x) => x.type === 'hardState').at(-1)!;
    flip(nodeFs, seg, last.offset + 10);
    const v = verifyPath(dir);
    expect(v.ok).toBe(false);
    const check = v.checks.find((c) => c.file === seg)!;
    expect(check.ok).toBe(false);
    expect(check.detail).toMatch(new RegExp(`^corrupt record at offset ${last.offset}: record checksum mismatch`));
  });
});

describe('what a crash leaves is a torn tail, cut, and nothing synced is lost', () => {
  /**
   * Every crash state of the sixth sync (a batch of entries 51..60): the file keeps the bytes synced
   * by the fifth, plus a prefix of the sixth's bytes ending at a sector boundary or at its end; the
   * last sector kept may be garbled (random, zeros, half random, all ones) where it was not synced.
   */
  it('every sector-granular prefix of the last write, with its last sector garbled any way, recovers batches 1..5', () => {
    const base = fiveBatches();
    const seg = lastSegment(base);
    const synced = base.readFile(seg);
    const s = DiskStorage.open(DIR, { fs: base });
    s.recover();
    s.append(entries(51, 60));
    s.setHardState({ term: 1, votedFor: 'n1', commit: 55 });
    s.sync();
    s.close();
    const full = base.readFile(seg);
    expect(full.length).toBeGreaterThan(synced.length + WAL_SECTOR_BYTES);
    const cuts = new Set<number>([synced.length, full.length]);
    for (let c = Math.ceil(synced.length / WAL_SECTOR_BYTES) * WAL_SECTOR_BYTES; c < full.length; c += WAL_SECTOR_BYTES) cuts.add(c);
    const random = new Random(7);
    const rnd = () => random.next();
    const garbles: Array<[string, (b: Buffer, from: number, to: number) => void]> = [
      ['intact', () => {}],
      ['random', (b, f, t) => { for (let i = f; i < t; i++) b[i] = Math.floor(rnd() * 256); }],
      ['zeros', (b, f, t) => b.fill(0, f, t)],
      ['ones', (b, f, t) => b.fill(0xff, f, t)],
      ['first half random', (b, f, t) => { for (let i = f; i < f + Math.floor((t - f) / 2); i++) b[i] = Math.floor(rnd() * 256); }],
      ['second half random', (b, f, t) => { for (let i = f + Math.floor((t - f) / 2); i < t; i++) b[i] = Math.floor(rnd() * 256); }],
      ['one bit', (b, f, t) => { if (t > f) b[f + Math.floor((t - f) / 3)] ^= 0x10; }],
    ];
    let states = 0;
    for (const c of [...cuts].sort((a, b) => a - b)) {
      for (const [name, garble] of garbles) {
        const bytes = Buffer.from(full.subarray(0, c));
        const sectorStart = Math.max(synced.length, Math.floor((c - 1) / WAL_SECTOR_BYTES) * WAL_SECTOR_BYTES);
        if (c > synced.length) garble(bytes, sectorStart, c);
        for (const n of base.readdir(path.join(DIR, 'wal'))) if (n.includes('.torn-')) base.unlink(path.join(DIR, 'wal', n));
        setBytes(base, seg, bytes);
        const where = `cut at ${c}, last sector ${name}`;
        let r;
        try {
          r = recoverRepair(base);
        } catch (e) {
          throw new Error(`${where}: ${(e as Error).message}`);
        }
        const got = r.entries.map((e) => e.index);
        expect(got.slice(0, 50), where).toEqual(entries(1, 50).map((e) => e.index));
        expect(got, where).toEqual(entries(1, got.length).map((e) => e.index));
        expect(r.hardState.commit, where).toBeGreaterThanOrEqual(45);
        // After the repair the directory is clean, and appending works.
        expect(recoverRo(base).warnings, where).toEqual([]);
        states++;
      }
    }
    expect(states).toBeGreaterThan(20);
  });

  it('an unwritten (zero) region running to the end is torn', () => {
    const mem = fiveBatches();
    const seg = lastSegment(mem);
    const b = mem.readFile(seg);
    setBytes(mem, seg, Buffer.concat([b, Buffer.alloc(1500)]));
    const r = recoverRo(mem);
    expect(r.warnings.map((w) => w.kind)).toEqual(['torn-tail']);
    expect(r.entries.length).toBe(50);
  });
});

describe('the hard state must not commit beyond what recovery holds', () => {
  it('a commit index beyond the recovered log is COMMIT_BEYOND_LOG naming the file', () => {
    const mem = new MemFs();
    const s = DiskStorage.open(DIR, { fs: mem });
    s.recover();
    s.append(entries(1, 10));
    s.setHardState({ term: 1, votedFor: 'n1', commit: 12 });
    s.sync();
    s.close();
    const e = err(() => recoverRo(mem));
    expect(e.code).toBe('COMMIT_BEYOND_LOG');
    expect(e.file).toBe(lastSegment(mem));
    expect(e.message).toMatch(/commit index 12 .*last index 10/);
  });

  it('beyond the snapshot too; a commit below the snapshot is raised to it', () => {
    const mem = new MemFs();
    const s = DiskStorage.open(DIR, { fs: mem });
    s.recover();
    s.append(entries(1, 10));
    s.setHardState({ term: 1, votedFor: 'n1', commit: 5 });
    s.sync();
    const meta = { index: 10, term: 1, config: ['n1'] };
    s.saveSnapshot(meta, encodeSnapshot(meta, { kv: [] }, { createdAt: 0 }));
    s.close();
    expect(recoverRo(mem).hardState.commit).toBe(10);
    const t = DiskStorage.open(DIR, { fs: mem });
    t.recover();
    t.setHardState({ term: 1, votedFor: 'n1', commit: 11 });
    t.sync();
    t.close();
    expect(err(() => recoverRo(mem)).code).toBe('COMMIT_BEYOND_LOG');
  });
});

describe('gaps in the WAL', () => {
  /** Entries 1..100 in small segments, snapshot at 80. */
  function segmented(): MemFs {
    const mem = new MemFs();
    const s = DiskStorage.open(DIR, { fs: mem, segmentBytes: 1200 });
    s.recover();
    for (let i = 1; i <= 100; i += 5) {
      s.append(entries(i, i + 4));
      s.setHardState({ term: 1, votedFor: 'n1', commit: i + 4 });
      s.sync();
    }
    const meta = { index: 80, term: 1, config: ['n1'] };
    s.saveSnapshot(meta, encodeSnapshot(meta, { kv: [[1, 80]] }, { createdAt: 0 }));
    s.close();
    return mem;
  }

  it('a segment missing below the snapshot (unlinks that reached the disk out of order) is harmless', () => {
    const mem = segmented();
    const dd = DataDir.open(DIR, { fs: mem });
    const segs = dd.listSegments();
    expect(segs.length).toBeGreaterThan(4);
    const below = segs.find((x, i) => i > 0 && x.maxIndex < 80 && i < segs.length - 1)!;
    mem.unlink(below.path);
    const r = recoverRo(mem);
    expect(r.snapshot!.header.index).toBe(80);
    expect(r.entries.map((e) => e.index)).toEqual(entries(81, 100).map((e) => e.index));
    expect(r.hardState.commit).toBe(100);
    const st = DiskStorage.open(DIR, { fs: mem });
    expect(st.recover().entries.length).toBe(20);
    st.close();
  });

  it('a segment missing above the snapshot is LOG_GAP naming the entries and the file after the gap', () => {
    const mem = segmented();
    const segs = DataDir.open(DIR, { fs: mem }).listSegments();
    const i = segs.findIndex((x) => x.minIndex > 80);
    expect(i).toBeGreaterThan(0);
    expect(i).toBeLessThan(segs.length - 1);
    mem.unlink(segs[i]!.path);
    const e = err(() => recoverRo(mem));
    expect(e.code).toBe('LOG_GAP');
    expect(e.file).toBe(segs[i + 1]!.path);
    expect(e.message).toMatch(new RegExp(`entries ${segs[i]!.minIndex}\\.\\.${segs[i]!.maxIndex} are missing`));
  });
});

describe('WAL format version 1 is still read', () => {
  function v1(mem: MemFs, records: Buffer[]): string {
    const s = DiskStorage.open(DIR, { fs: mem });
    s.close();
    const file = path.join(DIR, 'wal', '0000000000000001-0000000000000001.wal');
    setBytes(mem, file, Buffer.concat([encodeSegmentHeader(1, 1, 1), ...records]));
    return file;
  }
  const recs = () => [
    encodeRecord({ type: 'hardState', hardState: { term: 1, votedFor: 'n1', commit: 0 } }),
    ...entries(1, 5).map((e) => encodeRecord({ type: 'entry', entry: e })),
    encodeRecord({ type: 'hardState', hardState: { term: 1, votedFor: 'n1', commit: 4 } }),
  ];

  it('recovers a v1 segment and appends after it in a new (current version) segment', () => {
    const mem = new MemFs();
    v1(mem, recs());
    const s = DiskStorage.open(DIR, { fs: mem });
    expect(s.recover().entries.length).toBe(5);
    s.append(entries(6, 7));
    s.sync();
    s.close();
    const segs = listSegmentFiles(path.join(DIR, 'wal'), { fs: mem });
    expect(segs.map((x) => x.seq)).toEqual([1, 2]);
    expect(recoverRo(mem).entries.length).toBe(7);
    expect(recoverRo(mem).hardState.commit).toBe(4);
  });

  it('v1: a record cut short at the end is torn; a complete record whose checksum fails is corrupt', () => {
    const a = new MemFs();
    const r = recs();
    const last = r.at(-1)!;
    v1(a, [...r.slice(0, -1), last.subarray(0, last.length - 3)]);
    expect(recoverRo(a).warnings.map((w) => w.kind)).toEqual(['torn-tail']);
    const b = new MemFs();
    const bad = Buffer.from(last);
    bad[bad.length - 2] ^= 1;
    const file = v1(b, [...r.slice(0, -1), bad]);
    expect(err(() => recoverRo(b))).toMatchObject({ code: 'CORRUPT_WAL', file });
  });
});
