/**
 * The state machine's map of number and string keys, split over a fixed number of native Maps.
 * One Map of a million entries doubles its table in one synchronous call when it grows past a
 * power of two (about 100 ms at 524,288 entries on a loaded 2-core machine): an event-loop pause
 * no slicing can avoid, on a leader applying writes as on a follower loading a snapshot. Split 64
 * ways, the largest such step is 64 times smaller.
 *
 * A key's shard depends on the key alone (its type and value), so every replica puts it in the
 * same one. Integers from 0 to 2^31 - 1 go by blocks of 4,096 consecutive values (a snapshot's key
 * runs survive: docs/FORMAT.md); other numbers and strings by a hash of at most their last 16
 * UTF-16 code units and their length. Iteration is shard by shard, each in insertion order.
 */
import type { Json } from '../raft/types.js';

export const SHARDS = 64;
/**
 * The shard of the keys that are neither numbers nor strings (null, booleans, arrays, objects),
 * which the state machine keeps apart: a snapshot file (format 3) records the shards of each chunk
 * of pairs, 0 to SHARDS - 1 by `shardOf`, and this one for every other key (docs/FORMAT.md).
 */
export const OTHER_SHARD = SHARDS;
const MASK = SHARDS - 1;
const INT_BLOCK_BITS = 12;

function stringShard(s: string): number {
  const n = s.length;
  let h = n ^ 0x811c9dc5;
  for (let i = n > 16 ? n - 16 : 0; i < n; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h ^ (h >>> 15) ^ (h >>> 26)) & MASK;
}

/** The shard of a number or string key. */
export function shardOf(k: number | string): number {
  if (typeof k === 'string') return stringShard(k);
  // -0 goes with 0 (a Map does not tell them apart either).
  if (k >= 0 && k <= 0x7fffffff && Math.floor(k) === k) return (k >>> INT_BLOCK_BITS) & MASK;
  return stringShard(String(k));
}

/** The shard of any key, as a snapshot file records it: `shardOf` for numbers and strings, OTHER_SHARD for any other key. */
export function keyShard(k: Json): number {
  return typeof k === 'number' || typeof k === 'string' ? shardOf(k) : OTHER_SHARD;
}

/**
 * The least and greatest `keyShard` of integer keys spanning `min..max`, from the two ends alone,
 * or null when that cannot be told without each key: the span leaves 0..2^31 - 1 (other numbers
 * hash) or wraps around the shards (64 blocks of 4,096 or more apart).
 */
export function intShardSpan(min: number, max: number): [number, number] | null {
  if (!(min >= 0 && max <= 0x7fffffff && min <= max)) return null;
  const a = min >>> INT_BLOCK_BITS;
  const b = max >>> INT_BLOCK_BITS;
  if (b - a >= SHARDS || (a & MASK) > (b & MASK)) return null;
  return [a & MASK, b & MASK];
}

export class ShardedMap {
  readonly shards: Array<Map<number | string, Json>> = Array.from({ length: SHARDS }, () => new Map());

  get size(): number {
    let n = 0;
    for (const m of this.shards) n += m.size;
    return n;
  }

  has(k: number | string): boolean {
    return this.shards[shardOf(k)]!.has(k);
  }

  get(k: number | string): Json | undefined {
    return this.shards[shardOf(k)]!.get(k);
  }

  set(k: number | string, v: Json): void {
    this.shards[shardOf(k)]!.set(k, v);
  }

  *[Symbol.iterator](): Generator<[number | string, Json]> {
    for (const m of this.shards) yield* m;
  }
}
