// A node restarted on a data directory holding a 1M-key snapshot: the time from the process's
// start to its answer to `init` and to its first read, against the naive alternative in the same
// run: a fresh node process that reads the same state from JSON+gzip and builds a Map
// (bench/naive-node.js).
//   node bench/recovery.js [--keys N] [--runs R] [--state mixed|int] [--out docs/BENCHMARKS.md]   (build first)
// Each run spawns the process, writes `init` at once and a read of a key of the state right after
// the init_ok; times are from spawn to the reply (medians of R runs, the three processes
// interleaved). raftsnap = `node bin/run.js serve --data-dir DIR` on a single-node directory
// (snapshot at index N, the hard state after it); empty = the naive node with no state (the floor
// of starting a node process here).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import zlib from 'node:zlib';
import { fmt, median, writeBlock } from './report.js';
import { forEachPair } from './large-state.js';

const { values: args } = parseArgs({
  options: {
    keys: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '5' },
    state: { type: 'string', default: 'mixed' },
    out: { type: 'string' },
    keep: { type: 'string' },
  },
});
const KEYS = Number(args.keys);
const RUNS = Number(args.runs);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { KvStore } = await import('../dist/kv/store.js');
const { StorageNodeStore } = await import('../dist/node/storage-adapter.js');
const { DiskStorage } = await import('../dist/storage/node-storage.js');

const root = args.keep ?? fs.mkdtempSync(path.join(os.tmpdir(), 'raftsnap-recovery-'));
const dir = path.join(root, 'n1');
const json = path.join(root, 'state.json.gz');
let firstKey;
if (!fs.existsSync(json)) {
  const kv = new KvStore();
  const pairs = [];
  forEachPair(args.state, KEYS, (k, v) => {
    if (firstKey === undefined) firstKey = k;
    kv.set(k, v);
    pairs.push([k, v]);
  });
  fs.writeFileSync(json, zlib.gzipSync(JSON.stringify(pairs), { level: 6 }));
  pairs.length = 0;
  const meta = { index: KEYS, term: 1, config: ['n1'] };
  const storage = DiskStorage.open(dir, { fsync: true, nodeId: 'n1' });
  storage.dir.setMembers(['n1']);
  const store = new StorageNodeStore(storage, true, dir, { debug() {}, info() {}, warn() {} }, 'n1');
  storage.recover();
  const view = kv.freeze();
  await store.saveSnapshot(meta, view);
  view.release();
  storage.setHardState({ term: 1, votedFor: 'n1', commit: KEYS });
  storage.sync();
  await store.close();
  fs.writeFileSync(path.join(root, 'first-key.json'), JSON.stringify(firstKey));
} else firstKey = JSON.parse(fs.readFileSync(path.join(root, 'first-key.json'), 'utf8'));
const snapBytes = fs.readdirSync(path.join(dir, 'snap')).reduce((n, f) => n + fs.statSync(path.join(dir, 'snap', f)).size, 0);
const jsonBytes = fs.statSync(json).size;

/** CPU time (user + system) a running process has used so far, from /proc (NaN elsewhere). */
function cpuMsOf(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 (utime, stime) in clock ticks (100 per second on Linux).
    return ((Number(rest[11]) + Number(rest[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

/** VmHWM and VmRSS (bytes) of a live process. */
function memOf(pid) {
  try {
    const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(st)?.[1] ?? NaN) * 1024;
    return { hwm: kb('VmHWM'), rss: kb('VmRSS') };
  } catch {
    return { hwm: NaN, rss: NaN };
  }
}

/**
 * Spawn, send init at once and a read after init_ok; resolves with the times from spawn. With
 * `delayFile` the process runs with bench/loop-delay-preload.cjs: a SIGUSR2 at init_ok and another
 * once the whole state is loaded give the longest event-loop pause in between (`pauseMs`).
 */
function measure(argv, nodeId, ids, delayFile = null) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const env = delayFile ? { ...process.env, RAFTSNAP_LOOP_DELAY_FILE: delayFile } : process.env;
    if (delayFile) fs.rmSync(delayFile, { force: true });
    const full = delayFile ? ['--require', path.join(ROOT, 'bench/loop-delay-preload.cjs'), ...argv] : argv;
    const p = spawn(process.execPath, full, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], env });
    let buf = '';
    let err = '';
    const res = {};
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`${argv.join(' ')}: no answer within 60 s; stderr: ${err}`));
    }, 60_000);
    p.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    p.stdout.setEncoding('utf8').on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const body = JSON.parse(line).body;
        if (body.type === 'init_ok') {
          res.initMs = performance.now() - t0;
          if (delayFile) p.kill('SIGUSR2');
          p.stdin.write(JSON.stringify({ src: 'c1', dest: nodeId, body: { type: 'read', key: firstKey, msg_id: 2 } }) + '\n');
        } else if (body.in_reply_to === 2) {
          res.readMs = performance.now() - t0;
          res.cpuMs = cpuMsOf(p.pid);
          res.reply = body;
          p.stdin.write(JSON.stringify({ src: 'c1', dest: nodeId, body: { type: 'get_stats', msg_id: 3 } }) + '\n');
        } else if (body.in_reply_to >= 3) {
          // A node recovering a format 3 snapshot answers reads before its whole state is loaded:
          // ask until it says it is (the naive node has no such field: loaded before it answered).
          if (body.loading_snapshot === true) {
            setTimeout(() => p.stdin.write(JSON.stringify({ src: 'c1', dest: nodeId, body: { type: 'get_stats', msg_id: body.in_reply_to + 1 } }) + '\n'), 5);
            continue;
          }
          res.fullMs = body.type === 'get_stats_ok' ? performance.now() - t0 : res.readMs;
          const mem = memOf(p.pid);
          res.peakRss = mem.hwm;
          res.steadyRss = mem.rss;
          if (delayFile) {
            p.kill('SIGUSR2');
            // The preload writes its line in the signal's handler: wait for the second one.
            const t = Date.now();
            while (Date.now() - t < 2000 && (fs.existsSync(delayFile) ? fs.readFileSync(delayFile, 'utf8').trim().split('\n').length : 0) < 2) {
              Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
            }
            const lines = fs.readFileSync(delayFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
            res.pauseMs = lines[1]?.maxMs ?? NaN;
            res.longestGcMs = Math.max(0, ...(lines[1]?.gcs ?? []).map((g) => g[1]));
          }
          clearTimeout(timer);
          p.stdin.end();
          p.kill('SIGTERM');
        }
      }
    });
    p.on('close', () => (res.fullMs !== undefined ? resolve(res) : reject(new Error(`${argv.join(' ')} exited early: ${err}`))));
    p.stdin.write(JSON.stringify({ src: 'c0', dest: nodeId, body: { type: 'init', node_id: nodeId, node_ids: ids, msg_id: 1 } }) + '\n');
  });
}

const systems = {
  raftsnap: () => measure(['bin/run.js', 'serve', '--data-dir', dir], 'n1', ['n1']),
  naive: () => measure(['bench/naive-node.js', json], 'n1', ['n1']),
  empty: () => measure(['bench/naive-node.js'], 'n1', ['n1']),
};
const pauses = [];
const gcPauses = [];
const memRatios = [];
const times = Object.fromEntries(Object.keys(systems).map((k) => [k, { init: [], read: [], cpu: [], full: [] }]));
try {
  for (let r = -1; r < RUNS; r++) {
    for (const [name, run] of Object.entries(systems)) {
      const res = await run();
      if (name !== 'empty' && res.reply.type !== 'read_ok') throw new Error(`${name}: first read answered ${JSON.stringify(res.reply)}`);
      process.stderr.write(`${name}${r < 0 ? ' (warm-up)' : ''}: init_ok ${res.initMs.toFixed(0)} ms, first read ${res.readMs.toFixed(0)} ms, CPU ${res.cpuMs.toFixed(0)} ms\n`);
      if (r < 0) continue;
      times[name].init.push(res.initMs);
      times[name].read.push(res.readMs);
      times[name].cpu.push(res.cpuMs);
      times[name].full.push(res.fullMs);
      if (name === 'raftsnap') {
        // Once more, with the event-loop monitor (in a run of its own: it costs the process some time).
        Object.assign(res, await measure(['bin/run.js', 'serve', '--data-dir', dir], 'n1', ['n1'], path.join(root, 'loop-delay.ndjson')));
        pauses.push(res.pauseMs);
        gcPauses.push(res.longestGcMs);
        memRatios.push(res.peakRss / res.steadyRss);
        process.stderr.write(`  longest pause from init_ok to the whole state ${res.pauseMs.toFixed(1)} ms (longest GC ${res.longestGcMs.toFixed(1)} ms), peak RSS ${(res.peakRss / 2 ** 20).toFixed(0)} MiB, then ${(res.steadyRss / 2 ** 20).toFixed(0)} MiB\n`);
      }
    }
  }
} finally {
  if (!args.keep) fs.rmSync(root, { recursive: true, force: true });
}
const m = Object.fromEntries(Object.entries(times).map(([k, t]) => [k, { init: median(t.init), read: median(t.read), cpu: median(t.cpu), full: median(t.full) }]));
const ratio = m.raftsnap.read / m.naive.read;
const cpuRatio = m.raftsnap.cpu / m.naive.cpu;
const cmd = `node bench/recovery.js --keys ${KEYS} --runs ${RUNS} --state ${args.state}`;
const lines = [
  `### Recovery: a node restarted on a ${KEYS.toLocaleString('en-US')}-key data directory`,
  '',
  `Command: \`${cmd}\` (via \`npm run bench\`). Machine: ${os.cpus().length} cores, Node ${process.version}, load average ${os.loadavg()[0].toFixed(1)} at the end. Whole processes, timed from spawn: \`init\` is written at once, a read of a key of the state right after the init_ok. raftsnap = \`node bin/run.js serve --data-dir DIR\` on a single-node directory (${args.state} state, snapshot ${snapBytes.toLocaleString('en-US')} bytes); naive = a node process that reads the same pairs from JSON+gzip (${jsonBytes.toLocaleString('en-US')} bytes, level 6), builds a Map, then answers (bench/naive-node.js); empty = the same process with no state (starting a node process here). Medians of ${RUNS} runs after a warm-up round, interleaved.`,
  '',
  '| process | init_ok ms | first read ms | first read vs naive | CPU ms until the first read | CPU vs naive | whole state loaded ms |',
  '|---|---:|---:|---:|---:|---:|---:|',
  ...Object.entries(m).map(([k, v]) => `| ${k} | ${fmt(v.init)} | ${fmt(v.read)} | ${(v.read / m.naive.read).toFixed(2)}x | ${fmt(v.cpu)} | ${(v.cpu / m.naive.cpu).toFixed(2)}x | ${fmt(v.full)} |`),
  '',
  `Whole state loaded = until \`get_stats\` says \`loading_snapshot: false\` (raftsnap; the other processes load everything before they answer): from a format 3 snapshot (docs/FORMAT.md) the node answers a read once the chunks that may hold its key are in (src/node/keyed-load.ts) and loads the rest in the background. CPU = the process's user + system time when its first read was answered (/proc), which contention on a shared machine does not inflate as it does wall time. Target (issue 8): init_ok and the first read in under a fifth of the naive alternative's time: ${ratio.toFixed(2)}x (CPU ${cpuRatio.toFixed(2)}x), ${ratio < 0.2 ? 'met' : '**missed**'}.`,
  '',
  `The recovering node's background load (raftsnap once more in each round, with bench/loop-delay-preload.cjs, in a run of its own): the longest event-loop pause between its init_ok and its whole state loaded, median ${fmt(median(pauses.filter((x) => x >= 0 && !Number.isNaN(x))))} ms, worst run ${fmt(Math.max(...pauses))} ms (its longest garbage collection in that stretch: median ${fmt(median(gcPauses))} ms); peak RSS against its RSS once loaded: ${median(memRatios).toFixed(2)}x. Targets (issue 8, "the same for a node recovering at start"): longest pause under 20 ms, ${median(pauses) < 20 ? 'met' : '**missed**'}; peak memory under 1.5x the steady state, ${median(memRatios) < 1.5 ? 'met' : '**missed**'}.`,
  '',
];
const text = lines.join('\n');
process.stdout.write(text + '\n');
if (args.out) writeBlock(args.out, 'recovery', text);
