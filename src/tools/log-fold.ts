/**
 * The committed log after a snapshot, folded onto the few keys it touches: the tools that read a
 * data directory's state never build the whole state to replay the log on it. Which entries
 * execute depends only on the client-session table (the snapshot's, de-duplicating forwarded
 * requests as the node does), never on the values of other keys, so replaying the log on a small
 * store that holds only the touched keys' snapshot values gives exactly their values after the
 * log; every other key keeps its snapshot value.
 *
 *   const fold = new LogFold(entries, upTo);
 *   for each chunk of the snapshot: fold.note(keys, values)   // the touched keys' values before the log
 *   const after = fold.apply(snapshotSessions);               // every touched or created key, after the log
 */
import { KvStore } from '../kv/store.js';
import { canonicalJson } from '../kv/keys.js';
import type { Entry, Json } from '../raft/types.js';
import { applyEntries } from './load.js';

/** Bits of the quick filter in front of a KeySet (a power of two). */
const FILTER_BITS = 1 << 16;

/**
 * A cheap hash of a number or string key, for the filter: a few code units and the length (a
 * key's full hash is what makes a lookup of a fresh string dear).
 */
function quick(k: number | string): number {
  if (typeof k === 'number') return (k | 0) ^ ((k / 4294967296) | 0);
  const n = k.length;
  if (n === 0) return 0x9e37;
  return Math.imul(n, 0x9e3779b1) ^ Math.imul(k.charCodeAt(n - 1), 0x85ebca6b) ^ Math.imul(k.charCodeAt(n >> 1), 0xc2b2ae35) ^ (k.charCodeAt(n - 2 < 0 ? 0 : n - 2) << 7) ^ k.charCodeAt(0);
}

/**
 * A set of keys with KvStore's identity (`1` and `"1"` differ, other keys by canonical JSON), with
 * a bit filter that answers "no" for most keys not in it without hashing them.
 */
export class KeySet {
  private prim = new Set<number | string>();
  private other = new Set<string>();
  private filter = new Uint32Array(FILTER_BITS >>> 5);
  add(k: Json): void {
    if (typeof k === 'number' || typeof k === 'string') {
      this.prim.add(k);
      const b = quick(k) & (FILTER_BITS - 1);
      this.filter[b >>> 5]! |= 1 << (b & 31);
    } else this.other.add(canonicalJson(k));
  }
  has(k: Json): boolean {
    if (typeof k === 'number' || typeof k === 'string') {
      const b = quick(k) & (FILTER_BITS - 1);
      if ((this.filter[b >>> 5]! & (1 << (b & 31))) === 0) return false;
      return this.prim.has(k);
    }
    return this.other.size > 0 && this.other.has(canonicalJson(k));
  }
  get size(): number {
    return this.prim.size + this.other.size;
  }
}

/** The key of a logged command, when the entry is one (lin-kv read/write/cas). */
function keyOf(data: Json): { key: Json } | null {
  if (data === null || typeof data !== 'object' || Array.isArray(data) || !('key' in data)) return null;
  return { key: data['key'] ?? null };
}

/** The pairs of `store` whose keys are not in `except` (all of them without it), as columns. */
export function pairsOutside(store: KvStore, except?: KeySet): { keys: Json[]; values: Json[] } {
  const keys: Json[] = [];
  const values: Json[] = [];
  for (const [k, v] of store.entries()) {
    if (except?.has(k)) continue;
    keys.push(k);
    values.push(v);
  }
  return { keys, values };
}

export class LogFold {
  /** The keys the entries name. */
  readonly touched = new KeySet();
  private readonly todo: Entry[];
  private readonly base: Array<[Json, Json]> = [];
  private applied: KvStore | null = null;
  /** Entries applied by `apply`. */
  replayed = 0;

  /** The entries after the snapshot; those above `upTo` are left out. */
  constructor(entries: Entry[], upTo: number) {
    this.todo = entries.filter((e) => e.index <= upTo);
    for (const e of this.todo) {
      const k = keyOf(e.data);
      if (k) this.touched.add(k.key);
    }
  }

  /** True when some entry names a key (else `note` never finds one). */
  get touchesKeys(): boolean {
    return this.touched.size > 0;
  }

  /**
   * Note a chunk of the snapshot: the pairs whose keys the log touches are kept as the values
   * before the log. Returns their places in the chunk (null: none).
   */
  note(keys: readonly Json[], values: readonly Json[]): number[] | null {
    if (this.touched.size === 0) return null;
    let hit: number[] | null = null;
    for (let i = 0; i < keys.length; i++) {
      if (!this.touched.has(keys[i]!)) continue;
      this.base.push([keys[i]!, values[i]!]);
      (hit ??= []).push(i);
    }
    return hit;
  }

  /**
   * After the whole snapshot: the log applied on the noted values, with the snapshot's client
   * table `sessions`. The result holds every key the log touched that exists after it (created
   * ones too) and the session table as the node rebuilds it. Once.
   */
  apply(sessions: Json | undefined): KvStore {
    if (this.applied) throw new Error('LogFold.apply: called twice');
    const s = KvStore.fromEntries(this.base, sessions);
    this.base.length = 0;
    this.replayed = applyEntries(s, this.todo, Infinity);
    this.applied = s;
    return s;
  }
}
