// Helpers shared by the benchmarks that run real node processes behind the cluster runner's router
// (src/cluster: Network, NodeProcess): bench/cluster.js and bench/snapshot-load.js. Starting and
// stopping a cluster, finding its leader, closed-loop clients, a process's CPU time, and data
// directories seeded with the same snapshot, written the way a node writes it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Network } from '../dist/cluster/network.js';
import { NodeProcess } from '../dist/cluster/node-process.js';

/** Operation mixes: the share of reads and writes, the rest cas. */
export const MIXES = {
  mixed: { read: 0.5, write: 0.25, cas: 0.25 },
  write: { read: 0, write: 1, cas: 0 },
  read: { read: 1, write: 0, cas: 0 },
};

const CLK_TCK = 100; // Linux USER_HZ
/** User + system CPU time of process `pid` so far (ms, from /proc), NaN when unknown. */
export function cpuMs(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  } catch {
    return NaN;
  }
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Start `count` nodes n1..nN behind a fresh router (latency 0). Node `id` runs `process.execPath`
 * with the arguments `program(dir, id)`, `dir` its own fresh directory under a temporary root
 * (first filled by `prepare(dir, id)` when given), and the environment `env(id)` added to ours.
 * Resolves once every node answered `init` and a write through n1 (forwarded by a follower)
 * succeeded: there is a leader. `name` names the cluster in errors and in the temporary root.
 */
export async function startCluster({ name, count, program, env = () => ({}), prepare }) {
  const start = performance.now();
  const clock = () => performance.now() - start;
  const net = new Network(() => 0, clock);
  const ids = Array.from({ length: count }, (_, i) => `n${i + 1}`);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `raftsnap-bench-${name}-`));
  const nodes = [];
  for (const id of ids) {
    const dir = path.join(root, id);
    fs.mkdirSync(dir, { recursive: true });
    if (prepare) await prepare(dir, id);
  }
  for (const id of ids) {
    const dir = path.join(root, id);
    const n = new NodeProcess({ id, command: process.execPath, args: program(dir, id), env: env(id), logPath: path.join(root, `${id}.log`) }, clock);
    net.addNode(n);
    n.start();
    nodes.push(n);
  }
  const control = net.client('c0');
  try {
    for (const n of nodes) {
      const r = await control.request(n.id, { type: 'init', node_id: n.id, node_ids: ids }, 10_000);
      if (r.reply?.type !== 'init_ok') throw new Error(`${name}: ${n.id} did not answer init: ${JSON.stringify(r)}`);
    }
    // Wait for a leader: a write through n1 (forwarded by a follower) succeeds.
    const probe = net.client('cw');
    for (let i = 0; ; i++) {
      const r = await probe.request('n1', { type: 'write', key: 0, value: 0 }, 2000);
      if (r.reply?.type === 'write_ok') break;
      if (i > 100) throw new Error(`${name}: no leader`);
      await sleep(50);
    }
  } catch (e) {
    // Leave no process behind (their logs stay under the temporary root, named in the error).
    for (const n of nodes) n.kill();
    net.close();
    throw new Error(`${e.message} (logs in ${root})`);
  }
  return { net, nodes, control, root, ids };
}

/**
 * Stop a cluster: close every node's stdin (a node finishes and exits by itself), kill what is
 * still running after 10 s, close the router and the logs; `beforeRemove(s)` (when given) may
 * read the logs before the temporary root is removed.
 */
export async function stopCluster(s, beforeRemove) {
  for (const n of s.nodes) n.closeStdin();
  await Promise.all(s.nodes.map((n) => n.waitExit(10_000)));
  for (const n of s.nodes) if (n.state !== 'down') n.kill();
  s.net.close();
  await Promise.all(s.nodes.map((n) => n.closeLog()));
  if (beforeRemove) await beforeRemove(s);
  fs.rmSync(s.root, { recursive: true, force: true });
  // Let the machine settle between systems (the nodes' exits, the page cache).
  await sleep(300);
}

/** The node whose get_stats says it leads (polls until one does). */
export async function leaderOf(s) {
  for (;;) {
    for (const n of s.nodes) {
      const r = await s.control.request(n.id, { type: 'get_stats' }, 2000);
      if (r.reply?.role === 'leader') return n;
    }
    await sleep(50);
  }
}

/**
 * One operation of `mix` (MIXES): `{ f, body }`, the key from `pickKey(rnd)`, values 0..4.
 * Draws from `rnd` in a fixed order: the kind, the key, then the value(s).
 */
export function pickOp(mix, rnd, pickKey) {
  const x = rnd();
  const key = pickKey(rnd);
  const f = x < mix.read ? 'read' : x < mix.read + mix.write ? 'write' : 'cas';
  const body = f === 'read' ? { type: 'read', key } : f === 'write' ? { type: 'write', key, value: Math.floor(rnd() * 5) } : { type: 'cas', key, from: Math.floor(rnd() * 5), to: Math.floor(rnd() * 5) };
  return { f, body };
}

let clientSeq = 0;

/**
 * `conc` closed-loop clients on cluster `s` (each sends its next request when the last one is
 * answered or timed out after 5 s; client i bound to node i mod N, as in Maelstrom), running at
 * once. `next(rnd)` gives each request as `{ f, body }` (pickOp); `rnd` is one xorshift32 stream
 * shared by the clients, seeded from `salt` and the number of clients started before. Nothing is
 * counted until `measure(true)`; from then on every completed request counts in `done`, every ok
 * answer (`<f>_ok`) in `ok`, its latency in `lat` and `latBy[f]` and, with `spans`, its
 * [start, end] (performance.now()) in `spans`. `stop()` resolves when every client has finished.
 */
export function closedLoop(s, conc, next, { salt = 0, spans = false } = {}) {
  const res = { ok: 0, done: 0, lat: [], latBy: { read: [], write: [], cas: [] }, spans: spans ? [] : null };
  let stop = false;
  let measuring = false;
  let rng = 0x9e3779b9 ^ (salt + clientSeq);
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
      const { f, body } = next(rnd);
      const t0 = performance.now();
      const r = await client.request(node, body, 5000);
      const t1 = performance.now();
      if (!measuring) continue;
      res.done++;
      if (r.reply?.type === `${f}_ok`) {
        res.ok++;
        res.lat.push(t1 - t0);
        res.latBy[f].push(t1 - t0);
        if (res.spans) res.spans.push(t0, t1);
      }
    }
  };
  const workers = Array.from({ length: conc }, (_, i) => worker(i));
  return {
    measure(on) {
      measuring = on;
    },
    async stop() {
      stop = true;
      await Promise.all(workers);
      return res;
    },
  };
}

/** The `p` quantile of the sorted array `xs` (NaN when empty). */
export function quantile(xs, p) {
  return xs.length ? xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] : NaN;
}

const silent = { debug() {}, info() {}, warn() {} };

/**
 * Write the snapshot a node writes of the pairs `forEachPair(each)` calls `each(key, value)` with,
 * at `meta`, through StorageNodeStore + DiskStorage as serve does, in a scratch node directory
 * under `root`; returns the path of a copy of the file (`root`/cluster.snap).
 */
export async function writeStateSnapshot(root, meta, forEachPair) {
  const { KvStore } = await import('../dist/kv/store.js');
  const { StorageNodeStore } = await import('../dist/node/storage-adapter.js');
  const { DiskStorage } = await import('../dist/storage/node-storage.js');
  const dir = path.join(root, 'snapshot-writer');
  const storage = DiskStorage.open(dir, { fsync: false, nodeId: 'n1' });
  storage.dir.setMembers(meta.config);
  storage.recover();
  const kv = new KvStore();
  forEachPair((k, v) => kv.set(k, v));
  const store = new StorageNodeStore(storage, true, dir, silent, 'n1');
  const view = kv.freeze();
  await store.saveSnapshot(meta, view);
  view.release();
  await store.close();
  const name = fs.readdirSync(storage.dir.snapDir).find((f) => f.endsWith('.snap'));
  const file = path.join(root, 'cluster.snap');
  fs.copyFileSync(path.join(storage.dir.snapDir, name), file);
  fs.rmSync(dir, { recursive: true, force: true });
  return file;
}

/**
 * Make `dir` the data directory of node `id` holding snapshot `file` (at `meta`) with its entries
 * committed, as a node that took it (or a restored directory) has it.
 */
export async function seedDataDir(dir, id, meta, file) {
  const { DiskStorage } = await import('../dist/storage/node-storage.js');
  const storage = DiskStorage.open(dir, { fsync: true, nodeId: id });
  storage.dir.setMembers(meta.config);
  storage.recover();
  storage.saveSnapshot(meta, fs.readFileSync(file));
  storage.setHardState({ term: meta.term, votedFor: null, commit: meta.index });
  storage.sync();
  storage.close();
}
