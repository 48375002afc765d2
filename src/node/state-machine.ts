/**
 * The node's state machine: the lin-kv store, the index it has applied through, and the load of a
 * snapshot into it, which runs in slices across event-loop turns while the node goes on handling
 * its input (install.ts). A load is one of two kinds:
 *  - an install (a snapshot received from the leader) or the recovery of an older file: the store
 *    and `applied` stay as they were until the whole state is in and checked (`finishLoad`), and
 *    every committed entry handed out meanwhile waits, in order, to be applied after it;
 *  - the keyed recovery of a format 3 file (keyed-load.ts): the snapshot is the state at once
 *    (`applied` is its index), a key is answered once its chunks are in, and committed entries
 *    are applied in order, each once its key is readable; the first that is not waits, with
 *    everything after it.
 * The driver (server.ts) hands it committed entries (`apply`) and installed snapshots
 * (`install`); the ends of loads are handled in the driver's input queue, ahead of input.
 */
import { KvStore } from '../kv/index.js';
import { sameMeta } from '../raft/snapshot.js';
import type { Entry, Json, SnapshotMeta } from '../raft/types.js';
import { StateLoad, type LoadClock, type LoadedState } from './install.js';
import { KeyedSource } from './keyed-load.js';
import type { RaftServer } from './server.js';
import type { NodeStore, RecoveredState } from './store.js';

/**
 * The load of a recovered snapshot: keyed (format 3: opened and checked at once, decoded from
 * `startRecovered` on, so that `init` is answered first) or streamed whole first (started at once).
 */
interface RecoveryLoad {
  meta: SnapshotMeta;
  task: StateLoad | null;
  keyed: KeyedSource | null;
}

export class StateMachine {
  readonly kv = new KvStore();
  /** Index through which the state machine has applied. */
  applied = 0;

  /** The load of the recovered snapshot prepared before init (`preloadRecovery`), adopted by `adoptRecovered`. */
  private preload: RecoveryLoad | null = null;
  /** The recovered load `adoptRecovered` chose, started by `startRecovered` once the core exists. */
  private adopted: RecoveryLoad | null = null;
  /** An install's load, or a recovery's of a file that cannot be read by key. */
  private loading: { task: StateLoad; deferred: Entry[]; install: boolean } | null = null;
  /** A keyed recovery: the state machine already, filling as it loads. */
  private keyed: { task: StateLoad; source: KeyedSource; deferred: Entry[]; drainQueued: boolean } | null = null;

  constructor(
    private readonly host: RaftServer,
    private readonly loadClock: LoadClock,
    private readonly onApplied?: (e: Entry) => void,
  ) {}

  // -------------------------------------------------------------------------------------------
  // Applying.

  /** A committed entry: applied now, or after the snapshot being loaded (or once its key is in). */
  apply(e: Entry): void {
    if (this.loading) {
      this.loading.deferred.push(e);
      return;
    }
    if (e.index <= this.applied) return;
    const k = this.keyed;
    if (k && (k.deferred.length > 0 || !k.source.canApply(e.data))) {
      k.deferred.push(e);
      return;
    }
    this.applyCommitted(e);
  }

  /** Apply committed entry `e` (the next after `applied`) and answer its request. */
  private applyCommitted(e: Entry): void {
    const result = this.kv.applyEntry(e.data, e.index);
    this.applied = e.index;
    this.host.snapshotter.noteApplied(e);
    this.onApplied?.(e);
    this.host.requests.applied(e, result);
  }

  /**
   * Replace the state with `pairs` and the session table `sessions` (empty when not given) as of
   * `meta` (a seed, or a recovered snapshot decoded whole).
   */
  reset(meta: SnapshotMeta, pairs: Iterable<readonly [Json, Json]>, sessions?: Json): void {
    this.kv.reset(pairs, sessions);
    this.applied = meta.index;
    this.host.snapshotter.reset();
    this.host.requests.replacedThrough(meta.index);
  }

  /** False while a recovered snapshot is still being loaded by key: not every key can be read. */
  get complete(): boolean {
    return this.keyed === null;
  }

  /** True when `key` can be read now; otherwise its part of the state is loaded first (requests.ts). */
  readable(key: Json): boolean {
    return this.keyed === null || this.keyed.source.readable(key);
  }

  // -------------------------------------------------------------------------------------------
  // Recovery at start.

  /** Prepare the load of the recovered snapshot before `init` (--data-dir recovers at once). */
  preloadRecovery(store: NodeStore, rec: RecoveredState): void {
    if (rec.snapshot && !rec.snapshot.pairs) this.preload = this.recoveryLoad(store, rec.snapshot.meta);
  }

  /** The preloaded load will not be used (the node does not start). */
  dropPreload(): void {
    this.preload?.task?.cancel();
    this.preload = null;
  }

  /**
   * The recovered state becomes this state machine's; returns the index the core starts from as
   * applied. A snapshot to load in slices starts loading with `startRecovered`.
   */
  adoptRecovered(store: NodeStore, rec: RecoveredState): number {
    let applied = 0;
    let load: RecoveryLoad | null = null;
    if (rec.snapshot) {
      applied = rec.snapshot.meta.index;
      if (rec.snapshot.pairs) this.kv.reset(rec.snapshot.pairs, rec.snapshot.sessions);
      else {
        // A format 3 file is the state at once, answering for the keys loaded; an older one is
        // not: until it is the state, the state machine is the empty one at 0 and requests wait
        // (init_ok does not).
        const meta = rec.snapshot.meta;
        load = this.preload && sameMeta(this.preload.meta, meta) ? this.preload : this.recoveryLoad(store, meta);
      }
    }
    if (this.preload && this.preload !== load) this.preload.task?.cancel();
    this.preload = null;
    this.adopted = load;
    this.applied = load && !load.keyed ? 0 : applied;
    return applied;
  }

  /** Start loading the snapshot `adoptRecovered` took (the core exists now). */
  startRecovered(): void {
    const load = this.adopted;
    this.adopted = null;
    if (load?.keyed) this.startKeyed(load.meta, load.keyed);
    else if (load?.task) this.startLoad(load.task, false);
  }

  /** The load of a recovered snapshot: keyed (format 3) when its file allows, else streamed. */
  private recoveryLoad(store: NodeStore, meta: SnapshotMeta): RecoveryLoad {
    const snap = store.openKeyed?.(meta) ?? null;
    if (!snap) return { meta, task: new StateLoad(meta, store.openSnapshot(meta), this.loadClock), keyed: null };
    return { meta, task: null, keyed: new KeyedSource(snap, () => this.keyedReady()) };
  }

  /** The recovered snapshot becomes the state machine now, filling as it loads. */
  private startKeyed(meta: SnapshotMeta, source: KeyedSource): void {
    const task = new StateLoad(meta, source, this.loadClock);
    this.kv.replace(task.load, source.sessions);
    this.keyed = { task, source, deferred: [], drainQueued: false };
    const what = `loading snapshot ${task.meta.index}/${task.meta.term} (recovery)`;
    task.done.then(
      (r) => {
        if (r && this.keyed?.task === task) this.host.enqueueFirst({ kind: 'fn', fn: () => this.finishKeyed(task, r) });
      },
      (e: unknown) => {
        if (this.keyed?.task === task) this.host.stop(what, e);
      },
    );
  }

  /** A key something waits for became readable: apply what waits, answer the reads (in the input queue). */
  private keyedReady(): void {
    const k = this.keyed;
    if (!k || k.drainQueued) return;
    k.drainQueued = true;
    this.host.enqueueFirst({ kind: 'fn', fn: () => this.drainKeyed() });
  }

  /** Apply, in order, the deferred entries whose keys are readable; answer the reads that can be. */
  private drainKeyed(): void {
    const k = this.keyed;
    if (!k || this.host.stopped) return;
    k.drainQueued = false;
    let i = 0;
    while (i < k.deferred.length && k.source.canApply(k.deferred[i]!.data)) this.applyCommitted(k.deferred[i++]!);
    if (i > 0) k.deferred.splice(0, i);
    this.host.requests.readResults([], []);
    if (i > 0) this.host.core!.appliedTo(this.applied);
    // The answers go out now, not after the load's next slice.
    this.host.outbox.push();
  }

  /** The keyed load is complete: everything waiting is applied and answered; the state is whole. */
  private finishKeyed(task: StateLoad, r: LoadedState): void {
    const k = this.keyed;
    if (!k || k.task !== task || this.host.stopped) return;
    this.drainKeyed();
    this.keyed = null;
    if (k.deferred.length > 0) {
      this.host.stop(`loading snapshot ${task.meta.index}/${task.meta.term} (recovery)`, new Error(`${k.deferred.length} entries still wait after the whole state was loaded`));
      return;
    }
    this.host.logger.debug(`${this.host.nodeId}: loaded recovered snapshot ${task.meta.index}/${task.meta.term} (${this.kv.size} keys, ${r.slices} slices, longest ${r.longestSliceMs} ms)`);
  }

  // -------------------------------------------------------------------------------------------
  // Install, and the load in progress.

  /**
   * The core installed a snapshot from the leader (durable since its last chunk was stored): load
   * it in slices; one still being loaded is superseded (the core only installs newer ones). A file
   * that cannot be opened stops the node (the caller's catch).
   */
  install(meta: SnapshotMeta): void {
    this.loading?.task.cancel();
    // A recovery still loading is superseded too; the entries it held back wait for this one.
    const carried = this.keyed?.deferred ?? [];
    this.keyed?.task.cancel();
    this.keyed = null;
    this.startLoad(new StateLoad(meta, this.host.store!.openSnapshot(meta), this.loadClock), true, carried);
  }

  /** A newer snapshot than the one being loaded is now the core's: the load reads nothing more (its file may be pruned). */
  supersededBy(meta: SnapshotMeta): void {
    if (this.loading && !sameMeta(this.loading.task.meta, meta)) this.loading.task.cancel();
  }

  /** Track `task` as the load in progress; its end is handled in the input queue, ahead of input. */
  private startLoad(task: StateLoad, install: boolean, carried: Entry[] = []): void {
    const deferred = this.loading?.deferred ?? carried;
    this.loading = { task, deferred, install };
    const what = `loading snapshot ${task.meta.index}/${task.meta.term}${install ? '' : ' (recovery)'}`;
    task.done.then(
      (r) => {
        if (r && this.loading?.task === task) this.host.enqueueFirst({ kind: 'fn', fn: () => this.finishLoad(task, r) });
      },
      (e: unknown) => {
        if (this.loading?.task === task) this.host.stop(what, e);
      },
    );
  }

  /** Wait for the snapshot being loaded to become the state (or the node to stop). */
  async settle(): Promise<void> {
    // A cancelled load is superseded by the next Ready's install (or the node stopped): nothing to wait for.
    while (this.keyed && !this.host.stopped && !this.keyed.task.isCancelled) {
      const task = this.keyed.task;
      const r = await task.done;
      if (r && this.keyed?.task === task) this.finishKeyed(task, r);
    }
    while (this.loading && !this.host.stopped && !this.loading.task.isCancelled) {
      const task = this.loading.task;
      const r = await task.done;
      if (r && this.loading?.task === task) await this.finishLoad(task, r);
    }
  }

  /**
   * The snapshot `task` loaded is complete and checked: make it the state machine's in one step,
   * then apply the entries held back after it (answering their requests, and reads).
   */
  private async finishLoad(task: StateLoad, r: LoadedState): Promise<void> {
    const l = this.loading;
    const host = this.host;
    if (!l || l.task !== task || host.stopped) return; // superseded, or the node stopped
    this.loading = null;
    const meta = task.meta;
    this.kv.replace(r.load, r.sessions);
    this.applied = meta.index;
    host.snapshotter.reset();
    host.requests.replacedThrough(meta.index);
    for (const e of l.deferred) this.apply(e);
    host.requests.readResults([], []);
    host.core!.appliedTo(this.applied);
    if (l.install) {
      // The log up to the snapshot is gone from the core: let storage delete the WAL it covers, as
      // after a snapshot of our own (a follower kept up by InstallSnapshot alone grew its WAL forever).
      await host.store!.compact(host.core!.status().firstIndex - 1, host.options.retain);
      host.stats.snapshotsInstalled++;
    }
    // The timing is for debugging only (stderr of a recovering node is shown in docs examples).
    if (l.install) host.logger.info(`${host.nodeId}: installed snapshot ${meta.index}/${meta.term} (${this.kv.size} keys)`);
    host.logger.debug(`${host.nodeId}: ${l.install ? 'installed' : 'loaded recovered'} snapshot ${meta.index}/${meta.term} (${this.kv.size} keys, ${r.slices} slices, longest ${r.longestSliceMs} ms)`);
  }

  /** True while a snapshot is being loaded (an install's or a recovery's, keyed or not). */
  get loadingAny(): boolean {
    return this.loading !== null || this.keyed !== null;
  }

  /** The load in progress (an install's or a recovery's), or null. */
  loadTask(): StateLoad | null {
    return this.loading?.task ?? this.keyed?.task ?? null;
  }

  /** The load in progress unless it was cancelled (a newer install supersedes it), or null. */
  liveLoad(): StateLoad | null {
    const t = this.loadTask();
    return t && !t.isCancelled ? t : null;
  }

  /** The node stopped: every load ends, nothing more is applied. */
  cancel(): void {
    this.loading?.task.cancel();
    this.loading = null;
    this.keyed?.task.cancel();
    this.keyed = null;
    this.preload?.task?.cancel();
  }
}
