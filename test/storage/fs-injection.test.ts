import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raft/types.js';
import {
  DataDir,
  DiskStorage,
  MemFs,
  StorageError,
  encodeSnapshot,
  listSegmentFiles,
  readLockPid,
  readSnapshotFile,
  readSnapshotHeader,
  readWal,
  tempName,
  verifySnapshotFile,
  writeSnapshotFile,
} from '../../src/storage/index.js';
import { FaultyFs } from './faulty-fs.js';
import { tmpDir } from './helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const entries = (from: number, to: number, term: number): Entry[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ index: from + i, term, data: { op: 'write', key: from + i, value: i } }));

function err(f: () => unknown): StorageError {
  try {
    f();
  } catch (e) {
    if (e instanceof StorageError) return e;
    throw e;
  }
  throw new Error('expected a StorageError');
}

describe('the storage library reaches files only through the injected FileSystem', () => {
  it('no module of src/storage but node-fs.ts imports node:fs', () => {
    const dir = path.join(root, 'src', 'storage');
    for (const name of fs.readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      const text = fs.readFileSync(path.join(dir, name), 'utf8');
      const importsFs = /from\s+['"](node:)?fs(\/promises)?['"]|require\(\s*['"](node:)?fs['"]\s*\)/.test(text);
      expect(importsFs, `${name} imports node:fs`).toBe(name === 'node-fs.ts');
    }
  });

  it('a node lifecycle over MemFs (append, sync, snapshots, compaction, receive, restart) touches no real file', () => {
    const real = path.join(tmpDir(), 'never-created');
    const rec = new FaultyFs(new MemFs());
    const s = DiskStorage.open(real, { fs: rec, segmentBytes: 600, nodeId: 'n1' });
    s.recover();
    for (let i = 1; i <= 60; i += 10) {
      s.append(entries(i, i + 9, 1));
      s.setHardState({ term: 1, votedFor: 'n1', commit: i + 9 });
      s.sync();
    }
    const meta = { index: 40, term: 1, config: ['n1'] };
    s.saveSnapshot(meta, encodeSnapshot(meta, { kv: [[1, 40]] }, { createdAt: 0 }));
    expect(s.compactLog(40)).toBeGreaterThan(0);
    const m2 = { index: 70, term: 2, config: ['n1'] };
    const bytes = encodeSnapshot(m2, { kv: [[1, 70]] }, { createdAt: 0 });
    const st = s.snapshotStore();
    expect(st.receive(m2, bytes.length, 0, bytes)).toBe(bytes.length);
    expect(st.finish(m2)).toBe(true);
    expect(Buffer.from(st.read(0, bytes.length)).equals(bytes)).toBe(true);
    s.close();
    const again = DiskStorage.open(real, { fs: rec });
    const r = again.recover();
    expect(r.snapshot!.meta.index).toBe(70);
    expect(r.entries).toEqual([]);
    again.close();
    expect(fs.existsSync(real)).toBe(false);
    for (const op of ['open', 'write', 'fsync', 'rename', 'link', 'unlink', 'readdir', 'stat', 'readFile'] as const) {
      expect(rec.count(op), op).toBeGreaterThan(0);
    }
    expect((rec.inner as MemFs).openCount).toBe(0);
  });

  it('read-only DataDir, listings, WAL and snapshot readers and writers take { fs }', () => {
    const mem = new MemFs();
    const dir = '/d';
    const s = DiskStorage.open(dir, { fs: mem, nodeId: 'n1', createdAt: 3 });
    s.recover();
    s.append(entries(1, 5, 1));
    s.sync();
    const meta = { index: 5, term: 1, config: ['n1'] };
    s.saveSnapshot(meta, encodeSnapshot(meta, { kv: [[5, 5]] }, { createdAt: 0 }));
    expect(readLockPid(dir, { fs: mem })).toBe(process.pid);
    s.close();
    const dd = DataDir.open(dir, { fs: mem });
    expect(dd.meta).toMatchObject({ format: 'raftsnap-data', version: 1, nodeId: 'n1', created: 3 });
    expect(dd.listSnapshots().map((x) => x.index)).toEqual([5]);
    expect(dd.listSegments().map((x) => x.entryCount)).toEqual([5]);
    expect(dd.leftovers()).toEqual([]);
    expect(dd.recover().entries).toEqual([]);
    const segs = listSegmentFiles(dd.walDir, { fs: mem });
    expect([...readWal(dd.walDir, { fs: mem })].filter((x) => x.type === 'entry').length).toBe(5);
    expect([...readWal([segs[0]!.path], { fs: mem })].length).toBeGreaterThan(5);
    const snap = dd.listSnapshots()[0]!.path;
    expect(readSnapshotHeader(snap, { fs: mem }).index).toBe(5);
    expect(readSnapshotFile(snap, { fs: mem }).content.kv).toEqual([[5, 5]]);
    expect(verifySnapshotFile(snap, { fs: mem }).problems).toEqual([]);
    mem.mkdir('/out');
    const written = writeSnapshotFile('/out', { index: 9, term: 2, config: [] }, { kv: [] }, { fs: mem, createdAt: 0 });
    expect(mem.readdir('/out')).toEqual([path.basename(written)]);
    expect(err(() => readSnapshotFile(written)).code).toBe('ENOENT'); // not on the real disk
  });

  it('temporary names count per FileSystem, so a simulated disk sees the same names in every run', () => {
    const a = new MemFs();
    const b = new MemFs();
    const first = tempName('/x', a);
    tempName('/x', b);
    tempName('/x', b);
    expect(tempName('/x', a)).toBe(first.replace(/-1$/, '-2'));
    expect(tempName('/x', new MemFs())).toBe(first);
  });
});

describe('the lock identity is injectable', () => {
  it('a live owner is refused, a dead one is taken over', () => {
    const mem = new MemFs();
    const alive = new Set<number>([101]);
    const opts = (pid: number) => ({ fs: mem, pid, isPidAlive: (p: number) => alive.has(p) });
    const a = DiskStorage.open('/d', opts(101));
    a.recover();
    a.append(entries(1, 3, 1));
    a.sync();
    expect(readLockPid('/d', { fs: mem })).toBe(101);
    const e = err(() => DiskStorage.open('/d', opts(102)));
    expect(e.code).toBe('LOCKED');
    expect(e.message).toContain('live process 101');
    expect(DataDir.open('/d', opts(102)).lockedBy).toBe(101);
    // Node 101 "crashes": its lock stays behind and its pid is no longer alive.
    alive.delete(101);
    alive.add(102);
    const ro = DataDir.open('/d', opts(102));
    expect(ro.lockedBy).toBeNull();
    expect(ro.staleLockPid).toBe(101);
    const b = DiskStorage.open('/d', opts(102));
    expect(b.dir.staleLockPid).toBe(101);
    expect(readLockPid('/d', { fs: mem })).toBe(102);
    expect(b.recover().entries.length).toBe(3);
    b.close();
    expect(readLockPid('/d', { fs: mem })).toBeNull();
  });

  it('by default the pid is this process and liveness is kill(pid, 0)', () => {
    const mem = new MemFs();
    const a = DiskStorage.open('/d', { fs: mem });
    expect(readLockPid('/d', { fs: mem })).toBe(process.pid);
    expect(err(() => DiskStorage.open('/d', { fs: mem })).message).toContain('locked by this process');
    a.close();
  });
});
