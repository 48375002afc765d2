/**
 * `compact`: fold the committed log of a (stopped) data directory into a new snapshot, rewrite the
 * WAL to hold only what is still needed (the last `trailing` committed entries, the uncommitted
 * ones, the hard state and a marker of the snapshot), keep the `retain` newest snapshots and
 * remove leftover temporary files. Refuses a directory a live node holds.
 *
 * Order of the changes, each durable before the next, so that a crash at any point leaves a
 * directory that recovers to the same state: (1) recovery with repair (leftovers, torn tail), (2)
 * the new snapshot file, (3) a new WAL segment after the existing ones, (4) deletion of the old
 * segments, (5) deletion of snapshots beyond --retain.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Entry, HardState } from '../raft/types.js';
import {
  DataDir,
  WalWriter,
  fsyncDir,
  readLockPid,
  newSegmentBytes,
  segmentFileName,
  snapshotFileName,
  writeSnapshotFile,
  type Recovery,
  type SnapshotHeader,
  type WalRecord,
} from '../storage/index.js';
import { ToolError, toToolError } from './errors.js';
import { retype, underBase } from './files.js';
import { guard, pathKind, toolNow } from './load.js';
import { checkWrittenFile, encodeState } from './snapshot.js';
import { holdDirState } from './held-state.js';

export interface DirSizes {
  snapshots: { count: number; bytes: number };
  wal: { count: number; bytes: number };
  leftovers: { count: number; bytes: number };
  total: number;
}

export interface CompactResult {
  dir: string;
  dryRun: boolean;
  commit: number;
  /** The snapshot written (or that would be); null when the newest snapshot is already at the commit index. */
  newSnapshot: { file: string; index: number; term: number; keys: number; size: number } | null;
  /** The WAL after compaction: one segment holding these entries (null range when none). */
  wal: { segment: string | null; firstIndex: number | null; lastIndex: number | null; entries: number; size: number };
  removed: { snapshots: string[]; segments: string[]; leftovers: string[] };
  /** What recovery with repair did (or would do): torn tail cut, broken snapshot renamed, leftovers. */
  repairs: string[];
  before: DirSizes;
  after: DirSizes;
  /** The recovered state after compaction equals the one before (index, term, keys). */
  verified: boolean;
  /** Dry run of a directory a live node holds (compact itself would refuse it). */
  live?: { pid: number };
  warnings: string[];
}

export interface CompactOptions {
  retain?: number;
  trailing?: number;
  dryRun?: boolean;
}

function sizesOf(dd: DataDir, dir: string): DirSizes {
  const snaps = guard(() => dd.listSnapshots(), dir);
  const segs = guard(() => dd.listSegments(), dir);
  const left = guard(() => dd.leftovers(), dir);
  const sum = (xs: Array<{ size: number }>) => xs.reduce((n, x) => n + x.size, 0);
  const s: DirSizes = {
    snapshots: { count: snaps.length, bytes: sum(snaps) },
    wal: { count: segs.length, bytes: sum(segs) },
    leftovers: { count: left.length, bytes: sum(left) },
    total: 0,
  };
  s.total = s.snapshots.bytes + s.wal.bytes + s.leftovers.bytes;
  return s;
}

function total(s: DirSizes): DirSizes {
  return { ...s, total: s.snapshots.bytes + s.wal.bytes + s.leftovers.bytes };
}

/** The one message for a live directory (dry run or not). */
function lockedError(dir: string, pid: number): ToolError {
  return new ToolError('LOCKED', dir, `directory is in use by the live node with pid ${pid} (LOCK); stop that node before compacting, or use --dry-run to see what compact would do (nothing was changed)`);
}

export function compactDir(dir: string, opts: CompactOptions = {}): CompactResult {
  const retain = Math.max(1, opts.retain ?? 2);
  const trailing = Math.max(0, opts.trailing ?? 0);
  const dry = opts.dryRun === true;
  if (pathKind(dir) !== 'dir') throw new ToolError('ENOTDIR', dir, 'not a directory (expected a raftsnap data directory)');

  // Read first: a live node's directory is refused with one message, before anything is opened for writing.
  const ro = guard(() => DataDir.open(dir, { mode: 'read' }), dir);
  if (ro.lockedBy !== null && !dry) throw lockedError(dir, ro.lockedBy);
  let dd: DataDir = ro;
  if (!dry) {
    try {
      dd = DataDir.open(dir, { mode: 'write' });
    } catch (e) {
      const t = toToolError(e, dir);
      // Taken by a node that started in between.
      if (t.code === 'LOCKED') throw lockedError(dir, readLockPid(dir) ?? 0);
      throw t;
    }
  }
  try {
    const r = run(dd, dir, retain, trailing, dry);
    if (dry && ro.lockedBy !== null) {
      r.live = { pid: ro.lockedBy };
      r.warnings.push(`${dir}: directory is in use by pid ${ro.lockedBy}: this dry run read it while the node runs, and compact itself would refuse it; stop that node first`);
    }
    return r;
  } finally {
    dd.close();
  }
}

function run(dd: DataDir, dir: string, retain: number, trailing: number, dry: boolean): CompactResult {
  const warnings: string[] = [];
  const before = sizesOf(dd, dir);
  const leftoversBefore = guard(() => dd.leftovers(), dir);
  // The snapshot's content is streamed into the held state (columns, no map), never held as pairs too.
  const rec: Recovery = guard(() => dd.recover({ repair: !dry, now: toolNow(), loadContent: false }), dir);
  const repairs = rec.warnings.map((w) => retype(dir, w.message));
  const st = holdDirState(dir, dd, rec, [], undefined);
  const commit = st.header.index;
  const term = st.header.term;
  const snapIndex = rec.snapshot?.header.index ?? 0;

  // (2) the new snapshot
  let newSnapshot: CompactResult['newSnapshot'] = null;
  let snapBytes: Buffer | null = null;
  let snapHeader: SnapshotHeader | null = null;
  let newestSnap = rec.snapshot ? { index: rec.snapshot.header.index, term: rec.snapshot.header.term, file: path.basename(rec.snapshot.path) } : null;
  if (commit > snapIndex) {
    const name = snapshotFileName({ index: commit, term });
    // Verified against the state before anything is written (src/tools/snapshot.ts).
    const made = encodeState(st.state, { index: commit, term, config: st.header.config }, st.dedup, {
      createdAt: toolNow(),
      nodeId: dd.meta.nodeId,
      shown: underBase(dir, path.join(dd.snapDir, name)),
    });
    snapBytes = made.bytes;
    snapHeader = made.header;
    newSnapshot = { file: underBase(dir, path.join(dd.snapDir, name)), index: commit, term, keys: st.state.size, size: snapBytes.length };
    newestSnap = { index: commit, term, file: name };
  }

  // (3) what the new WAL segment holds
  const cut = Math.max(commit - trailing, 0);
  const keep: Entry[] = rec.entries.filter((e) => e.index > cut);
  const hs: HardState = rec.hardState;
  const records: WalRecord[] = keep.map((e) => ({ type: 'entry', entry: e }));
  if (newestSnap) records.push({ type: 'snapshot', index: newestSnap.index, term: newestSnap.term, file: newestSnap.file });
  const oldSegments = rec.segments;
  const nextSeq = oldSegments.length > 0 ? oldSegments[oldSegments.length - 1]!.seq + 1 : 1;
  const firstIndex = keep.length > 0 ? keep[0]!.index : commit + 1;
  const segName = segmentFileName(nextSeq, firstIndex);
  const segSize = newSegmentBytes(hs, records);
  const wal: CompactResult['wal'] = {
    segment: underBase(dir, path.join(dd.walDir, segName)),
    firstIndex: keep.length > 0 ? keep[0]!.index : null,
    lastIndex: keep.length > 0 ? keep[keep.length - 1]!.index : null,
    entries: keep.length,
    size: segSize,
  };

  // (5) snapshots beyond --retain (the new one counts)
  const existing = guard(() => dd.listSnapshots(), dir).filter((s) => s.header !== null && !(rec.warnings.some((w) => w.kind === 'broken-snapshot' && w.file === s.path)));
  const names = existing.map((s) => ({ path: s.path, index: s.index, size: s.size }));
  const newPath = newSnapshot ? path.join(dd.snapDir, path.basename(newSnapshot.file)) : null;
  if (newSnapshot && !names.some((n) => n.path === newPath)) names.push({ path: newPath!, index: commit, size: newSnapshot.size });
  names.sort((a, b) => a.index - b.index);
  const dropSnaps = names.slice(0, Math.max(0, names.length - retain));

  const leftoversRemoved = leftoversBefore.filter((l) => l.kind === 'temp' || l.kind === 'recv').map((l) => l.path);

  if (dry) {
    const keptSnaps = names.filter((n) => !dropSnaps.includes(n));
    const left = leftoversBefore.filter((l) => !leftoversRemoved.includes(l.path));
    // Broken snapshots are renamed *.broken by the repair: they become leftovers.
    const after = total({
      snapshots: { count: keptSnaps.length, bytes: keptSnaps.reduce((n, s) => n + s.size, 0) },
      wal: { count: 1, bytes: segSize },
      leftovers: { count: left.length + countBroken(rec), bytes: left.reduce((n, l) => n + l.size, 0) + brokenBytes(rec) },
      total: 0,
    });
    return {
      dir,
      dryRun: true,
      commit,
      newSnapshot,
      wal,
      removed: shownRemoved(dir, dropSnaps, oldSegments, leftoversRemoved),
      repairs,
      before,
      after,
      verified: false,
      warnings,
    };
  }

  // Carry out (2)-(5).
  // The new snapshot first, read back byte for byte: the log it replaces is removed only after.
  if (snapBytes) {
    const written = guard(() => writeSnapshotFile(dd.snapDir, snapBytes!, dd.sync), newSnapshot!.file);
    try {
      checkWrittenFile(written, newSnapshot!.file, snapBytes, dd.fs);
    } catch (e) {
      // What compact made goes; the log and the old snapshots are as they were.
      fs.rmSync(written, { force: true });
      throw e;
    }
  }
  guard(() => {
    const w = new WalWriter(dd.walDir, oldSegments.map((s) => ({ ...s })), { hardState: hs, lastIndex: firstIndex - 1 }, { fsync: dd.fsync });
    w.forceRotate();
    for (const r of records) w.add(r);
    w.close();
  }, dd.walDir);
  for (const s of oldSegments) {
    guard(() => fs.unlinkSync(s.path), s.path);
  }
  if (oldSegments.length > 0) guard(() => fsyncDir(dd.walDir, { fsync: dd.fsync }), dd.walDir);
  for (const s of dropSnaps) guard(() => fs.unlinkSync(s.path), s.path);
  if (dropSnaps.length > 0) guard(() => fsyncDir(dd.snapDir, { fsync: dd.fsync }), dd.snapDir);

  // Verify: what recovery gives now is what it gave before. The newest snapshot is now at the
  // commit index (the new one, checked above, or the old one when it already was, the file the
  // state was loaded from), so recovery replays nothing onto it.
  const rec2 = guard(() => dd.recover({ repair: false, loadContent: false }), dir);
  const differs = (what: string): never => {
    throw new ToolError('INTERNAL', dir, `after compaction the directory recovers a different state (${what}); the old snapshots were kept`);
  };
  const commit2 = Math.min(rec2.hardState.commit, rec2.lastIndex);
  if (commit2 !== commit) differs(`commit index ${commit2}, was ${commit}`);
  if (rec2.snapshot === null) {
    if (commit !== 0 || st.state.size !== 0) differs('no snapshot');
  } else {
    const h2 = rec2.snapshot.header;
    if (h2.index !== commit || h2.term !== term) differs(`newest snapshot ${h2.index}/${h2.term}, expected ${commit}/${term}`);
    const want = snapHeader ?? rec.snapshot?.header;
    if (!want || h2.payloadCrc !== want.payloadCrc || h2.keyCount !== st.state.size) differs(`newest snapshot ${underBase(dir, rec2.snapshot.path)} is not the one compact made or kept`);
  }
  const after = sizesOf(dd, dir);
  return {
    dir,
    dryRun: false,
    commit,
    newSnapshot,
    wal,
    removed: shownRemoved(dir, dropSnaps, oldSegments, leftoversRemoved),
    repairs,
    before,
    after,
    verified: true,
    warnings,
  };
}

function shownRemoved(dir: string, snaps: Array<{ path: string }>, segs: Array<{ path: string }>, left: string[]): CompactResult['removed'] {
  const show = (p: string) => underBase(dir, p);
  return { snapshots: snaps.map((s) => show(s.path)), segments: segs.map((s) => show(s.path)), leftovers: left.map(show) };
}

function countBroken(rec: Recovery): number {
  return rec.warnings.filter((w) => w.kind === 'broken-snapshot').length;
}

function brokenBytes(rec: Recovery): number {
  let n = 0;
  for (const w of rec.warnings) {
    if (w.kind !== 'broken-snapshot') continue;
    try {
      n += fs.statSync(w.file).size;
    } catch {
      // gone
    }
  }
  return n;
}
