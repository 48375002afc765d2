/**
 * Fail-stop storage: after the first failed write, fsync, rename, open or unlink, the WAL writer
 * and DiskStorage refuse every call with a STOPPED error naming that failure, and never write
 * again. Buffered records are not dropped before they are written and synced, and a failed or
 * partial write is never followed by good records.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raft/types.js';
import { DiskStorage, MemFs, StorageError, WalWriter, encodeSnapshot, nodeFs, type FileSystem } from '../../src/storage/index.js';
import { FaultyFs, type FaultRule } from './faulty-fs.js';
import { tmpDir } from './helpers.js';

const entries = (from: number, to: number, term = 1): Entry[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ index: from + i, term, data: { op: 'write', key: from + i, value: from + i } }));

function err(f: () => unknown): StorageError {
  try {
    f();
  } catch (e) {
    if (e instanceof StorageError) return e;
    throw e;
  }
  throw new Error('expected a StorageError');
}

/** A DiskStorage on `inner` through a FaultyFs, recovered and holding entries 1..10 (synced). */
function started(inner: FileSystem = new MemFs(), dir = '/d', opts: { segmentBytes?: number } = {}): { s: DiskStorage; f: FaultyFs; dir: string } {
  const f = new FaultyFs(inner);
  const s = DiskStorage.open(dir, { fs: f, ...opts });
  s.recover();
  s.append(entries(1, 10));
  s.setHardState({ term: 1, votedFor: 'n1', commit: 10 });
  s.sync();
  return { s, f, dir };
}

/**
 * The log after a restart: a contiguous prefix of what was appended, at least `synced` long
 * (complete records of the failed, unconfirmed write may be kept; nothing after a damaged one).
 */
function expectPrefix(got: Entry[], synced: number, appended: number): void {
  const idx = got.map((e) => e.index);
  expect(idx.length).toBeGreaterThanOrEqual(synced);
  expect(idx.length).toBeLessThanOrEqual(appended);
  expect(idx).toEqual(entries(1, idx.length).map((e) => e.index));
}

/** Restart on the same bytes, without faults. */
function restart(inner: FileSystem, dir = '/d') {
  const s = DiskStorage.open(dir, { fs: inner });
  const r = s.recover();
  s.close();
  return r;
}

/** Every call of a stopped storage throws STOPPED naming the first failure, and writes nothing. */
function expectStopped(s: DiskStorage, f: FaultyFs, first: StorageError): void {
  const writesBefore = f.calls.filter((c) => /^(write|fsync|rename|link|unlink|open|ftruncate|mkdir) /.test(c)).length;
  const meta = { index: 12, term: 1, config: ['n1'] };
  const snap = encodeSnapshot(meta, { kv: [] }, { createdAt: 0 });
  const st = s.snapshotStore();
  const calls: Array<[string, () => unknown]> = [
    ['append', () => s.append(entries(11, 12))],
    ['setHardState', () => s.setHardState({ term: 2, votedFor: null, commit: 10 })],
    ['sync', () => s.sync()],
    ['saveSnapshot', () => s.saveSnapshot(meta, snap)],
    ['loadSnapshot', () => s.loadSnapshot()],
    ['compactLog', () => s.compactLog(5)],
    ['pruneSnapshots', () => s.pruneSnapshots(1)],
    ['stats', () => s.stats()],
    ['recover', () => s.recover()],
    ['current', () => st.current()],
    ['read', () => st.read(0, 10)],
    ['receive', () => st.receive(meta, snap.length, 0, snap)],
    ['finish', () => st.finish(meta)],
  ];
  for (const [name, call] of calls) {
    const e = err(call);
    expect(e.code, name).toBe('STOPPED');
    expect(e.file, name).toBe(first.file);
    expect(e.message, name).toContain(first.message.slice(first.file.length + 2));
    expect(e.cause, name).toBe(first);
  }
  expect(s.failure).toBe(first);
  const writesAfter = f.calls.filter((c) => /^(write|fsync|rename|link|unlink|open|ftruncate|mkdir) /.test(c)).length;
  expect(writesAfter).toBe(writesBefore);
}

describe('WalWriter is fail-stop', () => {
  it('a failed write keeps the batch buffered, stops the writer, and nothing is written again', () => {
    const mem = new MemFs();
    mem.mkdir('/wal');
    const f = new FaultyFs(mem);
    const w = new WalWriter('/wal', [], { hardState: { term: 0, votedFor: null, commit: 0 }, lastIndex: 0 }, { fs: f });
    w.add({ type: 'entry', entry: entries(1, 1)[0]! });
    w.sync();
    f.fail({ op: 'write', nth: 1, code: 'EIO' });
    w.add({ type: 'entry', entry: entries(2, 2)[0]! });
    const first = err(() => w.sync());
    expect(first.code).toBe('IO');
    expect(first.errno).toBe('EIO');
    expect(first.message).toMatch(/^\/wal\/0000000000000001-0000000000000001\.wal: write failed: EIO/);
    expect(w.failure).toBe(first);
    expect(w.hasPending).toBe(true); // not dropped: still buffered, never written
    const writes = f.count('write');
    const fsyncs = f.count('fsync');
    for (const call of [() => w.sync(), () => w.add({ type: 'entry', entry: entries(3, 3)[0]! }), () => w.forceRotate(), () => w.deleteCovered(10), () => w.close()]) {
      const e = err(call);
      expect(e.code).toBe('STOPPED');
      expect(e.cause).toBe(first);
    }
    expect(f.count('write')).toBe(writes);
    expect(f.count('fsync')).toBe(fsyncs); // a failed write or fsync is never retried
    w.abandon();
    expect(mem.openCount).toBe(0);
  });

  it('a failed fsync is not retried: the writer stops', () => {
    const { s, f } = started();
    f.fail({ op: 'fsync', nth: 1, code: 'EIO' });
    s.append(entries(11, 11));
    const first = err(() => s.sync());
    expect(first).toMatchObject({ code: 'IO', errno: 'EIO' });
    expect(first.message).toContain('fsync WAL segment');
    expectStopped(s, f, first);
    s.abandon();
  });
});

describe('DiskStorage is fail-stop', () => {
  // The reproduction, at the storage level: the third sync fails once (the disk would
  // accept the next write). Before, the writer had dropped the failed batch and a later sync wrote
  // good records after it; now every call after the failure is refused.
  it('the third sync fails once: nothing later is written, a restart finds only what was synced', () => {
    const mem = new MemFs();
    const { s, f } = started(mem);
    s.append(entries(11, 11));
    s.sync(); // second sync
    f.fail({ op: 'write', nth: 1, code: 'EIO', short: true });
    s.append(entries(12, 12));
    s.setHardState({ term: 1, votedFor: 'n1', commit: 12 });
    const first = err(() => s.sync());
    expectStopped(s, f, first);
    s.abandon();
    const r = restart(mem);
    expectPrefix(r.entries, 11, 12);
    expect(r.hardState.commit).toBeGreaterThanOrEqual(10);
    expect(r.hardState.commit).toBeLessThanOrEqual(r.entries.at(-1)!.index);
    // The half-written batch: its cut-off part is the torn tail; its complete records are kept, unsealed.
    expect(r.warnings.map((w) => w.kind)).toEqual(['torn-tail', 'unsealed-tail']);
  });

  for (const code of ['ENOSPC', 'EIO', 'EROFS']) {
    it(`a short write then ${code}: the partial record is the torn tail, no good record follows it`, () => {
      const mem = new MemFs();
      const { s, f } = started(mem);
      f.fail({ op: 'write', nth: 1, code, short: true, sticky: true });
      s.append(entries(11, 20));
      const first = err(() => s.sync());
      expect(first.errno).toBe(code);
      expect(err(() => s.sync()).code).toBe('STOPPED');
      s.abandon();
      expect(mem.readdir('/d').sort()).toEqual(['meta.json', 'snap', 'wal']); // lock released, nothing leaked
      const r = restart(mem);
      expectPrefix(r.entries, 10, 20);
      expect(r.warnings.map((w) => w.kind)).toContain('torn-tail');
    });
  }

  it('on node:fs too: ENOSPC mid-write, restart on the same directory', () => {
    const dir = path.join(tmpDir(), 'd');
    const { s, f } = started(nodeFs, dir);
    f.fail({ op: 'write', nth: 1, code: 'ENOSPC', short: true });
    s.append(entries(11, 30));
    expect(err(() => s.sync()).errno).toBe('ENOSPC');
    expect(() => s.close()).toThrow(/storage stopped after an earlier failure/);
    expect(fs.existsSync(path.join(dir, 'LOCK'))).toBe(false);
    const r = restart(nodeFs, dir);
    expectPrefix(r.entries, 10, 30);
  });

  const faults: Array<[string, FaultRule, (s: DiskStorage) => void, RegExp]> = [
    ['a new segment cannot be created', { op: 'open', nth: 1, code: 'ENOSPC', path: /\.wal\.tmp-/ }, (s) => s.append(entries(11, 200)), /create WAL segment/],
    ['a new segment cannot be renamed into place', { op: 'rename', nth: 1, code: 'EIO', path: /\.wal\.tmp-/ }, (s) => s.append(entries(11, 200)), /rename new WAL segment/],
    ['the WAL directory cannot be fsynced', { op: 'fsync', nth: 1, code: 'EIO', path: /\/wal$/ }, (s) => s.append(entries(11, 200)), /fsync directory/],
    ['a segment cannot be opened for appending', { op: 'open', nth: 1, code: 'EACCES', path: /\.wal$/ }, (s) => s.append(entries(11, 12)), /open WAL segment/],
  ];
  for (const [what, rule, act, msg] of faults) {
    it(`stops when ${what}, leaving no temporary file`, () => {
      const mem = new MemFs();
      const { s, f } = started(mem, '/d', { segmentBytes: 600 });
      s.close(); // reopen, so that the segment is opened again for appending
      const again = DiskStorage.open('/d', { fs: f, segmentBytes: 600 });
      again.recover();
      f.fail(rule);
      act(again);
      const first = err(() => again.sync());
      expect(first.message).toMatch(msg);
      expectStopped(again, f, first);
      again.abandon();
      expect(mem.readdir('/d/wal').filter((n) => n.includes('.tmp-'))).toEqual([]);
      // What was written and fsynced before the failure (the part of the batch before the new
      // segment) may be there, never acknowledged; the log is a contiguous prefix of the appends.
      expectPrefix(restart(mem).entries, 10, 200);
    });
  }

  it('stops when a snapshot cannot be written (no temporary left), when compaction cannot unlink, when a received chunk cannot be written', () => {
    const meta = { index: 10, term: 1, config: ['n1'] };
    const bytes = encodeSnapshot(meta, { kv: [[1, 1]] }, { createdAt: 0 });

    const a = started();
    a.f.fail({ op: 'write', nth: 1, code: 'ENOSPC', path: /\.snap\.tmp-/, short: true });
    const e1 = err(() => a.s.saveSnapshot(meta, bytes));
    expect(e1.errno).toBe('ENOSPC');
    expectStopped(a.s, a.f, e1);
    a.s.abandon();
    expect(a.f.inner.readdir('/d/snap')).toEqual([]);

    const b = started(new MemFs(), '/d', { segmentBytes: 300 });
    b.s.append(entries(11, 40));
    b.s.sync();
    b.s.saveSnapshot({ ...meta, index: 30 }, encodeSnapshot({ ...meta, index: 30 }, { kv: [] }, { createdAt: 0 }));
    b.f.fail({ op: 'unlink', nth: 1, code: 'EIO', path: /\.wal$/ });
    const e2 = err(() => b.s.compactLog(30));
    expect(e2.message).toMatch(/delete WAL segment/);
    expectStopped(b.s, b.f, e2);
    b.s.abandon();

    const c = started();
    const st = c.s.snapshotStore();
    expect(st.receive(meta, bytes.length, 0, bytes.subarray(0, 100))).toBe(100);
    c.f.fail({ op: 'write', nth: 1, code: 'EIO', path: /\.recv$/ });
    const e3 = err(() => st.receive(meta, bytes.length, 100, bytes.subarray(100)));
    expect(e3.errno).toBe('EIO');
    expectStopped(c.s, c.f, e3);
    c.s.abandon();
  });

  it('a refused call (INVALID: nothing was written) does not stop the storage', () => {
    const { s } = started();
    expect(err(() => s.append(entries(20, 21))).code).toBe('INVALID');
    expect(s.failure).toBeNull();
    s.append(entries(11, 11));
    s.sync();
    s.close();
  });

  it('abandon never throws and writes nothing; close after a failure releases the lock and throws STOPPED', () => {
    const mem = new MemFs();
    const { s, f } = started(mem);
    f.fail({ op: 'fsync', nth: 1, code: 'EIO' });
    s.append(entries(11, 11));
    const first = err(() => s.sync());
    const e = err(() => s.close());
    expect(e.code).toBe('STOPPED');
    expect(e.cause).toBe(first);
    expect(mem.readdir('/d')).not.toContain('LOCK');
    expect(mem.openCount).toBe(0);
    s.abandon();
    s.close(); // closed already: nothing more
  });
});
