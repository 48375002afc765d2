/**
 * `inspect DIR --records` and `inspect FILE.wal`: the raw WAL, record by record, as raft-wal's
 * waldump shows it: every segment in order with its header, then each record with its byte offset
 * and size (entries, hard states, snapshot markers, and format 2's zero padding and commit
 * records). Damage is shown where it is (offset and reason, torn tail or corrupt) and the next
 * segment is read; nothing is repaired. The bytes are read by the storage library (src/storage/wal.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Json } from '../raft/types.js';
import {
  SEGMENT_HEADER_BYTES,
  SNAPSHOT_MAGIC,
  StorageError,
  WAL_MAGIC,
  listSegmentFiles,
  parseSegmentFileName,
  scanSegmentFile,
  type SegmentScan,
} from '../storage/index.js';
import { ToolError, toToolError } from './errors.js';
import { retype, underBase } from './files.js';
import { describeEntry, type EntryCommand } from './inspect-log.js';
import { guard, openReadOnly } from './load.js';

/** One record of a segment, or what is found instead of one. */
export type RawRecord =
  | { offset: number; size: number; type: 'header'; version: number; seq: number; firstIndex: number }
  | ({ offset: number; size: number; type: 'entry'; sealed: boolean; index: number; term: number } & EntryCommand & { data: Json })
  | { offset: number; size: number; type: 'hardState'; sealed: boolean; term: number; votedFor: string | null; commit: number }
  | { offset: number; size: number; type: 'snapshot'; sealed: boolean; index: number; term: number; file: string }
  | { offset: number; size: number; type: 'padding' }
  | { offset: number; size: number; type: 'commit'; batchStart: number; batchCrc: number }
  /** From `offset` to the end of the file (`size` bytes): not read. `torn`: can be a crash's torn tail. */
  | { offset: number; size: number; type: 'damage'; reason: string; torn: boolean };

export type RawRecordType = RawRecord['type'];

export interface SegmentRecords {
  /** As the user typed the base path. */
  file: string;
  /** From the file name (null when it is not a segment name), else from the header. */
  seq: number | null;
  firstIndex: number | null;
  size: number;
  /** The header's format version (null when the header cannot be read). */
  version: number | null;
  status: 'ok' | 'torn tail' | 'damaged' | 'unreadable';
  /** One line when status is not ok. */
  problem: string | null;
  entries: number;
  /** Index range of the entries (0..0 when none). */
  minIndex: number;
  maxIndex: number;
  records: RawRecord[];
}

export interface RecordsResult {
  kind: 'records';
  /** The data directory or segment file, as given. */
  path: string;
  segments: SegmentRecords[];
  /** Entry, hard state and snapshot marker records of every segment (framing not counted). */
  records: number;
  /** Commit records (format 2: one per write). */
  commits: number;
  entries: number;
  bytes: number;
  /** Whether a segment is damaged or unreadable (a torn tail of the last segment is not). */
  damaged: boolean;
  warnings: string[];
}

function segmentRecords(file: string, shown: string, isLast: boolean, base: string): SegmentRecords {
  const named = parseSegmentFileName(path.basename(file));
  const out: SegmentRecords = {
    file: shown,
    seq: named?.seq ?? null,
    firstIndex: named?.firstIndex ?? null,
    size: 0,
    version: null,
    status: 'ok',
    problem: null,
    entries: 0,
    minIndex: 0,
    maxIndex: 0,
    records: [],
  };
  let scan: SegmentScan;
  try {
    out.size = fs.statSync(file).size;
    scan = scanSegmentFile(file, { framing: true });
  } catch (e) {
    if (!(e instanceof StorageError) && !(e instanceof Error && 'code' in e)) throw e;
    const t = toToolError(e, file);
    out.status = 'unreadable';
    out.problem = retype(base, t.problem);
    if (e instanceof StorageError && e.offset !== undefined) {
      out.records.push({ offset: e.offset, size: Math.max(0, out.size - e.offset), type: 'damage', reason: out.problem, torn: false });
    }
    return out;
  }
  const h = scan.header;
  if (h) {
    out.version = h.version;
    out.seq ??= h.seq;
    out.firstIndex ??= h.firstIndex;
    out.records.push({ offset: 0, size: SEGMENT_HEADER_BYTES, type: 'header', version: h.version, seq: h.seq, firstIndex: h.firstIndex });
  }
  const rows: RawRecord[] = [];
  for (const r of scan.records) {
    const sealed = r.offset < scan.sealedEnd;
    const rec = r.record;
    if (rec.type === 'entry') {
      const e = rec.entry;
      rows.push({ offset: r.offset, size: r.size, type: 'entry', sealed, index: e.index, term: e.term, ...describeEntry(e.data), data: e.data });
      out.entries++;
      if (out.minIndex === 0 || e.index < out.minIndex) out.minIndex = e.index;
      if (e.index > out.maxIndex) out.maxIndex = e.index;
    } else if (rec.type === 'hardState') {
      rows.push({ offset: r.offset, size: r.size, type: 'hardState', sealed, ...rec.hardState });
    } else {
      rows.push({ offset: r.offset, size: r.size, type: 'snapshot', sealed, index: rec.index, term: rec.term, file: rec.file });
    }
  }
  for (const f of scan.framing ?? []) {
    if (f.type === 'padding') rows.push({ offset: f.offset, size: f.size, type: 'padding' });
    else rows.push({ offset: f.offset, size: f.size, type: 'commit', batchStart: f.batchStart, batchCrc: f.batchCrc });
  }
  rows.sort((a, b) => a.offset - b.offset);
  out.records.push(...rows);
  const d = scan.damage;
  if (d) {
    const torn = d.tailOnly && isLast;
    out.status = torn ? 'torn tail' : 'damaged';
    out.problem = `${torn ? 'torn tail' : d.tailOnly ? 'damaged record (a torn tail, were this the last segment)' : 'corrupt record'} at offset ${d.offset}: ${d.reason}`;
    out.records.push({ offset: d.offset, size: scan.size - d.offset, type: 'damage', reason: d.reason, torn });
  }
  return out;
}

/** The totals of a records view, added up a segment at a time. */
export class RecordTotals {
  segments = 0;
  records = 0;
  commits = 0;
  entries = 0;
  bytes = 0;
  damaged = false;

  add(s: SegmentRecords): void {
    this.segments++;
    for (const r of s.records) {
      if (r.type === 'entry' || r.type === 'hardState' || r.type === 'snapshot') this.records++;
      else if (r.type === 'commit') this.commits++;
    }
    this.entries += s.entries;
    this.bytes += s.size;
    if (s.status === 'damaged' || s.status === 'unreadable') this.damaged = true;
  }
}

/**
 * The records view, a segment at a time (one segment's records in memory, whatever the size of
 * the WAL). `warnings` holds what opening found (a live lock); a torn tail's warning is added when
 * its segment is read.
 */
export interface RecordsScan {
  path: string;
  warnings: string[];
  segments(): Generator<SegmentRecords>;
}

function tornWarning(s: SegmentRecords, single: boolean): string {
  return `${s.file}: ${s.problem}; ${single ? 'as the last segment of a data directory, recovery would cut it there' : 'recovery would cut it there'} after keeping a copy`;
}

/** Every record of every WAL segment of a data directory, in order, streamed. Read-only. */
export function scanRecords(dir: string): RecordsScan {
  const warnings: string[] = [];
  const dd = openReadOnly(dir, warnings);
  const files = guard(() => (fs.existsSync(dd.walDir) ? listSegmentFiles(dd.walDir) : []), dir);
  return {
    path: dir,
    warnings,
    *segments() {
      for (const [i, f] of files.entries()) {
        const s = segmentRecords(f.path, underBase(dir, f.path), i === files.length - 1, dir);
        if (s.status === 'torn tail') warnings.push(tornWarning(s, false));
        yield s;
      }
    },
  };
}

/** The records of one segment file (a torn tail is judged as if it were the last segment). */
export function scanSegmentRecords(file: string): RecordsScan {
  const warnings: string[] = [];
  return {
    path: file,
    warnings,
    *segments() {
      const s = segmentRecords(file, file, true, file);
      if (s.status === 'torn tail') warnings.push(tornWarning(s, true));
      yield s;
    },
  };
}

/** A whole records view in memory (tests, small WALs): the document `--records --json` prints. */
export function collectRecords(scan: RecordsScan): RecordsResult {
  const segments = [...scan.segments()];
  const t = new RecordTotals();
  for (const s of segments) t.add(s);
  return { kind: 'records', path: scan.path, segments, records: t.records, commits: t.commits, entries: t.entries, bytes: t.bytes, damaged: t.damaged, warnings: scan.warnings };
}

export function readRecords(dir: string): RecordsResult {
  return collectRecords(scanRecords(dir));
}

export function readSegmentFile(file: string): RecordsResult {
  return collectRecords(scanSegmentRecords(file));
}

/** What a file is, from its first bytes: a snapshot, a WAL segment, or (ToolError) neither. */
export function fileKind(file: string): 'snapshot' | 'wal' {
  // Not opened unless it is a regular file: a FIFO would block the read until a writer came.
  const st = guard(() => fs.statSync(file), file);
  if (!st.isFile()) throw new ToolError('NOT_SNAPSHOT', file, `${special(st)}, not a snapshot or WAL segment`);
  const head = Buffer.alloc(8);
  let n: number;
  const fd = guard(() => fs.openSync(file, 'r'), file);
  try {
    n = guard(() => fs.readSync(fd, head, 0, 8, 0), file);
  } finally {
    fs.closeSync(fd);
  }
  if (n === 0) throw new ToolError('NOT_SNAPSHOT', file, 'empty file, not a snapshot or WAL segment');
  const got = head.subarray(0, n);
  // A prefix of a magic is that kind of file, cut short (its reader says how).
  if (SNAPSHOT_MAGIC.subarray(0, n).equals(got)) return 'snapshot';
  if (WAL_MAGIC.subarray(0, n).equals(got)) return 'wal';
  const hex = [...got].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  throw new ToolError(
    'NOT_SNAPSHOT',
    file,
    `not a raftsnap snapshot or WAL segment: it starts with bytes ${hex}, neither "${SNAPSHOT_MAGIC.toString('latin1')}" nor "${WAL_MAGIC.toString('latin1')}" (at offset 0)`,
  );
}

function special(st: fs.Stats): string {
  if (st.isFIFO()) return 'a named pipe (FIFO)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}
