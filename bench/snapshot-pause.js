// Event-loop pauses while a node snapshots a large state through the chunked path.
//   node bench/snapshot-pause.js [--keys N] [--runs R] [--chunk K] [--out docs/BENCHMARKS.md]
// A KvStore of N integer keys (values 0..4, as Maelstrom's lin-kv writes) is frozen and saved into a
// real data directory (DiskStorage, fsync on) the way serve does it: chunks of K keys (serve's
// SNAPSHOT_CHUNK_KEYS), yielding to the event loop between chunks, then the file is written durably.
// The longest pause is the max of perf_hooks.monitorEventLoopDelay (1 ms resolution) over the save;
// a second, instrumented copy of the node's loop also times each synchronous stretch itself.
//   node path   = StorageNodeStore.saveSnapshot (src/node/storage-adapter.ts): view.columns +
//                 enc.addColumns per chunk, a yield between chunks, then DiskStorage.saveSnapshot
//   timed copy  = the same loop written out here with timers around each stretch
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { KvStore } from '../dist/kv/store.js';
import { DiskStorage } from '../dist/storage/node-storage.js';
import { SnapshotEncoder } from '../dist/storage/snapshot.js';
import { StorageNodeStore, yieldToLoop } from '../dist/node/storage-adapter.js';
import { SNAPSHOT_CHUNK_KEYS } from '../dist/node/snapshotter.js';
import { fmt, median, writeBlock } from './report.js';

const { values: args } = parseArgs({
  options: {
    keys: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '5' },
    chunk: { type: 'string', default: String(SNAPSHOT_CHUNK_KEYS) },
    out: { type: 'string' },
  },
});
const KEYS = Number(args.keys);
const RUNS = Number(args.runs);
const CHUNK = Number(args.chunk);

// Two states: keys inserted in ascending order (every chunk's keys are a key run, docs/FORMAT.md)
// and the same pairs in a fixed pseudo-random order (no runs: every key is encoded).
const ascending = new KvStore();
for (let i = 0; i < KEYS; i++) ascending.set(i, (i * 7919) % 5);
const order = Array.from({ length: KEYS }, (_, i) => i);
let seed = 12345;
for (let i = KEYS - 1; i > 0; i--) {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  const j = seed % (i + 1);
  [order[i], order[j]] = [order[j], order[i]];
}
const shuffled = new KvStore();
for (const i of order) shuffled.set(i, (i * 7919) % 5);
const states = { ascending, shuffled };
const log = { debug() {}, info() {}, warn() {}, error() {} };
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'raftsnap-pause-'));
let nextIndex = 1;

async function columnar(storage, view, meta, seg) {
  const enc = new SnapshotEncoder(meta, { nodeId: 'n1' });
  let first = true;
  let t = performance.now();
  for (const c of view.columns(CHUNK)) {
    if (!first) {
      seg.chunkMax = Math.max(seg.chunkMax, performance.now() - t);
      await yieldToLoop();
      t = performance.now();
    }
    first = false;
    enc.addColumns(c.keys, c.values);
  }
  const t1 = performance.now();
  const bytes = enc.finish();
  const t2 = performance.now();
  // As the node does: the file's fsync runs off the event loop; what is timed here is the
  // synchronous part before it (verify, write into the temporary file); the rename, directory
  // fsync and WAL marker after it are a second, short stretch (in the longest pause if longest).
  const p = storage.saveSnapshotAsync(meta, bytes, (fn) => Promise.resolve(fn()));
  const t3 = performance.now();
  await p;
  const t4 = performance.now();
  seg.lastChunkAndFinish = t2 - t;
  seg.finish = t2 - t1;
  seg.save = t3 - t2;
  seg.fsyncWait = t4 - t3;
  seg.tail = t3 - t;
  return bytes.length;
}

const variants = {
  'node path (StorageNodeStore.saveSnapshot: columns + addColumns)': async (store, _storage, view, meta) => (await store.saveSnapshot(meta, view, CHUNK)).size,
  'timed copy of the node path': async (_store, storage, view, meta, seg) => columnar(storage, view, meta, seg),
};

// Builds from before FrozenView.columns existed run the node path only.
const probe = ascending.freeze();
if (typeof probe.columns !== 'function') delete variants['timed copy of the node path'];
probe.release();

const results = [];
try {
  for (const [stateName, kv] of Object.entries(states))
  for (const [variant, run] of Object.entries(variants)) {
    const name = `${variant}, keys ${stateName}`;
    const dir = path.join(root, name.replace(/\W+/g, '-'));
    const storage = DiskStorage.open(dir, { fsync: true, nodeId: 'n1', retain: 1 });
    const store = new StorageNodeStore(storage, true, dir, log, 'n1');
    const pauses = [];
    const totals = [];
    const segs = [];
    let size = 0;
    for (let r = 0; r <= RUNS; r++) {
      const meta = { index: nextIndex++, term: 1, config: ['n1', 'n2', 'n3'] };
      const view = kv.freeze();
      const seg = { chunkMax: 0 };
      const h = monitorEventLoopDelay({ resolution: 1 });
      // Let the histogram's timer start before the save begins.
      await new Promise((res) => setTimeout(res, 20));
      h.enable();
      await new Promise((res) => setTimeout(res, 5));
      const t = performance.now();
      size = await run(store, storage, view, meta, seg);
      const total = performance.now() - t;
      await new Promise((res) => setTimeout(res, 5));
      h.disable();
      view.release();
      if (r === 0) continue; // warm-up
      pauses.push(h.max / 1e6);
      totals.push(total);
      segs.push(seg);
    }
    await store.close();
    const row = { name, pauseMs: median(pauses), pauseMaxMs: Math.max(...pauses), totalMs: median(totals), size };
    if (segs[0].tail !== undefined) {
      for (const k of ['chunkMax', 'finish', 'save', 'fsyncWait', 'tail']) row[k] = median(segs.map((s) => s[k]));
    }
    results.push(row);
    process.stderr.write(`${name}: longest pause median ${row.pauseMs.toFixed(1)} ms (worst ${row.pauseMaxMs.toFixed(1)}), save ${row.totalMs.toFixed(0)} ms, ${size} bytes\n`);
  }
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}

const lines = [];
const cmd = `node bench/snapshot-pause.js --keys ${KEYS} --runs ${RUNS} --chunk ${CHUNK}`;
lines.push(`### Event-loop pause while a node snapshots ${KEYS.toLocaleString('en-US')} keys`);
lines.push('');
lines.push(
  `Command: \`${cmd}\` (via \`npm run bench\`). Machine: ${os.cpus().length} cores, Node ${process.version}. A frozen KvStore of integer keys 0..N-1 (inserted in ascending order, so that every chunk's keys are a key run, docs/FORMAT.md; or in a fixed pseudo-random order, so that every key is encoded), values 0..4, is saved into a data directory with fsync on, ${CHUNK} keys per chunk with a yield to the event loop between chunks, as \`serve\` does. Longest pause = max of \`monitorEventLoopDelay\` (1 ms resolution) during the save; medians of ${RUNS} runs after a warm-up.`,
);
lines.push('');
lines.push('| path | longest pause, median ms | longest pause, worst run ms | whole save ms | file bytes |');
lines.push('|---|---:|---:|---:|---:|');
for (const r of results) lines.push(`| ${r.name} | ${fmt(r.pauseMs)} | ${fmt(r.pauseMaxMs)} | ${fmt(r.totalMs)} | ${r.size} |`);
const col = results.find((r) => r.tail !== undefined && r.name.endsWith("shuffled")) ?? results.find((r) => r.tail !== undefined);
if (col) {
  lines.push('');
  lines.push(
    `Where the node path spends its synchronous stretches (timed copy, medians): longest chunk ${fmt(col.chunkMax)} ms; last stretch ${fmt(col.tail)} ms = \`finish()\` ${fmt(col.finish)} ms (last chunk, zstd end, header) + the synchronous start of \`DiskStorage.saveSnapshotAsync\` ${fmt(col.save)} ms (verify, write into the temporary file); then the file's fsync runs off the event loop (${fmt(col.fsyncWait)} ms of waiting, the node free meanwhile), followed by a short stretch (rename, directory fsync, WAL marker + fsync).`,
  );
}
const worst = Math.max(...results.filter((r) => r.name.startsWith('node path')).map((r) => r.pauseMaxMs));
lines.push('');
lines.push(`Target (issue 8): the longest pause under 10 ms in every run: worst run of the node path ${fmt(worst)} ms, **${worst < 10 ? 'met' : 'missed'}**. (Measured without client load; the client p99 during a snapshot against without one is not measured here.)`);
const text = lines.join('\n') + '\n';
process.stdout.write(text);
if (args.out) writeBlock(args.out, 'pause', text);
