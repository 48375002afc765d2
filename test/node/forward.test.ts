/**
 * Forwarded client requests (raft_forward) under a network that duplicates messages.
 *
 * Found by the simulator hosting the real server: `npm run sim -- --seed 23 --scenario
 * install-snapshot-lossy` (and seed 74): a follower's raft_forward was delivered twice, the leader
 * proposed the write twice, and the second copy overwrote a later write: the history was not
 * linearizable. The seeds themselves are in test/sim/regressions.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { MemorySink } from '../../src/node/protocol.js';
import { inProcessServer, noTimers } from './helpers.js';

const singleNode = (sink: MemorySink) => inProcessServer(sink, {}, noTimers);

const line = (src: string, body: Record<string, unknown>): string => JSON.stringify({ src, dest: 'n1', body });

describe('raft_forward', () => {
  it('a duplicated forward is executed once', async () => {
    const sink = new MemorySink();
    const s = singleNode(sink);
    s.handleLine(line('c0', { type: 'init', msg_id: 1, node_id: 'n1', node_ids: ['n1'] }));
    s.handleLine(line('c1', { type: 'write', msg_id: 1, key: 'k', value: 0 }));
    await s.idle();
    // A follower's forward, delivered twice; between the two copies a client writes 2.
    const fwd = line('n2', { type: 'raft_forward', msg_id: 7, request: { op: 'write', key: 'k', value: 1 } });
    s.handleLine(fwd);
    await s.idle();
    s.handleLine(line('c1', { type: 'write', msg_id: 2, key: 'k', value: 2 }));
    await s.idle();
    s.handleLine(fwd);
    await s.idle();
    s.handleLine(line('c1', { type: 'read', msg_id: 3, key: 'k' }));
    await s.idle();
    const out = sink.lines.map((l) => JSON.parse(l) as { dest: string; body: Record<string, unknown> });
    expect(out.find((m) => m.body['in_reply_to'] === 3 && m.dest === 'c1')!.body).toMatchObject({ type: 'read_ok', value: 2 });
    expect(out.filter((m) => m.dest === 'n2' && m.body['type'] === 'raft_forward_reply')).toHaveLength(1);
    await s.end();
  });

});
