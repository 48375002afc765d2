/**
 * The driver: connects the pure Raft core and the lin-kv state machine to Maelstrom messages,
 * timers and storage. Every input (a message, a tick, a finished background snapshot) goes through
 * one queue; after each batch of inputs the core's Ready output is carried out (ready-loop.ts).
 * Fail-stop: when the node cannot vouch for its state (`stop`), it answers what it owes and sends
 * nothing more.
 *
 * Next to it, each knowing the driver only by type: dispatch.ts (which handler a message goes to),
 * ready-loop.ts (the core's output carried out in etcd's order), requests.ts (a client request
 * from arrival to answer), state-machine.ts (the KV store, `applied`, and loading a snapshot into
 * it), init.ts (`init` and recovery), control.ts (the snapshot exercise's control messages),
 * stats.ts (`get_stats`), snapshotter.ts (automatic snapshots).
 */
import type { KvResult, KvStore } from '../kv/index.js';
import { RaftCore } from '../raft/core.js';
import { RAFT_MESSAGE_TYPES, type Json, type Entry, type NodeId, type Role, type SnapshotMeta } from '../raft/types.js';
import { CLIENT_TYPES, dispatch, ORDER_FREE } from './dispatch.js';
import type { LoadClock } from './install.js';
import type { Logger } from './log.js';
import { ticksOf, type ServeOptions } from './options.js';
import { ErrorCode, ProtocolError, type Envelope, type Outbox, type TooLongLine, parseLine } from './protocol.js';
import { ReadyLoop } from './ready-loop.js';
import { Requests } from './requests.js';
import { Snapshotter } from './snapshotter.js';
import { StateMachine } from './state-machine.js';
import { countRoleChanges, newStats, statsBody, type Stats } from './stats.js';
import type { NodeStore, RecoveredState } from './store.js';
import { realTimers, type Timers } from './timers.js';

export type { Outcome } from './requests.js';
export type { Stats } from './stats.js';

export interface ServerEnv {
  outbox: Outbox;
  options: ServeOptions;
  log: Logger;
  /** Open this node's store: called once, at start for --data-dir, after `init` otherwise. */
  openStore(nodeId: NodeId | null): Promise<NodeStore>;
  random?: () => number;
  /** Clock for request deadlines (default: `timers.now`). */
  now?: () => number;
  /** Tick timer, clock and yielding (default: the real Node timers; the simulator injects its own). */
  timers?: Timers;
  /** Clock and yielding of snapshot loads, which run in slices (default: `timers`; the simulator makes each slice a step of its own). */
  loadClock?: LoadClock;
  /** Observation points for the simulator (absent in serve). */
  probe?: ServerProbe;
  /**
   * The node stopped (fail-stop: a storage, apply or invariant failure, or storage that cannot be
   * opened): stop reading input and exit non-zero. Called once; the server has already answered
   * what it owed and sends nothing more.
   */
  onFatal?(err: Error): void;
  /** Test-only: skip persisting entries and hard state (RAFTSNAP_UNSAFE_ACK_BEFORE_PERSIST=1). */
  unsafeAckBeforePersist?: boolean;
  /**
   * Test-only, deliberately broken (RAFTSNAP_UNSAFE_LOCAL_READS=1): the leader answers reads from its
   * state machine at once, without the ReadIndex round; a deposed leader that does not know it yet
   * answers stale reads. Exists so that the tests can show the stale-read checks catch it.
   */
  unsafeLocalReads?: boolean;
}

/**
 * Hooks for the deterministic simulator (src/sim/): it checks invariants on what the node applies
 * and crashes the node at points inside the Ready loop. `serve` sets none.
 */
export interface ServerProbe {
  /** In a Ready, after its messages were sent and before anything is applied; a returned promise is awaited. */
  afterSend?(): void | Promise<void>;
  /** An entry was applied to the state machine. */
  applied?(e: Entry): void;
}

/** One input of the queue. */
export type Work = { kind: 'msg'; msg: Envelope } | { kind: 'tick' } | { kind: 'fn'; fn: () => void | Promise<void> };

/** Most inputs handled before the core's output is processed (group commit batch). */
const MAX_BATCH = 512;

/**
 * Inputs waiting in the queue past which a new client request (or a follower's forward of one, or
 * its request for a read index) is answered 11 at once instead of queued: under overload memory
 * stays bounded, and what is shed never entered a log. Raft messages are always queued (their senders' flow control bounds them).
 */
export const MAX_QUEUED = 4096;

export class RaftServer {
  core: RaftCore | null = null;
  store: NodeStore | null = null;
  nodeId: NodeId | null = null;
  nodeIds: NodeId[] = [];
  /** The state machine: the KV store, `applied`, and the load of a snapshot into it. */
  readonly state: StateMachine;
  readonly stats: Stats = newStats();
  readonly snapshotter: Snapshotter;
  /** Every client request in flight, from arrival to answer. */
  readonly requests: Requests;
  /** The node id a data directory recorded before this start (get_stats). */
  recoveredNodeId: NodeId | null = null;
  /** Test-only broken mode (ServerEnv.unsafeLocalReads). */
  readonly unsafeLocalReads: boolean;

  private readonly out: Outbox;
  private readonly opts: ServeOptions;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly clock: () => number;
  private readonly timers: Timers;
  /** Carries out the core's output (ready-loop.ts). */
  private readonly loop: ReadyLoop;
  private readonly onFatal: ((err: Error) => void) | undefined;
  private readonly openStore: (nodeId: NodeId | null) => Promise<NodeStore>;

  private queue: Work[] = [];
  private pumping = false;
  private tickQueued = false;
  private idleWaiters: Array<() => void> = [];
  private stopTicks: (() => void) | null = null;
  private ticks = 0;
  private closingInput = false;
  private closed = false;
  /** Why the node stopped (fail-stop), or null while it runs. */
  private fatal: Error | null = null;
  private preloaded: Promise<{ store: NodeStore; rec: RecoveredState }> | null = null;
  /** The load of the recovered snapshot prepared with the preload (before init), adopted by `begin`. */

  private lastRole: Role = 'follower';
  private lastTerm = 0;
  private lastLeader: NodeId | null = null;

  constructor(env: ServerEnv) {
    this.out = env.outbox;
    this.opts = env.options;
    this.log = env.log;
    this.random = env.random ?? Math.random;
    this.timers = env.timers ?? realTimers;
    const timers = this.timers;
    this.clock = env.now ?? (() => timers.now());
    this.loop = new ReadyLoop(this, env.probe, env.unsafeAckBeforePersist ?? false);
    this.unsafeLocalReads = env.unsafeLocalReads ?? false;
    this.snapshotter = new Snapshotter(this, env.options, this.random, env.log, this.timers);
    this.state = new StateMachine(this, env.loadClock ?? this.timers, (e) => env.probe?.applied?.(e));
    this.requests = new Requests(this, this.random);
    if (this.opts.dataDir !== null) {
      // --data-dir: start recovering at once, while Maelstrom gets ready to send `init`.
      // The snapshot's state starts loading at once too, in slices (install.ts); `begin` adopts it.
      this.preloaded = env.openStore(null).then(async (store) => {
        const rec = await store.recover();
        this.state.preloadRecovery(store, rec);
        return { store, rec };
      });
      this.preloaded.catch(() => {});
    }
    this.openStore = env.openStore;
    this.onFatal = env.onFatal;
  }

  /** The lin-kv store (the state machine's). */
  get kv(): KvStore {
    return this.state.kv;
  }

  /** Index through which the state machine has applied. */
  get applied(): number {
    return this.state.applied;
  }

  get singleNode(): boolean {
    return this.nodeIds.length === 1;
  }

  get outbox(): Outbox {
    return this.out;
  }

  get options(): ServeOptions {
    return this.opts;
  }

  get logger(): Logger {
    return this.log;
  }

  /** stdin ended: no new request is taken (a single node still finishes what it was given). */
  get closing(): boolean {
    return this.closingInput;
  }

  // The request table's host (requests.ts).
  now(): number {
    return this.clock();
  }
  send(dest: NodeId, body: Record<string, unknown>): number {
    return this.out.send(dest, body);
  }
  reply(dest: string, inReplyTo: number | undefined, body: Record<string, unknown>): void {
    this.out.reply(dest, inReplyTo, body);
  }
  read(key: Json): KvResult {
    return this.state.kv.apply({ op: 'read', key });
  }

  // -------------------------------------------------------------------------------------------
  // Input.

  /** One line from stdin. */
  handleLine(line: string, tooLong?: TooLongLine): void {
    const p = parseLine(line, tooLong);
    if (!p.ok) {
      // Only a prefix is logged (and nothing of the line is kept).
      this.log.warn(`ignoring input line (${p.reason})${tooLong ? '' : `: ${line.length > 200 ? line.slice(0, 200) + '...' : line}`}`);
      const r = p.reply;
      if (r) {
        const reason = p.reason;
        this.enqueue({
          kind: 'fn',
          fn: () => {
            // Decided when its turn comes: by then an `init` ahead of it has named this node.
            if (this.nodeId !== null && r.dest !== '' && r.dest !== this.nodeId) {
              this.log.warn(`not answering ${r.src}'s malformed message ${r.msgId}: addressed to ${r.dest}, not to this node (${this.nodeId})`);
              return;
            }
            this.out.error(r.src, r.msgId, ErrorCode.MALFORMED_REQUEST, reason, r.dest);
          },
        });
      }
      return;
    }
    const msg = p.msg;
    if (this.queue.length >= MAX_QUEUED && this.core && msg.body.msg_id !== undefined && msg.dest === this.nodeId) {
      const type = msg.body.type;
      const text = `node overloaded (${this.queue.length} inputs queued); not executed, try again`;
      if (CLIENT_TYPES.has(type)) return void this.out.error(msg.src, msg.body.msg_id, ErrorCode.TEMPORARILY_UNAVAILABLE, text);
      if (type === 'raft_forward') return void this.requests.shedForward(msg, text);
      if (type === 'raft_read_index') return void this.requests.shedReadIndex(msg, text);
    }
    this.enqueue({ kind: 'msg', msg });
  }

  /** stdin ended: finish what was asked, stop timers, close storage. Resolves when all is written. */
  async end(): Promise<void> {
    this.closingInput = true;
    await this.idle();
    // A snapshot being loaded is finished (a single node still answers what it was given).
    while (this.state.liveLoad() && !this.stopped) {
      await this.state.settle().catch((e: unknown) => this.stop('loading a snapshot', e));
      await this.idle();
    }
    await this.snapshotter.settle();
    await this.idle();
    if (this.stopped) {
      await this.out.flush();
      return;
    }
    this.stopTimer();
    // Nothing more can arrive: requests still in flight can never be answered by the cluster.
    this.requests.endAll('node shutting down (stdin closed)');
    if (this.store) {
      try {
        await this.store.close();
      } catch (e) {
        this.log.warn(`closing storage: ${(e as Error).message}`);
      }
    }
    this.closed = true;
    await this.out.flush();
  }

  /** True while inputs are queued, a batch / Ready is being handled or a snapshot is being loaded. */
  get busy(): boolean {
    return this.pumping || this.queue.length > 0 || this.state.loadingAny;
  }

  /** True while a Ready waits for its WAL fsync and no queued input can be stepped meanwhile. */
  get waitingForWrite(): boolean {
    return this.loop.waitingForWrite;
  }

  /** Resolves when the queue is empty, no Ready is being handled and no snapshot is being loaded. */
  async idle(): Promise<void> {
    for (;;) {
      if (this.pumping || this.queue.length > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      else if (this.state.liveLoad() && !this.stopped) {
        // Its end (StateMachine.finishLoad) is queued by the time this resumes: the handler that queues it came first.
        const task = this.state.liveLoad()!;
        await task.done.catch(() => {});
        await Promise.resolve();
        // Not queued (the input is closed): nothing more will happen to it.
        if (this.state.loadTask() === task && !this.pumping && this.queue.length === 0) return;
      } else return;
    }
  }

  enqueue(w: Work): void {
    if (this.closed) return;
    this.queue.push(w);
    if (!this.pumping) void this.pump();
    else this.loop.wake();
  }

  /** Internal work (a finished snapshot's compaction) goes ahead of queued input. */
  enqueueFirst(w: Work): void {
    if (this.closed) return;
    this.queue.unshift(w);
    if (!this.pumping) void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      for (;;) {
        // At most MAX_BATCH inputs per Ready: bounded latency and memory per batch, and regular
        // snapshot checks even when a flood of input has queued up (e.g. during recovery). Taken
        // from the queue one at a time: a Ready handled in between (below) may step the inputs
        // behind this one while its fsync runs (stepWhileWriting), in the order they came.
        for (let taken = 0; taken < MAX_BATCH && this.queue.length > 0; taken++) {
          const w = this.queue.shift()!;
          // A message that is neither a client request nor Raft traffic (control messages, init,
          // get_stats) observes the effects of everything before it: finish the pending Ready first.
          if (this.stopped || this.storeFailed()) break;
          if (w.kind === 'msg' && this.core && !ORDER_FREE.has(w.msg.body.type)) {
            try {
              // ... and of a snapshot being loaded (control messages read and replace the state;
              // get_stats reports the load as it stands).
              if (this.state.loadTask() && w.msg.body.type !== 'get_stats') await this.state.settle();
              if (!this.stopped && this.core.hasReady()) await this.processReady();
            } catch (e) {
              this.stop('handling Raft output', e);
              break;
            }
            if (this.stopped) break;
          }
          try {
            const r = this.handle(w);
            if (r) await r;
          } catch (e) {
            this.onHandlerError(w, e);
          }
        }
        if (this.stopped) break;
        // A follower's reads of this batch ask the leader for one read index (requests.ts).
        if (this.core) this.requests.askIndex();
        if (this.core && this.core.hasReady()) {
          try {
            await this.processReady();
          } catch (e) {
            this.stop('handling Raft output', e);
            break;
          }
          continue;
        }
        if (this.queue.length === 0) break;
      }
    } finally {
      this.pumping = false;
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
  }

  /**
   * The next queued input if it may be stepped while a Ready's write is in flight (a tick, or an
   * ORDER_FREE message: ReadyLoop.stepWhileWriting), taken off the queue; null otherwise.
   */
  takeFreeInput(): Work | null {
    const w = this.queue[0];
    if (w === undefined || this.stopped) return null;
    if (w.kind !== 'tick' && !(w.kind === 'msg' && this.core !== null && ORDER_FREE.has(w.msg.body.type))) return null;
    return this.queue.shift()!;
  }

  /**
   * A handler threw. A ProtocolError is the request's own fault: answer it. Anything else (a
   * storage failure inside a control message, an invariant the core or the state machine found
   * broken) means the node can no longer vouch for its state: stop.
   */
  onHandlerError(w: Work, e: unknown): void {
    if (w.kind === 'msg' && e instanceof ProtocolError) {
      const { src, dest, body } = w.msg;
      this.out.error(src, body.msg_id, e.code, e.message, dest);
      return;
    }
    const what = w.kind === 'msg' ? `handling ${w.msg.body.type} from ${w.msg.src}` : w.kind === 'tick' ? 'handling a tick' : 'internal work';
    if (w.kind === 'msg' && w.msg.body.msg_id !== undefined && !RAFT_MESSAGE_TYPES.has(w.msg.body.type)) {
      // The request itself may have entered the log before the failure: only an indefinite answer.
      const { src, dest, body } = w.msg;
      this.out.error(src, body.msg_id, ErrorCode.CRASH, `node stopped: ${(e as Error).message}`, dest);
    }
    this.stop(what, e);
  }

  /** True once the node has stopped (fail-stop): it handles no input and sends nothing more. */
  get stopped(): boolean {
    return this.fatal !== null;
  }

  /**
   * Stop now if the store has failed. A background snapshot save fails inside the storage at once,
   * but its rejected promise reaches `stop` only some microtasks later, and queued input or the
   * next Ready could send in between (a heartbeat answer, a relayed reply). Checked before every
   * input and every Ready, and after each await inside one. True once stopped.
   */
  storeFailed(): boolean {
    const f = this.store?.failure ?? null;
    if (f && !this.stopped) this.stop('a storage call', f);
    return this.stopped;
  }

  /**
   * Fail-stop. The node cannot be sure that its state is durable and consistent (a failed write,
   * fsync, rename, snapshot save or load, apply, or a broken invariant): it answers what it owes
   * (13 for requests that may have entered a log, 11 for ones that cannot have), then sends
   * nothing more (no acknowledgement, vote or answer), logs one line naming the operation and the
   * file, and tells its host, which exits non-zero. Nothing is retried: after a failed fsync the
   * kernel may already have dropped the data, so only recovery from what is on disk is honest.
   */
  stop(operation: string, e: unknown): void {
    if (this.fatal) return;
    const err = e instanceof Error ? e : new Error(String(e));
    this.fatal = err;
    this.stopTimer();
    this.queue = [];
    this.state.cancel();
    this.requests.endAll(`node stopped (${operation} failed)`);
    this.out.seal();
    this.closed = true;
    // Nothing more is written: buffered records are dropped, files closed, the lock released.
    try {
      this.store?.abandon();
    } catch {
      // releasing is best effort; the process is about to exit
    }
    const code = (err as { cause?: { code?: unknown } }).cause?.code;
    this.log.warn(`FATAL: ${operation} failed: ${err.message}${typeof code === 'string' && !err.message.includes(code) ? ` (${code})` : ''}; stopping: this node can no longer vouch for its state (restart it to recover from disk)`);
    if (!(e instanceof Error) || !('code' in e)) this.log.debug(err.stack ?? '');
    this.onFatal?.(err);
  }

  /** Carry out one input (its handler's failure is the caller's: onHandlerError). */
  handle(w: Work): void | Promise<void> {
    switch (w.kind) {
      case 'tick':
        this.tickQueued = false;
        return this.onTick();
      case 'fn':
        return w.fn();
      case 'msg':
        return dispatch(this, w.msg);
    }
  }

  statsBody(): Record<string, unknown> {
    return statsBody(this);
  }

  // -------------------------------------------------------------------------------------------
  // Start (init.ts decides; these carry it out).

  /** `init` named this node and its cluster. */
  named(nodeId: NodeId, nodeIds: readonly NodeId[]): void {
    this.nodeId = nodeId;
    this.nodeIds = [...nodeIds];
    this.out.self = nodeId;
  }

  /** This node's store, opened and recovered (at start already for --data-dir). */
  async openAndRecover(nodeId: NodeId): Promise<{ store: NodeStore; rec: RecoveredState }> {
    if (this.preloaded) return this.preloaded;
    const store = await this.openStore(nodeId);
    return { store, rec: await store.recover() };
  }

  /**
   * The node cannot start (its storage cannot be opened, or its directory refuses this init): it
   * takes no more input and tells its host, which exits non-zero. `seal`: send nothing more either.
   */
  notStarted(err: Error, store: NodeStore | null, seal: boolean): void {
    if (seal) this.out.seal();
    this.state.dropPreload();
    this.nodeId = null;
    this.closed = true;
    this.queue = [];
    if (store) {
      try {
        store.abandon();
      } catch {
        // releasing the lock is best effort; the process is about to exit
      }
    }
    this.onFatal?.(err);
  }

  /** Start the core and the state machine from the recovered state. */
  begin(store: NodeStore, rec: RecoveredState): void {
    this.store = store;
    this.recoveredNodeId = rec.nodeId;
    const applied = this.state.adoptRecovered(store, rec);
    const { electionTicks, heartbeatTicks } = ticksOf(this.opts);
    this.core = new RaftCore(
      {
        id: this.nodeId!,
        peers: this.nodeIds,
        electionTicks,
        heartbeatTicks,
        preVote: this.opts.preVote,
        checkQuorum: this.opts.checkQuorum,
        maxEntriesPerAppend: this.opts.maxAppendEntries,
        maxInflight: this.opts.maxInflight,
        snapshotChunkSize: this.opts.chunkSize,
        random: this.random,
        localSnapshot: store.snapshots.current(),
      },
      { hardState: rec.hardState, snapshot: rec.snapshot ? rec.snapshot.meta : null, entries: rec.entries, applied },
    );
    const st = this.core.status();
    this.lastRole = st.role;
    this.lastLeader = st.leader;
    this.lastTerm = st.term;
    this.snapshotter.reset();
    this.state.startRecovered();
  }

  /** False while a recovered snapshot is still being loaded into the state machine (keyed): not every key can be read. */
  get stateComplete(): boolean {
    return this.state.complete;
  }

  /** True when `key` can be read from the state machine now; otherwise its part of the state is loaded first (requests.ts). */
  readable(key: Json): boolean {
    return this.state.readable(key);
  }

  /**
   * Start the tick timer. A single-node cluster needs none: it elects itself the moment a client
   * needs a leader, so that it never appends anything (not even a leader's no-op) nobody asked for.
   */
  startTicking(): void {
    if (!this.singleNode && !this.closingInput) this.startTimer();
  }

  // -------------------------------------------------------------------------------------------
  // Timers.

  private startTimer(): void {
    if (this.stopTicks) return;
    this.stopTicks = this.timers.every(this.opts.tickMs, () => {
      if (this.tickQueued) return; // the node is busy: logical time slows down instead of bursting
      this.tickQueued = true;
      this.enqueue({ kind: 'tick' });
    });
  }

  private stopTimer(): void {
    if (this.stopTicks) this.stopTicks();
    this.stopTicks = null;
  }

  private onTick(): void {
    if (!this.core) return;
    this.core.tick();
    this.ticks++;
    if (this.ticks % 10 === 0) this.requests.expire(this.now());
  }

  // -------------------------------------------------------------------------------------------
  // The Ready loop (ready-loop.ts).

  /** Handle the core's output until it has none (also called by control messages). */
  processReady(): Promise<void> {
    return this.loop.process();
  }

  /** True while a snapshot is being loaded into the state machine (tests, stats). */
  get loadingSnapshot(): SnapshotMeta | null {
    return this.state.loadTask()?.meta ?? null;
  }

  /**
   * Replace the state machine with `pairs` and the session table `sessions` (empty when not given)
   * as of `meta` (snapshot install, seed).
   */
  resetStateMachine(meta: SnapshotMeta, pairs: Iterable<readonly [Json, Json]>, sessions?: Json): void {
    this.state.reset(meta, pairs, sessions);
  }

  /** Track role and leader changes (stats; the requests of a deposed leader, queued requests). */
  observe(): void {
    const st = this.core!.status();
    countRoleChanges(this.stats, this.nodeId, { term: this.lastTerm, leader: this.lastLeader }, st);
    const prevRole = this.lastRole;
    this.lastTerm = st.term;
    this.lastRole = st.role;
    this.lastLeader = st.leader;
    this.requests.observe(prevRole, st);
  }
}
