/**
 * Linearizability checker for lin-kv histories: a compare-and-set register per key.
 *
 * The search is Wing & Gong's, with the memoisation Lowe added and Porcupine uses: the history of
 * one key becomes a doubly linked list of call and return entries ordered by time; the search
 * walks it, linearizing a call when the model allows it and the pair (set of linearized
 * operations, model state) was not seen before, and backtracking when it meets the return of an
 * operation that is not linearized yet. Keys are independent (P-compositionality), so each key is
 * searched on its own.
 *
 * Indeterminate writes and cas operations have no return entry: they may be linearized at any
 * point after their invocation, or never. The search succeeds once every operation with a known
 * outcome is linearized.
 */
import type { Json } from '../raft/types.js';
import { canonicalJson } from '../kv/keys.js';
import { type HistoryEvent, type Operation, toOperations } from './history.js';

export type Verdict = 'linearizable' | 'not-linearizable' | 'unknown';

export interface CheckOptions {
  /** Total time budget for the whole check in milliseconds (default 30 s). */
  timeBudgetMs?: number;
  /** Shrink a violation to a small set of operations (default true). */
  explain?: boolean;
}

export interface Violation {
  key: Json;
  /** A one-paragraph description for people. */
  message: string;
  /**
   * A small set of operations that cannot be linearized together (indeterminate ones included
   * where they matter). Sorted by invocation time.
   */
  ops: Operation[];
  /** The last operations of the longest linearizable prefix found by the search. */
  prefix: Operation[];
  /** That whole prefix, in its linearization order, as operation ids (`Operation.id`). */
  order: number[];
  /** The register's value after that prefix (`undefined` when the key was absent). */
  stateAfterPrefix?: Json;
  /** The operation that had to take effect next but could not. */
  stuck?: Operation;
}

export interface KeyResult {
  key: Json;
  verdict: Verdict;
  ops: number;
  elapsedMs: number;
  violation?: Violation;
}

export interface CheckResult {
  verdict: Verdict;
  keys: KeyResult[];
  /** Operations checked (after dropping definite failures and indeterminate reads). */
  ops: number;
  dropped: number;
  warnings: string[];
  violations: Violation[];
  elapsedMs: number;
}

// ---------------------------------------------------------------------------------------------
// The model: a register whose state is the canonical JSON text of its value, or '' when absent.

const ABSENT = '';

const enum Kind {
  Read,
  ReadAbsent,
  Write,
  Cas,
  CasAbsent,
  CasMismatch,
}

interface ModelOp {
  kind: Kind;
  /** read: value read; write: value; cas: from. Canonical text. */
  a: string;
  /** cas: to. */
  b: string;
  definite: boolean;
}

function toModelOp(op: Operation): ModelOp {
  const definite = op.outcome !== 'maybe';
  if (op.f === 'read') {
    return { kind: op.outcome === 'absent' ? Kind.ReadAbsent : Kind.Read, a: canonicalJson(op.value), b: '', definite };
  }
  if (op.f === 'write') return { kind: Kind.Write, a: canonicalJson(op.value), b: '', definite };
  const [from, to] = op.value as [Json, Json];
  const kind = op.outcome === 'absent' ? Kind.CasAbsent : op.outcome === 'mismatch' ? Kind.CasMismatch : Kind.Cas;
  return { kind, a: canonicalJson(from), b: canonicalJson(to), definite };
}

/** Returns the next state, or null when the operation cannot take effect in `state`. */
function step(state: string, op: ModelOp): string | null {
  switch (op.kind) {
    case Kind.Read:
      return (state === ABSENT ? op.a === 'null' : state === op.a) ? state : null;
    case Kind.ReadAbsent:
    case Kind.CasAbsent:
      return state === ABSENT ? state : null;
    case Kind.Write:
      return op.a;
    case Kind.Cas:
      return state !== ABSENT && state === op.a ? op.b : null;
    case Kind.CasMismatch:
      return state !== ABSENT && state !== op.a ? state : null;
  }
}

// ---------------------------------------------------------------------------------------------
// The search.

interface Entry {
  op: number; // index into the key's ops; -1 for the head
  isCall: boolean;
  time: number;
  prev: Entry | null;
  next: Entry | null;
  match: Entry | null; // call -> its return (null for indeterminate ops)
}

interface SearchOutcome {
  result: 'ok' | 'fail' | 'timeout';
  /** Longest linearized sequence found (op indices), for explanations. */
  best: number[];
  bestState: string;
  stuck: number;
}

/** Deterministic 32-bit generator for Zobrist hashing of the linearized set. */
function zobrist(n: number): Uint32Array {
  const z = new Uint32Array(2 * n);
  let s = 0x9e3779b9;
  for (let i = 0; i < z.length; i++) {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    z[i] = (t ^ (t >>> 14)) >>> 0;
  }
  return z;
}

function buildList(ops: Operation[]): Entry {
  const entries: Entry[] = [];
  ops.forEach((op, i) => {
    const call: Entry = { op: i, isCall: true, time: op.call, prev: null, next: null, match: null };
    entries.push(call);
    if (op.ret !== Infinity) {
      const ret: Entry = { op: i, isCall: false, time: op.ret, prev: null, next: null, match: null };
      call.match = ret;
      entries.push(ret);
    }
  });
  // By time; at equal times calls first (operations touching at an instant count as concurrent).
  entries.sort((x, y) => x.time - y.time || (x.isCall === y.isCall ? x.op - y.op : x.isCall ? -1 : 1));
  const head: Entry = { op: -1, isCall: false, time: -Infinity, prev: null, next: null, match: null };
  let prev = head;
  for (const e of entries) {
    prev.next = e;
    e.prev = prev;
    prev = e;
  }
  return head;
}

function lift(e: Entry): void {
  e.prev!.next = e.next;
  if (e.next) e.next.prev = e.prev;
  const m = e.match;
  if (m) {
    m.prev!.next = m.next;
    if (m.next) m.next.prev = m.prev;
  }
}

function unlift(e: Entry): void {
  const m = e.match;
  if (m) {
    m.prev!.next = m;
    if (m.next) m.next.prev = m;
  }
  e.prev!.next = e;
  if (e.next) e.next.prev = e;
}

function search(ops: Operation[], deadline: number, trackBest: boolean): SearchOutcome {
  const n = ops.length;
  const model = ops.map(toModelOp);
  let remaining = 0;
  for (const m of model) if (m.definite) remaining++;
  const head = buildList(ops);
  const words = (n + 31) >>> 5;
  const bits = new Uint32Array(words);
  const z = zobrist(n);
  let h1 = 0;
  let h2 = 0;
  // Interned states, so that the cache key is a number.
  const stateIds = new Map<string, number>([[ABSENT, 0]]);
  const cache = new Map<number, Array<{ sid: number; bits: Uint32Array }>>();
  const stackEntry: Entry[] = [];
  const stackState: string[] = [];
  let state = ABSENT;
  let best: number[] = [];
  let bestState = ABSENT;
  let stuck = -1;
  let iter = 0;

  const remember = (sid: number, hh1: number, hh2: number, b: Uint32Array): boolean => {
    const k = ((hh1 ^ Math.imul(sid, 0x9e3779b1)) >>> 0) * 2097152 + (hh2 & 0x1fffff);
    let bucket = cache.get(k);
    if (bucket) {
      outer: for (const c of bucket) {
        if (c.sid !== sid) continue;
        for (let w = 0; w < words; w++) if (c.bits[w] !== b[w]) continue outer;
        return false;
      }
    } else {
      bucket = [];
      cache.set(k, bucket);
    }
    bucket.push({ sid, bits: b.slice() });
    return true;
  };

  let entry = head.next;
  while (remaining > 0) {
    if ((++iter & 4095) === 0 && Date.now() > deadline) {
      return { result: 'timeout', best, bestState, stuck };
    }
    if (entry !== null && entry.isCall) {
      const i = entry.op;
      const next = step(state, model[i]!);
      if (next !== null) {
        let sid = stateIds.get(next);
        if (sid === undefined) {
          sid = stateIds.size;
          stateIds.set(next, sid);
        }
        bits[i >>> 5] |= 1 << (i & 31);
        const n1 = h1 ^ z[2 * i]!;
        const n2 = h2 ^ z[2 * i + 1]!;
        if (remember(sid, n1, n2, bits)) {
          h1 = n1;
          h2 = n2;
          stackEntry.push(entry);
          stackState.push(state);
          state = next;
          if (model[i]!.definite) remaining--;
          lift(entry);
          if (trackBest && stackEntry.length > best.length) {
            best = stackEntry.map((e) => e.op);
            bestState = state;
            stuck = -1;
          }
          entry = head.next;
          continue;
        }
        bits[i >>> 5] &= ~(1 << (i & 31));
      }
      entry = entry.next;
      continue;
    }
    // A return entry of an operation not yet linearized (or the end of the list): backtrack.
    if (trackBest && stuck === -1 && entry !== null && stackEntry.length === best.length) stuck = entry.op;
    if (stackEntry.length === 0) return { result: 'fail', best, bestState, stuck };
    const top = stackEntry.pop()!;
    state = stackState.pop()!;
    const i = top.op;
    bits[i >>> 5] &= ~(1 << (i & 31));
    h1 ^= z[2 * i]!;
    h2 ^= z[2 * i + 1]!;
    if (model[i]!.definite) remaining++;
    unlift(top);
    entry = top.next;
  }
  return { result: 'ok', best, bestState, stuck };
}

// ---------------------------------------------------------------------------------------------
// Explanations.

function stateValue(s: string): Json | undefined {
  return s === ABSENT ? undefined : (JSON.parse(s) as Json);
}

export function describeOp(op: Operation): string {
  const v = JSON.stringify(op.value);
  const t = `[${fmtTime(op.call)}, ${op.ret === Infinity ? '?' : fmtTime(op.ret)}]`;
  const who = `p${String(op.process)}`;
  switch (op.outcome) {
    case 'ok':
      return op.f === 'cas'
        ? `${who} cas ${v} ok ${t}`
        : op.f === 'read'
          ? `${who} read -> ${v} ${t}`
          : `${who} write ${v} ok ${t}`;
    case 'absent':
      return `${who} ${op.f}${op.f === 'cas' ? ' ' + v : ''} failed: key absent (20) ${t}`;
    case 'mismatch':
      return `${who} cas ${v} failed: value differs (22) ${t}`;
    case 'maybe':
      return `${who} ${op.f} ${v} indeterminate ${t}`;
  }
}

function fmtTime(t: number): string {
  return Number.isInteger(t) ? String(t) : t.toFixed(3);
}

/**
 * Removes indeterminate writes and cas operations that can make no difference: those writing a
 * value that no remaining operation observes (a read of it, or a cas expecting it), when no
 * failed-with-22 cas is present. Such an operation could always be left out of a linearization
 * without changing what any other operation sees, so the verdict is the same without it; leaving
 * it in would only multiply the search space.
 */
export function pruneUnobserved(ops: Operation[]): Operation[] {
  if (ops.some((o) => o.outcome === 'mismatch')) return ops;
  let cur = ops;
  for (;;) {
    const observed = new Set<string>();
    for (const o of cur) {
      if (o.f === 'read' && o.outcome === 'ok') observed.add(canonicalJson(o.value));
      else if (o.f === 'cas' && (o.outcome === 'ok' || o.outcome === 'maybe')) observed.add(canonicalJson((o.value as Json[])[0]!));
    }
    const next = cur.filter((o) => {
      if (o.outcome !== 'maybe') return true;
      const w = o.f === 'write' ? o.value : (o.value as Json[])[1]!;
      return observed.has(canonicalJson(w));
    });
    if (next.length === cur.length) return cur;
    cur = next;
  }
}

const isObservation = (op: Operation): boolean =>
  op.f === 'read' || op.outcome === 'absent' || op.outcome === 'mismatch';

/**
 * Shrinks a non-linearizable history of one key to a small witness, by relaxations only: dropping
 * observations (reads, failed cas) and turning acknowledged writes and cas into indeterminate ones.
 * A linearizable history stays linearizable under a relaxation, so whatever is left still proves
 * the original is not linearizable. Observations go first, in halving chunks (cheap: no new
 * indeterminate operations); then writes one at a time, each check with a short budget because
 * indeterminate operations widen the search.
 */
function shrink(ops: Operation[], deadline: number): Operation[] {
  let cur = ops.slice();
  const fails = (cand: Operation[], budgetMs: number): boolean =>
    search(pruneUnobserved(cand), Math.min(deadline, Date.now() + budgetMs), false).result === 'fail';
  // Phase 1: drop observations.
  let obs = cur.filter(isObservation).map((o) => o.id);
  for (let chunk = Math.max(1, Math.ceil(obs.length / 2)); chunk >= 1 && Date.now() < deadline; chunk = Math.floor(chunk / 2)) {
    for (let i = obs.length - chunk; i > -chunk && Date.now() < deadline; i -= chunk) {
      const drop = new Set(obs.slice(Math.max(0, i), i + chunk));
      if (drop.size === 0) continue;
      const cand = cur.filter((o) => !drop.has(o.id));
      if (fails(cand, 200)) {
        cur = cand;
        obs = obs.filter((id) => !drop.has(id));
      }
    }
    if (chunk === 1) break;
  }
  // Phase 2: relax acknowledged writes and cas, latest first.
  for (let idx = cur.length - 1; idx >= 0 && Date.now() < deadline; idx--) {
    const op = cur[idx];
    if (!op || isObservation(op) || op.outcome !== 'ok') continue;
    const cand = cur.map((o, j) => (j === idx ? { ...o, outcome: 'maybe' as const, ret: Infinity } : o));
    if (fails(cand, 30)) cur = pruneUnobserved(cand);
  }
  // Report the definite operations, and indeterminate ones that write a value somebody observed.
  const seen = new Set<string>();
  for (const o of cur) {
    if (o.outcome === 'maybe') continue;
    if (o.f === 'read') seen.add(canonicalJson(o.value));
    if (o.f === 'cas') seen.add(canonicalJson((o.value as Json[])[0]!));
  }
  const byId = new Map(ops.map((o) => [o.id, o]));
  return cur
    .filter((o) => {
      if (o.outcome !== 'maybe') return true;
      const w = o.f === 'write' ? o.value : (o.value as Json[])[1]!;
      return seen.has(canonicalJson(w));
    })
    .map((o) => byId.get(o.id)!) // report the original operations, not their relaxations
    .sort((a, b) => a.call - b.call);
}

function explain(key: Json, ops: Operation[], out: SearchOutcome, deadline: number, doShrink: boolean): Violation {
  const prefix = out.best.slice(-8).map((i) => ops[i]!);
  const stuck = out.stuck >= 0 ? ops[out.stuck] : undefined;
  let involved: Operation[];
  if (doShrink && ops.length <= 2000) {
    involved = shrink(ops, Math.min(deadline, Date.now() + 1500));
  } else {
    involved = stuck ? ops.filter((o) => o.call <= stuck.ret && o.ret >= stuck.call) : [];
  }
  const sv = stateValue(out.bestState);
  const lines = [
    `key ${JSON.stringify(key)}: no linearization of its ${ops.length} operations exists.`,
    `These ${involved.length} operations cannot all be ordered consistently with their real-time order:`,
    ...involved.slice(0, 40).map((o) => '  ' + describeOp(o)),
    ...(involved.length > 40 ? [`  ... and ${involved.length - 40} more`] : []),
  ];
  if (stuck) {
    lines.push(
      `The longest consistent order found covers ${out.best.length} operations and leaves the register ` +
        `${sv === undefined ? 'absent' : '= ' + JSON.stringify(sv)}; then ${describeOp(stuck)} must take effect and cannot.`,
    );
  }
  return {
    key,
    message: lines.join('\n'),
    ops: involved,
    prefix,
    order: out.best.map((i) => ops[i]!.id),
    ...(sv !== undefined ? { stateAfterPrefix: sv } : {}),
    ...(stuck ? { stuck } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Entry points.

export function checkOperations(all: Operation[], opts: CheckOptions = {}, dropped = 0, warnings: string[] = []): CheckResult {
  const start = Date.now();
  const deadline = start + (opts.timeBudgetMs ?? 30_000);
  const groups = new Map<string, { key: Json; ops: Operation[] }>();
  for (const op of all) {
    const k = canonicalJson(op.key);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { key: op.key, ops: [] }));
    g.ops.push(op);
  }
  for (const g of groups.values()) g.ops = pruneUnobserved(g.ops);
  // Small keys first, so a budget spent on one hard key still leaves verdicts for the others.
  const ordered = [...groups.values()].sort((a, b) => a.ops.length - b.ops.length);
  const keys: KeyResult[] = [];
  const violations: Violation[] = [];
  for (const g of ordered) {
    const t0 = Date.now();
    const out = search(g.ops, deadline, true);
    const kr: KeyResult = {
      key: g.key,
      verdict: out.result === 'ok' ? 'linearizable' : out.result === 'fail' ? 'not-linearizable' : 'unknown',
      ops: g.ops.length,
      elapsedMs: 0,
    };
    if (out.result === 'fail') {
      kr.violation = explain(g.key, g.ops, out, deadline + 5000, opts.explain !== false);
      violations.push(kr.violation);
    }
    kr.elapsedMs = Date.now() - t0;
    keys.push(kr);
  }
  keys.sort((a, b) => compareKeys(a.key, b.key));
  const verdict: Verdict = keys.some((k) => k.verdict === 'not-linearizable')
    ? 'not-linearizable'
    : keys.some((k) => k.verdict === 'unknown')
      ? 'unknown'
      : 'linearizable';
  return { verdict, keys, ops: all.length, dropped, warnings, violations, elapsedMs: Date.now() - start };
}

function compareKeys(a: Json, b: Json): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  const x = canonicalJson(a);
  const y = canonicalJson(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Checks a history of events (see history.ts for the format). */
export function checkHistory(events: HistoryEvent[], opts: CheckOptions = {}): CheckResult {
  const parsed = toOperations(events);
  return checkOperations(parsed.ops, opts, parsed.dropped, parsed.warnings);
}
