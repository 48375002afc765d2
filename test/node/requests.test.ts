/** The one function that picks a request's answer, on every path of its lifecycle. */
import { describe, expect, it } from 'vitest';
import { Request, answerFor, type RequestState } from '../../src/node/requests.js';

function req(state: RequestState, kind: 'read' | 'write' | 'control' = 'write'): Request {
  const r = new Request(kind, kind === 'read' ? { op: 'read', key: 1 } : { op: 'write', key: 1, value: 2 }, () => {}, 0, 'c1');
  r.state = state;
  return r;
}

const proposed: RequestState = { name: 'proposed', index: 7, term: 3 };
const forwarded: RequestState = { name: 'forwarded', msgId: 4 };
const queued: RequestState = { name: 'queued', until: null };
const reading: RequestState = { name: 'reading', ctx: 1, index: null };

describe('answerFor', () => {
  it('applied at (index, term): the result; the entry there has another term: indefinite 13', () => {
    expect(answerFor(req(proposed), { why: 'applied', term: 3, result: { ok: true } })).toEqual({ kind: 'result', result: { ok: true } });
    expect(answerFor(req(proposed), { why: 'applied', term: 4, result: { ok: true } })).toMatchObject({ kind: 'error', code: 13 });
    // A stale session copy applies without a result: only indefinite is honest.
    expect(answerFor(req(proposed), { why: 'applied', term: 3, result: null })).toMatchObject({ kind: 'error', code: 13 });
    expect(answerFor(req(proposed, 'control'), { why: 'applied', term: 3, result: null })).toEqual({ kind: 'result', result: { ok: true } });
  });

  it('deposed: 13 once it may be in a log (proposed, forwarded), 11 before (queued, reading)', () => {
    expect(answerFor(req(proposed), { why: 'deposed' })).toMatchObject({ code: 13 });
    expect(answerFor(req(forwarded), { why: 'deposed' })).toMatchObject({ code: 13 });
    expect(answerFor(req(queued), { why: 'deposed' })).toMatchObject({ code: 11 });
    expect(answerFor(req(reading, 'read'), { why: 'deposed' })).toMatchObject({ code: 11, text: expect.stringContaining('read') });
  });

  it('stopping: 13 if proposed or forwarded, 11 if not; no leader: 11; timed out: 0; replaced: 13', () => {
    for (const s of [proposed, forwarded]) expect(answerFor(req(s), { why: 'stopping', text: 'node stopped' })).toMatchObject({ code: 13 });
    for (const s of [queued, reading]) expect(answerFor(req(s), { why: 'stopping', text: 'node stopped' })).toMatchObject({ code: 11 });
    expect(answerFor(req(queued), { why: 'no-leader' })).toMatchObject({ code: 11 });
    expect(answerFor(req(proposed), { why: 'timeout' })).toMatchObject({ code: 0 });
    expect(answerFor(req(forwarded), { why: 'timeout' })).toMatchObject({ code: 0, text: expect.stringContaining('forwarded') });
    expect(answerFor(req(proposed), { why: 'replaced' })).toMatchObject({ code: 13 });
  });

  it('a read: its value; a relayed answer: as the leader gave it, or indefinite when malformed', () => {
    expect(answerFor(req(reading, 'read'), { why: 'read', result: { ok: true, value: 5 } })).toEqual({ kind: 'result', result: { ok: true, value: 5 } });
    const o = { kind: 'error', code: 22, text: 'x' };
    expect(answerFor(req(forwarded), { why: 'relayed', outcome: o })).toEqual(o);
    expect(answerFor(req(forwarded), { why: 'relayed', outcome: { kind: 'nonsense' } })).toMatchObject({ code: 13 });
    expect(answerFor(req(forwarded), { why: 'relayed', outcome: undefined })).toMatchObject({ code: 13 });
  });
});

describe('Requests: a leader deposed with reads confirmed', () => {
  it('a read waiting for its client\'s own entry above the commit index ends 11; one at or below it is answered once applied', async () => {
    const { Requests } = await import('../../src/node/requests.js');
    const replies: Array<{ dest: string; body: Record<string, unknown> }> = [];
    let nextIndex = 5;
    const asked: Array<number | undefined> = [];
    const core = {
      leader: () => 'n1',
      readIndex: (_ctx: number, at?: number) => (asked.push(at), true),
      propose: () => ({ index: nextIndex++, term: 2 }),
      campaign: () => {},
    };
    const host = {
      nodeId: 'n1', core: core as never, singleNode: false, closing: false,
      options: { requestTimeoutMs: 10_000, leaderWaitMs: 0 } as never,
      applied: 2,
      now: () => 0,
      send: () => 0,
      reply: (dest: string, _inReplyTo: number | undefined, body: Record<string, unknown>) => void replies.push({ dest, body }),
      read: () => ({ ok: true as const, value: 'v' }),
      readable: () => true,
      unsafeLocalReads: false,
    };
    const rq = new Requests(host, () => 0.5);
    const body = (o: { kind: string; code?: number; result?: unknown }) => (o.kind === 'error' ? { type: 'error', code: o.code } : { type: 'ok' });
    const msg = (src: string, id: number, type: string) => ({ src, dest: 'n1', body: { type, msg_id: id } });
    rq.submitClient(msg('c1', 1, 'write'), { op: 'write', key: 1, value: 2 }, (_op, o) => body(o as never));
    rq.submitClient(msg('c1', 2, 'read'), { op: 'read', key: 1 }, (_op, o) => body(o as never));
    rq.submitClient(msg('c2', 1, 'read'), { op: 'read', key: 1 }, (_op, o) => body(o as never));
    // c1's read must include c1's write at 5; c2's only what was applied.
    expect(asked).toEqual([5, 2]);
    rq.readResults([{ ctx: 1, index: 5 }, { ctx: 2, index: 3 }], []);
    expect(replies).toEqual([]);
    rq.observe('leader', { id: 'n1', role: 'follower', term: 3, leader: 'n2', commit: 4, applied: 2, firstIndex: 1, lastIndex: 4, snapshot: null, votedFor: null });
    expect(replies).toEqual([
      { dest: 'c1', body: { type: 'error', code: 13 } }, // the write: deposed while proposed
      { dest: 'c1', body: { type: 'error', code: 11 } }, // its read: lost with the leadership
    ]);
    host.applied = 3;
    rq.readResults([], []);
    expect(replies[2]).toEqual({ dest: 'c2', body: { type: 'ok' } });
  });
});

describe('Requests: follower reads', () => {
  async function follower() {
    const { Requests } = await import('../../src/node/requests.js');
    const sent: Array<{ dest: string; body: Record<string, unknown>; id: number }> = [];
    const replies: Array<{ dest: string; body: Record<string, unknown> }> = [];
    const st = { leader: 'n1' as string | null };
    const core = {
      leader: () => st.leader,
      currentTerm: () => 2,
      readIndex: () => false,
      propose: () => null,
      campaign: () => {},
    };
    let nextId = 100;
    const host = {
      nodeId: 'n2', core: core as never, singleNode: false, closing: false,
      options: { requestTimeoutMs: 10_000, leaderWaitMs: 1000, electionTimeoutMs: 300 } as never,
      applied: 4,
      time: 0,
      now() { return this.time; },
      send: (dest: string, body: Record<string, unknown>) => (sent.push({ dest, body, id: ++nextId }), nextId),
      reply: (dest: string, _inReplyTo: number | undefined, body: Record<string, unknown>) => void replies.push({ dest, body }),
      read: () => ({ ok: true as const, value: 'v' }),
      readable: () => true,
      unsafeLocalReads: false,
    };
    const rq = new Requests(host, () => 0.5);
    const body = (o: { kind: string; code?: number; result?: { value?: unknown } }) => (o.kind === 'error' ? { type: 'error', code: o.code } : { type: 'ok', value: o.result?.value });
    const submit = (client: string, id: number, cmd: { op: 'read'; key: number } | { op: 'write'; key: number; value: number }) =>
      rq.submitClient({ src: client, dest: 'n2', body: { type: cmd.op, msg_id: id } }, cmd, (_op, o) => body(o as never));
    const status = (leader: string | null) => ({ id: 'n2', role: 'follower' as const, term: 2, leader, commit: 4, applied: 4, firstIndex: 1, lastIndex: 4, snapshot: null, votedFor: null });
    return { rq, host, sent, replies, st, submit, status };
  }

  it('the reads of a batch share one raft_read_index, carrying the term; answered from local state once the index is applied', async () => {
    const { rq, host, sent, replies, submit } = await follower();
    submit('c1', 1, { op: 'read', key: 1 });
    submit('c2', 1, { op: 'read', key: 1 });
    expect(sent).toEqual([]); // sent after the batch
    rq.askIndex();
    expect(sent).toEqual([{ dest: 'n1', body: { type: 'raft_read_index', term: 2 }, id: 101 }]);
    rq.onReadIndexReply({ src: 'n1', dest: 'n2', body: { type: 'raft_read_index_reply', in_reply_to: 101, index: 6 } });
    expect(replies).toEqual([]); // applied 4 < 6
    host.applied = 6;
    rq.readResults([], []);
    expect(replies).toEqual([{ dest: 'c1', body: { type: 'ok', value: 'v' } }, { dest: 'c2', body: { type: 'ok', value: 'v' } }]);
    expect(rq.followerReads).toBe(2);
    // An answer from another node, or a second copy, changes nothing.
    rq.onReadIndexReply({ src: 'n1', dest: 'n2', body: { type: 'raft_read_index_reply', in_reply_to: 101, index: 9 } });
    expect(replies.length).toBe(2);
  });

  it('one raft_read_index in flight to the leader: reads of later batches wait for its answer, then share the next one', async () => {
    const { rq, host, sent, replies, submit } = await follower();
    submit('c1', 1, { op: 'read', key: 1 });
    rq.askIndex();
    expect(sent.map((m) => m.id)).toEqual([101]);
    // Two more batches while 101 is unanswered: no request of their own yet.
    submit('c2', 1, { op: 'read', key: 1 });
    rq.askIndex();
    submit('c3', 1, { op: 'read', key: 1 });
    rq.askIndex();
    expect(sent.map((m) => m.id)).toEqual([101]);
    // 101's index is for c1 alone (c2 and c3 arrived after it was asked: it may be older than their
    // writes); the answer sends their request at once.
    rq.onReadIndexReply({ src: 'n1', dest: 'n2', body: { type: 'raft_read_index_reply', in_reply_to: 101, index: 4 } });
    expect(replies).toEqual([{ dest: 'c1', body: { type: 'ok', value: 'v' } }]);
    expect(sent.map((m) => [m.id, m.body['type']])).toEqual([[101, 'raft_read_index'], [102, 'raft_read_index']]);
    rq.onReadIndexReply({ src: 'n1', dest: 'n2', body: { type: 'raft_read_index_reply', in_reply_to: 102, index: 5 } });
    expect(replies.length).toBe(1); // applied 4 < 5
    host.applied = 5;
    rq.readResults([], []);
    expect(replies.map((r) => r.dest)).toEqual(['c1', 'c2', 'c3']);
    expect(rq.followerReads).toBe(3);
    // An error answer also lets the next request go.
    submit('c4', 1, { op: 'read', key: 1 });
    rq.askIndex();
    submit('c5', 1, { op: 'read', key: 1 });
    rq.askIndex();
    expect(sent.length).toBe(3);
    rq.onReadIndexReply({ src: 'n1', dest: 'n2', body: { type: 'raft_read_index_reply', in_reply_to: 103, outcome: { kind: 'error', code: 11, text: 'not the leader' } } });
    expect(replies[3]).toEqual({ dest: 'c4', body: { type: 'error', code: 11 } });
    expect(sent.map((m) => m.id)).toEqual([101, 102, 103, 104]);
  });

  it('an error from the leader is the reads\' answer; a read behind the same client\'s unanswered forward is forwarded too', async () => {
    const { rq, sent, replies, submit } = await follower();
    submit('c1', 1, { op: 'read', key: 1 });
    rq.askIndex();
    rq.onReadIndexReply({ src: 'n1', dest: 'n2', body: { type: 'raft_read_index_reply', in_reply_to: 101, outcome: { kind: 'error', code: 11, text: 'not the leader' } } });
    expect(replies).toEqual([{ dest: 'c1', body: { type: 'error', code: 11 } }]);
    // An answer with neither an index nor an error is no value to read: 11.
    submit('c4', 1, { op: 'read', key: 1 });
    rq.askIndex();
    rq.onReadIndexReply({ src: 'n1', dest: 'n2', body: { type: 'raft_read_index_reply', in_reply_to: 102, outcome: { kind: 'result', result: { ok: true, value: 'forged' } } } });
    expect(replies[1]).toEqual({ dest: 'c4', body: { type: 'error', code: 11 } });
    submit('c3', 1, { op: 'write', key: 1, value: 5 });
    submit('c3', 2, { op: 'read', key: 1 });
    rq.askIndex();
    expect(sent.slice(2).map((m) => m.body['type'])).toEqual(['raft_forward', 'raft_forward']);
  });

  it('the leader changes before the answer: the reads ask the new leader; a request lost is sent again after an election timeout', async () => {
    const { rq, host, sent, st, submit, status } = await follower();
    submit('c1', 1, { op: 'read', key: 1 });
    rq.askIndex();
    st.leader = 'n3';
    rq.observe('follower', status('n3'));
    rq.askIndex();
    expect(sent.map((m) => m.dest)).toEqual(['n1', 'n3']);
    // The old leader's late answer is not waited for.
    rq.onReadIndexReply({ src: 'n1', dest: 'n2', body: { type: 'raft_read_index_reply', in_reply_to: 101, index: 4 } });
    expect(rq.followerReads).toBe(0);
    host.time = 299;
    rq.expire(host.time);
    expect(sent.length).toBe(2);
    host.time = 300;
    rq.expire(host.time);
    expect(sent.map((m) => m.dest)).toEqual(['n1', 'n3', 'n3']);
    rq.onReadIndexReply({ src: 'n3', dest: 'n2', body: { type: 'raft_read_index_reply', in_reply_to: 103, index: 4 } });
    expect(rq.followerReads).toBe(1);
  });
});
