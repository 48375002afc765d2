/**
 * Client histories of the lin-kv workload, and their conversion to operations.
 *
 * History format (one JSON object per line in `history.jsonl`, Jepsen-like):
 *
 *   {"type":"invoke","process":3,"f":"write","key":2,"value":4,"time":1532.271}
 *   {"type":"ok",    "process":3,"f":"write","key":2,"value":4,"time":1535.002,"node":"n2"}
 *   {"type":"invoke","process":1,"f":"cas","key":0,"value":[1,2],"time":1540.1}
 *   {"type":"fail",  "process":1,"f":"cas","key":0,"value":[1,2],"time":1541.9,"code":22}
 *   {"type":"invoke","process":0,"f":"read","key":0,"value":null,"time":1550}
 *   {"type":"ok",    "process":0,"f":"read","key":0,"value":3,"time":1552.5}
 *   {"type":"info",  "process":4,"f":"write","key":1,"value":0,"time":2550,"code":0,"error":"timeout"}
 *
 * - `type`: `invoke` when a client sends a request; then exactly one of `ok` (it took effect and
 *   the reply is known), `fail` (a definite error: it did not take effect, or for cas codes 20/22
 *   it observed the register absent / different from `from`) or `info` (indeterminate: timeout,
 *   error codes 0, 13, >= 1000, or unknown). An `invoke` without a completion is indeterminate.
 * - `process`: a number or string; one process has at most one operation outstanding. After an
 *   `info` a client continues as a new process (Jepsen's convention), but the checker also accepts
 *   an `invoke` that implicitly abandons the previous one.
 * - `f`: `read` | `write` | `cas`; `key`: any JSON value (compared by canonical JSON text).
 * - `value`: for `read` the value read on `ok` (`null` for a never-written key; `null` on invoke);
 *   for `write` the value written; for `cas` the pair `[from, to]`.
 * - `time`: a monotonic number (the cluster runner writes milliseconds since the run started, with
 *   a fractional part). Only the order of times matters. At equal times, invocations are treated as
 *   coming before completions (the permissive choice).
 * - `code` / `error`: the Maelstrom error code and text on `fail` / `info`. Other fields (such as
 *   `node`, the node the client talked to) are ignored by the checker.
 */
import type { Json } from '../raft/types.js';

export type OpFn = 'read' | 'write' | 'cas';
export type EventType = 'invoke' | 'ok' | 'fail' | 'info';

export interface HistoryEvent {
  type: EventType;
  process: number | string;
  f: OpFn;
  key: Json;
  value: Json;
  time: number;
  code?: number;
  error?: string;
  [extra: string]: unknown;
}

/** Maelstrom error codes that mean "this operation definitely did not take effect". */
export const DEFINITE_ERROR_CODES: ReadonlySet<number> = new Set([1, 10, 11, 12, 14, 20, 21, 22, 30]);

/** True when an error with this code leaves the outcome of the request unknown. */
export function isIndefiniteCode(code: number | undefined): boolean {
  if (code === undefined) return true;
  return !DEFINITE_ERROR_CODES.has(code);
}

/**
 * How an operation must be checked:
 * - `ok`: it happened, with the given output (read value / write / successful cas);
 * - `absent`: a definite observation that the key had no value (cas or read failing with 20);
 * - `mismatch`: a definite observation that the key held a value different from `from` (cas 22);
 * - `maybe`: indeterminate write or cas, may take effect at any time after invocation, or never.
 */
export type OpOutcome = 'ok' | 'absent' | 'mismatch' | 'maybe';

export interface Operation {
  /** Position in the list of operations of the whole history (stable, for reporting). */
  id: number;
  process: number | string;
  f: OpFn;
  key: Json;
  /** For write: the value; for cas: [from, to]; for read: the value read. */
  value: Json;
  outcome: OpOutcome;
  call: number;
  /** Completion time; `Infinity` for indeterminate operations. */
  ret: number;
  code?: number;
}

export interface ParsedHistory {
  ops: Operation[];
  /** Operations left out of the check: definite failures and indeterminate reads. */
  dropped: number;
  /** Problems found while pairing events (completion with no invocation, ...). */
  warnings: string[];
}

/** Parses a JSON-lines history file's text into events. Blank lines are skipped. */
export function parseHistoryText(text: string): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let ev: unknown;
    try {
      ev = JSON.parse(line);
    } catch {
      throw new Error(`history line ${i + 1}: not JSON`);
    }
    events.push(validateEvent(ev, i + 1));
  }
  return events;
}

function validateEvent(ev: unknown, line: number): HistoryEvent {
  if (typeof ev !== 'object' || ev === null || Array.isArray(ev)) {
    throw new Error(`history line ${line}: not an object`);
  }
  const e = ev as Record<string, unknown>;
  if (!['invoke', 'ok', 'fail', 'info'].includes(e.type as string)) {
    throw new Error(`history line ${line}: bad type ${JSON.stringify(e.type)}`);
  }
  if (!['read', 'write', 'cas'].includes(e.f as string)) {
    throw new Error(`history line ${line}: bad f ${JSON.stringify(e.f)}`);
  }
  if (typeof e.time !== 'number' || Number.isNaN(e.time)) {
    throw new Error(`history line ${line}: time must be a number`);
  }
  if (typeof e.process !== 'number' && typeof e.process !== 'string') {
    throw new Error(`history line ${line}: process must be a number or string`);
  }
  if (!('key' in e)) throw new Error(`history line ${line}: no key`);
  if (e.value === undefined) e.value = null;
  return e as unknown as HistoryEvent;
}

/**
 * Pairs invocations with completions and classifies each operation. Events need not be sorted:
 * they are ordered by time (stable).
 */
export function toOperations(events: HistoryEvent[]): ParsedHistory {
  const sorted = events.map((e, i) => ({ e, i })).sort((a, b) => a.e.time - b.e.time || a.i - b.i);
  const pending = new Map<string, HistoryEvent>();
  const ops: Operation[] = [];
  const warnings: string[] = [];
  let dropped = 0;

  const finish = (inv: HistoryEvent, done: HistoryEvent | null): void => {
    const code = done?.code;
    // A `fail` carrying an indefinite code (0, 13, >= 1000, unknown) is really an `info`.
    const type = !done ? 'info' : done.type === 'fail' && code !== undefined && isIndefiniteCode(code) ? 'info' : done.type;
    let outcome: OpOutcome | null;
    let value: Json = inv.value ?? null;
    if (type === 'ok') {
      outcome = 'ok';
      if (inv.f === 'read') value = done!.value ?? null;
    } else if (type === 'fail') {
      if (code === 20 && (inv.f === 'cas' || inv.f === 'read')) outcome = 'absent';
      else if (code === 22 && inv.f === 'cas') outcome = 'mismatch';
      else outcome = null; // did not happen
    } else {
      outcome = inv.f === 'read' ? null : 'maybe';
    }
    if (inv.f === 'cas' && outcome !== null && !(Array.isArray(value) && value.length === 2)) {
      warnings.push(`cas by process ${String(inv.process)} at ${inv.time}: value is not [from, to]`);
      outcome = null;
    }
    if (outcome === null) {
      dropped++;
      return;
    }
    ops.push({
      id: ops.length,
      process: inv.process,
      f: inv.f,
      key: inv.key,
      value,
      outcome,
      call: inv.time,
      ret: outcome === 'maybe' ? Infinity : done!.time,
      ...(code !== undefined ? { code } : {}),
    });
  };

  for (const { e } of sorted) {
    const p = typeof e.process + ':' + String(e.process);
    if (e.type === 'invoke') {
      const prev = pending.get(p);
      if (prev) finish(prev, null);
      pending.set(p, e);
    } else {
      const inv = pending.get(p);
      if (!inv) {
        warnings.push(`${e.type} of process ${String(e.process)} at ${e.time} has no invocation`);
        continue;
      }
      pending.delete(p);
      finish(inv, e);
    }
  }
  for (const inv of pending.values()) finish(inv, null);
  return { ops, dropped, warnings };
}
