/**
 * The simulator's storage plumbing: a simulated node runs the real DiskStorage over its SimFs
 * (what is acknowledged survives a crash, the checker's AckedState follows the syncs), crash points
 * fire at file-system calls of a chosen storage step, and the test-only broken file system leaves
 * out exactly the fsyncs it names.
 */
import { describe, expect, it } from 'vitest';
import { BrokenFs } from '../../src/sim/broken-fs.js';
import { injectedErrno } from '../../src/sim/disk-faults.js';
import { storageStep } from '../../src/sim/node.js';
import { Random } from '../../src/sim/random.js';
import { SimFs } from '../../src/sim/sim-fs.js';
import { AckedState } from '../../src/sim/sim-store.js';
import { defaultConfig } from '../../src/sim/config.js';
import { Simulation } from '../../src/sim/sim.js';
import type { Entry } from '../../src/raft/types.js';
import { StorageError, fsError } from '../../src/storage/errors.js';
import { fsFault } from '../../src/storage/fs.js';
import { DiskStorage } from '../../src/storage/node-storage.js';
import { encodeSnapshot } from '../../src/storage/snapshot.js';

const e = (index: number, term = 1): Entry => ({ index, term, data: { op: 'write', key: 1, value: index } });

describe('AckedState', () => {
  it('follows appends, replaced suffixes, gaps and recoveries', () => {
    const a = new AckedState();
    a.noteEntries([e(1), e(2), e(3)]);
    expect([a.offset, a.terms]).toEqual([0, [1, 1, 1]]);
    a.noteEntries([e(3, 2), e(4, 2)]); // replaces 3
    expect([a.offset, a.terms]).toEqual([0, [1, 1, 2, 2]]);
    a.noteEntries([e(9, 3)]); // after a gap (an installed snapshot)
    expect([a.offset, a.terms]).toEqual([8, [3]]);
    a.noteHardState({ term: 3, votedFor: 'n2', commit: 9 });
    a.reset({ hardState: { term: 4, votedFor: null, commit: 5 }, snapshot: { meta: { index: 5, term: 2, config: [] }, pairs: [] }, entries: [e(6, 2)], nodeId: 'n1' });
    expect([a.offset, a.terms, a.term, a.votedFor]).toEqual([5, [2], 4, null]);
  });
});

describe('the real storage over SimFs', () => {
  it('what a sync returned for survives any crash; what was only buffered may not', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const fs = new SimFs({ rng: new Random(seed) });
      const open = (pid: number) => DiskStorage.open('/d', { fs, segmentBytes: 700, pid, isPidAlive: (p) => p === pid, createdAt: 0, now: () => 0 });
      const st = open(1);
      st.recover();
      for (let i = 1; i <= 12; i++) {
        st.append([e(i)]);
        st.setHardState({ term: 1, votedFor: 'n1', commit: i - 1 });
        st.sync();
      }
      st.saveSnapshot({ index: 8, term: 1, config: ['n1'] }, encodeSnapshot({ index: 8, term: 1, config: ['n1'] }, { kv: [[1, 8]] }, { createdAt: 0 }));
      st.compactLog(8);
      st.append([e(13)]); // buffered, never synced
      fs.crash(new Random(seed * 7), { garble: 0.5, garbage: 'zeros' });
      const again = open(2);
      const r = again.recover();
      expect(r.snapshot?.meta.index).toBe(8);
      expect(r.entries.map((x) => x.index).slice(0, 4)).toEqual([9, 10, 11, 12]);
      expect(r.hardState).toEqual({ term: 1, votedFor: 'n1', commit: 11 });
    }
  });
});

describe('crash points at file-system calls', () => {
  it('storageStep tells the steps apart by kind and path', () => {
    expect(storageStep('open', '/data/n1/LOCK.tmp-9-1')).toBe('lock-meta');
    expect(storageStep('rename', '/data/n1/meta.json.tmp-9-2')).toBe('lock-meta');
    expect(storageStep('write', '/data/n1/wal/0000000000000001-0000000000000001.wal')).toBe('wal-append');
    expect(storageStep('open', '/data/n1/wal/0000000000000002-0000000000000009.wal.tmp-9-3')).toBe('wal-rotate');
    expect(storageStep('unlink', '/data/n1/wal/0000000000000001-0000000000000001.wal')).toBe('segment-delete');
    expect(storageStep('fsync', '/data/n1/wal')).toBe('wal-dir-fsync');
    expect(storageStep('write', '/data/n1/snap/0000000000000001-0000000000000005.snap.tmp-9-4')).toBe('snapshot-save');
    expect(storageStep('write', '/data/n1/snap/0000000000000001-0000000000000005.snap.recv')).toBe('snapshot-receive');
    expect(storageStep('unlink', '/data/n1/snap/0000000000000001-0000000000000005.snap')).toBe('snapshot-prune');
    expect(storageStep('ftruncate', '/data/n1/wal/0000000000000001-0000000000000001.wal')).toBe('recovery');
    expect(storageStep('open', '/data/n1/wal/0000000000000001-0000000000000001.wal.torn-5')).toBe('recovery');
  });

  it('injectedErrno finds the errno of an injected fault through StorageErrors', () => {
    const e1 = fsError(fsFault('EROFS', 'open', '/x'), '/x', 'create temporary file');
    expect(injectedErrno(e1)).toBe('EROFS');
    expect(injectedErrno(new StorageError('STOPPED', '/x', 'stopped', undefined, e1))).toBe('EROFS');
    expect(injectedErrno(new StorageError('CORRUPT_WAL', '/x', 'bad'))).toBeNull();
  });

  it('an aimed crash fires at that step; what the dead process logs while its error unwinds is no finding; it comes back', async () => {
    const cfg = defaultConfig(3, 'aim');
    cfg.node.snapshotThreshold = 2;
    cfg.durationMs = 1500;
    cfg.quietMs = 1000;
    const sim = new Simulation(cfg);
    const hits: string[] = [];
    const r = await sim.run((s) => {
      s.at(400, 'aim', () => {
        const n = s.leader() ?? s.nodes[0]!;
        n.aimCrash('snapshot-save', 2);
        const seen = n.incarnation;
        const check = (): void => {
          if (n.incarnation !== seen || !n.up) hits.push(`${n.id}:${[...n.crashSteps.keys()].join(',')}`);
          else s.at(10, 'poll', check);
        };
        check();
      });
    });
    expect(r.failure).toBeNull();
    expect(r.stats.crashSteps['snapshot-save']).toBe(1);
    expect(r.stats.crashPointsFired).toBe(1);
    expect(hits).toHaveLength(1);
  });
});

describe('BrokenFs (test-only)', () => {
  function storage(mode: 'no-wal-fsync' | 'no-snapshot-dir-fsync') {
    const sim = new SimFs();
    const fs = new BrokenFs(sim, mode);
    const st = DiskStorage.open('/d', { fs, segmentBytes: 1 << 20, pid: 1, isPidAlive: () => false, createdAt: 0, now: () => 0 });
    st.recover();
    return { sim, fs, st };
  }

  it('no-wal-fsync: a sync returns, but a clean crash loses the records', () => {
    const { sim, fs, st } = storage('no-wal-fsync');
    st.append([e(1), e(2)]);
    st.setHardState({ term: 1, votedFor: 'n1', commit: 2 });
    st.sync();
    expect(fs.skipped).toBe(1);
    sim.crash('clean');
    const r = DiskStorage.open('/d', { fs: sim, pid: 2, isPidAlive: () => false, createdAt: 0, now: () => 0 }).recover();
    expect(r.entries).toEqual([]);
  });

  it('no-snapshot-dir-fsync: the rename of a saved snapshot stays pending; a clean crash undoes it, although the WAL records it', () => {
    const { sim, fs, st } = storage('no-snapshot-dir-fsync');
    st.append([e(1)]);
    st.sync();
    const meta = { index: 1, term: 1, config: ['n1'] };
    st.saveSnapshot(meta, encodeSnapshot(meta, { kv: [[1, 1]] }, { createdAt: 0 }));
    expect(fs.skipped).toBe(1);
    expect(st.stats().snapshots).toBe(1);
    sim.crash('clean');
    const r = DiskStorage.open('/d', { fs: sim, pid: 2, isPidAlive: () => false, createdAt: 0, now: () => 0 }).recover();
    expect(r.snapshot).toBeNull();
  });
});
