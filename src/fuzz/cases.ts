/**
 * What the fuzzer's cases are made of (src/fuzz/fuzz.ts): the random source, the mutations of
 * bytes and of decoded CBOR items, and how a target's case ends (a result, a clear refusal, or a
 * crash: anything else thrown).
 */
import { MAX_MESSAGE_DEPTH, MAX_VALUE_CHARS, MAX_VALUE_DEPTH } from '../limits.js';
import { decodeCborSequence } from '../storage/codec.js';
import { StorageError } from '../storage/errors.js';
import { cbor } from './seal.js';

/** xorshift128+ in 32-bit halves: deterministic, fast, good enough for choosing mutations. */
export class Rng {
  private s: Uint32Array;
  constructor(seed: number) {
    this.s = new Uint32Array([seed >>> 0 || 1, 0x9e3779b9, 0x243f6a88, 0xb7e15162]);
    for (let i = 0; i < 16; i++) this.u32();
  }
  u32(): number {
    const s = this.s;
    let t = s[3]!;
    t ^= t << 11;
    t ^= t >>> 8;
    s[3] = s[2]!;
    s[2] = s[1]!;
    s[1] = s[0]!;
    s[0] = (t ^ s[0]! ^ (s[0]! >>> 19)) >>> 0;
    return s[0]!;
  }
  int(n: number): number {
    return n <= 0 ? 0 : this.u32() % n;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}


// ------------------------------------------------------------------------------------------------
// Mutations

export const EXTREMES32 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

/** One random mutation of `b`: bit flips, a byte set, a cut, an insertion, a duplicated slice, a 32-bit field set to an extreme, a CBOR head's argument set to an extreme. */
export function mutate(b: Uint8Array, rng: Rng): Buffer {
  const buf = Buffer.from(b);
  if (buf.length === 0) return Buffer.from([rng.int(256)]);
  switch (rng.int(8)) {
    case 0: {
      const n = 1 + rng.int(4);
      for (let i = 0; i < n; i++) buf[rng.int(buf.length)]! ^= 1 << rng.int(8);
      return buf;
    }
    case 1:
      buf[rng.int(buf.length)] = rng.int(256);
      return buf;
    case 2:
      return buf.subarray(0, rng.int(buf.length));
    case 3: {
      const at = rng.int(buf.length + 1);
      const ins = Buffer.alloc(1 + rng.int(16));
      for (let i = 0; i < ins.length; i++) ins[i] = rng.int(256);
      return Buffer.concat([buf.subarray(0, at), ins, buf.subarray(at)]);
    }
    case 4: {
      const a = rng.int(buf.length);
      const len = 1 + rng.int(Math.min(64, buf.length - a));
      const at = rng.int(buf.length + 1);
      return Buffer.concat([buf.subarray(0, at), buf.subarray(a, a + len), buf.subarray(at)]);
    }
    case 5:
      if (buf.length >= 4) buf.writeUInt32BE(rng.pick(EXTREMES32), rng.int(buf.length - 3));
      return buf;
    case 6: {
      // A CBOR head with a 1-, 2-, 4- or 8-byte argument: set the argument to its maximum or zero.
      for (let tries = 0; tries < 32; tries++) {
        const i = rng.int(buf.length);
        const ai = buf[i]! & 31;
        if (ai < 24 || ai > 27) continue;
        const n = 1 << (ai - 24);
        const v = rng.int(2) === 0 ? 0xff : 0;
        for (let j = 1; j <= n && i + j < buf.length; j++) buf[i + j] = v;
        return buf;
      }
      return buf;
    }
    default: {
      // Deep nesting: a run of "array of one" heads.
      const at = rng.int(buf.length + 1);
      return Buffer.concat([buf.subarray(0, at), Buffer.alloc(1 + rng.int(300), 0x81), buf.subarray(at)]);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Targets

export type Outcome = 'ok' | 'refused';

export interface Target {
  name: string;
  seeds(): Buffer[];
  /** A mutated input from a seed (may re-seal checksums). */
  make(seed: Buffer, rng: Rng): Buffer;
  /** Run the decoder on an input; returns how it ended or throws (a crash) when it ends otherwise. */
  run(input: Buffer): Outcome;
}

/** A StorageError (of one line) is a refusal; anything else thrown goes on up (a crash). */
export function storageOutcome(f: () => void): Outcome {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (e instanceof StorageError) {
      if (e.message.includes('\n')) throw new Error(`a StorageError of more than one line: ${JSON.stringify(e.message)}`);
      return 'refused';
    }
    throw e;
  }
}

// ------------------------------------------------------------------------------------------------
// Structural mutations

/**
 * A structural mutation of a raw payload (a CBOR sequence of trusted seed bytes): one item decoded,
 * changed as a JSON value (a value replaced by a hostile one, a key run's start or count set to an
 * extreme, the end item's count or session table changed) and encoded again. Null when the seed
 * does not decode.
 */
export function mutateItems(raw: Uint8Array, rng: Rng): Buffer | null {
  const items: unknown[] = [];
  try {
    decodeCborSequence(raw, (v) => void items.push(v));
  } catch {
    return null;
  }
  if (!mutateItemList(items, rng, 1)) return null;
  try {
    return Buffer.concat(items.map((x) => cbor(x)));
  } catch {
    return null; // too deep to encode here: the byte mutations cover it
  }
}

/**
 * The change `mutateItems` makes, to one of the decoded items from index `from` on, in place;
 * false when there is none it can change.
 */
export function mutateItemList(items: unknown[], rng: Rng, from: number): boolean {
  if (items.length <= from) return false;
  const i = from + rng.int(items.length - from);
  const item = items[i];
  const hostile = (): unknown => {
    try {
      return JSON.parse(rng.pick(HOSTILE_JSON)()) as unknown;
    } catch {
      return null;
    }
  };
  if (Array.isArray(item) && item.length === 3) {
    mutateGroup(item, rng, hostile);
    items[i] = plainMaps(item);
  } else if (Array.isArray(item) && item.length === 2) {
    const [keys, values] = item as [unknown, unknown[]];
    if (keys instanceof Map || (keys !== null && typeof keys === 'object' && !Array.isArray(keys))) {
      const run = keys instanceof Map ? Object.fromEntries(keys) : (keys as Record<string, unknown>);
      const extremes = [0, -1, 2 ** 53 - 1, 2 ** 53, -(2 ** 53), 0.5, 8192, 8193, 'x', null];
      run[rng.pick(['start', 'count'])] = rng.pick(extremes);
      item[0] = run;
    } else if (Array.isArray(keys) && keys.length > 0 && rng.int(2) === 0) {
      keys[rng.int(keys.length)] = hostile();
    } else if (Array.isArray(values) && values.length > 0) {
      values[rng.int(values.length)] = hostile();
    }
  } else if (item instanceof Map || (item !== null && typeof item === 'object')) {
    const end = item instanceof Map ? Object.fromEntries(item) : (item as Record<string, unknown>);
    if (rng.int(2) === 0) end['keyCount'] = rng.pick([0, 1, -1, 2 ** 32, 0.5, 'x']);
    else {
      const origin = rng.pick(['o', '', 'x'.repeat(300)]);
      end['sessions'] = rng.pick<unknown>([
        hostile(),
        { forwards: [{ origin, last: rng.pick([0, -1, 1e300]), low: 0, ids: [1, rng.pick([0, -5, 2 ** 53]), 'x'], failed: [[1, 22, 'no'], [2, 20], 'x'] }] },
        { forwards: Array.from({ length: 300 }, (_, n) => ({ origin: `o${n}`, last: n, low: 0, ids: [n] })) },
        { forwards: hostile() },
      ]);
    }
    items[i] = end;
  } else return false;
  return true;
}

/** Decoded CBOR maps (Map, which cbor-x would write with a tag) as plain objects again, all the way down (null below 200 levels). */
export function plainMaps(x: unknown, depth = 0): unknown {
  if (depth > 200) return null;
  if (x instanceof Map) {
    const o: Record<string, unknown> = {};
    for (const [k, v] of x) o[String(k)] = plainMaps(v, depth + 1);
    return o;
  }
  if (Array.isArray(x)) return x.map((v) => plainMaps(v, depth + 1));
  return x;
}

/**
 * A structural mutation of a version 2 group `[n, keys, values]` (src/storage/chunk-v2.ts): its
 * count, a field of a column map (a byte of a varint column changed, the column cut or grown, a
 * base or template replaced by an extreme), or a key or value of a plain column.
 */
function mutateGroup(item: unknown[], rng: Rng, hostile: () => unknown): void {
  const extremes = [0, 1, -1, 2 ** 53 - 1, 2 ** 53, -(2 ** 53), 0.5, 8192, 8193, 2 ** 32, 'x', null];
  const which = rng.int(5);
  if (which === 0) {
    item[0] = rng.pick(extremes);
    return;
  }
  const col = item[which % 2 === 1 ? 1 : 2];
  if (col instanceof Map) {
    const names = [...col.keys()] as string[];
    if (names.length === 0) return;
    const name = rng.pick(names);
    const v = col.get(name) as unknown;
    if (v instanceof Uint8Array) {
      const b = Buffer.from(v);
      const r = rng.int(4);
      if (r === 0 && b.length > 0) b[rng.int(b.length)] = rng.pick([0x00, 0x7f, 0x80, 0xff, rng.int(256)]);
      if (r === 1) col.set(name, b.subarray(0, rng.int(b.length + 1)));
      else if (r === 2) col.set(name, Buffer.concat([b, Buffer.alloc(1 + rng.int(9), rng.pick([0x00, 0x80, 0xff]))]));
      else col.set(name, b);
    } else if (Array.isArray(v) && v.length > 0) {
      v[rng.int(v.length)] = rng.pick<unknown>([hostile(), 7, '', '0'.repeat(300), 'a0b0c0d0e0']);
    } else {
      col.set(name, rng.pick(extremes));
    }
    if (rng.int(8) === 0) col.set(rng.pick(['base', 'deltas', 'ints', 'templates', 'ids', 'nums', 'hex', 'start']), rng.pick(extremes));
  } else if (Array.isArray(col) && col.length > 0) {
    col[rng.int(col.length)] = hostile();
  }
}

export const nest = (depth: number, inner = '1'): string => '['.repeat(depth) + inner + ']'.repeat(depth);

/** Text of hostile JSON values (spliced in as text: `1e400` parses to Infinity). */
export const HOSTILE_JSON = [
  () => nest(MAX_VALUE_DEPTH),
  () => nest(MAX_VALUE_DEPTH + 1),
  () => nest(MAX_MESSAGE_DEPTH),
  () => nest(5000),
  () => '{"a":'.repeat(70) + '1' + '}'.repeat(70),
  () => '1e400',
  () => '-1e400',
  () => '-0',
  () => '123456789012345678901234567890',
  () => JSON.stringify('x'.repeat(MAX_VALUE_CHARS)),
  () => JSON.stringify('\u0001'.repeat(20_000)),
  () => '[' + Array.from({ length: 4000 }, () => '1e20').join(',') + ']',
  () => 'null',
  () => '"__proto__"',
  () => '{"__proto__":{"x":1}}',
  () => '[]',
  () => '{}',
  () => 'true',
  () => '"\ud800"',
  () => '"line\\none\\u001b[31m"',
];
