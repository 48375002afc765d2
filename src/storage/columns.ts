/**
 * The column encoding of snapshot chunks, format version 1 (docs/FORMAT.md, "Payload"): a chunk
 * `[keys, values]` written straight into a scratch buffer, byte for byte what cbor-x writes for
 * the two arrays, with a key run `{"start": s, "count": n}` for consecutive integer keys.
 */
import { encodeCborTransient } from './cbor.js';

/**
 * A growing scratch buffer that chunk items are written into, kept between calls (it grows to the
 * largest chunk). `item` writes a JSON value as plain CBOR, byte for byte what cbor-x writes.
 */
export class Scratch {
  buf = Buffer.allocUnsafe(1 << 16);
  pos = 0;

  room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }

  /** Head of a major type with a 32-bit (or smaller) argument, shortest form (room for 5 bytes must be there). */
  head(major: number, n: number): void {
    const b = this.buf;
    if (n < 24) b[this.pos++] = major | n;
    else if (n < 0x100) {
      b[this.pos++] = major | 24;
      b[this.pos++] = n;
    } else if (n < 0x10000) {
      b[this.pos++] = major | 25;
      b[this.pos++] = n >> 8;
      b[this.pos++] = n & 0xff;
    } else {
      b[this.pos++] = major | 26;
      b.writeUInt32BE(n, this.pos);
      this.pos += 4;
    }
  }

  /** Raw bytes. */
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** One JSON value as CBOR: the common kinds inline, anything else through cbor-x. */
  item(v: unknown): void {
    if (typeof v === 'number') {
      // The same tests, in the same order, as cbor-x's encoder, so the bytes are the same.
      if (v >>> 0 === v) {
        this.room(5);
        this.head(0x00, v);
        return;
      }
      if (v >> 0 === v) {
        this.room(5);
        this.head(0x20, ~v);
        return;
      }
    } else if (typeof v === 'string') {
      const len = v.length;
      this.room(len * 3 + 5);
      const buf = this.buf;
      if (len < 0x40) {
        // Short strings: UTF-8 by hand (cbor-x does so too, writing a lone surrogate as 3 bytes).
        const start = this.pos;
        let p = start + 1;
        let ascii = true;
        for (let i = 0; i < len; i++) {
          const c = v.charCodeAt(i);
          if (c >= 0x80) {
            ascii = false;
            break;
          }
          buf[p++] = c;
        }
        if (ascii) {
          if (len < 24) {
            buf[start] = 0x60 | len;
            this.pos = p;
          } else {
            buf.copyWithin(start + 2, start + 1, p);
            buf[start] = 0x78;
            buf[start + 1] = len;
            this.pos = p + 1;
          }
          return;
        }
      } else {
        // Long strings: Buffer's UTF-8 writer, as cbor-x uses. Leave room for the longest head.
        const pos = this.pos;
        const hs = len < 0x100 ? 2 : len < 0x10000 ? 3 : 5;
        const n = buf.write(v, pos + hs, len * 3, 'utf8');
        const need = n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
        if (need !== hs) buf.copyWithin(pos + need, pos + hs, pos + hs + n);
        this.head(0x60, n);
        this.pos += n;
        return;
      }
    } else if (v === null || typeof v === 'boolean') {
      this.room(1);
      this.buf[this.pos++] = v === null ? 0xf6 : v ? 0xf5 : 0xf4;
      return;
    } else if (this.depth < INLINE_DEPTH && typeof v === 'object') {
      // Arrays and plain objects (JSON's), element by element as cbor-x writes them: the head of
      // the exact count, then each element (an object's keys as text). Deeper values, and
      // anything that is not a plain array or object, go through cbor-x.
      if (Array.isArray(v)) {
        this.room(5);
        this.head(0x80, v.length);
        this.depth++;
        for (let i = 0; i < v.length; i++) this.item(v[i]);
        this.depth--;
        return;
      }
      if (Object.getPrototypeOf(v) === Object.prototype) {
        const o = v as Record<string, unknown>;
        const ks = Object.keys(o);
        this.room(5);
        this.head(0xa0, ks.length);
        this.depth++;
        for (let i = 0; i < ks.length; i++) {
          const k = ks[i]!;
          this.item(k);
          this.item(o[k]);
        }
        this.depth--;
        return;
      }
    }
    // Everything else (other numbers, short non-ASCII strings, deep or unusual values).
    this.bytes(encodeCborTransient(v));
  }

  /** Nesting of the value being written inline. */
  private depth = 0;
}

/** Reserve a byte string of at most `maxBytes` at the writer's position (its head at the longest); returns where its content starts. */
export function openBytes(w: Scratch, maxBytes: number): number {
  w.room(maxBytes + 5);
  return w.pos + 5;
}

/** End the byte string whose content runs from `start` (from `openBytes`) to `end`: the head is written and the content moved up to it. */
export function closeBytes(w: Scratch, start: number, end: number): void {
  const at = start - 5;
  const len = end - start;
  const hs = len < 24 ? 1 : len < 0x100 ? 2 : len < 0x10000 ? 3 : 5;
  if (hs !== 5) w.buf.copyWithin(at + hs, start, end);
  w.pos = at;
  w.head(0x40, len);
  w.pos += len;
}

/** Nesting written inline by `Scratch.item`; deeper values go to cbor-x whole. */
const INLINE_DEPTH = 16;

/** The scratch buffer of the chunk encoders (one per process: an item is handed on before the next is written). */
export const scratch = new Scratch();

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
  const w = scratch;
  w.pos = 0;
  w.room(11);
  w.buf[w.pos++] = 0x82;
  const end = from + n;
  const start = keyRunStart(keys, n, from, minRun);
  if (start !== null) {
    // Through cbor-x, so that the map and both integers have its canonical shortest forms.
    w.bytes(encodeCborTransient({ start, count: n }));
  } else {
    w.head(0x80, n);
    for (let i = from; i < end; i++) w.item(keys[i]);
  }
  w.room(5);
  w.head(0x80, n);
  for (let i = from; i < end; i++) w.item(values[i]);
  return w.buf.subarray(0, w.pos);
}
