/**
 * The driver: connects the pure Raft core and the lin-kv state machine to Maelstrom messages,
 * timers and storage. Every input (a message, a tick, a finished background snapshot) goes through
 * one queue; after each batch of inputs the core's Ready output is handled in etcd's order:
 *   1. persist entries + hard state, sync (group commit: one sync per Ready)
 *   2. send messages
 *   3. apply the snapshot, then committed entries (answering pending client requests)
 *   4. advance.
 */
import { KvStore, asKvCommand, type KvCommand, type KvResult, type SessionId } from '../kv/index.js';
import { RaftCore } from '../raft/core.js';
import { installSnapshotMessage, sameMeta } from '../raft/snapshot.js';
import { RAFT_MESSAGE_TYPES, type Entry, type Json, type NodeId, type RaftMessage, type RaftStatus, type Role, type SnapshotMeta } from '../raft/types.js';
import { CONTROL_TYPES, handleControl } from './control.js';
import type { Logger } from './log.js';
import { ticksOf, type ServeOptions } from './options.js';
import { ErrorCode, ProtocolError, validate, type Body, type Envelope, type Outbox, type TooLongLine, parseLine } from './protocol.js';
import { Snapshotter } from './snapshotter.js';
import type { NodeStore, RecoveredState } from './store.js';
import { realTimers, type Timers } from './timers.js';

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

/** How a request ends: a state-machine result, or an error. */
export type Outcome = { kind: 'result'; result: KvResult } | { kind: 'error'; code: number; text: string };

interface Pending {
  term: number;
  deadline: number;
  respond: (o: Outcome) => void;
}

/** A read served by ReadIndex on this leader. */
interface Reading {
  ctx: number;
  key: Json;
  deadline: number;
  respond: (o: Outcome) => void;
  /**
   * The last log index when it arrived, and the term: while this node leads in that term, the read
   * is answered from the state there (or later), in arrival order; afterwards at its read index.
   */
  after: number;
  term: number;
  /** The read index once the core confirmed the round; null until then. */
  index: number | null;
  done: boolean;
}

interface Forwarded {
  respond: (o: Outcome) => void;
  deadline: number;
}

type Work = { kind: 'msg'; msg: Envelope } | { kind: 'tick' } | { kind: 'fn'; fn: () => void | Promise<void> };

export interface Stats {
  elections: number;
  leaderChanges: number;
  snapshotsTaken: number;
  snapshotsInstalled: number;
  /** First chunks sent: transfers started, a restarted transfer counted again. */
  snapshotTransfersStarted: number;
}

/** Forwards remembered by a leader to recognise a duplicated delivery. */
const SEEN_FORWARDS = 16384;

/** Most inputs handled before the core's output is processed (group commit batch). */
const MAX_BATCH = 512;

const CLIENT_TYPES = new Set(['read', 'write', 'cas']);
/** Messages that may be batched into one Ready with the ones around them. */
const ORDER_FREE = new Set([...CLIENT_TYPES, ...RAFT_MESSAGE_TYPES, 'raft_forward', 'raft_forward_reply']);

function indefinite(text: string): Outcome {
  return { kind: 'error', code: ErrorCode.CRASH, text };
}

/** The reply body for a client request given its outcome. */
export function replyBody(op: string, o: Outcome): Record<string, unknown> {
  if (o.kind === 'error') return { type: 'error', code: o.code, text: o.text };
  const r = o.result;
  if (!r.ok) return { type: 'error', code: r.code, text: r.text };
  if (op === 'read') return { type: 'read_ok', value: r.value === undefined ? null : r.value };
  return { type: `${op}_ok` };
}

export class RaftServer {
  readonly kv = new KvStore();
  core: RaftCore | null = null;
  store: NodeStore | null = null;
  nodeId: NodeId | null = null;
  nodeIds: NodeId[] = [];
  /** Index through which the state machine has applied. */
  applied = 0;
  readonly stats: Stats = { elections: 0, leaderChanges: 0, snapshotsTaken: 0, snapshotsInstalled: 0, snapshotTransfersStarted: 0 };
  readonly snapshotter: Snapshotter;

  private readonly out: Outbox;
  private readonly opts: ServeOptions;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly unsafe: boolean;
  private readonly unsafeLocalReads: boolean;
  private readonly timers: Timers;
  private readonly probe: ServerProbe | undefined;

  private queue: Work[] = [];
  private pumping = false;
  private tickQueued = false;
  private idleWaiters: Array<() => void> = [];
  private stopTicks: (() => void) | null = null;
  private ticks = 0;
  private closing = false;
  private closed = false;
  /** Why the node stopped (fail-stop), or null while it runs. */
  private fatal: Error | null = null;
  private preloaded: Promise<{ store: NodeStore; rec: RecoveredState }> | null = null;
  private recoveredNodeId: NodeId | null = null;

  /** Client requests proposed by this node as leader, by log index. */
  private pending = new Map<number, Pending>();
  /** Reads waiting for their ReadIndex round and the apply of their read index, by core ctx. */
  private reads = new Map<number, Reading>();
  /** The same reads in arrival order (answered ones are dropped from the front). */
  private readQueue: Reading[] = [];
  private lastReadCtx = 0;
  /** Client requests forwarded to the leader, by the msg_id of the forward. */
  private forwarded = new Map<number, Forwarded>();
  /** Names this process in its forwards (msg_ids start again at 0 after a restart). */
  private readonly origin: string;
  /** Forwards received, by origin and msg_id, oldest first: a duplicate is not executed again. */
  private seenForwards = new Set<string>();
  /** Single-node cluster: requests waiting for this node to win its (instant) election. */
  private held: Array<{ cmd: KvCommand; respond: (o: Outcome) => void; session?: SessionId }> = [];
  /** Multi-node: requests that arrived when no leader was known, waiting (briefly) for one. */
  private waiting: Array<{ cmd: KvCommand; respond: (o: Outcome) => void; deadline: number }> = [];
  /** Control messages waiting for entries to be applied (apply_entries), by index. */
  readonly applyWatchers = new Map<number, (result: KvResult | null) => void>();

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
    this.now = env.now ?? (() => timers.now());
    this.probe = env.probe;
    this.unsafe = env.unsafeAckBeforePersist ?? false;
    this.unsafeLocalReads = env.unsafeLocalReads ?? false;
    this.snapshotter = new Snapshotter(this, env.options, this.random, env.log, this.timers);
    this.origin = Math.floor(this.random() * 2 ** 48).toString(36);
    if (this.opts.dataDir !== null) {
      // --data-dir: start recovering at once, while Maelstrom gets ready to send `init`.
      this.preloaded = env.openStore(null).then(async (store) => ({ store, rec: await store.recover() }));
      this.preloaded.catch(() => {});
    }
    this.openStore = env.openStore;
    this.onFatal = env.onFatal;
  }

  private readonly onFatal: ((err: Error) => void) | undefined;

  private readonly openStore: (nodeId: NodeId | null) => Promise<NodeStore>;

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
    this.enqueue({ kind: 'msg', msg: p.msg });
  }

  /** stdin ended: finish what was asked, stop timers, close storage. Resolves when all is written. */
  async end(): Promise<void> {
    this.closing = true;
    await this.idle();
    await this.snapshotter.settle();
    await this.idle();
    if (this.stopped) {
      await this.out.flush();
      return;
    }
    this.stopTimer();
    // Nothing more can arrive: requests still in flight can never be answered by the cluster.
    this.failAll(ErrorCode.TIMEOUT, 'node shutting down (stdin closed); the operation may or may not have taken effect');
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

  /** True while inputs are queued or a batch / Ready is being handled. */
  get busy(): boolean {
    return this.pumping || this.queue.length > 0;
  }

  /** Resolves when the queue is empty and no Ready is being handled. */
  idle(): Promise<void> {
    if (!this.pumping && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  enqueue(w: Work): void {
    if (this.closed) return;
    this.queue.push(w);
    if (!this.pumping) void this.pump();
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
        // snapshot checks even when a flood of input has queued up (e.g. during recovery).
        let batch: Work[];
        if (this.queue.length <= MAX_BATCH) {
          batch = this.queue;
          this.queue = [];
        } else {
          batch = this.queue.slice(0, MAX_BATCH);
          this.queue = this.queue.slice(MAX_BATCH);
        }
        for (const w of batch) {
          // A message that is neither a client request nor Raft traffic (control messages, init,
          // get_stats) observes the effects of everything before it: finish the pending Ready first.
          if (this.stopped || this.storeFailed()) break;
          if (w.kind === 'msg' && this.core && !ORDER_FREE.has(w.msg.body.type) && this.core.hasReady()) {
            try {
              await this.processReady();
            } catch (e) {
              this.stop('handling Raft output', e);
              break;
            }
          }
          try {
            const r = this.handle(w);
            if (r) await r;
          } catch (e) {
            this.onHandlerError(w, e);
          }
        }
        if (this.stopped) break;
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
    this.failAll(ErrorCode.CRASH, `node stopped (${operation} failed); the operation may or may not have taken effect`);
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
    // (Raft's replies are messages of their own, without in_reply_to). Never answered.
    if (type === 'error' || (body.in_reply_to !== undefined && type !== 'raft_forward_reply' && !RAFT_MESSAGE_TYPES.has(type))) {
      this.log.warn(`dropping ${type} from ${src} (in reply to ${String(body.in_reply_to)}): a reply to nothing this node asked`);
      return;
    }
    if (type === 'init') return this.onInit(msg);
    if (!this.core) {
      if (RAFT_MESSAGE_TYPES.has(type) || type.startsWith('raft_')) return; // a peer ahead of us; it retries
      throw new ProtocolError(ErrorCode.TEMPORARILY_UNAVAILABLE, 'node not initialized yet (expected init first)');
    }
    if (RAFT_MESSAGE_TYPES.has(type)) return this.onRaftMessage(msg);
    if (CLIENT_TYPES.has(type)) {
      const cmd = clientCommand(body);
      const op = type;
      const msgId = body.msg_id;
      this.submit(cmd, (o) => {
        this.out.reply(src, msgId, replyBody(op, o));
      });
      return;
    }
    switch (type) {
      case 'raft_forward':
        return this.onForward(msg);
      case 'raft_forward_reply':
        return this.onForwardReply(msg);
      case 'get_stats':
        this.out.reply(src, body.msg_id, { type: 'get_stats_ok', ...this.statsBody() });
        return;
    }
    if (CONTROL_TYPES.has(type)) return handleControl(this, msg);
    throw new ProtocolError(ErrorCode.NOT_SUPPORTED, `unsupported message type ${JSON.stringify(type)}`);
  }

  // -------------------------------------------------------------------------------------------
  // init and recovery.

  private async onInit(msg: Envelope): Promise<void> {
    const { src, body } = msg;
    validate(body, { node_id: 'string', node_ids: 'string[]' });
    const nodeId = body['node_id'] as string;
    const nodeIds = body['node_ids'] as string[];
    if (!nodeIds.includes(nodeId)) throw new ProtocolError(ErrorCode.MALFORMED_REQUEST, 'node_ids must include node_id');
    const twice = nodeIds.find((id, i) => nodeIds.indexOf(id) !== i);
    if (twice !== undefined) throw new ProtocolError(ErrorCode.MALFORMED_REQUEST, `node_ids names ${twice} twice`);
    // Membership is fixed: the members of the first init (recorded in a data directory) are the
    // cluster's for good. The same set in another order is the same membership.
    const sameMembers = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && [...a].sort().join('\0') === [...b].sort().join('\0');
    const list = (ids: readonly string[]): string => `[${ids.join(', ')}]`;
    if (this.core) {
      if (nodeId !== this.nodeId) {
        throw new ProtocolError(ErrorCode.PRECONDITION_FAILED, `already initialized as ${this.nodeId}`);
      }
      if (!sameMembers(nodeIds, this.nodeIds)) {
        const text = `init lists the members ${list(nodeIds)}, but this node runs in the cluster ${list(this.nodeIds)} (membership is fixed at the first init); refused, nothing changed`;
        this.log.warn(`${this.nodeId}: ${text}`);
        throw new ProtocolError(ErrorCode.PRECONDITION_FAILED, text);
      }
      this.out.reply(src, body.msg_id, { type: 'init_ok' });
      return;
    }
    this.nodeId = nodeId;
    this.nodeIds = [...nodeIds];
    this.out.self = nodeId;
    // In memory there is nothing to recover and nothing that can fail: answer at once and load the
    // storage code afterwards (messages behind `init` wait for it in the queue). With a directory,
    // recovery comes first so that a broken or foreign directory is refused in the answer to init.
    const durable = this.opts.dataDir !== null || this.opts.dataRoot !== null;
    if (!durable) this.out.reply(src, body.msg_id, { type: 'init_ok' });
    let store: NodeStore;
    let rec: RecoveredState;
    /** Why the directory refuses this init (it records other members), or null. */
    let refusal: string | null = null;
    try {
      if (this.preloaded) {
        ({ store, rec } = await this.preloaded);
      } else {
        store = await this.openStore(nodeId);
        rec = await store.recover();
      }
      if (rec.nodeId !== null && rec.nodeId !== nodeId) {
        throw new Error(`data directory ${store.where} belongs to node ${rec.nodeId}, not ${nodeId}`);
      }
      const recorded = rec.members ?? null;
      if (recorded !== null && !sameMembers(recorded, nodeIds)) {
        refusal =
          `data directory ${store.where} records the members ${list(recorded)}, but init lists ${list(nodeIds)}: ` +
          'refused; this node does not join a cluster of other members (restart it with the recorded node_ids, or build a directory for the new cluster with raftsnap restore --config)';
      } else {
        if (store.durable && rec.nodeId !== nodeId) await store.setNodeId(nodeId);
        if (store.durable && recorded === null) await store.setMembers?.(nodeIds);
      }
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      this.log.warn(`FATAL: cannot open this node's storage: ${err.message}`);
      if (durable) this.out.error(src, body.msg_id, ErrorCode.CRASH, `cannot open storage: ${err.message}`);
      this.nodeId = null;
      this.closed = true;
      this.queue = [];
      this.onFatal?.(err);
      return;
    }
    if (refusal !== null) {
      // A definite answer (nothing changed), then nothing more: no vote, no answer; the host exits 1.
      this.log.warn(`FATAL: ${refusal}`);
      this.out.error(src, body.msg_id, ErrorCode.PRECONDITION_FAILED, refusal);
      this.out.seal();
      this.nodeId = null;
      this.closed = true;
      this.queue = [];
      try {
        store.abandon();
      } catch {
        // releasing the lock is best effort; the process is about to exit
      }
      this.onFatal?.(new Error(refusal));
      return;
    }
    this.store = store;
    this.recoveredNodeId = rec.nodeId;
    let applied = 0;
    if (rec.snapshot) {
      this.kv.reset(rec.snapshot.pairs, rec.snapshot.sessions);
      applied = rec.snapshot.meta.index;
    }
    this.applied = applied;
    const { electionTicks, heartbeatTicks } = ticksOf(this.opts);
    this.core = new RaftCore(
      {
        id: nodeId,
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
      {
        hardState: rec.hardState,
        snapshot: rec.snapshot ? rec.snapshot.meta : null,
        entries: rec.entries,
        applied,
      },
    );
    const st = this.core.status();
    this.lastRole = st.role;
    this.lastLeader = st.leader;
    this.lastTerm = st.term;
    if (store.durable || rec.snapshot || rec.entries.length > 0) {
      this.log.info(
        `${nodeId}: recovered from ${store.where}: snapshot ${rec.snapshot ? `${rec.snapshot.meta.index}/${rec.snapshot.meta.term}` : 'none'}, ` +
          `${rec.entries.length} log entries, term ${rec.hardState.term}, commit ${rec.hardState.commit}`,
      );
    }
    this.snapshotter.reset();
    if (durable) this.out.reply(src, body.msg_id, { type: 'init_ok' });
    // A single-node cluster needs no timers: it elects itself the moment a client needs a leader,
    // so that it never appends anything (not even a leader's no-op) that nobody asked for.
    if (!this.singleNode && !this.closing) this.startTimer();
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
    if (this.ticks % 10 === 0) this.expireRequests();
  }

  private expireRequests(): void {
    const now = this.now();
    if (this.waiting.length > 0) {
      const still: typeof this.waiting = [];
      for (const w of this.waiting) {
        if (w.deadline <= now) w.respond({ kind: 'error', code: ErrorCode.TEMPORARILY_UNAVAILABLE, text: 'no leader known; try again later' });
        else still.push(w);
      }
      this.waiting = still;
    }
    for (const r of this.reads.values()) {
      if (r.deadline <= now) this.endRead(r, { kind: 'error', code: ErrorCode.TIMEOUT, text: 'read timed out' });
    }
    for (const [idx, p] of this.pending) {
      if (p.deadline <= now) {
        this.pending.delete(idx);
        p.respond({ kind: 'error', code: ErrorCode.TIMEOUT, text: 'request timed out; it may or may not have taken effect' });
      }
    }
    for (const [id, f] of this.forwarded) {
      if (f.deadline <= now) {
        this.forwarded.delete(id);
        f.respond({ kind: 'error', code: ErrorCode.TIMEOUT, text: 'forwarded request timed out; it may or may not have taken effect' });
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Node-to-node messages.

  private onRaftMessage(msg: Envelope): void {
    const b = msg.body as Record<string, unknown>;
    if (!Number.isSafeInteger(b['term'])) {
      this.log.warn(`dropping ${msg.body.type} from ${msg.src}: no term`);
      return;
    }
    const m = { ...b, from: msg.src, to: this.nodeId } as Record<string, unknown>;
    delete m['msg_id'];
    delete m['in_reply_to'];
    this.core!.step(m as unknown as RaftMessage);
  }

  private sendRaft(m: RaftMessage): void {
    const { from: _from, to, ...rest } = m as RaftMessage & Record<string, unknown>;
    void _from;
    if (m.type === 'raft_install_snapshot' && m.offset === 0) this.stats.snapshotTransfersStarted++;
    this.out.send(to, rest);
  }

  // -------------------------------------------------------------------------------------------
  // Client requests.

  /**
   * Start a client request. `respond` is called exactly once: with the result once the command is
   * applied, with error 11 when no leader is known and nothing entered a log, or with an
   * indefinite error once it may have entered one. `session` (a forwarded request's identity, given
   * only by a leader) goes into the log entry: the state machine executes it at most once.
   */
  submit(cmd: KvCommand, respond: (o: Outcome) => void, session?: SessionId): void {
    const core = this.core!;
    if (this.closing && !this.singleNode) {
      respond({ kind: 'error', code: ErrorCode.TEMPORARILY_UNAVAILABLE, text: 'node is shutting down' });
      return;
    }
    const leader = core.leader();
    if (this.singleNode && (leader !== this.nodeId || this.held.length > 0)) {
      // Elect ourselves (it needs no other node) and go on once the election is through; requests
      // keep their order behind the ones already waiting.
      this.held.push(session ? { cmd, respond, session } : { cmd, respond });
      if (this.held.length === 1) core.campaign();
      return;
    }
    if (leader === this.nodeId) {
      if (cmd.op === 'read') {
        if (this.unsafeLocalReads) {
          respond({ kind: 'result', result: this.kv.apply(cmd) });
          return;
        }
        // ReadIndex: no log entry; answered once a majority confirmed this leader after now.
        const ctx = ++this.lastReadCtx;
        if (core.readIndex(ctx)) {
          const r: Reading = { ctx, key: cmd.key, respond, deadline: this.now() + this.opts.requestTimeoutMs, after: core.lastIndex(), term: core.currentTerm(), index: null, done: false };
          this.reads.set(ctx, r);
          this.readQueue.push(r);
          return;
        }
      }
      const data = (session ? { ...cmd, session: { origin: session.origin, id: session.id, ...(session.low !== undefined ? { low: session.low } : {}) } } : cmd) as unknown as Json;
      const r = core.propose(data);
      if (!r) {
        respond({ kind: 'error', code: ErrorCode.TEMPORARILY_UNAVAILABLE, text: 'leader cannot accept proposals right now' });
        return;
      }
      this.pending.set(r.index, { term: r.term, respond, deadline: this.now() + this.opts.requestTimeoutMs });
      return;
    }
    if (leader !== null) {
      // From here on the request may enter the leader's log: only its result or an indefinite error.
      // `low`: our oldest forward still waiting for its answer (msg_ids grow, so the first in the
      // map); none: this one. Lets the leader's state machine forget the ones answered before.
      const low = this.forwarded.keys().next().value;
      const id = this.out.send(leader, { type: 'raft_forward', request: cmd, origin: this.origin, ...(low !== undefined ? { low } : {}) });
      this.forwarded.set(id, { respond, deadline: this.now() + this.opts.requestTimeoutMs });
      return;
    }
    if (this.opts.leaderWaitMs > 0 && !this.closing) {
      // An election is probably under way: wait a little for a leader rather than fail at once.
      this.waiting.push({ cmd, respond, deadline: this.now() + this.opts.leaderWaitMs });
      return;
    }
    respond({ kind: 'error', code: ErrorCode.TEMPORARILY_UNAVAILABLE, text: 'no leader known; try again later' });
  }

  /** A follower forwarded a client request to us. */
  private onForward(msg: Envelope): void {
    const { src, body } = msg;
    const fwdId = body.msg_id;
    // A network may deliver a message twice: executing a forwarded write again could overwrite a
    // later write. The first copy is (or was) answered; later copies are dropped.
    const key = `${src}/${String(body['origin'] ?? '')}/${String(fwdId)}`;
    if (this.seenForwards.has(key)) return;
    this.seenForwards.add(key);
    if (this.seenForwards.size > SEEN_FORWARDS) {
      for (const k of this.seenForwards) {
        this.seenForwards.delete(k);
        break;
      }
    }
    const reply = (o: Outcome): void => {
      this.out.reply(src, fwdId, { type: 'raft_forward_reply', outcome: o });
    };
    const cmd = asKvCommand((body['request'] ?? null) as Json);
    if (!cmd) {
      reply({ kind: 'error', code: ErrorCode.MALFORMED_REQUEST, text: 'malformed forwarded request' });
      return;
    }
    if (this.core!.leader() !== this.nodeId) {
      // Never forwarded twice (no loops); nothing entered a log, so this is definite.
      reply({ kind: 'error', code: ErrorCode.TEMPORARILY_UNAVAILABLE, text: 'not the leader any more; try again' });
      return;
    }
    // The forward's identity goes into the log entry: a copy delivered after this process restarted
    // (and forgot seenForwards) is then recognised by the replicated state machine.
    const origin = body['origin'];
    // Reads carry none: executing a copy again changes nothing (and the follower ignores a second answer).
    let session: SessionId | undefined;
    if (cmd.op !== 'read' && typeof origin === 'string' && origin !== '' && Number.isSafeInteger(fwdId)) {
      const low = body['low'];
      session = { origin: `${src}/${origin}`, id: fwdId!, low: typeof low === 'number' && Number.isSafeInteger(low) && low < fwdId! ? low : fwdId! };
    }
    this.submit(cmd, reply, session);
  }

  private onForwardReply(msg: Envelope): void {
    const id = msg.body.in_reply_to;
    if (id === undefined) return;
    const f = this.forwarded.get(id);
    if (!f) return; // timed out already
    this.forwarded.delete(id);
    const respond = f.respond;
    const o = msg.body['outcome'] as Outcome | undefined;
    if (!o || (o.kind !== 'result' && o.kind !== 'error')) {
      respond(indefinite('malformed answer from the leader'));
      return;
    }
    respond(o);
  }

  /** Answer every request in flight with an indefinite error. */
  private failAll(code: number, text: string): void {
    const reads = [...this.reads.values()];
    this.reads.clear();
    this.readQueue = [];
    // A read changes nothing: a definite answer is right.
    for (const r of reads) r.respond({ kind: 'error', code: ErrorCode.TEMPORARILY_UNAVAILABLE, text: 'node stopping; the read was not answered' });
    const p = [...this.pending.values()];
    this.pending.clear();
    for (const x of p) x.respond({ kind: 'error', code, text });
    const f = [...this.forwarded.values()];
    this.forwarded.clear();
    for (const r of f) r.respond({ kind: 'error', code, text });
    const held = this.held;
    this.held = [];
    // Held requests never entered a log: a definite answer is right.
    for (const h of held) h.respond({ kind: 'error', code: ErrorCode.TEMPORARILY_UNAVAILABLE, text: 'no leader elected' });
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) w.respond({ kind: 'error', code: ErrorCode.TEMPORARILY_UNAVAILABLE, text: 'no leader known; try again later' });
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
      // 1. persist + sync
      if (rd.entries.length > 0 || rd.hardState) {
        if (!this.unsafe) {
          if (rd.entries.length > 0) store.append(rd.entries);
          if (rd.hardState) store.setHardState(rd.hardState);
          const s = store.sync();
          if (s) await s;
          if (this.storeFailed()) return;
        }
      }
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
      }
      // 2. send; InstallSnapshot chunks with their bytes read from the local snapshot the core names
      for (const m of rd.messages) this.sendRaft(m);
      for (const send of rd.snapshotSends) {
        const cur = store.snapshots.current();
        // A newer snapshot was saved since this Ready: the core is told (snapshotAvailable) and
        // restarts the transfer with it.
        if (!cur || !sameMeta(cur.meta, send.meta) || cur.size !== send.size) continue;
        this.sendRaft(installSnapshotMessage(send, store.snapshots.read(send.offset, send.length)));
      }
      if (this.probe?.afterSend) {
        const p = this.probe.afterSend();
        if (p) await p;
      }
      // 3. apply snapshot, then committed entries
      if (rd.snapshot) await this.installSnapshot(rd.snapshot);
      if (this.storeFailed()) return;
      this.noteReads(rd.readStates, rd.readsLost);
      for (const e of rd.committed) this.applyEntry(e);
      // 4. advance
      core.appliedTo(this.applied);
      core.advance();
      this.observe();
      this.snapshotter.maybeStart();
    }
    this.observe();
  }

  /** ReadIndex results of a Ready: note the confirmed read indexes, answer lost reads with 11. */
  private noteReads(states: readonly { ctx: number; index: number }[], lost: readonly number[]): void {
    for (const c of lost) {
      const r = this.reads.get(c);
      if (r) this.endRead(r, { kind: 'error', code: ErrorCode.TEMPORARILY_UNAVAILABLE, text: 'leadership lost before the read was confirmed; try again' });
    }
    for (const s of states) {
      const r = this.reads.get(s.ctx);
      if (r) r.index = s.index;
    }
    this.answerReads();
  }

  private endRead(r: Reading, o: Outcome): void {
    if (r.done) return;
    r.done = true;
    this.reads.delete(r.ctx);
    r.respond(o);
  }

  /**
   * Answer, in arrival order, the confirmed reads whose position is applied: the state after the
   * last entry that arrived before them (at least their read index), so that a single node's
   * answers follow its input order exactly.
   */
  private answerReads(): void {
    const q = this.readQueue;
    const core = this.core!;
    const leading = core.leader() === this.nodeId;
    const term = core.currentTerm();
    let i = 0;
    while (i < q.length) {
      const r = q[i]!;
      if (!r.done) {
        // A deposed leader's entries after the read index may never be applied (a new leader replaced them).
        const at = leading && r.term === term ? Math.max(r.index ?? 0, r.after) : (r.index ?? 0);
        if (r.index === null || at > this.applied) break;
        this.endRead(r, { kind: 'result', result: this.kv.apply({ op: 'read', key: r.key }) });
      }
      i++;
    }
    if (i > 0) q.splice(0, i);
  }

  private applyEntry(e: Entry): void {
    if (e.index <= this.applied) return;
    const result = this.kv.applyEntry(e.data, e.index);
    this.applied = e.index;
    this.snapshotter.noteApplied(e);
    this.probe?.applied?.(e);
    const w = this.applyWatchers.get(e.index);
    if (w) {
      this.applyWatchers.delete(e.index);
      w(result);
    }
    const p = this.pending.get(e.index);
    if (p) {
      this.pending.delete(e.index);
      if (p.term === e.term && result) p.respond({ kind: 'result', result });
      else p.respond(indefinite('leadership changed while the request was pending; it may or may not have taken effect'));
    }
    if (this.readQueue.length > 0) this.answerReads();
  }

  /** The core installed a snapshot from the leader (durable since its last chunk was stored): load it. */
  private async installSnapshot(meta: SnapshotMeta): Promise<void> {
    const s = await this.store!.loadSnapshot(meta);
    this.resetStateMachine(meta, s.pairs, s.sessions);
    // The log up to the snapshot is gone from the core: let storage delete the WAL it covers, as
    // after a snapshot of our own (a follower kept up by InstallSnapshot alone grew its WAL forever).
    await this.store!.compact(this.core!.status().firstIndex - 1, this.opts.retain);
    this.stats.snapshotsInstalled++;
    this.log.info(`${this.nodeId}: installed snapshot ${meta.index}/${meta.term} (${this.kv.size} keys)`);
  }

  /**
   * Replace the state machine with `pairs` and the session table `sessions` (empty when not given)
   * as of `meta` (snapshot install, seed).
   */
  resetStateMachine(meta: SnapshotMeta, pairs: Iterable<readonly [Json, Json]>, sessions?: Json): void {
    this.kv.reset(pairs, sessions);
    this.applied = meta.index;
    this.snapshotter.reset();
    for (const [idx, p] of this.pending) {
      if (idx <= meta.index) {
        this.pending.delete(idx);
        p.respond(indefinite('replaced by a snapshot; the request may or may not have taken effect'));
      }
    }
  }

  /** Track role and leader changes (stats; pending requests of a deposed leader). */
  private observe(): void {
    const st = this.core!.status();
    // An election this node started: it raised the term and voted for itself (a single node goes
    // from pre-candidate to leader within one Ready, so the candidate role alone would miss it).
    if (st.term > this.lastTerm && st.votedFor === this.nodeId && (st.role === 'candidate' || st.role === 'leader')) {
      this.stats.elections++;
    }
    this.lastTerm = st.term;
    if (st.leader !== null && st.leader !== this.lastLeader) this.stats.leaderChanges++;
    if (this.lastRole === 'leader' && st.role !== 'leader' && this.pending.size > 0) {
      // The entries may still commit under the next leader: only an indefinite answer is honest.
      const p = [...this.pending.values()];
      this.pending.clear();
      for (const x of p) x.respond(indefinite('leadership lost while the request was pending; it may or may not have taken effect'));
    }
    this.lastRole = st.role;
    this.lastLeader = st.leader;
    if (st.role === 'leader' && this.held.length > 0) {
      const held = this.held;
      this.held = [];
      for (const h of held) this.submit(h.cmd, h.respond, h.session);
    } else if (this.held.length > 0 && st.role === 'follower') {
      this.core!.campaign();
    }
    if (st.leader !== null && this.waiting.length > 0) {
      const waiting = this.waiting;
      this.waiting = [];
      for (const w of waiting) this.submit(w.cmd, w.respond);
    }
  }

  statsBody(): Record<string, unknown> {
    const st: RaftStatus | null = this.core ? this.core.status() : null;
    const first = st ? st.firstIndex : 1;
    const last = st ? st.lastIndex : 0;
    return {
      node: this.nodeId,
      role: st ? st.role : 'uninitialized',
      term: st ? st.term : 0,
      leader: st ? st.leader : null,
      elections: this.stats.elections,
      leader_changes: this.stats.leaderChanges,
      snapshots_taken: this.stats.snapshotsTaken,
      snapshots_installed: this.stats.snapshotsInstalled,
      // Completed transfers (the follower acknowledged the last chunk), as the core counts them.
      snapshot_transfers_sent: this.core ? this.core.stats().snapshotsSent : 0,
      snapshot_transfers_started: this.stats.snapshotTransfersStarted,
      log_entries: Math.max(0, last - first + 1),
      first_index: first,
      last_index: last,
      commit_index: st ? st.commit : 0,
      applied: this.applied,
      snapshot_index: st?.snapshot ? st.snapshot.index : 0,
      keys: this.kv.size,
      durable: this.store ? this.store.durable : false,
      ...(this.store?.stats ? this.store.stats() : {}),
      recovered_node_id: this.recoveredNodeId,
    };
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
