// A follower installing a 1M-key snapshot received from its leader: the longest event-loop pause
// and the peak memory against the steady state, the driver in-process.
//   node bench/install.js [--keys N] [--runs R] [--state mixed|int] [--out docs/BENCHMARKS.md]   (build first)
// The parent writes the leader's snapshot file once (a KvStore of the state saved the way serve
// saves it), then runs each measurement in a fresh child process (node --expose-gc), the modes
// interleaved:
//   driver  = a RaftServer follower (n2 of three, --data-dir, fsync on, the real Node timers and
//             ticks) in the child, fed by the child as leader n1: InstallSnapshot chunks of
//             --chunk-size one at a time (each after the previous reply), and a heartbeat every
//             heartbeat interval throughout; the install is the load in slices (src/node/install.ts)
//             from the last chunk until the snapshot is the state machine's.
//   one-call = the previous install in the same child shape: the received file decoded in one
//             synchronous call into an array of every pair (readSnapshotFile), then KvStore.reset.
// Longest pause = max of perf_hooks.monitorEventLoopDelay (resolution 1 ms) over the install.
// Memory: peak RSS over the install (Linux VmHWM after clearing it at the start, /proc/self/
// clear_refs) and the sampled peak of the V8 heap in use (every 2 ms while the loop runs; for the
// one-call mode, right after the call, when everything it made is still held), against the steady
// state: RSS and heap in use once the install is done and two full GCs have run.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fmt, median, writeBlock } from './report.js';

const { values: args } = parseArgs({
  options: {
    keys: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '3' },
    state: { type: 'string', default: 'mixed' },
    out: { type: 'string' },
    child: { type: 'string' },
    mode: { type: 'string' },
    dir: { type: 'string' },
  },
});
const KEYS = Number(args.keys);
const IDS = ['n1', 'n2', 'n3'];
const META = { index: KEYS + 10, term: 2, config: IDS };
const SELF = fileURLToPath(import.meta.url);

function vmHwmKb() {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : NaN;
}
function clearHwm() {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mb = (b) => b / (1 << 20);

async function steadyMemory() {
  for (let i = 0; i < 2; i++) {
    globalThis.gc();
    await sleep(50);
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed };
}

// ------------------------------------------------------------------------------------------------
// Child: one measurement.

/** The longest garbage collection pause while `on()` is true (ms). */
function gcWatch() {
  const w = { on: false, max: 0, total: 0 };
  new PerformanceObserver((list) => {
    if (!w.on) return;
    for (const e of list.getEntries()) {
      w.max = Math.max(w.max, e.duration);
      w.total += e.duration;
    }
  }).observe({ entryTypes: ['gc'] });
  return w;
}

async function child(file, mode, dir) {
  const bytes = fs.readFileSync(file);
  const gc = gcWatch();
  const { KvStore } = await import('../dist/kv/store.js');
  const h = monitorEventLoopDelay({ resolution: 1 });
  if (mode === 'one-call') {
    const { readSnapshotFile } = await import('../dist/storage/snapshot.js');
    const recv = path.join(dir, 'received.snap');
    fs.writeFileSync(recv, bytes);
    const kv = new KvStore();
    await steadyMemory();
    const hwmOk = clearHwm();
    h.enable();
    await sleep(20);
    gc.on = true;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let s = readSnapshotFile(recv);
    kv.reset(s.content.kv, s.content.sessions);
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const heapPeak = process.memoryUsage().heapUsed;
    s = null;
    await sleep(20);
    // GC entries are delivered after the call: counted until here.
    gc.on = false;
    h.disable();
    const rssPeak = hwmOk ? vmHwmKb() * 1024 : NaN;
    const steady = await steadyMemory();
    if (kv.size !== KEYS) throw new Error(`loaded ${kv.size} keys`);
    return { ms, pauseMs: h.max / 1e6, p99Ms: h.percentile(99) / 1e6, gcMaxMs: gc.max, gcMs: gc.total, cpuMs: (cpu.user + cpu.system) / 1000, rssPeak, heapPeak, steady, heartbeats: null, elections: null };
  }

  const { RaftServer } = await import('../dist/node/server.js');
  const { Outbox } = await import('../dist/node/protocol.js');
  const { defaultOptions } = await import('../dist/node/options.js');
  const { openNodeStore } = await import('../dist/node/storage-adapter.js');
  const log = { debug() {}, info() {}, warn(m) { process.stderr.write(`follower: ${m}\n`); } };
  const opts = { ...defaultOptions(), dataDir: dir, fsync: true };
  const waiters = [];
  let votes = 0;
  let heartbeatReplies = 0;
  const sink = {
    write(text) {
      for (const line of text.split('\n')) {
        if (line === '') continue;
        const body = JSON.parse(line).body;
        if (body.type === 'raft_request_vote' || body.type === 'raft_pre_vote') votes++;
        if (body.type === 'raft_append_entries_reply') heartbeatReplies++;
        for (const w of [...waiters]) w(body);
      }
    },
    flush: () => Promise.resolve(),
  };
  const fatal = [];
  const server = new RaftServer({ outbox: new Outbox(sink), options: opts, log, openStore: (id) => openNodeStore(opts, id, log), onFatal: (e) => fatal.push(e) });
  let msgId = 1;
  const send = (body) => server.handleLine(JSON.stringify({ src: 'n1', dest: 'n2', body: { ...body, msg_id: msgId++ } }));
  const waitFor = (pred) =>
    new Promise((resolve) => {
      const w = (b) => {
        if (pred(b)) {
          waiters.splice(waiters.indexOf(w), 1);
          resolve(b);
        }
      };
      waiters.push(w);
    });
  const inited = waitFor((b) => b.type === 'init_ok');
  server.handleLine(JSON.stringify({ src: 'c0', dest: 'n2', body: { type: 'init', node_id: 'n2', node_ids: IDS, msg_id: 0 } }));
  await inited;
  // The leader's heartbeats, throughout (the log base moves to the snapshot once it is stored).
  let base = { index: 0, term: 0 };
  const hb = setInterval(() => send({ type: 'raft_append_entries', term: META.term, prevLogIndex: base.index, prevLogTerm: base.term, entries: [], leaderCommit: base.index }), opts.heartbeatMs);
  send({ type: 'raft_append_entries', term: META.term, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0 });
  await sleep(50);
  await steadyMemory();
  const before = await steadyMemory();
  const size = opts.chunkSize;
  let last = null;
  const tTransfer = performance.now();
  for (let off = 0; off < bytes.length; off += size) {
    const data = bytes.subarray(off, off + size);
    const done = off + data.length === bytes.length;
    if (done) {
      // The install window: the last chunk's store, verification and the load in slices.
      await sleep(20);
      last = { hwmOk: clearHwm(), t0: performance.now(), votes0: votes, hb0: heartbeatReplies, cpu0: process.cpuUsage() };
      h.enable();
      gc.on = true;
    }
    const stored = off + data.length;
    const reply = waitFor((b) => b.type === 'raft_install_snapshot_reply' && b.bytesStored === stored);
    send({ type: 'raft_install_snapshot', term: META.term, meta: META, size: bytes.length, offset: off, data: data.toString('base64'), done });
    await reply;
  }
  base = { index: META.index, term: META.term };
  let heapPeak = 0;
  const sampler = setInterval(() => {
    heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
  }, 2);
  while (server.loadingSnapshot !== null || server.kv.size !== KEYS) {
    if (fatal.length > 0) throw fatal[0];
    await sleep(1);
  }
  const ms = performance.now() - last.t0;
  const cpu = process.cpuUsage(last.cpu0);
  const transferMs = performance.now() - tTransfer;
  heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
  clearInterval(sampler);
  await sleep(20);
  gc.on = false;
  h.disable();
  const rssPeak = last.hwmOk ? vmHwmKb() * 1024 : NaN;
  const hbDuring = heartbeatReplies - last.hb0;
  const elections = votes - last.votes0;
  clearInterval(hb);
  const steady = await steadyMemory();
  await server.end();
  return { ms, transferMs, pauseMs: h.max / 1e6, p99Ms: h.percentile(99) / 1e6, gcMaxMs: gc.max, gcMs: gc.total, cpuMs: (cpu.user + cpu.system) / 1000, rssPeak, heapPeak, steady, before, heartbeats: hbDuring, heartbeatMs: opts.heartbeatMs, elections };
}

if (args.child) {
  const r = await child(args.child, args.mode, args.dir);
  process.stdout.write(JSON.stringify(r) + '\n');
  process.exit(0);
}

// ------------------------------------------------------------------------------------------------
// Parent.

const RUNS = Number(args.runs);
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'raftsnap-install-'));
const file = path.join(root, 'leader.snap');
{
  const { KvStore } = await import('../dist/kv/store.js');
  const { StorageNodeStore } = await import('../dist/node/storage-adapter.js');
  const { DiskStorage } = await import('../dist/storage/node-storage.js');
  const { forEachPair } = await import('./large-state.js');
  const kv = new KvStore();
  forEachPair(args.state, KEYS, (k, v) => kv.set(k, v));
  const ldir = path.join(root, 'leader');
  const storage = DiskStorage.open(ldir, { fsync: false, nodeId: 'n1' });
  const store = new StorageNodeStore(storage, true, ldir, { debug() {}, info() {}, warn() {} }, 'n1');
  const view = kv.freeze();
  await store.saveSnapshot(META, view);
  view.release();
  const snaps = fs.readdirSync(storage.dir.snapDir).filter((f) => f.endsWith('.snap'));
  fs.copyFileSync(path.join(storage.dir.snapDir, snaps[0]), file);
  await store.close();
}
const fileBytes = fs.statSync(file).size;
process.stderr.write(`snapshot of ${KEYS} ${args.state} keys: ${fileBytes} bytes\n`);

const modes = ['driver', 'one-call'];
const results = Object.fromEntries(modes.map((m) => [m, []]));
try {
  for (let r = 0; r < RUNS; r++) {
    for (const mode of modes) {
      const dir = fs.mkdtempSync(path.join(root, `${mode}-`));
      const c = spawnSync(process.execPath, ['--expose-gc', SELF, '--child', file, '--mode', mode, '--dir', dir, '--keys', String(KEYS)], { encoding: 'utf8', maxBuffer: 1 << 24 });
      if (c.status !== 0) throw new Error(`${mode} child failed (${c.status}): ${c.stderr}`);
      const res = JSON.parse(c.stdout.trim().split('\n').pop());
      results[mode].push(res);
      fs.rmSync(dir, { recursive: true, force: true });
      process.stderr.write(
        `${mode} run ${r + 1}: install ${res.ms.toFixed(0)} ms (CPU ${res.cpuMs.toFixed(0)} ms), longest pause ${res.pauseMs.toFixed(1)} ms (p99 ${res.p99Ms.toFixed(1)}), longest GC ${res.gcMaxMs.toFixed(1)} ms (all GC ${res.gcMs.toFixed(0)} ms), peak RSS ${mb(res.rssPeak).toFixed(0)} MiB / steady ${mb(res.steady.rss).toFixed(0)} MiB, ` +
          `peak heap ${mb(res.heapPeak).toFixed(0)} MiB / steady ${mb(res.steady.heap).toFixed(0)} MiB${res.heartbeats !== null ? `, ${res.heartbeats} heartbeats answered, ${res.elections} vote requests` : ''}\n`,
      );
    }
  }
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}

const row = (mode) => {
  const rs = results[mode];
  const m = (f) => median(rs.map(f));
  return {
    ms: m((r) => r.ms),
    pause: m((r) => r.pauseMs),
    pauseWorst: Math.max(...rs.map((r) => r.pauseMs)),
    p99: m((r) => r.p99Ms),
    gcMax: m((r) => r.gcMaxMs),
    gcMs: m((r) => r.gcMs),
    cpuMs: m((r) => r.cpuMs),
    rssPeak: m((r) => r.rssPeak),
    rssSteady: m((r) => r.steady.rss),
    rssRatio: m((r) => r.rssPeak / r.steady.rss),
    heapPeak: m((r) => r.heapPeak),
    heapSteady: m((r) => r.steady.heap),
    heapRatio: m((r) => r.heapPeak / r.steady.heap),
    heartbeats: rs[0].heartbeats === null ? null : m((r) => r.heartbeats),
    heartbeatsExpected: rs[0].heartbeats === null ? null : m((r) => r.ms / r.heartbeatMs),
    elections: rs[0].elections === null ? null : Math.max(...rs.map((r) => r.elections)),
  };
};
const d = row('driver');
const o = row('one-call');
const ok = (b) => (b ? 'met' : '**missed**');
const cmd = `node bench/install.js --keys ${KEYS} --runs ${RUNS} --state ${args.state}`;
const lines = [
  `### Follower install of a ${KEYS.toLocaleString('en-US')}-key snapshot: pause and memory`,
  '',
  `Command: \`${cmd}\` (via \`npm run bench\`). Machine: ${os.cpus().length} cores, Node ${process.version}. The driver in-process (a RaftServer follower, n2 of three, in a child process of its own per run, \`--data-dir\` with fsync on, the real Node timers and ticks), fed by the child acting as leader n1: the snapshot file (${args.state} state, ${fileBytes.toLocaleString('en-US')} bytes, written as serve writes it) in InstallSnapshot chunks of 64 KiB one at a time, and a heartbeat every heartbeat interval throughout. The install = from the last chunk until the snapshot is the state machine's (the last chunk's verification, fsync and rename, then the load in slices, src/node/install.ts). One call = the previous install in the same child: the received file decoded in one synchronous call into an array of every pair, then \`KvStore.reset\`. Longest pause = max of \`monitorEventLoopDelay\` (1 ms resolution) over the install; peak RSS = VmHWM over the install (cleared at its start); peak heap = heap in use sampled every 2 ms (one call: right after it, everything it made still held); steady = after the install and two full GCs. Medians of ${RUNS} runs, the modes interleaved.`,
  '',
  '| install | time ms | CPU ms | longest pause, median ms | worst run ms | p99 delay ms | longest GC pause ms | all GC ms | peak RSS MiB | steady RSS MiB | peak / steady RSS | peak heap MiB | steady heap MiB | peak / steady heap | heartbeats answered during it | vote requests |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  `| driver: load in slices | ${fmt(d.ms)} | ${fmt(d.cpuMs)} | ${fmt(d.pause)} | ${fmt(d.pauseWorst)} | ${fmt(d.p99)} | ${fmt(d.gcMax)} | ${fmt(d.gcMs)} | ${fmt(mb(d.rssPeak))} | ${fmt(mb(d.rssSteady))} | ${d.rssRatio.toFixed(2)}x | ${fmt(mb(d.heapPeak))} | ${fmt(mb(d.heapSteady))} | ${d.heapRatio.toFixed(2)}x | ${d.heartbeats} of about ${Math.round(d.heartbeatsExpected)} sent | ${d.elections} |`,
  `| one synchronous call (before) | ${fmt(o.ms)} | ${fmt(o.cpuMs)} | ${fmt(o.pause)} | ${fmt(o.pauseWorst)} | ${fmt(o.p99)} | ${fmt(o.gcMax)} | ${fmt(o.gcMs)} | ${fmt(mb(o.rssPeak))} | ${fmt(mb(o.rssSteady))} | ${o.rssRatio.toFixed(2)}x | ${fmt(mb(o.heapPeak))} | ${fmt(mb(o.heapSteady))} | ${o.heapRatio.toFixed(2)}x | – | – |`,
  '',
  `Targets (issue 8): longest pause on the installing follower under 20 ms at 1M keys: ${fmt(d.pause)} ms median, worst run ${fmt(d.pauseWorst)} ms, ${ok(d.pauseWorst < 20)}; peak memory under 1.5x the steady state: RSS ${d.rssRatio.toFixed(2)}x, heap ${d.heapRatio.toFixed(2)}x, ${ok(d.rssRatio < 1.5 && d.heapRatio < 1.5)}.`,
  '',
];
const text = lines.join('\n');
process.stdout.write(text + '\n');
if (args.out) writeBlock(args.out, 'install', text);
