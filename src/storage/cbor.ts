/**
 * CBOR plumbing shared by the snapshot and WAL formats: encoding JSON values, decoding them, and
 * scanning untrusted CBOR with limits before anything is decoded.
 *
 * JSON values are written as plain CBOR (RFC 8949): maps with text keys for objects, arrays,
 * integers (major types 0/1) or float64 for other numbers, text strings, true/false/null. cbor-x
 * runs with records, structured clone and packing off so that the bytes are standard CBOR that any
 * decoder reads. Maps are decoded as `Map` and turned into plain objects here, which keeps a key
 * named `__proto__` as an ordinary own property (as JSON.parse does).
 */
import { Decoder, Encoder } from 'cbor-x';
import type { Json } from '../raft/types.js';

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
  // A decoded array is converted in place (it is the decoder's fresh array, shared with nothing).
  if (Array.isArray(v)) return toJsonArray(v);
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
