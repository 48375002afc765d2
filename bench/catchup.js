// Catch-up: a follower with an empty directory joins a leader whose state has 1M keys.
//   node bench/catchup.js [--keys N] [--runs R] [--state mixed|int] [--out docs/BENCHMARKS.md]   (build first)
// Three real `node bin/run.js serve --data-dir DIR` processes behind a small router written here
// (each stdout line goes to the stdin of the node it names; latency 0). n1 and n2 start on
// directories holding the same 1M-key snapshot (the cluster's state; built once per run, as a
// restored directory would be) and elect a leader; once both have loaded it, n3 starts on an empty
// directory and gets `init`, then a read right after its init_ok and a get_stats every 20 ms.
// Measured from n3's init: its first read answered (a follower answers reads from its own state,
// once it has applied the leader's read index and loaded the key's part of the state), the transfer (the leader's first to last InstallSnapshot
// chunk to n3, the bytes carried, MB/s), and the time until n3's own state machine holds the
// state (get_stats: keys = N and applied at least the snapshot's index): from then on it can
// serve reads from its own state. Medians of R runs.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fmt, median, writeBlock } from './report.js';
import { forEachPair } from './large-state.js';

const { values: args } = parseArgs({
  options: {
    keys: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '3' },
    state: { type: 'string', default: 'mixed' },
    out: { type: 'string' },
  },
});
const KEYS = Number(args.keys);
const RUNS = Number(args.runs);
const IDS = ['n1', 'n2', 'n3'];
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { KvStore } = await import('../dist/kv/store.js');
const { StorageNodeStore } = await import('../dist/node/storage-adapter.js');
const { DiskStorage } = await import('../dist/storage/node-storage.js');
const silent = { debug() {}, info() {}, warn() {} };

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'raftsnap-catchup-'));
const META = { index: KEYS, term: 1, config: IDS };
let firstKey;
/** A data directory for `id` holding the cluster's snapshot. */
let snapFile = null;
async function seededDir(id, dir) {
  const storage = DiskStorage.open(dir, { fsync: true, nodeId: id });
  storage.dir.setMembers(IDS);
  storage.recover();
  if (snapFile === null) {
    const kv = new KvStore();
    forEachPair(args.state, KEYS, (k, v) => {
      if (firstKey === undefined) firstKey = k;
      kv.set(k, v);
    });
    const store = new StorageNodeStore(storage, true, dir, silent, id);
    const view = kv.freeze();
    await store.saveSnapshot(META, view);
    view.release();
    const name = fs.readdirSync(storage.dir.snapDir).find((f) => f.endsWith('.snap'));
    snapFile = path.join(root, 'cluster.snap');
    fs.copyFileSync(path.join(storage.dir.snapDir, name), snapFile);
  } else {
    storage.saveSnapshot(META, fs.readFileSync(snapFile));
  }
  storage.setHardState({ term: 1, votedFor: null, commit: KEYS });
  storage.sync();
  storage.close();
}

function startNode(id, dir, onClientLine, route) {
  const p = spawn(process.execPath, ['bin/run.js', 'serve', '--data-dir', dir], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  let buf = '';
  let err = '';
  p.stderr.setEncoding('utf8').on('data', (d) => (err += d));
  p.stdout.setEncoding('utf8').on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const dest = JSON.parse(line).dest;
      if (IDS.includes(dest)) route(id, dest, line);
      else onClientLine(JSON.parse(line));
    }
  });
  return { id, p, stderr: () => err, send: (msg) => p.stdin.write(JSON.stringify(msg) + '\n') };
}

async function run() {
  const dirs = Object.fromEntries(IDS.map((id) => [id, path.join(root, `run-${Date.now()}-${id}`)]));
  await seededDir('n1', dirs.n1);
  await seededDir('n2', dirs.n2);
  const nodes = {};
  const waiters = [];
  let msgId = 1;
  const transfer = { first: null, last: null, bytes: 0, chunks: 0 };
  const route = (from, to, line) => {
    if (to === 'n3' && line.includes('"raft_install_snapshot"')) {
      const b = JSON.parse(line).body;
      const now = performance.now();
      if (transfer.first === null) transfer.first = now;
      transfer.last = now;
      transfer.bytes += Buffer.byteLength(b.data, 'base64');
      transfer.chunks++;
    }
    nodes[to]?.send(JSON.parse(line));
  };
  const onClient = (msg) => {
    for (const w of [...waiters]) w(msg);
  };
  const ask = (node, body) =>
    new Promise((resolve) => {
      const id = msgId++;
      const w = (m) => {
        if (m.src === node && m.body.in_reply_to === id) {
          waiters.splice(waiters.indexOf(w), 1);
          resolve(m.body);
        }
      };
      waiters.push(w);
      nodes[node].send({ src: 'c1', dest: node, body: { ...body, msg_id: id } });
    });
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  try {
    for (const id of ['n1', 'n2']) nodes[id] = startNode(id, dirs[id], onClient, route);
    await Promise.all(['n1', 'n2'].map((id) => ask(id, { type: 'init', node_id: id, node_ids: IDS })));
    // A leader, and both holding the state.
    for (let i = 0; ; i++) {
      const s = await Promise.all(['n1', 'n2'].map((id) => ask(id, { type: 'get_stats' })));
      if (s.some((x) => x.role === 'leader') && s.every((x) => x.keys === KEYS)) break;
      if (i > 3000) throw new Error(`no leader with the state: ${JSON.stringify(s)}`);
      await sleep(20);
    }
    fs.mkdirSync(dirs.n3);
    nodes.n3 = startNode('n3', dirs.n3, onClient, route);
    await sleep(300); // n3's process starts (not part of the catch-up)
    const t0 = performance.now();
    await ask('n3', { type: 'init', node_id: 'n3', node_ids: IDS });
    const initMs = performance.now() - t0;
    const firstRead = ask('n3', { type: 'read', key: firstKey }).then((b) => ({ ms: performance.now() - t0, b }));
    let readyMs = null;
    for (let i = 0; readyMs === null; i++) {
      const s = await ask('n3', { type: 'get_stats' });
      if (s.keys === KEYS && s.applied >= KEYS) readyMs = performance.now() - t0;
      else if (i > 3000) throw new Error(`n3 never caught up: ${JSON.stringify(s)}`);
      else await sleep(20);
    }
    const fr = await firstRead;
    if (fr.b.type !== 'read_ok') throw new Error(`n3's first read: ${JSON.stringify(fr.b)}`);
    const own = (await ask('n3', { type: 'get_stats' })).follower_reads;
    if (!(own >= 1)) throw new Error(`n3's first read was not answered from its own state (follower_reads ${own})`);
    // n3's own state: a read it answers now comes from it (or from the leader, as forwarded) the same.
    const transferMs = transfer.last - transfer.first;
    return { initMs, firstReadMs: fr.ms, readyMs, transferMs, bytes: transfer.bytes, chunks: transfer.chunks, startMs: transfer.first - t0 };
  } finally {
    for (const n of Object.values(nodes)) n.p.kill('SIGKILL');
    for (const d of Object.values(dirs)) fs.rmSync(d, { recursive: true, force: true });
  }
}

const results = [];
try {
  for (let r = 0; r < RUNS; r++) {
    const res = await run();
    results.push(res);
    process.stderr.write(
      `run ${r + 1}: n3 init_ok ${res.initMs.toFixed(0)} ms, first read ${res.firstReadMs.toFixed(0)} ms, transfer ${res.transferMs.toFixed(0)} ms ` +
        `(${res.chunks} chunks, ${res.bytes} bytes, ${(res.bytes / 1e6 / (res.transferMs / 1000)).toFixed(1)} MB/s, first chunk at ${res.startMs.toFixed(0)} ms), own state ready ${res.readyMs.toFixed(0)} ms\n`,
    );
  }
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
const m = (f) => median(results.map(f));
const ready = m((r) => r.readyMs);
const worst = Math.max(...results.map((r) => r.readyMs));
const mbps = m((r) => r.bytes / 1e6 / (r.transferMs / 1000));
const frWorst = Math.max(...results.map((r) => r.firstReadMs));
const cmd = `node bench/catchup.js --keys ${KEYS} --runs ${RUNS} --state ${args.state}`;
const lines = [
  `### Catch-up: an empty follower joins a leader holding ${KEYS.toLocaleString('en-US')} keys`,
  '',
  `Command: \`${cmd}\` (via \`npm run bench\`). Machine: ${os.cpus().length} cores, Node ${process.version}, load average ${os.loadavg()[0].toFixed(1)} at the end. Three real \`serve --data-dir\` processes (default options: fsync on, 64 KiB InstallSnapshot chunks) behind a router in the benchmark (latency 0); n1 and n2 hold the same ${args.state} state (snapshot ${results[0].bytes.toLocaleString('en-US')} bytes) and have a leader; then n3 starts on an empty directory. Times from n3's \`init\`; medians of ${RUNS} runs.`,
  '',
  '| n3 from its init | median | worst run |',
  '|---|---:|---:|',
  `| init_ok | ${fmt(m((r) => r.initMs))} ms | ${fmt(Math.max(...results.map((r) => r.initMs)))} ms |`,
  `| first read answered, by n3 from its own state (follower read) | ${fmt(m((r) => r.firstReadMs))} ms | ${fmt(Math.max(...results.map((r) => r.firstReadMs)))} ms |`,
  `| first InstallSnapshot chunk | ${fmt(m((r) => r.startMs))} ms | ${fmt(Math.max(...results.map((r) => r.startMs)))} ms |`,
  `| transfer, first to last chunk | ${fmt(m((r) => r.transferMs))} ms | ${fmt(Math.max(...results.map((r) => r.transferMs)))} ms |`,
  `| transfer throughput | ${mbps.toFixed(1)} MB/s | ${Math.min(...results.map((r) => r.bytes / 1e6 / (r.transferMs / 1000))).toFixed(1)} MB/s (slowest) |`,
  `| its own state machine holds the state (get_stats: keys, applied) | ${fmt(ready)} ms | ${fmt(worst)} ms |`,
  '',
  `Target (issue 8): the joining follower serves its first read within 3 s: ${fmt(m((r) => r.firstReadMs))} ms median, worst ${fmt(frWorst)} ms, ${frWorst < 3000 ? 'met' : '**missed**'} (its whole state held: ${fmt(ready)} ms median, worst ${fmt(worst)} ms).`,
  '',
];
const text = lines.join('\n');
process.stdout.write(text + '\n');
if (args.out) writeBlock(args.out, 'catchup', text);
