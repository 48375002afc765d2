// Runs every benchmark and records the figures in docs/BENCHMARKS.md.
//   npm run bench            (build first: npm run build)
import { spawnSync } from 'node:child_process';

const benches = [
  ['bench/snapshot.js', '--out', 'docs/BENCHMARKS.md', ...process.argv.slice(2)],
  ['bench/snapshot-pause.js', '--out', 'docs/BENCHMARKS.md', ...process.argv.slice(2)],
  ['bench/cluster.js', '--out', 'docs/BENCHMARKS.md', ...process.argv.slice(2)],
  ['bench/snapshot-load.js', '--out', 'docs/BENCHMARKS.md', ...process.argv.slice(2)],
  ['bench/overload.js', '--out', 'docs/BENCHMARKS.md', ...process.argv.slice(2)],
  ['bench/install.js', '--out', 'docs/BENCHMARKS.md', ...process.argv.slice(2)],
  ['bench/recovery.js', '--out', 'docs/BENCHMARKS.md', ...process.argv.slice(2)],
  ['bench/catchup.js', '--out', 'docs/BENCHMARKS.md', ...process.argv.slice(2)],
  ['bench/tools.js', '--out', 'docs/BENCHMARKS.md', ...process.argv.slice(2)],
  ['bench/startup.js', '--out', 'docs/BENCHMARKS.md', ...process.argv.slice(2)],
];
for (const args of benches) {
  const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
