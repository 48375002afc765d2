/**
 * Recovery that answers before the whole state is loaded. A node restarted on a large snapshot
 * (format 3: each chunk of pairs decodable on its own, with the range of its keys' shards) makes
 * the state being loaded its state machine at once and loads it chunk by chunk in the background
 * (install.ts's StateLoad, in slices); a key is readable once every chunk that may hold it, i.e.
 * every chunk whose shard range covers the key's shard, is in. Entries and reads that touch a
 * key not yet readable wait for it (server.ts), and the chunks they wait for are loaded first.
 *
 * Why this is safe: a lin-kv command touches one key; a key's value in the state = its value in
 * the snapshot, changed by the entries applied since, in order. Entries are applied in log order
 * and only once their key's shard is complete, so no entry's effect is ever overwritten by a pair
 * of the snapshot loaded after it, and no answer reads a key whose snapshot pair may still be
 * missing. What needs the whole state (taking a snapshot, control messages) waits for the load.
 */
import { asKvCommand } from '../kv/store.js';
import { OTHER_SHARD, keyShard } from '../kv/shards.js';
import type { Json } from '../raft/types.js';
import type { KeyedSnapshot, SnapshotStream } from './store.js';

export class KeyedSource implements SnapshotStream {
  readonly keyCount: number;
  /** Per shard: chunks that cover it and are not all in yet (0: the shard is complete). */
  private readonly remaining = new Int32Array(OTHER_SHARD + 1);
  /** Per shard: the chunks that cover it, in file order. */
  private readonly byShard: number[][] = Array.from({ length: OTHER_SHARD + 1 }, () => []);
  /** Chunks handed out by `next()`. */
  private readonly taken: Uint8Array;
  /** Shards something waits for (1), in the order asked. */
  private readonly wantedFlag = new Uint8Array(OTHER_SHARD + 1);
  private wanted: number[] = [];
  private cursor = 0;
  private current = -1;

  constructor(
    private readonly snap: KeyedSnapshot,
    /** Called when a shard something waited for is complete. */
    private readonly onReady: () => void,
  ) {
    const chunks = snap.chunks;
    this.taken = new Uint8Array(chunks.length);
    let pairs = 0;
    for (let j = 0; j < chunks.length; j++) {
      const c = chunks[j]!;
      pairs += c.pairs;
      for (let s = c.firstShard; s <= c.lastShard; s++) {
        this.remaining[s]!++;
        this.byShard[s]!.push(j);
      }
    }
    this.keyCount = pairs;
  }

  get sessions(): Json | undefined {
    return this.snap.sessions;
  }

  /** True when `key` can be read: every chunk that may hold it is in. Otherwise its chunks go first. */
  readable(key: Json): boolean {
    const s = keyShard(key);
    if (this.remaining[s] === 0) return true;
    if (this.wantedFlag[s] === 0) {
      this.wantedFlag[s] = 1;
      this.wanted.push(s);
    }
    return false;
  }

  /** True when the log entry with `data` can be applied now (a command whose key is readable, or no command). */
  canApply(data: Json): boolean {
    const cmd = asKvCommand(data);
    return cmd === null || this.readable(cmd.key);
  }

  next(): { keys: Json[]; values: Json[] } | null {
    let j = -1;
    while (this.wanted.length > 0 && j < 0) {
      const s = this.wanted[0]!;
      const c = this.remaining[s] === 0 ? undefined : this.byShard[s]!.find((x) => this.taken[x] === 0);
      if (c === undefined) this.wanted.shift(); // complete, or its last chunk is being added
      else j = c;
    }
    if (j < 0) {
      while (this.cursor < this.taken.length && this.taken[this.cursor] === 1) this.cursor++;
      if (this.cursor >= this.taken.length) return null;
      j = this.cursor;
    }
    this.taken[j] = 1;
    this.current = j;
    return this.snap.chunk(j);
  }

  added(): void {
    const c = this.snap.chunks[this.current]!;
    let ready = false;
    for (let s = c.firstShard; s <= c.lastShard; s++) {
      if (--this.remaining[s]! === 0 && this.wantedFlag[s] === 1) {
        this.wantedFlag[s] = 0;
        ready = true;
      }
    }
    if (ready) this.onReady();
  }

  close(): void {}
}
