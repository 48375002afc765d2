/**
 * The report of a cluster run (what `--json` prints and report.json holds), and the pieces of it
 * computed from the history alone: operation counts, latencies, failures by error code,
 * availability, fault windows, the exit code.
 */
import type { HistoryEvent, OpFn } from '../check/history.js';
import type { Verdict } from '../check/linearizability.js';
import type { NemesisEvent } from './nemesis.js';
import type { NetStats } from './network.js';
import type { ExitInfo } from './node-process.js';
import type { OpCounts } from './workload.js';

export interface NodeReport {
  id: string;
  /** Times the node was started (1 + restarts). */
  starts: number;
  kills: number;
  pauses: number;
  /** `get_stats` answered at least once. */
  statsAvailable: boolean;
  role: string | null;
  term: number | null;
  /** Counters summed over the node's incarnations. */
  elections: number;
  leaderChanges: number;
  snapshotsTaken: number;
  snapshotsInstalled: number;
  snapshotTransfersSent: number;
  /** Reads the node answered as a follower, from its own state at a read index the leader gave (get_stats `follower_reads`). */
  followerReads: number;
  /** Largest log length seen by any `get_stats` during the run. */
  maxLogEntries: number | null;
  lastStats: Record<string, unknown> | null;
  /** Size of the node's data directory after the run; null for `--bin` nodes (one shared directory). */
  dataDirBytes: number | null;
  exitCode: number | null;
  exitSignal: string | null;
}

/** Failed or indeterminate operations with one error code (null: no code, e.g. an odd reply). */
export interface FailureCount {
  code: number | null;
  name: string;
  type: 'fail' | 'info';
  f: OpFn;
  count: number;
}

/** A fault from its start to its heal, in ms since the run started. */
export interface FaultWindow {
  kind: 'partition' | 'kill' | 'pause';
  start: number;
  end: number;
  detail: string;
}

export interface ClusterReport {
  verdict: Verdict;
  /**
   * The process exit code, as Maelstrom's: 0 when linearizable and no node crashed; 1 when not
   * linearizable, a node exited on its own, or availability was below `--availability`; 2 when
   * the check ran out of its budget (`unknown`); 130 when the run was interrupted (Ctrl-C) and
   * nothing definite was found. (`raftsnap cluster` also exits 2 when the run cannot be made:
   * bad flags, a node that does not start.) See `clusterExitCode`.
   */
  exitCode: number;
  /**
   * No operation completed ok: nothing acknowledged was there to check, so "linearizable" says
   * nothing about the cluster (every node down, no leader, a broken node answering only errors).
   */
  vacuous: boolean;
  /** The run was stopped early (Ctrl-C); what ran was still checked and written. */
  aborted: boolean;
  problems: string[];
  warnings: string[];
  config: Record<string, unknown>;
  resultsDir: string;
  dataRoot: string;
  /** The node program and its arguments. */
  nodeProgram: string;
  /** Whether the nodes were asked for `get_stats` (raftsnap's own; not for `--bin` programs). */
  nodeStats: boolean;
  durationS: number;
  ops: { total: number; ok: number; fail: number; info: number; byF: Record<OpFn, OpCounts> };
  /** Successful operations per second of workload. */
  throughput: number;
  latencyMs: { p50: number | null; p95: number | null; p99: number | null; max: number | null };
  /** Maelstrom's availability checker: ok operations / invoked ones; `required` from `--availability`. */
  availability: { okFraction: number; required: number | 'total' | null; valid: boolean };
  /** Failed (`fail`) and indeterminate (`info`) operations by error code, most frequent first. */
  failures: FailureCount[];
  totals: {
    elections: number;
    leaderChanges: number;
    snapshotsTaken: number;
    snapshotsInstalled: number;
    snapshotTransfers: number;
    followerReads: number;
    maxLogEntries: number | null;
    dataDirBytes: number;
  };
  nodes: NodeReport[];
  crashes: ExitInfo[];
  nemesis: NemesisEvent[];
  /** The faults as windows (start to heal), for the plots. */
  faults: FaultWindow[];
  /**
   * Maelstrom's net checker: sends and receives of all messages, of those to or from a client and
   * of those between nodes; messages per client operation (sends / operations invoked); drops.
   */
  network: NetStats & { msgsPerOp: { all: number | null; clients: number | null; servers: number | null }; errors: string[] };
  check: {
    verdict: Verdict;
    elapsedMs: number;
    ops: number;
    dropped: number;
    keys: Array<{ key: unknown; verdict: Verdict; ops: number }>;
    violations: Array<{ key: unknown; message: string; ops: unknown[] }>;
  };
  /** The files written in the results directory besides history.jsonl and report.json. */
  files: string[];
}

/**
 * The exit code of a run: a definite failure (1) outranks an interruption (130), which outranks
 * an unknown verdict (2).
 */
export function clusterExitCode(verdict: Verdict, crashed: boolean, availabilityOk = true, aborted = false): number {
  if (verdict === 'not-linearizable' || crashed || !availabilityOk) return 1;
  if (aborted) return 130;
  if (verdict === 'unknown') return 2;
  return 0;
}

/** The warning for a history without a single ok operation (see `ClusterReport.vacuous`). */
export const VACUOUS_WARNING = 'no operation completed ok: the verdict is vacuous, there was nothing acknowledged to check';

export function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round(sorted[i]! * 10) / 10;
}

/** Maelstrom's error names (its errors.edn). */
export const ERROR_NAMES: Readonly<Record<number, string>> = {
  0: 'timeout',
  1: 'node-not-found',
  10: 'not-supported',
  11: 'temporarily-unavailable',
  12: 'malformed-request',
  13: 'crash',
  14: 'abort',
  20: 'key-does-not-exist',
  21: 'key-already-exists',
  22: 'precondition-failed',
  30: 'txn-conflict',
};

export function errorName(code: number | null): string {
  if (code === null) return 'no code';
  return ERROR_NAMES[code] ?? (code >= 1000 ? 'application error' : 'unknown code');
}

export function failuresByCode(history: readonly HistoryEvent[]): FailureCount[] {
  const m = new Map<string, FailureCount>();
  for (const e of history) {
    if (e.type !== 'fail' && e.type !== 'info') continue;
    const code = typeof e.code === 'number' ? e.code : null;
    const k = `${code}/${e.type}/${e.f}`;
    const c = m.get(k);
    if (c) c.count++;
    else m.set(k, { code, name: errorName(code), type: e.type, f: e.f, count: 1 });
  }
  return [...m.values()].sort((a, b) => b.count - a.count || (a.code ?? -1) - (b.code ?? -1));
}

export function availability(history: readonly HistoryEvent[], required: number | 'total' | null): ClusterReport['availability'] {
  let invoked = 0;
  let ok = 0;
  for (const e of history) {
    if (e.type === 'invoke') invoked++;
    else if (e.type === 'ok') ok++;
  }
  const okFraction = invoked === 0 ? 1 : Math.round((ok / invoked) * 10000) / 10000;
  const valid = required === null ? true : required === 'total' ? ok === invoked : okFraction >= required;
  return { okFraction, required, valid };
}

/** Pairs each fault with the heal that ended it (or the end of the run). */
export function faultWindows(events: readonly NemesisEvent[], endMs: number): FaultWindow[] {
  const out: FaultWindow[] = [];
  let open: FaultWindow | null = null;
  for (const e of events) {
    if (e.kind === 'heal') {
      if (open) {
        open.end = e.time;
        out.push(open);
        open = null;
      }
    } else {
      if (open) {
        open.end = e.time;
        out.push(open);
      }
      open = { kind: e.kind, start: e.time, end: endMs, detail: e.detail };
    }
  }
  if (open) out.push(open);
  return out;
}
