/**
 * Write-ahead log, format version 2 (version 1 is still read; see docs/FORMAT.md).
 *
 * Segment file `<seq %016x>-<firstIndex %016x>.wal`:
 *   header (32 bytes): magic "RSNAPWAL", u16 BE version, u16 BE flags (0), u64 BE seq,
 *                      u64 BE first index, u32 BE CRC-32 of bytes [0, 28)
 *   records:           u32 BE length L (of type + payload), u32 BE CRC-32 of (type + payload),
 *                      u8 type, CBOR payload (L - 1 bytes)
 *   version 2: every write (one sync) ends with zero padding to a 512-byte boundary and a commit
 *   record there, `[batchStart, CRC-32 of the bytes from batchStart to the commit]`. A commit
 *   never shares a sector with the records it covers, which is what tells a torn tail (a crash
 *   garbles at most the last sector written) from bit rot in synced records.
 */
import path from 'node:path';
import type { Entry, HardState, Json } from '../raft/types.js';
import { LIMIT_NAMES, VALUE_FIELDS, maxItemCborBytes, readLimits, surelySmallPairBytes, type ReadLimits } from '../limits.js';
import { CborScanError, NotJsonError, cborScan, crc32, decodeCborRaw, encodeCbor, toJson } from './codec.js';
import { StorageError } from './errors.js';
import { fsOf, hex16, listDir, readFile, type IoOptions } from './fsutil.js';

export const WAL_MAGIC = Buffer.from('RSNAPWAL', 'latin1');
export const WAL_FORMAT_VERSION = 2;
/** Versions this build reads (1: no commit records; read only, never appended to). */
export const WAL_READ_VERSIONS: readonly number[] = [1, 2];
export const SEGMENT_HEADER_BYTES = 32;
/** Sector size the format assumes: a crash can garble the last sector written, no other. */
export const WAL_SECTOR_BYTES = 512;
export const RECORD_HEADER_BYTES = 9;
/** Largest record accepted when reading (bounds what a damaged length field can claim). */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;
export const DEFAULT_SEGMENT_BYTES = 4 * 1024 * 1024;

export const RECORD_ENTRY = 1;
export const RECORD_HARD_STATE = 2;
export const RECORD_SNAPSHOT = 3;
/** Version 2: the end of one write (sync), at a 512-byte boundary. Framing, not a WalRecord. */
export const RECORD_COMMIT = 4;

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

/** A commit record: bytes [batchStart, its own offset) of the segment have CRC-32 `batchCrc`. */
export interface CommitRecord {
  type: 'commit';
  batchStart: number;
  batchCrc: number;
}

function frame(type: number, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  out.writeUInt32BE(payload.length + 1, 0);
  out[8] = type;
  payload.copy(out, RECORD_HEADER_BYTES);
  out.writeUInt32BE(crc32(out.subarray(8)), 4);
  return out;
}

export function encodeCommit(batchStart: number, batchCrc: number): Buffer {
  return frame(RECORD_COMMIT, encodeCbor([batchStart, batchCrc]));
}

/**
 * The bytes that close a write of `chunks` starting at file offset `start` (version 2): zero
 * padding to the next 512-byte boundary, then the commit record covering [start, boundary).
 */
export function sealBatch(start: number, chunks: readonly Uint8Array[]): Buffer[] {
  let end = start;
  let crc = 0;
  for (const c of chunks) {
    crc = crc32(c, crc);
    end += c.length;
  }
  const padLen = (WAL_SECTOR_BYTES - (end % WAL_SECTOR_BYTES)) % WAL_SECTOR_BYTES;
  const pad = Buffer.alloc(padLen);
  if (padLen > 0) crc = crc32(pad, crc);
  return padLen > 0 ? [pad, encodeCommit(start, crc)] : [encodeCommit(start, crc)];
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
  return frame(type, encodeCbor(body));
}

const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * A record that passes its checksum but holds more than a reader accepts (docs/FORMAT.md,
 * "Limits"): refused as LIMIT naming the segment and offset, never taken for a torn tail.
 */
class RecordLimit extends Error {}

/**
 * Decode type + payload; null when it is not a valid record (of this segment's version). The CBOR
 * heads are scanned against `limits` before anything is decoded (a string or an array longer than
 * the record, a key or value nested deeper or larger than serve accepts: RecordLimit).
 */
function decodeRecordBody(type: number, payload: Uint8Array, version: number, limits: ReadLimits): WalRecord | CommitRecord | null {
  let v: Json;
  try {
    // An entry [index, term, {op, key, value, ...}] holds a key or value two levels below the top.
    const lim = { maxDepth: limits.maxDepth + 2, maxStringBytes: maxItemCborBytes(limits) };
    if (cborScan(payload, 0, payload.length, payload.length, lim) !== payload.length) return null;
    v = toJson(decodeCborRaw(payload));
  } catch (e) {
    if (e instanceof CborScanError && e.kind === 'limit') {
      const what =
        e.which === 'depth'
          ? `a key or value nested more than ${limits.maxDepth} levels deep, deeper than serve accepts (${raise('maxDepth')})`
          : e.which === 'string'
            ? `a string of ${e.declared} bytes, larger than a key and value within the limit of ${limits.maxValueBytes} bytes as JSON that serve accepts (${raise('maxValueBytes')})`
            : e.message;
      throw new RecordLimit(`record of type ${type} holds ${what}`);
    }
    if (e instanceof NotJsonError || e instanceof Error) return null;
    throw e;
  }
  if (type === RECORD_COMMIT && version >= 2) {
    if (!Array.isArray(v) || v.length !== 2 || !isUint(v[0]) || !isUint(v[1]) || v[1] > 0xffffffff) return null;
    return { type: 'commit', batchStart: v[0], batchCrc: v[1] };
  }
  if (!Array.isArray(v) || v.length !== 3) return null;
  const [a, b, c] = v;
  switch (type) {
    case RECORD_ENTRY: {
      if (!isUint(a) || a < 1 || !isUint(b)) return null;
      // A payload this small cannot hold more than maxValueBytes of JSON; a larger one is measured.
      if (payload.length > surelySmallPairBytes(limits) && commandChars(c!, limits.maxValueBytes) > limits.maxValueBytes) {
        throw new RecordLimit(
          `record of type ${type} holds entry ${a} whose key and values take more than ${limits.maxValueBytes} bytes as JSON, more than serve accepts (${raise('maxValueBytes')})`,
        );
      }
      return { type: 'entry', entry: { index: a, term: b, data: c! } };
    }
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

function raise(k: keyof ReadLimits): string {
  return `--${LIMIT_NAMES[k].flag} or ${LIMIT_NAMES[k].env} raises it`;
}

/**
 * JSON characters of the key and values of a logged command (its `key`, `value`, `from` and `to`,
 * as serve counts a request), stopping once past `max`. Anything else in an entry (a no-op's
 * null, a forward's session) is not counted.
 */
function commandChars(data: Json, max: number): number {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return 0;
  let n = 0;
  for (const f of VALUE_FIELDS) {
    if (!(f in data)) continue;
    n += JSON.stringify(data[f] ?? null).length;
    if (n > max) break;
  }
  return n;
}

/** Try to parse a record at `pos`; returns its total size or a reason it is not one. */
function tryRecord(
  buf: Buffer,
  pos: number,
  version: number,
  limits: ReadLimits = readLimits(),
): { size: number; record: WalRecord | CommitRecord } | { reason: string; incomplete: boolean } {
  const remaining = buf.length - pos;
  if (remaining < RECORD_HEADER_BYTES) return { reason: `incomplete record header (${remaining} bytes left)`, incomplete: true };
  const len = buf.readUInt32BE(pos);
  if (len === 0 || len > MAX_RECORD_BYTES) return { reason: `impossible record length ${len}`, incomplete: len > remaining };
  if (8 + len > remaining) return { reason: `incomplete record: length ${len} but only ${remaining - 8} bytes left`, incomplete: true };
  const stored = buf.readUInt32BE(pos + 4);
  const body = buf.subarray(pos + 8, pos + 8 + len);
  const actual = crc32(body);
  if (stored !== actual) return { reason: `record checksum mismatch (stored ${hex8(stored)}, computed ${hex8(actual)})`, incomplete: false };
  const rec = decodeRecordBody(body[0]!, body.subarray(1), version, limits);
  if (!rec) return { reason: `record of type ${body[0]} has an invalid payload`, incomplete: false };
  return { size: 8 + len, record: rec };
}

/** tryRecord where a record over a limit is only "not a record" (probing for records after damage). */
function probeRecord(buf: Buffer, pos: number, version: number): ReturnType<typeof tryRecord> {
  try {
    return tryRecord(buf, pos, version);
  } catch (e) {
    if (e instanceof RecordLimit) return { reason: e.message, incomplete: false };
    throw e;
  }
}

/** tryRecord in a scan of `file`: a record over a limit is a LIMIT error naming the file and offset. */
function readRecord(buf: Buffer, pos: number, version: number, file: string): ReturnType<typeof tryRecord> {
  try {
    return tryRecord(buf, pos, version);
  } catch (e) {
    if (e instanceof RecordLimit) throw new StorageError('LIMIT', file, `WAL ${e.message}`, pos);
    throw e;
  }
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
   * True when the damage can be what a crash leaves at the end of the log (a torn tail, if this
   * is the last segment): version 2, no commit record after it; version 1, an incomplete or
   * all-zero tail with no valid record after it. False: bytes that were synced changed
   * (corruption, never cut).
   */
  tailOnly: boolean;
}

export interface SegmentScan {
  file: string;
  size: number;
  header: SegmentHeaderInfo | null;
  /** The segment's format version (0 when its header is incomplete). */
  version: number;
  records: ScannedRecord[];
  /** End of the last good record (where a torn tail would be cut). */
  validEnd: number;
  /**
   * Version 2: end of the last commit record, i.e. of the bytes known to have been synced;
   * valid records between it and `validEnd` were written by a sync that never completed.
   * Version 1: `validEnd`.
   */
  sealedEnd: number;
  damage: SegmentDamage | null;
  /** With `{ framing: true }`: version 2's zero padding and commit records, in file order. */
  framing?: SegmentFraming[];
}

/** Bytes between the records of a version 2 segment (a raw view of it: `raftsnap inspect --records`). */
export type SegmentFraming =
  | { type: 'padding'; offset: number; size: number }
  | { type: 'commit'; offset: number; size: number; batchStart: number; batchCrc: number };

export interface ScanOptions {
  /** Also list the padding and commit records (`SegmentScan.framing`). */
  framing?: boolean;
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
  if (!WAL_READ_VERSIONS.includes(version)) {
    throw new StorageError('UNSUPPORTED_VERSION', file, `unsupported WAL format version ${version} (this build reads versions ${WAL_READ_VERSIONS.join(' and ')})`, 8);
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
 * whether it can be a torn tail (`damage.tailOnly`). Throws for a damaged segment header.
 */
export function scanSegmentBytes(buf: Buffer, file: string, opts: ScanOptions = {}): SegmentScan {
  const header = parseSegmentHeader(buf, file);
  const scan: SegmentScan = { file, size: buf.length, header, version: header?.version ?? 0, records: [], validEnd: 0, sealedEnd: 0, damage: null };
  if (opts.framing) scan.framing = [];
  if (!header) {
    scan.damage = { offset: 0, reason: `incomplete segment header (${buf.length} of ${SEGMENT_HEADER_BYTES} bytes)`, tailOnly: true };
    return scan;
  }
  if (header.version === 1) scanV1(buf, scan);
  else scanV2(buf, scan);
  return scan;
}

function scanV1(buf: Buffer, scan: SegmentScan): void {
  let pos = SEGMENT_HEADER_BYTES;
  scan.validEnd = pos;
  while (pos < buf.length) {
    const r = readRecord(buf, pos, 1, scan.file);
    if ('reason' in r) {
      // Version 1 has no commit records: only a tail that is visibly unfinished (cut short, or
      // zeros to the end) may be torn; a complete record whose checksum fails is corruption.
      const unfinished = r.incomplete || isZero(buf, pos, buf.length);
      scan.damage = { offset: pos, reason: r.reason, tailOnly: unfinished && !validRecordAfter(buf, pos + 1) };
      break;
    }
    if (r.record.type !== 'commit') scan.records.push({ offset: pos, size: r.size, record: r.record });
    pos += r.size;
    scan.validEnd = pos;
  }
  scan.sealedEnd = scan.validEnd;
}

function scanV2(buf: Buffer, scan: SegmentScan): void {
  let pos = SEGMENT_HEADER_BYTES;
  scan.validEnd = pos;
  scan.sealedEnd = pos;
  const damage = (offset: number, reason: string, synced = false): void => {
    scan.damage = { offset, reason, tailOnly: !synced && !commitAfter(buf, offset) };
  };
  while (pos < buf.length) {
    if (isZeroLength(buf, pos)) {
      // Zero padding up to the next boundary, valid only when a commit record starts there.
      const boundary = pos + WAL_SECTOR_BYTES - (pos % WAL_SECTOR_BYTES);
      if (pos % WAL_SECTOR_BYTES !== 0 && isZero(buf, pos, boundary) && commitAt(buf, boundary)) {
        scan.framing?.push({ type: 'padding', offset: pos, size: boundary - pos });
        pos = boundary;
        continue;
      }
      let reason = 'zero bytes where a record should start';
      if (isZero(buf, pos, buf.length)) reason = `unwritten (zero) bytes from offset ${pos} to the end (${buf.length - pos} bytes)`;
      else if (pos % WAL_SECTOR_BYTES !== 0 && isZero(buf, pos, boundary)) reason = `zero padding up to offset ${boundary} is not followed by a valid commit record`;
      damage(pos, reason);
      return;
    }
    const r = readRecord(buf, pos, 2, scan.file);
    if ('reason' in r) {
      damage(pos, r.reason);
      return;
    }
    if (r.record.type === 'commit') {
      const c = r.record;
      if (pos % WAL_SECTOR_BYTES !== 0) {
        damage(pos, `commit record at offset ${pos}, not on a ${WAL_SECTOR_BYTES}-byte boundary`, true);
        return;
      }
      if (c.batchStart < scan.sealedEnd || c.batchStart > pos) {
        damage(pos, `commit record covers bytes from offset ${c.batchStart}, outside [${scan.sealedEnd}, ${pos}]`, true);
        return;
      }
      const actual = crc32(buf.subarray(c.batchStart, pos));
      if (actual !== c.batchCrc) {
        // The commit was written after those bytes, in the same write: a crash cannot have kept
        // it and garbled them. They changed after they were synced.
        damage(pos, `bytes ${c.batchStart}..${pos} changed after they were synced (commit record checksum stored ${hex8(c.batchCrc)}, computed ${hex8(actual)})`, true);
        return;
      }
      scan.framing?.push({ type: 'commit', offset: pos, size: r.size, batchStart: c.batchStart, batchCrc: c.batchCrc });
      pos += r.size;
      scan.validEnd = pos;
      scan.sealedEnd = pos;
      continue;
    }
    scan.records.push({ offset: pos, size: r.size, record: r.record });
    pos += r.size;
    scan.validEnd = pos;
  }
}

/** Are bytes [from, to) all zero? */
function isZero(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] !== 0) return false;
  return true;
}

/** Does the record at `pos` start with a zero length (or is what is left all zeros)? */
function isZeroLength(buf: Buffer, pos: number): boolean {
  return isZero(buf, pos, Math.min(pos + 4, buf.length));
}

/** Is there a commit record, with a valid checksum of its own, at `pos`? */
function commitAt(buf: Buffer, pos: number): boolean {
  if (buf.length - pos < RECORD_HEADER_BYTES || buf[pos + 8] !== RECORD_COMMIT) return false;
  const r = probeRecord(buf, pos, 2);
  return 'size' in r;
}

/** Is there a commit record on a sector boundary after `from`? Proof that the bytes before it were synced. */
function commitAfter(buf: Buffer, from: number): boolean {
  for (let q = from - (from % WAL_SECTOR_BYTES) + WAL_SECTOR_BYTES; q + RECORD_HEADER_BYTES <= buf.length; q += WAL_SECTOR_BYTES) {
    if (commitAt(buf, q)) return true;
  }
  return false;
}

/** Is there a valid record starting anywhere in [from, end)? (Version 1.) */
function validRecordAfter(buf: Buffer, from: number): boolean {
  for (let q = from; q + RECORD_HEADER_BYTES <= buf.length; q++) {
    const len = buf.readUInt32BE(q);
    if (len < 2 || 8 + len > buf.length - q) continue;
    const t = buf[q + 8]!;
    if (t < RECORD_ENTRY || t > RECORD_SNAPSHOT) continue;
    const r = probeRecord(buf, q, 1);
    if ('size' in r) return true;
  }
  return false;
}

export function scanSegmentFile(file: string, opts: IoOptions & ScanOptions = {}): SegmentScan {
  return scanSegmentBytes(readFile(fsOf(opts), file), file, opts);
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

