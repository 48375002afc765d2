import { readFile } from 'node:fs/promises';
import { Command, Errors, Flags } from '@oclif/core';
import cliProgress from 'cli-progress';
import { checkHistory, parseHistoryText } from '../check/index.js';
import { NEMESIS_KINDS, type NemesisKind } from '../cluster/nemesis.js';
import { LATENCY_DISTS, type LatencyDist } from '../cluster/random.js';
import { renderReport } from '../cluster/report.js';
import { oneLine, toToolError } from '../tools/errors.js';
import { ClusterRun, DEFAULTS, VACUOUS_WARNING, clusterExitCode, defaultNemesisInterval, type ClusterOptions } from '../cluster/runner.js';

const number = Flags.custom<number>({
  parse: async (s) => {
    const n = Number(s);
    if (!Number.isFinite(n) || n < 0) throw new Error(`expected a non-negative number, got ${s}`);
    return n;
  },
});

export default class Cluster extends Command {
  static override summary = 'Run a local cluster of raftsnap serve processes under faults and check linearizability';

  static override description = [
    "Starts N real `raftsnap serve` processes, each with its own data directory under --data-root, sends them init, and routes their messages with Maelstrom's semantics (latency per message, partitions that drop node-to-node messages only).",
    "Runs Maelstrom's lin-kv workload against them under a nemesis (partitions, SIGKILL + restart on the same data directory, SIGSTOP/SIGCONT), then checks the history for linearizability and prints a report. The results directory holds history.jsonl, report.json and each node's log (its stderr).",
    'Exit status, as Maelstrom\'s: 0 when the history is linearizable and no node crashed; 1 when it is not linearizable or a node exited on its own; 2 when the check ran out of its budget ("unknown") or the run could not be made (bad flags, a node program that is missing or does not answer init). A run in which no operation completed ok is still called linearizable, with a warning: there was nothing to check.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> cluster',
    '<%= config.bin %> cluster --nodes 5 --time 60 --nemesis partition,kill,pause --latency 20',
    '<%= config.bin %> cluster --bin ./my-node.py --nemesis partition',
    '<%= config.bin %> cluster --bin ./my-node --node-count 5 --time-limit 30 -- --verbose',
    '<%= config.bin %> cluster --json > report.json',
    '<%= config.bin %> cluster --check raftsnap-results/<run>/history.jsonl',
  ];

  /** `--bin PATH -- ARGS...`: what follows `--` goes to the node program, as Maelstrom's. */
  static override strict = false;

  static override flags = {
    bin: Flags.string({
      description: "a node program speaking Maelstrom's lin-kv protocol on stdin/stdout, as Maelstrom's --bin; arguments for it follow `--` [default: raftsnap serve]",
    }),
    nodes: Flags.integer({ description: 'number of nodes (n1..nN); also --node-count, as Maelstrom', default: DEFAULTS.nodes, min: 1, max: 9, aliases: ['node-count'] }),
    time: number({ description: 'seconds of workload; also --time-limit, as Maelstrom', default: DEFAULTS.time, aliases: ['time-limit'] }),
    rate: number({ description: 'operations per second, all clients together', default: DEFAULTS.rate }),
    concurrency: Flags.string({ description: 'number of clients, or Kn for K x nodes as Maelstrom (2n) [default: 2n]' }),
    keys: Flags.integer({ description: 'number of keys (0..keys-1)', default: DEFAULTS.keys, min: 1 }),
    latency: number({ description: 'mean node-to-node latency in ms', default: DEFAULTS.latency }),
    'latency-dist': Flags.string({ description: 'latency distribution', options: [...LATENCY_DISTS], default: DEFAULTS.latencyDist }),
    nemesis: Flags.string({
      description: `faults, comma separated, from ${NEMESIS_KINDS.join(', ')}; "none" for none`,
      default: DEFAULTS.nemesis.join(','),
    }),
    'nemesis-interval': number({ description: 'seconds per fault and per healthy period [default: 3, less when --time is short]' }),
    quiet: number({ description: 'seconds without faults at the end [default: time/4, at most 5]' }),
    'data-root': Flags.string({ description: 'directory holding one data directory per node; a run clears only the directories an earlier run recorded as its own', default: DEFAULTS.dataRoot }),
    results: Flags.string({ description: 'results directory [default: ./raftsnap-results/<timestamp>]' }),
    'snapshot-threshold': Flags.integer({ description: 'passed to serve', default: DEFAULTS.snapshotThreshold }),
    'trailing-logs': Flags.integer({ description: 'passed to serve', default: DEFAULTS.trailingLogs }),
    'chunk-size': Flags.integer({ description: 'passed to serve when given' }),
    seed: Flags.integer({ description: 'seed of the workload, nemesis and latency choices [default: random]' }),
    'check-budget': number({ description: 'seconds for the linearizability check before "unknown"', default: DEFAULTS.checkBudget }),
    availability: Flags.string({
      description: "as Maelstrom's: the fraction of operations (0..1) that must complete ok, or total; below it the run fails (exit 1)",
    }),
    workload: Flags.string({ char: 'w', description: "Maelstrom's workload; only lin-kv", options: ['lin-kv'], default: 'lin-kv' }),
    check: Flags.string({ description: 'only check an existing history.jsonl and print the verdict' }),
    json: Flags.boolean({ description: 'print the report as JSON' }),
    // Test-only switches.
    'node-script': Flags.string({ hidden: true, description: 'script to run instead of bin/run.js' }),
    'node-arg': Flags.string({ hidden: true, multiple: true, description: 'extra argument for every node' }),
    'node-env': Flags.string({ hidden: true, multiple: true, description: 'KEY=VALUE for every node' }),
    'stats-interval': Flags.integer({ hidden: true, description: 'ms between get_stats polls (0: only at the end)' }),
  };

  /**
   * Errors as the offline commands give them: one line on stderr, `raftsnap cluster: <problem>`
   * (naming the file when there is one), or `{"error": {...}}` on stdout under --json. An error
   * means the run (or the check) could not be made: exit 2, never 1, which says "not linearizable".
   */
  protected override async catch(err: Error & { oclif?: { exit?: number }; code?: string }): Promise<unknown> {
    if (err instanceof Errors.ExitError || err?.code === 'EEXIT') throw err;
    const exit = 2;
    const message = err instanceof Errors.CLIError ? oneLine(err.message) : toToolError(err).message;
    if (process.argv.includes('--json')) {
      process.stdout.write(JSON.stringify({ error: { message, code: err?.code ?? 'ERROR', exit } }, null, 2) + '\n');
    } else process.stderr.write(`raftsnap cluster: ${message}\n`);
    throw new Errors.ExitError(exit);
  }

  async run(): Promise<void> {
    const { flags, argv } = await this.parse(Cluster);
    // Only what follows `--` is for the node program; anything else left over is a mistake.
    const dashDash = process.argv.indexOf('--');
    const after = dashDash >= 0 ? process.argv.slice(dashDash + 1) : [];
    const stray = (argv as string[]).slice(0, argv.length - after.length);
    if (stray.length > 0) this.error(`unexpected argument ${stray[0]} (arguments for a --bin node program go after --)`);
    if (after.length > 0 && !flags.bin) this.error('arguments after -- are for a --bin node program; give --bin PATH');
    if (flags.check) {
      await this.checkOnly(flags.check, flags['check-budget'], flags.json);
      return;
    }
    const nemesis =
      flags.nemesis === 'none' || flags.nemesis === ''
        ? []
        : flags.nemesis.split(',').map((s) => s.trim()).filter(Boolean);
    for (const k of nemesis) {
      if (!NEMESIS_KINDS.includes(k as NemesisKind)) this.error(`unknown nemesis ${k}; expected ${NEMESIS_KINDS.join(', ')} or none`);
    }
    const nodeEnv: Record<string, string> = {};
    for (const kv of flags['node-env'] ?? []) {
      const i = kv.indexOf('=');
      if (i <= 0) this.error(`--node-env expects KEY=VALUE, got ${kv}`);
      nodeEnv[kv.slice(0, i)] = kv.slice(i + 1);
    }
    const concurrency = parseConcurrency(flags.concurrency ?? '2n', flags.nodes);
    if (concurrency === null) this.error(`--concurrency expects a positive integer or Kn (K x nodes, as Maelstrom's 2n), got ${flags.concurrency}`);
    let availability: number | 'total' | undefined;
    if (flags.availability !== undefined) {
      const a = Number(flags.availability);
      if (flags.availability === 'total') availability = 'total';
      else if (flags.availability.trim() !== '' && Number.isFinite(a) && a >= 0 && a <= 1) availability = a;
      else this.error(`--availability expects a number from 0 to 1 or total, got ${flags.availability}`);
    }
    const tty = Boolean(process.stderr.isTTY) && !flags.json;
    let bar: cliProgress.SingleBar | null = null;
    const opts: ClusterOptions = {
      nodes: flags.nodes,
      time: flags.time,
      rate: flags.rate,
      concurrency,
      ...(availability !== undefined ? { availability } : {}),
      keys: flags.keys,
      latency: flags.latency,
      latencyDist: flags['latency-dist'] as LatencyDist,
      nemesis: nemesis as NemesisKind[],
      nemesisInterval: flags['nemesis-interval'] ?? defaultNemesisInterval(flags.time, flags.quiet ?? Math.min(5, flags.time / 4)),
      quiet: flags.quiet ?? Math.min(5, flags.time / 4),
      dataRoot: flags['data-root'],
      ...(flags.results ? { results: flags.results } : {}),
      snapshotThreshold: flags['snapshot-threshold'],
      trailingLogs: flags['trailing-logs'],
      ...(flags['chunk-size'] !== undefined ? { chunkSize: flags['chunk-size'] } : {}),
      seed: flags.seed ?? Math.floor(Math.random() * 2 ** 31),
      checkBudget: flags['check-budget'],
      ...(flags.bin ? { bin: flags.bin, binArgs: after } : {}),
      ...(flags['node-script'] ? { nodeScript: flags['node-script'] } : {}),
      ...(flags['node-arg'] ? { nodeArgs: flags['node-arg'] } : {}),
      ...(Object.keys(nodeEnv).length ? { nodeEnv } : {}),
      ...(flags['stats-interval'] !== undefined ? { statsIntervalMs: flags['stats-interval'] } : {}),
      onLog: (line) => {
        if (!bar) process.stderr.write(`raftsnap cluster: ${line}\n`);
      },
      onProgress: (p) => {
        if (!tty) return;
        if (p.phase === 'running') {
          if (!bar) {
            bar = new cliProgress.SingleBar(
              {
                stream: process.stderr,
                format: ' {bar} {value}/{total} s | ok {ok} fail {fail} info {info} | {nemesis}',
                hideCursor: true,
                clearOnComplete: true,
              },
              cliProgress.Presets.shades_classic,
            );
            bar.start(Math.round(p.totalS), 0, { ok: 0, fail: 0, info: 0, nemesis: '' });
          }
          bar.update(Math.min(Math.round(p.elapsedS), Math.round(p.totalS)), { ok: p.ok, fail: p.fail, info: p.info, nemesis: p.nemesis || 'healthy' });
        } else if (bar) {
          bar.stop();
          bar = null;
          process.stderr.write(`raftsnap cluster: ${p.phase}...\n`);
        }
      },
    };
    if (!flags.json) process.stderr.write(`raftsnap cluster: seed ${opts.seed}\n`);
    const run = new ClusterRun(opts);
    // Ctrl-C: stop the run and still check and write what ran; a second Ctrl-C quits at once.
    let interrupts = 0;
    const onSigint = (): void => {
      interrupts++;
      if (interrupts > 1) process.exit(130);
      process.stderr.write('\nraftsnap cluster: interrupted; writing the history, the report and the pictures (Ctrl-C again to quit now)\n');
      run.abort();
    };
    process.on('SIGINT', onSigint);
    let report;
    try {
      report = await run.run();
    } catch (err) {
      (bar as cliProgress.SingleBar | null)?.stop();
      this.error(err instanceof Error ? err.message : String(err), { exit: 2 });
    } finally {
      process.removeListener('SIGINT', onSigint);
    }
    if (flags.json) this.log(JSON.stringify(report, null, 2));
    else this.log(renderReport(report, { color: Boolean(process.stdout.isTTY) }));
    if (report.vacuous) process.stderr.write(`raftsnap cluster: WARNING: ${VACUOUS_WARNING}\n`);
    if (report.exitCode !== 0) process.exitCode = report.exitCode;
  }

  private async checkOnly(path: string, budgetS: number, json: boolean): Promise<void> {
    const text = await readFile(path, 'utf8');
    let events;
    try {
      events = parseHistoryText(text);
    } catch (e) {
      this.error(`${path}: ${e instanceof Error ? e.message : String(e)}`, { exit: 2 });
    }
    const r = checkHistory(events, { timeBudgetMs: budgetS * 1000 });
    const vacuous = !events.some((e) => e.type === 'ok');
    if (json) {
      this.log(JSON.stringify({ ...r, vacuous }, (_k, v: unknown) => (v === Infinity ? null : v), 2));
    } else {
      this.log(`${r.verdict}: ${r.ops} operations (${r.dropped} dropped) over ${r.keys.length} keys, checked in ${r.elapsedMs} ms`);
      for (const k of r.keys) if (k.verdict !== 'linearizable') this.log(`  key ${JSON.stringify(k.key)}: ${k.verdict}`);
      for (const v of r.violations) this.log('\n' + v.message);
    }
    if (vacuous) process.stderr.write(`raftsnap cluster: WARNING: ${VACUOUS_WARNING}\n`);
    const exit = clusterExitCode(r.verdict, false);
    if (exit !== 0) process.exitCode = exit;
  }
}

/** `6` or Maelstrom's `2n` (2 x nodes); null when it is neither. */
export function parseConcurrency(s: string, nodes: number): number | null {
  const m = /^\s*(\d+)(n?)\s*$/.exec(s);
  if (!m) return null;
  const n = Number(m[1]) * (m[2] ? nodes : 1);
  return n >= 1 ? n : null;
}
