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
  /** Per chunk: 0 not started, 1 being loaded (or set aside half loaded), 2 in. */
  private readonly state: Uint8Array;
  /** Shards something waits for (1), in the order asked. */
  private readonly wantedFlag = new Uint8Array(OTHER_SHARD + 1);
  private wanted: number[] = [];
  private cursor = 0;
  /** The chunk being loaded (-1: none), and the parts still to come of every chunk started and not in. */
  private current = -1;
  private readonly parts = new Map<number, Iterator<{ keys: Json[]; values: Json[] }>>();

  constructor(
    private readonly snap: KeyedSnapshot,
    /** Called when a shard something waited for is complete. */
    private readonly onReady: () => void,
  ) {
    const chunks = snap.chunks;
    this.state = new Uint8Array(chunks.length);
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

  /**
   * The next part of the state to add: the next group of a chunk that covers the first shard
   * something waits for (the chunk being loaded is set aside for it, and taken up again later),
   * else of the chunk being loaded, else of the next chunk in file order. A chunk counts as in (its
   * shards' counts go down) once its last part has been added, i.e. at the call after it (StateLoad
   * asks for the next part only then).
   */
  next(): { keys: Json[]; values: Json[] } | null {
    for (;;) {
      const w = this.wantedChunk();
      if (w >= 0) this.current = w;
      else if (this.current < 0) this.current = this.nextInOrder();
      const j = this.current;
      if (j < 0) return null;
      let parts = this.parts.get(j);
      if (!parts) {
        parts = this.snap.groups(j)[Symbol.iterator]();
        this.parts.set(j, parts);
        this.state[j] = 1;
      }
      const r = parts.next();
      if (!r.done) return r.value;
      this.parts.delete(j);
      this.state[j] = 2;
      this.current = -1;
      this.chunkIn(j);
    }
  }

  /** A chunk not yet in that covers the first shard something waits for (the one being loaded if it does); -1 when none. */
  private wantedChunk(): number {
    while (this.wanted.length > 0) {
      const s = this.wanted[0]!;
      if (this.remaining[s] !== 0) {
        const cur = this.current >= 0 ? this.snap.chunks[this.current]! : null;
        if (cur && cur.firstShard <= s && s <= cur.lastShard) return this.current;
        const c = this.byShard[s]!.find((x) => this.state[x] !== 2);
        if (c !== undefined) return c;
      }
      this.wanted.shift();
    }
    return -1;
  }

  /** A chunk set aside half loaded, else the next not started in file order; -1 when every chunk is in. */
  private nextInOrder(): number {
    for (const j of this.parts.keys()) return j;
    while (this.cursor < this.state.length && this.state[this.cursor] !== 0) this.cursor++;
    return this.cursor < this.state.length ? this.cursor : -1;
  }

  /** Every pair of chunk `j` is in the state: its shards may become readable. */
  private chunkIn(j: number): void {
    const c = this.snap.chunks[j]!;
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
