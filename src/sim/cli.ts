/**
 * `npm run sim -- [--seeds N] [--seed S] [--first F] [--scenario X] [--steps M] [--check-budget MS]
 *                 [--broken ack-before-persist|no-wal-fsync|no-snapshot-dir-fsync] [--trace [K]] [--json] [--fail-fast]`
 *
 * Runs seeds × scenarios of the deterministic simulator, prints one summary line per scenario and,
 * for every failing seed, the invariant, the step and the one-line command that replays it.
 * `--seed S` runs one seed (replay); `--trace` prints its last K trace lines (default 60) when it
 * fails, or always with `--seed`.
 *
 * Exit status (as Maelstrom's): 0 when every run passed; 1 when some run failed an invariant, a
 * scenario goal or the linearizability check; 2 when the only failures are runs whose
 * linearizability check ran out of its budget ("unknown": no verdict is not a pass), or on a usage
 * error. A run in which no operation completed ok passes only vacuously: it is counted and
 * warned about.
 */
import { pathToFileURL } from 'node:url';
import { type RunOptions, SCENARIOS, findScenario, replayCommand, runScenario } from './scenarios.js';
import { BROKEN, type Broken, LIN_UNKNOWN, type SimResult } from './config.js';

interface Args {
  seeds: number;
  first: number;
  seed: number | null;
  scenarios: string[];
  steps?: number;
  broken?: Broken;
  trace: number;
  json: boolean;
  failFast: boolean;
  checkBudgetMs?: number;
}

/** The exit status of a batch: a definite failure (1) outranks runs without a verdict (2). */
export function exitStatus(failures: ReadonlyArray<{ invariant: string } | null>): 0 | 1 | 2 {
  if (failures.some((f) => f !== null && f.invariant !== LIN_UNKNOWN)) return 1;
  if (failures.some((f) => f !== null)) return 2;
  return 0;
}

function usage(msg?: string): never {
  if (msg) process.stderr.write(`sim: ${msg}\n`);
  process.stderr.write(
    'usage: npm run sim -- [--seeds N] [--first F] [--seed S] [--scenario NAME[,NAME]] [--steps M] [--check-budget MS]\n' +
      '                      [--broken ack-before-persist|no-wal-fsync|no-snapshot-dir-fsync] [--trace [K]] [--json] [--fail-fast]\n' +
      `scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}\n`,
  );
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { seeds: 20, first: 1, seed: null, scenarios: SCENARIOS.map((s) => s.name), trace: 0, json: false, failFast: false };
  const int = (v: string | undefined, flag: string): number => {
    if (v === undefined || !/^\d+$/.test(v)) usage(`${flag} needs a non-negative integer`);
    return Number(v);
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    switch (f) {
      case '--seeds':
        a.seeds = int(argv[++i], f);
        break;
      case '--first':
        a.first = int(argv[++i], f);
        break;
      case '--seed':
        a.seed = int(argv[++i], f);
        break;
      case '--scenario':
      case '--scenarios': {
        const v = argv[++i];
        if (!v) usage(`${f} needs a name`);
        a.scenarios = v === 'all' ? SCENARIOS.map((s) => s.name) : v.split(',');
        for (const s of a.scenarios) {
          try {
            findScenario(s);
          } catch (e) {
            usage((e as Error).message);
          }
        }
        break;
      }
      case '--steps':
        a.steps = int(argv[++i], f);
        break;
      case '--check-budget':
        a.checkBudgetMs = int(argv[++i], f);
        break;
      case '--broken': {
        const v = argv[++i];
        const b = BROKEN.find((x) => x === v);
        if (!b) usage(`--broken takes one of ${BROKEN.join(', ')}`);
        a.broken = b;
        break;
      }
      case '--trace': {
        const v = argv[i + 1];
        if (v !== undefined && /^\d+$/.test(v)) {
          a.trace = Number(v);
          i++;
        } else a.trace = 60;
        break;
      }
      case '--json':
        a.json = true;
        break;
      case '--fail-fast':
        a.failFast = true;
        break;
      case '-h':
      case '--help':
        usage();
        break;
      default:
        usage(`unknown argument ${f}`);
    }
  }
  return a;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const seeds = args.seed !== null ? [args.seed] : Array.from({ length: args.seeds }, (_, i) => args.first + i);
  const opts: RunOptions = {
    ...(args.steps !== undefined ? { maxSteps: args.steps } : {}),
    ...(args.broken ? { broken: args.broken } : {}),
    ...(args.checkBudgetMs !== undefined ? { checkBudgetMs: args.checkBudgetMs } : {}),
  };
  const runOpts: RunOptions = { ...opts, traceKeep: args.trace > 0 ? args.trace : 0 };
  const allFailures: Array<SimResult['failure']> = [];
  let unknownTotal = 0;
  let vacuousTotal = 0;
  const t0 = Date.now();
  const out: Array<{
    scenario: string;
    seeds: number;
    failed: number;
    unknown: number;
    vacuous: number[];
    failures: Array<{ seed: number; failure: SimResult['failure']; replay: string }>;
  }> = [];
  for (const name of args.scenarios) {
    const s0 = Date.now();
    let ops = 0;
    let steps = 0;
    let snaps = 0;
    let installs = 0;
    let crashes = 0;
    let unknown = 0;
    const vacuous: number[] = [];
    const failures: Array<{ seed: number; failure: SimResult['failure']; replay: string }> = [];
    let ran = 0;
    for (const seed of seeds) {
      const r = await runScenario(name, seed, runOpts);
      ran++;
      ops += r.stats.ops;
      steps += r.steps;
      snaps += r.stats.snapshotsTaken;
      installs += r.stats.snapshotsInstalled;
      crashes += r.stats.crashes;
      if (r.failure?.invariant === LIN_UNKNOWN) unknown++;
      if (r.ok && r.stats.okOps === 0) {
        // Linearizable, but vacuously: nothing was acknowledged, so nothing could contradict it.
        vacuous.push(seed);
        if (!args.json) process.stdout.write(`WARN ${name} seed ${seed}: no operation completed ok; its "linearizable" says nothing\n`);
      }
      if (args.seed !== null && !args.json) {
        process.stdout.write(`${JSON.stringify({ seed: r.seed, scenario: r.scenario, ok: r.ok, steps: r.steps, simTimeMs: Math.round(r.simTimeMs), traceHash: r.traceHash, ...r.stats })}\n`);
        if (args.trace > 0) for (const l of r.trace) process.stdout.write(`  ${l}\n`);
      }
      if (!r.ok) {
        allFailures.push(r.failure);
        const replay = replayCommand(name, seed, opts);
        failures.push({ seed, failure: r.failure, replay });
        if (!args.json) {
          const f = r.failure!;
          const tag = f.invariant === LIN_UNKNOWN ? 'UNKNOWN' : 'FAIL';
          process.stdout.write(`${tag} ${name} seed ${seed}: ${f.invariant} at step ${f.step} (t=${f.time.toFixed(1)} ms): ${f.message.split('\n')[0]}\n  replay: ${replay}\n`);
          if (args.trace > 0 && args.seed === null) for (const l of r.trace) process.stdout.write(`  ${l}\n`);
        }
        if (args.failFast) break;
      }
    }
    unknownTotal += unknown;
    vacuousTotal += vacuous.length;
    out.push({ scenario: name, seeds: ran, failed: failures.length, unknown, vacuous, failures });
    if (!args.json) {
      process.stdout.write(
        `${failures.length === 0 ? 'ok  ' : 'FAIL'} ${name.padEnd(24)} ${ran} seeds, ${failures.length} failed` +
          `${unknown ? ` (${unknown} of them lin-unknown)` : ''}; ${ops} ops, ${steps} steps, ` +
          `${snaps} snapshots, ${installs} installs, ${crashes} crashes${vacuous.length ? `; ${vacuous.length} vacuous (no ok operation)` : ''}; ` +
          `${((Date.now() - s0) / 1000).toFixed(1)} s\n`,
      );
    }
    if (args.failFast && failures.length > 0) break;
  }
  const failed = allFailures.length;
  const status = exitStatus(allFailures);
  if (args.json) {
    process.stdout.write(JSON.stringify({ ok: failed === 0, status, unknown: unknownTotal, vacuous: vacuousTotal, elapsedMs: Date.now() - t0, scenarios: out }, null, 2) + '\n');
  } else {
    const parts = [failed === 0 ? 'all passed' : `${failed} failed${unknownTotal ? ` (${unknownTotal} lin-unknown: no verdict within the check's budget)` : ''}`];
    if (vacuousTotal) parts.push(`${vacuousTotal} vacuous`);
    process.stdout.write(`${parts.join(', ')} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  process.exitCode = status;
}

// Run when started as a program (not when a test imports exitStatus).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
