/**
 * The store of a simulated node: the real `StorageNodeStore` (src/node/storage-adapter.ts) over the
 * real `DiskStorage` over the node's SimFs, wrapped in a thin observing decorator that tells the
 * invariant checker what happened (`NodeObserver`): the state recovered, the entries and hard
 * state a sync made durable, snapshots taken, received and restored. The decorator changes
 * nothing: every call goes to the real store, and an error from it (an injected fault, a crash at
 * a file-system call) propagates to the server as it would in `serve`.
 *
 * It also keeps `AckedState`: what the node has made durable and may have acknowledged (the
 * entries and hard state of every sync that returned), which the checker holds the next recovery
 * to.
 */
import type { FrozenView } from '../kv/store.js';
import type { StorageNodeStore } from '../node/storage-adapter.js';
import type { KeyedSnapshot, NodeStore, RecoveredState, SnapshotState, SnapshotStream } from '../node/store.js';
import type { Entry, HardState, Json, NodeId, SnapshotMeta, SnapshotStore } from '../raft/types.js';
import type { NodeObserver, SimNode } from './node.js';

/**
 * The log terms and the hard state a node has made durable (a sync returned), as of its last sync:
 * `terms[i]` is the term of entry `offset + 1 + i`. It outlives the node's crashes (it is what the
 * next recovery must give back) and is reset to what each recovery gave.
 */
export class AckedState {
  offset = 0;
  terms: number[] = [];
  term = 0;
  votedFor: NodeId | null = null;

  /** Entries appended (a first index at or below the last one replaces the suffix from there). */
  noteEntries(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    if (first <= this.offset || first > this.offset + this.terms.length + 1) {
      // Before what is kept, or after a gap (the log restarted after an installed snapshot).
      this.offset = first - 1;
      this.terms = [];
    } else {
      this.terms.length = first - 1 - this.offset;
    }
    for (const e of entries) this.terms.push(e.term);
  }

  noteHardState(hs: HardState): void {
    this.term = hs.term;
    this.votedFor = hs.votedFor;
  }

  /** What a recovery gave back: the node goes on from there. */
  reset(rec: RecoveredState): void {
    const e = rec.entries;
    this.offset = e.length > 0 ? e[0]!.index - 1 : (rec.snapshot?.meta.index ?? 0);
    this.terms = e.map((x) => x.term);
    this.term = rec.hardState.term;
    this.votedFor = rec.hardState.votedFor;
  }

  /** Forget entries at or below `index` (a durable snapshot covers them; the checker no longer asks for them). */
  trim(index: number): void {
    const drop = Math.min(index - this.offset, this.terms.length);
    if (drop < 256) return;
    this.terms = this.terms.slice(drop);
    this.offset += drop;
  }
}

export class SimStore implements NodeStore {
  readonly durable = true;
  readonly snapshots: SnapshotStore;
  /** A background snapshot save is waiting for simulated time to pass (`delay`). */
  sleeping = false;
  private entries: Entry[] = [];
  private hardState: HardState | null = null;

  constructor(
    private readonly node: SimNode,
    private readonly inner: StorageNodeStore,
    private readonly observer: NodeObserver,
    /** Before a background snapshot is written: let simulated time pass (the snapshot's duration). */
    private readonly delay: (() => Promise<void>) | null,
  ) {
    const s = inner.snapshots;
    this.snapshots = {
      current: () => s.current(),
      read: (offset, length) => s.read(offset, length),
      receive: (meta, size, offset, data) => s.receive(meta, size, offset, data),
      finish: (meta) => {
        const ok = s.finish(meta);
        if (ok) {
          node.snapshotsReceived++;
          this.noteStored();
          observer.onSnapshotReceived(node, meta);
        }
        return ok;
      },
    };
  }

  get where(): string {
    return this.inner.where;
  }

  private noteStored(): void {
    this.node.storedSnapshotIndex = this.inner.snapshots.current()?.meta.index ?? 0;
  }

  async recover(): Promise<RecoveredState> {
    const rec = await this.inner.recover();
    this.node.storedSnapshotIndex = rec.snapshot?.meta.index ?? 0;
    this.observer.onRecovered(this.node, rec);
    this.node.acked.reset(rec);
    return rec;
  }

  setNodeId(id: NodeId): Promise<void> {
    return this.inner.setNodeId(id);
  }

  setMembers(ids: NodeId[]): Promise<void> {
    return this.inner.setMembers(ids);
  }

  append(entries: Entry[]): void {
    this.inner.append(entries);
    for (const e of entries) this.entries.push(e);
  }

  setHardState(hs: HardState): void {
    this.inner.setHardState(hs);
    this.hardState = hs;
  }

  sync(): void | Promise<void> {
    const p = this.inner.sync();
    const first = this.entries[0];
    const rd = { entries: this.entries, hardState: this.hardState, prevTerm: first ? this.node.core?.termAt(first.index - 1) : undefined };
    this.entries = [];
    this.hardState = null;
    // Durable only once the fsync returned (SimFs completes it as an event of its own, later).
    if (p) return p.then(() => this.persisted(rd));
    this.persisted(rd);
  }

  /** True while storage work waits for the WAL's fsync (the node waits on its disk, not busy). */
  get waitingForDisk(): boolean {
    return this.inner.waitingForDisk;
  }

  private persisted(rd: { entries: Entry[]; hardState: HardState | null; prevTerm?: number | undefined }): void {
    const a = this.node.acked;
    a.noteEntries(rd.entries);
    if (rd.hardState) a.noteHardState(rd.hardState);
    this.observer.onPersisted(this.node, rd);
  }

  async saveSnapshot(meta: SnapshotMeta, view: FrozenView, chunkKeys?: number): Promise<{ size: number }> {
    if (this.delay) {
      this.sleeping = true;
      try {
        await this.delay();
      } finally {
        this.sleeping = false;
      }
    }
    const r = await this.inner.saveSnapshot(meta, view, chunkKeys);
    this.noteStored();
    this.observer.onSnapshotTaken(this.node, meta, view.entries());
    return r;
  }

  openSnapshot(meta: SnapshotMeta): SnapshotStream {
    const s = this.inner.openSnapshot(meta);
    // The invariants see the pairs the driver loads, once the whole snapshot has been read.
    const pairs: Array<[Json, Json]> = [];
    return {
      keyCount: s.keyCount,
      next: () => {
        const c = s.next();
        if (c) for (let i = 0; i < c.keys.length; i++) pairs.push([c.keys[i]!, c.values[i]!]);
        else this.observer.onSnapshotRestored(this.node, meta, pairs);
        return c;
      },
      get sessions() {
        return s.sessions;
      },
      close: () => s.close(),
    };
  }

  openKeyed(meta: SnapshotMeta): KeyedSnapshot | null {
    const s = this.inner.openKeyed(meta);
    if (!s) return null;
    // The invariants see the pairs the driver loads, once every chunk has been decoded (in any order).
    const pairs: Array<[Json, Json]> = [];
    const seen = new Set<number>();
    let done = 0;
    const observer = this.observer;
    const node = this.node;
    if (s.chunks.length === 0) this.observer.onSnapshotRestored(this.node, meta, pairs);
    return {
      chunks: s.chunks,
      sessions: s.sessions,
      groups: function* (this: void, j: number) {
        const first = !seen.has(j);
        seen.add(j);
        for (const c of s.groups(j)) {
          if (first) for (let i = 0; i < c.keys.length; i++) pairs.push([c.keys[i]!, c.values[i]!]);
          yield c;
        }
        if (first && ++done === s.chunks.length) observer.onSnapshotRestored(node, meta, pairs);
      },
    };
  }

  async loadSnapshot(meta: SnapshotMeta): Promise<SnapshotState> {
    const s = await this.inner.loadSnapshot(meta);
    this.observer.onSnapshotRestored(this.node, meta, s.pairs);
    return s;
  }

  async compact(compactedTo: number, retain: number): Promise<void> {
    await this.inner.compact(compactedTo, retain);
    this.node.acked.trim(this.node.storedSnapshotIndex);
  }

  stats(): Record<string, number> {
    return this.inner.stats();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  abandon(): void {
    this.inner.abandon();
  }

  get failure(): Error | null {
    return this.inner.failure;
  }
}
