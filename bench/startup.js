// Start-up of the offline commands as whole processes, against a bare `node -e 0`.
//   node bench/startup.js [--runs N] [--out docs/BENCHMARKS.md]      (build first: npm run build)
// With hyperfine installed it is used (--warmup 3, --runs N, medians from its JSON); otherwise
// each command is spawned N times, interleaved with the others, after 3 warm-up rounds, and the
// median and the fastest run of each are reported. The goal (issue 10): `inspect FILE --header`
// under 2x `node -e 0`.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fmt, median, writeBlock } from './report.js';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '31' }, out: { type: 'string' } } });
const RUNS = Number(args.runs);
const node = process.execPath;
const cases = [
  ['node -e 0', [node, '-e', '0']],
  ['raftsnap inspect FILE --header', [node, 'bin/run.js', 'inspect', 'fixtures/snapshots/good.snap', '--header']],
  ['raftsnap inspect FILE --header --json', [node, 'bin/run.js', 'inspect', 'fixtures/snapshots/good.snap', '--header', '--json']],
  ['raftsnap inspect FILE', [node, 'bin/run.js', 'inspect', 'fixtures/snapshots/good.snap']],
  ['raftsnap dump FILE --key 1', [node, 'bin/run.js', 'dump', 'fixtures/snapshots/good.snap', '--key', '1']],
  ['raftsnap hash FILE', [node, 'bin/run.js', 'hash', 'fixtures/snapshots/good.snap']],
  ['raftsnap --version', [node, 'bin/run.js', '--version']],
  ['raftsnap inspect --help (oclif)', [node, 'bin/run.js', 'inspect', '--help']],
];

function hasHyperfine() {
  return spawnSync('hyperfine', ['--version'], { encoding: 'utf8' }).status === 0;
}

function withHyperfine() {
  const json = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rs-startup-')), 'h.json');
  const cmds = cases.map(([, argv]) => argv.map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' '));
  const r = spawnSync('hyperfine', ['--warmup', '3', '--runs', String(RUNS), '-N', '--export-json', json, ...cmds], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
  const res = JSON.parse(fs.readFileSync(json, 'utf8')).results;
  return cases.map(([name], i) => ({ name, median: res[i].median * 1000, min: res[i].min * 1000 }));
}

function withSpawn() {
  const times = cases.map(() => []);
  for (let round = -3; round < RUNS; round++) {
    cases.forEach(([, argv], i) => {
      const t = process.hrtime.bigint();
      const r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
      const ms = Number(process.hrtime.bigint() - t) / 1e6;
      if (r.status !== 0) throw new Error(`${argv.join(' ')}: exit ${r.status}: ${r.stderr}`);
      if (round >= 0) times[i].push(ms);
    });
  }
  return cases.map(([name], i) => ({ name, median: median(times[i]), min: Math.min(...times[i]) }));
}

const tool = hasHyperfine() ? 'hyperfine' : 'spawnSync';
const rows = tool === 'hyperfine' ? withHyperfine() : withSpawn();
const base = rows[0];
const lines = [
  '### Start-up of the offline commands',
  '',
  `Command: \`node bench/startup.js --runs ${RUNS}\` (via \`npm run bench\`). Machine: ${os.cpus().length} cores, Node ${process.version}. Each line is a whole process (\`node bin/run.js ...\` in the repository, fixtures/snapshots/good.snap), timed with ${tool === 'hyperfine' ? 'hyperfine (-N, 3 warm-ups)' : 'spawnSync, the commands interleaved, 3 warm-up rounds'}; median and fastest of ${RUNS} runs, and the median against the median of \`node -e 0\`.`,
  '',
  '| command | median ms | fastest ms | median vs node -e 0 |',
  '|---|---:|---:|---:|',
  ...rows.map((r) => `| ${r.name} | ${fmt(r.median)} | ${fmt(r.min)} | ${(r.median / base.median).toFixed(2)}x |`),
  '',
];
const text = lines.join('\n');
process.stdout.write(text + '\n');
if (args.out) writeBlock(args.out, 'startup', text);
