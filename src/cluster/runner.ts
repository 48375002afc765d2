/**
 * The cluster runner behind `raftsnap cluster`: starts N node processes (raftsnap's own `serve`,
 * or any `--bin` program), routes their messages with Maelstrom's semantics, runs the lin-kv
 * workload under a nemesis, then collects statistics, checks the history for linearizability,
 * builds the report (src/cluster/summary.ts) and writes the results directory
 * (src/cluster/results/). Ctrl-C (`abort`) ends the run early and still checks and writes what ran.
 */
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { checkHistory, type CheckResult } from '../check/linearizability.js';
import type { OpFn } from '../check/history.js';
import { prepareDataRoot } from './data-root.js';
import { MessageJournal } from './journal.js';
import { Nemesis, type Grudges, type NemesisKind } from './nemesis.js';
import { Network } from './network.js';
import { NodeProcess, type ExitInfo } from './node-process.js';
import { resolveNodeProgram } from './node-program.js';
import { latencySampler, Random, type LatencyDist } from './random.js';
import { writeResults } from './results/index.js';
import {
  availability,
  clusterExitCode,
  failuresByCode,
  faultWindows,
  percentile,
  VACUOUS_WARNING,
  type ClusterReport,
  type NodeReport,
} from './summary.js';
import { Workload, type OpCounts } from './workload.js';

export { DATA_ROOT_MARKER, prepareDataRoot } from './data-root.js';
export { DEFAULT_NODE_SCRIPT } from './node-program.js';
export { clusterExitCode, VACUOUS_WARNING, type ClusterReport, type NodeReport } from './summary.js';

export interface ClusterOptions {
  nodes: number;
  /** Seconds of workload. */
  time: number;
  rate: number;
  concurrency: number;
  keys: number;
  /** Mean node-to-node latency in ms. */
  latency: number;
  latencyDist: LatencyDist;
  nemesis: NemesisKind[];
  /** Seconds per fault (and per healthy period between faults). */
  nemesisInterval: number;
  /** Seconds at the end with no fault, so that the last operations succeed. */
  quiet: number;
  dataRoot: string;
  /** Results directory; default ./raftsnap-results/<timestamp>. */
  results?: string;
  snapshotThreshold?: number;
  trailingLogs?: number;
  chunkSize?: number;
  seed: number;
  /** Seconds for the linearizability check before the verdict is `unknown`. */
  checkBudget: number;
  /** Maelstrom's `--availability`: the fraction of operations that must succeed, or 'total'. */
  availability?: number | 'total';
  /**
   * Any program speaking Maelstrom's lin-kv protocol (Maelstrom's `--bin`), started with exactly
   * `binArgs`, every node in `<dataRoot>/shared`; default: raftsnap's own `serve`.
   */
  bin?: string;
  binArgs?: string[];
  /** Test-only: the script run instead of bin/run.js, extra node arguments and environment. */
  nodeScript?: string;
  nodeArgs?: string[];
  nodeEnv?: Record<string, string>;
  /** How often to poll nodes for `get_stats` (ms); 0 disables polling (the final query remains). */
  statsIntervalMs?: number;
  onProgress?: (p: Progress) => void;
  onLog?: (line: string) => void;
}

export const DEFAULTS = {
  nodes: 3,
  time: 20,
  rate: 100,
  keys: 5,
  latency: 5,
  latencyDist: 'exponential' as LatencyDist,
  nemesis: ['partition', 'kill'] as NemesisKind[],
  nemesisInterval: 3,
  dataRoot: './raftsnap-data',
  snapshotThreshold: 50,
  trailingLogs: 10,
  checkBudget: 30,
};

/**
 * The nemesis interval when none is given: 3 s, shortened for short runs so that at least one
 * fault (a healthy period, then the fault, with some start-up slack) fits before the quiet end
 * (`--time 8` would otherwise run without any fault), but never below 0.5 s.
 */
export function defaultNemesisInterval(time: number, quiet: number): number {
  const room = time - quiet - 0.5;
  const fit = Math.floor((room / 2) * 10) / 10;
  return Math.max(0.5, Math.min(DEFAULTS.nemesisInterval, fit));
}

export interface Progress {
  elapsedS: number;
  totalS: number;
  ok: number;
  fail: number;
  info: number;
  nemesis: string;
  phase: 'starting' | 'running' | 'draining' | 'stopping' | 'checking' | 'writing';
}

export async function dirSize(path: string): Promise<number> {
  let total = 0;
  let entries;
  try {
    entries = await readdir(path, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(path, e.name);
    if (e.isDirectory()) total += await dirSize(p);
    else {
      try {
        total += (await stat(p)).size;
      } catch {
        /* removed meanwhile */
      }
    }
  }
  return total;
}

function timestamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-').replace('Z', '');
}

const perOp = (n: number, ops: number): number | null => (ops === 0 ? null : Math.round((n / ops) * 100) / 100);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function logLength(s: Record<string, unknown>): number | null {
  const n = num(s.log_entries);
  if (n !== null) return n;
  const first = num(s.first_index);
  const last = num(s.last_index);
  return first !== null && last !== null ? Math.max(0, last - first + 1) : null;
}

// ---------------------------------------------------------------------------------------------

export class ClusterRun {
  private readonly t0 = performance.now();
  readonly clock = (): number => performance.now() - this.t0;
  private nodes: NodeProcess[] = [];
  private aborted = false;
  private wakeMain: (() => void) | null = null;

  constructor(private readonly opts: ClusterOptions) {}

  /**
   * Ends the run early (Ctrl-C): no new operations or faults, the nodes are killed, and the
   * history of what ran is still checked and written with the report and the pictures.
   */
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.wakeMain?.();
  }

  /** Kills every node at once (a stopped one would otherwise stay stopped forever). */
  private killNodes(): void {
    for (const n of this.nodes) {
      n.resume();
      n.kill();
    }
  }

  async run(): Promise<ClusterReport> {
    // If the runner dies, leave no node behind.
    const killAll = (): void => this.killNodes();
    process.once('exit', killAll);
    try {
      return await this.runInner();
    } finally {
      process.removeListener('exit', killAll);
    }
  }

  private async runInner(): Promise<ClusterReport> {
    const o = this.opts;
    if (o.nodes < 1) throw new Error('--nodes must be at least 1');
    const ids = Array.from({ length: o.nodes }, (_, i) => `n${i + 1}`);
    const dataRoot = resolve(o.dataRoot);
    const defaultResults = o.results === undefined;
    const resultsDir = resolve(o.results ?? join('raftsnap-results', timestamp()));
    const serveArgs: string[] = [];
    if (o.snapshotThreshold !== undefined) serveArgs.push('--snapshot-threshold', String(o.snapshotThreshold));
    if (o.trailingLogs !== undefined) serveArgs.push('--trailing-logs', String(o.trailingLogs));
    if (o.chunkSize !== undefined) serveArgs.push('--chunk-size', String(o.chunkSize));
    serveArgs.push(...(o.nodeArgs ?? []));
    const program = resolveNodeProgram({
      ...(o.bin !== undefined ? { bin: o.bin, binArgs: o.binArgs ?? [] } : {}),
      ...(o.nodeScript ? { nodeScript: o.nodeScript } : {}),
      serveArgs,
    });
    await prepareDataRoot(dataRoot, program.dirs(ids));
    await mkdir(resultsDir, { recursive: true });
    const rnd = new Random(o.seed);
    const problems: string[] = [];
    const warnings: string[] = [];
    const crashes: ExitInfo[] = [];
    const log = (line: string): void => o.onLog?.(line);
    // eslint-disable-next-line prefer-const -- assigned once, after the closures that read it
    let workload: Workload | undefined;
    const lastExit = new Map<string, ExitInfo>();
    const progress = (phase: Progress['phase'], nemesis = ''): void =>
      o.onProgress?.({
        elapsedS: this.clock() / 1000,
        totalS: o.time,
        ok: workload?.counts.ok ?? 0,
        fail: workload?.counts.fail ?? 0,
        info: workload?.counts.info ?? 0,
        nemesis,
        phase,
      });

    const net = new Network(latencySampler(o.latencyDist, o.latency, new Random(o.seed ^ 0x5bd1e995)), this.clock);
    const journal = new MessageJournal();
    net.tap = journal.tap;
    const control = net.client('c0');
    let shuttingDown = false;
    const kills = new Map<string, number>();
    const pauses = new Map<string, number>();
    for (const id of ids) {
      const cwd = program.cwd(dataRoot);
      const node = new NodeProcess(
        {
          id,
          command: program.command,
          args: program.args(join(dataRoot, id)),
          ...(cwd ? { cwd } : {}),
          env: o.nodeEnv ?? {},
          logPath: join(resultsDir, `${id}.log`),
        },
        this.clock,
      );
      node.on('exit', (info: ExitInfo) => {
        lastExit.set(id, info);
        if (!info.expected && !shuttingDown && !this.aborted) {
          crashes.push(info);
          const why = info.signal ? `signal ${info.signal}` : `code ${info.code}`;
          problems.push(`${id} exited unexpectedly (${why}) at ${(info.at / 1000).toFixed(1)} s; see ${id}.log`);
          log(`${id} exited unexpectedly (${why})`);
        }
      });
      net.addNode(node);
      this.nodes.push(node);
    }
    const byId = new Map(this.nodes.map((n) => [n.id, n]));

    // Statistics per node and incarnation.
    const stats = new Map<string, Map<number, Record<string, unknown>>>(ids.map((id) => [id, new Map()]));
    const maxLog = new Map<string, number>();
    /** Role each node gave in its latest `get_stats` answer. */
    const roles = new Map<string, string>();
    const queryStats = async (node: NodeProcess, timeoutMs: number): Promise<void> => {
      if (node.state !== 'up' || !program.stats) return;
      const inc = node.incarnation;
      const r = await control.request(node.id, { type: 'get_stats' }, timeoutMs);
      if (r.reply?.type !== 'get_stats_ok') return;
      stats.get(node.id)!.set(inc, r.reply as Record<string, unknown>);
      if (typeof r.reply.role === 'string') roles.set(node.id, r.reply.role);
      const len = logLength(r.reply as Record<string, unknown>);
      if (len !== null) maxLog.set(node.id, Math.max(maxLog.get(node.id) ?? 0, len));
    };

    const init = async (node: NodeProcess, timeoutMs: number): Promise<boolean> => {
      const r = await control.request(node.id, { type: 'init', node_id: node.id, node_ids: ids }, timeoutMs);
      return r.reply?.type === 'init_ok';
    };

    // Start.
    progress('starting');
    for (const n of this.nodes) n.start();
    const inited = await Promise.all(this.nodes.map((n) => init(n, 10_000)));
    const notInited = ids.filter((_, i) => !inited[i]);
    if (notInited.length > 0 || this.aborted) {
      this.killNodes();
      await Promise.all(this.nodes.map((n) => n.waitExit(5000)));
      await Promise.all(this.nodes.map((n) => n.closeLog()));
      net.close();
      if (notInited.length === 0) throw new Error('interrupted while the nodes were starting');
      throw new Error(
        `node${notInited.length > 1 ? 's' : ''} ${notInited.join(', ')} did not answer init within 10 s; see the logs in ${resultsDir}`,
      );
    }
    log(`started ${ids.join(', ')} (data in ${dataRoot}, results in ${resultsDir})`);

    const timeoutMs = Math.max(10 * o.latency, 1000);
    workload = new Workload(
      { concurrency: o.concurrency, rate: o.rate, keys: o.keys, timeoutMs, nodeIds: ids },
      net,
      new Random(o.seed ^ 0x1b873593),
      this.clock,
    );
    const nemesis = new Nemesis(
      o.nemesis,
      o.nemesisInterval * 1000,
      rnd,
      {
        nodeIds: ids,
        followers: () => ids.filter((id) => roles.get(id) === 'follower' && byId.get(id)!.state === 'up'),
        partition: (g: Grudges) => net.partition(g),
        healNetwork: () => net.heal(),
        kill: (victims) => {
          for (const v of victims) {
            kills.set(v, (kills.get(v) ?? 0) + 1);
            byId.get(v)!.kill();
          }
        },
        restart: async (victims) => {
          const t = this.clock();
          const started: NodeProcess[] = [];
          for (const v of victims) {
            const n = byId.get(v)!;
            await n.waitExit(5000);
            if (n.state === 'down' && !this.aborted) {
              n.start();
              started.push(n);
            }
          }
          const ok = await Promise.all(started.map((n) => init(n, 5000)));
          started.forEach((n, i) => {
            if (!ok[i]) warnings.push(`${n.id} did not answer init within 5 s after its restart`);
          });
          if (started.length > 0) log(`restarted ${started.map((n) => n.id).join(',')} in ${(this.clock() - t).toFixed(0)} ms`);
        },
        pause: (victims) => {
          for (const v of victims) {
            pauses.set(v, (pauses.get(v) ?? 0) + 1);
            byId.get(v)!.pause();
          }
        },
        resume: (victims) => {
          for (const v of victims) byId.get(v)!.resume();
        },
      },
      this.clock,
    );

    // Run.
    const runStart = this.clock();
    const endAt = runStart + o.time * 1000;
    const quietFrom = endAt - o.quiet * 1000;
    const workloadDone = workload.run();
    const nemesisDone = nemesis.run(quietFrom);
    const statsEvery = o.statsIntervalMs ?? 1000;
    let polling = true;
    const pollDone = (async () => {
      if (statsEvery <= 0) return;
      while (polling) {
        await sleep(statsEvery);
        if (!polling) break;
        await Promise.all(this.nodes.map((n) => queryStats(n, Math.min(statsEvery, 1000))));
      }
    })();
    const ticker = setInterval(() => progress('running', nemesis.current), 250);
    while (this.clock() < endAt && !this.aborted) {
      await new Promise<void>((wake) => {
        const t = setTimeout(wake, Math.min(200, endAt - this.clock()));
        this.wakeMain = () => {
          clearTimeout(t);
          wake();
        };
      });
      this.wakeMain = null;
    }
    if (this.aborted) {
      log('interrupted: stopping the nodes, then checking and writing what ran');
      this.killNodes();
    }
    nemesis.stop();
    await nemesisDone;
    workload.stop();
    clearInterval(ticker);
    progress('draining');
    await workloadDone;
    const workloadEnd = this.clock();
    polling = false;
    await pollDone;

    // Final statistics, then stop the nodes.
    progress('stopping');
    await Promise.all(this.nodes.map((n) => queryStats(n, 2000)));
    shuttingDown = true;
    for (const n of this.nodes) n.closeStdin();
    const exited = await Promise.all(this.nodes.map((n) => n.waitExit(10_000)));
    this.nodes.forEach((n, i) => {
      if (!exited[i]) {
        warnings.push(`${n.id} did not exit within 10 s after its stdin was closed; killed`);
        n.kill();
      }
    });
    await Promise.all(this.nodes.map((n) => n.waitExit(5000)));
    for (const n of this.nodes) {
      const e = lastExit.get(n.id);
      if (!this.aborted && e && (e.code !== 0 || e.signal !== null) && exited[this.nodes.indexOf(n)]) {
        warnings.push(`${n.id} exited with ${e.signal ? 'signal ' + e.signal : 'code ' + e.code} after its stdin was closed`);
      }
    }
    net.close();
    await Promise.all(this.nodes.map((n) => n.closeLog()));

    // Check.
    progress('checking');
    const history = workload.history;
    const check: CheckResult = checkHistory(history, { timeBudgetMs: o.checkBudget * 1000 });
    for (const w of check.warnings) warnings.push(`history: ${w}`);

    // Report.
    const nodeReports: NodeReport[] = [];
    for (const n of this.nodes) {
      const perInc = stats.get(n.id)!;
      const sum = (field: string): number => {
        let t = 0;
        for (const s of perInc.values()) t += num(s[field]) ?? 0;
        return t;
      };
      const last = perInc.size > 0 ? perInc.get(Math.max(...perInc.keys()))! : null;
      nodeReports.push({
        id: n.id,
        starts: n.incarnation,
        kills: kills.get(n.id) ?? 0,
        pauses: pauses.get(n.id) ?? 0,
        statsAvailable: perInc.size > 0,
        role: last && typeof last.role === 'string' ? last.role : null,
        term: last ? num(last.term) : null,
        elections: sum('elections'),
        leaderChanges: sum('leader_changes'),
        snapshotsTaken: sum('snapshots_taken'),
        snapshotsInstalled: sum('snapshots_installed'),
        snapshotTransfersSent: sum('snapshot_transfers_sent'),
        followerReads: sum('follower_reads'),
        maxLogEntries: maxLog.get(n.id) ?? null,
        lastStats: last,
        dataDirBytes: program.kind === 'serve' ? await dirSize(program.dataDir(dataRoot, n.id)) : null,
        exitCode: lastExit.get(n.id)?.code ?? null,
        exitSignal: lastExit.get(n.id)?.signal ?? null,
      });
    }
    for (const n of nodeReports) {
      if (program.stats && !n.statsAvailable) warnings.push(`${n.id} never answered get_stats; its statistics are missing`);
    }
    const byF = {
      read: { ok: 0, fail: 0, info: 0 },
      write: { ok: 0, fail: 0, info: 0 },
      cas: { ok: 0, fail: 0, info: 0 },
    } as Record<OpFn, OpCounts>;
    for (const e of history) if (e.type !== 'invoke') byF[e.f][e.type]++;
    const lat = workload.latencies.slice().sort((a, b) => a - b);
    const workS = Math.max(0.001, (workloadEnd - runStart) / 1000);
    if (check.verdict === 'not-linearizable') {
      problems.unshift(`history is not linearizable (keys ${check.violations.map((v) => JSON.stringify(v.key)).join(', ')})`);
    }
    if (check.verdict === 'unknown') warnings.push(`the linearizability check did not finish within ${o.checkBudget} s`);
    if (net.stats.dropped.unknownDest > 0) warnings.push(`${net.stats.dropped.unknownDest} messages to unknown destinations`);
    const vacuous = workload.counts.ok === 0;
    if (vacuous) warnings.unshift(VACUOUS_WARNING);
    if (this.aborted) warnings.unshift(`interrupted at ${(workloadEnd / 1000).toFixed(1)} s: the report covers what ran until then`);
    if (!this.aborted && o.nemesis.length > 0 && nemesis.events.length === 0) {
      warnings.push(
        `no fault was injected: a fault needs ${o.nemesisInterval} s of health then ${o.nemesisInterval} s of fault before the last ${o.quiet} s; lower --nemesis-interval or raise --time`,
      );
    }
    if (workload.unexpectedReplies > 0) warnings.push(`${workload.unexpectedReplies} replies of an unexpected type`);
    const avail = availability(history, o.availability ?? null);
    if (!avail.valid) {
      problems.push(
        `availability ${(avail.okFraction * 100).toFixed(1)}% of operations ok, below the required ${avail.required === 'total' ? 'total (100%)' : `${(Number(avail.required) * 100).toFixed(1)}%`}`,
      );
    }
    const maxes = nodeReports.map((n) => n.maxLogEntries).filter((x): x is number => x !== null);
    const { onProgress: _p, onLog: _l, nodeEnv, ...config } = o;
    const report: ClusterReport = {
      verdict: check.verdict,
      exitCode: clusterExitCode(check.verdict, crashes.length > 0, avail.valid, this.aborted),
      vacuous,
      aborted: this.aborted,
      problems,
      warnings,
      config: { ...config, ...(nodeEnv ? { nodeEnv: Object.keys(nodeEnv) } : {}) },
      resultsDir,
      dataRoot,
      nodeProgram: program.describe,
      nodeStats: program.stats,
      durationS: Math.round(this.clock() / 100) / 10,
      ops: { total: workload.total, ...workload.counts, byF },
      throughput: Math.round((workload.counts.ok / workS) * 10) / 10,
      latencyMs: { p50: percentile(lat, 50), p95: percentile(lat, 95), p99: percentile(lat, 99), max: percentile(lat, 100) },
      availability: avail,
      failures: failuresByCode(history),
      totals: {
        elections: nodeReports.reduce((a, n) => a + n.elections, 0),
        leaderChanges: nodeReports.reduce((a, n) => a + n.leaderChanges, 0),
        snapshotsTaken: nodeReports.reduce((a, n) => a + n.snapshotsTaken, 0),
        snapshotsInstalled: nodeReports.reduce((a, n) => a + n.snapshotsInstalled, 0),
        snapshotTransfers: nodeReports.reduce((a, n) => a + n.snapshotTransfersSent, 0),
        followerReads: nodeReports.reduce((a, n) => a + n.followerReads, 0),
        maxLogEntries: maxes.length ? Math.max(...maxes) : null,
        dataDirBytes:
          program.kind === 'serve' ? nodeReports.reduce((a, n) => a + (n.dataDirBytes ?? 0), 0) : await dirSize(program.dataDir(dataRoot, '')),
      },
      nodes: nodeReports,
      crashes,
      nemesis: nemesis.events,
      faults: faultWindows(nemesis.events, workloadEnd),
      network: {
        ...net.stats,
        msgsPerOp: {
          all: perOp(net.stats.all.sends, workload.total),
          clients: perOp(net.stats.clients.sends, workload.total),
          servers: perOp(net.stats.servers.sends, workload.total),
        },
        errors: net.errors,
      },
      check: {
        verdict: check.verdict,
        elapsedMs: check.elapsedMs,
        ops: check.ops,
        dropped: check.dropped,
        keys: check.keys.map((k) => ({ key: k.key, verdict: k.verdict, ops: k.ops })),
        violations: check.violations.map((v) => ({ key: v.key, message: v.message, ops: v.ops })),
      },
      files: [],
    };
    progress('writing');
    await writeResults({ dir: resultsDir, linkLatest: defaultResults, report, history, check, journal, ids });
    return report;
  }
}

export function runCluster(opts: ClusterOptions): Promise<ClusterReport> {
  return new ClusterRun(opts).run();
}
