/**
 * One simulated node: the real RaftCore and KvStore behind a thin driver that mirrors the serve
 * driver's Ready loop (src/node/server.ts): persist + sync -> send -> restore snapshot -> apply
 * committed -> advance, then maybe start a snapshot. Storage is the node's SimDisk, which outlives
 * crashes; everything else (core, state machine, pending requests) dies with the process.
 *
 * Crash points: the simulator may arm a crash that fires inside the next Ready, before the
 * persist, in the middle of the sync (a torn write), after the sync or after sending: real
 * processes die anywhere, not only between two inputs.
 */
import { KvStore, asKvCommand, type KvCommand, type KvResult } from '../kv/index.js';
import { RaftCore } from '../raft/core.js';
import type { Entry, Json, NodeId, RaftMessage, Ready, SnapshotMeta } from '../raft/types.js';
import type { FrozenView } from '../kv/store.js';
import { type Recovered, SimDisk } from './disk.js';
import type { Random } from './random.js';

export interface NodeConfig {
  electionTicks: number;
  heartbeatTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  maxEntriesPerAppend: number;
  maxInflight: number;
  snapshotChunkSize: number;
  /** Snapshot after this many applied entries (1: after every entry); 0 disables snapshots. */
  snapshotThreshold: number;
  /** Log entries kept before the snapshot index on compaction. */
  trailingLogs: number;
  /** Background snapshot duration in ms ([min, max]); [0, 0] takes snapshots synchronously. */
  snapshotDelay: [number, number];
}

export type CrashPoint = 'before-persist' | 'mid-sync' | 'after-persist' | 'after-send';
export const CRASH_POINTS: readonly CrashPoint[] = ['before-persist', 'mid-sync', 'after-persist', 'after-send'];

/** Thrown inside the Ready loop when an armed crash point fires. */
export class CrashNow extends Error {
  constructor(readonly point: CrashPoint) {
    super(`crash at ${point}`);
  }
}

export interface ClientRequest {
  client: number;
  reqId: number;
  cmd: KvCommand;
}

export type ClientOutcome =
  | { kind: 'result'; result: KvResult }
  /** code 11: definitely not executed; 13 / 0: indeterminate. */
  | { kind: 'error'; code: number; text: string };

/** What a node needs from the simulator. */
export interface NodeHost {
  readonly rng: Random;
  now(): number;
  send(m: RaftMessage): void;
  reply(node: NodeId, req: ClientRequest, o: ClientOutcome): void;
  /** Run `fn` after `delay` ms if this incarnation of the node is still alive. */
  later(node: SimNode, delay: number, fn: () => void): void;
  observer: NodeObserver;
}

/** Hooks for the invariant checker. */
export interface NodeObserver {
  onRecovered(node: SimNode, rec: Recovered): void;
  onPersisted(node: SimNode, rd: Ready): void;
  onApplied(node: SimNode, e: Entry): void;
  onSnapshotRestored(node: SimNode, meta: SnapshotMeta, kv: KvStore): void;
  onSnapshotTaken(node: SimNode, meta: SnapshotMeta, pairs: Array<[Json, Json]>): void;
}

interface Pending {
  term: number;
  req: ClientRequest;
}

export class SimNode {
  core: RaftCore | null = null;
  kv = new KvStore();
  applied = 0;
  incarnation = 0;
  up = false;
  paused = false;
  /** Messages and requests that arrived while paused, delivered on resume. */
  readonly held: Array<() => void> = [];
  crashPoint: CrashPoint | null = null;

  private pending = new Map<number, Pending>();
  private sinceSnapshot = 0;
  private snapshotRunning = false;
  private lastRole = 'follower';

  readonly stats = { snapshotsTaken: 0, snapshotsInstalled: 0, restarts: 0, maxLogLength: 0, proposals: 0, elections: 0 };

  constructor(
    readonly id: NodeId,
    readonly peers: readonly NodeId[],
    readonly disk: SimDisk,
    readonly cfg: NodeConfig,
    private readonly host: NodeHost,
  ) {}

  /** Start (or restart) the process: recover from disk, build the core. */
  start(): void {
    this.incarnation++;
    if (this.incarnation > 1) this.stats.restarts++;
    const rec = this.disk.recover();
    this.kv = new KvStore();
    this.applied = 0;
    if (rec.snapshot) {
      this.kv.reset(rec.snapshot.pairs);
      this.applied = rec.snapshot.meta.index;
    }
    this.pending = new Map();
    this.sinceSnapshot = 0;
    this.snapshotRunning = false;
    this.crashPoint = null;
    this.paused = false;
    this.held.length = 0;
    const rng = this.host.rng;
    this.core = new RaftCore(
      {
        id: this.id,
        peers: [...this.peers],
        electionTicks: this.cfg.electionTicks,
        heartbeatTicks: this.cfg.heartbeatTicks,
        preVote: this.cfg.preVote,
        checkQuorum: this.cfg.checkQuorum,
        maxEntriesPerAppend: this.cfg.maxEntriesPerAppend,
        maxInflight: this.cfg.maxInflight,
        snapshotChunkSize: this.cfg.snapshotChunkSize,
        random: () => rng.next(),
        snapshots: this.disk.snapshotStore,
      },
      { hardState: rec.hardState, snapshot: rec.snapshot ? rec.snapshot.meta : null, entries: rec.entries, applied: this.applied },
    );
    this.up = true;
    this.lastRole = 'follower';
    this.host.observer.onRecovered(this, rec);
    this.processReady();
  }

  /** The process dies. `tear` lets a random prefix of unsynced bytes survive. */
  crash(tear: boolean): void {
    if (this.core) this.stats.elections += this.core.stats().electionsStarted;
    this.disk.crash(this.host.rng, tear);
    this.up = false;
    this.paused = false;
    this.core = null;
    this.pending = new Map();
    this.held.length = 0;
    this.crashPoint = null;
  }

  // -------------------------------------------------------------------------------------------
  // Inputs (the simulator catches CrashNow around them)

  tick(): void {
    this.core!.tick();
    this.processReady();
  }

  step(m: RaftMessage): void {
    this.core!.step(m);
    this.processReady();
  }

  request(req: ClientRequest): void {
    const core = this.core!;
    if (core.leader() === this.id) {
      const r = core.propose(req.cmd as unknown as Json);
      if (r) {
        this.stats.proposals++;
        this.pending.set(r.index, { term: r.term, req });
        this.processReady();
        return;
      }
    }
    const leader = core.leader();
    this.host.reply(this.id, req, { kind: 'error', code: 11, text: `not the leader${leader ? `; try ${leader}` : ''}` });
  }

  // -------------------------------------------------------------------------------------------
  // The Ready loop

  processReady(): void {
    const core = this.core!;
    while (core.hasReady()) {
      const rd = core.ready();
      // 1. persist and sync (the snapshot file itself is already durable: SnapshotStore.finish)
      if (this.crashPoint === 'before-persist') throw new CrashNow('before-persist');
      const persist = rd.snapshot !== null || rd.entries.length > 0 || rd.hardState !== null;
      // (No marker for rd.snapshot: storage recorded it when SnapshotStore.finish made it durable.)
      if (rd.entries.length > 0) this.disk.append(rd.entries);
      if (rd.hardState) this.disk.setHardState(rd.hardState);
      if (persist) {
        if (this.crashPoint === 'mid-sync') {
          this.disk.write();
          throw new CrashNow('mid-sync');
        }
        this.disk.sync();
      }
      this.host.observer.onPersisted(this, rd);
      if (this.crashPoint === 'after-persist') throw new CrashNow('after-persist');
      // 2. send
      for (const m of rd.messages) this.host.send(m);
      if (this.crashPoint === 'after-send') throw new CrashNow('after-send');
      // 3. restore the snapshot, apply committed entries
      if (rd.snapshot) this.restoreSnapshot(rd.snapshot);
      for (const e of rd.committed) this.apply(e);
      // 4. advance
      core.appliedTo(this.applied);
      core.advance();
      this.observeRole();
      this.maybeSnapshot();
    }
    const st = core.status();
    const len = st.lastIndex - st.firstIndex + 1;
    if (len > this.stats.maxLogLength) this.stats.maxLogLength = len;
  }

  private restoreSnapshot(meta: SnapshotMeta): void {
    const pairs = this.disk.loadSnapshot(meta);
    this.kv.reset(pairs);
    this.applied = meta.index;
    this.sinceSnapshot = 0;
    this.stats.snapshotsInstalled++;
    for (const [idx, p] of this.pending) {
      if (idx <= meta.index) {
        this.pending.delete(idx);
        this.host.reply(this.id, p.req, { kind: 'error', code: 13, text: 'replaced by a snapshot' });
      }
    }
    this.host.observer.onSnapshotRestored(this, meta, this.kv);
  }

  private apply(e: Entry): void {
    if (e.index <= this.applied) return;
    if (e.index !== this.applied + 1) throw new Error(`${this.id}: applying entry ${e.index} after ${this.applied}`);
    const cmd = e.data === null ? null : asKvCommand(e.data);
    const result = cmd ? this.kv.apply(cmd) : null;
    this.applied = e.index;
    this.sinceSnapshot++;
    this.host.observer.onApplied(this, e);
    const p = this.pending.get(e.index);
    if (p) {
      this.pending.delete(e.index);
      if (p.term === e.term && result) this.host.reply(this.id, p.req, { kind: 'result', result });
      else this.host.reply(this.id, p.req, { kind: 'error', code: 13, text: 'leadership changed' });
    }
  }

  private observeRole(): void {
    const role = this.core!.status().role;
    if (this.lastRole === 'leader' && role !== 'leader' && this.pending.size > 0) {
      const ps = [...this.pending.values()];
      this.pending.clear();
      for (const p of ps) this.host.reply(this.id, p.req, { kind: 'error', code: 13, text: 'leadership lost' });
    }
    this.lastRole = role;
  }

  // -------------------------------------------------------------------------------------------
  // Snapshots (the Snapshotter's rules: threshold, a newer snapshot wins, compaction after durable)

  private maybeSnapshot(): void {
    const n = this.cfg.snapshotThreshold;
    if (n <= 0 || this.snapshotRunning || this.sinceSnapshot < n) return;
    const core = this.core!;
    const index = this.applied;
    const term = core.termAt(index);
    const current = core.status().snapshot;
    this.sinceSnapshot = 0;
    if (term === undefined || (current && current.index >= index)) return;
    const meta: SnapshotMeta = { index, term, config: [...this.peers] };
    const view = this.kv.freeze();
    const [lo, hi] = this.cfg.snapshotDelay;
    if (hi <= 0) {
      this.finishSnapshot(meta, view);
      return;
    }
    this.snapshotRunning = true;
    const inc = this.incarnation;
    this.host.later(this, lo + this.host.rng.next() * (hi - lo), () => {
      if (inc !== this.incarnation || !this.up) return;
      this.snapshotRunning = false;
      this.finishSnapshot(meta, view);
      this.processReady();
    });
  }

  private finishSnapshot(meta: SnapshotMeta, view: FrozenView): void {
    try {
      const core = this.core!;
      const cur = core.status().snapshot;
      if (cur && cur.index >= meta.index) return; // a newer one was installed meanwhile
      const pairs = view.entries();
      this.disk.saveSnapshot(meta, pairs);
      this.host.observer.onSnapshotTaken(this, meta, pairs);
      core.compact(meta, this.cfg.trailingLogs);
      this.disk.compactLog(core.status().firstIndex - 1);
      this.disk.pruneSnapshots();
      this.stats.snapshotsTaken++;
    } finally {
      view.release();
    }
  }

  // -------------------------------------------------------------------------------------------

  status() {
    return this.core ? this.core.status() : null;
  }
}
