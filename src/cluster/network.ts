/**
 * The message router, with Maelstrom's semantics: node-to-node messages are delayed by a latency
 * drawn per message and dropped by the partition in force when they are due (so a partition also
 * cuts messages in flight); messages between clients and nodes are never delayed nor dropped (but
 * a node that is down loses what is sent to it); a message to an unknown destination is an error,
 * reported and counted. Traffic is counted as Maelstrom's net checker counts it: sends and
 * receives, of all messages, of those to or from a client, and of those between nodes. The
 * runner's own control client (`c0`: init, get_stats) is left out of the counts.
 * Every message can be handed to a `tap` (the message diagram's journal).
 */
import type { NodeProcess } from './node-process.js';

export interface Message {
  src: string;
  dest: string;
  body: Record<string, unknown> & { type?: unknown; msg_id?: unknown; in_reply_to?: unknown };
}

/** Maelstrom's net checker's counts for one class of messages. */
export interface Traffic {
  /** Messages sent (each has its own id, so this is also Maelstrom's msg-count). */
  sends: number;
  /** Messages received by their destination. */
  receives: number;
}

export interface NetStats {
  all: Traffic;
  /** Messages from or to a workload client. */
  clients: Traffic;
  /** Messages between nodes. */
  servers: Traffic;
  /** Messages sent and never received, by cause. */
  dropped: {
    /** A node-to-node message the partition in force dropped when it was due. */
    partition: number;
    /** The destination node was down (killed) when the message was due. */
    nodeDown: number;
    /** The destination is no node nor client of the run. */
    unknownDest: number;
  };
  /** Lines that are not a JSON object, messages without dest or body, or with a wrong src. */
  badMessages: number;
  /** Replies a client no longer waited for (it timed out). */
  lateReplies: number;
}

/** What the tap sees of a message: when it was sent, and when (and whether) it was received. */
export interface TapEvent {
  kind: 'send' | 'recv' | 'drop';
  /** Milliseconds since the run started. */
  time: number;
  /** The router's own message number, unique in the run. */
  id: number;
  src: string;
  dest: string;
  body: Message['body'];
  /** For `drop`: why. */
  cause?: 'partition' | 'node-down' | 'unknown-dest';
}

/** The runner's own client (init, get_stats): not part of the workload's traffic. */
export const CONTROL_CLIENT = 'c0';

const traffic = (): Traffic => ({ sends: 0, receives: 0 });

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
      if (this.id !== CONTROL_CLIENT) this.net.stats.lateReplies++;
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
    all: traffic(),
    clients: traffic(),
    servers: traffic(),
    dropped: { partition: 0, nodeDown: 0, unknownDest: 0 },
    badMessages: 0,
    lateReplies: 0,
  };
  /** Sees every message sent, received or dropped (for the message diagram). */
  tap: ((e: TapEvent) => void) | null = null;
  private nextId = 0;
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
    const id = this.sent(msg, 'clients');
    const node = this.nodes.get(msg.dest);
    if (!node) {
      this.error(`client ${msg.src} sent to unknown node ${msg.dest}`);
      this.dropped(msg, id, 'unknown-dest');
      return false;
    }
    if (!node.send(msg)) {
      this.dropped(msg, id, 'node-down');
      return false;
    }
    this.received(msg, id, 'clients');
    return true;
  }

  private counted(msg: Message): boolean {
    return msg.src !== CONTROL_CLIENT && msg.dest !== CONTROL_CLIENT;
  }

  private sent(msg: Message, kind: 'clients' | 'servers'): number {
    const id = this.nextId++;
    if (this.counted(msg)) {
      this.stats.all.sends++;
      this.stats[kind].sends++;
    }
    this.tap?.({ kind: 'send', time: this.clock(), id, src: msg.src, dest: msg.dest, body: msg.body });
    return id;
  }

  private received(msg: Message, id: number, kind: 'clients' | 'servers'): void {
    if (this.counted(msg)) {
      this.stats.all.receives++;
      this.stats[kind].receives++;
    }
    this.tap?.({ kind: 'recv', time: this.clock(), id, src: msg.src, dest: msg.dest, body: msg.body });
  }

  private dropped(msg: Message, id: number, cause: NonNullable<TapEvent['cause']>): void {
    if (this.counted(msg)) {
      if (cause === 'partition') this.stats.dropped.partition++;
      else if (cause === 'node-down') this.stats.dropped.nodeDown++;
      else this.stats.dropped.unknownDest++;
    }
    this.tap?.({ kind: 'drop', time: this.clock(), id, src: msg.src, dest: msg.dest, body: msg.body, cause });
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
      const id = this.sent(msg, 'clients');
      this.received(msg, id, 'clients');
      client.receive(msg);
      return;
    }
    const node = this.nodes.get(dest);
    // Maelstrom tells a client by its id's first letter; so does the count of a bad destination.
    const id = this.sent(msg, node || !dest.startsWith('c') ? 'servers' : 'clients');
    if (!node) {
      this.error(`${from} sent ${JSON.stringify((body as Record<string, unknown>).type)} to unknown destination ${JSON.stringify(dest)}`);
      this.dropped(msg, id, 'unknown-dest');
      return;
    }
    const deliver = (): void => {
      // The partition in force when the message is due decides, as in Maelstrom (which checks it
      // when the receiver takes the message off its queue).
      if (this.grudges.get(dest)?.has(from)) this.dropped(msg, id, 'partition');
      else if (node.send(msg)) this.received(msg, id, 'servers');
      else this.dropped(msg, id, 'node-down');
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
