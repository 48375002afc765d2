/**
 * The driver: connects the pure Raft core and the lin-kv state machine to Maelstrom messages,
 * timers and storage. Every input (a message, a tick, a finished background snapshot) goes through
 * one queue; after each batch of inputs the core's Ready output is handled in etcd's order:
 *   1. persist entries + hard state, sync (group commit: one sync per Ready)
 *   2. send messages
 *   3. apply the snapshot, then committed entries (answering the requests waiting for them)
 *   4. advance.
 * Fail-stop: when the node cannot vouch for its state (`stop`), it answers what it owes and sends
 * nothing more.
 *
 * Next to it, each knowing the driver only by type: requests.ts (a client request from arrival to
 * answer), state-machine.ts (the KV store, `applied`, and loading a snapshot into it), init.ts
 * (`init` and recovery), control.ts (the snapshot exercise's control messages), stats.ts
 * (`get_stats`), snapshotter.ts (automatic snapshots).
 */
import type { KvCommand, KvResult, KvStore } from '../kv/index.js';
import { RaftCore } from '../raft/core.js';
import { installSnapshotMessage, sameMeta } from '../raft/snapshot.js';
import { RAFT_MESSAGE_TYPES, type Entry, type Json, type NodeId, type RaftMessage, type Ready, type Role, type SnapshotMeta } from '../raft/types.js';
import { CONTROL_TYPES, handleControl } from './control.js';
import { onInit } from './init.js';
import type { LoadClock } from './install.js';
import type { Logger } from './log.js';
import { ticksOf, type ServeOptions } from './options.js';
import { ErrorCode, ProtocolError, validate, type Body, type Envelope, type Outbox, type TooLongLine, parseLine } from './protocol.js';
import { Requests, type Outcome } from './requests.js';
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

type Work = { kind: 'msg'; msg: Envelope } | { kind: 'tick' } | { kind: 'fn'; fn: () => void | Promise<void> };

/** Most inputs handled before the core's output is processed (group commit batch). */
const MAX_BATCH = 512;

/**
 * Inputs waiting in the queue past which a new client request (or a follower's forward of one, or
 * its request for a read index) is answered 11 at once instead of queued: under overload memory
 * stays bounded, and what is shed never entered a log. Raft messages are always queued (their senders' flow control bounds them).
 */
export const MAX_QUEUED = 4096;

const CLIENT_TYPES = new Set(['read', 'write', 'cas']);
/** Messages that may be batched into one Ready with the ones around them. */
const ORDER_FREE = new Set([...CLIENT_TYPES, ...RAFT_MESSAGE_TYPES, 'raft_forward', 'raft_forward_reply', 'raft_read_index', 'raft_read_index_reply']);
/** The replies this node waits for besides Raft's own (which carry no in_reply_to). */
const AWAITED_REPLIES = new Set(['raft_forward_reply', 'raft_read_index_reply']);

/** The reply body for a client request given its outcome. */
export function replyBody(op: string, o: Outcome): Record<string, unknown> {
  if (o.kind === 'error') return { type: 'error', code: o.code, text: o.text };
  const r = o.result;
  if (!r.ok) return { type: 'error', code: r.code, text: r.text };
  if (op === 'read') return { type: 'read_ok', value: r.value === undefined ? null : r.value };
  return { type: `${op}_ok` };
}

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
  private readonly unsafe: boolean;
  private readonly timers: Timers;
  private readonly probe: ServerProbe | undefined;
  private readonly onFatal: ((err: Error) => void) | undefined;
  private readonly openStore: (nodeId: NodeId | null) => Promise<NodeStore>;

  private queue: Work[] = [];
  private pumping = false;
  /** Set while a Ready's WAL fsync runs off the event loop and no input can be stepped: called on new input. */
  private wakeWriter: (() => void) | null = null;
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
    this.probe = env.probe;
    this.unsafe = env.unsafeAckBeforePersist ?? false;
    this.unsafeLocalReads = env.unsafeLocalReads ?? false;
    this.snapshotter = new Snapshotter(this, env.options, this.random, env.log, this.timers);
    this.state = new StateMachine(this, env.loadClock ?? this.timers, (e) => this.probe?.applied?.(e));
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
    return this.wakeWriter !== null;
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
    else this.wake();
  }

  private wake(): void {
    const f = this.wakeWriter;
    this.wakeWriter = null;
    f?.();
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
   * A handler threw. A ProtocolError is the request's own fault: answer it. Anything else (a
   * storage failure inside a control message, an invariant the core or the state machine found
   * broken) means the node can no longer vouch for its state: stop.
   */
  private onHandlerError(w: Work, e: unknown): void {
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
  private storeFailed(): boolean {
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

  private handle(w: Work): void | Promise<void> {
    switch (w.kind) {
      case 'tick':
        this.tickQueued = false;
        return this.onTick();
      case 'fn':
        return w.fn();
      case 'msg':
        return this.onMessage(w.msg);
    }
  }

  private onMessage(msg: Envelope): void | Promise<void> {
    const { src, body } = msg;
    const type = body.type;
    // Once init has named this node, a message for another node id is not ours to act on or answer.
    if (this.nodeId !== null && msg.dest !== this.nodeId) {
      this.log.warn(`dropping ${type} from ${src}: addressed to ${msg.dest}, not to this node (${this.nodeId})`);
      return;
    }
    // A reply to nothing this node waits for: the only replies it expects are raft_forward_reply
    // and raft_read_index_reply (Raft's replies are messages of their own, without in_reply_to).
    // Never answered.
    if (type === 'error' || (body.in_reply_to !== undefined && !AWAITED_REPLIES.has(type) && !RAFT_MESSAGE_TYPES.has(type))) {
      this.log.warn(`dropping ${type} from ${src} (in reply to ${String(body.in_reply_to)}): a reply to nothing this node asked`);
      return;
    }
    if (type === 'init') return onInit(this, msg);
    if (!this.core) {
      if (RAFT_MESSAGE_TYPES.has(type) || type.startsWith('raft_')) return; // a peer ahead of us; it retries
      throw new ProtocolError(ErrorCode.TEMPORARILY_UNAVAILABLE, 'node not initialized yet (expected init first)');
    }
    if (RAFT_MESSAGE_TYPES.has(type)) return this.onRaftMessage(msg);
    if (CLIENT_TYPES.has(type)) return this.requests.submitClient(msg, clientCommand(body), replyBody);
    switch (type) {
      case 'raft_forward':
        return this.requests.onForward(msg);
      case 'raft_forward_reply':
        return this.requests.onForwardReply(msg);
      case 'raft_read_index':
        return this.requests.onReadIndex(msg);
      case 'raft_read_index_reply':
        return this.requests.onReadIndexReply(msg);
      case 'get_stats':
        this.out.reply(src, body.msg_id, { type: 'get_stats_ok', ...this.statsBody() });
        return;
    }
    if (CONTROL_TYPES.has(type)) return handleControl(this, msg);
    throw new ProtocolError(ErrorCode.NOT_SUPPORTED, `unsupported message type ${JSON.stringify(type)}`);
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
  // Node-to-node messages.

  private onRaftMessage(msg: Envelope): void {
    const b = msg.body as Record<string, unknown>;
    if (!Number.isSafeInteger(b['term'])) {
      this.log.warn(`dropping ${msg.body.type} from ${msg.src}: no term`);
      return;
    }
    // The body itself becomes the message (no copy; the core ignores msg_id and other extra fields).
    b['from'] = msg.src;
    b['to'] = this.nodeId;
    this.core!.step(b as unknown as RaftMessage);
  }

  private sendRaft(m: RaftMessage): void {
    const { from: _from, to, ...rest } = m as RaftMessage & Record<string, unknown>;
    void _from;
    if (m.type === 'raft_install_snapshot' && m.offset === 0) this.stats.snapshotTransfersStarted++;
    this.out.send(to, rest);
  }

  // -------------------------------------------------------------------------------------------
  // The Ready loop.

  /** Handle the core's output until it has none (also called by control messages). */
  async processReady(): Promise<void> {
    const core = this.core!;
    const store = this.store!;
    while (core.hasReady()) {
      if (this.storeFailed()) return;
      const rd = core.ready();
      for (const m of rd.early) this.sendRaft(m);
      // What was committed and is on this node's disk already, or on a majority's (applyFirst), is
      // applied and answered without waiting for this Ready's write: while its fsync runs. A
      // leader's appends go out before it writes its own log (the core counts it toward a commit
      // only once this Ready is advanced). A follower's messages (acknowledgements of the entries
      // being written) wait for the write.
      const applied = rd.applyFirst;
      const early = rd.sendFirst && applied;
      if (early && !(await this.sendReadyProbed(rd))) return;
      // 1. persist + sync (no fsync for a commit index alone)
      let write: Promise<void> | null = null;
      if ((rd.entries.length > 0 || rd.hardState) && !this.unsafe) {
        if (rd.entries.length > 0) store.append(rd.entries);
        if (rd.hardState) store.setHardState(rd.hardState);
        if (rd.mustSync) {
          // A synchronous fsync blocks the event loop: what this Ready sent must be on its way first.
          this.out.push();
          const s = store.sync();
          if (s) write = s;
        }
        if (this.stopped || this.storeFailed()) return;
      }
      // 3, first: applied while the fsync runs off the event loop (nothing of it waits for the write).
      if (applied && !this.applyReady(rd)) return;
      // Entries committed meanwhile may be applied during the write only if nothing this Ready
      // hands out is still to be applied after it.
      if (write) await this.stepWhileWriting(write, applied);
      if (this.stopped || this.storeFailed()) return;
      // ... then a chunk of a snapshot from the leader: written, and on the last one verified,
      // fsynced, renamed and recorded. Reported to the core, which answers the leader in a later
      // Ready, so never before this is durable; a storage error here stops the node unanswered.
      const chunk = rd.snapshotChunk;
      if (chunk) {
        let held = store.snapshots.receive(chunk.meta, chunk.size, chunk.offset, chunk.data);
        let installed = false;
        if (chunk.last && held === chunk.size) {
          installed = store.snapshots.finish(chunk.meta);
          if (!installed) {
            held = 0; // damaged: the store discarded the transfer, the leader starts again
            this.log.warn(`${this.nodeId}: snapshot ${chunk.meta.index}/${chunk.meta.term} received from the leader failed verification; transfer restarts`);
          }
        }
        core.snapshotStored(chunk.meta, held, installed);
        // A newer snapshot than the one being loaded is now the core's (its install comes in a
        // later Ready): the load reads nothing more, before its file can be pruned.
        const snap = installed ? core.status().snapshot : null;
        if (snap && sameMeta(snap, chunk.meta)) this.state.supersededBy(chunk.meta);
      }
      // 2. send, 3. apply (what was not applied during the write)
      if (!early && !(await this.sendReadyProbed(rd))) return;
      if (!applied && !this.applyReady(rd)) return;
      // 4. advance
      core.appliedTo(this.state.applied);
      core.advance();
      this.observe();
      this.snapshotter.maybeStart();
    }
    this.observe();
  }

  /**
   * While this Ready's fsync runs off the event loop, step the inputs that need no finished Ready
   * (Raft messages, client requests and forwards, ticks: ORDER_FREE), in order, as they arrive,
   * and stop at the first one that does (it waits, and everything behind it). Their effects stay
   * in the core until the next Ready, taken only after this one is done, so they are handled as if
   * they had come after it: nothing they cause is sent, answered or applied before this Ready's
   * entries and hard state are durable, and the core counts the leader's own new entries toward a
   * commit only once `advance()` has marked them stable. The exceptions (RaftCore.takeDuringWrite
   * decides): when this Ready's sends went before its write, a leader's new messages (the appends
   * of the requests stepped meanwhile) go out at once too, so that the followers write them while
   * the leader does; a follower's read acknowledgements go out at once; reads confirmed meanwhile
   * are answered as soon as their read index is applied; and with `applyNow`, entries committed
   * meanwhile that are on this node's disk already or on a majority's (RaftCore.takeDuringWrite)
   * are applied (and answered). Rethrows a failed fsync.
   */
  private async stepWhileWriting(write: Promise<void>, applyNow: boolean): Promise<void> {
    let settled = false;
    let failure: { error: unknown } | null = null;
    write.then(
      () => {
        settled = true;
        this.wake();
      },
      (e: unknown) => {
        settled = true;
        failure = { error: e };
        this.wake();
      },
    );
    for (;;) {
      while (!settled && !this.stopped && this.queue.length > 0 && this.freeDuringWrite(this.queue[0]!)) {
        const w = this.queue.shift()!;
        this.stats.inputsDuringWrite++;
        try {
          const r = this.handle(w);
          if (r) await r;
        } catch (e) {
          this.onHandlerError(w, e);
        }
      }
      if (this.stopped || this.storeFailed()) break;
      this.requests.askIndex();
      const early = this.core!.takeDuringWrite(applyNow);
      for (const m of early.messages) this.sendRaft(m);
      if (early.readStates.length > 0 || early.readsLost.length > 0) this.requests.readResults(early.readStates, early.readsLost);
      for (const e of early.committed) this.state.apply(e);
      if (early.messages.length > 0 || early.readStates.length > 0 || early.readsLost.length > 0 || early.committed.length > 0) this.out.push();
      if (settled) break;
      await new Promise<void>((resolve) => {
        this.wakeWriter = resolve;
      });
    }
    if (failure) throw (failure as { error: unknown }).error;
  }

  /** An input that may be stepped while a Ready's write is in flight (see stepWhileWriting). */
  private freeDuringWrite(w: Work): boolean {
    if (w.kind === 'tick') return true;
    return w.kind === 'msg' && this.core !== null && ORDER_FREE.has(w.msg.body.type);
  }

  /** Step 2 of a Ready: send (and let a test probe look). False when the node stopped meanwhile. */
  private async sendReadyProbed(rd: Ready): Promise<boolean> {
    this.sendReady(rd);
    if (this.probe?.afterSend) {
      const p = this.probe.afterSend();
      if (p) await p;
    }
    return !this.storeFailed();
  }

  /**
   * Step 3 of a Ready: install its snapshot, then apply the committed entries (answering their
   * requests, and reads at their place in between). False when the node stopped meanwhile.
   */
  private applyReady(rd: Ready): boolean {
    if (rd.snapshot) this.state.install(rd.snapshot);
    if (this.storeFailed()) return false;
    this.requests.readResults(rd.readStates, rd.readsLost);
    for (const e of rd.committed) this.state.apply(e);
    return true;
  }

  /** Send a Ready's messages, and its InstallSnapshot chunks with their bytes read from the local snapshot. */
  private sendReady(rd: Ready): void {
    for (const m of rd.messages) this.sendRaft(m);
    if (rd.snapshotSends.length === 0) return;
    const snaps = this.store!.snapshots;
    for (const send of rd.snapshotSends) {
      const cur = snaps.current();
      // A newer snapshot was saved since this Ready: the core is told (snapshotAvailable) and
      // restarts the transfer with it.
      if (!cur || !sameMeta(cur.meta, send.meta) || cur.size !== send.size) continue;
      this.sendRaft(installSnapshotMessage(send, snaps.read(send.offset, send.length)));
    }
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
  private observe(): void {
    const st = this.core!.status();
    countRoleChanges(this.stats, this.nodeId, { term: this.lastTerm, leader: this.lastLeader }, st);
    const prevRole = this.lastRole;
    this.lastTerm = st.term;
    this.lastRole = st.role;
    this.lastLeader = st.leader;
    this.requests.observe(prevRole, st);
  }
}

/** Validate a lin-kv request body and turn it into a log command. */
export function clientCommand(body: Body): KvCommand {
  const b = body as Record<string, unknown>;
  switch (body.type) {
    case 'read':
      validate(b, { key: 'any' });
      return { op: 'read', key: b['key'] as Json };
    case 'write':
      validate(b, { key: 'any', value: 'any' });
      return { op: 'write', key: b['key'] as Json, value: b['value'] as Json };
    case 'cas': {
      validate(b, { key: 'any', from: 'any', to: 'any' }, { create_if_not_exists: 'bool' });
      const cmd: KvCommand = { op: 'cas', key: b['key'] as Json, from: b['from'] as Json, to: b['to'] as Json };
      if (b['create_if_not_exists'] === true) cmd.create_if_not_exists = true;
      return cmd;
    }
  }
  throw new ProtocolError(ErrorCode.NOT_SUPPORTED, `unsupported message type ${body.type}`);
}
