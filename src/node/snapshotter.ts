/**
 * Automatic snapshots. Once the entries applied since the last snapshot reach this node's turn (by
 * count, below), or the bytes of commands applied pass a threshold scaled by a random jitter
 * factor, the state machine is frozen (copy-on-write
 * view, KvStore.freeze) and encoded in the background a chunk at a time, yielding to the event loop
 * between chunks, while the node keeps applying. When the file is durable, the core drops log
 * entries up to the snapshot index minus --trailing-logs and storage deletes what is covered,
 * keeping the --retain newest snapshot files.
 */
import type { FrozenView } from '../kv/store.js';
import type { Entry, Json, SnapshotMeta } from '../raft/types.js';
import type { Logger } from './log.js';
import type { ServeOptions } from './options.js';
import type { RaftServer } from './server.js';
import { SNAPSHOT_CHUNK_KEYS } from './store.js';
import { realTimers, type Timers } from './timers.js';

export { SNAPSHOT_CHUNK_KEYS } from './store.js';

/**
 * About the length of `JSON.stringify(v)`, without building the string (every applied entry is
 * counted): exact for numbers, booleans, null, arrays and objects of them; strings count their
 * characters plus quotes (escapes not counted).
 */
export function jsonSize(v: Json): number {
  if (v === null) return 4;
  switch (typeof v) {
    case 'string':
      return v.length + 2;
    case 'number':
      return String(v).length;
    case 'boolean':
      return v ? 4 : 5;
  }
  if (Array.isArray(v)) {
    let n = 2 + Math.max(0, v.length - 1);
    for (const x of v) n += jsonSize(x);
    return n;
  }
  let n = 2;
  let first = true;
  for (const k in v) {
    n += (first ? 0 : 1) + k.length + 3 + jsonSize(v[k]!);
    first = false;
  }
  return n;
}

/**
 * Snapshots by count take turns. With threshold T, node r of N (its place among the sorted ids of
 * its configuration) is due at the log indexes k * T + floor(r * T / N), the first of them at least
 * T / 2 entries after its last snapshot (or where it started counting). Every node applies the
 * same indexes, so the nodes of a cluster encode a third of a period apart (3 nodes) instead of
 * together, as random jitter alone leaves them (bench/snapshot-load.js counted 9 of 12 leader
 * snapshots with both followers snapshotting too): a commit then never waits on three encoders
 * sharing the machine. One node (N = 1) snapshots every T entries.
 */
export function snapshotTurn(after: number, threshold: number, rank: number, nodes: number): number {
  const offset = Math.floor((rank * threshold) / Math.max(1, nodes));
  const min = after + Math.ceil(threshold / 2);
  return Math.ceil((min - offset) / threshold) * threshold + offset;
}

export class Snapshotter {
  /** By count: the applied index at which the next snapshot is due (null until an entry is applied after a reset). */
  private dueAt: number | null = null;
  private lastApplied = 0;
  private bytesSince = 0;
  private factor = 1;
  private running: Promise<void> | null = null;

  constructor(
    private readonly host: RaftServer,
    private readonly opts: ServeOptions,
    private readonly random: () => number,
    private readonly log: Logger,
    private readonly timers: Timers = realTimers,
  ) {
    this.reset();
  }

  /** Start counting afresh (after a snapshot, an install or a seed). */
  reset(): void {
    this.dueAt = null;
    this.bytesSince = 0;
    this.factor = 1 + this.random() * this.opts.snapshotJitter;
  }

  noteApplied(e: Entry): void {
    const n = this.opts.snapshotThreshold;
    if (n > 0 && this.dueAt === null) {
      const ids = [...this.host.nodeIds].sort();
      const me = this.host.nodeId;
      this.dueAt = snapshotTurn(e.index - 1, n, me === null ? 0 : Math.max(0, ids.indexOf(me)), ids.length);
    }
    this.lastApplied = e.index;
    if (this.opts.snapshotThresholdBytes > 0 && e.data !== null) this.bytesSince += jsonSize(e.data) + 16;
  }

  get inProgress(): boolean {
    return this.running !== null;
  }

  due(): boolean {
    const { snapshotThreshold: n, snapshotThresholdBytes: b } = this.opts;
    return (n > 0 && this.dueAt !== null && this.lastApplied >= this.dueAt) || (b > 0 && this.bytesSince >= b * this.factor);
  }

  /** Called after each Ready: start a background snapshot when one is due. */
  maybeStart(): void {
    // A recovered snapshot still loading (keyed-load.ts) is not a whole state to snapshot yet.
    if (this.running || !this.due() || this.host.stopped || !this.host.stateComplete) return;
    const host = this.host;
    const core = host.core!;
    const index = host.applied;
    // Entries applied while this node's own write of them still runs (RaftCore.stableIndex): wait
    // for the write (the next Ready calls again), so that a snapshot never covers entries its WAL
    // may not hold yet and the storage keeps one order: entries first, then the snapshot's marker.
    if (index > core.stableIndex()) return;
    const term = core.termAt(index);
    const current = core.status().snapshot;
    if (term === undefined || (current && current.index >= index)) {
      this.reset();
      return;
    }
    const meta: SnapshotMeta = { index, term, config: [...host.nodeIds] };
    const view = host.kv.freeze();
    this.reset();
    const started = this.timers.now();
    this.running = (async () => {
      try {
        const { size } = await host.store!.saveSnapshot(meta, view, SNAPSHOT_CHUNK_KEYS);
        this.log.debug(`${host.nodeId}: snapshot ${meta.index}/${meta.term} written (${view.size} keys, ${size} bytes, ${this.timers.now() - started} ms)`);
        // Compaction touches the core: do it in the node's input queue.
        host.enqueueFirst({
          kind: 'fn',
          fn: async () => {
            await this.commit(meta, size, this.opts.trailingLogs);
          },
        });
      } catch (e) {
        // A failed write, fsync or rename of the snapshot: fail-stop like every other storage error.
        host.stop(`saving snapshot ${meta.index}/${meta.term}`, e);
      } finally {
        view.release();
      }
    })().finally(() => {
      this.running = null;
    });
  }

  /** Wait for a background snapshot to finish (before a control snapshot, at shutdown). */
  async settle(): Promise<void> {
    while (this.running) await this.running;
  }

  /**
   * Take a snapshot now of `view` at `meta` (control messages): waits for a background one, saves,
   * compacts with `trailing` entries kept. Returns the file size and how many entries were trimmed.
   */
  async takeNow(meta: SnapshotMeta, view: FrozenView, trailing: number): Promise<{ size: number; trimmed: number }> {
    try {
      await this.settle();
      const { size } = await this.host.store!.saveSnapshot(meta, view, SNAPSHOT_CHUNK_KEYS);
      const trimmed = await this.commit(meta, size, trailing);
      this.reset();
      return { size, trimmed };
    } finally {
      view.release();
    }
  }

  /**
   * The snapshot at `meta` (`size` bytes) is durable: tell the core it is the file to send to
   * followers, and let the core and storage drop what it covers.
   */
  async commit(meta: SnapshotMeta, size: number, trailing: number): Promise<number> {
    const host = this.host;
    const core = host.core!;
    core.snapshotAvailable(meta, size);
    const before = core.status();
    if (before.snapshot && before.snapshot.index > meta.index) return 0; // a newer one was installed meanwhile
    core.compact(meta, trailing);
    const after = core.status();
    host.stats.snapshotsTaken++;
    await host.store!.compact(after.firstIndex - 1, this.opts.retain);
    return Math.max(0, after.firstIndex - before.firstIndex);
  }
}
