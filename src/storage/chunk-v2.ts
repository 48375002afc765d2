/**
 * Chunk items of snapshot format version 2 (docs/FORMAT.md, "Payload"). A chunk of pairs is
 * written as one group item per kind of key, each `[n, keys, values]`:
 *
 *   keys   {"base": s, "deltas": b}   integer keys in ascending order: key i = s + d1 + ... + di,
 *                                     b the n unsigned LEB128 varints d1..dn (the writer's d1 = 0)
 *          [k1, ..., kn]              any keys, in input order (plain CBOR)
 *   values {"ints": b}                integers, b the n zigzag LEB128 varints
 *          [v1, ..., vn]              any values (plain CBOR)
 *
 * Sorting a chunk's integer keys turns keys inserted in any order into small differences, which
 * compress far better than the keys themselves; values follow their keys. The writer's choices
 * (which group a key falls in, when a column is a varint column) are fixed here, so the bytes do
 * not depend on how a caller fed the pairs. The reader takes any group the format allows and
 * assumes no order: a group's keys are checked, not trusted.
 */
import type { Json } from '../raft/types.js';
import { CborScanError, cborScan, toJsonArray, type CborScanLimits } from './cbor.js';
import { closeBytes, openBytes, scratch, type Scratch } from './columns.js';
import {
  STRING_KEY_FIELDS,
  beginStringKeys,
  checkTemplatesHead,
  classifyStringKey,
  orderHexKeys,
  orderTemplateKeys,
  putHexKeys,
  putTemplateKeys,
  radixInput,
  radixSortInput,
  readHexKeys,
  readTemplateKeys,
} from './string-keys.js';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
/** Integer values with a magnitude below this go into a varint column (their zigzag form is a safe integer). */
const VARINT_VALUE_LIMIT = 2 ** 52;
/** The most bytes one varint of a safe integer takes (7 bits a byte). */
const VARINT_MAX_BYTES = 8;

// ------------------------------------------------------------------------------------------------
// Varints

/** Write the unsigned LEB128 varint of `x` (an integer, 0 <= x <= 2^53 - 1) at `p` of `b`; returns the position after it. */
function varintAt(b: Buffer, p: number, x: number): number {
  if (x < 0x80) {
    b[p++] = x;
  } else if (x < 0x80000000) {
    while (x >= 0x80) {
      b[p++] = (x & 0x7f) | 0x80;
      x >>>= 7;
    }
    b[p++] = x;
  } else {
    while (x >= 0x80) {
      b[p++] = (x % 0x80) | 0x80;
      x = Math.floor(x / 0x80);
    }
    b[p++] = x;
  }
  return p;
}

/** Read position and failure of `readVarints`: a varint is longer than 8 bytes, or runs past the end. */
class VarintError extends Error {}

/** Decode exactly `n` unsigned varints from `b` (every byte used); throws VarintError. */
function readVarints(b: Uint8Array, n: number, out: number[]): void {
  let p = 0;
  const len = b.length;
  for (let i = 0; i < n; i++) {
    if (p >= len) throw new VarintError(`holds ${i} varints where ${n} are declared`);
    let c = b[p++]!;
    if (c < 0x80) {
      out[i] = c;
      continue;
    }
    let x = c & 0x7f;
    let mul = 0x80;
    let k = 1;
    for (;;) {
      if (p >= len) throw new VarintError('ends inside a varint');
      c = b[p++]!;
      if (++k > VARINT_MAX_BYTES) throw new VarintError(`holds a varint longer than ${VARINT_MAX_BYTES} bytes`);
      x += (c & 0x7f) * mul;
      if (c < 0x80) break;
      mul *= 0x80;
    }
    if (x > MAX_SAFE) throw new VarintError('holds a varint beyond the safe integers');
    out[i] = x;
  }
  if (p !== len) throw new VarintError(`holds ${len - p} bytes after its ${n} varints`);
}

// ------------------------------------------------------------------------------------------------
// Writing

// Scratch of the encoder: the indices of each group (sorting: radixSortInput, string-keys.ts). Grown to the largest chunk.
let cap = 0;
let intIdx = new Int32Array(0);
let otherIdx = new Int32Array(0);
let tmplIdx = new Int32Array(0);
let hexIdx = new Int32Array(0);

function grow(n: number): void {
  if (n <= cap) return;
  cap = Math.max(n, cap * 2);
  intIdx = new Int32Array(cap);
  otherIdx = new Int32Array(cap);
  tmplIdx = new Int32Array(cap);
  hexIdx = new Int32Array(cap);
}

/**
 * Sort the `m` indices `idx[0, m)` (into `keys`, offset `from`) by key, stably, in place: an LSD
 * radix sort on the key minus `min` (11 bits a pass, passes over digits that are zero in every key
 * skipped) when the range is below 2^32, a comparison sort otherwise.
 */
function sortIntKeys(keys: readonly unknown[], from: number, idx: Int32Array, m: number, min: number, range: number): void {
  if (range === 0) return; // one key, repeated: already in order
  if (range >= 2 ** 32) {
    const a = Array.from(idx.subarray(0, m));
    a.sort((x, y) => (keys[from + x] as number) - (keys[from + y] as number) || x - y);
    idx.set(a);
    return;
  }
  const { rel, pos } = radixInput(m);
  for (let j = 0; j < m; j++) {
    const i = idx[j]!;
    rel[j] = (keys[from + i] as number) - min;
    pos[j] = i;
  }
  radixSortInput(idx, m, range);
}

/** A value that goes into a varint column: an integer of magnitude below 2^52. */
function varintValue(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v < VARINT_VALUE_LIMIT && v > -VARINT_VALUE_LIMIT;
}

/** How many of the values of `idx[at, end)`, from `at` on, go into a varint column. */
function varintRun(values: readonly unknown[], from: number, idx: Int32Array, at: number, end: number): number {
  let j = at;
  while (j < end && varintValue(values[from + idx[j]!])) j++;
  return j - at;
}

/** The values of the group `idx[0, m)`: a varint column when `ints` (every one an integer of magnitude below 2^52: varintRun), else plain CBOR. */
function putValues(w: Scratch, values: readonly unknown[], from: number, idx: Int32Array, m: number, ints: boolean): void {
  w.room(16);
  if (ints) {
    w.buf[w.pos++] = 0xa1;
    w.buf[w.pos++] = 0x64; // "ints"
    w.buf.write('ints', w.pos, 'latin1');
    w.pos += 4;
    const start = openBytes(w, m * VARINT_MAX_BYTES);
    const b = w.buf;
    let p = start;
    for (let j = 0; j < m; j++) {
      const v = values[from + idx[j]!] as number;
      const z = v >= 0 ? v * 2 : -v * 2 - 1;
      if (z < 0x80) b[p++] = z;
      else p = varintAt(b, p, z);
    }
    closeBytes(w, start, p);
    return;
  }
  w.head(0x80, m);
  for (let j = 0; j < m; j++) w.item(values[from + idx[j]!]);
}

/**
 * What `encodeChunkV2` saw of a chunk's keys: how many are safe integers, and their least and
 * greatest (Infinity and -Infinity when there are none). Overwritten by the next call.
 */
export const chunkIntKeys = { count: 0, min: Infinity, max: -Infinity };

/**
 * Encode the chunk `keys[from, from+n) -> values[from, from+n)` as version 2 group items, handing
 * each to `sink` as a view into a scratch buffer that the next item overwrites (copy it at once, as
 * zstd does). Integer keys (safe integers spanning at most 2^53 - 1) make a group of their own,
 * sorted; every other key goes into a plain group, in input order. A key's group depends only on
 * the key, so the pairs of a repeated key keep their order. The keys of a kind, in their group
 * order, are cut into groups of at most `groupMax` pairs (a format 3 writer's V3_GROUP_PAIRS),
 * except where every value of the next `intGroupMax` pairs (or of all the kind's pairs left) is
 * an integer (a varint column): those make one group (cheap to decode at any length).
 */
export function encodeChunkV2(
  keys: readonly unknown[],
  values: readonly unknown[],
  n: number,
  from: number,
  sink: (item: Uint8Array) => void,
  order?: ChunkOrder,
  groupMax = n,
  intGroupMax = groupMax,
): void {
  if (!(groupMax >= 1) || !(intGroupMax >= groupMax)) throw new RangeError(`encodeChunkV2: groupMax ${groupMax}, intGroupMax ${intGroupMax}`);
  grow(n);
  beginStringKeys(n);
  let ni = 0;
  let no = 0;
  let nt = 0;
  let nh = 0;
  let min = Infinity;
  let max = -Infinity;
  let ascending = true; // the integer keys come in ascending order already (a state written in key order)
  for (let i = 0; i < n; i++) {
    const k = keys[from + i];
    if (typeof k === 'number' && Number.isSafeInteger(k)) {
      intIdx[ni++] = i;
      if (k < max) ascending = false;
      if (k < min) min = k;
      if (k > max) max = k;
    } else if (typeof k === 'string') {
      const kind = classifyStringKey(k, nt);
      if (kind === 1) tmplIdx[nt++] = i;
      else if (kind === 2) hexIdx[nh++] = i;
      else otherIdx[no++] = i;
    } else {
      otherIdx[no++] = i;
    }
  }
  chunkIntKeys.count = ni;
  chunkIntKeys.min = min;
  chunkIntKeys.max = max;
  const w = scratch;
  // The groups of a kind's keys `idx[0, m)` in group order: each `put(at, len)` writes its keys
  // column, then its values, and the item is handed on (and where its pairs came from noted).
  const groups = (idx: Int32Array, m: number, put: (at: number, len: number) => void): void => {
    for (let at = 0, len = 0; at < m; at += len) {
      // One scan decides both the group's length and whether its values are a varint column.
      const big = Math.min(intGroupMax, m - at);
      const run = varintRun(values, from, idx, at, at + big);
      len = run === big ? big : Math.min(groupMax, m - at);
      const ints = run >= len;
      const part = idx.subarray(at, at + len);
      groupHead(w, len);
      put(at, len);
      putValues(w, values, from, part, len, ints);
      sink(w.buf.subarray(0, w.pos));
      if (order) noteOrder(order, part, len);
    }
  };
  if (ni > 0 && max - min > MAX_SAFE) {
    // Differences beyond the safe integers: these keys go into the plain group, in input order.
    for (let j = 0; j < ni; j++) otherIdx[no++] = intIdx[j]!;
    otherIdx.subarray(0, no).sort();
    ni = 0;
  }
  if (ni > 0) {
    if (!ascending) sortIntKeys(keys, from, intIdx, ni, min, max - min);
    groups(intIdx, ni, (at, len) => putIntKeys(w, keys, from, intIdx.subarray(at, at + len), len));
  }
  if (nt > 0) {
    const t = orderTemplateKeys(keys, from, tmplIdx, nt);
    groups(tmplIdx, nt, (at, len) => putTemplateKeys(w, t, at, at + len));
  }
  if (nh > 0) {
    orderHexKeys(keys, from, hexIdx, nh);
    groups(hexIdx, nh, (at, len) => putHexKeys(w, keys, from, hexIdx.subarray(at, at + len), len));
  }
  if (no > 0) {
    groups(otherIdx, no, (at, len) => {
      w.head(0x80, len);
      for (let j = at; j < at + len; j++) w.item(keys[from + otherIdx[j]!]);
    });
  }
}

/** The keys column `{"base": b, "deltas": d}` of the integer keys `idx[0, m)`, in ascending order. */
function putIntKeys(w: Scratch, keys: readonly unknown[], from: number, idx: Int32Array, m: number): void {
  const base = keys[from + idx[0]!] as number;
  w.room(32);
  w.buf[w.pos++] = 0xa2;
  w.buf[w.pos++] = 0x64; // "base"
  w.buf.write('base', w.pos, 'latin1');
  w.pos += 4;
  w.item(base);
  w.buf[w.pos++] = 0x66; // "deltas"
  w.buf.write('deltas', w.pos, 'latin1');
  w.pos += 6;
  const start = openBytes(w, m * VARINT_MAX_BYTES);
  const b = w.buf;
  let p = start;
  let prev = base;
  for (let j = 0; j < m; j++) {
    const k = keys[from + idx[j]!] as number;
    const d = k - prev;
    if (d < 0x80) b[p++] = d;
    else p = varintAt(b, p, d);
    prev = k;
  }
  closeBytes(w, start, p);
}

/**
 * Where a chunk's pairs went: for each pair in the order written, its place in the input. `out[at]`
 * onward receives `base` plus the pair's index within the chunk; `at` advances.
 */
export interface ChunkOrder {
  out: Int32Array;
  at: number;
  base: number;
}

function noteOrder(o: ChunkOrder, idx: Int32Array, m: number): void {
  for (let j = 0; j < m; j++) o.out[o.at + j] = o.base + idx[j]!;
  o.at += m;
}

/** Start a group item of `m` pairs at the start of the scratch buffer. */
function groupHead(w: Scratch, m: number): void {
  w.pos = 0;
  w.room(16);
  w.buf[w.pos++] = 0x83;
  w.head(0x00, m);
}

// ------------------------------------------------------------------------------------------------
// Reading

/** Names of the fields of a varint column, and the most fields a column map may have. */
const COLUMN_FIELDS = ['base', 'deltas', 'ints', ...STRING_KEY_FIELDS];
const MAX_COLUMN_FIELDS = 3;
/** The most bytes a column field's byte string may hold per pair (a hex key: length, varint, 28 bytes). */
const FIELD_BYTES_PER_PAIR = 40;

// The head read by `head`: major type and argument (read through `major()` and `arg()`).
let hMajor = 0;
let hArg = 0;
const major = (): number => hMajor;
const arg = (): number => hArg;

/** Read the CBOR head at `pos` (lengths up to 2^53); the position after it, or -1 when it is not complete. */
function head(buf: Uint8Array, pos: number, end: number, avail: number): number {
  if (pos >= end) {
    if (avail > end) return -1;
    throw new CborScanError('damage', 'the data ends inside a CBOR item', pos);
  }
  const ib = buf[pos]!;
  hMajor = ib >> 5;
  const ai = ib & 31;
  if (ai < 24) {
    hArg = ai;
    return pos + 1;
  }
  if (ai > 27) throw new CborScanError('damage', `invalid or indefinite CBOR head 0x${ib.toString(16)} in a chunk`, pos);
  const nb = 1 << (ai - 24);
  if (pos + 1 + nb > end) {
    if (avail >= pos + 1 + nb) return -1;
    throw new CborScanError('damage', 'the data ends inside a CBOR head', pos);
  }
  let x = 0;
  for (let i = 1; i <= nb; i++) x = x * 256 + buf[pos + i]!;
  hArg = x;
  return pos + 1 + nb;
}

/**
 * Scan one column of a version 2 group at `pos` (n pairs): a plain array of n elements, each
 * within `elem` (its size appended to `sizes`), or a map of at most two scalar fields whose byte
 * strings hold at most 8 bytes a pair. Returns the end, or -1 when incomplete. Throws CborScanError.
 */
function scanColumn(buf: Uint8Array, pos: number, end: number, avail: number, n: number, elem: CborScanLimits, sizes: number[]): number {
  const at = pos;
  let p = head(buf, pos, end, avail);
  if (p < 0) return -1;
  if (major() === 4) {
    if (arg() !== n) throw new CborScanError('damage', `a column of ${arg()} elements in a group of ${n} pairs`, at);
    for (let i = 0; i < n; i++) {
      const e = cborScan(buf, p, end, avail, elem);
      if (e < 0) return -1;
      sizes.push(e - p);
      p = e;
    }
    return p;
  }
  if (major() !== 5) throw new CborScanError('damage', 'a column that is neither an array nor a map', at);
  if (arg() > MAX_COLUMN_FIELDS) throw new CborScanError('damage', `a column map of ${arg()} fields`, at);
  const fields = arg();
  const text: CborScanLimits = { maxDepth: 0, maxStringBytes: elem.maxStringBytes };
  for (let i = 0; i < fields; i++) {
    // The field's name: a short text string.
    const nat = p;
    const np = head(buf, p, end, avail);
    if (np < 0) return -1;
    if (major() !== 3 || arg() > 16) throw new CborScanError('damage', 'a column field whose name is not a short text', nat);
    if (np + arg() > end) return avail >= np + arg() ? -1 : damage('the data ends inside a CBOR item', nat);
    const name = Buffer.from(buf.buffer, buf.byteOffset + np, arg()).toString('latin1');
    p = np + arg();
    const fat = p;
    const fp = head(buf, p, end, avail);
    if (fp < 0) return -1;
    if (name === 'templates') {
      // An array of at most n text strings, each within the string limit.
      checkTemplatesHead(major(), arg(), n, fat);
      const count = arg();
      p = fp;
      for (let q = 0; q < count; q++) {
        p = cborScan(buf, p, end, avail, text);
        if (p < 0) return -1;
      }
      continue;
    }
    if (major() === 4 || major() === 5) throw new CborScanError('damage', 'a column field that is not a scalar', fat);
    const maxBytes = name === 'nums' ? n * (elem.maxStringBytes + VARINT_MAX_BYTES) : name === 'hex' ? n * FIELD_BYTES_PER_PAIR : n * VARINT_MAX_BYTES;
    if (major() === 2 && arg() > maxBytes) {
      throw new CborScanError('damage', `a column of ${arg()} bytes, more than the varints of ${n} pairs take`, fat);
    }
    p = cborScan(buf, p, end, avail, { maxDepth: 0, maxStringBytes: maxBytes });
    if (p < 0) return -1;
  }
  return p;
}

function damage(what: string, at: number): never {
  throw new CborScanError('damage', what, at);
}

/**
 * Scanner of a version 2 group item `[n, keys, values]` at `pos`: n at most `maxPairs`, each
 * column within the limits (`elem` for every key and value of a plain column; the sizes of a plain
 * keys column go to `keySizes`, of a plain values column to `valueSizes`). Returns the end of the
 * item or -1 when it is not complete. Throws CborScanError.
 */
export function scanGroupV2(
  buf: Uint8Array,
  pos: number,
  end: number,
  avail: number,
  maxPairs: number,
  elem: CborScanLimits,
  keySizes: number[],
  valueSizes: number[],
): number {
  keySizes.length = 0;
  valueSizes.length = 0;
  let p = head(buf, pos, end, avail);
  if (p < 0) return -1;
  if (major() !== 4 || arg() !== 3) throw new CborScanError('damage', 'a group item that is not an array of three', pos);
  const at = p;
  p = head(buf, p, end, avail);
  if (p < 0) return -1;
  if (major() !== 0) throw new CborScanError('damage', 'a group whose pair count is not an unsigned integer', at);
  const n = arg();
  if (n > maxPairs) throw new CborScanError('limit', `a group of ${n} pairs, more than the limit of ${maxPairs}`, at, 'count', n);
  p = scanColumn(buf, p, end, avail, n, elem, keySizes);
  if (p < 0) return -1;
  return scanColumn(buf, p, end, avail, n, elem, valueSizes);
}

/** One decoded group: `keys[i] -> values[i]`, and the CBOR bytes each key and value takes as plain CBOR (for the limits and `inspect`). */
export interface GroupV2 {
  keys: Json[];
  values: Json[];
  keyBytes: number[];
  valueBytes: number[];
}

/** CBOR bytes of an integer as plain CBOR writes it (a CBOR integer below 2^32 in magnitude, else a float64). */
export function intCborBytes(k: number): number {
  const m = k < 0 ? -1 - k : k;
  if (!Number.isSafeInteger(k) || m >= 2 ** 32) return 9;
  return m < 24 ? 1 : m < 0x100 ? 2 : m < 0x10000 ? 3 : 5;
}

function columnMap(m: Map<unknown, unknown>, bad: (what: string) => never): Map<string, unknown> {
  for (const k of m.keys()) if (typeof k !== 'string' || !COLUMN_FIELDS.includes(k)) return bad('has a column with an unknown field');
  return m as Map<string, unknown>;
}

/**
 * Decode a version 2 group item (cbor-x's result for bytes `scanGroupV2` has passed) with the
 * sizes that scan gave. Every rule of the format is checked: the counts, the varint columns
 * (each key a safe integer), the fields of a column map; `bad` is called on a violation.
 */
export function decodeGroupV2(v: unknown[], keySizes: readonly number[], valueSizes: readonly number[], bad: (what: string) => never): GroupV2 {
  const n = v[0];
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) return bad('has a group whose pair count is not an unsigned integer');
  const kc = v[1];
  const vc = v[2];
  let keys: Json[];
  let keyBytes: number[];
  if (Array.isArray(kc)) {
    keys = toJsonArray(kc);
    if (keys.length !== n) bad('has a group with unequal key and pair counts');
    keyBytes = keySizes.slice(0, n);
  } else if (kc instanceof Map && (kc.has('templates') || kc.has('hex'))) {
    const m = columnMap(kc, bad);
    keys = new Array<Json>(n);
    keyBytes = new Array<number>(n);
    const hex = m.get('hex');
    const ids = m.get('ids');
    const nums = m.get('nums');
    if (hex !== undefined ? m.size !== 1 || !(hex instanceof Uint8Array) : m.size !== 3 || !(ids instanceof Uint8Array) || !(nums instanceof Uint8Array)) {
      return bad(`has a malformed ${hex !== undefined ? 'hex' : 'template'} key column`);
    }
    try {
      if (hex !== undefined) readHexKeys(hex as Uint8Array, n, keys, keyBytes);
      else readTemplateKeys(m.get('templates'), ids as Uint8Array, nums as Uint8Array, n, keys, keyBytes);
    } catch (e) {
      return bad(`has a string key column that ${(e as Error).message}`);
    }
  } else if (kc instanceof Map) {
    const m = columnMap(kc, bad);
    const base = m.get('base');
    const deltas = m.get('deltas');
    if (m.size !== 2 || typeof base !== 'number' || !(deltas instanceof Uint8Array)) return bad('has a malformed integer key column');
    if (!Number.isSafeInteger(base)) return bad('has an integer key column whose base is not a safe integer');
    keys = new Array<Json>(n);
    try {
      readVarints(deltas, n, keys as number[]);
    } catch (e) {
      if (e instanceof VarintError) return bad(`has an integer key column that ${e.message}`);
      throw e;
    }
    keyBytes = new Array<number>(n);
    let k = base === 0 ? 0 : base;
    for (let i = 0; i < n; i++) {
      k += keys[i] as number;
      if (k > MAX_SAFE) return bad('has an integer key column whose keys leave the safe integers');
      keys[i] = k;
      keyBytes[i] = intCborBytes(k);
    }
  } else {
    return bad('has a group whose keys are neither an array nor a column map');
  }
  let values: Json[];
  let valueBytes: number[];
  if (Array.isArray(vc)) {
    values = toJsonArray(vc);
    if (values.length !== n) bad('has a group with unequal value and pair counts');
    valueBytes = valueSizes.slice(0, n);
  } else if (vc instanceof Map) {
    const m = columnMap(vc, bad);
    const ints = m.get('ints');
    if (m.size !== 1 || !(ints instanceof Uint8Array)) return bad('has a malformed integer value column');
    values = new Array<Json>(n);
    try {
      readVarints(ints, n, values as number[]);
    } catch (e) {
      if (e instanceof VarintError) return bad(`has an integer value column that ${e.message}`);
      throw e;
    }
    valueBytes = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const z = values[i] as number;
      // zigzag: even z = 2v, odd z = -2v - 1 (z is a safe integer, so v is exact).
      const x = z % 2 === 0 ? z / 2 : -(z + 1) / 2;
      values[i] = x;
      valueBytes[i] = intCborBytes(x);
    }
  } else {
    return bad('has a group whose values are neither an array nor a column map');
  }
  return { keys, values, keyBytes, valueBytes };
}
