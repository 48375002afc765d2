/**
 * Maelstrom's JSON-lines protocol: parsing and validating envelopes and bodies, error codes, and a
 * writer that numbers every message it sends and never loses a line.
 */

import {
  EnvelopeScanner,
  MAX_LINE_CHARS,
  MAX_MESSAGE_DEPTH,
  MAX_VALUE_CHARS,
  clientValueProblem,
  textNestsDeeper,
  valueProblem,
  type EnvelopeFields,
} from './wire-limits.js';

export type Body = { type: string; msg_id?: number; in_reply_to?: number; [k: string]: unknown };

export interface Envelope {
  src: string;
  dest: string;
  body: Body;
}

/** Maelstrom's error codes (doc/protocol.md). */
export const ErrorCode = {
  TIMEOUT: 0,
  NODE_NOT_FOUND: 1,
  NOT_SUPPORTED: 10,
  TEMPORARILY_UNAVAILABLE: 11,
  MALFORMED_REQUEST: 12,
  CRASH: 13,
  ABORT: 14,
  KEY_DOES_NOT_EXIST: 20,
  KEY_ALREADY_EXISTS: 21,
  PRECONDITION_FAILED: 22,
  TXN_CONFLICT: 30,
} as const;

/** An error to answer a request with. */
export class ProtocolError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export type ParseResult =
  | { ok: true; msg: Envelope }
  /** Not JSON, no usable envelope, or a reply (never answered): nobody to answer. */
  | { ok: false; reply: null; reason: string }
  /** An envelope whose body is unusable but that names a sender and a msg_id: answer error 12. */
  | { ok: false; reply: { src: string; dest: string; msgId: number }; reason: string };

/** A line longer than MAX_LINE_CHARS: never held whole; its length and what its envelope says. */
export interface TooLongLine {
  length: number;
  envelope: EnvelopeFields;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Requests whose keys and values go into the log (a forward carries one in `request`). */
const CLIENT_REQUESTS = new Set(['read', 'write', 'cas']);

/** Answer (error 12) from what an envelope scan found, when it names a sender and a msg_id and is no reply. */
function fromEnvelope(e: EnvelopeFields, reason: string): ParseResult {
  if (e.src === undefined || e.src === '' || e.msgId === undefined || e.reply) return { ok: false, reply: null, reason };
  return { ok: false, reply: { src: e.src, dest: e.dest ?? '', msgId: e.msgId }, reason };
}

/**
 * Parse one input line into an envelope: the envelope itself and `body.type`, then the limits of
 * wire-limits.ts (nesting depth and finite numbers for every message; depth and size of the keys
 * and values of a client request). `tooLong`: the line was longer than MAX_LINE_CHARS and `line`
 * is not its text (the splitter kept none of it).
 */
export function parseLine(line: string, tooLong?: TooLongLine): ParseResult {
  if (tooLong || line.length > MAX_LINE_CHARS) {
    const reason = `line of ${tooLong ? tooLong.length : line.length} characters is longer than the limit of ${MAX_LINE_CHARS}`;
    return fromEnvelope(tooLong ? tooLong.envelope : new EnvelopeScanner().push(line).result(), reason);
  }
  // A long line is checked for depth on its text first (a short one cannot nest deep enough to matter).
  if (line.length > MAX_VALUE_CHARS && textNestsDeeper(line, MAX_MESSAGE_DEPTH)) {
    return fromEnvelope(new EnvelopeScanner().push(line).result(), `message nested more than ${MAX_MESSAGE_DEPTH} levels deep`);
  }
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    const reason = `not JSON: ${(e as Error).message}`;
    // An engine limit (RangeError: too deep, too big) on text that may well be an envelope.
    if (e instanceof RangeError) return fromEnvelope(new EnvelopeScanner().push(line).result(), reason);
    return { ok: false, reply: null, reason };
  }
  if (!isObject(v)) return { ok: false, reply: null, reason: 'not a JSON object' };
  const { src, dest, body } = v;
  if (typeof src !== 'string' || src === '') return { ok: false, reply: null, reason: 'missing or invalid "src"' };
  if (!isObject(body)) return { ok: false, reply: null, reason: 'missing or invalid "body"' };
  const msgId = body['msg_id'];
  // A reply (an error, or anything answering a msg_id) is never answered, even when malformed.
  const isReply = body['type'] === 'error' || 'in_reply_to' in body;
  const canReply = Number.isSafeInteger(msgId) && !isReply;
  const fail = (reason: string): ParseResult =>
    canReply
      ? { ok: false, reply: { src, dest: typeof dest === 'string' ? dest : '', msgId: msgId as number }, reason }
      : { ok: false, reply: null, reason };
  const tooDeep = valueProblem(v, MAX_MESSAGE_DEPTH);
  if (tooDeep) return fail(tooDeep.startsWith('nested') ? `message ${tooDeep}` : tooDeep);
  if (typeof dest !== 'string') return fail('missing or invalid "dest"');
  if (typeof body['type'] !== 'string') return fail('missing or invalid "body.type"');
  if (msgId !== undefined && !Number.isSafeInteger(msgId)) return { ok: false, reply: null, reason: '"msg_id" is not an integer' };
  const type = body['type'];
  const request = CLIENT_REQUESTS.has(type) ? body : type === 'raft_forward' && isObject(body['request']) ? body['request'] : null;
  if (request) {
    const p = clientValueProblem(request);
    if (p) return fail(p);
  }
  return { ok: true, msg: { src, dest, body: body as Body } };
}

// ---------------------------------------------------------------------------------------------
// Body validation: a tiny schema language, enough for Maelstrom's bodies.

export type FieldType = 'any' | 'int' | 'nonneg' | 'number' | 'string' | 'bool' | 'object' | 'array' | 'string[]';

function checkType(v: unknown, t: FieldType): boolean {
  switch (t) {
    case 'any':
      return v !== undefined;
    case 'int':
      return Number.isSafeInteger(v);
    case 'nonneg':
      return Number.isSafeInteger(v) && (v as number) >= 0;
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'string':
      return typeof v === 'string';
    case 'bool':
      return typeof v === 'boolean';
    case 'object':
      return isObject(v);
    case 'array':
      return Array.isArray(v);
    case 'string[]':
      return Array.isArray(v) && v.every((x) => typeof x === 'string');
  }
}

/**
 * Check that `body` has every `required` field with its type and that `optional` fields, when
 * present, have theirs. Throws ProtocolError(12) naming the first problem.
 */
export function validate(
  body: Record<string, unknown>,
  required: Record<string, FieldType>,
  optional: Record<string, FieldType> = {},
): void {
  for (const [k, t] of Object.entries(required)) {
    if (!(k in body)) throw new ProtocolError(ErrorCode.MALFORMED_REQUEST, `missing field "${k}"`);
    if (!checkType(body[k], t)) throw new ProtocolError(ErrorCode.MALFORMED_REQUEST, `field "${k}" must be ${describe(t)}`);
  }
  for (const [k, t] of Object.entries(optional)) {
    if (k in body && !checkType(body[k], t)) {
      throw new ProtocolError(ErrorCode.MALFORMED_REQUEST, `field "${k}" must be ${describe(t)}`);
    }
  }
}

function describe(t: FieldType): string {
  switch (t) {
    case 'any':
      return 'present';
    case 'int':
      return 'an integer';
    case 'nonneg':
      return 'a non-negative integer';
    case 'string[]':
      return 'an array of strings';
    case 'object':
      return 'an object';
    case 'array':
      return 'an array';
    case 'bool':
      return 'a boolean';
    default:
      return `a ${t}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Output.

/** Where lines go: stdout in production, an array in tests. */
export interface LineSink {
  /** Write text (one or more whole lines). */
  write(text: string): void;
  /** Hand what is collected to the OS now, not at the end of the turn (before blocking work). */
  push?(): void;
  /** Resolves once everything written so far has been handed to the OS. */
  flush(): Promise<void>;
}

/**
 * stdout as a LineSink. Lines written in one turn of the event loop go out together, in one write
 * at the end of the turn (setImmediate): one system call and one stream request per batch instead
 * of per message. `flush` writes what is collected and waits for the pipe to drain.
 */
export class StdoutSink implements LineSink {
  private pending = 0;
  private waiters: Array<() => void> = [];
  private lines: string[] = [];
  private scheduled = false;
  /** The stream refused more (its buffer is past its high-water mark) and has not drained yet. */
  private full = false;
  /** Told when the stream fills up (true) and when it has drained (false): backpressure. */
  onBackpressure: ((full: boolean) => void) | null = null;

  constructor(private readonly stream: NodeJS.WritableStream = process.stdout) {}

  write(text: string): void {
    this.lines.push(text);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.writeOut());
    }
  }

  push(): void {
    this.writeOut();
  }

  private writeOut(): void {
    this.scheduled = false;
    if (this.lines.length === 0) return;
    const text = this.lines.length === 1 ? this.lines[0]! : this.lines.join('');
    this.lines = [];
    this.pending++;
    // A write to a pipe may be buffered by Node; it is never dropped. The callback tells us when it
    // has left the process, which is what `flush` waits for.
    const room = this.stream.write(text, () => {
      this.pending--;
      if (this.pending === 0) {
        const w = this.waiters;
        this.waiters = [];
        for (const f of w) f();
      }
    });
    if (!room && !this.full) {
      // Whoever reads our stdout is slower than we write: say so until the stream drains.
      this.full = true;
      this.onBackpressure?.(true);
      this.stream.once('drain', () => {
        this.full = false;
        this.onBackpressure?.(false);
      });
    }
  }

  flush(): Promise<void> {
    this.writeOut();
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

/** Collects lines in memory (tests and the in-process simulator). */
export class MemorySink implements LineSink {
  readonly lines: string[] = [];
  write(text: string): void {
    for (const l of text.split('\n')) if (l !== '') this.lines.push(l);
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Sends messages as one node: a single msg_id counter starting at 0 and incremented on every
 * message sent (replies and node-to-node messages alike).
 */
export class Outbox {
  private nextMsgId = 0;
  /** Messages sent so far (equals the next msg_id). */
  get sent(): number {
    return this.nextMsgId;
  }

  constructor(
    private readonly sink: LineSink,
    public self: string = '',
  ) {}

  private sealed = false;

  /** Send nothing more (the node stopped): later sends are dropped. */
  seal(): void {
    this.sealed = true;
  }

  /** Send `body` to `dest`; returns the msg_id it was given. */
  send(dest: string, body: Record<string, unknown>, src?: string): number {
    const msgId = this.nextMsgId++;
    if (this.sealed) return msgId;
    // Before `init` names the node, answer as whoever the request was addressed to. The envelope
    // is written around the body's JSON (no copy of the body to add msg_id; a later duplicate key
    // wins in JSON.parse, as the spread would have).
    const head = `{"src":${JSON.stringify(this.self || src || '')},"dest":${JSON.stringify(dest)},"body":`;
    const json = JSON.stringify(body);
    this.sink.write(json.length > 2 ? `${head}${json.slice(0, -1)},"msg_id":${msgId}}}\n` : `${head}{"msg_id":${msgId}}}\n`);
    return msgId;
  }

  /** Reply to a request from `dest` with msg_id `inReplyTo`. */
  reply(dest: string, inReplyTo: number | undefined, body: Record<string, unknown>, src?: string): number {
    return this.send(dest, inReplyTo === undefined ? body : { ...body, in_reply_to: inReplyTo }, src);
  }

  error(dest: string, inReplyTo: number | undefined, code: number, text: string, src?: string): number {
    return this.reply(dest, inReplyTo, { type: 'error', code, text }, src);
  }

  /** Write out what is collected now (before an fsync that blocks the event loop). */
  push(): void {
    this.sink.push?.();
  }

  flush(): Promise<void> {
    return this.sink.flush();
  }
}

/**
 * Splits a byte stream into lines (handles partial chunks and CRLF). Empty lines are skipped. A
 * line longer than `maxChars` is never assembled: from the moment it passes the limit its text is
 * dropped as it arrives, an EnvelopeScanner reads whom it came from, and `onLine('', tooLong)`
 * reports it when it ends. Work is linear in the input (no re-scanning of a growing buffer).
 */
export class LineSplitter {
  /** The current line's text so far, in pieces (joined once, when the line ends). */
  private parts: string[] = [];
  private partsLength = 0;
  /** The current line passed the limit: its length so far and the scan of its text. */
  private dropping: { length: number; scanner: EnvelopeScanner } | null = null;

  constructor(
    private readonly onLine: (line: string, tooLong?: TooLongLine) => void,
    private readonly maxChars: number = MAX_LINE_CHARS,
  ) {}

  push(chunk: string): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf('\n', start);
      const end = nl < 0 ? chunk.length : nl;
      if (end > start) this.add(chunk.slice(start, end));
      if (nl < 0) return;
      this.finish();
      start = nl + 1;
    }
  }

  /** End of input: a last line without a newline still counts. */
  end(): void {
    this.finish();
  }

  private add(piece: string): void {
    if (this.dropping) {
      this.dropping.length += piece.length;
      this.dropping.scanner.push(piece);
      return;
    }
    if (this.partsLength + piece.length <= this.maxChars) {
      this.parts.push(piece);
      this.partsLength += piece.length;
      return;
    }
    const scanner = new EnvelopeScanner();
    for (const p of this.parts) scanner.push(p);
    scanner.push(piece);
    this.dropping = { length: this.partsLength + piece.length, scanner };
    this.parts = [];
    this.partsLength = 0;
  }

  private finish(): void {
    if (this.dropping) {
      const d = this.dropping;
      this.dropping = null;
      // A CR before the newline is not part of the line (it was counted; one character).
      this.onLine('', { length: d.length, envelope: d.scanner.result() });
      return;
    }
    if (this.parts.length === 0) return;
    let line = this.parts.length === 1 ? this.parts[0]! : this.parts.join('');
    this.parts = [];
    this.partsLength = 0;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.trim() !== '') this.onLine(line);
  }
}
