// Overload benchmark: 3 raftsnap nodes (fsync on) behind src/cluster's router, latency 0. First the
// capacity is measured with closed-loop clients (concurrency 64, Maelstrom's mix); then the same
// cluster is offered --factor times that many requests per second, open loop (sent on a clock,
// whatever the answers), for --time seconds. Reports each node's resident memory before and at its
// peak during the overload (sampled every 50 ms from /proc), what the requests got (ok, 11 shed, other
// errors, no answer), and the latency of the requests the cluster accepted.
//   node bench/overload.js [--time S] [--factor F] [--rate N] [--runs R] [--profile DIR] [--out docs/BENCHMARKS.md]
// --rate N offers N requests a second instead of F x the capacity measured (to compare two builds
// at the same offered load). --profile DIR writes each node's CPU profile there (node --cpu-prof). KEEP_OVERLOAD=1 keeps each run's data directories and node logs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Network } from '../dist/cluster/network.js';
import { NodeProcess } from '../dist/cluster/node-process.js';
import { cpuMs } from './harness.js';
import { fmt, median, writeBlock } from './report.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUN = path.join(ROOT, 'bin/run.js');
const { values: args } = parseArgs({
  strict: false,
  options: { time: { type: 'string', default: '8' }, factor: { type: 'string', default: '10' }, rate: { type: 'string' }, profile: { type: 'string' }, runs: { type: 'string', default: '3' }, out: { type: 'string' } },
});
const TIME = Number(args.time);
const FACTOR = Number(args.factor);
if (args.rate && args.out) throw new Error('--rate is for comparisons: the document reports --factor x the capacity');
const RUNS = Number(args.runs);
const KEYS = 20;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function rssMiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

let rng = 12345;
const rnd = () => {
  rng ^= rng << 13;
  rng ^= rng >>> 17;
  rng ^= rng << 5;
  return (rng >>> 0) / 4294967296;
};
function op() {
  const x = rnd();
  const key = Math.floor(rnd() * KEYS);
  if (x < 0.5) return { f: 'read', body: { type: 'read', key } };
  if (x < 0.75) return { f: 'write', body: { type: 'write', key, value: Math.floor(rnd() * 5) } };
  return { f: 'cas', body: { type: 'cas', key, from: Math.floor(rnd() * 5), to: Math.floor(rnd() * 5) } };
}

async function oneRun(run) {
  const start = performance.now();
  const clock = () => performance.now() - start;
  const net = new Network(() => 0, clock);
  const ids = ['n1', 'n2', 'n3'];
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'raftsnap-overload-'));
  const nodes = ids.map((id) => {
    const prof = args.profile ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(args.profile)}`, `--cpu-prof-name=overload-run${run}-${id}.cpuprofile`] : [];
    const n = new NodeProcess({ id, command: process.execPath, args: [...prof, RUN, 'serve', '--data-dir', path.join(root, id)], env: {}, logPath: path.join(root, `${id}.log`) }, clock);
    net.addNode(n);
    n.start();
    return n;
  });
  const control = net.client('c0');
  for (const n of nodes) await control.request(n.id, { type: 'init', node_id: n.id, node_ids: ids }, 10_000);
  const probe = net.client('cw');
  while ((await probe.request('n1', { type: 'write', key: 0, value: 0 }, 2000)).reply?.type !== 'write_ok') await sleep(50);

  // 1. Capacity: closed loop, 64 clients, 3 s.
  let stop = false;
  let ok = 0;
  let measuring = false;
  const workers = Array.from({ length: 64 }, async (_, i) => {
    const c = net.client(`k${i}`);
    while (!stop) {
      const { f, body } = op();
      const r = await c.request(ids[i % 3], body, 5000);
      if (measuring && r.reply?.type === `${f}_ok`) ok++;
    }
  });
  await sleep(1000);
  measuring = true;
  await sleep(3000);
  measuring = false;
  stop = true;
  await Promise.all(workers);
  const capacity = ok / 3;
  await sleep(500);
  const rssBefore = nodes.map((n) => rssMiB(n.pid));
  // The highest term any node reports: leader elections during the overload show as new terms.
  const maxTerm = async () => {
    const rs = await Promise.all(ids.map((id) => control.request(id, { type: 'get_stats' }, 10_000)));
    return Math.max(...rs.map((x) => (typeof x.reply?.term === 'number' ? x.reply.term : 0)));
  };
  const termBefore = await maxTerm();

  // 2. Overload: open loop at FACTOR x capacity for TIME s; every 5 ms a burst.
  const rate = args.rate ? Number(args.rate) : capacity * FACTOR;
  const counts = { sent: 0, ok: 0, shed: 0, otherError: 0, timeout: 0 };
  const lat = [];
  const peak = [...rssBefore];
  const sampler = setInterval(() => nodes.forEach((n, i) => (peak[i] = Math.max(peak[i], rssMiB(n.pid)))), 50);
  const clients = Array.from({ length: 256 }, (_, i) => net.client(`o${i}`));
  const inflight = [];
  const t0 = performance.now();
  // CPU shares over the overload phase (1.00 = one core of 2): each node's (from /proc) and this
  // process's, the router and the open-loop clients.
  const cpu0 = nodes.map((n) => cpuMs(n.pid));
  const benchCpu0 = process.cpuUsage();
  let sentSoFar = 0;
  while (performance.now() - t0 < TIME * 1000) {
    const due = Math.floor(((performance.now() - t0) / 1000) * rate);
    for (; sentSoFar < due; sentSoFar++) {
      const { f, body } = op();
      const ci = sentSoFar % clients.length;
      const s = performance.now();
      counts.sent++;
      inflight.push(
        clients[ci].request(ids[ci % 3], body, 5000).then((r) => {
          const b = r.reply;
          if (!b) counts.timeout++;
          else if (b.type === `${f}_ok`) {
            counts.ok++;
            lat.push(performance.now() - s);
          } else if (b.type === 'error' && b.code === 11) counts.shed++;
          else counts.otherError++;
        }),
      );
    }
    await sleep(5);
  }
  const sendSecs = (performance.now() - t0) / 1000;
  const nodeCpu = nodes.map((n, i) => (cpuMs(n.pid) - cpu0[i]) / (sendSecs * 1000));
  const bc = process.cpuUsage(benchCpu0);
  const benchCpu = (bc.user + bc.system) / 1000 / (sendSecs * 1000);
  await Promise.all(inflight);
  const newTerms = (await maxTerm()) - termBefore;
  clearInterval(sampler);
  for (const n of nodes) n.closeStdin();
  await Promise.all(nodes.map((n) => n.waitExit(10_000)));
  for (const n of nodes) if (n.state !== 'down') n.kill();
  net.close();
  await Promise.all(nodes.map((n) => n.closeLog()));
  if (process.env.KEEP_OVERLOAD) process.stderr.write(`kept ${root}\n`); else fs.rmSync(root, { recursive: true, force: true });
  lat.sort((a, b) => a - b);
  const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : NaN);
  const r = {
    capacity,
    offered: rate,
    sentPerS: counts.sent / sendSecs,
    okPerS: counts.ok / sendSecs,
    ...counts,
    p50: q(0.5),
    p99: q(0.99),
    max: lat.length ? lat[lat.length - 1] : NaN,
    rssBefore: Math.max(...rssBefore),
    rssPeak: Math.max(...peak),
    newTerms,
    nodeCpuMax: Math.max(...nodeCpu),
    nodeCpuSum: nodeCpu.reduce((a, b) => a + b, 0),
    benchCpu,
  };
  process.stderr.write(`run ${run}: ${JSON.stringify(r)}\n`);
  return r;
}

const rs = [];
for (let run = 1; run <= RUNS; run++) rs.push(await oneRun(run));
const m = (k) => median(rs.map((r) => r[k]));
const n0 = (x) => Math.round(x).toLocaleString('en-US');
let text = `### Overload: ${FACTOR}x the measured capacity\n\n`;
text += `Command: \`node bench/overload.js --time ${TIME} --factor ${FACTOR} --runs ${RUNS}\` (via \`npm run bench\`). Machine: ${os.cpus().length} cores, Node ${process.version}. `;
text += `3 raftsnap nodes with data directories (fsync on) behind src/cluster's router, latency 0, Maelstrom's mix on keys 0..${KEYS - 1}. Capacity = ok ops/s of 64 closed-loop clients over 3 s; then ${FACTOR}x that rate is offered open loop (requests sent on a clock, whatever the answers, to all three nodes) for ${TIME} s, and every request is waited for (5 s timeout). `;
text += `A node answers 11 at once, before anything enters a log, past 1,024 requests in flight or 4,096 queued inputs; while its stdout is full it stops reading stdin. Resident memory (VmRSS) is sampled every 50 ms; "new terms" = how far the highest term among the nodes (get_stats) moved from before the overload to after it (0: the same leader throughout); CPU over the overload's sending phase (1.00 = one core of ${os.cpus().length}): "busiest node" = the node with the most, "nodes" = the three together, "bench" = this process (the router and the open-loop clients); medians of ${RUNS} runs.\n\n`;
text += `| capacity ok/s | offered/s | sent/s (harness) | ok/s under overload | ok | shed (11) | other errors | no answer | accepted p50 ms | p99 ms | max ms | largest node RSS before MiB | peak during MiB | new terms | busiest node CPU | nodes CPU | bench CPU |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n`;
text += `| ${n0(m('capacity'))} | ${n0(m('offered'))} | ${n0(m('sentPerS'))} | ${n0(m('okPerS'))} | ${n0(m('ok'))} | ${n0(m('shed'))} | ${n0(m('otherError'))} | ${n0(m('timeout'))} | ${fmt(m('p50'))} | ${fmt(m('p99'))} | ${fmt(m('max'))} | ${fmt(m('rssBefore'))} | ${fmt(m('rssPeak'))} | ${n0(m('newTerms'))} | ${m('nodeCpuMax').toFixed(2)} | ${m('nodeCpuSum').toFixed(2)} | ${m('benchCpu').toFixed(2)} |\n\n`;
process.stdout.write(text);
if (args.out) writeBlock(args.out, 'overload', text);
