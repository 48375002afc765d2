/**
 * The simulated lin-kv clients: closed-loop processes that send real requests (reads 40%, writes
 * 30%, cas 30% on a few keys) to a node, record every invocation and completion in the history
 * the linearizability checker reads, and time out. A client whose answer is indefinite (or that
 * timed out) continues as a new process, as Jepsen's do.
 */
import type { Json, NodeId } from '../raft/types.js';
import type { Random } from './random.js';
import type { Reply, Simulation } from './sim.js';

/** Maelstrom's definite errors: the operation certainly did not take effect. */
const DEFINITE = new Set([1, 10, 11, 12, 14, 20, 21, 22, 30]);

interface Client {
  id: number;
  process: number;
  outstanding: { reqId: number; f: 'read' | 'write' | 'cas'; key: number; value: Json } | null;
  /** Index of the node its next request goes to. */
  target: number;
}

export class SimClients {
  private readonly clients: Client[] = [];
  private nextProcess = 0;
  private nextReq = 0;

  constructor(
    private readonly sim: Simulation,
    private readonly rng: Random,
  ) {}

  /** Point the first `count` clients at the node of index `node`: their next operations go there. */
  aim(node: number, count: number): void {
    for (const c of this.clients.slice(0, count)) c.target = node;
  }

  /** The clients' first operations, each at a small random delay. */
  start(): void {
    for (let i = 0; i < this.sim.cfg.clients; i++) {
      this.clients.push({ id: i, process: this.nextProcess++, outstanding: null, target: this.rng.int(this.sim.cfg.nodes) });
      this.sim.queue.push(this.sim.time + this.rng.next() * 20, { k: 'client', client: i });
    }
  }

  /** The client's next operation (in the main phase, when it has none outstanding), with its timeout. */
  next(clientId: number): void {
    const c = this.clients[clientId]!;
    if (!this.sim.mainPhase || c.outstanding) return;
    const r = this.rng;
    const key = r.int(this.sim.cfg.keys);
    const roll = r.next();
    const reqId = this.nextReq++;
    let body: Record<string, Json>;
    let f: 'read' | 'write' | 'cas';
    let value: Json;
    if (roll < 0.4) {
      f = 'read';
      body = { type: 'read', msg_id: reqId, key };
      value = null;
    } else if (roll < 0.7) {
      f = 'write';
      value = r.int(5);
      body = { type: 'write', msg_id: reqId, key, value };
    } else {
      f = 'cas';
      const from = r.int(5);
      const to = r.int(5);
      value = [from, to];
      body = { type: 'cas', msg_id: reqId, key, from, to };
    }
    c.outstanding = { reqId, f, key, value };
    this.sim.history.push({ type: 'invoke', process: c.process, f, key, value, time: this.sim.time });
    const node = this.sim.nodes[c.target]!;
    // A real lin-kv request to any node: a follower forwards it to the leader it knows.
    const line = JSON.stringify({ src: `c${c.id}`, dest: node.id, body });
    this.sim.queue.push(this.sim.time + this.sim.net.clientFate(), { k: 'req', node, client: c.id, line });
    this.sim.queue.push(this.sim.time + this.sim.cfg.clientTimeoutMs, { k: 'timeout', client: c.id, reqId });
  }

  /** A node's reply to a client's request: the completion goes into the history (ok, fail or info). */
  response(nodeId: NodeId, clientId: number, body: Reply): void {
    const c = this.clients[clientId];
    const out = c?.outstanding;
    if (!c || !out || out.reqId !== body.in_reply_to) return; // timed out already
    c.outstanding = null;
    const base = { process: c.process, f: out.f, key: out.key, time: this.sim.time, node: nodeId };
    if (body.type === `${out.f}_ok`) {
      this.sim.history.push({ ...base, type: 'ok', value: out.f === 'read' ? (body.value ?? null) : out.value });
      c.target = this.sim.nodes.findIndex((n) => n.id === nodeId);
    } else if (body.type === 'error' && DEFINITE.has(body.code ?? -1)) {
      this.sim.history.push({ ...base, type: 'fail', value: out.value, code: body.code!, error: body.text ?? '' });
      if (body.code === 11) c.target = this.rng.int(this.sim.cfg.nodes);
    } else {
      this.sim.history.push({ ...base, type: 'info', value: out.value, code: body.code ?? 0, error: body.text ?? body.type });
      c.process = this.nextProcess++;
      c.target = this.rng.int(this.sim.cfg.nodes);
    }
    this.sim.queue.push(this.sim.time + this.rng.range(this.sim.cfg.thinkMs[0], this.sim.cfg.thinkMs[1]), { k: 'client', client: c.id });
  }

  /** The client's request timed out: an info completion, and the client continues as a new process. */
  timeout(clientId: number, reqId: number): void {
    const c = this.clients[clientId]!;
    const out = c.outstanding;
    if (!out || out.reqId !== reqId) return;
    c.outstanding = null;
    this.sim.history.push({ type: 'info', process: c.process, f: out.f, key: out.key, value: out.value, time: this.sim.time, code: 0, error: 'timeout' });
    c.process = this.nextProcess++;
    c.target = this.rng.int(this.sim.cfg.nodes);
    this.sim.queue.push(this.sim.time + this.rng.range(this.sim.cfg.thinkMs[0], this.sim.cfg.thinkMs[1]), { k: 'client', client: c.id });
  }
}
