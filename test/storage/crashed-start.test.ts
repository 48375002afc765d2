/**
 * A crash while a data directory is being created or locked must leave a directory that the next
 * start accepts, also when that start has the same pid (a node running as pid 1 in a container);
 * a directory holding anything else is still refused. Found by the crash-consistency check
 * (test/sim/crash-check.test.ts); these are the minimal reproductions.
 */
import { describe, expect, it } from 'vitest';
import { DataDir, readLockPid } from '../../src/storage/datadir.js';
import { StorageError } from '../../src/storage/errors.js';
import { DiskStorage } from '../../src/storage/node-storage.js';
import { SimFs } from '../../src/sim/sim-fs.js';

const PID = 1;
/** The identity of a process that has pid 1: every other pid is dead. */
const asPid1 = { pid: PID, isPidAlive: (p: number) => p === PID };

function err(f: () => unknown): StorageError {
  try {
    f();
  } catch (e) {
    if (e instanceof StorageError) return e;
    throw e;
  }
  throw new Error('expected a StorageError');
}

/** A file with these bytes, durable. */
function put(fs: SimFs, p: string, text: string): void {
  const fd = fs.open(p, 'w');
  fs.write(fd, Buffer.from(text), 0, text.length);
  fs.fsync(fd);
  fs.close(fd);
}

function entryNames(fs: SimFs, dir: string): string[] {
  return fs.readdir(dir).sort();
}

describe('a crash during the first start leaves a directory the next start completes', () => {
  it('a leftover LOCK temporary with the same pid and counter is skipped, not collided with', () => {
    const fs = new SimFs();
    fs.mkdir('/d');
    // What a process with this pid left when it crashed right after creating its lock temporary;
    // the restarted process counts its temporaries from 1 again.
    put(fs, `/d/LOCK.tmp-${process.pid}-1`, '');
    put(fs, `/d/meta.json.tmp-${process.pid}-2`, '{"form');
    const s = DiskStorage.open('/d', { fs, ...asPid1 });
    expect(s.recover().entries).toEqual([]);
    expect(readLockPid('/d', { fs })).toBe(PID);
    // Recovery removed the leftovers; the lock and the layout are in place.
    expect(entryNames(fs, '/d')).toEqual(['LOCK', 'meta.json', 'snap', 'wal']);
    s.close();
  });

  it('a directory with only the lock, our temporaries and empty snap/ and wal/ (no meta.json) is created again', () => {
    const fs = new SimFs();
    fs.mkdir('/d');
    put(fs, '/d/LOCK', '77\n'); // the crashed first start's lock: pid 77 is gone
    put(fs, '/d/LOCK.tmp-77-1', '77\n');
    fs.mkdir('/d/snap');
    fs.mkdir('/d/wal');
    put(fs, '/d/meta.json.tmp-77-2', '{"format": "raftsnap-data"');
    const s = DiskStorage.open('/d', { fs, nodeId: 'n1', ...asPid1 });
    expect(s.dir.staleLockPid).toBe(77);
    expect(s.dir.meta.nodeId).toBe('n1');
    s.recover();
    s.append([{ index: 1, term: 1, data: 'x' }]);
    s.sync();
    s.close();
    expect(JSON.parse(fs.readFile('/d/meta.json').toString()).format).toBe('raftsnap-data');
  });

  it('a directory without meta.json holding anything else is still refused, and left as it was', () => {
    const cases: Array<[string, (fs: SimFs) => void]> = [
      ['a foreign file', (fs) => put(fs, '/d/notes.txt', 'mine')],
      ['a file in snap/', (fs) => (fs.mkdir('/d/snap'), put(fs, '/d/snap/0000000000000001-0000000000000005.snap', 'x'))],
      ['a file in wal/', (fs) => (fs.mkdir('/d/wal'), put(fs, '/d/wal/0000000000000001-0000000000000001.wal', 'x'))],
      ['a temporary of another file', (fs) => put(fs, '/d/other.json.tmp-77-1', 'x')],
      ['snap as a file', (fs) => put(fs, '/d/snap', 'x')],
    ];
    for (const [what, make] of cases) {
      const fs = new SimFs();
      fs.mkdir('/d');
      put(fs, '/d/LOCK', '77\n');
      make(fs);
      const before = entryNames(fs, '/d');
      const e = err(() => DiskStorage.open('/d', { fs, ...asPid1 }));
      expect(e.code, what).toBe('NOT_DATA_DIR');
      expect(e.message, what).toContain('not a raftsnap data directory (no meta.json) and not empty');
      expect(fs.dump().has('/d/meta.json'), what).toBe(false);
      // Only the lock was taken over for the attempt, and released.
      expect(entryNames(fs, '/d').filter((n) => n !== 'LOCK'), what).toEqual(before.filter((n) => n !== 'LOCK'));
    }
  });

  it('every crash state of every crash point of a first start: the next start (same pid) accepts the directory', () => {
    const probe = new SimFs();
    DiskStorage.open('/data/n1', { fs: probe, ...asPid1 }).close();
    const calls = probe.calls;
    let states = 0;
    for (let k = 0; k <= calls; k++) {
      const fs = new SimFs();
      fs.armCrashAfter(k);
      try {
        DiskStorage.open('/data/n1', { fs, ...asPid1 });
      } catch {
        // the crash (or, at k = calls, nothing: the open went through)
      }
      for (const st of fs.crashStates({ limit: 10_000 }).states) {
        states++;
        const s = DiskStorage.open('/data/n1', { fs: st.fs, ...asPid1 });
        s.recover();
        s.close();
      }
    }
    expect(states).toBeGreaterThan(calls);
  });

  it('creating a directory with missing parents makes every new name durable (mkdir -p, then each parent fsynced)', () => {
    const fs = new SimFs();
    DiskStorage.open('/var/lib/raftsnap/n1', { fs, ...asPid1 }).close();
    fs.crash('clean');
    expect(fs.dump().has('/var/lib/raftsnap/n1/meta.json')).toBe(true);
  });
});

describe('a LOCK holding our own pid', () => {
  it('is live while this process holds it, stale when an earlier process with the same pid left it', () => {
    const fs = new SimFs();
    const a = DiskStorage.open('/d', { fs, ...asPid1 });
    a.recover();
    a.append([{ index: 1, term: 1, data: 'x' }]);
    a.sync();
    const e = err(() => DiskStorage.open('/d', { fs, ...asPid1 }));
    expect(e.code).toBe('LOCKED');
    expect(e.message).toContain('locked by this process');
    expect(DataDir.open('/d', { fs, ...asPid1 }).lockedBy).toBe(PID);

    // The machine crashes; the node restarts as pid 1 again: a new process (a new FileSystem
    // object: what the dead process held died with it).
    fs.crash('clean');
    const after = fs.clone();
    expect(readLockPid('/d', { fs: after })).toBe(PID);
    const ro = DataDir.open('/d', { fs: after, ...asPid1 });
    expect(ro.lockedBy).toBeNull();
    expect(ro.staleLockPid).toBe(PID);
    const b = DiskStorage.open('/d', { fs: after, ...asPid1 });
    expect(b.dir.staleLockPid).toBe(PID);
    expect(b.recover().entries.map((x) => x.data)).toEqual(['x']);
    b.close();
    expect(readLockPid('/d', { fs: after })).toBeNull();
    // Released: this process may open it again.
    DiskStorage.open('/d', { fs: after, ...asPid1 }).close();
  });
});
