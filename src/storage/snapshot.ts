/**
 * Snapshot file format, version 1 (see docs/FORMAT.md).
 *
 *   preamble (16 bytes): magic "RAFTSNAP", u16 BE format version, u16 BE flags (0),
 *                        u32 BE header length H
 *   header   (H bytes):  CBOR map of the header fields
 *   u32 BE CRC-32 of bytes [0, 16 + H)
 *   payload  (compressedSize bytes): one zstd frame of a CBOR sequence:
 *       ["raftsnap-state", 1]                 state item
 *       [[k1, k2, ...], [v1, v2, ...]]        one item per chunk of at most CHUNK_PAIRS pairs
 *       [{"start": s, "count": n}, [v1, ...]] a chunk whose keys are s, s+1, ..., s+n-1
 *                                             (written for n >= KEY_RUN_MIN)
 *       {"keyCount": n, "sessions"?: any}     end item
 */
import path from 'node:path';
import type { Json, NodeId, SnapshotMeta } from '../raft/types.js';
import {
  NotJsonError,
  ZstdFrameWriter,
  ZstdStreamError,
  crc32,
  decodeCborRaw,
  encodeCbor,
  encodeCborTransient,
  encodeColumnsTransient,
  toJson,
  toJsonArray,
  zstdDecodeCborSequence,
} from './codec.js';
import { StorageError, fsError } from './errors.js';
import type { FileSystem } from './fs.js';
import { closeQuietly, fsOf, hex16, writeFileAtomic, type IoOptions, type SyncOptions } from './fsutil.js';

export const SNAPSHOT_MAGIC = Buffer.from('RAFTSNAP', 'latin1');
export const SNAPSHOT_FORMAT_VERSION = 1;
export const SNAPSHOT_CODEC = 'zstd+cbor-seq';
export const SNAPSHOT_PREAMBLE_BYTES = 16;
/** Largest header accepted (a header is a few hundred bytes; this bounds what a damaged length can make us read). */
export const SNAPSHOT_MAX_HEADER_BYTES = 1 << 20;
/** Pairs per payload chunk. Fixed, so that the bytes do not depend on how the caller chunks. */
export const CHUNK_PAIRS = 8192;
export const DEFAULT_ZSTD_LEVEL = 3;
/**
 * Fewest pairs in a chunk whose consecutive integer keys are written as a key run
 * `{"start": s, "count": n}` rather than as n integers. Part of the format: the bytes depend on it.
 */
export const KEY_RUN_MIN = 16;
const STATE_TAG = 'raftsnap-state';

export interface SnapshotHeader {
  formatVersion: number;
  /** Last included log index. */
  index: number;
  /** Term of the last included entry. */
  term: number;
  /** Voting members as of `index`. */
  config: NodeId[];
  /** Creation time, ms since the epoch. */
  createdAt: number;
  /** Node that wrote the snapshot, when known. */
  nodeId: NodeId | null;
  codec: string;
  /** Size of the CBOR payload before compression. */
  rawSize: number;
  /** Size of the payload in the file. */
  compressedSize: number;
  keyCount: number;
  hasSessions: boolean;
  /** CRC-32 of the compressed payload bytes. */
  payloadCrc: number;
  /** CRC-32 of the preamble and header bytes, as stored. */
  headerCrc: number;
  /** Offset of the payload in the file (preamble + header + header CRC). */
  payloadOffset: number;
}

export interface SnapshotContent {
  kv: Array<[Json, Json]>;
  /** Client de-duplication table, when the state machine keeps one. */
  sessions?: Json;
}

export interface EncodeOptions {
  /** Creation time in ms (default Date.now()); fix it for reproducible bytes. */
  createdAt?: number;
  nodeId?: NodeId | null;
  /** zstd level, default 3. */
  level?: number;
}

/** `<term %016x>-<index %016x>.snap` */
export function snapshotFileName(meta: { index: number; term: number }): string {
  return `${hex16(meta.term)}-${hex16(meta.index)}.snap`;
}

const SNAP_NAME_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;

/** Term and index from a snapshot file name, or null when it is not one. */
export function parseSnapshotFileName(name: string): { term: number; index: number } | null {
  const m = SNAP_NAME_RE.exec(name);
  if (!m) return null;
  return { term: parseInt(m[1]!, 16), index: parseInt(m[2]!, 16) };
}

export function headerMeta(h: SnapshotHeader): SnapshotMeta {
  return { index: h.index, term: h.term, config: [...h.config] };
}

/** Bytes kept free in front of the payload for preamble + header + CRC, so that they need no copy. */
const HEADER_HEADROOM = 1024;

/**
 * Streaming snapshot writer: call `addColumns(keys, values)` or `add(pairs)` once per chunk (any
 * size; pairs are re-chunked in fixed groups of CHUNK_PAIRS), then `finish(sessions?)` for the
 * whole file. The result is byte for byte what `encodeSnapshot` gives for the same pairs in the
 * same order, however the calls were mixed and sized.
 */
export class SnapshotEncoder {
  private readonly zstd: ZstdFrameWriter;
  // The chunk being filled, reused from chunk to chunk: CHUNK_PAIRS slots, `pending` of them used.
  private keys: Json[] = new Array<Json>(CHUNK_PAIRS);
  private values: Json[] = new Array<Json>(CHUNK_PAIRS);
  private pending = 0;
  private keyCount = 0;
  private done = false;

  constructor(
    private readonly meta: SnapshotMeta,
    private readonly opts: EncodeOptions = {},
  ) {
    validateMeta(meta);
    this.zstd = new ZstdFrameWriter(opts.level ?? DEFAULT_ZSTD_LEVEL, HEADER_HEADROOM);
    this.zstd.write(encodeCborTransient([STATE_TAG, SNAPSHOT_FORMAT_VERSION]));
  }

  /** Number of pairs added so far. */
  get count(): number {
    return this.keyCount;
  }

  /** Add pairs (any iterable; arrays take a faster path). */
  add(pairs: Iterable<readonly [Json, Json]>): void {
    if (this.done) throw new Error('SnapshotEncoder: add after finish');
    const ks = this.keys;
    const vs = this.values;
    if (Array.isArray(pairs)) {
      const arr = pairs as ReadonlyArray<readonly [Json, Json]>;
      for (let i = 0; i < arr.length; i++) {
        const p = arr[i]!;
        ks[this.pending] = p[0];
        vs[this.pending] = p[1];
        if (++this.pending === CHUNK_PAIRS) this.flushChunk();
      }
      this.keyCount += arr.length;
      return;
    }
    for (const p of pairs) {
      ks[this.pending] = p[0];
      vs[this.pending] = p[1];
      this.keyCount += 1;
      if (++this.pending === CHUNK_PAIRS) this.flushChunk();
    }
  }

  /**
   * Add the pairs `keys[i] -> values[i]` (the fastest way in: no pair arrays). The arrays are read
   * during the call only; whole chunks of CHUNK_PAIRS that start at a chunk boundary are encoded
   * from them without a copy.
   */
  addColumns(keys: readonly Json[], values: readonly Json[]): void {
    if (this.done) throw new Error('SnapshotEncoder: add after finish');
    const n = keys.length;
    if (values.length !== n) throw new RangeError(`SnapshotEncoder.addColumns: ${n} keys but ${values.length} values`);
    let i = 0;
    if (this.pending === 0) {
      // Whole chunks straight from the caller's arrays.
      for (; n - i >= CHUNK_PAIRS; i += CHUNK_PAIRS) this.zstd.write(encodeColumnsTransient(keys, values, CHUNK_PAIRS, i, KEY_RUN_MIN));
    }
    const ks = this.keys;
    const vs = this.values;
    for (; i < n; i++) {
      ks[this.pending] = keys[i]!;
      vs[this.pending] = values[i]!;
      if (++this.pending === CHUNK_PAIRS) this.flushChunk();
    }
    this.keyCount += n;
  }

  finish(sessions?: Json): Buffer {
    if (this.done) throw new Error('SnapshotEncoder: finish called twice');
    this.done = true;
    if (this.pending > 0) this.flushChunk();
    this.keys = [];
    this.values = [];
    const end: Record<string, Json> = { keyCount: this.keyCount };
    if (sessions !== undefined) end['sessions'] = sessions;
    this.zstd.write(encodeCborTransient(end));
    const { buf, offset } = this.zstd.endWithHeadroom();
    const compressedSize = buf.length - offset;
    const header = encodeCbor({
      index: this.meta.index,
      term: this.meta.term,
      config: [...this.meta.config],
      createdAt: this.opts.createdAt ?? Date.now(),
      nodeId: this.opts.nodeId ?? null,
      codec: SNAPSHOT_CODEC,
      rawSize: this.zstd.rawSize,
      compressedSize,
      keyCount: this.keyCount,
      hasSessions: sessions !== undefined,
      payloadCrc: this.zstd.crc,
    });
    const front = SNAPSHOT_PREAMBLE_BYTES + header.length + 4;
    let file: Buffer;
    if (front > offset) {
      file = assembleSnapshot(SNAPSHOT_FORMAT_VERSION, header, buf.subarray(offset));
    } else {
      // Preamble, header and header CRC go into the headroom right in front of the payload, and
      // the file is copied out once, into a buffer of its exact size.
      const view = buf.subarray(offset - front);
      writePreamble(view, SNAPSHOT_FORMAT_VERSION, header.length);
      view.set(header, SNAPSHOT_PREAMBLE_BYTES);
      view.writeUInt32BE(crc32(view.subarray(0, SNAPSHOT_PREAMBLE_BYTES + header.length)), SNAPSHOT_PREAMBLE_BYTES + header.length);
      file = Buffer.allocUnsafe(view.length);
      view.copy(file);
    }
    this.zstd.release();
    return file;
  }

  private flushChunk(): void {
    this.zstd.write(encodeColumnsTransient(this.keys, this.values, this.pending, 0, KEY_RUN_MIN));
    this.pending = 0;
  }
}

function writePreamble(buf: Buffer, version: number, headerLength: number): void {
  SNAPSHOT_MAGIC.copy(buf, 0);
  buf.writeUInt16BE(version, 8);
  buf.writeUInt16BE(0, 10);
  buf.writeUInt32BE(headerLength, 12);
}

/** @internal Preamble + header + header CRC + payload. Exported for fixtures of damaged files. */
export function assembleSnapshot(version: number, header: Uint8Array, payload: Uint8Array): Buffer {
  const pre = Buffer.alloc(SNAPSHOT_PREAMBLE_BYTES);
  writePreamble(pre, version, header.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(header, crc32(pre)), 0);
  return Buffer.concat([pre, header, crc, payload]);
}

function validateMeta(meta: SnapshotMeta): void {
  if (!Number.isSafeInteger(meta.index) || meta.index < 0) throw new RangeError(`invalid snapshot index ${meta.index}`);
  if (!Number.isSafeInteger(meta.term) || meta.term < 0) throw new RangeError(`invalid snapshot term ${meta.term}`);
  if (!Array.isArray(meta.config) || meta.config.some((n) => typeof n !== 'string')) {
    throw new RangeError('snapshot config must be an array of node ids');
  }
}

/** Encode a whole snapshot file in one call (small states, tests, offline tools). */
export function encodeSnapshot(meta: SnapshotMeta, content: SnapshotContent, opts: EncodeOptions = {}): Buffer {
  const enc = new SnapshotEncoder(meta, opts);
  enc.add(content.kv);
  return enc.finish(content.sessions);
}

// ------------------------------------------------------------------------------------------------
// Reading

/**
 * Parse preamble + header from the first bytes of a file. `prefix` must hold at least the
 * preamble; returns `need` when more bytes are required. `fileSize` is the size of the whole file.
 */
function parseHeader(
  prefix: Buffer,
  fileSize: number,
  source: string,
): { header: SnapshotHeader } | { need: number } {
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
  if (version !== SNAPSHOT_FORMAT_VERSION) {
    throw new StorageError(
      'UNSUPPORTED_VERSION',
      source,
      `unsupported snapshot format version ${version} (this build reads version ${SNAPSHOT_FORMAT_VERSION})`,
      8,
    );
  }
  const hlen = prefix.readUInt32BE(12);
  if (hlen === 0 || hlen > SNAPSHOT_MAX_HEADER_BYTES) {
    throw new StorageError('BAD_HEADER_CRC', source, `damaged snapshot header: impossible header length ${hlen}`, 12);
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
  let h: unknown;
  try {
    h = toJson(decodeCborRaw(prefix.subarray(SNAPSHOT_PREAMBLE_BYTES, SNAPSHOT_PREAMBLE_BYTES + hlen)));
  } catch {
    throw new StorageError('BAD_HEADER_CRC', source, 'snapshot header passes its checksum but is not valid CBOR', SNAPSHOT_PREAMBLE_BYTES);
  }
  return { header: checkHeaderFields(h, version, stored, payloadOffset, source) };
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
    throw new StorageError('UNSUPPORTED_VERSION', source, `unsupported snapshot codec "${codec}" (this build reads "${SNAPSHOT_CODEC}")`);
  }
  return {
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
  };
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

/** Parse and check the header of an in-memory snapshot file. */
export function decodeSnapshotHeader(bytes: Uint8Array, source = '<buffer>'): SnapshotHeader {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const r = parseHeader(buf, buf.length, source);
  if ('need' in r) throw new Error('unreachable: whole file given');
  return r.header;
}

/** Verify the length and the payload CRC of an in-memory snapshot file (no decompression). */
export function verifySnapshotBytes(bytes: Uint8Array, source = '<buffer>'): SnapshotHeader {
  const h = decodeSnapshotHeader(bytes, source);
  checkLength(h, bytes.length, source);
  const payload = bytes.subarray(h.payloadOffset);
  const actual = crc32(payload);
  if (actual !== h.payloadCrc) {
    throw new StorageError(
      'BAD_PAYLOAD_CRC',
      source,
      `snapshot payload checksum mismatch (stored ${hexCrc(h.payloadCrc)}, computed ${hexCrc(actual)})`,
      h.payloadOffset,
    );
  }
  return h;
}

/** Decode a whole snapshot file held in memory, verifying every checksum. */
export function decodeSnapshot(bytes: Uint8Array, source = '<buffer>'): { header: SnapshotHeader; content: SnapshotContent } {
  const header = verifySnapshotBytes(bytes, source);
  const badPayload = (what: string): never => {
    throw new StorageError('BAD_PAYLOAD', source, `snapshot payload passes its checksum but ${what}`, header.payloadOffset);
  };
  const kv: Array<[Json, Json]> = new Array(header.keyCount);
  let n = 0;
  let item = 0;
  let end: Record<string, Json> | null = null;
  try {
    // Decompressed and decoded a window at a time: the raw payload is never held whole.
    zstdDecodeCborSequence(bytes.subarray(header.payloadOffset), header.rawSize, (v) => {
      if (item++ === 0) {
        if (!Array.isArray(v) || v[0] !== STATE_TAG || v[1] !== SNAPSHOT_FORMAT_VERSION) badPayload('does not start with the state item');
        return;
      }
      if (end !== null) badPayload('has items after the end item');
      if (Array.isArray(v)) {
        if (v.length !== 2) badPayload('has a malformed chunk');
        const vs = toJsonArray(v[1]);
        if (v[0] instanceof Map) {
          // Key run: the keys are start, start + 1, ..., start + count - 1.
          const start = keyRunOf(v[0], vs.length, badPayload);
          if (n + vs.length > header.keyCount) badPayload(`holds more keys than the header's ${header.keyCount}`);
          for (let i = 0; i < vs.length; i++) kv[n++] = [start + i, vs[i]!];
          return;
        }
        const ks = toJsonArray(v[0]);
        if (ks.length !== vs.length) badPayload('has a chunk with unequal key and value counts');
        if (n + ks.length > header.keyCount) badPayload(`holds more keys than the header's ${header.keyCount}`);
        for (let i = 0; i < ks.length; i++) kv[n++] = [ks[i]!, vs[i]!];
        return;
      }
      const e = toJson(v);
      if (e === null || typeof e !== 'object' || Array.isArray(e)) badPayload('has an unknown item');
      end = e as Record<string, Json>;
    });
  } catch (e) {
    if (e instanceof StorageError) throw e;
    if (e instanceof ZstdStreamError) return badPayload(`cannot be decompressed (${e.message})`);
    if (e instanceof NotJsonError) return badPayload(`holds a non-JSON value (${e.message})`);
    return badPayload(`is not valid CBOR (${(e as Error).message})`);
  }
  if (end === null) return badPayload('has no end item');
  const endItem = end as Record<string, Json>;
  if (endItem['keyCount'] !== n || n !== header.keyCount) {
    return badPayload(`holds ${n} keys but the header says ${header.keyCount}`);
  }
  const content: SnapshotContent = { kv };
  if ('sessions' in endItem) content.sessions = endItem['sessions']!;
  return { header, content };
}

/**
 * Start of a key run item `{"start": s, "count": n}` of a chunk with `values` values. Any other
 * map, a start or count that is not a safe integer, a count that differs from the number of
 * values, or a run whose last key is not a safe integer is a malformed chunk.
 */
function keyRunOf(m: Map<unknown, unknown>, values: number, bad: (what: string) => never): number {
  const start = m.get('start');
  const count = m.get('count');
  if (m.size !== 2 || typeof start !== 'number' || typeof count !== 'number') return bad('has a malformed key run');
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || count < 0 || !Number.isSafeInteger(start + Math.max(count - 1, 0))) {
    return bad('has a key run outside the safe integers');
  }
  if (count !== values) bad('has a chunk with unequal key and value counts');
  return start === 0 ? 0 : start;
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

function fileSize(fsys: FileSystem, fd: number, file: string): number {
  try {
    return fsys.fstat(fd).size;
  } catch (e) {
    throw fsError(e, file, 'stat');
  }
}

/**
 * Read and check only the preamble and header of a snapshot file (a few hundred bytes; the payload
 * is never read). Does not check that the payload is complete: see `verifySnapshotFile`.
 */
export function readSnapshotHeader(file: string, opts: IoOptions = {}): SnapshotHeader & { fileSize: number } {
  const fsys = fsOf(opts);
  const fd = openForRead(fsys, file);
  try {
    const size = fileSize(fsys, fd, file);
    let buf = Buffer.alloc(Math.min(size, 4096));
    readAt(fsys, fd, buf, 0, file);
    let r = parseHeader(buf, size, file);
    if ('need' in r) {
      buf = Buffer.alloc(r.need);
      readAt(fsys, fd, buf, 0, file);
      r = parseHeader(buf, size, file);
      if ('need' in r) throw new Error('unreachable');
    }
    return { ...r.header, fileSize: size };
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

function readWhole(fsys: FileSystem, file: string): Buffer {
  const fd = openForRead(fsys, file);
  try {
    const size = fileSize(fsys, fd, file);
    const buf = Buffer.allocUnsafe(size);
    readAt(fsys, fd, buf, 0, file);
    return buf;
  } finally {
    closeQuietly(fsys, fd);
  }
}

export interface SnapshotProblem {
  code: StorageError['code'];
  message: string;
  offset?: number;
}

/**
 * Check every checksum of a snapshot file (header CRC, length, payload CRC) and that the payload
 * decodes. Returns the problems found (empty when the file is sound) and the header when readable.
 */
export function verifySnapshotFile(file: string, opts: IoOptions & { decode?: boolean } = {}): { header: SnapshotHeader | null; problems: SnapshotProblem[] } {
  let header: SnapshotHeader | null = null;
  try {
    const bytes = readWhole(fsOf(opts), file);
    header = decodeSnapshotHeader(bytes, file);
    if (opts.decode === false) verifySnapshotBytes(bytes, file);
    else decodeSnapshot(bytes, file);
    return { header, problems: [] };
  } catch (e) {
    if (!(e instanceof StorageError)) throw e;
    const p: SnapshotProblem = { code: e.code, message: e.message };
    if (e.offset !== undefined) p.offset = e.offset;
    return { header, problems: [p] };
  }
}

/** Read, verify and decode a snapshot file. */
export function readSnapshotFile(file: string, opts: IoOptions = {}): { header: SnapshotHeader; content: SnapshotContent } {
  return decodeSnapshot(readWhole(fsOf(opts), file), file);
}

export interface WriteSnapshotOptions extends EncodeOptions, SyncOptions {
  /** File name to use instead of `<term>-<index>.snap`. */
  name?: string;
}

/**
 * Write a snapshot file into `dir` atomically (temp name, fsync, rename, fsync dir) and return its
 * path. Give either the encoded bytes (verified before writing) or meta + content.
 */
export function writeSnapshotFile(dir: string, bytes: Uint8Array, opts?: WriteSnapshotOptions): string;
export function writeSnapshotFile(dir: string, meta: SnapshotMeta, content: SnapshotContent, opts?: WriteSnapshotOptions): string;
export function writeSnapshotFile(
  dir: string,
  a: Uint8Array | SnapshotMeta,
  b?: SnapshotContent | WriteSnapshotOptions,
  c?: WriteSnapshotOptions,
): string {
  let bytes: Uint8Array;
  let opts: WriteSnapshotOptions;
  if (a instanceof Uint8Array) {
    bytes = a;
    opts = (b as WriteSnapshotOptions | undefined) ?? {};
  } else {
    opts = c ?? {};
    bytes = encodeSnapshot(a, b as SnapshotContent, opts);
  }
  const h = verifySnapshotBytes(bytes, '<snapshot to write>');
  const file = path.join(dir, opts.name ?? snapshotFileName(h));
  writeFileAtomic(file, bytes, opts);
  return file;
}
