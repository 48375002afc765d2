/**
 * zstd plumbing of the snapshot format: a streaming frame writer, and a bounded streaming reader
 * that yields the top-level CBOR items of a frame one at a time (docs/FORMAT.md, "Limits").
 */
import { createRequire } from 'node:module';
import zlib from 'node:zlib';
import { CborScanError, cborItemEnd, decodeCborRaw, type ItemScanner } from './cbor.js';

const require = createRequire(import.meta.url);
// zstd-napi is CommonJS; its low-level binding gives streaming compression with no stream objects.
const zstdBinding = require('zstd-napi/binding.js') as typeof import('zstd-napi/binding.js');

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

  /** Sizes of the last frame, once the payload has ended (`endWithHeadroom`). */
  lastFrame: { size: number; rawSize: number } | null = null;

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

  /**
   * End the current frame and start the next one with the next `write` (a payload of several
   * frames, each decompressible on its own). Returns the frame's compressed and raw sizes.
   */
  endFrame(): { size: number; rawSize: number } {
    if (this.ended) throw new Error('zstd frame already ended');
    const empty = Buffer.alloc(0);
    for (;;) {
      this.room();
      const [remaining, written] = this.cctx.compressStream2(this.buf.subarray(this.pos), empty, zstdBinding.EndDirective.end);
      this.pos += written;
      if (remaining === 0) break;
    }
    const r = { size: this.compressedSize - this.frameStart, rawSize: this.rawSize - this.frameRawStart };
    this.frameStart = this.compressedSize;
    this.frameRawStart = this.rawSize;
    return r;
  }

  /** Compressed and raw bytes of the frame being written (since the last `endFrame`), once ended. */
  private frameStart = 0;
  private frameRawStart = 0;

  /** End the frame; returns the compressed payload (a view, not a copy). */
  end(): Buffer {
    const r = this.endWithHeadroom();
    return r.buf.subarray(r.offset);
  }

  /** End the frame; returns `buf` holding the payload at [offset, buf.length) after `headroom` free bytes. */
  endWithHeadroom(): { buf: Buffer; offset: number } {
    if (!this.ended) {
      this.lastFrame = this.endFrame();
      this.ended = true;
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
