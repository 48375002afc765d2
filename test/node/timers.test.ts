/**
 * The driver's time is injectable (ServerEnv.timers): the simulator feeds ticks from its event
 * queue and reads simulated time. Without injected timers serve uses the real Node timers.
 */
import { describe, expect, it } from 'vitest';
import { MemorySink } from '../../src/node/protocol.js';
import { RaftServer } from '../../src/node/server.js';
import { realTimers, type Timers } from '../../src/node/timers.js';
import { inProcessServer } from './helpers.js';

class FakeTimers implements Timers {
  time = 1000;
  readonly intervals: Array<{ ms: number; fn: () => void; live: boolean }> = [];
  every(ms: number, fn: () => void): () => void {
    const t = { ms, fn, live: true };
    this.intervals.push(t);
    return () => {
      t.live = false;
    };
  }
  now(): number {
    return this.time;
  }
  yield(): Promise<void> {
    return Promise.resolve();
  }
  /** Fire every live interval once, advancing the clock by its period unless told not to. */
  fire(advance = true): void {
    for (const t of this.intervals) {
      if (!t.live) continue;
      if (advance) this.time += t.ms;
      t.fn();
    }
  }
}

const serverWith = (timers: Timers | undefined, sink: MemorySink, leaderWaitMs = 0): RaftServer =>
  inProcessServer(sink, { electionTimeoutMs: 100, heartbeatMs: 20, tickMs: 10, leaderWaitMs }, timers);

const init = JSON.stringify({ src: 'c0', dest: 'n1', body: { type: 'init', msg_id: 1, node_id: 'n1', node_ids: ['n1', 'n2', 'n3'] } });

describe('injected timers', () => {
  it('ticks only when the injected timer fires, and stops it at the end', async () => {
    const t = new FakeTimers();
    const sink = new MemorySink();
    const s = serverWith(t, sink);
    s.handleLine(init);
    await s.idle();
    expect(t.intervals).toHaveLength(1);
    expect(t.intervals[0]!.ms).toBe(10);
    // Wall-clock time passing does nothing: no tick, no election.
    await new Promise((r) => setTimeout(r, 120));
    expect(sink.lines.some((l) => l.includes('raft_request_vote'))).toBe(false);
    // Election timeout 10..20 ticks (random 0.5 -> 15): 20 fired ticks start an election.
    for (let i = 0; i < 20; i++) {
      t.fire();
      await s.idle();
    }
    expect(sink.lines.filter((l) => l.includes('"raft_request_vote"')).length).toBeGreaterThan(0);
    await s.end();
    expect(t.intervals[0]!.live).toBe(false);
  });

  it('request deadlines use the injected clock', async () => {
    const t = new FakeTimers();
    const sink = new MemorySink();
    const s = serverWith(t, sink, 50);
    s.handleLine(init);
    await s.idle();
    // No leader known: the request waits up to --leader-wait-ms (50) for one, by the injected clock.
    s.handleLine(JSON.stringify({ src: 'c1', dest: 'n1', body: { type: 'read', msg_id: 2, key: 1 } }));
    await s.idle();
    const answers = (): string[] => sink.lines.filter((l) => l.includes('"in_reply_to":2'));
    // Ten ticks (deadlines are checked every tenth) with the clock standing still: still waiting.
    for (let i = 0; i < 10; i++) {
      t.fire(false);
      await s.idle();
    }
    expect(answers()).toHaveLength(0);
    // Ten more with the clock moving 10 ms each: past the deadline, error 11.
    for (let i = 0; i < 10; i++) {
      t.fire();
      await s.idle();
    }
    expect(answers()).toHaveLength(1);
    expect(JSON.parse(answers()[0]!).body).toMatchObject({ type: 'error', code: 11 });
    await s.end();
  });

  it('serve defaults to the real Node timers', async () => {
    expect(realTimers.now()).toBeGreaterThan(1_600_000_000_000);
    let n = 0;
    const stop = realTimers.every(1, () => n++);
    await new Promise((r) => setTimeout(r, 30));
    stop();
    const seen = n;
    expect(seen).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 20));
    expect(n).toBe(seen);
    await realTimers.yield();
  });
});
