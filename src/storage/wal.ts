/**
 * Write-ahead log, format version 1 (see docs/FORMAT.md).
 *
 * Segment file `<seq %016x>-<firstIndex %016x>.wal`:
 *   header (32 bytes): magic "RSNAPWAL", u16 BE version, u16 BE flags (0), u64 BE seq,
 *                      u64 BE first index, u32 BE CRC-32 of bytes [0, 28)
 *   records:           u32 BE length L (of type + payload), u32 BE CRC-32 of (type + payload),
 *                      u8 type, CBOR payload (L - 1 bytes)
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Entry, HardState, Json } from '../raft/types.js';
import { NotJsonError, crc32, decodeCborRaw, encodeCbor, toJson } from './codec.js';
import { StorageError, fsError } from './errors.js';
import { fsyncDir, hex16, listDir, readFile, tempName, writeAll, type SyncOptions } from './fsutil.js';

export const WAL_MAGIC = Buffer.from('RSNAPWAL', 'latin1');
export const WAL_FORMAT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 32;
export const RECORD_HEADER_BYTES = 9;
/** Largest record accepted when reading (bounds what a damaged length field can claim). */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;
export const DEFAULT_SEGMENT_BYTES = 4 * 1024 * 1024;

export const RECORD_ENTRY = 1;
export const RECORD_HARD_STATE = 2;
export const RECORD_SNAPSHOT = 3;

export type WalRecord =
  | { type: 'entry'; entry: Entry }
  | { type: 'hardState'; hardState: HardState }
  /** A snapshot covering the log through `index` (term `term`) was taken or installed. */
  | { type: 'snapshot'; index: number; term: number; file: string };

export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, votedFor: null, commit: 0 }) as HardState;

export function segmentFileName(seq: number, firstIndex: number): string {
  return `${hex16(seq)}-${hex16(firstIndex)}.wal`;
}

const SEG_NAME_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;

export function parseSegmentFileName(name: string): { seq: number; firstIndex: number } | null {
  const m = SEG_NAME_RE.exec(name);
  if (!m) return null;
  return { seq: parseInt(m[1]!, 16), firstIndex: parseInt(m[2]!, 16) };
}

export function encodeSegmentHeader(seq: number, firstIndex: number, version = WAL_FORMAT_VERSION): Buffer {
  const b = Buffer.alloc(SEGMENT_HEADER_BYTES);
  WAL_MAGIC.copy(b, 0);
  b.writeUInt16BE(version, 8);
  b.writeUInt16BE(0, 10);
  b.writeBigUInt64BE(BigInt(seq), 12);
  b.writeBigUInt64BE(BigInt(firstIndex), 20);
  b.writeUInt32BE(crc32(b.subarray(0, 28)), 28);
  return b;
}

export function encodeRecord(rec: WalRecord): Buffer {
  let type: number;
  let body: unknown;
  switch (rec.type) {
    case 'entry':
      type = RECORD_ENTRY;
      body = [rec.entry.index, rec.entry.term, rec.entry.data];
      break;
    case 'hardState':
      type = RECORD_HARD_STATE;
      body = [rec.hardState.term, rec.hardState.votedFor, rec.hardState.commit];
      break;
    case 'snapshot':
      type = RECORD_SNAPSHOT;
      body = [rec.index, rec.term, rec.file];
      break;
  }
  const payload = encodeCbor(body);
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  out.writeUInt32BE(payload.length + 1, 0);
  out[8] = type;
  payload.copy(out, RECORD_HEADER_BYTES);
  out.writeUInt32BE(crc32(out.subarray(8)), 4);
  return out;
}

const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Decode type + payload; null when it is not a valid record. */
function decodeRecordBody(type: number, payload: Uint8Array): WalRecord | null {
  let v: Json;
  try {
    v = toJson(decodeCborRaw(payload));
  } catch (e) {
    if (e instanceof NotJsonError || e instanceof Error) return null;
    throw e;
  }
  if (!Array.isArray(v) || v.length !== 3) return null;
  const [a, b, c] = v;
  switch (type) {
    case RECORD_ENTRY:
      if (!isUint(a) || a < 1 || !isUint(b)) return null;
      return { type: 'entry', entry: { index: a, term: b, data: c! } };
    case RECORD_HARD_STATE:
      if (!isUint(a) || !(b === null || typeof b === 'string') || !isUint(c)) return null;
      return { type: 'hardState', hardState: { term: a, votedFor: b, commit: c } };
    case RECORD_SNAPSHOT:
      if (!isUint(a) || !isUint(b) || typeof c !== 'string') return null;
      return { type: 'snapshot', index: a, term: b, file: c };
    default:
      return null;
  }
}

/** Try to parse a record at `pos`; returns its total size or a reason it is not one. */
function tryRecord(buf: Buffer, pos: number): { size: number; record: WalRecord } | { reason: string; incomplete: boolean } {
  const remaining = buf.length - pos;
  if (remaining < RECORD_HEADER_BYTES) return { reason: `incomplete record header (${remaining} bytes left)`, incomplete: true };
  const len = buf.readUInt32BE(pos);
  if (len === 0 || len > MAX_RECORD_BYTES) return { reason: `impossible record length ${len}`, incomplete: false };
  if (8 + len > remaining) return { reason: `incomplete record: length ${len} but only ${remaining - 8} bytes left`, incomplete: true };
  const stored = buf.readUInt32BE(pos + 4);
  const body = buf.subarray(pos + 8, pos + 8 + len);
  const actual = crc32(body);
  if (stored !== actual) return { reason: `record checksum mismatch (stored ${hex8(stored)}, computed ${hex8(actual)})`, incomplete: false };
  const rec = decodeRecordBody(body[0]!, body.subarray(1));
  if (!rec) return { reason: `record of type ${body[0]} has an invalid payload`, incomplete: false };
  return { size: 8 + len, record: rec };
}

function hex8(n: number): string {
  return '0x' + n.toString(16).padStart(8, '0');
}

export interface SegmentHeaderInfo {
  version: number;
  seq: number;
  firstIndex: number;
}

export interface ScannedRecord {
  offset: number;
  size: number;
  record: WalRecord;
}

export interface SegmentDamage {
  offset: number;
  reason: string;
  /**
   * True when nothing valid follows the damage (a torn tail if this is the last segment);
   * false when a valid record follows it (corruption in the middle of the log).
   */
  tailOnly: boolean;
}

export interface SegmentScan {
  file: string;
  size: number;
  header: SegmentHeaderInfo | null;
  records: ScannedRecord[];
  /** End of the last good record (where a torn tail would be cut). */
  validEnd: number;
  damage: SegmentDamage | null;
}

/** Parse and check a segment header; throws CORRUPT_WAL / UNSUPPORTED_VERSION, null when too short. */
export function parseSegmentHeader(buf: Buffer, file: string): SegmentHeaderInfo | null {
  if (buf.length < SEGMENT_HEADER_BYTES) {
    if (!WAL_MAGIC.subarray(0, Math.min(8, buf.length)).equals(buf.subarray(0, Math.min(8, buf.length)))) {
      throw new StorageError('CORRUPT_WAL', file, 'not a WAL segment (bad magic)', 0);
    }
    return null;
  }
  if (!buf.subarray(0, 8).equals(WAL_MAGIC)) throw new StorageError('CORRUPT_WAL', file, 'not a WAL segment (bad magic)', 0);
  const version = buf.readUInt16BE(8);
  if (version !== WAL_FORMAT_VERSION) {
    throw new StorageError('UNSUPPORTED_VERSION', file, `unsupported WAL format version ${version} (this build reads version ${WAL_FORMAT_VERSION})`, 8);
  }
  const stored = buf.readUInt32BE(28);
  const actual = crc32(buf.subarray(0, 28));
  if (stored !== actual) {
    throw new StorageError('CORRUPT_WAL', file, `WAL segment header checksum mismatch (stored ${hex8(stored)}, computed ${hex8(actual)})`, 28);
  }
  return { version, seq: Number(buf.readBigUInt64BE(12)), firstIndex: Number(buf.readBigUInt64BE(20)) };
}

/**
 * Read every record of one segment held in memory. Stops at the first damaged record and says
 * whether any valid record follows it. Throws for a damaged segment header.
 */
export function scanSegmentBytes(buf: Buffer, file: string): SegmentScan {
  const header = parseSegmentHeader(buf, file);
  const scan: SegmentScan = { file, size: buf.length, header, records: [], validEnd: 0, damage: null };
  if (!header) {
    scan.damage = { offset: 0, reason: `incomplete segment header (${buf.length} of ${SEGMENT_HEADER_BYTES} bytes)`, tailOnly: true };
    return scan;
  }
  let pos = SEGMENT_HEADER_BYTES;
  scan.validEnd = pos;
  while (pos < buf.length) {
    const r = tryRecord(buf, pos);
    if ('reason' in r) {
      scan.damage = { offset: pos, reason: r.reason, tailOnly: !validRecordAfter(buf, pos + 1) };
      break;
    }
    scan.records.push({ offset: pos, size: r.size, record: r.record });
    pos += r.size;
    scan.validEnd = pos;
  }
  return scan;
}

/** Is there a valid record starting anywhere in [from, end)? */
function validRecordAfter(buf: Buffer, from: number): boolean {
  for (let q = from; q + RECORD_HEADER_BYTES <= buf.length; q++) {
    const len = buf.readUInt32BE(q);
    if (len < 2 || 8 + len > buf.length - q) continue;
    const t = buf[q + 8]!;
    if (t < RECORD_ENTRY || t > RECORD_SNAPSHOT) continue;
    const r = tryRecord(buf, q);
    if ('size' in r) return true;
  }
  return false;
}

export function scanSegmentFile(file: string): SegmentScan {
  return scanSegmentBytes(readFile(file), file);
}

export interface SegmentFile {
  name: string;
  path: string;
  seq: number;
  /** First index from the file name. */
  firstIndex: number;
}

/** WAL segment files of a directory in sequence order (other files are ignored). */
export function listSegmentFiles(walDir: string): SegmentFile[] {
  const out: SegmentFile[] = [];
  for (const name of listDir(walDir)) {
    const p = parseSegmentFileName(name);
    if (p) out.push({ name, path: path.join(walDir, name), ...p });
  }
  return out.sort((a, b) => a.seq - b.seq);
}

export type WalItem =
  | (WalRecord & { file: string; offset: number; size: number })
  | { type: 'damage'; file: string; offset: number; reason: string; tailOnly: boolean; lastSegment: boolean };

/**
 * Streaming reader over the records of a WAL directory (or of the given segment files), one
 * segment in memory at a time. A damaged record ends its segment with a `damage` item; reading
 * continues with the next segment. A damaged segment header throws StorageError.
 */
export function* readWal(walDirOrFiles: string | string[]): Generator<WalItem> {
  const files = typeof walDirOrFiles === 'string' ? listSegmentFiles(walDirOrFiles).map((s) => s.path) : walDirOrFiles;
  for (let i = 0; i < files.length; i++) {
    const scan = scanSegmentFile(files[i]!);
    for (const r of scan.records) yield { ...r.record, file: scan.file, offset: r.offset, size: r.size };
    if (scan.damage) yield { type: 'damage', file: scan.file, ...scan.damage, lastSegment: i === files.length - 1 };
  }
}

// ------------------------------------------------------------------------------------------------
// Writer

export interface SegmentState {
  name: string;
  path: string;
  seq: number;
  firstIndex: number;
  size: number;
  /** Entry records in the segment. */
  entryRecords: number;
  /** Lowest and highest entry index recorded in the segment (0 when none). */
  minIndex: number;
  maxIndex: number;
}

export interface WalWriterOptions extends SyncOptions {
  segmentBytes?: number;
}

interface Pending {
  buf: Buffer;
  entryIndex: number;
  hardState: HardState | null;
}

/**
 * Appends records to the newest segment; `sync()` writes everything buffered and fsyncs once.
 * Rotates to a new segment (starting with the current hard state) when a segment reaches
 * `segmentBytes`.
 */
export class WalWriter {
  readonly segments: SegmentState[];
  private fd: number | null = null;
  private pending: Pending[] = [];
  private hardState: HardState;
  private lastIndex: number;
  private readonly segmentBytes: number;

  constructor(
    readonly walDir: string,
    segments: SegmentState[],
    state: { hardState: HardState; lastIndex: number },
    private readonly opts: WalWriterOptions = {},
  ) {
    this.segments = segments;
    this.hardState = { ...state.hardState };
    this.lastIndex = state.lastIndex;
    this.segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  }

  /** Buffer a record (written by the next `sync`). */
  add(rec: WalRecord): void {
    const buf = encodeRecord(rec);
    this.pending.push({
      buf,
      entryIndex: rec.type === 'entry' ? rec.entry.index : 0,
      hardState: rec.type === 'hardState' ? { ...rec.hardState } : null,
    });
  }

  /** Drop buffered records (a simulated crash before sync). */
  discardPending(): void {
    this.pending = [];
  }

  get hasPending(): boolean {
    return this.pending.length > 0;
  }

  /** Write all buffered records, rotating as needed, then fsync once. */
  sync(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    let chunks: Buffer[] = [];
    let cur = this.current();
    for (const p of batch) {
      if (!cur || (cur.size >= this.segmentBytes && cur.size > SEGMENT_HEADER_BYTES)) {
        if (cur && chunks.length > 0) this.writeOut(cur, chunks);
        chunks = [];
        if (cur) this.closeCurrent(true);
        cur = this.rotate(p.entryIndex > 0 ? p.entryIndex : this.lastIndex + 1);
      }
      chunks.push(p.buf);
      cur.size += p.buf.length;
      if (p.entryIndex > 0) {
        this.lastIndex = p.entryIndex;
        cur.entryRecords += 1;
        if (cur.minIndex === 0 || p.entryIndex < cur.minIndex) cur.minIndex = p.entryIndex;
        if (p.entryIndex > cur.maxIndex) cur.maxIndex = p.entryIndex;
      }
      if (p.hardState) this.hardState = p.hardState;
    }
    if (cur && chunks.length > 0) this.writeOut(cur, chunks);
    if (this.fd !== null && this.opts.fsync !== false) {
      try {
        fs.fsyncSync(this.fd);
      } catch (e) {
        throw fsError(e, cur!.path, 'fsync WAL segment');
      }
    }
  }

  private current(): SegmentState | null {
    return this.segments.length > 0 ? this.segments[this.segments.length - 1]! : null;
  }

  private writeOut(seg: SegmentState, chunks: Buffer[]): void {
    if (this.fd === null) {
      try {
        this.fd = fs.openSync(seg.path, 'a');
      } catch (e) {
        throw fsError(e, seg.path, 'open WAL segment');
      }
    }
    writeAll(this.fd, chunks, seg.path);
  }

  private closeCurrent(sync: boolean): void {
    if (this.fd === null) return;
    const seg = this.current()!;
    try {
      if (sync && this.opts.fsync !== false) fs.fsyncSync(this.fd);
    } catch (e) {
      throw fsError(e, seg.path, 'fsync WAL segment');
    } finally {
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }

  /** Start a new segment holding the header and the current hard state (created atomically). */
  private rotate(firstIndex: number): SegmentState {
    const prev = this.current();
    const seq = prev ? prev.seq + 1 : 1;
    const name = segmentFileName(seq, firstIndex);
    const file = path.join(this.walDir, name);
    const head = [encodeSegmentHeader(seq, firstIndex), encodeRecord({ type: 'hardState', hardState: this.hardState })];
    const tmp = tempName(file);
    let fd: number;
    try {
      fd = fs.openSync(tmp, 'wx', 0o644);
    } catch (e) {
      throw fsError(e, this.walDir, 'create WAL segment');
    }
    try {
      writeAll(fd, head, tmp);
      if (this.opts.fsync !== false) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    try {
      fs.renameSync(tmp, file);
    } catch (e) {
      throw fsError(e, file, 'rename new WAL segment into place');
    }
    fsyncDir(this.walDir, this.opts);
    const seg: SegmentState = {
      name,
      path: file,
      seq,
      firstIndex,
      size: head[0]!.length + head[1]!.length,
      entryRecords: 0,
      minIndex: 0,
      maxIndex: 0,
    };
    this.segments.push(seg);
    return seg;
  }

  /** Force a new segment at the next write (e.g. so that a covered active segment can be dropped). */
  forceRotate(): void {
    this.sync();
    this.closeCurrent(true);
    this.rotate(this.lastIndex + 1);
  }

  /**
   * Delete the oldest segments whose entries all lie at or below `upToIndex` (never the segment
   * being written). Returns the deleted segments.
   */
  deleteCovered(upToIndex: number): SegmentState[] {
    this.sync();
    const removed: SegmentState[] = [];
    while (this.segments.length > 1) {
      const s = this.segments[0]!;
      if (s.maxIndex > upToIndex) break;
      try {
        fs.unlinkSync(s.path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(e, s.path, 'delete WAL segment');
      }
      removed.push(s);
      this.segments.shift();
    }
    if (removed.length > 0) fsyncDir(this.walDir, this.opts);
    return removed;
  }

  close(): void {
    this.sync();
    this.closeCurrent(true);
  }

  get currentHardState(): HardState {
    return this.hardState;
  }
}
