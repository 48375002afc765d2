// Cluster benchmark: real node processes behind the cluster runner's router (src/cluster: Network,
// NodeProcess), no nemesis, latency 0, closed-loop clients (each sends its next request when the
// last one is answered), client i bound to node i mod N as in Maelstrom.
//   node bench/cluster.js [--time S] [--warmup S] [--runs R] [--conc 1,4,16,64] [--out docs/BENCHMARKS.md]
//                         [--only answer,single,raft3,raft3-nofsync] [--kv-keys 20] [--profile DIR]
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
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Network } from '../dist/cluster/network.js';
import { NodeProcess } from '../dist/cluster/node-process.js';
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

const MIXES = {
  mixed: { read: 0.5, write: 0.25, cas: 0.25 },
  write: { read: 0, write: 1, cas: 0 },
  read: { read: 1, write: 0, cas: 0 },
};

const SYSTEMS = [
  { name: 'answer', nodes: 3, mixes: ['mixed', 'write'], program: () => [ANSWER] },
  { name: 'single', nodes: 1, mixes: ['mixed', 'write'], program: () => [RUN, 'serve'] },
  { name: 'raft3', nodes: 3, mixes: ['mixed', 'write', 'read'], program: (dir) => [RUN, 'serve', '--data-dir', dir] },
  { name: 'raft3-nofsync', nodes: 3, mixes: ['mixed', 'write'], program: (dir) => [RUN, 'serve', '--data-dir', dir, '--fsync', 'false'] },
].filter((s) => !args.only || args.only.split(',').includes(s.name));

const CLK_TCK = 100; // Linux USER_HZ
function cpuMs(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  } catch {
    return NaN;
  }
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Start a system's nodes behind a fresh router; resolves once a write went through n1. */
async function startSystem(sys, run) {
  const start = performance.now();
  const clock = () => performance.now() - start;
  const net = new Network(() => 0, clock);
  const ids = Array.from({ length: sys.nodes }, (_, i) => `n${i + 1}`);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `raftsnap-bench-${sys.name}-`));
  const nodes = ids.map((id) => {
    const dir = path.join(root, id);
    fs.mkdirSync(dir, { recursive: true });
    const extra = args.profile && sys.name !== 'answer' ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(args.profile)}`, `--cpu-prof-name=${sys.name}-run${run}-${id}.cpuprofile`] : [];
    const n = new NodeProcess({ id, command: process.execPath, args: [...extra, ...sys.program(dir)], env: {}, logPath: path.join(root, `${id}.log`) }, clock);
    net.addNode(n);
    n.start();
    return n;
  });
  const control = net.client('c0');
  for (const n of nodes) {
    const r = await control.request(n.id, { type: 'init', node_id: n.id, node_ids: ids }, 10_000);
    if (r.reply?.type !== 'init_ok') throw new Error(`${sys.name}: ${n.id} did not answer init: ${JSON.stringify(r)}`);
  }
  // Wait for a leader: a write through n1 (forwarded by a follower) succeeds.
  const probe = net.client('cw');
  for (let i = 0; ; i++) {
    const r = await probe.request('n1', { type: 'write', key: 0, value: 0 }, 2000);
    if (r.reply?.type === 'write_ok') break;
    if (i > 100) throw new Error(`${sys.name}: no leader`);
    await sleep(50);
  }
  return { sys, net, nodes, control, root, ids };
}

async function stopSystem(s) {
  for (const n of s.nodes) n.closeStdin();
  await Promise.all(s.nodes.map((n) => n.waitExit(10_000)));
  for (const n of s.nodes) if (n.state !== 'down') n.kill();
  s.net.close();
  await Promise.all(s.nodes.map((n) => n.closeLog()));
  fs.rmSync(s.root, { recursive: true, force: true });
  // Let the machine settle between systems (the nodes' exits, the page cache).
  await sleep(300);
}

async function leaderOf(s) {
  if (s.sys.name === 'answer') return s.nodes[0];
  for (;;) {
    for (const n of s.nodes) {
      const r = await s.control.request(n.id, { type: 'get_stats' }, 2000);
      if (r.reply?.role === 'leader') return n;
    }
    await sleep(50);
  }
}

let clientSeq = 0;

/** One trial: `conc` closed-loop clients for warmup + time seconds; figures over the timed window. */
async function trial(s, mixName, conc) {
  const mix = MIXES[mixName];
  const leader = await leaderOf(s);
  let stop = false;
  let measuring = false;
  const lat = [];
  const latBy = { read: [], write: [], cas: [] };
  let ok = 0;
  let done = 0;
  let rng = 0x9e3779b9 ^ (conc * 7919 + clientSeq);
  const rnd = () => {
    // xorshift32: cheap and deterministic; the harness's own cost stays small
    rng ^= rng << 13;
    rng ^= rng >>> 17;
    rng ^= rng << 5;
    return (rng >>> 0) / 4294967296;
  };
  const worker = async (i) => {
    const client = s.net.client(`c${++clientSeq}`);
    const node = s.ids[i % s.ids.length];
    while (!stop) {
      const x = rnd();
      const key = Math.floor(rnd() * KEYS);
      const f = x < mix.read ? 'read' : x < mix.read + mix.write ? 'write' : 'cas';
      const body = f === 'read' ? { type: 'read', key } : f === 'write' ? { type: 'write', key, value: Math.floor(rnd() * 5) } : { type: 'cas', key, from: Math.floor(rnd() * 5), to: Math.floor(rnd() * 5) };
      const t0 = performance.now();
      const r = await client.request(node, body, 5000);
      const t1 = performance.now();
      if (!measuring) continue;
      done++;
      if (r.reply?.type === `${f}_ok`) {
        ok++;
        lat.push(t1 - t0);
        latBy[f].push(t1 - t0);
      }
    }
  };
  const workers = Array.from({ length: conc }, (_, i) => worker(i));
  await sleep(WARMUP * 1000);
  const sends0 = s.net.stats.all.sends;
  const servers0 = s.net.stats.servers.sends;
  const cpu0 = cpuMs(leader.pid);
  const self0 = process.cpuUsage();
  const w0 = performance.now();
  measuring = true;
  await sleep(TIME * 1000);
  measuring = false;
  const w1 = performance.now();
  const cpu1 = cpuMs(leader.pid);
  const self1 = process.cpuUsage(self0);
  const sends = s.net.stats.all.sends - sends0;
  const servers = s.net.stats.servers.sends - servers0;
  stop = true;
  await Promise.all(workers);
  const secs = (w1 - w0) / 1000;
  lat.sort((a, b) => a - b);
  const q = (p, xs = lat) => (xs.length ? xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] : NaN);
  for (const xs of Object.values(latBy)) xs.sort((a, b) => a - b);
  return {
    okPerS: ok / secs,
    donePerS: done / secs,
    p50: q(0.5),
    readP50: q(0.5, latBy.read),
    writeP50: q(0.5, latBy.write),
    p99: q(0.99),
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
      await stopSystem(s);
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
