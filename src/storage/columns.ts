/**
 * The column encoding of snapshot chunks, format version 1 (docs/FORMAT.md, "Payload"): a chunk
 * `[keys, values]` written straight into a scratch buffer, byte for byte what cbor-x writes for
 * the two arrays, with a key run `{"start": s, "count": n}` for consecutive integer keys.
 */
import { encodeCborTransient } from './cbor.js';

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

