/**
 * Overload: a node bounds what it holds. Past MAX_IN_FLIGHT requests in flight a new request is
 * answered 11 at once, before it could enter any log (here: a node of three with no peer reachable,
 * so every request waits for a leader).
 */
import { describe, expect, it } from 'vitest';
import { MemorySink } from '../../src/node/protocol.js';
import { MAX_IN_FLIGHT } from '../../src/node/requests.js';
import { inProcessServer, noTimers } from './helpers.js';

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
});
