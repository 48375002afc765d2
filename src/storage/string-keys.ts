/**
 * String key columns of snapshot format version 2 (docs/FORMAT.md, "Payload"). Sorting strings
 * costs too much for a writer that must be fast, so string keys are split into what sorts cheaply:
 *
 *  - template keys: a key's maximal runs of decimal digits that read as canonical integers (no
 *    leading zero, at most 15 digits) are its numbers, the rest its template, written with a "0"
 *    where each number goes (`user:42` is template `user:0` and number 42). Column
 *    `{"templates": [t1, ...], "ids": b, "nums": b}`: the templates of the group; per key, in
 *    group order, the varint index of its template (`ids`) and its numbers (`nums`), each a varint
 *    but the last, which is the zigzag varint of its difference to the last number of the key
 *    before it with the same template (0 for the first). The writer orders a group by template and
 *    last number, so that those differences are small.
 *  - hex keys: lower-case hexadecimal text of 8 to 64 digits, an even number, holding a letter.
 *    Column `{"hex": b}`: per key the number of bytes L (4..32, one byte), the varint of the
 *    difference between its first four bytes (read as a big-endian integer) and the previous key's
 *    (the writer orders the group by them: never negative), then its other L - 4 bytes.
 *
 * A key that is neither (a digit run with a leading zero, or too long) goes into the plain group.
 */
import { CborScanError } from './cbor.js';
import { closeBytes, openBytes, type Scratch } from './columns.js';

/** Longest digit run taken as a number (15 digits: always a safe integer). */
const MAX_DIGITS = 15;
const HEX_MIN = 8;
const HEX_MAX = 64;

// ------------------------------------------------------------------------------------------------
// Classifying keys

/** What kind of string key `s` is: 1 template, 2 hex, 0 plain (the plain group). */
export function stringKeyKind(s: string): 0 | 1 | 2 {
  const nn = nTotal;
  const kind = classifyStringKey(s, 0);
  nTotal = nn;
  return kind;
}

/** Start the classification of a chunk's string keys (`classifyStringKey` for each, in order). */
export function beginStringKeys(n: number): void {
  growT(n);
  nTotal = 0;
}

/**
 * Classify string key `s` in one pass over it: 1 template, 2 hex, 0 plain. A template key's
 * numbers, the hash of its template and its last number are kept as the `slot`-th key of the
 * chunk's template group, for `putTemplateKeys` (slots are given in order, from 0).
 */
export function classifyStringKey(s: string, slot: number): 0 | 1 | 2 {
  const len = s.length;
  if (nTotal + len > nums.length) {
    const bigger = new Float64Array(Math.max(nums.length * 2, nTotal + len));
    bigger.set(nums.subarray(0, nTotal));
    nums = bigger;
  }
  let nn = nTotal;
  let hex = len >= HEX_MIN && len <= HEX_MAX && (len & 1) === 0;
  let letter = false;
  let canonical = true;
  let h = 0x811c9dc5;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) {
      if (c >= 97 && c <= 102) letter = true;
      else hex = false;
      h = Math.imul(h ^ c, 0x01000193);
      continue;
    }
    let x = c - 48;
    let k = i + 1;
    for (; k < len; k++) {
      const d = s.charCodeAt(k);
      if (d < 48 || d > 57) break;
      x = x * 10 + (d - 48);
    }
    if ((c === 48 && k - i > 1) || k - i > MAX_DIGITS) canonical = false;
    h = Math.imul(h ^ 48, 0x01000193);
    nums[nn++] = x;
    i = k - 1;
  }
  if (hex && letter) return 2;
  if (!canonical) return 0;
  nStart[slot] = nTotal;
  nCount[slot] = nn - nTotal;
  hashOf[slot] = h;
  lastNum[slot] = nn > nTotal ? Math.min(nums[nn - 1]!, 0xffffffff) : 0;
  nTotal = nn;
  return 1;
}

// ------------------------------------------------------------------------------------------------
// Varints (shared shape with chunk-v2.ts: unsigned LEB128, at most 8 bytes)

function varintAt(b: Buffer, p: number, x: number): number {
  while (x >= 0x80) {
    b[p++] = (x % 0x80) | 0x80;
    x = Math.floor(x / 0x80);
  }
  b[p++] = x;
  return p;
}

/** A cursor over a byte string of varints; `next` throws CborScanError-free plain Errors the caller turns into BAD_PAYLOAD. */
export class VarintReader {
  pos = 0;
  constructor(private readonly b: Uint8Array) {}
  get done(): boolean {
    return this.pos === this.b.length;
  }
  next(): number {
    const b = this.b;
    if (this.pos >= b.length) throw new Error('ends before its last varint');
    let c = b[this.pos++]!;
    if (c < 0x80) return c;
    let x = c & 0x7f;
    let mul = 0x80;
    for (let k = 1; ; k++) {
      if (k >= 8) throw new Error('holds a varint longer than 8 bytes');
      if (this.pos >= b.length) throw new Error('ends inside a varint');
      c = b[this.pos++]!;
      x += (c & 0x7f) * mul;
      if (c < 0x80) break;
      mul *= 0x80;
    }
    if (x > Number.MAX_SAFE_INTEGER) throw new Error('holds a varint beyond the safe integers');
    return x;
  }
  byte(): number {
    if (this.pos >= this.b.length) throw new Error('ends inside a key');
    return this.b[this.pos++]!;
  }
}

// ------------------------------------------------------------------------------------------------
// Sorting: a stable LSD radix sort of (value, position) pairs on 32-bit values

let cap = 0;
let relA = new Uint32Array(0);
let relB = new Uint32Array(0);
let posA = new Int32Array(0);
let posB = new Int32Array(0);
const counts = new Int32Array(2048);

function grow(n: number): void {
  if (n <= cap) return;
  cap = Math.max(n, cap * 2);
  relA = new Uint32Array(cap);
  relB = new Uint32Array(cap);
  posA = new Int32Array(cap);
  posB = new Int32Array(cap);
}

/**
 * Reorder `order[0, m)` stably by `value(order[j])` (integers 0 <= v <= range < 2^32): an LSD radix
 * sort, 11 bits a pass, passes over digits that are zero in every value skipped.
 */
export function radixOrder(order: Int32Array, m: number, range: number, value: (i: number) => number): void {
  if (range === 0 || m < 2) return;
  const { rel, pos } = radixInput(m);
  for (let j = 0; j < m; j++) {
    const i = order[j]!;
    rel[j] = value(i);
    pos[j] = i;
  }
  radixSortInput(order, m, range);
}

/**
 * The scratch `radixOrder` sorts, for a caller that fills it itself (a loop of its own rather
 * than a call of `value` per element: the hot path of integer keys): `rel[j]` the value and
 * `pos[j]` the element of `order[j]`, for j < m; then `radixSortInput`.
 */
export function radixInput(m: number): { rel: Uint32Array; pos: Int32Array } {
  grow(m);
  return { rel: relA, pos: posA };
}

/** `radixOrder` on the scratch filled through `radixInput`: `order[0, m)` gets the elements by ascending value (stable). */
export function radixSortInput(order: Int32Array, m: number, range: number): void {
  if (range === 0 || m < 2) return;
  let rs = relA;
  let rd = relB;
  let ps = posA;
  let pd = posB;
  const passes = range < 2 ** 11 ? 1 : range < 2 ** 22 ? 2 : 3;
  for (let pass = 0; pass < passes; pass++) {
    const shift = pass * 11;
    counts.fill(0);
    for (let j = 0; j < m; j++) counts[(rs[j]! >>> shift) & 0x7ff]!++;
    let sum = 0;
    for (let d = 0; d < 2048; d++) {
      const c = counts[d]!;
      counts[d] = sum;
      sum += c;
    }
    for (let j = 0; j < m; j++) {
      const r = rs[j]!;
      const q = counts[(r >>> shift) & 0x7ff]!++;
      rd[q] = r;
      pd[q] = ps[j]!;
    }
    const tr = rs;
    rs = rd;
    rd = tr;
    const tp = ps;
    ps = pd;
    pd = tp;
  }
  order.set(ps.subarray(0, m));
}

// ------------------------------------------------------------------------------------------------
// Writing

// Per-chunk scratch of the template writer, filled by `classifyStringKey` (by slot: the key's
// position in the template group).
let tcap = 0;
let tid = new Int32Array(0); // template index of each key
let nStart = new Int32Array(0); // where its numbers start in `nums`
let nCount = new Int32Array(0);
let hashOf = new Int32Array(0); // hash of its template
let lastNum = new Uint32Array(0); // its last number (clamped to 2^32 - 1) for the sort
let nums = new Float64Array(1024);
let nTotal = 0;
let prevLast = new Float64Array(0); // per template, the last number of the key written before

function growT(n: number): void {
  if (n <= tcap) return;
  tcap = Math.max(n, tcap * 2);
  tid = new Int32Array(tcap);
  nStart = new Int32Array(tcap);
  nCount = new Int32Array(tcap);
  hashOf = new Int32Array(tcap);
  lastNum = new Uint32Array(tcap);
  prevLast = new Float64Array(tcap);
}

let table = new Int32Array(0);

/** The template of a template key: each digit run replaced by "0". */
function templateOf(s: string): string {
  let t = '';
  let seg = 0;
  const len = s.length;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) continue;
    let k = i + 1;
    while (k < len && s.charCodeAt(k) >= 48 && s.charCodeAt(k) <= 57) k++;
    t += s.slice(seg, i) + '0';
    seg = k;
    i = k - 1;
  }
  return seg === 0 ? s : t + s.slice(seg);
}

/** Whether `t` is the template of key `s` (its text, with one "0" where `s` has each digit run). */
function isTemplateOf(t: string, s: string): boolean {
  const len = s.length;
  let q = 0;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (t.charCodeAt(q++) !== 48) return false;
      while (i + 1 < len && s.charCodeAt(i + 1) >= 48 && s.charCodeAt(i + 1) <= 57) i++;
    } else if (t.charCodeAt(q++) !== c) return false;
  }
  return q === t.length;
}

const HEAD_TEMPLATES = Buffer.from([0xa3, 0x69, ...Buffer.from('templates', 'latin1')]);
const HEAD_IDS = Buffer.from([0x63, ...Buffer.from('ids', 'latin1')]);
const HEAD_NUMS = Buffer.from([0x64, ...Buffer.from('nums', 'latin1')]);
const HEAD_HEX = Buffer.from([0xa1, 0x63, ...Buffer.from('hex', 'latin1')]);

/** Templates of a chunk's template keys and the keys' order, from `orderTemplateKeys`. */
export interface TemplateOrder {
  /** The chunk's templates, in the order first seen. */
  templates: string[];
  /** Slots (positions in the classification) of the keys in group order. */
  slots: Int32Array;
}

/**
 * Find the templates of the `m` template keys `idx[0, m)` of a chunk (indices into `keys` from
 * `from`, every key of kind 1, classified in this order) and reorder `idx` into their group order:
 * by template, then by last number. `putTemplateKeys` then writes any run of that order.
 */
export function orderTemplateKeys(keys: readonly unknown[], from: number, idx: Int32Array, m: number): TemplateOrder {
  // A hash table of the template ids, looked up with the hash of the template's text (from
  // `classifyStringKey`) and checked against the key itself, so that a template's string is built
  // only the first time it is seen.
  const templates: string[] = [];
  const hashes: number[] = [];
  let size = 64;
  while (size < m * 2) size *= 2;
  if (table.length < size) table = new Int32Array(size);
  const mask = size - 1;
  table.fill(0, 0, size);
  let maxLast = 0;
  for (let j = 0; j < m; j++) {
    const s = keys[from + idx[j]!] as string;
    const h = hashOf[j]!;
    let slot = h & mask;
    let id = -1;
    for (let e = table[slot]!; e !== 0; slot = (slot + 1) & mask, e = table[slot]!) {
      if (hashes[e - 1] === h && isTemplateOf(templates[e - 1]!, s)) {
        id = e - 1;
        break;
      }
    }
    if (id < 0) {
      id = templates.length;
      templates.push(templateOf(s));
      hashes.push(h);
      table[slot] = id + 1;
    }
    tid[j] = id;
    if (lastNum[j]! > maxLast) maxLast = lastNum[j]!;
  }
  // Two stable passes, least significant first.
  const slots = new Int32Array(m);
  for (let j = 0; j < m; j++) slots[j] = j;
  radixOrder(slots, m, maxLast, (j) => lastNum[j]!);
  radixOrder(slots, m, templates.length - 1, (j) => tid[j]!);
  const sorted = new Int32Array(m);
  for (let k = 0; k < m; k++) sorted[k] = idx[slots[k]!]!;
  idx.set(sorted);
  return { templates, slots };
}

/**
 * Write the template keys column of the group made of the keys `k0 <= k < k1` of `t`'s order: the
 * templates they use (a run of `t.templates`, as the order is by template), then their ids and
 * numbers, the differences of last numbers starting afresh.
 */
export function putTemplateKeys(w: Scratch, t: TemplateOrder, k0: number, k1: number): void {
  const { templates, slots } = t;
  const lo = tid[slots[k0]!]!;
  const hi = tid[slots[k1 - 1]!]!;
  w.bytes(HEAD_TEMPLATES);
  w.room(5);
  w.head(0x80, hi - lo + 1);
  for (let x = lo; x <= hi; x++) w.item(templates[x]!);
  w.bytes(HEAD_IDS);
  let start = openBytes(w, (k1 - k0) * 3);
  let b = w.buf;
  let p = start;
  let numCount = 0;
  for (let k = k0; k < k1; k++) {
    const x = tid[slots[k]!]! - lo;
    numCount += nCount[slots[k]!]!;
    if (x < 0x80) b[p++] = x;
    else p = varintAt(b, p, x);
  }
  closeBytes(w, start, p);
  w.bytes(HEAD_NUMS);
  start = openBytes(w, numCount * 8);
  b = w.buf;
  p = start;
  prevLast.fill(0, 0, hi - lo + 1);
  for (let k = k0; k < k1; k++) {
    const j = slots[k]!;
    const c = nCount[j]!;
    if (c === 0) continue;
    const s0 = nStart[j]!;
    for (let q = s0; q < s0 + c - 1; q++) {
      const x = nums[q]!;
      if (x < 0x80) b[p++] = x;
      else p = varintAt(b, p, x);
    }
    const last = nums[s0 + c - 1]!;
    const id = tid[j]! - lo;
    const d = last - prevLast[id]!;
    prevLast[id] = last;
    const z = d >= 0 ? d * 2 : -d * 2 - 1;
    if (z < 0x80) b[p++] = z;
    else p = varintAt(b, p, z);
  }
  closeBytes(w, start, p);
}

const HEX_DIGIT = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX_DIGIT[48 + i] = i;
for (let i = 0; i < 6; i++) HEX_DIGIT[97 + i] = 10 + i;

/** The first four bytes of hex key `s` as a big-endian unsigned integer. */
function hexPrefix(s: string): number {
  let x = 0;
  for (let i = 0; i < 8; i++) x = x * 16 + HEX_DIGIT[s.charCodeAt(i)]!;
  return x;
}

/** Reorder the `m` hex keys `idx[0, m)` of a chunk (every key of kind 2) into their group order: by their first four bytes. */
export function orderHexKeys(keys: readonly unknown[], from: number, idx: Int32Array, m: number): void {
  radixOrder(idx, m, 0xffffffff, (i) => hexPrefix(keys[from + i] as string));
}

/** Write the hex keys column of the group `idx[0, m)` (hex keys in group order, from `orderHexKeys`). */
export function putHexKeys(w: Scratch, keys: readonly unknown[], from: number, idx: Int32Array, m: number): void {
  w.bytes(HEAD_HEX);
  let total = 0;
  for (let j = 0; j < m; j++) total += (keys[from + idx[j]!] as string).length / 2 + 6;
  const start = openBytes(w, total);
  const b = w.buf;
  let p = start;
  let prev = 0;
  for (let j = 0; j < m; j++) {
    const s = keys[from + idx[j]!] as string;
    b[p++] = s.length / 2;
    const x = hexPrefix(s);
    p = varintAt(b, p, x - prev);
    prev = x;
    for (let i = 8; i < s.length; i += 2) b[p++] = (HEX_DIGIT[s.charCodeAt(i)]! << 4) | HEX_DIGIT[s.charCodeAt(i + 1)]!;
  }
  closeBytes(w, start, p);
}

// ------------------------------------------------------------------------------------------------
// Reading

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** UTF-8 bytes of a string as cbor-x writes it (a lone surrogate as 3 bytes, as Buffer counts it). */
function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

function textHead(len: number): number {
  return len < 24 ? 1 : len < 0x100 ? 2 : len < 0x10000 ? 3 : 5;
}

function digits(x: number): number {
  let d = 1;
  while (x >= 10) {
    x = Math.floor(x / 10);
    d++;
  }
  return d;
}

/**
 * Decode a template keys column of `n` keys into `keys`, and each key's CBOR bytes as plain CBOR
 * into `keyBytes`. Throws Error with what is wrong (the caller makes it BAD_PAYLOAD).
 */
export function readTemplateKeys(templates: unknown, ids: Uint8Array, numBytes: Uint8Array, n: number, keys: unknown[], keyBytes: number[]): void {
  if (!Array.isArray(templates)) throw new Error('has templates that are not an array');
  const parts: string[][] = [];
  const fixed: number[] = []; // UTF-8 bytes of a template's text without its "0"s
  for (const t of templates) {
    if (typeof t !== 'string') throw new Error('has a template that is not text');
    const ps = t.split('0');
    parts.push(ps);
    fixed.push(utf8Bytes(t) - (ps.length - 1));
  }
  const prev = new Float64Array(parts.length);
  const idr = new VarintReader(ids);
  const nr = new VarintReader(numBytes);
  for (let i = 0; i < n; i++) {
    const id = idr.next();
    if (id >= parts.length) throw new Error(`refers to template ${id} of ${parts.length}`);
    const ps = parts[id]!;
    const m = ps.length - 1;
    let bytes = fixed[id]!;
    if (m === 0) {
      keys[i] = ps[0]!;
    } else {
      let s = ps[0]!;
      for (let q = 1; q < m; q++) {
        const x = nr.next();
        s += String(x) + ps[q]!;
        bytes += digits(x);
      }
      const z = nr.next();
      const x = prev[id]! + (z % 2 === 0 ? z / 2 : -(z + 1) / 2);
      if (!Number.isSafeInteger(x) || x < 0) throw new Error('holds a key number that is not a non-negative safe integer');
      prev[id] = x;
      s += String(x) + ps[m]!;
      bytes += digits(x);
      keys[i] = s;
    }
    keyBytes[i] = bytes + textHead(bytes);
  }
  if (!idr.done) throw new Error('has template ids after its last key');
  if (!nr.done) throw new Error('has numbers after its last key');
}

/** Decode a hex keys column of `n` keys into `keys` and `keyBytes`. Throws Error with what is wrong. */
export function readHexKeys(b: Uint8Array, n: number, keys: unknown[], keyBytes: number[]): void {
  const r = new VarintReader(b);
  let prev = 0;
  for (let i = 0; i < n; i++) {
    const len = r.byte();
    if (len < HEX_MIN / 2 || len > HEX_MAX / 2) throw new Error(`holds a hex key of ${len} bytes`);
    const x = prev + r.next();
    if (x > 0xffffffff) throw new Error('holds a hex key whose first four bytes overflow');
    prev = x;
    let s = HEX[x >>> 24]! + HEX[(x >>> 16) & 0xff]! + HEX[(x >>> 8) & 0xff]! + HEX[x & 0xff]!;
    for (let q = 4; q < len; q++) s += HEX[r.byte()]!;
    keys[i] = s;
    keyBytes[i] = 2 * len + textHead(2 * len);
  }
  if (!r.done) throw new Error('has bytes after its last key');
}

/** Names of the column fields of this module, for the scanner. */
export const STRING_KEY_FIELDS = ['templates', 'ids', 'nums', 'hex'];

/** Scanner check: a templates field holds at most `n` text strings. */
export function checkTemplatesHead(major: number, count: number, n: number, at: number): void {
  if (major !== 4) throw new CborScanError('damage', 'a templates field that is not an array', at);
  if (count > n) throw new CborScanError('damage', `${count} templates for ${n} keys`, at);
}
