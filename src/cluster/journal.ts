/**
 * The first messages of a run, as the network's tap saw them: when each was sent and when it was
 * received (or dropped, and why). Enough to draw messages.svg, Maelstrom's Lamport diagram.
 * The runner's own `get_stats` polls are left out (they are not part of the protocol).
 */
import { CONTROL_CLIENT, type TapEvent } from './network.js';

export interface JournalMessage {
  id: number;
  src: string;
  dest: string;
  type: string;
  /** The body as JSON, cut to `BODY_CHARS` characters. */
  body: string;
  sent: number;
  /** When received; undefined when dropped or still in flight at the end. */
  recv?: number;
  dropped?: NonNullable<TapEvent['cause']>;
  droppedAt?: number;
}

const BODY_CHARS = 400;

export class MessageJournal {
  private readonly byId = new Map<number, JournalMessage>();
  private full = false;

  constructor(readonly limit = 2000) {}

  readonly tap = (e: TapEvent): void => {
    if (e.kind === 'send') {
      if (this.full) return;
      const type = typeof e.body.type === 'string' ? e.body.type : String(e.body.type);
      if ((e.src === CONTROL_CLIENT || e.dest === CONTROL_CLIENT) && type.startsWith('get_stats')) return;
      let body = JSON.stringify(e.body);
      if (body.length > BODY_CHARS) body = body.slice(0, BODY_CHARS) + '...';
      this.byId.set(e.id, { id: e.id, src: e.src, dest: e.dest, type, body, sent: e.time });
      if (this.byId.size >= this.limit) this.full = true;
      return;
    }
    const m = this.byId.get(e.id);
    if (!m) return;
    if (e.kind === 'recv') m.recv = e.time;
    else {
      m.dropped = e.cause!;
      m.droppedAt = e.time;
    }
  };

  /** The journaled messages, in the order they were sent. */
  messages(): JournalMessage[] {
    return [...this.byId.values()];
  }

  /** True when more messages were sent than the journal keeps. */
  get truncated(): boolean {
    return this.full;
  }
}
