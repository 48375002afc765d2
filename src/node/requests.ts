/**
 * Client requests, from arrival to answer: one Request type, one lifecycle, one table
 * (hashicorp/raft's futures and etcd's pkg/wait are the models).
 *
 *   queued ──> proposed(index, term) ──> answered     a write or cas in this leader's log
 *          ──> reading(readIndex)    ──> answered     a read served by ReadIndex on this leader, or
 *                                                      on a follower with a read index it asked
 *                                                      the leader for (raft_read_index)
 *          ──> forwarded(msg_id)     ──> answered     sent to the leader as raft_forward
 *          ──────────────────────────> answered     (no leader, deposed, stopping, timed out)
 *
 * Follower reads (etcd's MsgReadIndex from a follower): the reads of one batch of a follower's
 * inputs go to the leader in one `raft_read_index`.
 * The leader confirms it like one of its own reads (a `read-index` request; the request, sent in
 * the leader's term, counts as the follower's acknowledgement, so with 3 voters no round is
 * needed) and answers the index once confirmed; the follower answers each read from its
 * own state machine once it has applied that index. A client with a forward still unanswered here
 * has its read forwarded too, behind its write (the leader keeps one client's requests in order).
 *
 * `queued`: no leader to take it yet (a single node's own election; in a cluster, up to
 * --leader-wait-ms for one to be known). Every path ends in `answerFor`, the one place that picks
 * the answer:
 *   - applied at (index, term)            -> the state machine's result
 *   - the entry at the index has another term, or was replaced by a snapshot -> indefinite (13)
 *   - read confirmed and its position applied -> the value
 *   - a follower's read index confirmed   -> the index (to that follower)
 *   - the leader answered a forward       -> that answer
 *   - deposed before proposing, or a read lost with the leadership -> 11 (nothing took effect)
 *   - deposed while proposed              -> indefinite (13)
 *   - node stopping                       -> 13 if proposed or forwarded, 11 if not
 *   - timed out                           -> 0 (indefinite; the client decides)
 * The old lists (pending by index, forwarded by msg_id, held, waiting, reads, the control
 * messages' apply watchers) are views of the one table here. Nothing in this file does I/O: the
 * driver (server.ts) is the host that proposes, sends and reads the state machine.
 */
import type { KvCommand, KvResult, SessionId } from '../kv/index.js';
import { asKvCommand } from '../kv/index.js';
import type { RaftCore } from '../raft/core.js';
import type { Entry, Json, NodeId, RaftStatus, ReadState, Role } from '../raft/types.js';
import { ClientOrder } from './client-order.js';
import type { ServeOptions } from './options.js';
import { ErrorCode, type Envelope } from './protocol.js';

/** How a request ends: a state-machine result, or an error. */
export type Outcome = { kind: 'result'; result: KvResult } | { kind: 'error'; code: number; text: string };

/**
 * `control`: an entry of a control message (apply_entries) whose result the message reports.
 * `read-index`: on the leader, a follower's request for a read index (its reads wait for it).
 */
export type RequestKind = 'read' | 'write' | 'cas' | 'control' | 'read-index';

export type RequestState =
  | { name: 'queued'; until: number | null }
  | { name: 'forwarded'; msgId: number }
  | { name: 'proposed'; index: number; term: number }
  /** `index`: the read index, once the core confirmed the round (null until then). */
  | { name: 'reading'; ctx: number; index: number | null }
  | { name: 'answered' };

/** Why a request ends; `answerFor` turns it into the answer. */
export type Ending =
  | { why: 'applied'; term: number; result: KvResult | null }
  | { why: 'read'; result: KvResult }
  | { why: 'confirmed'; index: number }
  | { why: 'relayed'; outcome: unknown }
  | { why: 'replaced' }
  | { why: 'deposed' }
  | { why: 'no-leader'; text?: string }
  | { why: 'stopping'; text: string }
  | { why: 'overloaded' }
  | { why: 'timeout' };

export class Request {
  state: RequestState;

  constructor(
    readonly kind: RequestKind,
    readonly cmd: KvCommand,
    /** Called once, with the answer. */
    readonly reply: (o: Outcome) => void,
    /** Time after which it is answered 0 (timed out). */
    readonly deadline: number,
    /**
     * Who sent it, for keeping one client's requests in order (a read follows the client's own
     * earlier writes): the client's node id, or for a forward the forwarding process and its client.
     */
    readonly client: string,
    /** A forwarded request's identity, recorded in its log entry (executed at most once). */
    readonly session?: SessionId,
  ) {
    this.state = { name: 'queued', until: null };
  }

  /** It may have entered a log: only its result or an indefinite error is honest from now on. */
  get mayHaveEntered(): boolean {
    return this.state.name === 'proposed' || this.state.name === 'forwarded';
  }
}

function error(code: number, text: string): Outcome {
  return { kind: 'error', code, text };
}

function indefinite(text: string): Outcome {
  return error(ErrorCode.CRASH, text);
}

/** The answer a request gets for `e`, on every path (see the file comment). */
export function answerFor(req: Request, e: Ending): Outcome {
  const s = req.state;
  switch (e.why) {
    case 'applied':
      if (s.name === 'proposed' && s.term === e.term) {
        if (e.result) return { kind: 'result', result: e.result };
        // A control entry is a command; anything else without a result is a stale session copy.
        if (req.kind === 'control') return { kind: 'result', result: { ok: true } };
      }
      return indefinite('leadership changed while the request was pending; it may or may not have taken effect');
    case 'read':
      return { kind: 'result', result: e.result };
    case 'confirmed':
      return { kind: 'result', result: { ok: true, value: e.index } };
    case 'relayed': {
      const o = e.outcome as Outcome | undefined;
      if (!o || typeof o !== 'object' || (o.kind !== 'result' && o.kind !== 'error')) return indefinite('malformed answer from the leader');
      return o;
    }
    case 'replaced':
      return indefinite('replaced by a snapshot; the request may or may not have taken effect');
    case 'deposed':
      if (req.mayHaveEntered) return indefinite('leadership lost while the request was pending; it may or may not have taken effect');
      return error(ErrorCode.TEMPORARILY_UNAVAILABLE, s.name === 'reading' ? 'leadership lost before the read was confirmed; try again' : 'not the leader any more; try again');
    case 'no-leader':
      return error(ErrorCode.TEMPORARILY_UNAVAILABLE, e.text ?? 'no leader known; try again later');
    case 'stopping':
      return req.mayHaveEntered ? indefinite(`${e.text}; the operation may or may not have taken effect`) : error(ErrorCode.TEMPORARILY_UNAVAILABLE, `${e.text}; the request was not executed`);
    case 'overloaded':
      // Only ever for a request that has not entered a log (checked before it is routed).
      return error(ErrorCode.TEMPORARILY_UNAVAILABLE, `node overloaded (${MAX_IN_FLIGHT} requests in flight); not executed, try again`);
    case 'timeout':
      return error(ErrorCode.TIMEOUT, s.name === 'forwarded' ? 'forwarded request timed out; it may or may not have taken effect' : 'request timed out; it may or may not have taken effect');
  }
}

/** What the table needs of the driver. */
export interface RequestHost {
  readonly nodeId: NodeId | null;
  readonly core: RaftCore | null;
  readonly singleNode: boolean;
  /** stdin ended: no new request is taken (a single node still finishes what it was given). */
  readonly closing: boolean;
  readonly options: ServeOptions;
  /** Index through which the state machine has applied. */
  readonly applied: number;
  now(): number;
  /** Send a node-to-node message; returns its msg_id. */
  send(dest: NodeId, body: Record<string, unknown>): number;
  /** Reply to `dest`'s message `inReplyTo`. */
  reply(dest: string, inReplyTo: number | undefined, body: Record<string, unknown>): void;
  /** A read answered from the state machine now. */
  read(key: Json): KvResult;
  /** False while `key`'s part of the state is not loaded yet (a recovery still loading); the host loads it first and calls `readResults` when it is. */
  readable(key: Json): boolean;
  /** Test-only broken mode: the leader answers reads at once, without ReadIndex. */
  readonly unsafeLocalReads: boolean;
}

/** Forwards remembered by a leader to recognise a duplicated delivery. */
const SEEN_FORWARDS = 16384;

/**
 * Most requests in flight on one node (every state but answered): past it a new request is
 * answered 11 at once, before it can enter any log, so that memory stays bounded under overload.
 */
export const MAX_IN_FLIGHT = 1024;

/** A follower's read index request in flight: its reads, and when it went to which leader. */
interface IndexAsk {
  msgId: number;
  leader: NodeId;
  sentAt: number;
  reads: Request[];
}

/** The table of requests in flight, and their transitions. */
export class Requests {
  /** Views of the table, one per state. */
  private readonly queued: Request[] = [];
  private readonly proposed = new Map<number, Request>();
  private readonly forwarded = new Map<number, Request>();
  private readonly reading = new Map<number, Request>();
  /** The reading requests in arrival order (answered ones dropped from the front). */
  private readQueue: Request[] = [];
  private lastReadCtx = 0;
  /** Forwards received, by sender, origin and msg_id, oldest first: a duplicate is not executed again. */
  /**
   * Forwards seen, in two generations (the newer one is filled, then becomes the older one): at
   * least the last SEEN_FORWARDS / 2 and at most SEEN_FORWARDS are remembered, each check and
   * insert O(1). (Evicting a Set's oldest entry one at a time costs a walk over the holes its
   * earlier deletions left: 3.5% of a busy leader's time.)
   */
  private seenNew = new Set<string>();
  private seenOld = new Set<string>();
  /** Names this process in its forwards (msg_ids start again at 0 after a restart). */
  readonly origin: string;
  /** Each client's last entry proposed here, for the order of its reads (answeredThrough). */
  private readonly clientOrder = new ClientOrder();
  /** Follower: forwards unanswered per client (a read behind one is forwarded too). */
  private readonly forwardsOf = new Map<string, number>();
  /** Follower: reads waiting for the next read index request, and the one in flight. */
  private wantIndex: Request[] = [];
  private readonly asking = new Map<number, IndexAsk>();
  /** Follower reads given a read index by the leader (get_stats `follower_reads`). */
  followerReads = 0;

  constructor(
    private readonly host: RequestHost,
    random: () => number,
  ) {
    this.origin = Math.floor(random() * 2 ** 48).toString(36);
  }

  /**
   * What a read of `client` must include, besides what earlier leaders answered (RaftCore.readIndex):
   * every entry this node answered for (only its applied ones: a follower forwards, never answers
   * from its own apply) and the client's own earlier writes, so that a client sending a write and a
   * read without waiting reads its write, as with the commit index. Another client's write still
   * in flight may be read or not: it has not been answered.
   */
  private answeredThrough(client: string): number {
    return Math.max(this.host.applied, this.clientOrder.lastFor(client));
  }

  /** Requests in flight (every state but answered). */
  get size(): number {
    return this.queued.length + this.proposed.size + this.forwarded.size + this.reading.size;
  }

  /** End `req` with the answer for `e` (once; later endings are ignored). */
  private end(req: Request, e: Ending): void {
    const s = req.state;
    if (s.name === 'answered') return;
    const o = answerFor(req, e);
    switch (s.name) {
      case 'proposed':
        if (this.proposed.get(s.index) === req) this.proposed.delete(s.index);
        break;
      case 'forwarded': {
        this.forwarded.delete(s.msgId);
        const n = (this.forwardsOf.get(req.client) ?? 1) - 1;
        if (n > 0) this.forwardsOf.set(req.client, n);
        else this.forwardsOf.delete(req.client);
        break;
      }
      case 'reading':
        this.reading.delete(s.ctx);
        break;
      case 'queued': {
        const i = this.queued.indexOf(req);
        if (i >= 0) this.queued.splice(i, 1);
        break;
      }
    }
    req.state = { name: 'answered' };
    req.reply(o);
  }

  // -------------------------------------------------------------------------------------------
  // Arrival.

  /** A client's read, write or cas. */
  submitClient(msg: Envelope, cmd: KvCommand, replyBody: (op: string, o: Outcome) => Record<string, unknown>): void {
    const { src, body } = msg;
    const op = body.type;
    const req = new Request(op as RequestKind, cmd, (o) => this.host.reply(src, body.msg_id, replyBody(op, o)), this.host.now() + this.host.options.requestTimeoutMs, src);
    if (this.size >= MAX_IN_FLIGHT) return this.end(req, { why: 'overloaded' });
    this.route(req);
  }

  /** An entry of a control message (apply_entries) at `index` of `term`, answered when applied. */
  watchApply(index: number, term: number, cmd: KvCommand, reply: (o: Outcome) => void): Request {
    const req = new Request('control', cmd, reply, Number.POSITIVE_INFINITY, '');
    req.state = { name: 'proposed', index, term };
    this.proposed.set(index, req);
    return req;
  }

  /** Forget a control request that was not applied (its message answers without it). */
  forget(req: Request): void {
    const s = req.state;
    if (s.name === 'proposed' && this.proposed.get(s.index) === req) this.proposed.delete(s.index);
    req.state = { name: 'answered' };
  }

  /**
   * Take `req` as far as this node can: propose it (leader), start its ReadIndex round (leader,
   * read), forward it (follower), or queue it until a leader is known.
   */
  private route(req: Request): void {
    // While a recovered snapshot is still loading, its key's part of the state is loaded first (the
    // answer needs it once the request's entry or read index is applied).
    this.host.readable(req.cmd.key);
    const h = this.host;
    const core = h.core!;
    if (h.closing && !h.singleNode) return this.end(req, { why: 'no-leader', text: 'node is shutting down' });
    const leader = core.leader();
    if (h.singleNode && (leader !== h.nodeId || this.queued.length > 0)) {
      // Elect ourselves (it needs no other node) and go on once the election is through; requests
      // keep their order behind the ones already waiting.
      this.queued.push(req);
      if (this.queued.length === 1) core.campaign();
      return;
    }
    if (leader === h.nodeId) {
      if (req.cmd.op === 'read') {
        if (h.unsafeLocalReads && h.readable(req.cmd.key)) return this.end(req, { why: 'read', result: h.read(req.cmd.key) });
        // ReadIndex: no log entry; answered once a majority confirmed this leader after now.
        const ctx = ++this.lastReadCtx;
        // A single node keeps the commit index, its last index: it answers in its input order exactly.
        if (core.readIndex(ctx, h.singleNode ? undefined : this.answeredThrough(req.client))) {
          req.state = { name: 'reading', ctx, index: null };
          this.reading.set(ctx, req);
          this.readQueue.push(req);
          return;
        }
      }
      const s = req.session;
      const data = (s ? { ...req.cmd, session: { origin: s.origin, id: s.id, ...(s.low !== undefined ? { low: s.low } : {}) } } : req.cmd) as unknown as Json;
      const r = core.propose(data);
      if (!r) return this.end(req, { why: 'no-leader', text: 'leader cannot accept proposals right now' });
      req.state = { name: 'proposed', index: r.index, term: r.term };
      this.proposed.set(r.index, req);
      this.clientOrder.proposed(req.client, r.index);
      return;
    }
    if (leader !== null && req.cmd.op === 'read' && !this.forwardsOf.has(req.client)) {
      // A follower read: answered here once this node has applied the index the leader confirms.
      const ctx = ++this.lastReadCtx;
      req.state = { name: 'reading', ctx, index: null };
      this.reading.set(ctx, req);
      this.readQueue.push(req);
      this.wantIndex.push(req);
      return;
    }
    if (leader !== null) {
      // From here on the request may enter the leader's log: only its result or an indefinite error.
      // `low`: our oldest forward still waiting for its answer (msg_ids grow, so the first in the
      // map); none: this one. Lets the leader's state machine forget the ones answered before.
      const low = this.forwarded.keys().next().value;
      const id = h.send(leader, { type: 'raft_forward', request: req.cmd, origin: this.origin, client: req.client, ...(low !== undefined ? { low } : {}) });
      req.state = { name: 'forwarded', msgId: id };
      this.forwarded.set(id, req);
      this.forwardsOf.set(req.client, (this.forwardsOf.get(req.client) ?? 0) + 1);
      return;
    }
    if (h.options.leaderWaitMs > 0 && !h.closing) {
      // An election is probably under way: wait a little for a leader rather than fail at once.
      req.state = { name: 'queued', until: h.now() + h.options.leaderWaitMs };
      this.queued.push(req);
      return;
    }
    this.end(req, { why: 'no-leader' });
  }

  /**
   * Whether `msg` is the first copy of a forward (and remember it). A network may deliver a message
   * twice: executing a forwarded write again could overwrite a later write. The first copy is (or
   * was) answered; later copies are dropped.
   */
  private firstCopy(msg: Envelope): boolean {
    const key = `${msg.src}/${String(msg.body['origin'] ?? '')}/${String(msg.body.msg_id)}`;
    if (this.seenNew.has(key) || this.seenOld.has(key)) return false;
    if (this.seenNew.size >= SEEN_FORWARDS / 2) {
      this.seenOld = this.seenNew;
      this.seenNew = new Set();
    }
    this.seenNew.add(key);
    return true;
  }

  /**
   * The driver's queue is full (server.ts): answer a forward 11 before it is queued, as a first
   * copy only. A copy of one already taken may be in the log (11 would be false): dropped, as
   * onForward drops it; and a later copy of this one is dropped too, not executed after its 11.
   */
  shedForward(msg: Envelope, text: string): void {
    if (!this.firstCopy(msg)) return;
    this.host.reply(msg.src, msg.body.msg_id, { type: 'raft_forward_reply', outcome: { kind: 'error', code: ErrorCode.TEMPORARILY_UNAVAILABLE, text } });
  }

  /** Leader, overloaded: a follower's request for a read index is answered 11 at once (its reads end 11: a read enters no log). */
  shedReadIndex(msg: Envelope, text: string): void {
    this.host.reply(msg.src, msg.body.msg_id, { type: 'raft_read_index_reply', outcome: { kind: 'error', code: ErrorCode.TEMPORARILY_UNAVAILABLE, text } });
  }

  /** A follower forwarded a client request to us (the leader, it believes). */
  onForward(msg: Envelope): void {
    const { src, body } = msg;
    const fwdId = body.msg_id;
    if (!this.firstCopy(msg)) return;
    const reply = (o: Outcome): void => this.host.reply(src, fwdId, { type: 'raft_forward_reply', outcome: o });
    const cmd = asKvCommand((body['request'] ?? null) as Json);
    if (!cmd) {
      reply({ kind: 'error', code: ErrorCode.MALFORMED_REQUEST, text: 'malformed forwarded request' });
      return;
    }
    // The forward's identity goes into the log entry: a copy delivered after this process restarted
    // (and forgot the forwards it had seen) is then recognised by the replicated state machine. Reads carry none:
    // executing a copy again changes nothing (and the follower ignores a second answer).
    const origin = body['origin'];
    let session: SessionId | undefined;
    if (cmd.op !== 'read' && typeof origin === 'string' && origin !== '' && Number.isSafeInteger(fwdId)) {
      const low = body['low'];
      session = { origin: `${src}/${origin}`, id: fwdId!, low: typeof low === 'number' && Number.isSafeInteger(low) && low < fwdId! ? low : fwdId! };
    }
    const client = `${src}/${typeof origin === 'string' ? origin : ''}/${typeof body['client'] === 'string' ? body['client'] : ''}`;
    const req = new Request(cmd.op, cmd, reply, this.host.now() + this.host.options.requestTimeoutMs, client, session);
    if (this.size >= MAX_IN_FLIGHT) return this.end(req, { why: 'overloaded' });
    if (this.host.core!.leader() !== this.host.nodeId) {
      // Never forwarded twice (no loops); nothing entered a log, so this is definite.
      this.end(req, { why: 'deposed' });
      return;
    }
    this.route(req);
  }

  /**
   * Follower, after a batch of inputs (server.ts): send the reads that wait for an index to the
   * leader in one raft_read_index. One is in flight at a time (etcd's read loop): reads arriving
   * meanwhile wait for its answer (its index may be older than their clients' writes), then go
   * together in the next. Under load one request serves every read of a round trip.
   */
  askIndex(): void {
    if (this.wantIndex.length === 0) return;
    const h = this.host;
    const leader = h.core!.leader();
    if (leader === null || leader === h.nodeId) return; // observe() routes them again
    for (const a of this.asking.values()) if (a.leader === leader) return; // onReadIndexReply or expire asks again
    const reads = this.wantIndex.filter((r) => r.state.name === 'reading');
    this.wantIndex = [];
    if (reads.length === 0) return;
    // The term it asks in: the leader counts the request as this node's acknowledgement (RaftCore.readIndex).
    const msgId = h.send(leader, { type: 'raft_read_index', term: h.core!.currentTerm() });
    this.asking.set(msgId, { msgId, leader, sentAt: h.now(), reads });
  }

  /** Leader: a follower asks for a read index for the reads it holds. */
  onReadIndex(msg: Envelope): void {
    const { src, body } = msg;
    const h = this.host;
    const reply = (o: Outcome): void =>
      h.reply(src, body.msg_id, o.kind === 'result' && o.result.ok ? { type: 'raft_read_index_reply', index: o.result.value } : { type: 'raft_read_index_reply', outcome: o });
    const req = new Request('read-index', { op: 'read', key: null }, reply, h.now() + h.options.requestTimeoutMs, src);
    if (this.size >= MAX_IN_FLIGHT) return this.end(req, { why: 'overloaded' });
    const ctx = ++this.lastReadCtx;
    // What this leader answered (its applied index); the core adds what earlier leaders and its
    // followers may have answered.
    const term = body['term'];
    const askedBy = typeof term === 'number' && Number.isSafeInteger(term) ? { id: src, term } : undefined;
    if (h.core!.leader() !== h.nodeId || !h.core!.readIndex(ctx, h.applied, askedBy)) return this.end(req, { why: 'deposed' });
    req.state = { name: 'reading', ctx, index: null };
    this.reading.set(ctx, req);
  }

  /** Follower: the leader's answer to our read index request. */
  onReadIndexReply(msg: Envelope): void {
    const a = msg.body.in_reply_to === undefined ? undefined : this.asking.get(msg.body.in_reply_to);
    // An answer to a request given up (timed out, or the leader changed) is not waited for.
    if (!a || msg.src !== a.leader) return;
    this.asking.delete(a.msgId);
    const index = msg.body['index'];
    for (const req of a.reads) {
      const s = req.state;
      if (s.name !== 'reading' || s.index !== null) continue;
      if (typeof index === 'number' && Number.isSafeInteger(index) && index >= 0) {
        s.index = index;
        this.followerReads++;
      } else {
        // Only an error is an answer without an index (a read changes nothing: a malformed one is 11).
        const o = msg.body['outcome'] as Outcome | undefined;
        this.end(req, o && typeof o === 'object' && o.kind === 'error' ? { why: 'relayed', outcome: o } : { why: 'no-leader', text: 'malformed read index answer from the leader; try again' });
      }
    }
    this.answerReads();
    // The reads that arrived while this request was in flight.
    this.askIndex();
  }

  /** Follower: reads waiting for an index go through `route` again (the leader changed, or is us). */
  private rerouteReads(reads: Request[]): void {
    const again = reads.filter((req) => req.state.name === 'reading' && req.state.index === null);
    if (again.length === 0) return;
    const set = new Set(again);
    this.readQueue = this.readQueue.filter((r) => !set.has(r));
    for (const req of again) {
      this.reading.delete((req.state as { ctx: number }).ctx);
      req.state = { name: 'queued', until: null };
    }
    for (const req of again) this.route(req);
  }

  /** The leader's answer to one of our forwards. */
  onForwardReply(msg: Envelope): void {
    const id = msg.body.in_reply_to;
    if (id === undefined) return;
    const req = this.forwarded.get(id);
    if (!req) return; // timed out already
    this.end(req, { why: 'relayed', outcome: msg.body['outcome'] });
  }

  // -------------------------------------------------------------------------------------------
  // What the Ready loop reports.

  /** Entry `e` was applied with `result`: answer the request proposed at its index. */
  applied(e: Entry, result: KvResult | null): void {
    const req = this.proposed.get(e.index);
    if (req) this.end(req, { why: 'applied', term: e.term, result });
    if (this.readQueue.length > 0) this.answerReads();
  }

  /** The state machine was replaced by a snapshot through `index`. */
  replacedThrough(index: number): void {
    for (const [i, req] of this.proposed) if (i <= index && req.kind !== 'control') this.end(req, { why: 'replaced' });
  }

  /** ReadIndex results of a Ready: note the confirmed read indexes, answer lost reads, answer what is applied. */
  readResults(states: readonly ReadState[], lost: readonly number[]): void {
    for (const c of lost) {
      const req = this.reading.get(c);
      if (req) this.end(req, { why: 'deposed' });
    }
    for (const rs of states) {
      const req = this.reading.get(rs.ctx);
      if (req?.kind === 'read-index') this.end(req, { why: 'confirmed', index: rs.index });
      else if (req && req.state.name === 'reading') req.state.index = rs.index;
    }
    this.answerReads();
  }

  /**
   * Answer, in arrival order, the confirmed reads whose read index is applied. Read indexes mostly
   * grow in arrival order (the applied index when each arrived; one above it waits for its client's
   * own write, and holds the reads behind it), and entries are applied one at a time with this
   * called after each: a single node, whose read index is the commit index, its last index, answers
   * in its input order exactly.
   */
  private answerReads(): void {
    const h = this.host;
    const q = this.readQueue;
    let i = 0;
    while (i < q.length) {
      const req = q[i]!;
      const s = req.state;
      if (s.name === 'reading') {
        // Applied, and (while a recovered snapshot is still loading) its key's part of the state is in.
        if (s.index === null || s.index > h.applied || !h.readable(req.cmd.key)) break;
        this.end(req, { why: 'read', result: h.read(req.cmd.key) });
      }
      i++;
    }
    if (i > 0) q.splice(0, i);
  }

  /**
   * After a Ready: the role or the leader changed from `prev` to `st`. A deposed leader's proposed
   * requests get an indefinite answer (the entries may still commit under the next leader); queued
   * requests go on once there is a leader.
   */
  observe(prevRole: Role, st: RaftStatus): void {
    const h = this.host;
    if (prevRole === 'leader' && st.role !== 'leader') {
      for (const req of [...this.proposed.values()]) if (req.kind !== 'control') this.end(req, { why: 'deposed' });
      // A confirmed read waiting for an entry above the commit index (its client's own write in
      // flight) may wait for an index the next leader's log does not reach soon: it ends as a read
      // lost with the leadership (nothing of a read takes effect). Those at or below it are answered
      // as this node applies.
      for (const req of [...this.reading.values()]) {
        const s = req.state;
        if (s.name === 'reading' && s.index !== null && s.index > st.commit) this.end(req, { why: 'deposed' });
      }
    }
    // Follower reads waiting for an index from a leader that is not the leader any more (or that is
    // now this node) start again with the one there is.
    const gone: Request[] = [];
    for (const a of [...this.asking.values()]) {
      if (a.leader === st.leader) continue;
      this.asking.delete(a.msgId);
      for (const r of a.reads) gone.push(r);
    }
    if (gone.length > 0 || (this.wantIndex.length > 0 && st.leader === h.nodeId)) this.rerouteReads([...gone, ...this.wantIndex.splice(0)]);
    if (this.queued.length === 0) return;
    if (h.singleNode) {
      if (st.role === 'leader') this.routeQueued();
      else if (st.role === 'follower') h.core!.campaign();
    } else if (st.leader !== null) {
      this.routeQueued();
    }
  }

  private routeQueued(): void {
    const q = this.queued.splice(0);
    for (const req of q) {
      req.state = { name: 'queued', until: null };
      this.route(req);
    }
  }

  /** Every tenth tick: answer what waited too long. */
  expire(now: number): void {
    // A read index request unanswered for an election timeout was lost (or its leader was): its
    // reads go in the next one (an answer to this one is then not waited for).
    for (const a of [...this.asking.values()]) {
      if (now - a.sentAt < this.host.options.electionTimeoutMs) continue;
      this.asking.delete(a.msgId);
      this.wantIndex = [...a.reads.filter((r) => r.state.name === 'reading'), ...this.wantIndex];
    }
    this.askIndex();
    for (const req of [...this.queued]) {
      const s = req.state;
      if (s.name === 'queued' && s.until !== null && s.until <= now) this.end(req, { why: 'no-leader' });
    }
    for (const view of [this.proposed, this.forwarded, this.reading]) {
      for (const req of view.values()) if (req.deadline <= now) this.end(req, { why: 'timeout' });
    }
  }

  /** The node stops (fail-stop) or its input ended: answer everything in flight. */
  endAll(text: string): void {
    this.readQueue = [];
    this.wantIndex = [];
    this.asking.clear();
    for (const view of [this.reading, this.proposed, this.forwarded]) {
      for (const req of [...view.values()]) if (req.kind !== 'control') this.end(req, { why: 'stopping', text });
    }
    for (const req of [...this.queued]) this.end(req, { why: 'stopping', text });
  }
}
