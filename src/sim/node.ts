/**
 * One simulated node: the real serve driver (`RaftServer`, src/node/server.ts, with its Ready loop,
 * snapshotter, client requests and forwarding) hosted in the simulator. What the simulator
 * provides in place of the process's surroundings:
 *  - an `Outbox` whose sink hands every Maelstrom line to the simulated network (`NodeHost.route`);
 *  - `Timers` whose ticks come from the event queue and whose clock is simulated time;
 *  - a `NodeStore` (`SimStore`) over the node's `SimDisk`, which outlives crashes;
 *  - a `ServerProbe` through which the invariant checker sees applied entries and the simulator
 *    crashes the node after the sends of a Ready.
 * Everything else (server, core, state machine, pending requests) dies with the process: a crash
 * drops the server object and a restart builds a new one on the same disk and sends it `init`.
 *
 * The server's queue runs through async functions; the simulator runs them to completion after
 * every event (`Simulation.settle`, microtasks only: the store never waits for real I/O), so a
 * run depends on the seed alone. `quiescent` says when nothing is left to run.
 *
 * Crash points: the simulator may arm a crash that fires inside the next Ready that persists
 * something: before the persist, in the middle of the sync (a torn write), after the sync, or after
 * sending. The store's `sync` (or the probe) then kills the node and returns a promise that never
 * settles, so the dead server never goes on.
 */
import type { FrozenView } from '../kv/store.js';
import { Outbox, type LineSink } from '../node/protocol.js';
import type { Logger } from '../node/log.js';
import { defaultOptions, type ServeOptions } from '../node/options.js';
import { RaftServer, type ServerProbe } from '../node/server.js';
import type { NodeStore, RecoveredState, SnapshotState } from '../node/store.js';
import type { Timers } from '../node/timers.js';
import type { RaftCore } from '../raft/core.js';
import type { Entry, HardState, Json, NodeId, RaftConfig, SnapshotMeta, SnapshotStore } from '../raft/types.js';
import { type Recovered, SimDisk, StorageGap } from './disk.js';
import type { Random } from './random.js';

/** The core's timing and flow-control settings, plus what the serve driver's flags set. */
export interface NodeConfig
  extends Pick<
    RaftConfig,
    'electionTicks' | 'heartbeatTicks' | 'preVote' | 'checkQuorum' | 'maxEntriesPerAppend' | 'maxInflight' | 'snapshotChunkSize'
  > {
  /** Snapshot after this many applied entries (1: after every entry); 0 disables snapshots. */
  snapshotThreshold: number;
  /** The serve driver's --snapshot-jitter (threshold × [1, 1 + jitter)). */
  snapshotJitter: number;
  /** Log entries kept before the snapshot index on compaction. */
  trailingLogs: number;
  /** Background snapshot duration in ms ([min, max]); [0, 0] saves at once. */
  snapshotDelay: [number, number];
  /** The driver's --request-timeout-ms and --leader-wait-ms. */
  requestTimeoutMs: number;
  leaderWaitMs: number;
}

export type CrashPoint = 'before-persist' | 'mid-sync' | 'after-persist' | 'after-send';
export const CRASH_POINTS: readonly CrashPoint[] = ['before-persist', 'mid-sync', 'after-persist', 'after-send'];

/** What a node needs from the simulator. */
export interface NodeHost {
  readonly rng: Random;
  now(): number;
  /** A line the node wrote to its stdout. */
  route(node: SimNode, line: string): void;
  /** Call `fn` every `ms` ms while this incarnation lives (not while paused). */
  every(node: SimNode, ms: number, fn: () => void): () => void;
  /** Resolve after `ms` ms of simulated time if this incarnation still lives (held while paused). */
  sleep(node: SimNode, ms: number): Promise<void>;
  /** An armed crash point fired: the process dies now. */
  crashAt(node: SimNode, point: CrashPoint): void;
  observer: NodeObserver;
}

/** Hooks for the invariant checker. */
export interface NodeObserver {
  onRecovered(node: SimNode, rec: Recovered): void;
  onPersisted(node: SimNode, rd: { entries: Entry[]; hardState: HardState | null }): void;
  onApplied(node: SimNode, e: Entry): void;
  onSnapshotReceived(node: SimNode, meta: SnapshotMeta): void;
  onSnapshotRestored(node: SimNode, meta: SnapshotMeta, pairs: Iterable<readonly [Json, Json]>): void;
  onSnapshotTaken(node: SimNode, meta: SnapshotMeta, pairs: Array<[Json, Json]>): void;
}

/** Never settles: what a dead process waits for. */
const NEVER = new Promise<never>(() => {});

/** The serve options of a simulated node. */
export function serveOptions(cfg: NodeConfig, tickMs: number, segmentBytes: number, retain: number): ServeOptions {
  return {
    ...defaultOptions(),
    // A data root makes the driver treat its store as durable (recovery before init_ok); the
    // path itself is never used: the store is the simulated disk.
    dataDir: null,
    dataRoot: 'sim://',
    fsync: true,
    snapshotThreshold: cfg.snapshotThreshold,
    snapshotThresholdBytes: 0,
    snapshotJitter: cfg.snapshotJitter,
    trailingLogs: cfg.trailingLogs,
    retain,
    chunkSize: cfg.snapshotChunkSize,
    segmentBytes,
    tickMs,
    heartbeatMs: cfg.heartbeatTicks * tickMs,
    electionTimeoutMs: cfg.electionTicks * tickMs,
    preVote: cfg.preVote,
    checkQuorum: cfg.checkQuorum,
    maxAppendEntries: cfg.maxEntriesPerAppend,
    maxInflight: cfg.maxInflight,
    requestTimeoutMs: cfg.requestTimeoutMs,
    leaderWaitMs: cfg.leaderWaitMs,
    logLevel: 'quiet',
  };
}

/** The NodeStore of one incarnation over the node's SimDisk. */
export class SimStore implements NodeStore {
  readonly durable = true;
  readonly where: string;
  readonly snapshots: SnapshotStore;
  /** A background snapshot save is waiting for simulated time to pass. */
  sleeping = false;
  dead = false;
  private entries: Entry[] = [];
  private hardState: HardState | null = null;

  constructor(
    private readonly node: SimNode,
    private readonly host: NodeHost,
  ) {
    this.where = `sim:${node.id}`;
    const d = node.disk.snapshotStore;
    this.snapshots = {
      current: () => d.current(),
      read: (o, l) => d.read(o, l),
      receive: (meta, size, offset, data) => d.receive(meta, size, offset, data),
      finish: (meta) => {
        const ok = d.finish(meta);
        if (ok) host.observer.onSnapshotReceived(node, meta);
        return ok;
      },
    };
  }

  recover(): Promise<RecoveredState> {
    const rec = this.node.disk.recover();
    this.host.observer.onRecovered(this.node, rec);
    return Promise.resolve({ hardState: rec.hardState, snapshot: rec.snapshot, entries: rec.entries, nodeId: this.node.id });
  }

  setNodeId(): Promise<void> {
    return Promise.resolve();
  }

  append(entries: Entry[]): void {
    try {
      this.node.disk.append(entries);
    } catch (e) {
      if (e instanceof StorageGap) this.node.errors.push(e);
      throw e;
    }
    for (const e of entries) this.entries.push(e);
  }

  setHardState(hs: HardState): void {
    this.node.disk.setHardState(hs);
    this.hardState = hs;
  }

  sync(): void | Promise<void> {
    const disk = this.node.disk;
    const point = this.node.crashPoint;
    if (point === 'before-persist') return this.crash(point);
    if (point === 'mid-sync') {
      disk.write();
      return this.crash(point);
    }
    disk.sync();
    const rd = { entries: this.entries, hardState: this.hardState };
    this.entries = [];
    this.hardState = null;
    this.host.observer.onPersisted(this.node, rd);
    if (point === 'after-persist') return this.crash(point);
  }

  private crash(point: CrashPoint): Promise<never> {
    this.host.crashAt(this.node, point);
    return NEVER;
  }

  async saveSnapshot(meta: SnapshotMeta, view: FrozenView): Promise<{ size: number }> {
    const [lo, hi] = this.node.cfg.snapshotDelay;
    if (hi > 0) {
      this.sleeping = true;
      try {
        await this.host.sleep(this.node, lo + this.host.rng.next() * (hi - lo));
      } finally {
        this.sleeping = false;
      }
    }
    if (this.dead) return NEVER;
    const pairs = view.entries();
    const f = this.node.disk.saveSnapshot(meta, pairs, view.sessions);
    this.host.observer.onSnapshotTaken(this.node, meta, pairs);
    return { size: f.bytes.length };
  }

  loadSnapshot(meta: SnapshotMeta): Promise<SnapshotState> {
    try {
      const s = this.node.disk.loadSnapshotState(meta);
      this.host.observer.onSnapshotRestored(this.node, meta, s.pairs);
      return Promise.resolve(s);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  compact(compactedTo: number, retain: number): Promise<void> {
    if (compactedTo > 0) this.node.disk.compactLog(compactedTo);
    this.node.disk.pruneSnapshots(retain);
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  abandon(): void {}
}

export class SimNode {
  server: RaftServer | null = null;
  store: SimStore | null = null;
  incarnation = 0;
  up = false;
  paused = false;
  /** Lines and wake-ups that arrived while paused, delivered on resume. */
  readonly held: Array<() => void> = [];
  crashPoint: CrashPoint | null = null;
  /** Internal errors the server logged and storage refusals: each fails the run. */
  readonly errors: Error[] = [];
  /** Why the server gave up (its storage could not be opened or recovered). */
  fatal: Error | null = null;

  /** Figures of dead incarnations (the server's own stats die with it). */
  private readonly counts = { snapshotsTaken: 0, snapshotsInstalled: 0, restarts: 0, maxLogLength: 0, elections: 0 };

  constructor(
    readonly id: NodeId,
    readonly peers: readonly NodeId[],
    readonly disk: SimDisk,
    readonly cfg: NodeConfig,
    private readonly host: NodeHost,
    private readonly options: ServeOptions,
  ) {}

  get core(): RaftCore | null {
    return this.server?.core ?? null;
  }

  /** The state machine of the live process (empty when down). */
  get kv() {
    return this.server!.kv;
  }

  get applied(): number {
    return this.server ? this.server.applied : 0;
  }

  /** Start (or restart) the process: a new server on the same disk, then `init`. */
  start(): void {
    this.incarnation++;
    if (this.incarnation > 1) this.counts.restarts++;
    this.crashPoint = null;
    this.paused = false;
    this.held.length = 0;
    const host = this.host;
    const store = new SimStore(this, host);
    this.store = store;
    const sink: LineSink = {
      write: (text) => {
        if (store.dead) return;
        let start = 0;
        for (;;) {
          const nl = text.indexOf('\n', start);
          const line = nl < 0 ? text.slice(start) : text.slice(start, nl);
          if (line !== '') host.route(this, line);
          if (nl < 0) break;
          start = nl + 1;
        }
      },
      flush: () => Promise.resolve(),
    };
    const timers: Timers = {
      every: (ms, fn) => host.every(this, ms, fn),
      now: () => host.now(),
      yield: () => Promise.resolve(),
    };
    const probe: ServerProbe = {
      afterSend: () => {
        if (this.crashPoint === 'after-send') {
          host.crashAt(this, 'after-send');
          return NEVER;
        }
      },
      applied: (e) => host.observer.onApplied(this, e),
    };
    const rng = host.rng;
    const log: Logger = {
      info() {},
      debug() {},
      warn: (msg) => {
        // The driver logs what it survives: an exception in a handler or in the Ready loop, a
        // failed snapshot, storage it cannot open. In the simulator each of them is a failure.
        if (/error|FATAL|failed|internal/i.test(msg)) this.errors.push(new Error(`${this.id}: ${msg}`));
      },
    };
    this.server = new RaftServer({
      outbox: new Outbox(sink),
      options: this.options,
      log,
      openStore: () => Promise.resolve(store),
      random: () => rng.next(),
      timers,
      probe,
      onFatal: (err) => {
        this.fatal ??= err;
      },
    });
    this.up = true;
    this.server.handleLine(JSON.stringify({ src: 'sim', dest: this.id, body: { type: 'init', msg_id: 0, node_id: this.id, node_ids: this.peers } }));
  }

  /** The process dies. `tear` lets a random prefix of unsynced bytes survive. */
  crash(tear: boolean): void {
    const s = this.server;
    if (s) {
      if (s.core) this.counts.elections += s.core.stats().electionsStarted;
      this.counts.snapshotsTaken += s.stats.snapshotsTaken;
      this.counts.snapshotsInstalled += s.stats.snapshotsInstalled;
    }
    if (this.store) this.store.dead = true;
    this.disk.crash(this.host.rng, tear);
    this.up = false;
    this.paused = false;
    this.server = null;
    this.store = null;
    this.held.length = 0;
    this.crashPoint = null;
  }

  /** Nothing left to run without simulated time passing (or the process is gone). */
  get quiescent(): boolean {
    const s = this.server;
    if (!this.up || !s) return true;
    return !s.busy && !(s.snapshotter.inProgress && !this.store!.sleeping);
  }

  /** Figures over all incarnations, the live one included. */
  get stats(): { snapshotsTaken: number; snapshotsInstalled: number; restarts: number; maxLogLength: number; elections: number } {
    const s = this.server;
    const c = this.counts;
    return {
      snapshotsTaken: c.snapshotsTaken + (s ? s.stats.snapshotsTaken : 0),
      snapshotsInstalled: c.snapshotsInstalled + (s ? s.stats.snapshotsInstalled : 0),
      restarts: c.restarts,
      maxLogLength: c.maxLogLength,
      elections: c.elections + (s?.core ? s.core.stats().electionsStarted : 0),
    };
  }

  /** Deliver one Maelstrom line to the process (held while paused). */
  deliver(line: string): void {
    if (!this.up || !this.server) return;
    if (this.paused) {
      this.held.push(() => this.server?.handleLine(line));
      return;
    }
    this.server.handleLine(line);
  }

  /** The log's length after a step (the invariant checker reads the status anyway). */
  noteLogLength(len: number): void {
    if (len > this.counts.maxLogLength) this.counts.maxLogLength = len;
  }

  status() {
    return this.core ? this.core.status() : null;
  }
}
