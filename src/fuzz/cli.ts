/**
 * `npm run fuzz -- [--runs N] [--seed S] [--target NAME]...`: the mutation fuzzer of fuzz.ts over
 * every decoder, N cases per target (default 2000). Crashing inputs are saved in
 * fixtures/fuzz/crashes/ (replayed by test/fuzz/crashes.test.ts); exit 1 when there is one.
 */
import path from 'node:path';
import { ROOT, TARGETS, fuzz } from './fuzz.js';

function main(argv: string[]): number {
  let runs = 2000;
  let seed = Date.now() % 1_000_000;
  const targets: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    if (a === '--runs' && v !== undefined && /^\d+$/.test(v)) runs = Number(argv[++i]);
    else if (a === '--seed' && v !== undefined && /^\d+$/.test(v)) seed = Number(argv[++i]);
    else if (a === '--target' && v !== undefined && TARGETS.some((t) => t.name === v)) targets.push(argv[++i]!);
    else {
      process.stderr.write(`raftsnap fuzz: unknown argument "${a}" (use --runs N, --seed S, --target ${TARGETS.map((t) => t.name).join('|')})\n`);
      return 2;
    }
  }
  const saveDir = path.join(ROOT, 'fixtures', 'fuzz', 'crashes');
  const r = fuzz({ runs, seed, targets: targets.length > 0 ? targets : undefined, saveDir, slowMs: 5000, maxGrowthMb: 1024 });
  let total = 0;
  for (const [name, c] of Object.entries(r.cases)) {
    total += c.runs;
    process.stdout.write(`${name.padEnd(18)} ${String(c.runs).padStart(8)} cases  ${String(c.ok).padStart(7)} ok  ${String(c.refused).padStart(7)} refused  ${c.crashes} crashes  slowest ${c.slowestMs.toFixed(1)} ms\n`);
  }
  process.stdout.write(`${total} cases in ${(r.ms / 1000).toFixed(1)} s, seed ${r.seed}: ${r.crashes.length === 0 ? 'no crash' : `${r.crashes.length} CRASHES`}\n`);
  for (const c of r.crashes.slice(0, 20)) process.stdout.write(`  ${c.target}: ${c.error}${c.file ? ` (saved as ${path.relative(ROOT, c.file)})` : ''}\n`);
  return r.crashes.length === 0 ? 0 : 1;
}

process.exitCode = main(process.argv.slice(2));
