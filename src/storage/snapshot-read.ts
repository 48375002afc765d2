/**
 * Reading snapshot files (format: docs/FORMAT.md, "Snapshot file"; limits: "Limits"). A snapshot
 * file is untrusted input: checksums prove it is intact, not that it is reasonable. Every size is
 * checked before anything is allocated for it:
 *
 *  - the header's declared sizes against the file and against the limits (ReadLimits);
 *  - the payload is decompressed into a bounded window, never beyond what the header declares;
 *  - each top-level item's CBOR heads are scanned (string lengths, element counts, nesting) before
 *    cbor-x decodes it; each key and value is then measured as serve measures a request.
 *
 * `SnapshotReader` yields the payload a chunk at a time (at most CHUNK_PAIRS pairs), so that a
 * reader that does not keep the pairs (verify, counts, dump, hash) holds one chunk, not the state.
 */
import type { Json } from '../raft/types.js';
import { readLimits, type ReadLimits } from '../limits.js';
import {
  CborScanError,
  cborScan,
  crc32,
  decodeCborRaw,
  toJson,
  type CborScanLimits,
  type ZstdInput,
} from './codec.js';
import { PayloadDecoder, raise, type SnapshotChunk } from './snapshot-payload.js';
export type { SnapshotChunk } from './snapshot-payload.js';
import { StorageError, fsError } from './errors.js';
import type { FileSystem } from './fs.js';
import { closeQuietly, fsOf, type IoOptions } from './fsutil.js';
import {
  CHUNK_PAIRS,
  SNAPSHOT_CODEC,
  SNAPSHOT_READ_VERSIONS,
  SNAPSHOT_MAGIC,
  SNAPSHOT_MAX_HEADER_BYTES,
  SNAPSHOT_PREAMBLE_BYTES,
  type ChunkFrame,
  type FrameSpan,
  type PayloadFrames,
  type SnapshotContent,
  type SnapshotHeader,
} from './snapshot.js';
import { OTHER_SHARD } from '../kv/shards.js';

/** Options of the readers: the file system and the limits (default: those in force, `readLimits()`). */
export interface SnapshotReadOptions extends IoOptions {
  limits?: ReadLimits;
  /**
   * `first` (default): `SnapshotReader.open` reads the whole payload once to check its CRC before
   * any chunk is given out, so that a damaged file is refused before a caller writes anything.
   * `streaming`: the CRC is computed as the decoding pass reads the file and checked at the end of
   * `chunks()`, one pass and no stretch of work proportional to the file: for a caller that keeps
   * what it decodes out of sight until the end (a node installing or recovering a snapshot it
   * verified when it stored it).
   */
  verify?: 'first' | 'streaming';
}

/** Bytes of the compressed payload read from a file at a time. */
const READ_PIECE_BYTES = 1 << 20;
/** The same, for a reader that checks the CRC while it decodes (`verify: 'streaming'`). */
const STREAM_PIECE_BYTES = 1 << 16;

/**
 * Limits on the header's CBOR (a map of scalars and one list of node ids). A function, not a
 * constant: this module and snapshot.ts import each other, so nothing of snapshot.ts is read
 * while the modules load.
 */
function headerScan(): CborScanLimits {
  return { maxDepth: 4, maxStringBytes: SNAPSHOT_MAX_HEADER_BYTES };
}

// ------------------------------------------------------------------------------------------------
// Header

/**
 * Parse preamble + header from the first bytes of a file. `prefix` must hold at least the
 * preamble; returns `need` when more bytes are required. `fileSize` is the size of the whole file.
 */
function parseHeader(prefix: Buffer, fileSize: number, source: string): { header: SnapshotHeader } | { need: number } {
  if (fileSize < SNAPSHOT_MAGIC.length || !prefix.subarray(0, 8).equals(SNAPSHOT_MAGIC)) {
    if (fileSize < SNAPSHOT_MAGIC.length && SNAPSHOT_MAGIC.subarray(0, fileSize).equals(prefix.subarray(0, fileSize)) && fileSize > 0) {
      throw new StorageError('TRUNCATED', source, `truncated snapshot: only ${fileSize} bytes, the preamble alone is ${SNAPSHOT_PREAMBLE_BYTES}`);
    }
    throw new StorageError('NOT_SNAPSHOT', source, 'not a raftsnap snapshot file (bad magic)', 0);
  }
  if (fileSize < SNAPSHOT_PREAMBLE_BYTES) {
    throw new StorageError('TRUNCATED', source, `truncated snapshot: only ${fileSize} bytes, the preamble alone is ${SNAPSHOT_PREAMBLE_BYTES}`);
  }
  const version = prefix.readUInt16BE(8);
  if (!SNAPSHOT_READ_VERSIONS.includes(version)) {
    throw new StorageError(
      'UNSUPPORTED_VERSION',
      source,
      `unsupported snapshot format version ${version} (this build reads versions ${readVersions()})`,
      8,
    );
  }
  const hlen = prefix.readUInt32BE(12);
  if (hlen === 0 || hlen > SNAPSHOT_MAX_HEADER_BYTES) {
    throw new StorageError('BAD_HEADER_CRC', source, `damaged snapshot header: impossible header length ${hlen} (at most ${SNAPSHOT_MAX_HEADER_BYTES})`, 12);
  }
  const payloadOffset = SNAPSHOT_PREAMBLE_BYTES + hlen + 4;
  if (fileSize < payloadOffset) {
    throw new StorageError('TRUNCATED', source, `truncated snapshot: the file ends (${fileSize} bytes) inside the header (${payloadOffset} bytes)`, fileSize);
  }
  if (prefix.length < payloadOffset) return { need: payloadOffset };
  const stored = prefix.readUInt32BE(SNAPSHOT_PREAMBLE_BYTES + hlen);
  const actual = crc32(prefix.subarray(0, SNAPSHOT_PREAMBLE_BYTES + hlen));
  if (stored !== actual) {
    throw new StorageError(
      'BAD_HEADER_CRC',
      source,
      `snapshot header checksum mismatch (stored ${hexCrc(stored)}, computed ${hexCrc(actual)})`,
      SNAPSHOT_PREAMBLE_BYTES + hlen,
    );
  }
  const hbytes = prefix.subarray(SNAPSHOT_PREAMBLE_BYTES, SNAPSHOT_PREAMBLE_BYTES + hlen);
  let h: unknown;
  try {
    if (cborScan(hbytes, 0, hbytes.length, hbytes.length, headerScan()) !== hbytes.length) throw new Error('bytes after the header map');
    h = toJson(decodeCborRaw(hbytes));
  } catch (e) {
    const why = e instanceof CborScanError ? `: ${e.message} at header byte ${e.offset}` : '';
    throw new StorageError('BAD_HEADER_CRC', source, `snapshot header passes its checksum but is not valid CBOR${why}`, SNAPSHOT_PREAMBLE_BYTES);
  }
  return { header: checkHeaderFields(h, version, stored, payloadOffset, source) };
}

/** "1, 2 and 3" */
function readVersions(): string {
  const v = SNAPSHOT_READ_VERSIONS.map(String);
  return v.length > 1 ? `${v.slice(0, -1).join(', ')} and ${v[v.length - 1]!}` : v.join('');
}

function hexCrc(n: number): string {
  return '0x' + n.toString(16).padStart(8, '0');
}

function checkHeaderFields(h: unknown, version: number, headerCrc: number, payloadOffset: number, source: string): SnapshotHeader {
  const bad = (what: string): never => {
    throw new StorageError('BAD_HEADER_CRC', source, `snapshot header passes its checksum but ${what}`, SNAPSHOT_PREAMBLE_BYTES);
  };
  if (h === null || typeof h !== 'object' || Array.isArray(h)) return bad('is not a map');
  const o = h as Record<string, Json>;
  const uint = (k: string): number => {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return bad(`field "${k}" is missing or not a non-negative integer`);
    return v;
  };
  const config = o['config'];
  if (!Array.isArray(config) || config.some((x) => typeof x !== 'string')) return bad('field "config" is not a list of node ids');
  const nodeId = o['nodeId'] ?? null;
  if (nodeId !== null && typeof nodeId !== 'string') return bad('field "nodeId" is not a string');
  const codec = o['codec'];
  if (typeof codec !== 'string') return bad('field "codec" is missing');
  if (codec !== SNAPSHOT_CODEC) {
    // As JSON: the name comes from the file and may hold a newline or escape codes (found by the fuzzer).
    throw new StorageError('UNSUPPORTED_VERSION', source, `unsupported snapshot codec ${JSON.stringify(codec.slice(0, 64))} (this build reads "${SNAPSHOT_CODEC}")`);
  }
  const header: SnapshotHeader = {
    formatVersion: version,
    index: uint('index'),
    term: uint('term'),
    config: config as string[],
    createdAt: uint('createdAt'),
    nodeId: nodeId as string | null,
    codec,
    rawSize: uint('rawSize'),
    compressedSize: uint('compressedSize'),
    keyCount: uint('keyCount'),
    hasSessions: o['hasSessions'] === true,
    payloadCrc: uint('payloadCrc'),
    headerCrc,
    payloadOffset,
    frames: null,
  };
  if (version >= 3) header.frames = checkFrameTable(o, header, bad);
  return header;
}

/**
 * The frame table of a format 3 header: `stateFrame` and `endFrame` [compressed, raw] and
 * `chunkFrames` [compressed, raw, pairs, first shard, last shard] each, in payload order. Their
 * sizes must add up to the payload's, their pairs to keyCount; a chunk holds 1 to CHUNK_PAIRS pairs
 * and its shards are a range within 0..OTHER_SHARD. Anything else is a damaged header.
 */
function checkFrameTable(o: Record<string, Json>, h: SnapshotHeader, bad: (what: string) => never): PayloadFrames {
  let offset = 0;
  let rawOffset = 0;
  const span = (v: Json | undefined, fields: number, what: string): { span: FrameSpan; rest: number[] } => {
    if (!Array.isArray(v) || v.length !== fields || v.some((x) => typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0)) {
      return bad(`${what} is not a list of ${fields} non-negative integers`);
    }
    const [size, rawSize, ...rest] = v as number[];
    if (size! < 1 || rawSize! < 1) bad(`${what} declares an empty frame`);
    const sp: FrameSpan = { offset, size: size!, rawOffset, rawSize: rawSize! };
    offset += size!;
    rawOffset += rawSize!;
    return { span: sp, rest };
  };
  const state = span(o['stateFrame'], 2, 'field "stateFrame"').span;
  const list = o['chunkFrames'];
  if (!Array.isArray(list)) return bad('field "chunkFrames" is missing or not a list');
  const chunks: ChunkFrame[] = [];
  let pairs = 0;
  for (let j = 0; j < list.length; j++) {
    const { span: sp, rest } = span(list[j], 5, `chunk frame ${j}`);
    const [n, first, last] = rest as [number, number, number];
    if (n < 1 || n > CHUNK_PAIRS) bad(`chunk frame ${j} declares ${n} pairs (1 to ${CHUNK_PAIRS})`);
    if (first > last || last > OTHER_SHARD) bad(`chunk frame ${j} declares the shards ${first} to ${last} (a range within 0 to ${OTHER_SHARD})`);
    pairs += n;
    chunks.push({ ...sp, pairs: n, firstShard: first, lastShard: last });
  }
  const end = span(o['endFrame'], 2, 'field "endFrame"').span;
  if (offset !== h.compressedSize || rawOffset !== h.rawSize) {
    bad(`its frames add up to ${offset} bytes (${rawOffset} decompressed), not the payload's ${h.compressedSize} (${h.rawSize})`);
  }
  if (pairs !== h.keyCount) bad(`its chunk frames hold ${pairs} pairs, not the ${h.keyCount} keys it declares`);
  return { state, chunks, end };
}

/** Check the file length against the header; throws TRUNCATED, or BAD_PAYLOAD on trailing bytes. */
function checkLength(h: SnapshotHeader, fileSize: number, source: string): void {
  const expected = h.payloadOffset + h.compressedSize;
  if (fileSize < expected) {
    throw new StorageError(
      'TRUNCATED',
      source,
      `truncated snapshot: header announces ${h.compressedSize} payload bytes but the file ends after ${fileSize - h.payloadOffset} (file ${fileSize} bytes, expected ${expected})`,
      fileSize,
    );
  }
  if (fileSize > expected) {
    throw new StorageError('BAD_PAYLOAD', source, `${fileSize - expected} unexpected bytes after the snapshot payload (expected ${expected} bytes)`, expected);
  }
}

/**
 * Refuse a header that declares more than a reader will hold: a decompressed payload beyond
 * `maxStateBytes`, or more keys than its payload has bytes (every pair takes at least one).
 */
export function checkHeaderLimits(h: SnapshotHeader, source: string, limits: ReadLimits = readLimits()): void {
  if (h.rawSize > limits.maxStateBytes) {
    throw new StorageError(
      'LIMIT',
      source,
      `snapshot header declares a payload of ${h.rawSize} bytes decompressed, more than the limit of ${limits.maxStateBytes} (${raise('maxStateBytes')})`,
      SNAPSHOT_PREAMBLE_BYTES,
    );
  }
  if (h.keyCount > h.rawSize) {
    throw new StorageError('LIMIT', source, `snapshot header declares ${h.keyCount} keys, more than its payload of ${h.rawSize} bytes can hold`, SNAPSHOT_PREAMBLE_BYTES);
  }
}

/** Parse and check the header of an in-memory snapshot file. */
export function decodeSnapshotHeader(bytes: Uint8Array, source = '<buffer>'): SnapshotHeader {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const r = parseHeader(buf, buf.length, source);
  if ('need' in r) throw new Error('unreachable: whole file given');
  return r.header;
}

/**
 * Verifies a snapshot file whose bytes arrive in order, a piece at a time (a transfer from the
 * leader): the header is parsed and checked once its bytes are in, the payload CRC computed as the
 * bytes pass, so that the end of the transfer has nothing left to read. The same checks as
 * `verifySnapshotBytes`; a problem is kept and thrown by `finish()` (bad bytes from the sender are
 * not a failure of the receiver's).
 */
export class ArrivingSnapshot {
  private prefix: Buffer[] | null = [];
  private prefixBytes = 0;
  private header: SnapshotHeader | null = null;
  private crc = 0;
  private received = 0;
  private problem: unknown = null;

  constructor(
    readonly fileSize: number,
    readonly source: string,
    private readonly limits: ReadLimits = readLimits(),
  ) {}

  /** The next bytes of the file. */
  add(data: Uint8Array): void {
    this.received += data.length;
    if (this.problem !== null) return;
    try {
      if (this.header) {
        this.crc = crc32(data, this.crc);
        return;
      }
      this.prefix!.push(Buffer.from(data));
      this.prefixBytes += data.length;
      if (this.prefixBytes < Math.min(this.fileSize, SNAPSHOT_PREAMBLE_BYTES)) return;
      const buf = Buffer.concat(this.prefix!);
      const r = parseHeader(buf, this.fileSize, this.source);
      if ('need' in r) {
        this.prefix = [buf];
        return;
      }
      const h = r.header;
      checkLength(h, this.fileSize, this.source);
      checkHeaderLimits(h, this.source, this.limits);
      this.header = h;
      this.prefix = null;
      this.crc = crc32(buf.subarray(h.payloadOffset));
    } catch (e) {
      this.problem = e;
    }
  }

  /** All bytes were added: the header when the file is sound; throws what was found otherwise. */
  finish(): SnapshotHeader {
    if (this.problem !== null) throw this.problem;
    if (this.received !== this.fileSize || !this.header) {
      throw new StorageError('TRUNCATED', this.source, `truncated snapshot: ${this.received} of ${this.fileSize} bytes received`, this.received);
    }
    if (this.crc !== this.header.payloadCrc) throw payloadCrcError(this.header, this.crc, this.source);
    return this.header;
  }
}

/** Verify the length, the header limits and the payload CRC of an in-memory snapshot file (no decompression). */
export function verifySnapshotBytes(bytes: Uint8Array, source = '<buffer>', limits: ReadLimits = readLimits()): SnapshotHeader {
  const h = decodeSnapshotHeader(bytes, source);
  checkLength(h, bytes.length, source);
  checkHeaderLimits(h, source, limits);
  const actual = crc32(bytes.subarray(h.payloadOffset));
  if (actual !== h.payloadCrc) throw payloadCrcError(h, actual, source);
  return h;
}

function payloadCrcError(h: SnapshotHeader, actual: number, source: string, changed = false): StorageError {
  return new StorageError(
    'BAD_PAYLOAD_CRC',
    source,
    `snapshot payload checksum mismatch (stored ${hexCrc(h.payloadCrc)}, computed ${hexCrc(actual)})${changed ? '; the file changed while it was being read' : ''}`,
    h.payloadOffset,
  );
}

// ------------------------------------------------------------------------------------------------
// The streaming reader

/**
 * A snapshot's payload a chunk at a time, every rule of the format and every limit checked as it
 * goes (header and length checked when it is made, the CRC before the first chunk and again as the
 * bytes stream past). `chunks()` may be iterated once; after it ends, `sessions` holds the end
 * item's table and `keysRead` the pairs read. A file reader holds a descriptor until `close()` (or
 * the end of `chunks()`).
 */
export class SnapshotReader {
  /** The end item's client table, once `chunks()` has ended (undefined when there is none). */
  sessions: Json | undefined = undefined;
  /** Pairs yielded so far. */
  keysRead = 0;
  private used = false;

  private constructor(
    readonly header: SnapshotHeader,
    readonly source: string,
    readonly fileSize: number,
    private readonly limits: ReadLimits,
    private readonly input: () => ZstdInput,
    private readonly onEnd: () => void,
    private readonly release: () => void,
  ) {}

  /** A reader over a whole file held in memory (its payload CRC is verified here). */
  static fromBytes(bytes: Uint8Array, source = '<buffer>', limits: ReadLimits = readLimits()): SnapshotReader {
    const header = verifySnapshotBytes(bytes, source, limits);
    const payload = bytes.subarray(header.payloadOffset);
    return new SnapshotReader(header, source, bytes.length, limits, () => payload, () => {}, () => {});
  }

  /**
   * A reader over a file, read a piece at a time: the header is parsed and checked, the length and
   * the header limits too, and the payload CRC is computed over the file before any chunk is given
   * out, so that a damaged file is refused before a caller writes anything.
   */
  static open(file: string, opts: SnapshotReadOptions = {}): SnapshotReader {
    const fsys = fsOf(opts);
    const limits = opts.limits ?? readLimits();
    const fd = openForRead(fsys, file);
    try {
      const { header, size } = headerOfFd(fsys, fd, file);
      checkLength(header, size, file);
      checkHeaderLimits(header, file, limits);
      const streaming = opts.verify === 'streaming';
      // Streaming: pieces small enough that reading and checksumming one is a short stretch.
      const piece = Buffer.allocUnsafe(Math.min(streaming ? STREAM_PIECE_BYTES : READ_PIECE_BYTES, Math.max(1, header.compressedSize)));
      if (!streaming) {
        let crc = 0;
        for (let pos = header.payloadOffset; pos < size; ) {
          const n = Math.min(piece.length, size - pos);
          readAt(fsys, fd, piece.subarray(0, n), pos, file);
          crc = crc32(piece.subarray(0, n), crc);
          pos += n;
        }
        if (crc !== header.payloadCrc) throw payloadCrcError(header, crc, file);
      }
      // The decoding pass reads the file (again) and checks the CRC (again): it must not change between the two.
      let pos = header.payloadOffset;
      let again = 0;
      const input = (): ZstdInput => {
        pos = header.payloadOffset;
        again = 0;
        return () => {
          if (pos >= size) return null;
          const n = Math.min(piece.length, size - pos);
          const view = piece.subarray(0, n);
          readAt(fsys, fd, view, pos, file);
          again = crc32(view, again);
          pos += n;
          return view;
        };
      };
      const onEnd = () => {
        if (again !== header.payloadCrc) throw payloadCrcError(header, again, file, !streaming);
      };
      return new SnapshotReader(header, file, size, limits, input, onEnd, () => closeQuietly(fsys, fd));
    } catch (e) {
      closeQuietly(fsys, fd);
      throw e;
    }
  }

  private released = false;

  /** Release the file (idempotent). */
  close(): void {
    this.releaseOnce();
  }

  /** A descriptor is closed once: its number may belong to another file afterwards. */
  private releaseOnce(): void {
    if (this.released) return;
    this.released = true;
    this.release();
  }

  /** The payload's chunks, in order; throws StorageError (BAD_PAYLOAD, LIMIT, BAD_PAYLOAD_CRC, ...) at the first problem. */
  *chunks(): Generator<SnapshotChunk> {
    if (this.used) throw new StorageError('INVALID', this.source, 'SnapshotReader.chunks() can be read only once');
    this.used = true;
    try {
      yield* this.decode();
      this.onEnd();
    } finally {
      this.releaseOnce();
    }
  }

  private *decode(): Generator<SnapshotChunk> {
    const d = new PayloadDecoder(this.header, this.source, this.limits);
    const chunks = d.all(this.input());
    for (let r = chunks.next(); !r.done; r = chunks.next()) {
      this.keysRead = d.keysRead;
      yield r.value;
    }
    this.sessions = d.sessions;
  }
}

/** Decode a whole snapshot file held in memory, verifying every checksum and every limit. */
export function decodeSnapshot(bytes: Uint8Array, source = '<buffer>', limits: ReadLimits = readLimits()): { header: SnapshotHeader; content: SnapshotContent } {
  return collect(SnapshotReader.fromBytes(bytes, source, limits));
}

function collect(r: SnapshotReader): { header: SnapshotHeader; content: SnapshotContent } {
  const kv: Array<[Json, Json]> = [];
  for (const c of r.chunks()) for (let i = 0; i < c.keys.length; i++) kv.push([c.keys[i]!, c.values[i]!]);
  const content: SnapshotContent = { kv };
  if (r.sessions !== undefined) content.sessions = r.sessions;
  return { header: r.header, content };
}

// ------------------------------------------------------------------------------------------------
// Files

function openForRead(fsys: FileSystem, file: string): number {
  try {
    const st = fsys.stat(file);
    if (st.isDirectory()) throw new StorageError('ENOTDIR', file, 'is a directory, expected a snapshot file');
    return fsys.open(file, 'r');
  } catch (e) {
    throw fsError(e, file, 'open snapshot');
  }
}

function fileSizeOf(fsys: FileSystem, fd: number, file: string): number {
  try {
    return fsys.fstat(fd).size;
  } catch (e) {
    throw fsError(e, file, 'stat');
  }
}

function headerOfFd(fsys: FileSystem, fd: number, file: string): { header: SnapshotHeader; size: number } {
  const size = fileSizeOf(fsys, fd, file);
  let buf = Buffer.alloc(Math.min(size, 4096));
  readAt(fsys, fd, buf, 0, file);
  let r = parseHeader(buf, size, file);
  if ('need' in r) {
    buf = Buffer.alloc(r.need);
    readAt(fsys, fd, buf, 0, file);
    r = parseHeader(buf, size, file);
    if ('need' in r) throw new Error('unreachable');
  }
  return { header: r.header, size };
}

/**
 * Read and check only the preamble and header of a snapshot file (a few hundred bytes; the payload
 * is never read). Does not check that the payload is complete: see `verifySnapshotFile`.
 */
export function readSnapshotHeader(file: string, opts: IoOptions = {}): SnapshotHeader & { fileSize: number } {
  const fsys = fsOf(opts);
  const fd = openForRead(fsys, file);
  try {
    const { header, size } = headerOfFd(fsys, fd, file);
    return { ...header, fileSize: size };
  } finally {
    closeQuietly(fsys, fd);
  }
}

/** Fill `buf` from file position `pos` of `fd`. */
export function readAt(fsys: FileSystem, fd: number, buf: Uint8Array, pos: number, file: string): void {
  let off = 0;
  while (off < buf.length) {
    let n: number;
    try {
      n = fsys.read(fd, buf, off, buf.length - off, pos + off);
    } catch (e) {
      throw fsError(e, file, 'read');
    }
    if (n === 0) throw new StorageError('TRUNCATED', file, 'file shrank while being read', pos + off);
    off += n;
  }
}

export interface SnapshotProblem {
  code: StorageError['code'];
  message: string;
  offset?: number;
}

/**
 * Check every checksum of a snapshot file (header CRC, length, payload CRC), every limit, and that
 * the payload decodes, a chunk at a time (nothing is kept). Returns the problems found (empty when
 * the file is sound), the header when readable and the keys decoded.
 */
export function verifySnapshotFile(
  file: string,
  opts: SnapshotReadOptions & { decode?: boolean } = {},
): { header: SnapshotHeader | null; problems: SnapshotProblem[]; keys: number | null } {
  let header: SnapshotHeader | null = null;
  try {
    header = readSnapshotHeader(file, opts);
    const r = SnapshotReader.open(file, opts);
    if (opts.decode === false) {
      r.close();
      return { header, problems: [], keys: null };
    }
    for (const c of r.chunks()) void c;
    return { header, problems: [], keys: r.keysRead };
  } catch (e) {
    if (!(e instanceof StorageError)) throw e;
    const p: SnapshotProblem = { code: e.code, message: e.message };
    if (e.offset !== undefined) p.offset = e.offset;
    return { header, problems: [p], keys: null };
  }
}

/** Read, verify and decode a snapshot file (the compressed payload is read a piece at a time). */
export function readSnapshotFile(file: string, opts: SnapshotReadOptions = {}): { header: SnapshotHeader; content: SnapshotContent } {
  return collect(SnapshotReader.open(file, opts));
}
