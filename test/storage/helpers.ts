import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach } from 'vitest';
import type { Json } from '../../src/raft/types.js';
import { canonicalJson } from '../../src/kv/keys.js';

const made: string[] = [];

/** A fresh temporary directory, removed after the test. */
export function tmpDir(prefix = 'raftsnap-storage-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
}

afterEach(() => {
  while (made.length > 0) {
    const d = made.pop()!;
    try {
      fs.chmodSync(d, 0o755);
    } catch {
      // ignore
    }
    fs.rmSync(d, { recursive: true, force: true });
  }
});

/** JSON values as JSON.parse gives them (no -0; keys may be "__proto__"). */
export const jsonArb: fc.Arbitrary<Json> = fc
  .jsonValue({ maxDepth: 3, noUnicodeString: false })
  .map((v) => JSON.parse(JSON.stringify(v)) as Json);

/** Keys of every kind, with integer/string look-alikes. */
export const keyArb: fc.Arbitrary<Json> = fc.oneof(
  fc.integer({ min: -1000, max: 1000 }),
  fc.integer({ min: -1000, max: 1000 }).map((n) => String(n)),
  fc.string(),
  fc.constant(null),
  fc.boolean(),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => (Object.is(x, -0) ? 0 : x)),
  fc.array(fc.oneof(fc.integer(), fc.string()), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 3 }),
);

/** A state: distinct keys (by canonical JSON) with values. */
export const stateArb: fc.Arbitrary<Array<[Json, Json]>> = fc
  .uniqueArray(fc.tuple(keyArb, jsonArb), { selector: ([k]) => canonicalJson(k), maxLength: 60 })
  .map((a) => a.map(([k, v]) => [k, v] as [Json, Json]));

/** Canonical text of a pair list, for deep comparisons that respect 1 vs "1". */
export function canon(pairs: Array<[Json, Json]>): string[] {
  return pairs.map(([k, v]) => canonicalJson(k) + '=' + canonicalJson(v));
}

/** Copy a file, flip one bit at `offset`. */
export function flipBit(file: string, offset: number, bit = 0): void {
  const b = fs.readFileSync(file);
  b[offset] = b[offset]! ^ (1 << bit);
  fs.writeFileSync(file, b);
}
