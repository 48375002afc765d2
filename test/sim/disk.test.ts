import { describe, expect, it } from 'vitest';
import { SimDisk } from '../../src/sim/disk.js';
import { Random } from '../../src/sim/random.js';
import { encodeSnapshot } from '../../src/storage/snapshot.js';
import type { Entry } from '../../src/raft/types.js';

const opts = { segmentBytes: 1 << 20, retain: 2, ackBeforePersist: false };
const e = (index: number, term = 1): Entry => ({ index, term, data: { op: 'write', key: 1, value: index } });
const rng = () => new Random(42);

describe('SimDisk', () => {
  it('keeps synced writes and drops unsynced ones on a crash', () => {
    const d = new SimDisk(opts);
    d.append([e(1), e(2)]);
    d.setHardState({ term: 1, votedFor: 'n1', commit: 1 });
    d.sync();
    d.append([e(3)]);
    d.setHardState({ term: 2, votedFor: null, commit: 2 });
    d.write(); // written, never fsynced
    expect(d.unsyncedBytes).toBeGreaterThan(0);
    d.crash(rng(), false);
    const r = d.recover();
    expect(r.entries.map((x) => x.index)).toEqual([1, 2]);
    expect(r.hardState).toEqual({ term: 1, votedFor: 'n1', commit: 1 });
    expect(r.tornBytes).toBe(0);
  });

  it('a torn write loses the torn part: recovery cuts the damaged tail and keeps whole records', () => {
    let tornSeen = false;
    let partialKept = false;
    for (let seed = 1; seed <= 40; seed++) {
      const d = new SimDisk(opts);
      d.append([e(1)]);
      d.sync();
      d.append([e(2), e(3), e(4)]);
      d.write();
      const kept = d.crash(new Random(seed), true);
      const r = d.recover();
      const idx = r.entries.map((x) => x.index);
      // Always a prefix of what was written: 1, then maybe 2, 3, 4 in order.
      expect(idx).toEqual([1, 2, 3, 4].slice(0, idx.length));
      expect(idx.length).toBeGreaterThanOrEqual(1);
      if (r.tornBytes > 0) tornSeen = true;
      if (kept > 0 && idx.length > 1) partialKept = true;
      // The cut is durable: a second recovery finds the same log and no damage.
      const again = d.recover();
      expect(again.entries.map((x) => x.index)).toEqual(idx);
      expect(again.tornBytes).toBe(0);
    }
    expect(tornSeen).toBe(true);
    expect(partialKept).toBe(true);
  });

  it('in the broken ack-before-persist mode, sync does not make writes durable', () => {
    const d = new SimDisk({ ...opts, ackBeforePersist: true });
    d.append([e(1), e(2)]);
    d.setHardState({ term: 3, votedFor: 'n2', commit: 2 });
    d.sync();
    d.crash(rng(), false);
    const r = d.recover();
    expect(r.entries).toEqual([]);
    expect(r.hardState.term).toBe(0);
  });

  it('recovers from the newest snapshot plus the log after it, and compacts segments', () => {
    const d = new SimDisk({ ...opts, segmentBytes: 200 });
    for (let i = 1; i <= 20; i++) {
      d.append([e(i)]);
      d.setHardState({ term: 1, votedFor: 'n1', commit: i });
      d.sync();
    }
    const segs = d.segmentCount;
    expect(segs).toBeGreaterThan(3);
    d.saveSnapshot({ index: 10, term: 1, config: ['n1'] }, [[1, 10]]);
    d.saveSnapshot({ index: 15, term: 1, config: ['n1'] }, [[1, 15]]);
    d.compactLog(15);
    expect(d.segmentCount).toBeLessThan(segs);
    d.crash(rng(), false);
    const r = d.recover();
    expect(r.snapshot!.meta.index).toBe(15);
    expect(r.snapshot!.pairs).toEqual([[1, 15]]);
    expect(r.entries.map((x) => x.index)).toEqual([16, 17, 18, 19, 20]);
    expect(r.hardState.commit).toBe(20);
  });

  it('a snapshot marker discards a log that disagrees with the snapshot (Figure 13 rule 7)', () => {
    const d = new SimDisk(opts);
    d.append([e(1), e(2, 1), e(3, 1)]);
    d.sync();
    const bytes = encodeSnapshot({ index: 3, term: 2, config: ['n1'] }, { kv: [[1, 3]] });
    const ss = d.snapshotStore;
    expect(ss.receive({ index: 3, term: 2, config: ['n1'] }, bytes.length, 0, bytes.subarray(0, 10))).toBe(10);
    // An unexpected offset stores nothing.
    expect(ss.receive({ index: 3, term: 2, config: ['n1'] }, bytes.length, 20, bytes.subarray(20, 30))).toBe(10);
    expect(ss.receive({ index: 3, term: 2, config: ['n1'] }, bytes.length, 10, bytes.subarray(10))).toBe(bytes.length);
    expect(ss.finish({ index: 3, term: 2, config: ['n1'] })).toBe(true);
    expect(ss.current()!.meta.index).toBe(3);
    d.crash(rng(), false);
    const r = d.recover();
    expect(r.snapshot!.meta).toMatchObject({ index: 3, term: 2 });
    expect(r.entries).toEqual([]);
  });

  it('a partially received snapshot is lost in a crash; a damaged one is refused', () => {
    const d = new SimDisk(opts);
    const meta = { index: 5, term: 1, config: ['n1'] };
    const bytes = encodeSnapshot(meta, { kv: [[1, 5]] });
    d.snapshotStore.receive(meta, bytes.length, 0, bytes.subarray(0, 8));
    d.crash(rng(), false);
    expect(d.recover().snapshot).toBeNull();
    const bad = Buffer.from(bytes);
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 0xff;
    d.snapshotStore.receive(meta, bad.length, 0, bad);
    expect(d.snapshotStore.finish(meta)).toBe(false);
    expect(d.snapshotStore.current()).toBeNull();
  });

  it('refuses an append that would leave a gap, as NodeStorage does', () => {
    const d = new SimDisk(opts);
    d.append([e(1)]);
    expect(() => d.append([e(3)])).toThrow(/gap/);
  });
});
