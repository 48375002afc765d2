/**
 * Overload: a node bounds what it holds. Past MAX_IN_FLIGHT requests in flight a new request is
 * answered 11 at once, before it could enter any log (here: a node of three with no peer reachable,
 * so every request waits for a leader).
 */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/node/log.js';
import { defaultOptions, type ServeOptions } from '../../src/node/options.js';
import { MemorySink, Outbox } from '../../src/node/protocol.js';
import { MAX_IN_FLIGHT } from '../../src/node/requests.js';
import { MAX_QUEUED, RaftServer } from '../../src/node/server.js';
import { openNodeStore } from '../../src/node/storage-adapter.js';
import type { Entry } from '../../src/raft/types.js';
import { inProcessServer, noTimers } from './helpers.js';

type Out = { src: string; dest: string; body: Record<string, unknown> };

/** A single node (its own leader) in this process, with every entry it applies recorded. */
function singleNode(): { s: RaftServer; sink: MemorySink; applied: Entry[]; out: () => Out[] } {
  const sink = new MemorySink();
  const applied: Entry[] = [];
  const opts: ServeOptions = { ...defaultOptions() };
  const s = new RaftServer({
    outbox: new Outbox(sink),
    options: opts,
    log: silentLogger,
    openStore: (id) => openNodeStore(opts, id, silentLogger),
    random: () => 0.5,
    timers: noTimers,
    probe: { applied: (e) => void applied.push(e) },
  });
  s.handleLine(JSON.stringify({ src: 'c0', dest: 'n1', body: { type: 'init', msg_id: 1, node_id: 'n1', node_ids: ['n1'] } }));
  return { s, sink, applied, out: () => sink.lines.map((l) => JSON.parse(l) as Out) };
}

/** The keys the applied log entries wrote (a forward's write carries its session as well). */
function keysWritten(applied: Entry[]): unknown[] {
  return applied.flatMap((e) => (e.data !== null && typeof e.data === 'object' && !Array.isArray(e.data) && 'key' in e.data ? [e.data['key']] : []));
}

const forward = (msgId: number, key: string) =>
  JSON.stringify({ src: 'n2', dest: 'n1', body: { type: 'raft_forward', msg_id: msgId, origin: 'p1', request: { op: 'write', key, value: msgId } } });

describe('overload', () => {
  it(`past ${MAX_IN_FLIGHT} requests in flight, new ones are answered 11 at once (definite: not executed)`, async () => {
    const sink = new MemorySink();
    const s = inProcessServer(sink, { leaderWaitMs: 60_000 }, noTimers);
    s.handleLine(JSON.stringify({ src: 'c0', dest: 'n1', body: { type: 'init', msg_id: 1, node_id: 'n1', node_ids: ['n1', 'n2', 'n3'] } }));
    await s.idle();
    const extra = 100;
    for (let i = 0; i < MAX_IN_FLIGHT + extra; i++) {
      s.handleLine(JSON.stringify({ src: 'c1', dest: 'n1', body: { type: 'write', msg_id: 10 + i, key: i, value: i } }));
    }
    await s.idle();
    const replies = sink.lines.map((l) => JSON.parse(l) as { dest: string; body: Record<string, unknown> }).filter((m) => m.dest === 'c1');
    expect(replies.length).toBe(extra);
    for (const r of replies) expect(r.body).toMatchObject({ type: 'error', code: 11, text: expect.stringContaining('overloaded') });
    // The ones shed are the last to arrive; the first MAX_IN_FLIGHT wait for a leader.
    expect(replies.map((r) => r.body['in_reply_to'])).toEqual(Array.from({ length: extra }, (_, i) => 10 + MAX_IN_FLIGHT + i));
    expect(s.requests.size).toBe(MAX_IN_FLIGHT);
    expect(s.statsBody()['requests_in_flight']).toBe(MAX_IN_FLIGHT);
  });

  // Past MAX_QUEUED queued inputs (server.ts) a client request is answered 11 before it is queued,
  // so before it can be proposed: 11 is definite ("not executed"), which is true only of a request
  // that never entered a log. Shown on what the node applied: exactly the requests not shed.
  it(`past ${MAX_QUEUED} queued inputs, only requests that never entered the log are shed (answered 11)`, async () => {
    const { s, applied, out } = singleNode();
    await s.idle();
    const n = MAX_QUEUED + 300;
    // One burst, in a single turn of the event loop: the queue fills while the first Ready is handled.
    for (let i = 0; i < n; i++) s.handleLine(JSON.stringify({ src: 'c1', dest: 'n1', body: { type: 'write', msg_id: 10 + i, key: i, value: i } }));
    await s.idle();
    const replies = out().filter((m) => m.dest === 'c1');
    expect(replies).toHaveLength(n);
    const shed = replies.filter((r) => r.body['type'] === 'error');
    const ok = replies.filter((r) => r.body['type'] === 'write_ok');
    expect(shed.length + ok.length).toBe(n);
    // The queue limit shed some (its own text), each of them definite: 11.
    expect(shed.some((r) => String(r.body['text']).includes('inputs queued'))).toBe(true);
    for (const r of shed) expect(r.body).toMatchObject({ code: 11, text: expect.stringContaining('not executed') });
    const keyOf = (r: Out) => (r.body['in_reply_to'] as number) - 10;
    const written = new Set(keysWritten(applied));
    // Every write_ok is in the log, and no shed request is.
    expect([...written].sort((a, b) => (a as number) - (b as number))).toEqual(ok.map(keyOf).sort((a, b) => a - b));
    for (const r of shed) expect(written.has(keyOf(r)), `shed write ${keyOf(r)} is in the log`).toBe(false);
  });

  // A follower's forward is shed the same way, but a copy of a forward (a network may deliver a
  // message twice) is not a new request: a copy of one already in the log must not be answered 11
  // (the follower would tell its client "not executed" of a write that commits), and after a shed
  // copy a later one must not be executed (the follower told its client "not executed").
  it(`past ${MAX_QUEUED} queued inputs, a copy of a forward already in the log is not answered 11, and a shed forward is not executed later`, async () => {
    const { s, applied, out } = singleNode();
    // A first client write elects the node (a forward reaches only a leader).
    s.handleLine(JSON.stringify({ src: 'c1', dest: 'n1', body: { type: 'write', msg_id: 2, key: 'first', value: 0 } }));
    await s.idle();
    s.handleLine(forward(1, 'f1')); // taken at once: proposed in the first Ready
    for (let i = 0; i < MAX_QUEUED + 10; i++) s.handleLine(JSON.stringify({ src: 'c1', dest: 'n1', body: { type: 'write', msg_id: 10 + i, key: i, value: i } }));
    s.handleLine(forward(1, 'f1')); // a copy of the forward already in the log, while the queue is full
    s.handleLine(forward(2, 'f2')); // a new forward while the queue is full: shed
    await s.idle();
    s.handleLine(forward(2, 'f2')); // a copy of the shed forward, once the queue has drained
    await s.idle();
    const toN2 = out().filter((m) => m.dest === 'n2' && m.body['type'] === 'raft_forward_reply');
    const of = (id: number) => toN2.filter((m) => m.body['in_reply_to'] === id).map((m) => m.body['outcome']);
    const written = keysWritten(applied);
    expect(written.filter((k) => k === 'f1')).toHaveLength(1);
    expect(of(1), 'answers to forward 1 (in the log)').toEqual([{ kind: 'result', result: { ok: true } }]);
    expect(of(2), 'answers to forward 2 (shed)').toEqual([{ kind: 'error', code: 11, text: expect.stringContaining('not executed') }]);
    expect(written.includes('f2'), 'the shed forward was executed by a later copy').toBe(false);
  });

  // A follower's request for a read index is shed the same way (its reads then end 11, which is
  // definite: a read enters no log); one that comes once the queue has drained is answered.
  it(`past ${MAX_QUEUED} queued inputs, a follower's request for a read index is answered 11 at once`, async () => {
    const { s, out } = singleNode();
    s.handleLine(JSON.stringify({ src: 'c1', dest: 'n1', body: { type: 'write', msg_id: 2, key: 'first', value: 0 } }));
    await s.idle();
    const term = s.core!.currentTerm();
    const ask = (msgId: number) => JSON.stringify({ src: 'n2', dest: 'n1', body: { type: 'raft_read_index', msg_id: msgId, term } });
    for (let i = 0; i < MAX_QUEUED + 10; i++) s.handleLine(JSON.stringify({ src: 'c1', dest: 'n1', body: { type: 'write', msg_id: 10 + i, key: i, value: i } }));
    s.handleLine(ask(1)); // while the queue is full: shed
    await s.idle();
    s.handleLine(ask(2)); // once it has drained
    await s.idle();
    const toN2 = out().filter((m) => m.dest === 'n2' && m.body['type'] === 'raft_read_index_reply');
    const of = (id: number) => toN2.filter((m) => m.body['in_reply_to'] === id).map((m) => m.body);
    expect(of(1)).toEqual([expect.objectContaining({ outcome: { kind: 'error', code: 11, text: expect.stringContaining('inputs queued') } })]);
    expect(of(2)).toEqual([expect.objectContaining({ index: expect.any(Number) })]);
  });
});
