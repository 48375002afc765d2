/**
 * The message router, with Maelstrom's semantics: node-to-node messages are delayed by a latency
 * drawn per message and dropped by partitions; messages between clients and nodes are never
 * delayed nor dropped (but a node that is down loses what is sent to it); a message to an unknown
 * destination is an error, reported and counted.
 */
import type { NodeProcess } from './node-process.js';

export interface Message {
  src: string;
  dest: string;
  body: Record<string, unknown> & { type?: unknown; msg_id?: unknown; in_reply_to?: unknown };
}

export interface NetStats {
  /** Node-to-node messages sent. */
  nodeMessages: number;
  delivered: number;
  droppedPartition: number;
  droppedDown: number;
  clientMessages: number;
  unknownDest: number;
  badMessages: number;
  lateReplies: number;
}

export interface RequestResult {
  reply?: Message['body'];
  /** No reply within the timeout. */
  timeout?: boolean;
  /** The node was down when the request was sent: it was certainly not delivered. */
  notDelivered?: boolean;
}

/** A client endpoint (`c<k>`): numbers its requests and matches replies by `in_reply_to`. */
export class Client {
  private nextMsgId = 1;
  private readonly pending = new Map<number, { resolve: (r: RequestResult) => void; timer: NodeJS.Timeout }>();

  constructor(
    readonly id: string,
    private readonly net: Network,
  ) {}

  request(dest: string, body: Record<string, unknown>, timeoutMs: number): Promise<RequestResult> {
    const msgId = this.nextMsgId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(msgId);
        resolve({ timeout: true });
      }, timeoutMs);
      this.pending.set(msgId, { resolve, timer });
      const sent = this.net.sendFromClient({ src: this.id, dest, body: { ...body, msg_id: msgId } });
      if (!sent) {
        clearTimeout(timer);
        this.pending.delete(msgId);
        resolve({ notDelivered: true });
      }
    });
  }

  /** Called by the network for every message addressed to this client. */
  receive(msg: Message): void {
    const id = msg.body.in_reply_to;
    const p = typeof id === 'number' ? this.pending.get(id) : undefined;
    if (!p) {
      this.net.stats.lateReplies++;
      return;
    }
    clearTimeout(p.timer);
    this.pending.delete(id as number);
    p.resolve({ reply: msg.body });
  }

  get outstanding(): number {
    return this.pending.size;
  }
}

export class Network {
  readonly stats: NetStats = {
    nodeMessages: 0,
    delivered: 0,
    droppedPartition: 0,
    droppedDown: 0,
    clientMessages: 0,
    unknownDest: 0,
    badMessages: 0,
    lateReplies: 0,
  };
  /** The first problems seen (unknown destinations, malformed messages), for the report. */
  readonly errors: string[] = [];
  /** grudges.get(dest) = the nodes whose messages `dest` does not receive. */
  private grudges = new Map<string, Set<string>>();
  private readonly nodes = new Map<string, NodeProcess>();
  private readonly clients = new Map<string, Client>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly delay: () => number,
    private readonly clock: () => number,
  ) {}

  addNode(node: NodeProcess): void {
    this.nodes.set(node.id, node);
    node.on('message', (m: Record<string, unknown>) => this.fromNode(node.id, m));
    node.on('bad-line', (line: string) => this.error(`${node.id} wrote a line that is not a JSON object: ${line.slice(0, 200)}`));
  }

  client(id: string): Client {
    let c = this.clients.get(id);
    if (!c) this.clients.set(id, (c = new Client(id, this)));
    return c;
  }

  /** Sets the partition: `grudges[dest]` lists the sources whose messages `dest` drops. */
  partition(grudges: Map<string, Set<string>>): void {
    this.grudges = grudges;
  }

  heal(): void {
    this.grudges = new Map();
  }

  get partitioned(): boolean {
    return this.grudges.size > 0;
  }

  sendFromClient(msg: Message): boolean {
    this.stats.clientMessages++;
    const node = this.nodes.get(msg.dest);
    if (!node) {
      this.error(`client ${msg.src} sent to unknown node ${msg.dest}`);
      return false;
    }
    return node.send(msg);
  }

  /** Stops delivering delayed messages (end of run). */
  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private error(text: string): void {
    this.stats.badMessages++;
    if (this.errors.length < 50) this.errors.push(`${this.clock().toFixed(0)} ms: ${text}`);
  }

  private fromNode(from: string, m: Record<string, unknown>): void {
    const dest = m.dest;
    const body = m.body;
    if (typeof dest !== 'string' || typeof body !== 'object' || body === null || Array.isArray(body)) {
      this.error(`${from} sent a message without dest or body: ${JSON.stringify(m).slice(0, 200)}`);
      return;
    }
    if (m.src !== from) {
      this.error(`${from} sent a message with src ${JSON.stringify(m.src)}`);
    }
    const msg: Message = { src: from, dest, body: body as Message['body'] };
    const client = this.clients.get(dest);
    if (client) {
      client.receive(msg);
      return;
    }
    const node = this.nodes.get(dest);
    if (!node) {
      this.stats.unknownDest++;
      this.error(`${from} sent ${JSON.stringify((body as Record<string, unknown>).type)} to unknown destination ${JSON.stringify(dest)}`);
      return;
    }
    this.stats.nodeMessages++;
    if (this.grudges.get(dest)?.has(from)) {
      this.stats.droppedPartition++;
      return;
    }
    const deliver = (): void => {
      if (node.send(msg)) this.stats.delivered++;
      else this.stats.droppedDown++;
    };
    const d = this.delay();
    if (d <= 0) {
      deliver();
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      deliver();
    }, d);
    this.timers.add(t);
  }
}
