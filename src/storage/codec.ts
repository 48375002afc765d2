/**
 * CBOR and zstd plumbing shared by the snapshot and WAL formats.
 *
 * JSON values are written as plain CBOR (RFC 8949): maps with text keys for objects, arrays,
 * integers (major types 0/1) or float64 for other numbers, text strings, true/false/null. cbor-x
 * runs with records, structured clone and packing off so that the bytes are standard CBOR that any
 * decoder reads. Maps are decoded as `Map` and turned into plain objects here, which keeps a key
 * named `__proto__` as an ordinary own property (as JSON.parse does).
 */
import { createRequire } from 'node:module';
import zlib from 'node:zlib';
import { Decoder, Encoder } from 'cbor-x';
import type { Json } from '../raft/types.js';

const require = createRequire(import.meta.url);
// zstd-napi is CommonJS; its low-level binding gives streaming compression with no stream objects.
const zstdBinding = require('zstd-napi/binding.js') as typeof import('zstd-napi/binding.js');

export const cborEncoder = new Encoder({
  useRecords: false,
  structuredClone: false,
  pack: false,
  variableMapSize: true,
  tagUint8Array: false,
  useFloat32: 0,
} as ConstructorParameters<typeof Encoder>[0]);

const cborDecoder = new Decoder({
  useRecords: false,
  structuredClone: false,
  mapsAsObjects: false,
} as ConstructorParameters<typeof Decoder>[0]);

/** CBOR bytes of a JSON value, in a buffer of their own. */
export function encodeCbor(value: unknown): Buffer {
  return Buffer.from(cborEncoder.encode(value));
}

/**
 * CBOR bytes of a value as a view into the encoder's scratch buffer, which the next call to
 * `encodeCborTransient` overwrites: hand it straight to a consumer that copies it (zstd, a write),
 * never keep it. Saves the copy `encodeCbor` makes and the allocation of a fresh buffer per item.
 */
export function encodeCborTransient(value: unknown): Uint8Array {
  return (cborEncoder as unknown as { encode(v: unknown, mode: number): Uint8Array }).encode(value, RESET_BUFFER_MODE);
}

/** cbor-x's encode option that rewinds its scratch buffer after the call (cbor-x 1.x, not exported by its index). */
const RESET_BUFFER_MODE = 1024;

// Scratch buffer of encodeColumnsTransient, kept between calls (grows to the largest chunk).
let colBuf = Buffer.allocUnsafe(1 << 16);
let colPos = 0;

function colRoom(n: number): void {
  if (colPos + n <= colBuf.length) return;
  const bigger = Buffer.allocUnsafe(Math.max(colBuf.length * 2, colPos + n));
  colBuf.copy(bigger, 0, 0, colPos);
  colBuf = bigger;
}

/** Head of a major type with a 32-bit (or smaller) argument, shortest form. */
function colHead(major: number, n: number): void {
  const b = colBuf;
  if (n < 24) b[colPos++] = major | n;
  else if (n < 0x100) {
    b[colPos++] = major | 24;
    b[colPos++] = n;
  } else if (n < 0x10000) {
    b[colPos++] = major | 25;
    b[colPos++] = n >> 8;
    b[colPos++] = n & 0xff;
  } else {
    b[colPos++] = major | 26;
    b.writeUInt32BE(n, colPos);
    colPos += 4;
  }
}

/** One array item of a column: the common kinds inline, anything else through cbor-x. */
function colItem(v: unknown): void {
  if (typeof v === 'number') {
    // The same tests, in the same order, as cbor-x's encoder, so the bytes are the same.
    if (v >>> 0 === v) {
      colRoom(5);
      colHead(0x00, v);
      return;
    }
    if (v >> 0 === v) {
      colRoom(5);
      colHead(0x20, ~v);
      return;
    }
  } else if (typeof v === 'string') {
    const len = v.length;
    colRoom(len * 3 + 5);
    if (len < 0x40) {
      // Short strings: UTF-8 by hand (cbor-x does so too, writing a lone surrogate as 3 bytes).
      const start = colPos;
      let p = start + 1;
      let ascii = true;
      for (let i = 0; i < len; i++) {
        const c = v.charCodeAt(i);
        if (c >= 0x80) {
          ascii = false;
          break;
        }
        colBuf[p++] = c;
      }
      if (ascii) {
        if (len < 24) {
          colBuf[start] = 0x60 | len;
          colPos = p;
        } else {
          colBuf.copyWithin(start + 2, start + 1, p);
          colBuf[start] = 0x78;
          colBuf[start + 1] = len;
          colPos = p + 1;
        }
        return;
      }
    } else {
      // Long strings: Buffer's UTF-8 writer, as cbor-x uses. Leave room for the longest head.
      const hs = len < 0x100 ? 2 : len < 0x10000 ? 3 : 5;
      const n = colBuf.write(v, colPos + hs, len * 3, 'utf8');
      const need = n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
      if (need !== hs) colBuf.copyWithin(colPos + need, colPos + hs, colPos + hs + n);
      colHead(0x60, n);
      colPos += n;
      return;
    }
  }
  // Everything else (other numbers, short non-ASCII strings, null, booleans, arrays, objects).
  const b = encodeCborTransient(v);
  colRoom(b.length);
  colBuf.set(b, colPos);
  colPos += b.length;
}

/**
 * Start of the key run `keys[from, from+n)` when it is one: n >= minRun (and minRun > 0), every key
 * a safe integer, each one more than the one before. Returns null otherwise. A start of -0 is
 * returned as 0 (CBOR has no integer -0; the plain array form writes it as 0 too).
 */
export function keyRunStart(keys: readonly unknown[], n: number, from: number, minRun: number): number | null {
  if (minRun <= 0 || n < minRun) return null;
  const k0 = keys[from];
  if (typeof k0 !== 'number' || !Number.isSafeInteger(k0) || !Number.isSafeInteger(k0 + (n - 1))) return null;
  for (let i = 1; i < n; i++) if (keys[from + i] !== k0 + i) return null;
  return k0 === 0 ? 0 : k0;
}

/**
 * CBOR of the chunk item `[keys[from, from+n), values[from, from+n)]`, byte for byte what cbor-x
 * writes for the array of those two slices (the property tests check it), written without walking
 * each value through cbor-x's generic encoder. With `minRun` > 0, a keys slice that is a run of
 * consecutive integers (see `keyRunStart`) is written as the map `{"start": s, "count": n}` instead
 * of the n integers (snapshot format, docs/FORMAT.md); the values are written as always. Returns a
 * view into a scratch buffer that the next call overwrites: hand it straight to a consumer that
 * copies it (zstd), never keep it.
 */
export function encodeColumnsTransient(keys: readonly unknown[], values: readonly unknown[], n: number, from = 0, minRun = 0): Uint8Array {
  colPos = 0;
  colRoom(11);
  colBuf[colPos++] = 0x82;
  const end = from + n;
  const start = keyRunStart(keys, n, from, minRun);
  if (start !== null) {
    // Through cbor-x, so that the map and both integers have its canonical shortest forms.
    const b = encodeCborTransient({ start, count: n });
    colRoom(b.length);
    colBuf.set(b, colPos);
    colPos += b.length;
  } else {
    colHead(0x80, n);
    for (let i = from; i < end; i++) colItem(keys[i]);
  }
  colRoom(5);
  colHead(0x80, n);
  for (let i = from; i < end; i++) colItem(values[i]);
  return colBuf.subarray(0, colPos);
}

/** Decode one CBOR item (maps come back as Map; pass through `toJson`). */
export function decodeCborRaw(bytes: Uint8Array): unknown {
  return cborDecoder.decode(bytes);
}

/** Decode a CBOR sequence, calling `each` per top-level item; `each` returning false stops. */
export function decodeCborSequence(bytes: Uint8Array, each: (item: unknown) => boolean | void): void {
  (cborDecoder as unknown as { decodeMultiple(b: Uint8Array, f: (v: unknown) => boolean | void): void }).decodeMultiple(
    bytes,
    each,
  );
}

export class NotJsonError extends Error {}

/** Convert a decoded CBOR value into a JSON value; throws NotJsonError on anything else. */
export function toJson(v: unknown): Json {
  if (v === null || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') return v;
  if (v === undefined) return null;
  if (Array.isArray(v)) {
    const out: Json[] = new Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      out[i] = x !== null && typeof x === 'object' ? toJson(x) : (x as Json);
    }
    return out;
  }
  if (v instanceof Map) {
    const o: { [k: string]: Json } = {};
    for (const [k, x] of v) {
      if (typeof k !== 'string') throw new NotJsonError(`map key of type ${typeof k}`);
      const val = toJson(x);
      if (k === '__proto__') Object.defineProperty(o, k, { value: val, enumerable: true, writable: true, configurable: true });
      else o[k] = val;
    }
    return o;
  }
  throw new NotJsonError(`unexpected CBOR value of type ${Object.prototype.toString.call(v)}`);
}

/** Fast path for arrays of mostly primitive values. */
export function toJsonArray(v: unknown): Json[] {
  if (!Array.isArray(v)) throw new NotJsonError('expected an array');
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (x === undefined) v[i] = null;
    else if (x !== null && typeof x === 'object') v[i] = toJson(x);
    else if (typeof x === 'bigint') throw new NotJsonError('unexpected bigint');
  }
  return v as Json[];
}

export function crc32(data: Uint8Array, prev = 0): number {
  return zlib.crc32(data, prev) >>> 0;
}

let spareCctx: InstanceType<typeof zstdBinding.CCtx> | null = null;
let spareOut: Buffer | null = null;
/** Largest output buffer kept for reuse between frames. */
const SPARE_OUT_MAX = 16 << 20;

/**
 * Streaming zstd compressor (one frame). Input handed to `write` is consumed completely before
 * `write` returns, so callers may reuse their buffer. The frame is written straight into one
 * growing buffer that keeps `headroom` free bytes in front of it, so that a caller can put its own
 * header there without copying the payload (`endWithHeadroom`).
 */
export class ZstdFrameWriter {
  private readonly cctx: InstanceType<typeof zstdBinding.CCtx>;
  private readonly minOut = zstdBinding.cStreamOutSize();
  private buf: Buffer;
  private pos: number;
  rawSize = 0;
  private crc_ = 0;
  private ended = false;

  private released = false;

  constructor(
    level: number,
    private readonly headroom = 0,
  ) {
    // A compression context and an output buffer left by an earlier frame are reused when there
    // is one (see `release`): zstd's tables and the output memory are then not allocated afresh.
    this.cctx = spareCctx ?? new zstdBinding.CCtx();
    spareCctx = null;
    this.cctx.setParameter(zstdBinding.CParameter.compressionLevel, level);
    this.cctx.setParameter(zstdBinding.CParameter.checksumFlag, 0);
    const want = headroom + 4 * this.minOut;
    if (spareOut !== null && spareOut.length >= want) {
      this.buf = spareOut;
      spareOut = null;
    } else {
      this.buf = Buffer.allocUnsafe(want);
    }
    this.pos = headroom;
  }

  /**
   * Hand the context and the output buffer over to the next writer. Call it once the frame has
   * ended and its bytes have been copied out: the views `end`/`endWithHeadroom` returned become
   * invalid. A writer that is never released is simply garbage collected.
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.cctx.reset(zstdBinding.ResetDirective.sessionAndParameters);
    spareCctx = this.cctx;
    if (this.buf.length <= SPARE_OUT_MAX && (spareOut === null || spareOut.length < this.buf.length)) spareOut = this.buf;
  }

  /** Compressed bytes produced so far. */
  get compressedSize(): number {
    return this.pos - this.headroom;
  }

  /** CRC-32 of the whole frame; valid once the frame has ended. */
  get crc(): number {
    return this.crc_;
  }

  write(src: Uint8Array): void {
    if (this.ended) throw new Error('zstd frame already ended');
    if (this.released) throw new Error('zstd writer already released');
    this.rawSize += src.length;
    let s = src;
    while (s.length > 0) {
      this.room();
      const [, written, read] = this.cctx.compressStream2(this.buf.subarray(this.pos), s, zstdBinding.EndDirective.continue);
      this.pos += written;
      s = s.subarray(read);
    }
  }

  /** End the frame; returns the compressed payload (a view, not a copy). */
  end(): Buffer {
    const r = this.endWithHeadroom();
    return r.buf.subarray(r.offset);
  }

  /** End the frame; returns `buf` holding the payload at [offset, buf.length) after `headroom` free bytes. */
  endWithHeadroom(): { buf: Buffer; offset: number } {
    if (!this.ended) {
      this.ended = true;
      const empty = Buffer.alloc(0);
      for (;;) {
        this.room();
        const [remaining, written] = this.cctx.compressStream2(this.buf.subarray(this.pos), empty, zstdBinding.EndDirective.end);
        this.pos += written;
        if (remaining === 0) break;
      }
      this.crc_ = crc32(this.buf.subarray(this.headroom, this.pos));
    }
    return { buf: this.buf.subarray(0, this.pos), offset: this.headroom };
  }

  /** Make sure a whole zstd output block fits after `pos`. */
  private room(): void {
    if (this.buf.length - this.pos >= this.minOut) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + this.minOut));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }
}

/**
 * End offset of the CBOR data item that starts at `pos` in `buf[0, end)`, or -1 when the item runs
 * past `end` (incomplete). Only reads heads and lengths; throws on bytes that are not CBOR.
 */
export function cborItemEnd(buf: Uint8Array, pos: number, end: number): number {
  const stack: number[] = [];
  let remaining = 1; // items still to read at the current nesting level (Infinity: until a break)
  for (;;) {
    while (remaining === 0) {
      if (stack.length === 0) return pos;
      remaining = stack.pop()!;
    }
    if (pos >= end) return -1;
    const ib = buf[pos++]!;
    const major = ib >> 5;
    const ai = ib & 31;
    if (ib === 0xff) {
      if (remaining !== Infinity) throw new Error(`CBOR break outside an indefinite-length item at ${pos - 1}`);
      remaining = stack.pop()!;
      continue;
    }
    if (remaining !== Infinity) remaining--;
    let arg: number;
    if (ai < 24) arg = ai;
    else if (ai <= 27) {
      const n = 1 << (ai - 24);
      if (pos + n > end) return -1;
      arg = 0;
      for (let i = 0; i < n; i++) arg = arg * 256 + buf[pos + i]!;
      pos += n;
    } else if (ai === 31 && major >= 2 && major <= 5) {
      stack.push(remaining);
      remaining = Infinity;
      continue;
    } else {
      throw new Error(`invalid CBOR initial byte 0x${ib.toString(16)} at ${pos - 1}`);
    }
    switch (major) {
      case 2:
      case 3:
        if (arg > end - pos) return -1;
        pos += arg;
        break;
      case 4:
      case 5: {
        const items = major === 5 ? arg * 2 : arg;
        if (items > 0) {
          stack.push(remaining);
          remaining = items;
        }
        break;
      }
      case 6:
        remaining = remaining === Infinity ? Infinity : remaining + 1; // the tagged item follows
        break;
      default: // 0, 1: integers; 7: simple values and floats, argument already skipped
        break;
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Reading untrusted CBOR: a scan of the heads, with limits, before cbor-x allocates anything.

/**
 * What `cborScan` refuses: `limit` for a size or depth beyond a limit (or a length beyond the
 * bytes that remain), `damage` for bytes that are not CBOR of this format. `offset` is relative to
 * the buffer scanned.
 */
export class CborScanError extends Error {
  override readonly name = 'CborScanError';
  constructor(
    readonly kind: 'limit' | 'damage',
    message: string,
    readonly offset: number,
    /** Which limit (kind 'limit'): nesting depth, string length, element count, a length beyond the bytes that remain, a number that is not finite. */
    readonly which: 'depth' | 'string' | 'count' | 'length' | 'number' | null = null,
    /** The length or count declared (or the depth reached) that broke the limit. */
    readonly declared = 0,
  ) {
    super(message);
  }
}

export interface CborScanLimits {
  /** Nesting of arrays and maps: a scalar is 0, `[1]` is 1. */
  maxDepth: number;
  /** Length of one text or byte string. */
  maxStringBytes: number;
  /** Elements of an array (or pairs of a map) at depth `countAt` (the only level checked). */
  maxCount?: number;
  countAt?: number;
}

/**
 * End offset of the CBOR item at `pos` in `buf[0, end)`, having checked every head against
 * `lim` before anything would be allocated: string lengths, element counts (each element takes at
 * least one byte, so a count beyond the bytes that remain is refused), nesting depth. Indefinite
 * lengths, tags and simple values other than false/true/null/undefined are refused (the formats
 * never write them). `avail` is the number of bytes that will ever be there (>= end; more when the
 * caller is still filling the buffer): returns -1 when the item is complete only within `avail`.
 * With `sizes`, the size of every element at depth `sizesAt` is appended to it (the keys and the
 * values of a snapshot chunk are elements at depth 2). Throws CborScanError.
 */
export function cborScan(
  buf: Uint8Array,
  pos: number,
  end: number,
  avail: number,
  lim: CborScanLimits,
  sizes?: number[],
  sizesAt = -1,
): number {
  const stack: number[] = []; // elements still to read in each open container
  const starts: number[] = []; // where each open container started
  let remaining = 1;
  const limit = (what: string, at: number, which: 'depth' | 'string' | 'count' | 'length' | 'number', declared: number): never => {
    throw new CborScanError('limit', what, at, which, declared);
  };
  const damage = (what: string, at: number): never => {
    throw new CborScanError('damage', what, at);
  };
  for (;;) {
    while (remaining === 0) {
      if (stack.length === 0) return pos;
      remaining = stack.pop()!;
      const s = starts.pop()!;
      if (sizes !== undefined && stack.length === sizesAt) sizes.push(pos - s);
    }
    if (pos >= end) return avail > end ? -1 : damage('the data ends inside a CBOR item', pos);
    const at = pos;
    const ib = buf[pos++]!;
    const major = ib >> 5;
    const ai = ib & 31;
    remaining--;
    let arg = ai;
    if (ai >= 24 && ai <= 27) {
      const n = 1 << (ai - 24);
      if (pos + n > end) return avail >= pos + n ? -1 : damage('the data ends inside a CBOR head', at);
      arg = 0;
      for (let i = 0; i < n; i++) arg = arg * 256 + buf[pos + i]!;
      pos += n;
    } else if (ai >= 28) {
      return ai === 31 && major !== 0 && major !== 1 && major !== 6
        ? damage(ib === 0xff ? 'a CBOR break outside an indefinite-length item' : 'an indefinite-length CBOR item (never written by this format)', at)
        : damage(`invalid CBOR initial byte 0x${ib.toString(16)}`, at);
    }
    switch (major) {
      case 2:
      case 3:
        if (arg > lim.maxStringBytes) limit(`a string of ${arg} bytes, more than the limit of ${lim.maxStringBytes}`, at, 'string', arg);
        if (arg > avail - pos) limit(`a string that declares ${arg} bytes where only ${avail - pos} remain`, at, 'length', arg);
        if (arg > end - pos) return -1;
        pos += arg;
        break;
      case 4:
      case 5: {
        const items = major === 5 ? arg * 2 : arg;
        if (items > avail - pos) limit(`${major === 5 ? 'a map' : 'an array'} that declares ${arg} elements where only ${avail - pos} bytes remain`, at, 'length', arg);
        if (lim.maxCount !== undefined && stack.length === lim.countAt && arg > lim.maxCount) {
          limit(`${major === 5 ? 'a map' : 'an array'} of ${arg} elements, more than the limit of ${lim.maxCount}`, at, 'count', arg);
        }
        if (stack.length + 1 > lim.maxDepth) limit(`nested more than ${lim.maxDepth} levels deep`, at, 'depth', stack.length + 1);
        if (items > 0) {
          stack.push(remaining);
          starts.push(at);
          remaining = items;
          continue;
        }
        break;
      }
      case 6:
        damage('a CBOR tag (never written by this format)', at);
        break;
      case 7:
        if (ai < 20 || ai === 24) damage(`CBOR simple value ${arg} (only false, true and null are written)`, at);
        // NaN and the infinities: JSON has no such number, and serve refuses one (docs/SERVE.md).
        if (ai >= 25 && !finiteFloat(buf, at)) limit('a number that is not finite (NaN or an infinity), which JSON cannot carry and serve never accepts', at, 'number', 0);
        break;
      default: // 0, 1: integers, argument already skipped
        break;
    }
    if (sizes !== undefined && stack.length === sizesAt) sizes.push(pos - at);
  }
}

/** Whether the half, single or double float whose head is at `at` is finite (its exponent is not all ones). */
function finiteFloat(buf: Uint8Array, at: number): boolean {
  const ai = buf[at]! & 31;
  const b0 = buf[at + 1]!;
  const b1 = buf[at + 2]!;
  if (ai === 25) return ((b0 >> 2) & 0x1f) !== 0x1f;
  if (ai === 26) return (((b0 & 0x7f) << 1) | (b1 >> 7)) !== 0xff;
  return (((b0 & 0x7f) << 4) | (b1 >> 4)) !== 0x7ff;
}

/**
 * Finds the end of one top-level item of a sequence in `buf[pos, end)`, as `cborScan` does (with
 * the limits the caller chooses for that item); -1 when it is not complete yet.
 */
export type ItemScanner = (buf: Uint8Array, pos: number, end: number, avail: number) => number;

export class ZstdStreamError extends Error {
  /** The frame holds (or asks for) more than the header allows: more content than declared, or a larger window. */
  readonly overrun: boolean;
  constructor(message: string, overrun = false) {
    super(message);
    this.overrun = overrun;
  }
}

function zstdError(e: unknown): ZstdStreamError {
  const msg = (e as Error).message;
  return new ZstdStreamError(msg, /too much memory|too small|window/i.test(msg));
}

/** zstd's window is at most 2^25 bytes (32 MiB): a frame asking for more is refused before zstd allocates it. */
export const ZSTD_WINDOW_LOG_MAX = 25;

/** One top-level item of a decompressed CBOR sequence: its bytes (a view, valid until the next item) and its offset in the raw payload. */
export interface RawItem {
  bytes: Uint8Array;
  offset: number;
}

/**
 * The window a zstd frame needs (RFC 8878, 3.1.1.1: the Window_Descriptor, or the content size of
 * a single-segment frame), read from its header; null when the bytes do not start a frame header.
 */
export function zstdWindowSize(frame: Uint8Array): number | null {
  if (frame.length < 6 || frame[0] !== 0x28 || frame[1] !== 0xb5 || frame[2] !== 0x2f || frame[3] !== 0xfd) return null;
  const fhd = frame[4]!;
  if ((fhd & 0x20) !== 0) return null; // single segment: the window is the content size, checked against rawSize
  const wd = frame[5]!;
  const base = 2 ** (10 + (wd >> 3));
  return base + (base / 8) * (wd & 7);
}

/** Compressed input: the whole frame, or a function giving the next piece of it (null at the end of the file). */
export type ZstdInput = Uint8Array | (() => Uint8Array | null);

/**
 * Decompress one zstd frame of a CBOR sequence whose decompressed size `rawSize` is known (from a
 * header that has passed its checksum) and yield its top-level items one at a time, each found by
 * `scan` before it is decoded. Never holds the whole decompressed payload and never trusts the
 * frame: zstd writes into a window of at most `windowBytes` that grows only to fit the largest item
 * (which `scan` bounds), the frame's own content size must equal `rawSize`, its window may not need
 * more than 2^ZSTD_WINDOW_LOG_MAX bytes, and decompressing more or fewer than `rawSize` bytes is an
 * error. Throws ZstdStreamError for a frame that cannot be decompressed (`overrun` when it holds
 * more than declared), CborScanError from `scan`.
 */
export function* zstdCborItems(input: ZstdInput, rawSize: number, scan: ItemScanner, windowBytes = 8 << 20): Generator<RawItem> {
  let first: Uint8Array | null = input instanceof Uint8Array ? input : input();
  if (first === null) first = new Uint8Array(0);
  let declared: number | null = null;
  try {
    declared = zstdBinding.getFrameContentSize(first);
  } catch {
    declared = null; // not a frame header zstd can read: decompression below says so
  }
  if (declared !== null && declared !== rawSize) {
    throw new ZstdStreamError(`is a zstd frame that declares ${declared} bytes of content, the header ${rawSize}`, declared > rawSize);
  }
  const window = zstdWindowSize(first);
  if (window !== null && window > 2 ** ZSTD_WINDOW_LOG_MAX) {
    throw new ZstdStreamError(`is a zstd frame that needs a window of ${window} bytes, more than ${2 ** ZSTD_WINDOW_LOG_MAX}`, true);
  }
  if (input instanceof Uint8Array && rawSize <= windowBytes) {
    // Small enough for one buffer of exactly rawSize bytes: zstd cannot write beyond it.
    let raw: Buffer;
    try {
      raw = zstdDecompressExact(input, rawSize);
    } catch (e) {
      const z = zstdError(e);
      // zstd writes into a buffer of exactly rawSize bytes: a frame that holds more fills it.
      if (/too small/i.test(z.message)) throw new ZstdStreamError(`decompresses to more than the ${rawSize} bytes its header declares`, true);
      throw z;
    }
    let p = 0;
    while (p < raw.length) {
      const e = scan(raw, p, raw.length, raw.length);
      if (e < 0) throw new CborScanError('damage', 'the data ends inside a CBOR item', p);
      yield { bytes: raw.subarray(p, e), offset: p };
      p = e;
    }
    return;
  }
  const next = input instanceof Uint8Array ? () => null : input;
  const dctx = takeDctx();
  try {
    yield* streamItems(dctx, first, next, rawSize, scan, windowBytes);
  } finally {
    giveDctx(dctx);
  }
}

function* streamItems(
  dctx: InstanceType<typeof zstdBinding.DCtx>,
  first: Uint8Array,
  next: () => Uint8Array | null,
  rawSize: number,
  scan: ItemScanner,
  windowBytes: number,
): Generator<RawItem> {
  let win = Buffer.allocUnsafe(Math.max(1, Math.min(rawSize + 1, windowBytes)));
  let filled = 0; // bytes in win
  let base = 0; // raw offset of win[0]
  let total = 0; // raw bytes decompressed
  let input = first;
  let inputDone = false;
  let frameDone = false;
  for (;;) {
    if (!frameDone && filled < win.length) {
      if (input.length === 0 && !inputDone) {
        const piece = next();
        if (piece === null) inputDone = true;
        else input = piece;
      }
      let res: [number, number, number];
      try {
        res = dctx.decompressStream(win.subarray(filled), input);
      } catch (e) {
        throw zstdError(e);
      }
      const [hint, written, read] = res;
      filled += written;
      total += written;
      input = input.subarray(read);
      if (total > rawSize) throw new ZstdStreamError(`decompresses to more than the ${rawSize} bytes its header declares`, true);
      if (hint === 0) frameDone = true;
      else if (written === 0 && read === 0 && input.length === 0 && inputDone) throw new ZstdStreamError('the zstd frame is truncated');
    }
    if (frameDone && total !== rawSize) throw new ZstdStreamError(`decompressed ${total} bytes, the header declares ${rawSize}`);
    // The complete items in the window; `avail` is where the payload ends, relative to win[0].
    const avail = rawSize - base;
    let p = 0;
    while (p < filled) {
      let e: number;
      try {
        e = scan(win, p, filled, avail);
      } catch (err) {
        // Offsets relative to the payload, not to the window.
        if (err instanceof CborScanError) throw new CborScanError(err.kind, err.message, base + err.offset, err.which, err.declared);
        throw err;
      }
      if (e < 0) break;
      yield { bytes: win.subarray(p, e), offset: base + p };
      p = e;
    }
    if (p > 0) {
      win.copyWithin(0, p, filled);
      filled -= p;
      base += p;
    }
    if (frameDone) {
      if (filled > 0) throw new CborScanError('damage', 'the data ends inside a CBOR item', filled);
      break;
    }
    if (filled === win.length) {
      // One item larger than the window (the scan has bounded it): grow, never beyond the payload
      // (plus one byte, so that zstd always has room to tell the frame's end).
      const bigger = Buffer.allocUnsafe(Math.min(rawSize - base + 1, Math.max(win.length + 65536, win.length * 2)));
      win.copy(bigger, 0, 0, filled);
      win = bigger;
    }
  }
  let extra = input.length;
  if (!inputDone) for (let piece = next(); piece !== null; piece = next()) extra += piece.length;
  if (extra > 0) throw new ZstdStreamError(`${extra} bytes after the end of the zstd frame`);
}

/**
 * Decompress one zstd frame of a CBOR sequence whose decompressed size is known and decode it a
 * window at a time, calling `each` per top-level item in order. Items are found with
 * `cborItemEnd` (no limits: for trusted bytes and tests; files are read with `zstdCborItems` and a
 * limiting scanner).
 */
export function zstdDecodeCborSequence(src: Uint8Array, rawSize: number, each: (item: unknown) => void, windowBytes = 8 << 20): void {
  const scan: ItemScanner = (buf, pos, end) => cborItemEnd(buf, pos, end);
  for (const it of zstdCborItems(src, rawSize, scan, windowBytes)) each(decodeCborRaw(it.bytes));
}

// One decompression context kept for reuse: its stream buffers (about the zstd window size) are
// then allocated once, not per snapshot. Nested use (a callback that decodes) gets a fresh one.
let spareDctx: InstanceType<typeof zstdBinding.DCtx> | null = null;

function takeDctx(): InstanceType<typeof zstdBinding.DCtx> {
  let d = spareDctx;
  spareDctx = null;
  if (d === null) {
    d = new zstdBinding.DCtx();
    d.setParameter(zstdBinding.DParameter.windowLogMax, ZSTD_WINDOW_LOG_MAX);
  }
  return d;
}

function giveDctx(d: InstanceType<typeof zstdBinding.DCtx>): void {
  d.reset(zstdBinding.ResetDirective.sessionOnly);
  spareDctx = d;
}

/** Decompress one zstd frame whose decompressed size is known; throws on any mismatch. */
export function zstdDecompressExact(src: Uint8Array, rawSize: number): Buffer {
  const dst = Buffer.allocUnsafe(rawSize);
  const dctx = takeDctx();
  try {
    const n = dctx.decompress(dst, src);
    if (n !== rawSize) throw new Error(`decompressed ${n} bytes, the header declares ${rawSize}`);
  } finally {
    giveDctx(dctx);
  }
  return dst;
}
