/**
 * Snapshot file format, version 3 (see docs/FORMAT.md; versions 1 and 2 are still read, and written on request).
 *
 *   preamble (16 bytes): magic "RAFTSNAP", u16 BE format version, u16 BE flags (0),
 *                        u32 BE header length H
 *   header   (H bytes):  CBOR map of the header fields (version 3: with the frame table)
 *   u32 BE CRC-32 of bytes [0, 16 + H)
 *   payload  (compressedSize bytes): a CBOR sequence, compressed as zstd frames (version 3: one
 *            for the state item, one per chunk, one for the end item; versions 1 and 2: one frame):
 *       ["raftsnap-state", v]                 state item
 *       [n, keys, values]                     group items (chunk-v2.ts): each chunk (V3_CHUNK_PAIRS
 *                                             pairs; CHUNK_PAIRS in version 2) as one group per kind of key
 *       {"keyCount": n, "sessions"?: any}     end item
 *     version 1 chunk items instead of groups (columns.ts):
 *       [[k1, k2, ...], [v1, v2, ...]]        one item per chunk of at most CHUNK_PAIRS pairs
 *       [{"start": s, "count": n}, [v1, ...]] a chunk whose keys are s, s+1, ..., s+n-1
 *                                             (written for n >= KEY_RUN_MIN)
 */
import path from 'node:path';
import type { Json, NodeId, SnapshotMeta } from '../raft/types.js';
import { intShardSpan, keyShard } from '../kv/shards.js';
import { chunkIntKeys, encodeChunkV2, type ChunkOrder } from './chunk-v2.js';
import { ZstdFrameWriter, crc32, encodeCbor, encodeCborTransient, encodeColumnsTransient } from './codec.js';
import { hex16, writeFileAtomic, type SyncOptions } from './fsutil.js';
import { verifySnapshotBytes } from './snapshot-read.js';

export const SNAPSHOT_MAGIC = Buffer.from('RAFTSNAP', 'latin1');
/** The version this build writes. */
export const SNAPSHOT_FORMAT_VERSION = 3;
/** The versions this build reads. */
export const SNAPSHOT_READ_VERSIONS: readonly number[] = [1, 2, 3];
export const SNAPSHOT_CODEC = 'zstd+cbor-seq';
export const SNAPSHOT_PREAMBLE_BYTES = 16;
/** Largest header accepted (a header is a few hundred bytes; this bounds what a damaged length can make us read). */
export const SNAPSHOT_MAX_HEADER_BYTES = 1 << 20;
/** Pairs per payload chunk. Fixed, so that the bytes do not depend on how the caller chunks. */
export const CHUNK_PAIRS = 8192;
/**
 * Pairs per chunk of a format 3 writer: a chunk is a zstd frame (a file 6% larger with 2048). A
 * node loading a large state decodes one of its groups per turn: V3_GROUP_PAIRS bounds those.
 */
export const V3_CHUNK_PAIRS = 8192;
/**
 * Most pairs in one group item of a format 3 writer: a chunk frame's keys of one kind, in their
 * group order, are cut into groups of at most this many, so that a node loading a large state,
 * which decodes one group per turn of its event loop, never decodes more at once, while the frames
 * (and what zstd matches within one) stay as they are.
 */
export const V3_GROUP_PAIRS = 1024;
/**
 * Most pairs in one group item of a format 3 writer whose values are all integers (a varint
 * column, which decodes at a few nanoseconds a pair): up to the whole chunk frame, so that the
 * integer states keep their one key run or delta column per kind and frame.
 */
export const V3_INT_GROUP_PAIRS = V3_CHUNK_PAIRS;
export const DEFAULT_ZSTD_LEVEL = 3;
/**
 * Fewest pairs in a chunk whose consecutive integer keys are written as a key run
 * `{"start": s, "count": n}` rather than as n integers. Part of the format: the bytes depend on it.
 */
export const KEY_RUN_MIN = 16;
/** First item of every payload: `[SNAPSHOT_STATE_TAG, SNAPSHOT_FORMAT_VERSION]`. */
export const SNAPSHOT_STATE_TAG = 'raftsnap-state';

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
  /** Format 3: where each of the payload's frames is (null in versions 1 and 2: one frame). */
  frames: PayloadFrames | null;
}

/** One zstd frame of a format 3 payload: offsets from the start of the payload, compressed and decompressed. */
export interface FrameSpan {
  offset: number;
  size: number;
  rawOffset: number;
  rawSize: number;
}

/** A frame holding one chunk of pairs, whose keys are all in the shards firstShard..lastShard (kv/shards.ts keyShard). */
export interface ChunkFrame extends FrameSpan {
  pairs: number;
  firstShard: number;
  lastShard: number;
}

/** The frames of a format 3 payload: the state item, one per chunk, the end item. */
export interface PayloadFrames {
  state: FrameSpan;
  chunks: ChunkFrame[];
  end: FrameSpan;
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
  /** Format version to write: 3 (default), or 2 or 1 for readers of older builds, fixtures and tests. */
  formatVersion?: 1 | 2 | 3;
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
 * size; pairs are re-chunked in fixed chunks of the version's size), then `finish(sessions?)` for the
 * whole file. The result is byte for byte what `encodeSnapshot` gives for the same pairs in the
 * same order, however the calls were mixed and sized.
 */
export class SnapshotEncoder {
  private readonly zstd: ZstdFrameWriter;
  // The chunk being filled, reused from chunk to chunk: CHUNK_PAIRS slots, `pending` of them used.
  private keys: Json[] = new Array<Json>(CHUNK_PAIRS);
  private values: Json[] = new Array<Json>(CHUNK_PAIRS);
  /** Pairs per chunk this encoder writes (the version's: V3_CHUNK_PAIRS for format 3). */
  private readonly chunkPairs: number;
  private pending = 0;
  private keyCount = 0;
  private done = false;
  private readonly version: 1 | 2 | 3;
  /** Format 3: [compressed, raw] of the state frame, and [compressed, raw, pairs, first shard, last shard] per chunk frame. */
  private stateFrame: [number, number] | null = null;
  private readonly chunkFrames: Array<[number, number, number, number, number]> = [];
  private readonly sink = (item: Uint8Array): void => this.zstd.write(item);
  /** With `recordOrder`: for each pair in file order, its place in the input (see `fileOrder`). */
  private order: ChunkOrder | null = null;

  constructor(
    private readonly meta: SnapshotMeta,
    private readonly opts: EncodeOptions & { recordOrder?: boolean } = {},
  ) {
    validateMeta(meta);
    if (opts.recordOrder) this.order = { out: new Int32Array(CHUNK_PAIRS), at: 0, base: 0 };
    this.version = opts.formatVersion ?? SNAPSHOT_FORMAT_VERSION;
    this.chunkPairs = this.version === 3 ? V3_CHUNK_PAIRS : CHUNK_PAIRS;
    if (this.version !== 1 && this.version !== 2 && this.version !== 3) throw new RangeError(`cannot write snapshot format version ${String(this.version)}`);
    this.zstd = new ZstdFrameWriter(opts.level ?? DEFAULT_ZSTD_LEVEL, HEADER_HEADROOM);
    this.zstd.write(encodeCborTransient([SNAPSHOT_STATE_TAG, this.version]));
    if (this.version === 3) {
      const f = this.zstd.endFrame();
      this.stateFrame = [f.size, f.rawSize];
    }
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
        if (++this.pending === this.chunkPairs) this.flushChunk();
      }
      this.keyCount += arr.length;
      return;
    }
    for (const p of pairs) {
      ks[this.pending] = p[0];
      vs[this.pending] = p[1];
      this.keyCount += 1;
      if (++this.pending === this.chunkPairs) this.flushChunk();
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
      for (; n - i >= this.chunkPairs; i += this.chunkPairs) this.writeChunk(keys, values, this.chunkPairs, i);
    }
    const ks = this.keys;
    const vs = this.values;
    while (i < n) {
      // Copy as many as fit in the chunk being filled, then write it if it is full.
      let p = this.pending;
      const end = Math.min(n, i + this.chunkPairs - p);
      for (; i < end; i++, p++) {
        ks[p] = keys[i]!;
        vs[p] = values[i]!;
      }
      this.pending = p;
      if (p === this.chunkPairs) this.flushChunk();
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
    const frames: Record<string, Json> = {};
    if (this.version === 3) {
      const last = this.zstd.lastFrame!;
      frames['stateFrame'] = this.stateFrame!;
      frames['chunkFrames'] = this.chunkFrames;
      frames['endFrame'] = [last.size, last.rawSize];
    }
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
      ...frames,
    });
    // A reader refuses a larger header (format 3's frame table grows with the chunks: about 17
    // bytes each, so this is some 60,000 chunks, 500 million pairs): never write what cannot be read.
    if (header.length > SNAPSHOT_MAX_HEADER_BYTES) {
      this.zstd.release();
      throw new RangeError(`snapshot header of ${header.length} bytes (${this.chunkFrames.length} chunk frames) is larger than the ${SNAPSHOT_MAX_HEADER_BYTES} bytes a reader accepts`);
    }
    const front = SNAPSHOT_PREAMBLE_BYTES + header.length + 4;
    let file: Buffer;
    if (front > offset) {
      file = assembleSnapshot(this.version, header, buf.subarray(offset));
    } else {
      // Preamble, header and header CRC go into the headroom right in front of the payload, and
      // the file is copied out once, into a buffer of its exact size.
      const view = buf.subarray(offset - front);
      writePreamble(view, this.version, header.length);
      view.set(header, SNAPSHOT_PREAMBLE_BYTES);
      view.writeUInt32BE(crc32(view.subarray(0, SNAPSHOT_PREAMBLE_BYTES + header.length)), SNAPSHOT_PREAMBLE_BYTES + header.length);
      file = Buffer.allocUnsafe(view.length);
      view.copy(file);
    }
    this.zstd.release();
    return file;
  }

  private flushChunk(): void {
    this.writeChunk(this.keys, this.values, this.pending, 0);
    this.pending = 0;
  }

  /**
   * With the option `recordOrder`, after `finish`: entry p is the input place (0-based, in the order
   * the pairs were added) of the p-th pair of the file. A chunk's pairs stay within their chunk (a
   * writer may group a chunk's keys), so a reader of the file can check every pair against the input
   * a chunk at a time, without a lookup by key.
   */
  fileOrder(): Int32Array {
    if (!this.order || !this.done) throw new Error('SnapshotEncoder.fileOrder: needs recordOrder and finish()');
    return this.order.out.subarray(0, this.order.at);
  }

  /** One chunk of `n` pairs from `from`, in the encoding of the version written. */
  private writeChunk(keys: readonly Json[], values: readonly Json[], n: number, from: number): void {
    const o = this.order;
    if (o && o.out.length < o.at + n) {
      const bigger = new Int32Array(Math.max(o.at + n, o.out.length * 2));
      bigger.set(o.out.subarray(0, o.at));
      o.out = bigger;
    }
    if (this.version === 3) {
      // One frame per chunk, with the range of its keys' shards: a reader can decode the chunks
      // that may hold a key without the others (a node answering before its whole state is loaded).
      encodeChunkV2(keys, values, n, from, this.sink, o ?? undefined, V3_GROUP_PAIRS, V3_INT_GROUP_PAIRS);
      // A chunk of integer keys within one turn of the shards (a key run, most integer states)
      // has its range from its least and greatest key; any other chunk is looked at key by key.
      const span = chunkIntKeys.count === n ? intShardSpan(chunkIntKeys.min, chunkIntKeys.max) : null;
      let lo = span ? span[0] : Infinity;
      let hi = span ? span[1] : -1;
      if (!span) {
        for (let i = from; i < from + n; i++) {
          const s = keyShard(keys[i]!);
          if (s < lo) lo = s;
          if (s > hi) hi = s;
        }
      }
      const f = this.zstd.endFrame();
      this.chunkFrames.push([f.size, f.rawSize, n, lo, hi]);
    } else if (this.version === 2) {
      encodeChunkV2(keys, values, n, from, this.sink, o ?? undefined);
    } else {
      this.zstd.write(encodeColumnsTransient(keys, values, n, from, KEY_RUN_MIN));
      if (o) for (let i = 0; i < n; i++) o.out[o.at + i] = o.base + i;
      if (o) o.at += n;
    }
    if (o) o.base += n;
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
// Reading: snapshot-read.ts (header checks, limits, the streaming chunk reader, whole-file decoding).

export {
  SnapshotReader,
  checkHeaderLimits,
  decodeSnapshot,
  decodeSnapshotHeader,
  readAt,
  readSnapshotFile,
  readSnapshotHeader,
  verifySnapshotBytes,
  verifySnapshotFile,
  type SnapshotChunk,
  type SnapshotProblem,
  type SnapshotReadOptions,
} from './snapshot-read.js';

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
