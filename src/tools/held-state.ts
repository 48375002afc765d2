/**
 * A data directory's state held as the columns of its pairs, for the tools that write it out again
 * (`snapshot`, `compact`): the base snapshot's pairs kept as they are decoded, in its order, the
 * committed log folded onto the few keys it touches (src/tools/log-fold.ts) and written into their
 * places, the keys it created at the end. One copy of the state, and no map of it: building the
 * node's KvStore (every key hashed into a map) is work a tool that only re-encodes does not need.
 *
 * A key the base snapshot holds twice (the node keeps the later pair) stays twice, in order, so
 * the file written loads as the old one did.
 */
import type { KvStore } from '../kv/store.js';
import type { Json } from '../raft/types.js';
import { CHUNK_PAIRS, type DataDir, type FileSystem, type Recovery } from '../storage/index.js';
import { dirBase, guard, openReadOnly, sessionsAfter, streamSnapshotFile, type DirHeader } from './load.js';
import { KeySet, LogFold, pairsOutside } from './log-fold.js';

/** Pairs in chunks of exactly CHUNK_PAIRS (the last one shorter): what SnapshotEncoder takes without a copy. */
export class HeldState {
  private readonly keyChunks: Json[][] = [];
  private readonly valueChunks: Json[][] = [];
  private n = 0;

  get size(): number {
    return this.n;
  }

  /** Append the pairs `keys[i] -> values[i]`. */
  push(keys: readonly Json[], values: readonly Json[]): void {
    for (let i = 0; i < keys.length; i++) {
      const c = this.n % CHUNK_PAIRS;
      if (c === 0) {
        this.keyChunks.push(new Array<Json>());
        this.valueChunks.push(new Array<Json>());
      }
      this.keyChunks[this.keyChunks.length - 1]!.push(keys[i]!);
      this.valueChunks[this.valueChunks.length - 1]!.push(values[i]!);
      this.n++;
    }
  }

  keyAt(p: number): Json {
    return this.keyChunks[Math.floor(p / CHUNK_PAIRS)]![p % CHUNK_PAIRS]!;
  }

  setValueAt(p: number, v: Json): void {
    this.valueChunks[Math.floor(p / CHUNK_PAIRS)]![p % CHUNK_PAIRS] = v;
  }

  /** The pairs in order, CHUNK_PAIRS at a time (the arrays are the state's own: do not change them). As often as needed. */
  *columns(): Generator<{ keys: Json[]; values: Json[] }> {
    for (let c = 0; c < this.keyChunks.length; c++) yield { keys: this.keyChunks[c]!, values: this.valueChunks[c]! };
  }
}

/** A directory's state held as columns, with where it came from (as DirStore, src/tools/load.ts). */
export interface DirHeld extends DirHeader {
  state: HeldState;
}

/** The state of `dd` at its commit index (or `atIndex`) given its recovery, held as columns. */
export function holdDirState(dir: string, dd: DataDir, rec: Recovery, warnings: string[], atIndex?: number): DirHeld {
  const b = dirBase(dir, dd, rec, warnings, atIndex);
  const fold = new LogFold(b.entries, b.header.index);
  const held = new HeldState();
  // Places (in `held`) of the pairs whose keys the log touches.
  const touchedAt: number[] = [];
  const take = (keys: Json[], values: Json[]): void => {
    const hit = fold.note(keys, values);
    if (hit) for (const i of hit) touchedAt.push(held.size + i);
    held.push(keys, values);
  };
  let snapSessions: Json | undefined;
  if (b.content) {
    for (let i = 0; i < b.content.kv.length; i += CHUNK_PAIRS) {
      const part = b.content.kv.slice(i, i + CHUNK_PAIRS);
      take(
        part.map((p) => p[0]),
        part.map((p) => p[1]),
      );
    }
    snapSessions = b.content.sessions;
  } else if (b.snapshot && b.file !== null) {
    snapSessions = streamSnapshotFile(b.file, dd.fs, take);
  }
  const after: KvStore = fold.apply(snapSessions);
  const placed = new KeySet();
  for (const p of touchedAt) {
    const k = held.keyAt(p);
    const v = after.get(k);
    if (v !== undefined) held.setValueAt(p, v);
    placed.add(k);
  }
  const created = pairsOutside(after, placed);
  held.push(created.keys, created.values);
  return {
    state: held,
    header: b.header,
    dedup: sessionsAfter(after, snapSessions),
    configSource: b.configSource,
    recovery: rec,
    nodeId: b.nodeId,
    base: { file: b.file, index: b.snapshot ? b.snapshot.index : 0 },
    replayed: fold.replayed,
    warnings,
  };
}

/** The state of a data directory held as columns (see holdDirState), read-only. */
export function loadDirHeld(dir: string, opts: { at?: number; fs?: FileSystem } = {}): DirHeld {
  const warnings: string[] = [];
  const dd = openReadOnly(dir, warnings, opts.fs);
  const rec = guard(() => dd.recover({ repair: false, loadContent: false }), dir);
  return holdDirState(dir, dd, rec, warnings, opts.at);
}
