/**
 * `npm run crash-check -- [--seeds N] [--first S] [--ops N] [--keys K] [--value-chars C]
 *                         [--cuts representative|every-sector] [--garbage random|zeros|none]
 *                         [--pid new|same] [--states-per-point N] [--no-recovery-crashes]
 *                         [--no-recheck] [--json]`
 *
 * The crash-consistency check (crash-check.ts; docs/SIMULATION.md, "Crash consistency: every
 * crash state") in a larger version than the suite's: by default 3 workloads (seeds 1-3) of 40
 * operations, every sector prefix of unsynced writes, and crashes during each restart's recovery
 * too. Unless --pid / --garbage say otherwise, odd seeds restart with a new pid and garble with
 * random bytes, even seeds restart with the same pid (pid 1 in a container) and garble with zeros.
 * Exit status: 0 when every crash state passed, 1 when one failed, 2 on a usage error.
 */
import { pathToFileURL } from 'node:url';
import { formatCrashReport, runCrashCheck, type CrashCheckOptions, type CrashCheckReport } from './crash-check.js';

interface Args {
  seeds: number;
  first: number;
  opts: CrashCheckOptions;
  pid: 'new' | 'same' | null;
  garbage: 'random' | 'zeros' | 'none' | null;
  json: boolean;
}

function usage(msg?: string): never {
  if (msg) process.stderr.write(`crash-check: ${msg}\n`);
  process.stderr.write(
    'usage: npm run crash-check -- [--seeds N] [--first S] [--ops N] [--keys K] [--value-chars C]\n' +
      '                              [--cuts representative|every-sector] [--garbage random|zeros|none] [--pid new|same]\n' +
      '                              [--states-per-point N] [--no-recovery-crashes] [--no-recheck] [--json]\n',
  );
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { seeds: 3, first: 1, opts: { ops: 40, valueChars: 400, cuts: 'every-sector', recoveryCrashes: true }, pid: null, garbage: null, json: false };
  const int = (v: string | undefined, flag: string, min = 0): number => {
    if (v === undefined || !/^\d+$/.test(v) || Number(v) < min) usage(`${flag} needs an integer of at least ${min}`);
    return Number(v);
  };
  const oneOf = <T extends string>(v: string | undefined, flag: string, values: readonly T[]): T => {
    if (v === undefined || !(values as readonly string[]).includes(v)) usage(`${flag} takes ${values.join(' or ')}`);
    return v as T;
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    switch (f) {
      case '--seeds':
        a.seeds = int(argv[++i], f, 1);
        break;
      case '--first':
        a.first = int(argv[++i], f);
        break;
      case '--ops':
        a.opts.ops = int(argv[++i], f, 1);
        break;
      case '--keys':
        a.opts.keys = int(argv[++i], f, 1);
        break;
      case '--value-chars':
        a.opts.valueChars = int(argv[++i], f, 1);
        break;
      case '--states-per-point':
        a.opts.statesPerPoint = int(argv[++i], f, 2);
        break;
      case '--cuts':
        a.opts.cuts = oneOf(argv[++i], f, ['representative', 'every-sector'] as const);
        break;
      case '--garbage':
        a.garbage = oneOf(argv[++i], f, ['random', 'zeros', 'none'] as const);
        break;
      case '--pid':
        a.pid = oneOf(argv[++i], f, ['new', 'same'] as const);
        break;
      case '--no-recovery-crashes':
        a.opts.recoveryCrashes = false;
        break;
      case '--no-recheck':
        a.opts.recheck = false;
        break;
      case '--json':
        a.json = true;
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
  const t0 = performance.now();
  const runs: Array<{ options: CrashCheckOptions; report: CrashCheckReport }> = [];
  for (let seed = args.first; seed < args.first + args.seeds; seed++) {
    const odd = seed % 2 === 1;
    const options: CrashCheckOptions = { ...args.opts, seed, restartPid: args.pid ?? (odd ? 'new' : 'same'), garbage: args.garbage ?? (odd ? 'random' : 'zeros') };
    const report = await runCrashCheck(options);
    runs.push({ options, report });
    if (!args.json) {
      const shown = Object.entries(options).map(([k, v]) => `${k}=${String(v)}`).join(' ');
      process.stdout.write(`${report.failures.length === 0 ? 'ok  ' : 'FAIL'} ${shown}\n${formatCrashReport(report)}\n`);
    }
  }
  const failed = runs.filter((r) => r.report.failures.length > 0).length;
  const sum = (f: (r: CrashCheckReport) => number): number => runs.reduce((n, r) => n + f(r.report), 0);
  const totals = {
    runs: runs.length,
    failed,
    crashPoints: sum((r) => r.crashPoints),
    crashStates: sum((r) => r.crashStates),
    distinctStates: sum((r) => r.distinctStates),
    recoveryCrashPoints: sum((r) => r.recoveryCrashPoints),
    recoveryCrashStates: sum((r) => r.recoveryCrashStates),
    recoveryDistinctStates: sum((r) => r.recoveryDistinctStates),
    elapsedMs: Math.round(performance.now() - t0),
  };
  if (args.json) process.stdout.write(JSON.stringify({ ok: failed === 0, ...totals, runs }, null, 2) + '\n');
  else {
    process.stdout.write(
      `${failed === 0 ? 'all passed' : `${failed} of ${runs.length} runs FAILED`}: ${totals.runs} workloads, ${totals.crashPoints} crash points, ` +
        `${totals.crashStates} crash states (${totals.distinctStates} distinct), and during their recoveries ${totals.recoveryCrashPoints} crash points, ` +
        `${totals.recoveryCrashStates} crash states (${totals.recoveryDistinctStates} distinct), in ${(totals.elapsedMs / 1000).toFixed(1)} s\n`,
    );
  }
  process.exitCode = failed === 0 ? 0 : 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
