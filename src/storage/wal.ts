/**
 * Write-ahead log, format version 1 (see docs/FORMAT.md).
 *
 * Segment file `<seq %016x>-<firstIndex %016x>.wal`:
 *   header (32 bytes): magic "RSNAPWAL", u16 BE version, u16 BE flags (0), u64 BE seq,
 *                      u64 BE first index, u32 BE CRC-32 of bytes [0, 28)
 *   records:           u32 BE length L (of type + payload), u32 BE CRC-32 of (type + payload),
 *                      u8 type, CBOR payload (L - 1 bytes)
 */
import path from 'node:path';
import type { Entry, HardState, Json } from '../raft/types.js';
import { NotJsonError, crc32, decodeCborRaw, encodeCbor, toJson } from './codec.js';
import { StorageError } from './errors.js';
import { fsOf, hex16, listDir, readFile, type IoOptions } from './fsutil.js';

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

export function scanSegmentFile(file: string, opts: IoOptions = {}): SegmentScan {
  return scanSegmentBytes(readFile(fsOf(opts), file), file);
}

export interface SegmentFile {
  name: string;
  path: string;
  seq: number;
  /** First index from the file name. */
  firstIndex: number;
}

/** WAL segment files of a directory in sequence order (other files are ignored). */
export function listSegmentFiles(walDir: string, opts: IoOptions = {}): SegmentFile[] {
  const out: SegmentFile[] = [];
  for (const name of listDir(fsOf(opts), walDir)) {
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
export function* readWal(walDirOrFiles: string | string[], opts: IoOptions = {}): Generator<WalItem> {
  const files = typeof walDirOrFiles === 'string' ? listSegmentFiles(walDirOrFiles, opts).map((s) => s.path) : walDirOrFiles;
  for (let i = 0; i < files.length; i++) {
    const scan = scanSegmentFile(files[i]!, opts);
    for (const r of scan.records) yield { ...r.record, file: scan.file, offset: r.offset, size: r.size };
    if (scan.damage) yield { type: 'damage', file: scan.file, ...scan.damage, lastSegment: i === files.length - 1 };
  }
}

