/**
 * A restart after a failed fsync, without a reboot (found by the simulator: random seed 89 of
 * 10,010 runs). The WAL fsync fails (EIO): the node stops, and the pages it did not write are lost
 * for good, though the page cache still shows them ("fsyncgate"; SimFs models it as Linux does).
 * A plain process restart reads the cached bytes, recovers them as valid records and appends
 * after them; the next power loss then leaves a hole (the lost batch) in front of synced batches,
 * which recovery rightly calls corruption: the node could never start again. Recovery now writes
 * the last segment again (a copy: temporary, fsync, rename, directory fsync) before anything is
 * appended to it, so what it read is on disk when the next record is acknowledged.
 */
import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raft/types.js';
import { Random } from '../../src/sim/random.js';
import { SimFs } from '../../src/sim/sim-fs.js';
import { DiskStorage } from '../../src/storage/node-storage.js';

const e = (index: number): Entry => ({ index, term: 1, data: { op: 'write', key: 1, value: 'x'.repeat(300) + index } });

describe('a restart after a failed WAL fsync, then a power loss', () => {
  it('keeps every record acknowledged after the restart, and the directory starts', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const fs = new SimFs({ rng: new Random(seed) });
      const open = (pid: number) => DiskStorage.open('/d', { fs, segmentBytes: 1 << 20, pid, isPidAlive: (p) => p === pid, createdAt: 0, now: () => 0 });
      const a = open(1);
      a.recover();
      for (let i = 1; i <= 3; i++) {
        a.append([e(i)]);
        a.setHardState({ term: 1, votedFor: 'n1', commit: i });
        a.sync();
      }
      const fault = fs.addFault({ kind: 'fsync', error: 'EIO', nth: 1 });
      a.append([e(4), e(5)]);
      expect(() => a.sync()).toThrow(/EIO/);
      a.abandon();
      fault.remove();
      // The process exits and starts again; no reboot: the page cache (with the lost pages) stays.
      const b = open(2);
      const r = b.recover();
      for (let i = 6; i <= 7; i++) {
        b.append([e(i)]);
        b.setHardState({ term: 1, votedFor: 'n1', commit: i });
        b.sync(); // acknowledged from here on
      }
      b.abandon();
      fs.crash('clean');
      const c = open(3);
      const after = c.recover();
      const idx = after.entries.map((x) => x.index);
      expect(idx, `seed ${seed} (the restart recovered ${r.entries.map((x) => x.index).join(',')})`).toEqual([1, 2, 3, 4, 5, 6, 7].slice(0, idx.length));
      expect(idx.slice(-2), `seed ${seed}`).toEqual([6, 7]);
      c.close();
    }
  });
});
