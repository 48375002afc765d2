/**
 * The crash-consistency check (src/sim/crash-check.ts; docs/SIMULATION.md, "Crash consistency:
 * every crash state"): a moderate workload on one node, a crash after every file-system call, every
 * crash state SimFs allows, each recovered by a fresh RaftServer. It found four storage bugs
 * (test/storage/crashed-start.test.ts); the two mutation cases show it fails when an fsync the
 * rules need is left out.
 */
import { describe, expect, it } from 'vitest';
import { formatCrashReport, makeWorkload, runCrashCheck, type CrashCheckReport } from '../../src/sim/crash-check.js';
import type { FileSystem } from '../../src/storage/fs.js';
import type { SimFs } from '../../src/sim/sim-fs.js';

function failuresText(r: CrashCheckReport): string {
  return r.failures.length === 0 ? '' : formatCrashReport(r);
}

/** The SimFs, with fsync made a no-op on descriptors opened on paths that `skip` picks. */
function skippingFsync(skip: (path: string) => boolean): (fs: SimFs) => FileSystem {
  return (fs) => {
    const opened = new Map<number, string>();
    return {
      open: (p, flags, mode) => {
        const fd = fs.open(p, flags, mode);
        opened.set(fd, p);
        return fd;
      },
      close: (fd) => {
        opened.delete(fd);
        fs.close(fd);
      },
      fsync: (fd) => {
        if (!skip(opened.get(fd) ?? '')) fs.fsync(fd);
      },
      read: (fd, buf, off, len, pos) => fs.read(fd, buf, off, len, pos),
      write: (fd, buf, off, len, pos) => fs.write(fd, buf, off, len, pos),
      ftruncate: (fd, len) => fs.ftruncate(fd, len),
      fstat: (fd) => fs.fstat(fd),
      rename: (a, b) => fs.rename(a, b),
      link: (a, b) => fs.link(a, b),
      unlink: (p) => fs.unlink(p),
      rmdir: (p) => fs.rmdir(p),
      mkdir: (p, o) => fs.mkdir(p, o),
      readdir: (p) => fs.readdir(p),
      stat: (p) => fs.stat(p),
      access: (p, m) => fs.access(p, m),
      readFile: (p) => fs.readFile(p),
    };
  };
}

const MILESTONES = [
  'mkdir',
  'lock link',
  'meta.json rename',
  'WAL segment create',
  'WAL write',
  'WAL fsync',
  'snapshot temp write',
  'snapshot rename',
  'directory fsync',
  'WAL segment unlink',
  'snapshot unlink',
  'lock release',
];

describe('crash consistency: every crash state of a small workload on one node', () => {
  it('the workload mixes writes and cas operations that succeed and fail', () => {
    const ops = makeWorkload(16, 3, 1, 400);
    expect(ops.filter((o) => o.op === 'write').length).toBeGreaterThan(4);
    expect(ops.filter((o) => o.op === 'cas').length).toBeGreaterThan(2);
    expect(new Set(ops.map((o) => o.key)).size).toBe(3);
    expect(makeWorkload(16, 3, 1, 400)).toEqual(ops);
  });

  it('a crash after every call, in every crash state: the restart works, keeps every acknowledged write, holds a state the history allows, takes a new write', async () => {
    const r = await runCrashCheck({ ops: 16, valueChars: 400 });
    console.log(formatCrashReport(r));
    expect(failuresText(r)).toBe('');
    expect(r.acked).toBe(16);
    expect(r.crashPoints).toBe(r.calls + 1);
    expect(r.sampledPoints).toBe(0);
    expect(r.crashStates).toBe(r.enumerated);
    expect(r.crashStates).toBeGreaterThan(r.crashPoints);
    expect(r.distinctStates).toBeLessThanOrEqual(r.crashStates);
    // What the workload went through, so what the crashes fell in the middle of.
    for (const m of MILESTONES) expect(r.coverage[m] ?? 0, m).toBeGreaterThan(0);
    expect(r.coverage['WAL segment create']).toBeGreaterThan(2);
    expect(r.coverage['snapshot rename']).toBeGreaterThan(2);
    // Torn tails were met and cut, and the leftovers of interrupted atomic writes removed.
    expect(Object.keys(r.recoveryWarnings).some((k) => k.startsWith('torn tail'))).toBe(true);
    expect(Object.keys(r.recoveryWarnings).some((k) => k.startsWith('orphaned temporary'))).toBe(true);
  }, 120_000);

  it('and a crash during each of those recoveries (lock takeover, leftovers removed, torn tail cut), in every crash state, recovers again', async () => {
    const r = await runCrashCheck({ ops: 8, valueChars: 400, recoveryCrashes: true, recheck: false });
    console.log(formatCrashReport(r));
    expect(failuresText(r)).toBe('');
    // Every restart writes while it recovers (the lock at least), so it was crashed in the middle.
    expect(r.recoveryCrashPoints).toBeGreaterThan(r.distinctStates);
    expect(r.recoveryDistinctStates).toBeGreaterThan(r.distinctStates);
  }, 120_000);

  it('the same, restarted with the same pid (pid 1 in a container), garbled sectors zeroed, another workload', async () => {
    const r = await runCrashCheck({ ops: 8, seed: 2, restartPid: 'same', garbage: 'zeros', cuts: 'every-sector' });
    expect(failuresText(r)).toBe('');
    expect(r.crashStates).toBeGreaterThan(r.crashPoints);
  }, 120_000);

  it('fails when the WAL is not fsynced before acknowledging: acknowledged writes are lost', async () => {
    const r = await runCrashCheck({ ops: 4, recheck: false, statesPerPoint: 50, fsWrapper: skippingFsync((p) => p.endsWith('.wal')) });
    expect(r.failures.map((f) => f.example.kind)).toContain('acked-write-lost');
  }, 120_000);

  it('fails when the snapshot directory is not fsynced after the rename: compaction then loses the log the snapshot replaced', async () => {
    const r = await runCrashCheck({ ops: 12, recheck: false, fsWrapper: skippingFsync((p) => p.endsWith('/snap')) });
    expect(r.failures.map((f) => f.example.kind)).toContain('restart-refused');
    expect(r.failures.some((f) => /recovery needs log entries/.test(f.example.detail))).toBe(true);
  }, 120_000);
});
