// Leader snapshots of a large state under client load: client latency and the leader's longest
// event-loop pause with automatic snapshots on, against the same cluster with them off.
//   node bench/snapshot-load.js [--keys N] [--state int|mixed] [--runs R] [--time S] [--warmup S]
//                               [--conc C] [--threshold T] [--snaps K] [--out docs/BENCHMARKS.md]   (build first)
// Three real `node bin/run.js serve --data-dir DIR` processes behind the cluster runner's router
// (bench/harness.js: src/cluster's Network, latency 0), every node starting on a directory holding
// the same N-key snapshot (bench/large-state.js, written as a node writes it), so that the state
// machine holds N keys. C closed-loop clients (client i bound to node i mod 3) run Maelstrom's mix
// (reads 50%, write 25%, cas 25%) on keys drawn from the N, for a warm-up and then S measured
// seconds. Two configurations, interleaved over R runs (a fresh cluster for each trial):
//   off = --snapshot-threshold 0 --snapshot-threshold-bytes 0: no automatic snapshot;
//   on  = --snapshot-threshold T --snapshot-threshold-bytes 0, T picked from the log entries per
//         second the first `off` trial measured so that about K snapshots fall in the window
//         (or given with --threshold).
// Per trial: ok ops/s, p50/p99/max latency of ok ops; with snapshots on, also the p99 of the ok ops
// that overlapped one of the leader's snapshots (its start and end from the leader's log line
// "snapshot ... written (... ms)", --log-level debug, and a get_stats poll every 20 ms that sees
// its snapshots_taken grow); every node's snapshots_taken over the window; and each node's longest
// event-loop pause over the window: bench/loop-delay-preload.cjs in every node (monitorEventLoopDelay,
// 1 ms resolution), its histogram reset by a SIGUSR2 at the window's start and read at its end,
// and the leader's longest pause during its snapshots against outside them, from the same
// preload's 50 ms slices (a slice counts as during a snapshot when a pause it may show overlapped one),
// and the leader's garbage-collection pauses (the preload's PerformanceObserver), during and outside.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { closedLoop, cpuMs, leaderOf, MIXES, pickOp, quantile, seedDataDir, sleep, startCluster, stopCluster, writeStateSnapshot } from './harness.js';
import { forEachPair } from './large-state.js';
import { fmt, median, writeBlock } from './report.js';

const { values: args } = parseArgs({
  // Not strict: `npm run bench` passes the same arguments to every benchmark.
  strict: false,
  options: {
    keys: { type: 'string', default: '1000000' },
    state: { type: 'string', default: 'int' },
    runs: { type: 'string', default: '3' },
    time: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    conc: { type: 'string', default: '16' },
    threshold: { type: 'string' },
    snaps: { type: 'string', default: '5' },
    out: { type: 'string' },
  },
});
const KEYS = Number(args.keys);
const RUNS = Number(args.runs);
const TIME = Number(args.time);
const WARMUP = Number(args.warmup);
const CONC = Number(args.conc);
const SNAPS = Number(args.snaps);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUN = path.join(ROOT, 'bin/run.js');
const PRELOAD = path.join(ROOT, 'bench/loop-delay-preload.cjs');
const IDS = ['n1', 'n2', 'n3'];
const META = { index: KEYS, term: 1, config: IDS };
const POLL_MS = 20;
const SLICE_MS = 50;
const epoch = (t) => performance.timeOrigin + t;
const GC_KINDS = { 1: 'minor', 4: 'major', 8: 'incremental', 16: 'weak callbacks' };

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'raftsnap-snapshot-load-'));
// The keys clients draw from: integers 0..N-1, or the mixed state's own keys.
const stateKeys = args.state === 'int' ? null : [];
const t0 = performance.now();
const snapFile = await writeStateSnapshot(root, META, (each) =>
  forEachPair(args.state, KEYS, (k, v) => {
    stateKeys?.push(k);
    each(k, v);
  }),
);
const snapBytes = fs.statSync(snapFile).size;
process.stderr.write(`snapshot of ${KEYS} ${args.state} keys: ${snapBytes} bytes (${(performance.now() - t0).toFixed(0)} ms)\n`);
const pickKey = stateKeys ? (r) => stateKeys[Math.floor(r() * KEYS)] : (r) => Math.floor(r() * KEYS);

async function statsOf(s) {
  const out = {};
  for (const n of s.nodes) {
    const r = await s.control.request(n.id, { type: 'get_stats' }, 10_000);
    if (r.reply?.type !== 'get_stats_ok') throw new Error(`${n.id}: get_stats: ${JSON.stringify(r)}`);
    out[n.id] = r.reply;
  }
  return out;
}

/** Waits until every node's state machine holds the seeded state. */
async function allLoaded(s) {
  for (let i = 0; ; i++) {
    const st = await statsOf(s);
    if (Object.values(st).every((x) => x.keys >= KEYS && x.applied >= KEYS)) return;
    if (i > 3000) throw new Error(`the nodes never loaded the state: ${JSON.stringify(st)}`);
    await sleep(50);
  }
}

/** The `n`th "signal" line of a node's loop-delay file (waits for it). */
async function delayLine(file, n) {
  for (let i = 0; i < 250; i++) {
    const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('"signal"')) : [];
    if (lines.length >= n) return JSON.parse(lines[n - 1]);
    await sleep(20);
  }
  throw new Error(`no loop-delay line ${n} in ${file}`);
}

const SNAP_LINE = /: snapshot (\d+)\/(\d+) written \((\d+) keys, (\d+) bytes, (\d+) ms\)/;

let trialNo = 0;
async function trial(cfg, threshold, run) {
  const tdir = path.join(root, `trial-${++trialNo}-${cfg}`);
  fs.mkdirSync(tdir);
  const delayFile = (id) => path.join(tdir, `${id}.delay.jsonl`);
  const flags = cfg === 'off' ? ['--snapshot-threshold', '0', '--snapshot-threshold-bytes', '0'] : ['--snapshot-threshold', String(threshold), '--snapshot-threshold-bytes', '0'];
  const s = await startCluster({
    name: `snapload-${cfg}`,
    count: IDS.length,
    prepare: (dir, id) => seedDataDir(dir, id, META, snapFile),
    program: (dir) => ['--require', PRELOAD, RUN, 'serve', '--data-dir', dir, '--log-level', 'debug', ...flags],
    env: (id) => ({ RAFTSNAP_LOOP_DELAY_FILE: delayFile(id), RAFTSNAP_LOOP_DELAY_SLICE_MS: String(SLICE_MS) }),
  });
  let leader;
  let snapLines = [];
  // Every node's snapshot log lines (index, keys, bytes, ms), for the followers' overlap.
  const nodeSnaps = {};
  const r = {};
  try {
    await allLoaded(s);
    leader = await leaderOf(s);
    const load = closedLoop(s, CONC, (rnd) => pickOp(MIXES.mixed, rnd, pickKey), { salt: run * 7919 + (cfg === 'on' ? 1 : 0), spans: true });
    await sleep(WARMUP * 1000);
    const st0 = await statsOf(s);
    const polls = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const sent = performance.now();
        const p = await s.control.request(leader.id, { type: 'get_stats' }, 2000);
        if (p.reply) polls.push({ sent, recv: performance.now(), taken: p.reply.snapshots_taken });
        await sleep(POLL_MS);
      }
    })();
    for (const n of s.nodes) process.kill(n.pid, 'SIGUSR2');
    const cpu0 = cpuMs(leader.pid);
    const w0 = performance.now();
    load.measure(true);
    await sleep(TIME * 1000);
    load.measure(false);
    const w1 = performance.now();
    const cpu1 = cpuMs(leader.pid);
    for (const n of s.nodes) process.kill(n.pid, 'SIGUSR2');
    polling = false;
    await poller;
    const st1 = await statsOf(s);
    const res = await load.stop();
    const delays = {};
    for (const id of IDS) delays[id] = await delayLine(delayFile(id), 2);
    Object.assign(r, { w0, w1, res, polls, st0, st1, delays, leaderCpu: (cpu1 - cpu0) / (w1 - w0) });
  } finally {
    await stopCluster(s, () => {
      for (const id of IDS) {
        const text = fs.readFileSync(path.join(s.root, `${id}.log`), 'utf8');
        nodeSnaps[id] = text
          .split('\n')
          .map((l) => SNAP_LINE.exec(l))
          .filter(Boolean)
          .map((m) => ({ index: Number(m[1]), keys: Number(m[3]), bytes: Number(m[4]), ms: Number(m[5]) }));
      }
      if (leader) snapLines = nodeSnaps[leader.id];
    });
  }
  const { w0, w1, res, polls, st0, st1, delays } = r;
  const secs = (w1 - w0) / 1000;
  // The leader's snapshots: the k-th snapshot it took is its k-th log line; it was committed
  // between the poll before the one that saw the count reach k was sent and that poll's answer.
  const intervals = [];
  for (let i = 1; i < polls.length; i++) {
    for (let k = polls[i - 1].taken + 1; k <= polls[i].taken; k++) {
      const line = snapLines[k - 1];
      if (line) intervals.push([polls[i - 1].sent - line.ms, polls[i].recv, line]);
    }
  }
  const lat = [...res.lat].sort((a, b) => a - b);
  const during = [];
  const spans = res.spans;
  for (let i = 0; i < spans.length; i += 2) {
    const a = spans[i];
    const b = spans[i + 1];
    if (intervals.some(([s0, s1]) => a < s1 && b > s0)) during.push(b - a);
  }
  during.sort((x, y) => x - y);
  // The leader's slices: a pause of `mx` ms shown in the slice ending at `end` ended within the
  // last two slices, so it lay within [end - 2 slices - mx, end].
  let pauseIn = intervals.length ? 0 : NaN;
  let pauseOut = 0;
  for (const [end, mx] of delays[leader.id].slices) {
    // The window's histogram runs from the first SIGUSR2 to the second, each handled a little late.
    if (end < epoch(w0) || end > epoch(w1) + 2 * SLICE_MS) continue;
    const a = end - 2 * SLICE_MS - mx;
    if (intervals.some(([s0, s1]) => a < epoch(s1) && end > epoch(s0))) pauseIn = Math.max(pauseIn, mx);
    else pauseOut = Math.max(pauseOut, mx);
  }
  const inSnapshot = (a, b) => intervals.some(([s0, s1]) => a < epoch(s1) && b > epoch(s0));
  const gcs = delays[leader.id].gcs.filter(([st]) => st >= epoch(w0) && st <= epoch(w1));
  let gcIn = intervals.length ? 0 : NaN;
  let gcInKind = '–';
  let gcOut = 0;
  for (const [st, ms, kind] of gcs) {
    if (inSnapshot(st, st + ms)) {
      if (ms > gcIn) [gcIn, gcInKind] = [ms, GC_KINDS[kind] ?? String(kind)];
    } else gcOut = Math.max(gcOut, ms);
  }
  const taken = Object.fromEntries(IDS.map((id) => [id, st1[id].snapshots_taken - st0[id].snapshots_taken]));
  // How many followers were snapshotting during each of the leader's snapshots. A follower's
  // snapshot at index J started about when the leader applied J: (J - I) / (entries per second)
  // after the leader's own, at index I, started (the leader's start = its commit's poll answer
  // minus its duration). An estimate: followers apply an index a heartbeat or so after the leader.
  const rate = (st1[leader.id].last_index - st0[leader.id].last_index) / (w1 - w0);
  const overlapped = [0, 0, 0];
  const alone = [];
  const together = [];
  for (const iv of intervals) {
    const [, s1, line] = iv;
    const start = s1 - line.ms;
    let n = 0;
    for (const id of IDS) {
      if (id === leader.id) continue;
      const busy = nodeSnaps[id].some((f) => {
        const fs0 = start + (f.index - line.index) / rate;
        return fs0 < s1 && fs0 + f.ms > start;
      });
      if (busy) n++;
    }
    overlapped[Math.min(n, 2)]++;
    // The operations during this leader snapshot, by whether any follower snapshotted too.
    for (let i = 0; i < spans.length; i += 2) if (spans[i] < iv[1] && spans[i + 1] > iv[0]) (n === 0 ? alone : together).push(spans[i + 1] - spans[i]);
  }
  alone.sort((x, y) => x - y);
  together.sort((x, y) => x - y);
  return {
    cfg,
    threshold,
    leader: leader.id,
    leaderChanges: IDS.reduce((n, id) => n + st1[id].leader_changes - st0[id].leader_changes, 0),
    entriesPerS: (st1[leader.id].last_index - st0[leader.id].last_index) / secs,
    okPerS: res.ok / secs,
    p50: quantile(lat, 0.5),
    p99: quantile(lat, 0.99),
    max: lat.length ? lat[lat.length - 1] : NaN,
    duringN: during.length,
    duringP99: quantile(during, 0.99),
    leaderPause: delays[leader.id].maxMs,
    leaderPauseIn: pauseIn,
    leaderPauseOut: pauseOut,
    gcIn,
    gcInKind,
    gcOut,
    gcMsPerS: gcs.reduce((t, g) => t + g[1], 0) / secs,
    majorGcs: gcs.filter((g) => g[2] === 4).length,
    followerPause: Math.max(...IDS.filter((id) => id !== leader.id).map((id) => delays[id].maxMs)),
    leaderCpu: r.leaderCpu,
    taken,
    overlapped,
    aloneP99: quantile(alone, 0.99),
    aloneN: alone.length,
    togetherP99: quantile(together, 0.99),
    togetherN: together.length,
    leaderSnapMs: intervals.length ? median(intervals.map((x) => x[2].ms)) : NaN,
    leaderSnapKeys: intervals.length ? intervals[0][2].keys : NaN,
    snapshotWindowShare: intervals.reduce((t, [a, b]) => t + Math.max(0, Math.min(b, w1) - Math.max(a, w0)), 0) / (w1 - w0),
  };
}

const results = { off: [], on: [] };
let threshold = args.threshold ? Number(args.threshold) : null;
try {
  for (let run = 1; run <= RUNS; run++) {
    // Interleaved: off first in odd runs (the first one measures the write rate), on first in even runs.
    const order = run % 2 === 1 ? ['off', 'on'] : ['on', 'off'];
    for (const cfg of order) {
      const t = await trial(cfg, cfg === 'on' ? threshold : 0, run);
      results[cfg].push(t);
      if (cfg === 'off' && threshold === null) threshold = Math.max(100, Math.round((t.entriesPerS * TIME) / SNAPS));
      process.stderr.write(
        `run ${run} ${cfg}${cfg === 'on' ? ` (threshold ${t.threshold})` : ''}: ${t.okPerS.toFixed(0)} ok/s, ${t.entriesPerS.toFixed(0)} log entries/s, p50 ${t.p50.toFixed(2)} p99 ${t.p99.toFixed(1)} max ${t.max.toFixed(1)} ms` +
          `${cfg === 'on' ? `, p99 during a leader snapshot ${t.duringP99.toFixed(1)} ms (${t.duringN} ops, ${(100 * t.snapshotWindowShare).toFixed(0)}% of the window), leader snapshot ${t.leaderSnapMs} ms` : ''}` +
          `, longest pause leader ${t.leaderPause.toFixed(1)} ms (during its snapshots ${t.leaderPauseIn.toFixed(1)}, outside ${t.leaderPauseOut.toFixed(1)}; longest GC during ${t.gcIn.toFixed(1)} (${t.gcInKind}), outside ${t.gcOut.toFixed(1)}, GC ${t.gcMsPerS.toFixed(0)} ms/s, ${t.majorGcs} major) / followers ${t.followerPause.toFixed(1)} ms, snapshots taken ${IDS.map((id) => `${id} ${t.taken[id]}`).join(' ')}${cfg === 'on' ? `, leader snapshots with 0 / 1 / 2 followers snapshotting too ${t.overlapped.join(' / ')} (p99 of their operations: none ${t.aloneP99.toFixed(1)} ms (${t.aloneN} ops), some ${t.togetherP99.toFixed(1)} ms (${t.togetherN}))` : ''} (leader ${t.leader}, ${t.leaderChanges} leader changes), leader CPU ${t.leaderCpu.toFixed(2)}\n`,
      );
    }
  }
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}

const m = (cfg, f) => median(results[cfg].map(f));
const worst = (cfg, f) => Math.max(...results[cfg].map(f));
const ok0 = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');
const f1 = (x) => (Number.isFinite(x) ? fmt(x) : '–');
const check = (b) => (b ? 'met' : '**missed**');
// Per run: snapshots-on against snapshots-off of the same run.
const ratios = results.on.map((on, i) => ({ during: on.duringP99 / results.off[i].p99, whole: on.p99 / results.off[i].p99 }));
const rDuring = median(ratios.map((x) => x.during));
const rDuringWorst = Math.max(...ratios.map((x) => x.during));
const rWhole = median(ratios.map((x) => x.whole));
const pauseWorst = worst('on', (t) => t.leaderPauseIn);
const takenCell = (cfg) => IDS.map((id) => f1(m(cfg, (t) => t.taken[id]))).join(' / ');

const cmd = `node bench/snapshot-load.js --keys ${KEYS} --state ${args.state} --runs ${RUNS} --time ${TIME} --warmup ${WARMUP} --conc ${CONC}${args.threshold ? ` --threshold ${args.threshold}` : ` --snaps ${SNAPS}`}`;
const lines = [
  `### Leader snapshots of ${KEYS.toLocaleString('en-US')} keys under client load`,
  '',
  `Command: \`${cmd}\` (via \`npm run bench\`). Machine: ${os.cpus().length} cores, Node ${process.version}, load average ${os.loadavg()[0].toFixed(1)} at the end (other work shares the machine). ` +
    `Three real \`serve --data-dir\` processes (fsync on) behind the cluster runner's router (latency 0), each starting on a directory holding the same ${args.state} state of ${KEYS.toLocaleString('en-US')} keys (snapshot ${snapBytes.toLocaleString('en-US')} bytes); ` +
    `${CONC} closed-loop clients, Maelstrom's mix (reads 50%, write 25%, cas 25%) on keys drawn from the ${KEYS.toLocaleString('en-US')}, ${WARMUP} s warm-up then ${TIME} s measured; a fresh cluster per trial, medians of ${RUNS} runs, the configurations interleaved. ` +
    `**off** = \`--snapshot-threshold 0 --snapshot-threshold-bytes 0\`; **on** = \`--snapshot-threshold ${threshold} --snapshot-threshold-bytes 0\` (${args.threshold ? 'given' : `from the log entries per second of the first off trial, for about ${SNAPS} snapshots per node in the window; the nodes take turns, a third of the threshold apart: docs/SERVE.md`}). ` +
    `Latencies are of ok operations. "During a leader snapshot" = the ok operations whose time overlapped one of the leader's snapshots (from its start to its commit: the leader's log line gives its duration, a get_stats poll every ${POLL_MS} ms when it was committed; the interval is widened by the poll's gap). ` +
    `Longest pause = max of \`monitorEventLoopDelay\` (1 ms resolution) over the window in each node process (bench/loop-delay-preload.cjs, loaded with \`--require\`); without snapshots it is the floor set by garbage collection and CPU contention. The leader's pause during its snapshots and outside them: the same preload's ${SLICE_MS} ms slices over the window (a slice counts as during a snapshot when a pause it may show overlapped one); its garbage collections from a \`PerformanceObserver\` in the same preload (those of 1 ms or more; "during" = overlapping a snapshot).`,
  '',
  '| snapshots | ok/s | p50 ms | p99 ms | max ms | p99 during a leader snapshot ms (ops) | share of the window in a leader snapshot | leader snapshot ms | snapshots taken in the window n1 / n2 / n3 | leader longest pause, median ms | worst run ms | leader longest pause during its snapshots, median ms | worst run ms | leader longest pause outside its snapshots ms | leader longest GC pause during its snapshots / outside ms | leader GC ms per s (major GCs) | followers longest pause ms | leader CPU |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
];
for (const cfg of ['off', 'on']) {
  const on = cfg === 'on';
  lines.push(
    `| ${cfg} | ${ok0(m(cfg, (t) => t.okPerS))} | ${m(cfg, (t) => t.p50).toFixed(2)} | ${f1(m(cfg, (t) => t.p99))} | ${f1(m(cfg, (t) => t.max))} | ${on ? `${f1(m(cfg, (t) => t.duringP99))} (${ok0(m(cfg, (t) => t.duringN))})` : '–'} | ${on ? `${(100 * m(cfg, (t) => t.snapshotWindowShare)).toFixed(0)}%` : '–'} | ${on ? f1(m(cfg, (t) => t.leaderSnapMs)) : '–'} | ${takenCell(cfg)} | ${f1(m(cfg, (t) => t.leaderPause))} | ${f1(worst(cfg, (t) => t.leaderPause))} | ${on ? f1(m(cfg, (t) => t.leaderPauseIn)) : '–'} | ${on ? f1(worst(cfg, (t) => t.leaderPauseIn)) : '–'} | ${f1(m(cfg, (t) => t.leaderPauseOut))} | ${on ? f1(m(cfg, (t) => t.gcIn)) : '–'} / ${f1(m(cfg, (t) => t.gcOut))} | ${f1(m(cfg, (t) => t.gcMsPerS))} (${f1(m(cfg, (t) => t.majorGcs))}) | ${f1(m(cfg, (t) => t.followerPause))} | ${m(cfg, (t) => t.leaderCpu).toFixed(2)} |`,
  );
}
const kinds = [...new Set(results.on.map((t) => t.gcInKind))].join(', ');
lines.push('');
lines.push(`The longest garbage collection during the leader's snapshots, by run: ${results.on.map((t) => `${f1(t.gcIn)} ms (${t.gcInKind})`).join(', ')}; kinds: ${kinds}.`);
const sumOver = (k) => results.on.reduce((t, r) => t + r.overlapped[k], 0);
lines.push('');
lines.push(
  `The leader's snapshots with 0 / 1 / 2 followers snapshotting at the same time, over the runs: ${sumOver(0)} / ${sumOver(1)} / ${sumOver(2)} ` +
    `(estimated from the followers' snapshot indexes and the leader's entries per second); p99 of the operations during those with none: ${f1(m('on', (t) => t.aloneP99))} ms, with one or two: ${f1(m('on', (t) => t.togetherP99))} ms (medians over the runs).`,
);
lines.push('');
lines.push('Targets (issue 8, leader side):');
lines.push('');
lines.push('| target | measured | |');
lines.push('|---|---|---|');
lines.push(
  `| longest leader pause while snapshotting ${KEYS.toLocaleString('en-US')} keys under load < 10 ms in every run | longest leader pause during its snapshots: worst run ${f1(pauseWorst)} ms, median ${f1(m('on', (t) => t.leaderPauseIn))} ms (outside its snapshots in the same trials: median ${f1(m('on', (t) => t.leaderPauseOut))} ms; the whole window without snapshots: median ${f1(m('off', (t) => t.leaderPause))} ms, worst ${f1(worst('off', (t) => t.leaderPause))} ms) | ${check(pauseWorst < 10)} |`,
);
lines.push(
  `| client p99 during a snapshot ≤ 2x p99 without one | p99 during a leader snapshot / p99 with snapshots off, same run: ${rDuring.toFixed(2)}x median, worst ${rDuringWorst.toFixed(2)}x (whole window with snapshots on: ${rWhole.toFixed(2)}x) | ${check(rDuring <= 2)} |`,
);
lines.push('');
const text = lines.join('\n');
process.stdout.write(text + '\n');
if (args.out) writeBlock(args.out, 'snapshot-load', text);
