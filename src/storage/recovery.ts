/**
 * Recovery of a data directory (rules: docs/FORMAT.md, "Recovery rules"): newest snapshot passing
 * its checksums (a failing one renamed `*.broken` with repair), WAL replayed after it, last hard
 * state, torn tail cut (copy kept) with repair, CORRUPT_WAL on damage inside the log, orphaned
 * temporaries removed with repair. Without `repair` nothing on disk changes and `warnings` say
 * what repair would do.
 */
import path from 'node:path';
import type { Entry, HardState } from '../raft/types.js';
import type { DataDir } from './datadir.js';
import { StorageError, fsError } from './errors.js';
import type { FileSystem } from './fs.js';
import { closeQuietly, fsyncDir, fsyncFd, readFile, renameDurable, statOrNull, writeAll, writeFileAtomic, type SyncOptions } from './fsutil.js';
import { LogReplay } from './replay.js';
import { decodeSnapshot, verifySnapshotBytes, type SnapshotContent, type SnapshotHeader } from './snapshot.js';
import { SEGMENT_HEADER_BYTES, listSegmentFiles, scanSegmentFile, sealBatch } from './wal.js';
import type { SegmentState } from './wal-writer.js';

export const BROKEN_SUFFIX = '.broken';

export type RecoveryWarningKind = 'broken-snapshot' | 'torn-tail' | 'unsealed-tail' | 'temp-file' | 'partial-receive' | 'stale-lock' | 'snapshot-name';

export interface RecoveryWarning {
  kind: RecoveryWarningKind;
  file: string;
  offset?: number;
  /** One line: what is wrong and what recovery did (repair) or would do (read-only). */
  message: string;
}

export interface RecoverOptions {
  /** Change the directory to fix what is found (write mode only). Default false: change nothing. */
  repair?: boolean;
  /** Decode the snapshot's payload (default true); false only verifies its checksums. */
  loadContent?: boolean;
  /** Time used in `.torn-<ms>` names (default Date.now()). */
  now?: number;
}

export interface RecoveredSnapshot {
  header: SnapshotHeader;
  path: string;
  /** Null when `loadContent: false`. */
  content: SnapshotContent | null;
}

export interface Recovery {
  snapshot: RecoveredSnapshot | null;
  /** Last hard state recorded, with `commit` raised to at least the snapshot's index. */
  hardState: HardState;
  /** Log entries after the snapshot's index (or from 1), contiguous. */
  entries: Entry[];
  /** Index of the last entry (the snapshot's index when there is none after it). */
  lastIndex: number;
  /** Snapshot markers found in the WAL, oldest first. */
  markers: Array<{ index: number; term: number; file: string }>;
  warnings: RecoveryWarning[];
  /** Whether this call changed anything on disk. */
  repaired: boolean;
  /** WAL segments as they are after recovery. */
  segments: SegmentState[];
}


export function recoverDir(dd: DataDir, repair: boolean, loadContent: boolean, now: number): Recovery {
  const sync = dd.sync;
  const fsys = dd.fs;
  const warnings: RecoveryWarning[] = [];
  let repaired = false;

  if (dd.staleLockPid !== null && dd.mode === 'read') {
    warnings.push({ kind: 'stale-lock', file: dd.lockPath, message: `${dd.lockPath}: stale lock of process ${dd.staleLockPid}, which is not running` });
  }

  // 1. Orphaned temporaries and partial receives.
  for (const l of dd.leftovers()) {
    if (l.kind !== 'temp' && l.kind !== 'recv') continue;
    const what = l.kind === 'temp' ? 'orphaned temporary file' : 'partially received snapshot';
    if (repair) {
      try {
        fsys.unlink(l.path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(e, l.path, 'remove leftover');
      }
      repaired = true;
      warnings.push({ kind: l.kind === 'temp' ? 'temp-file' : 'partial-receive', file: l.path, message: `${l.path}: ${what} (${l.size} bytes), removed` });
    } else {
      warnings.push({ kind: l.kind === 'temp' ? 'temp-file' : 'partial-receive', file: l.path, message: `${l.path}: ${what} (${l.size} bytes), recovery would remove it` });
    }
  }
  if (repair && repaired) {
    fsyncDir(dd.path, sync);
    fsyncDir(dd.snapDir, sync);
    fsyncDir(dd.walDir, sync);
  }

  // 2. The newest snapshot that passes its checksums.
  let snapshot: RecoveredSnapshot | null = null;
  const candidates = dd.listSnapshots().reverse();
  for (const c of candidates) {
    try {
      const bytes = readFile(fsys, c.path, 'read snapshot');
      let header: SnapshotHeader;
      let content: SnapshotContent | null = null;
      if (loadContent) ({ header, content } = decodeSnapshot(bytes, c.path));
      else header = verifySnapshotBytes(bytes, c.path);
      if (header.index !== c.index || header.term !== c.term) {
        warnings.push({
          kind: 'snapshot-name',
          file: c.path,
          message: `${c.path}: file name says index ${c.index} term ${c.term} but the header says index ${header.index} term ${header.term}; the header is used`,
        });
      }
      snapshot = { header, path: c.path, content };
      break;
    } catch (e) {
      // Over a limit is not damage: the file is kept as it is and recovery stops (docs/FORMAT.md, "Limits").
      if (!(e instanceof StorageError) || e.code === 'EACCES' || e.code === 'LIMIT') throw e;
      const next = candidates[candidates.indexOf(c) + 1];
      const fallback = next ? `falling back to ${next.name}` : 'no older snapshot to fall back to';
      if (repair) {
        renameDurable(c.path, c.path + BROKEN_SUFFIX, sync);
        repaired = true;
        warnings.push({ kind: 'broken-snapshot', file: c.path, offset: e.offset, message: `${e.message}; renamed to ${c.name}${BROKEN_SUFFIX}, ${fallback}` });
      } else {
        warnings.push({ kind: 'broken-snapshot', file: c.path, offset: e.offset, message: `${e.message}; recovery would rename it to ${c.name}${BROKEN_SUFFIX}, ${fallback}` });
      }
    }
  }

  // 3. Replay the WAL.
  const files = statOrNull(fsys, dd.walDir) ? listSegmentFiles(dd.walDir, sync) : [];
  const segments: SegmentState[] = [];
  const replay = new LogReplay();

  for (let i = 0; i < files.length; i++) {
    const f = files[i]!;
    const isLast = i === files.length - 1;
    const scan = scanSegmentFile(f.path, sync);
    if (scan.damage) {
      const d = scan.damage;
      if (!isLast || !d.tailOnly) {
        const why = !isLast
          ? 'it is not in the last segment'
          : scan.version >= 2
            ? 'those bytes had been synced (a commit record after them, or covering them)'
            : 'valid records follow it, or the record is complete';
        throw new StorageError('CORRUPT_WAL', f.path, `WAL corrupt: ${d.reason}; ${why}, so this is not a torn write`, d.offset);
      }
      const tornName = `${f.name}.torn-${now}`;
      const lost = scan.size - scan.validEnd;
      if (repair) {
        const tornPath = path.join(dd.walDir, tornName);
        if (scan.header === null) {
          renameDurable(f.path, tornPath, sync);
        } else {
          cutSegment(fsys, f.path, tornPath, scan.validEnd, sync);
        }
        repaired = true;
        warnings.push({
          kind: 'torn-tail',
          file: f.path,
          offset: d.offset,
          message: `${f.path}: torn tail at offset ${d.offset} (${d.reason}); ${scan.header === null ? 'segment moved' : `cut ${lost} bytes`}, copy kept as ${tornName}`,
        });
      } else {
        warnings.push({
          kind: 'torn-tail',
          file: f.path,
          offset: d.offset,
          message: `${f.path}: torn tail at offset ${d.offset} (${d.reason}); recovery would ${scan.header === null ? 'set the segment aside' : `cut ${lost} bytes`} after keeping a copy`,
        });
      }
      if (scan.header === null) continue;
    }
    let size = repair && scan.damage ? scan.validEnd : scan.size;
    if (isLast && scan.version >= 2 && scan.validEnd > scan.sealedEnd) {
      // Records a sync wrote but never confirmed (no commit record covers them): kept, as a crash
      // after the write and before the fsync may leave them; with repair sealed by a commit record,
      // so that what follows them is appended after a commit again.
      const what = `records at offsets ${scan.sealedEnd}..${scan.validEnd} were written by a sync that never completed (no commit record covers them)`;
      if (repair) {
        size = sealTail(fsys, f.path, scan.sealedEnd, scan.validEnd, sync);
        repaired = true;
        warnings.push({ kind: 'unsealed-tail', file: f.path, offset: scan.sealedEnd, message: `${f.path}: ${what}; kept and sealed with a commit record` });
      } else {
        warnings.push({ kind: 'unsealed-tail', file: f.path, offset: scan.sealedEnd, message: `${f.path}: ${what}; recovery would keep them and seal them with a commit record` });
      }
    }
    if (isLast && repair && scan.version >= 2 && sync.fsync !== false) {
      // What was just read may be the page cache's, not the disk's: after a failed fsync the
      // kernel goes on showing pages it will never write ("fsyncgate"), so a restart without a
      // reboot reads them as valid records, and appending after them and then a power loss would
      // leave a hole in front of synced records (CORRUPT_WAL, for good). The segment the writer
      // appends to is written again, as a copy (never over itself: a torn rewrite could damage
      // synced records), so that what recovery read is on disk before anything follows it.
      writeFileAtomic(f.path, readFile(fsys, f.path, 'read the last WAL segment to write it again').subarray(0, size), sync);
    }
    const seg: SegmentState = {
      name: f.name,
      path: f.path,
      seq: f.seq,
      firstIndex: f.firstIndex,
      version: scan.version,
      size,
      entryRecords: 0,
      minIndex: 0,
      maxIndex: 0,
    };
    for (const r of scan.records) {
      const rec = r.record;
      if (rec.type === 'entry') {
        const e = rec.entry;
        seg.entryRecords += 1;
        if (seg.minIndex === 0 || e.index < seg.minIndex) seg.minIndex = e.index;
        if (e.index > seg.maxIndex) seg.maxIndex = e.index;
      }
      replay.apply(rec, { file: f.path, offset: r.offset });
    }
    segments.push(seg);
  }

  // 4. Entries after the snapshot.
  const snapPos = snapshot ? { index: snapshot.header.index, term: snapshot.header.term } : null;
  const entries = replay.entriesAfter(snapPos, dd.path);
  const hardState = replay.hardStateWith(snapPos);
  const markers = replay.markers;
  const si = snapPos ? snapPos.index : 0;
  const lastIndex = entries.length > 0 ? entries[entries.length - 1]!.index : si;
  if (hardState.commit > lastIndex) {
    // Committed entries are gone (or the hard state is damaged): the node would otherwise restart
    // believing entries committed that it cannot apply or send.
    const at = replay.hardStateAt;
    throw new StorageError(
      'COMMIT_BEYOND_LOG',
      at?.file ?? dd.walDir,
      `hard state commit index ${hardState.commit} is beyond what recovery holds (last index ${lastIndex}${snapPos ? `, snapshot at ${si}` : ', no snapshot'}): committed entries are missing`,
      at?.offset,
    );
  }
  return {
    snapshot,
    hardState,
    entries,
    lastIndex,
    markers,
    warnings,
    repaired,
    segments,
  };
}

/**
 * Append zero padding and a commit record covering [sealedEnd, validEnd) to the last segment (which
 * is `validEnd` bytes long after any cut), fsync it; returns its new size.
 */
function sealTail(fsys: FileSystem, file: string, sealedEnd: number, validEnd: number, sync: SyncOptions): number {
  const bytes = readFile(fsys, file, 'read the segment to seal').subarray(sealedEnd, validEnd);
  const tail = sealBatch(sealedEnd, [bytes]);
  let fd: number;
  try {
    fd = fsys.open(file, 'r+');
  } catch (e) {
    throw fsError(e, file, 'seal the segment');
  }
  let pos = validEnd;
  try {
    for (const t of tail) {
      let off = 0;
      while (off < t.length) {
        let n: number;
        try {
          n = fsys.write(fd, t, off, t.length - off, pos);
        } catch (e) {
          throw fsError(e, file, 'seal the segment');
        }
        if (n <= 0) throw fsError(new Error(`write returned ${n}`), file, 'seal the segment');
        off += n;
        pos += n;
      }
    }
    if (sync.fsync !== false) fsyncFd(fsys, fd, file, 'fsync the sealed segment');
  } finally {
    closeQuietly(fsys, fd);
  }
  return pos;
}

/** Keep a copy of the segment at `copyPath`, then cut it to `validEnd` bytes. */
function cutSegment(fsys: FileSystem, file: string, copyPath: string, validEnd: number, sync: SyncOptions): void {
  const bytes = readFile(fsys, file, 'read the torn segment');
  let cfd: number;
  try {
    cfd = fsys.open(copyPath, 'wx', 0o644);
  } catch (e) {
    throw fsError(e, copyPath, 'keep a copy of the torn segment');
  }
  try {
    writeAll(fsys, cfd, [bytes], copyPath);
    if (sync.fsync !== false) fsyncFd(fsys, cfd, copyPath, 'fsync the copy of the torn segment');
  } finally {
    closeQuietly(fsys, cfd);
  }
  fsyncDir(path.dirname(copyPath), sync);
  let fd: number;
  try {
    fd = fsys.open(file, 'r+');
  } catch (e) {
    throw fsError(e, file, 'cut the torn tail');
  }
  try {
    try {
      fsys.ftruncate(fd, Math.max(validEnd, SEGMENT_HEADER_BYTES));
    } catch (e) {
      throw fsError(e, file, 'cut the torn tail');
    }
    if (sync.fsync !== false) fsyncFd(fsys, fd, file, 'fsync the cut segment');
  } finally {
    closeQuietly(fsys, fd);
  }
}
