/**
 * The WAL's group-commit fsync off the event loop (FileSystem.fsyncAsync): records are written at
 * once, durable only when the promise resolves; no other writing call may overlap it; a failed
 * asynchronous fsync stops the storage as a synchronous one does. On SimFs, whose `deferFsync`
 * lets the test decide when the disk completes it, and on the real disk.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raft/types.js';
import { DiskStorage } from '../../src/storage/node-storage.js';
import { encodeSnapshot } from '../../src/storage/snapshot.js';
import { SimFs } from '../../src/sim/sim-fs.js';

const DIR = '/data/n1';

function entries(from: number, to: number, term = 1): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push({ index: i, term, data: { op: 'write', key: i, value: i } });
  return out;
}

/** A SimFs whose asynchronous fsyncs wait until the test runs them. */
function heldFs(): { fs: SimFs; held: Array<() => void> } {
  const sim = new SimFs();
  const held: Array<() => void> = [];
  sim.deferFsync = (run) => held.push(run);
  return { fs: sim, held };
}

function open(sim: SimFs): DiskStorage {
  const s = DiskStorage.open(DIR, { fs: sim, fsync: true, pid: 1, isPidAlive: () => false, createdAt: 0, nodeId: 'n1' });
  s.recover();
  return s;
}

function recoveredLastIndex(sim: SimFs): number {
  const s = open(sim);
  const r = s.recover();
  s.abandon();
  return r.entries.length > 0 ? r.entries[r.entries.length - 1]!.index : 0;
}

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  dirs = [];
});

describe('WAL sync off the event loop', () => {
  it('writes at once but is durable only once the fsync completes: a crash before loses the records, after keeps them', async () => {
    const { fs: sim, held } = heldFs();
    const s = open(sim);
    s.append(entries(1, 3));
    s.setHardState({ term: 1, votedFor: 'n1', commit: 0 });
    const p = s.syncAsync();
    expect(p).not.toBeNull();
    expect(held).toHaveLength(1);
    expect(s.walInFlight).not.toBeNull();
    // Not yet durable: a crash now (clean: only what was fsynced survives) loses the records.
    const before = sim.clone();
    before.crash('clean');
    expect(recoveredLastIndex(before)).toBe(0);
    held.shift()!();
    await p;
    expect(s.walInFlight).toBeNull();
    const after = sim.clone();
    after.crash('clean');
    expect(recoveredLastIndex(after)).toBe(3);
    s.close();
  });

  it('refuses every other writing call while the fsync runs (nothing written, storage still usable), but buffers appends for the next sync', async () => {
    const { fs: sim, held } = heldFs();
    const s = open(sim);
    s.append(entries(1, 2));
    const p = s.syncAsync()!;
    const size = (): number => sim.stat(`${DIR}/wal`).size + sim.readdir(`${DIR}/wal`).reduce((n, f) => n + sim.stat(`${DIR}/wal/${f}`).size, 0);
    const bytes = size();
    expect(() => s.sync()).toThrow(/while an fsync of it is in flight/);
    expect(() => s.syncAsync()).toThrow(/while an fsync of it is in flight/);
    expect(() => s.compactLog(1)).toThrow(/while an fsync of it is in flight/);
    expect(() => s.close()).toThrow(/while an fsync of it is in flight/);
    expect(size()).toBe(bytes);
    expect(s.failure).toBeNull();
    s.append(entries(3, 4)); // buffered only
    expect(size()).toBe(bytes);
    held.shift()!();
    await p;
    const q = s.syncAsync()!;
    held.shift()!();
    await q;
    const c = sim.clone();
    c.crash('clean');
    expect(recoveredLastIndex(c)).toBe(4);
    s.close();
  });

  it('a failed asynchronous fsync rejects, stops the storage (STOPPED after) and is never retried', async () => {
    const { fs: sim, held } = heldFs();
    const s = open(sim);
    s.append(entries(1, 1));
    s.sync(); // the segment exists: the next fsync is the one of its records
    s.append(entries(2, 2));
    const fault = sim.addFault({ kind: 'fsync', error: 'EIO', path: /\.wal$/, times: 1 });
    const p = s.syncAsync()!;
    held.shift()!();
    await expect(p).rejects.toThrow(/fsync WAL segment failed.*EIO/);
    expect(fault.fired).toBe(1);
    expect(s.failure?.message).toMatch(/EIO/);
    expect(s.walInFlight).toBeNull();
    expect(() => s.append(entries(3, 3))).toThrow(/STOPPED|stopped/i);
    expect(() => s.sync()).toThrow(/STOPPED|stopped/i);
    expect(held).toHaveLength(0);
  });

  it('on the real disk: syncAsync resolves, and the records are there after reopening', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftsnap-wal-async-'));
    dirs.push(dir);
    const s = DiskStorage.open(path.join(dir, 'n1'), { nodeId: 'n1' });
    s.recover();
    for (let i = 1; i <= 50; i += 10) {
      s.append(entries(i, i + 9));
      const p = s.syncAsync();
      expect(p).not.toBeNull();
      await p;
    }
    s.close();
    const t = DiskStorage.open(path.join(dir, 'n1'), { nodeId: 'n1' });
    const r = t.recover();
    expect(r.entries.map((e) => e.index)).toEqual(entries(1, 50).map((e) => e.index));
    t.close();
  });
});

describe('snapshot save with its file fsync off the event loop', () => {
  const meta = { index: 2, term: 1, config: ['n1'] };
  const bytes = (): Uint8Array => encodeSnapshot(meta, { kv: [[1, 1], [2, 2]] });
  const idle = <T>(fn: () => T): Promise<T> => Promise.resolve(fn());

  it('the file is in place and recorded only after its fsync; a crash before leaves no snapshot', async () => {
    const { fs: sim, held } = heldFs();
    const s = open(sim);
    s.append(entries(1, 2));
    s.sync();
    const p = s.saveSnapshotAsync(meta, bytes(), idle);
    expect(held).toHaveLength(1);
    expect(sim.readdir(`${DIR}/snap`).filter((f) => f.endsWith('.snap'))).toEqual([]);
    const before = sim.clone();
    before.crash('clean');
    const r0 = open(before).recover();
    expect(r0.snapshot).toBeNull();
    held.shift()!();
    await p;
    expect(sim.readdir(`${DIR}/snap`).filter((f) => f.endsWith('.snap'))).toHaveLength(1);
    const after = sim.clone();
    after.crash('clean');
    const r1 = open(after).recover();
    expect(r1.snapshot?.meta.index).toBe(2);
    s.close();
  });

  it('a failed asynchronous fsync of the file stops the storage and removes the temporary file', async () => {
    const { fs: sim, held } = heldFs();
    const s = open(sim);
    s.append(entries(1, 2));
    s.sync();
    sim.addFault({ kind: 'fsync', error: 'EIO', path: /\.snap\.tmp/, times: 1 });
    const p = s.saveSnapshotAsync(meta, bytes(), idle);
    held.shift()!();
    await expect(p).rejects.toThrow(/EIO/);
    expect(s.failure?.message).toMatch(/EIO/);
    expect(sim.readdir(`${DIR}/snap`)).toEqual([]);
    expect(() => s.sync()).toThrow(/STOPPED|stopped/i);
  });

  it('a failure before the fsync (the temporary file cannot be created) stops the storage at once, synchronously', () => {
    const { fs: sim } = heldFs();
    const s = open(sim);
    sim.addFault({ kind: 'open', error: 'EIO', path: `${DIR}/snap` });
    void s.saveSnapshotAsync(meta, bytes(), idle).catch(() => {});
    expect(s.failure?.message).toMatch(/EIO/);
  });
});
