/**
 * The lin-kv client workload, like Maelstrom's: `concurrency` clients issue read / write / cas on
 * integer keys 0..keys-1 with values 0..4, together at about `rate` operations per second. As in
 * Jepsen (and so Maelstrom), client i is bound to node i mod N for the whole run, also after it
 * continues as a new process: a fault on one node slows only the clients bound to it, so the rest
 * of the cluster keeps committing (which is what makes a lagging node need a snapshot).
 * Every operation is recorded in the history (see src/check/history.ts). Outcomes as Maelstrom's
 * client records them: a read is idempotent, so a read that times out or gets any error `fail`s; a
 * write or cas that times out, or gets an indefinite error, is `info` (it may still take effect).
 * After an `info` a client continues as a new process with a new client id, as Jepsen does, so
 * late replies can never be mistaken for answers to later requests.
 */
import type { HistoryEvent, OpFn } from '../check/history.js';
import { DEFINITE_ERROR_CODES } from '../check/history.js';
import type { Json } from '../raft/types.js';
import type { Network } from './network.js';
import type { Random } from './random.js';

export interface WorkloadOptions {
  concurrency: number;
  /** Total operations per second over all clients. */
  rate: number;
  keys: number;
  timeoutMs: number;
  nodeIds: readonly string[];
}

export interface OpCounts {
  ok: number;
  fail: number;
  info: number;
}

export class Workload {
  readonly history: HistoryEvent[] = [];
  readonly counts: OpCounts = { ok: 0, fail: 0, info: 0 };
  /** Latencies (ms) of operations that completed ok. */
  readonly latencies: number[] = [];
  /** Replies of an unexpected type. */
  unexpectedReplies = 0;
  private stopped = false;
  private nextClient: number;
  private readonly wakers = new Set<() => void>();

  constructor(
    private readonly opts: WorkloadOptions,
    private readonly net: Network,
    private readonly rnd: Random,
    private readonly clock: () => number,
    /** First client number (c0 is the runner's own control client). */
    firstClient = 1,
  ) {
    this.nextClient = firstClient;
  }

  /** Runs the clients until `stop()`; resolves when every outstanding operation has finished. */
  run(): Promise<void> {
    const workers: Promise<void>[] = [];
    for (let i = 0; i < this.opts.concurrency; i++) workers.push(this.worker(i));
    return Promise.all(workers).then(() => undefined);
  }

  stop(): void {
    this.stopped = true;
    for (const w of [...this.wakers]) w();
  }

  get total(): number {
    return this.counts.ok + this.counts.fail + this.counts.info;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.wakers.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }

  private newClient(): string {
    return `c${this.nextClient++}`;
  }

  private async worker(index: number): Promise<void> {
    const { concurrency, rate, keys, timeoutMs, nodeIds } = this.opts;
    let process = index;
    const node = nodeIds[index % nodeIds.length]!;
    let client = this.net.client(this.newClient());
    // Each client waits on average concurrency / rate seconds between operations.
    const meanGap = (1000 * concurrency) / Math.max(rate, 0.001);
    // Operations are scheduled on a timeline, so time spent waiting for replies counts towards
    // the gap; a client that fell behind (after a timeout) does not burst to catch up.
    let nextAt = this.clock() + this.rnd.next() * 2 * meanGap;
    while (!this.stopped) {
      await this.sleep(Math.max(0, nextAt - this.clock()));
      nextAt = Math.max(nextAt, this.clock() - meanGap) + this.rnd.next() * 2 * meanGap;
      if (this.stopped) break;
      const key = this.rnd.int(keys);
      const x = this.rnd.next();
      const f: OpFn = x < 1 / 3 ? 'read' : x < 2 / 3 ? 'write' : 'cas';
      let value: Json = null;
      let body: Record<string, unknown>;
      if (f === 'read') body = { type: 'read', key };
      else if (f === 'write') {
        value = this.rnd.int(5);
        body = { type: 'write', key, value };
      } else {
        const from = this.rnd.int(5);
        const to = this.rnd.int(5);
        value = [from, to];
        body = { type: 'cas', key, from, to };
      }
      const start = this.clock();
      this.record({ type: 'invoke', process, f, key, value, time: start, node });
      const res = await client.request(node, body, timeoutMs);
      const end = this.clock();
      let ev: HistoryEvent;
      if (res.notDelivered) {
        // The node was down: the request certainly did not reach it.
        ev = { type: 'fail', process, f, key, value, time: end, node, code: 11, error: 'node down (not delivered)' };
      } else if (res.timeout) {
        ev = { type: f === 'read' ? 'fail' : 'info', process, f, key, value, time: end, node, code: 0, error: 'timeout' };
      } else {
        const r = res.reply!;
        const t = r.type;
        if (t === 'error') {
          const code = typeof r.code === 'number' ? r.code : undefined;
          const text = typeof r.text === 'string' ? r.text : '';
          const definite = f === 'read' || (code !== undefined && DEFINITE_ERROR_CODES.has(code));
          ev = { type: definite ? 'fail' : 'info', process, f, key, value, time: end, node, error: text };
          if (code !== undefined) ev.code = code;
        } else if (t === `${f}_ok`) {
          const out = f === 'read' ? ((r.value as Json | undefined) ?? null) : value;
          ev = { type: 'ok', process, f, key, value: out, time: end, node };
          this.latencies.push(end - start);
        } else {
          this.unexpectedReplies++;
          ev = { type: 'info', process, f, key, value, time: end, node, error: `unexpected reply ${JSON.stringify(t)}` };
        }
      }
      this.record(ev);
      this.counts[ev.type as keyof OpCounts]++;
      if (ev.type === 'info') {
        process += concurrency;
        client = this.net.client(this.newClient());
      }
      if (res.notDelivered) await this.sleep(Math.min(100, meanGap)); // do not spin on a dead node
    }
  }

  private record(ev: HistoryEvent): void {
    ev.time = Math.round(ev.time * 1000) / 1000;
    this.history.push(ev);
  }
}
