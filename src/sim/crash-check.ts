/**
 * Crash consistency, ALICE-style (docs/SIMULATION.md, "Crash consistency: every crash state").
 *
 * One node (a single-node cluster: the real RaftServer over the real DiskStorage over SimFs) runs
 * a fixed small workload of client writes and cas operations, sent one at a time, with a tiny
 * snapshot threshold, tiny WAL segments and a small retain, so that it goes through the first
 * start (directory, lock, meta.json), WAL appends, segment rotation, snapshot saves (temp, fsync,
 * rename, directory fsync), snapshot markers, compaction, segment deletion and snapshot pruning.
 *
 * Before every mutating file-system call (and after the last one) the check asks SimFs for every
 * state a crash at that point can leave (`crashStates`: prefixes of each file's unsynced writes,
 * the last kept sector possibly garbled, and prefixes of each directory's pending operations) and
 * notes which operations had been sent and acknowledged then. Every distinct state is then
 * recovered by a fresh RaftServer (a new process: another lock pid, or the same one), which must
 *  - start (answer `init`): a crash must never leave a directory no restart accepts;
 *  - hold a state the history allows: the state after some prefix of the operations that contains
 *    every acknowledged one and nothing not yet sent (ops are sequential, so this is exactly
 *    "acknowledged writes present, in-flight ones present or not, cas semantics respected");
 *  - accept a new write, and (with `recheck`) still hold it and the same state after a second,
 *    clean crash (what recovery repaired must itself be durable).
 */
import { createHash } from 'node:crypto';
import type { FileSystem } from '../storage/fs.js';
import { FIRST_PID, INIT, host, makeWorkload, opBody, recoverState, serveOptions, specStates, type Recovered, type RecoverSetup } from './crash-check-node.js';
import { Random } from './random.js';
import { SimFs, type TraceEntry } from './sim-fs.js';

export { makeWorkload, type Op } from './crash-check-node.js';

export interface CrashCheckOptions {
  /** Client operations in the workload (default 16). */
  ops?: number;
  /** Keys they touch (default 3). */
  keys?: number;
  /** Seed of the workload and of the state sampling (default 1). */
  seed?: number;
  /** Characters of each written value (default 400: WAL writes and snapshot files then span sectors). */
  valueChars?: number;
  snapshotThreshold?: number;
  trailingLogs?: number;
  retain?: number;
  segmentBytes?: number;
  /** Crash states per crash point at most (SimFs `crashStates` limit; default 200, then sampled). */
  statesPerPoint?: number;
  cuts?: 'representative' | 'every-sector';
  garbage?: 'zeros' | 'random' | 'none';
  /** Lock pid of the restarted process: 'new' (another pid, default) or 'same' (pid 1 in a container, restarted). */
  restartPid?: 'new' | 'same';
  /** After the new write, crash (clean) and recover once more (default true). */
  recheck?: boolean;
  /**
   * Also crash the restart during its recovery (lock takeover, leftovers removed, torn tail cut,
   * meta.json updated: every mutating call until it answers init), in every crash state, and
   * recover that again: it must satisfy the same crash point's history (default false).
   */
  recoveryCrashes?: boolean;
  /**
   * Test-only: the FileSystem the node's storage gets, wrapping the SimFs (the crash states are
   * still the SimFs's). Lets a test leave out an fsync and see the check fail.
   */
  fsWrapper?: (fs: SimFs) => FileSystem;
  /** Called after each recovered state. */
  onProgress?: (done: number, total: number) => void;
}

export type FailureKind = 'restart-refused' | 'acked-write-lost' | 'state-not-allowed' | 'new-write-refused' | 'recheck-failed';

export interface CrashFailure {
  kind: FailureKind;
  /** The crash point: the state after mutating call `k` (0: before any). */
  k: number;
  /** The call done last and the call the crash prevented (null at the ends). */
  after: string | null;
  before: string | null;
  /** What the crash state kept (SimFs label). */
  label: string;
  /** Operations acknowledged and sent at the crash point. */
  acked: number;
  sent: number;
  /** For a crash during the restart's recovery: where in it, and what that crash kept. */
  duringRecovery: string | null;
  detail: string;
}

export interface CrashCheckReport {
  /** Mutating file-system calls of the workload run. */
  calls: number;
  /** Crash points (calls + 1: before the first call, after each). */
  crashPoints: number;
  /** Crash states explored: the sum over crash points. */
  crashStates: number;
  /** States enumerated before sampling (equals crashStates unless some point was sampled). */
  enumerated: number;
  /** Crash points whose states were a sample. */
  sampledPoints: number;
  /** Distinct states (by their files' bytes), each recovered once. */
  distinctStates: number;
  /** Operations sent and acknowledged by the workload. */
  ops: number;
  acked: number;
  /** What the workload's calls went through (names of milestones -> call count). */
  coverage: Record<string, number>;
  /** Recovery warnings by kind over the distinct states (e.g. torn tails cut). */
  recoveryWarnings: Record<string, number>;
  /** Every failing (crash point, state) pair, grouped: kind + message -> count, and the first example. */
  failures: Array<{ key: string; count: number; example: CrashFailure }>;
  failedPairs: number;
  /** With `recoveryCrashes`: crash points inside the restarts' recoveries, their crash states, and the distinct ones recovered again. */
  recoveryCrashPoints: number;
  recoveryCrashStates: number;
  recoveryDistinctStates: number;
  ms: number;
}

/**
 * A state's identity: every path with its bytes. Two crash states with the same digest recover
 * alike (recovery reads names and bytes only; it never writes through a second hard link), so each
 * is recovered once and judged against every crash point it occurs at.
 */
function stateDigest(fs: SimFs): string {
  const h = createHash('sha1');
  const d = fs.dump();
  for (const p of [...d.keys()].sort()) {
    const b = d.get(p)!;
    h.update(`${p}\0${b === null ? 'd' : `f${b.length}`}\0`);
    if (b !== null) h.update(b);
  }
  return h.digest('hex');
}

function describeCall(t: TraceEntry | undefined): string | null {
  if (t === undefined) return null;
  const extra = t.to !== undefined ? ` -> ${t.to}` : t.kind === 'write' ? ` (${t.bytes} bytes)` : t.flags !== undefined ? ` (${t.flags})` : '';
  return `#${t.n} ${t.kind} ${t.path}${extra}`;
}

/** Milestones of the workload, from its trace: what the check must have crashed in the middle of. */
function coverageOf(trace: readonly TraceEntry[]): Record<string, number> {
  const c: Record<string, number> = {};
  const add = (name: string, yes: boolean): void => {
    if (yes) c[name] = (c[name] ?? 0) + 1;
  };
  for (const t of trace) {
    add('mkdir', t.kind === 'mkdir');
    add('lock link', t.kind === 'link' && t.to?.endsWith('/LOCK') === true);
    add('meta.json rename', t.kind === 'rename' && t.to?.endsWith('/meta.json') === true);
    add('WAL segment create', t.kind === 'open' && t.path.endsWith('.wal') && t.flags !== 'r+');
    add('WAL write', t.kind === 'write' && t.path.endsWith('.wal'));
    add('WAL fsync', t.kind === 'fsync' && t.path.endsWith('.wal'));
    add('snapshot temp write', t.kind === 'write' && /\.snap\.tmp-/.test(t.path));
    add('snapshot rename', t.kind === 'rename' && t.to?.endsWith('.snap') === true);
    add('directory fsync', t.kind === 'fsync' && !/\.[a-z]+(\.tmp-\d+-\d+)?$/.test(t.path));
    add('WAL segment unlink', t.kind === 'unlink' && t.path.endsWith('.wal'));
    add('snapshot unlink', t.kind === 'unlink' && t.path.endsWith('.snap'));
    add('lock release', t.kind === 'unlink' && t.path.endsWith('/LOCK'));
  }
  return c;
}

interface Point {
  k: number;
  acked: number;
  sent: number;
}

interface Distinct {
  fs: SimFs;
  /** (point index, label) pairs where this state occurs. */
  at: Array<{ point: number; label: string }>;
}

/** Normalise a message for grouping failures: numbers and hex names replaced. */
function shape(msg: string): string {
  return msg.replace(/[0-9a-f]{16}/g, 'X').replace(/\d+/g, 'N').slice(0, 200);
}

export async function runCrashCheck(o: CrashCheckOptions = {}): Promise<CrashCheckReport> {
  const t0 = performance.now();
  const keys = o.keys ?? 3;
  const seed = o.seed ?? 1;
  const recheck = o.recheck !== false;
  const opts = serveOptions({ snapshotThreshold: o.snapshotThreshold ?? 3, trailingLogs: o.trailingLogs ?? 1, retain: o.retain ?? 2, segmentBytes: o.segmentBytes ?? 2048 });
  const ops = makeWorkload(o.ops ?? 16, keys, seed, o.valueChars ?? 400);
  const spec = specStates(ops, keys);
  const sampleRng = new Random(seed ^ 0x5eed);

  // 1. The workload, with every crash state noted before each mutating call.
  const fs = new SimFs();
  const points: Point[] = [];
  const distinct = new Map<string, Distinct>();
  let acked = 0;
  let sent = 0;
  let explored = 0;
  let enumerated = 0;
  let sampledPoints = 0;
  const note = (k: number): void => {
    const point = points.length;
    points.push({ k, acked, sent });
    const r = fs.crashStates({ limit: o.statesPerPoint ?? 200, cuts: o.cuts ?? 'representative', garbage: o.garbage ?? 'random', rng: sampleRng.fork() });
    explored += r.states.length;
    enumerated += r.total;
    if (r.sampled) sampledPoints++;
    for (const s of r.states) {
      const d = stateDigest(s.fs);
      const known = distinct.get(d);
      if (known) known.at.push({ point, label: s.label });
      else distinct.set(d, { fs: s.fs, at: [{ point, label: s.label }] });
    }
  };
  fs.onCall = (n) => note(n - 1);
  const wrap = o.fsWrapper ?? ((x: SimFs): FileSystem => x);
  const main = host(wrap(fs), opts, FIRST_PID);
  // An operation counts as acknowledged from the moment its answer is written out, which is
  // before the node is done with it (a snapshot save, compaction follow): request ids are 1 for
  // init, then i + 2 for operation i.
  main.sink.onReply = (r) => {
    if (r.inReplyTo >= 2) acked = Math.max(acked, r.inReplyTo - 1);
  };
  const wrong: string[] = [];
  const init = await main.request(INIT);
  if (init?.['type'] !== 'init_ok') throw new Error(`crash check: the workload's node did not start: ${JSON.stringify(init)} ${main.fatal[0]?.message ?? ''}`);
  for (let i = 0; i < ops.length; i++) {
    sent = i + 1;
    const r = await main.request(opBody(ops[i]!));
    const got = r?.['type'] === `${ops[i]!.op}_ok` ? 'ok' : r?.['type'] === 'error' && (r['code'] === 22 || r['code'] === 20) ? 'fail' : JSON.stringify(r);
    if (got !== spec.replies[i]) wrong.push(`op ${i} ${JSON.stringify(ops[i])}: expected ${spec.replies[i]}, got ${got}`);
    if (acked !== i + 1) wrong.push(`op ${i}: no answer`);
  }
  // stdin closes: the node syncs, closes its files and releases the lock (crash points too).
  await main.server.end();
  fs.onCall = null;
  const calls = fs.calls;
  note(calls);
  if (wrong.length > 0) throw new Error(`crash check: the workload itself answered wrongly (no crash involved): ${wrong.join('; ')}`);

  // 2. Recover every distinct state once; check it against every crash point where it occurs.
  const setup: RecoverSetup = { wrap, opts, keys, pid: o.restartPid === 'same' ? FIRST_PID : FIRST_PID + 1, samePid: o.restartPid === 'same', recheck };
  const groups = new Map<string, { count: number; example: CrashFailure }>();
  const recoveryWarnings: Record<string, number> = {};
  let failedPairs = 0;
  let done = 0;
  const trace = fs.trace;
  const judge = (rec: Recovered, at: ReadonlyArray<{ point: number; label: string }>, during: string | null): void => {
    for (const w of rec.warnings) {
      const m = /recovery \([^)]*\): (?:\/\S+: )?([^;(]*)/.exec(w);
      if (m) {
        const what = shape(m[1]!.trim());
        recoveryWarnings[what] = (recoveryWarnings[what] ?? 0) + 1;
      }
    }
    const compatible = rec.state === null ? [] : spec.states.flatMap((st, p) => (st === rec.state ? [p] : []));
    for (const { point, label } of at) {
      const pt = points[point]!;
      let kind: FailureKind | null = null;
      let detail = '';
      if (rec.refused !== null) [kind, detail] = ['restart-refused', rec.refused];
      else if (rec.state === null) [kind, detail] = ['state-not-allowed', rec.readProblem ?? 'unreadable'];
      else if (!compatible.some((p) => p >= pt.acked && p <= pt.sent)) {
        kind = compatible.some((p) => p < pt.acked) ? 'acked-write-lost' : 'state-not-allowed';
        detail = `recovered ${rec.state}; allowed: the state after ${pt.acked}..${pt.sent} of the operations; it matches after ${compatible.length > 0 ? compatible.join(', ') : 'none'}`;
      } else if (rec.newWrite !== null) [kind, detail] = ['new-write-refused', rec.newWrite];
      else if (rec.recheck !== null) [kind, detail] = ['recheck-failed', rec.recheck];
      if (kind === null) continue;
      failedPairs++;
      const key = `${during !== null ? 'after a crash during recovery, ' : ''}${kind}${kind === 'acked-write-lost' || kind === 'state-not-allowed' ? '' : `: ${shape(detail)}`}`;
      const g = groups.get(key);
      if (g) g.count++;
      else {
        const example: CrashFailure = { kind, k: pt.k, after: describeCall(trace[pt.k - 1]), before: describeCall(trace[pt.k]), label, acked: pt.acked, sent: pt.sent, duringRecovery: during, detail };
        groups.set(key, { count: 1, example });
      }
    }
  };
  // States a crash during a restart's recovery leaves (with the crash points of their first state).
  const nested = new Map<string, { fs: SimFs; parents: Distinct[]; label: string }>();
  const nestedCount = { points: 0, states: 0 };
  for (const d of distinct.values()) {
    const collect = o.recoveryCrashes
      ? (sfs: SimFs): void => {
          nestedCount.points++;
          // onCall runs once the call is traced, before it is done: the last done is the one before.
          const last = describeCall(sfs.trace[sfs.trace.length - 2]) ?? '(none yet)';
          const next = describeCall(sfs.trace[sfs.trace.length - 1]) ?? '(the end)';
          for (const st of sfs.crashStates({ limit: o.statesPerPoint ?? 200, cuts: o.cuts ?? 'representative', garbage: o.garbage ?? 'random', rng: sampleRng.fork() }).states) {
            nestedCount.states++;
            const dg = stateDigest(st.fs);
            const known = nested.get(dg);
            if (known) {
              if (!known.parents.includes(d)) known.parents.push(d);
            } else nested.set(dg, { fs: st.fs, parents: [d], label: `after ${last}, before ${next}: ${st.label}` });
          }
        }
      : undefined;
    const rec = await recoverState(d.fs, collect ? { ...setup, onRecoveryCall: collect } : setup);
    judge(rec, d.at, null);
    o.onProgress?.(++done, distinct.size + nested.size);
  }
  for (const n of nested.values()) {
    const rec = await recoverState(n.fs, { ...setup, recheck: false });
    judge(rec, n.parents.flatMap((d) => d.at), n.label);
    o.onProgress?.(++done, distinct.size + nested.size);
  }
  return {
    calls,
    crashPoints: points.length,
    crashStates: explored,
    enumerated,
    sampledPoints,
    distinctStates: distinct.size,
    ops: ops.length,
    acked,
    coverage: coverageOf(trace),
    recoveryWarnings,
    failures: [...groups].map(([key, g]) => ({ key, ...g })).sort((a, b) => a.example.k - b.example.k),
    failedPairs,
    recoveryCrashPoints: nestedCount.points,
    recoveryCrashStates: nestedCount.states,
    recoveryDistinctStates: nested.size,
    ms: performance.now() - t0,
  };
}

/** A human-readable report. */
export function formatCrashReport(r: CrashCheckReport): string {
  const lines = [
    `crash check: ${r.ops} operations (${r.acked} acknowledged), ${r.calls} mutating file-system calls`,
    `  ${r.crashPoints} crash points, ${r.crashStates} crash states explored${r.sampledPoints > 0 ? ` (sampled at ${r.sampledPoints} points, of ${r.enumerated} enumerated)` : ''}, ${r.distinctStates} distinct states recovered, ${(r.ms / 1000).toFixed(1)} s`,
  ];
  if (r.recoveryCrashPoints > 0) {
    lines.push(`  crashes during those recoveries: ${r.recoveryCrashPoints} crash points, ${r.recoveryCrashStates} crash states, ${r.recoveryDistinctStates} distinct states recovered again`);
  }
  lines.push(`  workload went through: ${Object.entries(r.coverage).map(([k, v]) => `${k} ×${v}`).join(', ')}`);
  const warn = Object.entries(r.recoveryWarnings);
  if (warn.length > 0) lines.push(`  recovery repaired: ${warn.map(([k, v]) => `${k} ×${v}`).join('; ')}`);
  if (r.failures.length === 0) lines.push('  every crash state recovered, with every acknowledged write and a state the history allows; each took a new write');
  else {
    lines.push(`  FAILED: ${r.failedPairs} (crash point, state) pairs in ${r.failures.length} groups`);
    for (const f of r.failures) {
      const e = f.example;
      lines.push(`  - ${f.key} ×${f.count}`, `      first at k=${e.k}: after ${e.after ?? '(nothing)'}, before ${e.before ?? '(the end)'}; acked ${e.acked}, sent ${e.sent}`, `      state: ${e.label}`);
      if (e.duringRecovery !== null) lines.push(`      then a crash during the restart's recovery, ${e.duringRecovery}`);
      lines.push(`      ${e.detail}`);
    }
  }
  return lines.join('\n');
}
