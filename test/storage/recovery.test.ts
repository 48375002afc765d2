import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Entry, Json } from '../../src/raft/types.js';
import {
  DataDir,
  DiskStorage,
  StorageError,
  RECORD_COMMIT,
  encodeSnapshot,
  listSegmentFiles,
  readWal,
  readSnapshotHeader,
} from '../../src/storage/index.js';
import { flipBit, tmpDir } from './helpers.js';

const entries = (from: number, to: number, term: number): Entry[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ index: from + i, term, data: { op: 'write', key: from + i, value: i } }));

const snap = (index: number, term: number, kv: Array<[Json, Json]>) =>
  encodeSnapshot({ index, term, config: ['n1', 'n2', 'n3'] }, { kv }, { createdAt: 1700000000000 });

/** A directory with snapshots at 20 and 40 and entries 1..60, hard state commit 55. */
function populated(segmentBytes = 1 << 20): string {
  const dir = path.join(tmpDir(), 'data');
  const s = DiskStorage.open(dir, { fsync: false, segmentBytes, nodeId: 'n1' });
  s.recover();
  s.append(entries(1, 40, 1));
  s.setHardState({ term: 1, votedFor: 'n1', commit: 40 });
  s.sync();
  s.saveSnapshot({ index: 20, term: 1, config: ['n1', 'n2', 'n3'] }, snap(20, 1, [[1, 20]]));
  s.saveSnapshot({ index: 40, term: 1, config: ['n1', 'n2', 'n3'] }, snap(40, 1, [[1, 40]]));
  s.append(entries(41, 60, 1));
  s.setHardState({ term: 1, votedFor: 'n1', commit: 55 });
  s.sync();
  s.close();
  return dir;
}

function listAll(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const n of fs.readdirSync(d).sort()) {
      const p = path.join(d, n);
      if (fs.statSync(p).isDirectory()) walk(p);
      else out[path.relative(dir, p)] = fs.readFileSync(p).toString('base64');
    }
  };
  walk(dir);
  return out;
}

function lastSegment(dir: string): string {
  const segs = listSegmentFiles(path.join(dir, 'wal'));
  return segs[segs.length - 1]!.path;
}

function err(f: () => unknown): StorageError {
  try {
    f();
  } catch (e) {
    if (e instanceof StorageError) return e;
    throw e;
  }
  throw new Error('expected a StorageError');
}

describe('recovery', () => {
  it('loads the newest snapshot and replays the WAL after it', () => {
    const dir = populated();
    const dd = DataDir.open(dir);
    const r = dd.recover();
    expect(r.snapshot!.header.index).toBe(40);
    expect(r.snapshot!.content!.kv).toEqual([[1, 40]]);
    expect(r.entries.map((e) => e.index)).toEqual(entries(41, 60, 1).map((e) => e.index));
    expect(r.hardState).toEqual({ term: 1, votedFor: 'n1', commit: 55 });
    expect(r.warnings).toEqual([]);
    expect(r.markers.map((m) => m.index)).toEqual([20, 40]);
  });

  it('falls back from a broken snapshot: read-only warns, repair renames it *.broken', () => {
    const dir = populated();
    const newest = path.join(dir, 'snap', '0000000000000001-0000000000000028.snap');
    flipBit(newest, readSnapshotHeader(newest).payloadOffset + 2);
    const before = listAll(dir);
    const ro = DataDir.open(dir).recover();
    expect(listAll(dir)).toEqual(before);
    expect(ro.snapshot!.header.index).toBe(20);
    expect(ro.entries[0]!.index).toBe(21);
    expect(ro.entries.length).toBe(40);
    expect(ro.warnings.map((w) => w.kind)).toEqual(['broken-snapshot']);
    expect(ro.warnings[0]!.message).toMatch(/payload checksum mismatch.*would rename it to .*\.snap\.broken, falling back to 0000000000000001-0000000000000014\.snap/);

    const dd = DataDir.open(dir, { mode: 'write' });
    const rw = dd.recover({ repair: true });
    dd.close();
    expect(rw.snapshot!.header.index).toBe(20);
    expect(rw.repaired).toBe(true);
    expect(fs.existsSync(newest)).toBe(false);
    expect(fs.existsSync(newest + '.broken')).toBe(true);
    expect(DataDir.open(dir).recover().warnings).toEqual([]);
  });

  it('cuts a torn tail after keeping a copy (repair), and only reports it read-only', () => {
    const dir = populated();
    const seg = lastSegment(dir);
    const full = fs.readFileSync(seg);
    const hs = [...readWal([seg])].filter((x) => x.type === 'hardState').at(-1)!;
    const cut = hs.offset + hs.size - 5;
    fs.truncateSync(seg, cut); // the last write cut short in its last record (the hard state)
    const before = listAll(dir);
    const ro = DataDir.open(dir).recover();
    expect(listAll(dir)).toEqual(before);
    expect(ro.warnings.map((w) => w.kind)).toEqual(['torn-tail', 'unsealed-tail']);
    expect(ro.warnings[0]!.offset).toBe(hs.offset);
    expect(ro.warnings[0]!.message).toMatch(/torn tail at offset \d+ .*recovery would cut \d+ bytes/);
    expect(ro.warnings[1]!.message).toMatch(/were written by a sync that never completed .*recovery would keep them and seal them/);
    expect(ro.hardState.commit).toBe(40); // the torn hard state is not used

    const dd = DataDir.open(dir, { mode: 'write' });
    const rw = dd.recover({ repair: true, now: 1234 });
    dd.close();
    expect(rw.entries.length).toBe(20);
    expect(fs.readFileSync(seg + '.torn-1234').equals(full.subarray(0, cut))).toBe(true);
    // Cut at the torn record, then sealed: padding and a commit record on the next 512-byte boundary.
    expect(fs.readFileSync(seg).subarray(0, hs.offset).equals(full.subarray(0, hs.offset))).toBe(true);
    const sealed = fs.readFileSync(seg);
    const boundary = sealed.length - (sealed.length % 512);
    expect(sealed.readUInt32BE(boundary) + 8).toBe(sealed.length - boundary); // one record, from the boundary to the end
    expect(sealed[boundary + 8]).toBe(RECORD_COMMIT);
    const again = DataDir.open(dir).recover();
    expect(again.warnings).toEqual([]);
    // Appending after the cut works.
    const s = DiskStorage.open(dir, { fsync: false });
    s.recover();
    s.append(entries(61, 62, 2));
    s.sync();
    s.close();
    expect(DataDir.open(dir).recover().entries.at(-1)!.index).toBe(62);
  });

  it('a bit flip in the last commit record costs nothing: it is cut, the records it covered kept and sealed again', () => {
    const dir = populated();
    const seg = lastSegment(dir);
    const size = fs.statSync(seg).size;
    flipBit(seg, size - 2);
    const r = DataDir.open(dir).recover();
    expect(r.warnings.map((w) => w.kind)).toEqual(['torn-tail', 'unsealed-tail']);
    expect(r.entries.length).toBe(20);
    expect(r.hardState.commit).toBe(55);
    const dd = DataDir.open(dir, { mode: 'write' });
    dd.recover({ repair: true });
    dd.close();
    expect(DataDir.open(dir).recover().warnings).toEqual([]);
  });

  it('a bit flip in the last record before the commit (synced, acknowledged) is CORRUPT_WAL', () => {
    const dir = populated();
    const seg = lastSegment(dir);
    const hs = [...readWal([seg])].filter((x) => x.type === 'hardState').at(-1)!;
    flipBit(seg, hs.offset + hs.size - 1);
    expect(err(() => DataDir.open(dir).recover())).toMatchObject({ code: 'CORRUPT_WAL', offset: hs.offset });
  });

  it('a checksum failure in the middle of the log is CORRUPT_WAL naming file and offset, with or without repair', () => {
    const dir = populated();
    const seg = lastSegment(dir);
    const items = [...(DataDir.open(dir).listSegments())];
    expect(items.at(-1)!.entryCount).toBe(60);
    // Damage the 10th entry record's payload.
    const rec = [...readWal([seg])].filter((x) => x.type === 'entry')[9]!;
    flipBit(seg, rec.offset + 10);
    const before = listAll(dir);
    const e = err(() => DataDir.open(dir).recover());
    expect(e.code).toBe('CORRUPT_WAL');
    expect(e.file).toBe(seg);
    expect(e.offset).toBe(rec.offset);
    expect(e.message).toContain(seg);
    expect(e.message).toContain(`offset ${rec.offset}`);
    const dd = DataDir.open(dir, { mode: 'write' });
    expect(err(() => dd.recover({ repair: true })).code).toBe('CORRUPT_WAL');
    dd.close();
    expect(listAll(dir)).toEqual(before);
  });

  it('damage in a segment that is not the last is CORRUPT_WAL even at its end', () => {
    const dir = populated(400);
    const segs = listSegmentFiles(path.join(dir, 'wal'));
    expect(segs.length).toBeGreaterThan(2);
    fs.truncateSync(segs[0]!.path, fs.statSync(segs[0]!.path).size - 3);
    expect(err(() => DataDir.open(dir).recover()).code).toBe('CORRUPT_WAL');
  });

  it('removes orphaned temporary files and partial receives with repair only', () => {
    const dir = populated();
    const leftovers = [
      path.join(dir, 'snap', '0000000000000002-0000000000000050.snap.tmp-99999-1'),
      path.join(dir, 'wal', '0000000000000009-0000000000000099.wal.tmp-99999-2'),
      path.join(dir, 'meta.json.tmp-99999-3'),
      path.join(dir, 'snap', '0000000000000002-0000000000000050.snap.recv'),
    ];
    for (const f of leftovers) fs.writeFileSync(f, 'partial');
    const ro = DataDir.open(dir).recover();
    expect(ro.warnings.map((w) => w.kind).sort()).toEqual(['partial-receive', 'temp-file', 'temp-file', 'temp-file']);
    for (const f of leftovers) expect(fs.existsSync(f)).toBe(true);
    const dd = DataDir.open(dir, { mode: 'write' });
    expect(dd.leftovers().length).toBe(4);
    dd.recover({ repair: true });
    dd.close();
    for (const f of leftovers) expect(fs.existsSync(f)).toBe(false);
  });

  it('repair needs write mode', () => {
    const dir = populated();
    expect(err(() => DataDir.open(dir).recover({ repair: true })).code).toBe('INVALID');
  });

  it('reports a gap when every snapshot covering compacted log is broken', () => {
    const dir = path.join(tmpDir(), 'd');
    const s = DiskStorage.open(dir, { fsync: false, segmentBytes: 300 });
    s.recover();
    s.append(entries(1, 30, 1));
    s.sync();
    s.saveSnapshot({ index: 30, term: 1, config: ['n1'] }, snap(30, 1, []));
    s.append(entries(31, 35, 1));
    s.sync();
    s.pruneSnapshots(1);
    expect(s.compactLog(30)).toBeGreaterThan(0);
    s.close();
    const f = path.join(dir, 'snap', '0000000000000001-000000000000001e.snap');
    flipBit(f, fs.statSync(f).size - 1);
    const e = err(() => DataDir.open(dir).recover());
    expect(e.code).toBe('LOG_GAP');
    expect(e.message).toMatch(/needs log entries from index 1 but the WAL starts at index \d+/);
  });
});

describe('data directory', () => {
  it('creates the documented layout', () => {
    const dir = path.join(tmpDir(), 'new');
    const dd = DataDir.create(dir, { nodeId: 'n3', createdAt: 5, fsync: false });
    expect(fs.readdirSync(dir).sort()).toEqual(['LOCK', 'meta.json', 'snap', 'wal']);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'))).toEqual({ format: 'raftsnap-data', version: 1, nodeId: 'n3', created: 5 });
    expect(fs.readFileSync(path.join(dir, 'LOCK'), 'utf8').trim()).toBe(String(process.pid));
    dd.close();
    expect(fs.existsSync(path.join(dir, 'LOCK'))).toBe(false);
  });

  it('refuses a live lock in write mode, reads anyway in read mode', () => {
    const dir = populated();
    fs.writeFileSync(path.join(dir, 'LOCK'), '1\n'); // pid 1 is always alive
    const e = err(() => DataDir.open(dir, { mode: 'write' }));
    expect(e.code).toBe('LOCKED');
    expect(e.message).toBe(`${dir}: data directory is locked by live process 1 (LOCK); stop that node first or use a read-only command`);
    const ro = DataDir.open(dir);
    expect(ro.lockedBy).toBe(1);
    expect(ro.recover().entries.length).toBe(20);
    expect(fs.readFileSync(path.join(dir, 'LOCK'), 'utf8')).toBe('1\n');
    // The same process holding it also counts as live.
    fs.unlinkSync(path.join(dir, 'LOCK'));
    const a = DiskStorage.open(dir, { fsync: false });
    expect(err(() => DiskStorage.open(dir, { fsync: false })).code).toBe('LOCKED');
    a.close();
    DiskStorage.open(dir, { fsync: false }).close();
  });

  it('takes over a stale lock (dead pid)', () => {
    const dir = populated();
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const dead = Number(child.stdout.toString());
    fs.writeFileSync(path.join(dir, 'LOCK'), `${dead}\n`);
    const ro = DataDir.open(dir);
    expect(ro.lockedBy).toBeNull();
    expect(ro.staleLockPid).toBe(dead);
    expect(ro.recover().warnings.map((w) => w.kind)).toEqual(['stale-lock']);
    const dd = DataDir.open(dir, { mode: 'write' });
    expect(dd.staleLockPid).toBe(dead);
    expect(fs.readFileSync(path.join(dir, 'LOCK'), 'utf8').trim()).toBe(String(process.pid));
    dd.close();
  });

  it('gives clear errors for a missing path, a non-data directory, another node and a file', () => {
    const base = tmpDir();
    expect(err(() => DataDir.open(path.join(base, 'nope'))).code).toBe('ENOENT');
    fs.mkdirSync(path.join(base, 'plain'));
    fs.writeFileSync(path.join(base, 'plain', 'x'), 'x');
    expect(err(() => DataDir.open(path.join(base, 'plain'))).message).toBe(`${path.join(base, 'plain')}: not a raftsnap data directory (no meta.json)`);
    expect(err(() => DataDir.open(path.join(base, 'plain'), { mode: 'write', create: true })).code).toBe('NOT_DATA_DIR');
    expect(fs.existsSync(path.join(base, 'plain', 'LOCK'))).toBe(false);
    expect(err(() => DataDir.open(path.join(base, 'plain', 'x'))).code).toBe('ENOTDIR');
    const dir = populated();
    expect(err(() => DiskStorage.open(dir, { nodeId: 'n2', fsync: false })).code).toBe('NODE_MISMATCH');
    expect(fs.existsSync(path.join(dir, 'LOCK'))).toBe(false);
    expect(err(() => DataDir.create(dir)).code).toBe('EXISTS');
  });

  it('lists snapshots and segments with index ranges', () => {
    const dir = populated(500);
    const dd = DataDir.open(dir);
    const snaps = dd.listSnapshots();
    expect(snaps.map((s) => [s.index, s.term, s.header?.keyCount])).toEqual([
      [20, 1, 1],
      [40, 1, 1],
    ]);
    const segs = dd.listSegments();
    expect(segs.length).toBeGreaterThan(1);
    expect(segs[0]!.minIndex).toBe(1);
    expect(Math.max(...segs.map((s) => s.maxIndex))).toBe(60);
    expect(segs.reduce((n, s) => n + s.entryCount, 0)).toBe(60);
    expect(segs.at(-1)!.hardState).toEqual({ term: 1, votedFor: 'n1', commit: 55 });
  });
});
