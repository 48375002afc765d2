/**
 * Limits on what the node accepts from the wire (docs/SERVE.md, "Limits on input"), checked when a
 * line is parsed, before anything enters the log:
 *
 * - a line is at most MAX_LINE_CHARS characters; a longer one is never assembled in memory (the
 *   line splitter scans it with EnvelopeScanner as it streams past, to find whom to answer);
 * - a message nests at most MAX_MESSAGE_DEPTH arrays/objects, and every number in it is finite
 *   (JSON.parse turns `1e400` into Infinity, which JSON cannot carry back);
 * - the key and values of a client request (read / write / cas, and the request a raft_forward
 *   carries) nest at most MAX_VALUE_DEPTH levels and take at most MAX_VALUE_CHARS characters as
 *   the node writes them to its log.
 *
 * The two depths differ on purpose: a client value travels inside node-to-node messages
 * (raft_append_entries wraps it 5 levels deeper, raft_forward_reply 4), and every message the node
 * sends must be one that its peers accept. The same goes for size: 256 entries per append
 * (--max-append-entries) of at most 64 KiB each stay well under the line limit.
 */

// The numbers live in src/limits.ts, shared with the file decoders of the storage library.
import { MAX_LINE_CHARS, MAX_MESSAGE_DEPTH, MAX_VALUE_CHARS, MAX_VALUE_DEPTH, VALUE_FIELDS } from '../limits.js';
export { MAX_LINE_CHARS, MAX_MESSAGE_DEPTH, MAX_VALUE_CHARS, MAX_VALUE_DEPTH };

/**
 * The first reason `v` (a parsed JSON value) is not acceptable: nested deeper than `maxDepth`, or a
 * number that is not finite. Iterative (an explicit stack): a value nested 100,000 levels deep is
 * refused after looking at `maxDepth` of them, without recursion.
 */
export function valueProblem(v: unknown, maxDepth: number): string | null {
  const stack: Array<{ v: unknown; depth: number }> = [{ v, depth: 0 }];
  while (stack.length > 0) {
    const { v: x, depth } = stack.pop()!;
    if (typeof x === 'number') {
      if (!Number.isFinite(x)) return `a number is out of range (it parses as ${String(x)}, which JSON cannot represent)`;
      continue;
    }
    if (x === null || typeof x !== 'object') continue;
    const d = depth + 1;
    if (d > maxDepth) return `nested more than ${maxDepth} levels deep`;
    if (Array.isArray(x)) {
      for (const e of x) if (e !== null && typeof e === 'object') stack.push({ v: e, depth: d });
      else if (typeof e === 'number' && !Number.isFinite(e)) return `a number is out of range (it parses as ${String(e)}, which JSON cannot represent)`;
    } else {
      for (const k in x) {
        const e = (x as Record<string, unknown>)[k];
        if (e !== null && typeof e === 'object') stack.push({ v: e, depth: d });
        else if (typeof e === 'number' && !Number.isFinite(e)) return `a number is out of range (it parses as ${String(e)}, which JSON cannot represent)`;
      }
    }
  }
  return null;
}

/**
 * Whether the JSON text `text` nests arrays/objects deeper than `max`, read from the text itself
 * (strings skipped), so that a deep value is refused before JSON.parse builds it. For long lines:
 * parsing 100,000 nested arrays only to refuse them costs megabytes of garbage each.
 */
export function textNestsDeeper(text: string, max: number): boolean {
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}


/** A UTF-16 surrogate not part of a pair (in `u` mode a pair is one code point, not a surrogate). */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Whether a string in `v` (a value already checked by valueProblem: bounded depth), or an object
 * key, holds a lone surrogate. JSON's \uD800 escapes can make one, but it is not Unicode: the
 * log's and the snapshots' encoding (CBOR text, UTF-8) cannot hold it and would give back U+FFFD,
 * silently changing an acknowledged value after a restart. So it is refused before it is logged.
 */
export function hasLoneSurrogate(v: unknown): boolean {
  const stack: unknown[] = [v];
  while (stack.length > 0) {
    const x = stack.pop();
    if (typeof x === 'string') {
      if (LONE_SURROGATE.test(x)) return true;
    } else if (Array.isArray(x)) {
      for (const e of x) stack.push(e);
    } else if (x !== null && typeof x === 'object') {
      for (const k in x) {
        if (LONE_SURROGATE.test(k)) return true;
        stack.push((x as Record<string, unknown>)[k]);
      }
    }
  }
  return false;
}

/**
 * The first reason the keys and values of a client request `req` (a read/write/cas body, or the
 * request of a raft_forward) exceed MAX_VALUE_DEPTH or MAX_VALUE_CHARS, or hold a string that is
 * not Unicode (a lone surrogate); null when they fit.
 */
export function clientValueProblem(req: Record<string, unknown>): string | null {
  let chars = 0;
  for (const f of VALUE_FIELDS) {
    if (!(f in req)) continue;
    const v = req[f];
    const p = valueProblem(v, MAX_VALUE_DEPTH);
    if (p) return `"${f}": ${p}`;
    if (hasLoneSurrogate(v)) return `"${f}": a string holds a lone UTF-16 surrogate (not Unicode: the log could not store it exactly)`;
    chars += JSON.stringify(v ?? null).length;
    if (chars > MAX_VALUE_CHARS) return `key and values take more than ${MAX_VALUE_CHARS} characters as JSON`;
  }
  return null;
}

/** What EnvelopeScanner found: the envelope's `src` and `dest`, and the body's `msg_id` and `type`. */
export interface EnvelopeFields {
  src?: string;
  dest?: string;
  msgId?: number;
  type?: string;
  /** The body has `in_reply_to` or is an `error`: a reply, never to be answered. */
  reply: boolean;
}

/** Longest string or literal the scanner keeps (a key, an id, a type): longer ones are skipped. */
const MAX_TOKEN = 256;

/**
 * Reads the envelope of a JSON line as it streams past, in constant memory: the top-level `src`
 * and `dest` strings and the `msg_id`, `type` and `in_reply_to` directly inside the top-level
 * `body` object, wherever they are in the line (Maelstrom's clients write `msg_id` after the
 * value). Structure-aware (strings, escapes, nesting), so a `msg_id` nested in a value is not
 * mistaken for the body's. Used for lines too long to hold, so that they can still be answered.
 */
export class EnvelopeScanner {
  /** Open containers; only the kinds of the first three are kept. */
  private depth = 0;
  private kinds: Array<'{' | '['> = [];
  /** Per level 1..2: the key whose value comes next (null: expecting a key). */
  private keys: Array<string | null> = [null, null, null];
  private expectKey: boolean[] = [false, false, false];
  /** Level 2 is the top-level "body" object. */
  private inBody = false;
  private notObject = false;
  // Token state.
  private inString = false;
  private escape = false;
  private token: string | null = null; // kept text of the current string/literal, when wanted
  private tokenIsKey = false;
  private inLiteral = false;
  private found: EnvelopeFields = { reply: false };

  push(chunk: string): this {
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (this.inString) {
        if (this.escape) this.escape = false;
        else if (c === 0x5c /* \ */) this.escape = true;
        else if (c === 0x22 /* " */) {
          this.inString = false;
          this.endString();
          continue;
        }
        if (this.token !== null) {
          if (this.token.length < MAX_TOKEN) this.token += chunk[i];
          else this.token = null;
        }
        continue;
      }
      if (this.inLiteral) {
        if (c === 0x2c || c === 0x7d || c === 0x5d || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
          this.inLiteral = false;
          this.endLiteral();
        } else {
          if (this.token !== null) {
            if (this.token.length < MAX_TOKEN) this.token += chunk[i];
            else this.token = null;
          }
          continue;
        }
      }
      switch (c) {
        case 0x7b: // {
        case 0x5b: {
          // [
          if (this.depth === 0 && c !== 0x7b) this.notObject = true;
          const key = this.depth >= 1 && this.depth <= 2 ? this.keys[this.depth] : null;
          if (this.depth === 1 && key === 'body' && c === 0x7b && this.kinds[0] === '{') this.inBody = true;
          this.depth++;
          if (this.depth <= 3) this.kinds[this.depth - 1] = c === 0x7b ? '{' : '[';
          if (this.depth <= 2) {
            this.expectKey[this.depth] = c === 0x7b;
            this.keys[this.depth] = null;
          }
          break;
        }
        case 0x7d: // }
        case 0x5d: // ]
          if (this.depth === 2) this.inBody = false;
          if (this.depth > 0) this.depth--;
          break;
        case 0x2c: // ,
          if (this.depth >= 1 && this.depth <= 2 && this.kinds[this.depth - 1] === '{') {
            this.expectKey[this.depth] = true;
            this.keys[this.depth] = null;
          }
          break;
        case 0x3a: // :
        case 0x20:
        case 0x0a:
        case 0x0d:
        case 0x09:
          break;
        case 0x22: // "
          if (this.depth === 0) this.notObject = true;
          this.inString = true;
          this.tokenIsKey = this.depth >= 1 && this.depth <= 2 && this.expectKey[this.depth] === true;
          this.token = this.tokenIsKey || this.wanted() ? '' : null;
          break;
        default:
          if (this.depth === 0) this.notObject = true;
          this.inLiteral = true;
          this.token = this.wanted() ? chunk[i]! : null;
      }
    }
    return this;
  }

  /** The fields found so far (call once the line has ended). */
  result(): EnvelopeFields {
    if (this.inLiteral) {
      this.inLiteral = false;
      this.endLiteral();
    }
    return this.notObject ? { reply: false } : { ...this.found };
  }

  /** Whether the value starting now is one of the fields looked for. */
  private wanted(): boolean {
    if (this.depth === 1 && this.kinds[0] === '{') return this.keys[1] === 'src' || this.keys[1] === 'dest';
    if (this.depth === 2 && this.inBody) return this.keys[2] === 'msg_id' || this.keys[2] === 'type' || this.keys[2] === 'in_reply_to';
    return false;
  }

  private endString(): void {
    const raw = this.token;
    this.token = null;
    if (this.tokenIsKey) {
      this.tokenIsKey = false;
      const key = raw === null ? '' : decodeJsonString(raw);
      this.keys[this.depth] = key;
      this.expectKey[this.depth] = false;
      if (this.depth === 2 && this.inBody && key === 'in_reply_to') this.found.reply = true;
      return;
    }
    if (raw === null) return;
    const s = decodeJsonString(raw);
    if (s === null) return;
    if (this.depth === 1) {
      if (this.keys[1] === 'src') this.found.src = s;
      else if (this.keys[1] === 'dest') this.found.dest = s;
    } else if (this.depth === 2 && this.keys[2] === 'type') {
      this.found.type = s;
      if (s === 'error') this.found.reply = true;
    }
  }

  private endLiteral(): void {
    const raw = this.token;
    this.token = null;
    if (raw === null || this.depth !== 2 || !this.inBody || this.keys[2] !== 'msg_id') return;
    const n = /^-?\d+$/.test(raw) ? Number(raw) : NaN;
    if (Number.isSafeInteger(n)) this.found.msgId = n;
  }
}

function decodeJsonString(raw: string): string | null {
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch {
    return null;
  }
}
