// Cluster benchmark: real node processes behind the cluster runner's router (src/cluster: Network,
// NodeProcess), no nemesis, latency 0, closed-loop clients (each sends its next request when the
// last one is answered), client i bound to node i mod N as in Maelstrom.
//   node bench/cluster.js [--time S] [--warmup S] [--runs R] [--conc 1,4,16,64] [--out docs/BENCHMARKS.md]
//                         [--only answer,single,raft3,raft3-nofsync] [--mixes mixed,write,read] [--kv-keys 20] [--profile DIR]
// Systems, all through the same router and clients in the same run:
//   answer         3 "answer at once" nodes (bench/answer-node.js): the harness's limit
//   single         1 raftsnap serve node in memory (no Raft round trips, no disk)
//   raft3          3 raftsnap serve nodes with data directories, fsync on (the default)
//   raft3-nofsync  the same with --fsync false
// Mixes: mixed (Maelstrom's lin-kv: reads 50%, write 25%, cas 25%), write (writes only),
// read (reads only, raft3 only). Keys 0..19, values 0..4.
// Per trial: ok ops/s, completed ops/s, p50/p99/max latency of ok ops, messages per operation
// (all, and between nodes), the CPU share of the leader process (its user+system time over the
// window, from /proc; 1.0 = one core) and of the benchmark process itself (router + clients).
// Every figure is the median over R runs; the runs interleave the systems.
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { closedLoop, cpuMs, leaderOf as raftLeaderOf, MIXES, pickOp, quantile as q, sleep, startCluster, stopCluster } from './harness.js';
import { fmt, median, writeBlock } from './report.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUN = path.join(ROOT, 'bin/run.js');
const ANSWER = path.join(ROOT, 'bench/answer-node.js');

// Not strict: `npm run bench` passes the same arguments to every benchmark.
const { values: args } = parseArgs({
  strict: false,
  options: {
    time: { type: 'string', default: '4' },
    warmup: { type: 'string', default: '1' },
    runs: { type: 'string', default: '3' },
    conc: { type: 'string', default: '1,4,16,64' },
    only: { type: 'string' },
    // A subset of the mixes, for quick comparisons (the document gets all of them).
    mixes: { type: 'string' },
    out: { type: 'string' },
    profile: { type: 'string' },
    'kv-keys': { type: 'string', default: '20' },
  },
});
const TIME = Number(args.time);
const WARMUP = Number(args.warmup);
const RUNS = Number(args.runs);
const CONCS = args.conc.split(',').map(Number);
const KEYS = Number(args['kv-keys']);

const SYSTEMS = [
  { name: 'answer', nodes: 3, mixes: ['mixed', 'write'], program: () => [ANSWER] },
  { name: 'single', nodes: 1, mixes: ['mixed', 'write'], program: () => [RUN, 'serve'] },
  { name: 'raft3', nodes: 3, mixes: ['mixed', 'write', 'read'], program: (dir) => [RUN, 'serve', '--data-dir', dir] },
  { name: 'raft3-nofsync', nodes: 3, mixes: ['mixed', 'write'], program: (dir) => [RUN, 'serve', '--data-dir', dir, '--fsync', 'false'] },
]
  .filter((s) => !args.only || args.only.split(',').includes(s.name))
  .map((s) => (args.mixes ? { ...s, mixes: s.mixes.filter((m) => args.mixes.split(',').includes(m)) } : s));

/** Start a system's nodes behind a fresh router; resolves once a write went through n1. */
async function startSystem(sys, run) {
  const profile = (id) => (args.profile && sys.name !== 'answer' ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(args.profile)}`, `--cpu-prof-name=${sys.name}-run${run}-${id}.cpuprofile`] : []);
  const c = await startCluster({ name: sys.name, count: sys.nodes, program: (dir, id) => [...profile(id), ...sys.program(dir)] });
  return { sys, ...c };
}

async function leaderOf(s) {
  if (s.sys.name === 'answer') return s.nodes[0];
  return raftLeaderOf(s);
}

/** One trial: `conc` closed-loop clients for warmup + time seconds; figures over the timed window. */
async function trial(s, mixName, conc) {
  const mix = MIXES[mixName];
  const leader = await leaderOf(s);
  const load = closedLoop(s, conc, (rnd) => pickOp(mix, rnd, (r) => Math.floor(r() * KEYS)), { salt: conc * 7919 });
  await sleep(WARMUP * 1000);
  const sends0 = s.net.stats.all.sends;
  const servers0 = s.net.stats.servers.sends;
  const cpu0 = cpuMs(leader.pid);
  const self0 = process.cpuUsage();
  const w0 = performance.now();
  load.measure(true);
  await sleep(TIME * 1000);
  load.measure(false);
  const w1 = performance.now();
  const cpu1 = cpuMs(leader.pid);
  const self1 = process.cpuUsage(self0);
  const sends = s.net.stats.all.sends - sends0;
  const servers = s.net.stats.servers.sends - servers0;
  const { ok, done, lat, latBy } = await load.stop();
  const secs = (w1 - w0) / 1000;
  lat.sort((a, b) => a - b);
  for (const xs of Object.values(latBy)) xs.sort((a, b) => a - b);
  return {
    okPerS: ok / secs,
    donePerS: done / secs,
    p50: q(lat, 0.5),
    readP50: q(latBy.read, 0.5),
    writeP50: q(latBy.write, 0.5),
    p99: q(lat, 0.99),
    max: lat.length ? lat[lat.length - 1] : NaN,
    msgsPerOp: done ? sends / done : NaN,
    nodeMsgsPerOp: done ? servers / done : NaN,
    leaderCpu: (cpu1 - cpu0) / (w1 - w0),
    benchCpu: (self1.user + self1.system) / 1000 / (w1 - w0),
  };
}

const results = new Map(); // key -> array of trial results
const keyOf = (sys, mix, conc) => `${sys}|${mix}|${conc}`;

for (let run = 1; run <= RUNS; run++) {
  for (const sys of SYSTEMS) {
    const s = await startSystem(sys, run);
    try {
      for (const mix of sys.mixes) {
        for (const conc of CONCS) {
          const r = await trial(s, mix, conc);
          const k = keyOf(sys.name, mix, conc);
          if (!results.has(k)) results.set(k, []);
          results.get(k).push(r);
          process.stderr.write(`run ${run} ${sys.name} ${mix} c=${conc}: ${r.okPerS.toFixed(0)} ok/s p50 ${r.p50.toFixed(2)} (read ${r.readP50.toFixed(2)}, write ${r.writeP50.toFixed(2)}) p99 ${r.p99.toFixed(2)} ms, ${r.msgsPerOp.toFixed(2)} msgs/op, leader cpu ${r.leaderCpu.toFixed(2)}\n`);
        }
      }
    } finally {
      await stopCluster(s);
    }
  }
}

function med(k, field) {
  const rs = results.get(k);
  return rs ? median(rs.map((r) => r[field])) : NaN;
}

const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '–');
const f1 = (x) => (Number.isFinite(x) ? fmt(x) : '–');
const ok0 = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');
const cmd = `node bench/cluster.js --time ${TIME} --warmup ${WARMUP} --runs ${RUNS} --conc ${CONCS.join(',')}${args.only ? ` --only ${args.only}` : ''}`;

let text = `### Cluster: ok ops/s and latency through the cluster runner's router\n\n`;
text += `Command: \`${cmd}\` (via \`npm run bench\`). Machine: ${os.cpus().length} cores, ${os.cpus()[0]?.model.trim() ?? '?'}, Node ${process.version}. `;
text += `Real node processes behind src/cluster's router (Network, latency 0), no nemesis, closed-loop clients (client i bound to node i mod N), keys 0..${KEYS - 1}; `;
text += `${WARMUP} s warm-up then ${TIME} s measured per trial; medians of ${RUNS} runs, the systems interleaved in every run. `;
text += `Mixes: **mixed** = Maelstrom's lin-kv (reads 50%, write 25%, cas 25%), **write** = writes only, **read** = reads only. `;
text += `"ok/s" counts operations answered ok (a cas whose precondition fails is a definite error, not ok); latencies are of ok operations. `;
text += `"msgs/op" = messages sent per operation (clients and nodes; "node" = between nodes only). "leader CPU" = the leader process's user+system time over the window (1.00 = one core of ${os.cpus().length}); "bench CPU" = the router and clients.\n\n`;
text += `Systems: **answer** = 3 "answer at once" nodes (bench/answer-node.js: a reply from a local map, no Raft, no disk), the fastest any node can be through this harness here; **single** = one raftsnap node in memory; **raft3** = 3 raftsnap nodes with data directories, fsync on (default flags); **raft3-nofsync** = the same with \`--fsync false\`.\n\n`;
text += `| system | mix | clients | ok/s | vs answer | p50 ms | p99 ms | max ms | msgs/op | node msgs/op | leader CPU | bench CPU |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n`;
for (const sys of SYSTEMS) {
  for (const mix of sys.mixes) {
    for (const conc of CONCS) {
      const k = keyOf(sys.name, mix, conc);
      const okS = med(k, 'okPerS');
      const lim = med(keyOf('answer', mix, conc), 'okPerS');
      text += `| ${sys.name} | ${mix} | ${conc} | ${ok0(okS)} | ${Number.isFinite(lim) ? `${((100 * okS) / lim).toFixed(0)}%` : '–'} | ${f2(med(k, 'p50'))} | ${f1(med(k, 'p99'))} | ${f1(med(k, 'max'))} | ${f2(med(k, 'msgsPerOp'))} | ${f2(med(k, 'nodeMsgsPerOp'))} | ${f2(med(k, 'leaderCpu'))} | ${f2(med(k, 'benchCpu'))} |\n`;
    }
  }
}
// Targets (issue 8): 3 nodes, fsync on, Maelstrom's mix.
const T = (conc, f) => med(keyOf('raft3', 'mixed', conc), f);
const check = (b) => (b ? 'met' : '**missed**');
const lim16 = med(keyOf('answer', 'mixed', 16), 'okPerS');
const reads = (conc) => med(keyOf('raft3', 'read', conc), 'okPerS');
const writes = (conc) => med(keyOf('raft3', 'write', conc), 'okPerS');
text += `\nTargets (raft3, fsync on, mixed):\n\n| target | measured | |\n|---|---|---|\n`;
text += `| concurrency 16: ≥ 5,000 ok/s | ${ok0(T(16, 'okPerS'))} ok/s | ${check(T(16, 'okPerS') >= 5000)} |\n`;
text += `| concurrency 16: p99 < 20 ms | ${f1(T(16, 'p99'))} ms | ${check(T(16, 'p99') < 20)} |\n`;
text += `| concurrency 16: ≥ 50% of answer-at-once | ${Number.isFinite(lim16) ? ((100 * T(16, 'okPerS')) / lim16).toFixed(0) : '–'}% (answer: ${ok0(lim16)} ok/s) | ${check(T(16, 'okPerS') >= 0.5 * lim16)} |\n`;
text += `| concurrency 64: ≥ 10,000 ok/s | ${ok0(T(64, 'okPerS'))} ok/s | ${check(T(64, 'okPerS') >= 10000)} |\n`;
text += `| concurrency 1: p50 < 1 ms | ${f2(T(1, 'p50'))} ms | ${check(T(1, 'p50') < 1)} |\n`;
for (const conc of CONCS) {
  const r = reads(conc) / writes(conc);
  text += `| reads ≥ 3x writes, concurrency ${conc} | ${ok0(reads(conc))} vs ${ok0(writes(conc))} ok/s = ${Number.isFinite(r) ? r.toFixed(2) : '–'}x | ${check(r >= 3)} |\n`;
}
text += '\n';
process.stdout.write(text);
if (args.out) writeBlock(args.out, 'cluster', text);
