#!/usr/bin/env node
// Measurements for docs/SERVE.md (not a test; run after `npx tsc -p .`):
//   node test/node/measure.mjs startup [N]   time from spawn to the first init_ok, vs `node -e`
//   node test/node/measure.mjs snapshot [K]  longest event-loop pause while a K-key state (default
//                                            1,000,000) is snapshotted by the node's snapshot path
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const INIT = JSON.stringify({ src: 'c0', dest: 'n1', body: { type: 'init', msg_id: 1, node_id: 'n1', node_ids: ['n1'] } }) + '\n';

function timeToFirstLine(args, input) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(process.execPath, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'ignore'] });
    let done = false;
    p.stdout.on('data', () => {
      if (done) return;
      done = true;
      resolve(performance.now() - t0);
      p.stdin.end();
    });
    p.on('error', reject);
    p.on('exit', () => {
      if (!done) resolve(performance.now() - t0);
    });
    p.stdin.write(input);
    if (!args.includes('serve')) p.stdin.end();
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function startup(n) {
  const plain = [];
  const serve = [];
  const serveDisk = [];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'raftsnap-measure-'));
  for (let i = 0; i < n; i++) {
    plain.push(await timeToFirstLine(['-e', 'process.stdout.write("x\\n")'], ''));
    serve.push(await timeToFirstLine(['bin/run.js', 'serve'], INIT));
    serveDisk.push(await timeToFirstLine(['bin/run.js', 'serve', '--data-root', tmp, '--fsync', 'false'], INIT));
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  const f = (x) => x.toFixed(1);
  console.log(`runs: ${n} each (median / min ms)`);
  console.log(`plain node -e (first stdout line):        ${f(median(plain))} / ${f(Math.min(...plain))}`);
  console.log(`raftsnap serve, in memory (first init_ok): ${f(median(serve))} / ${f(Math.min(...serve))}`);
  console.log(`raftsnap serve --data-root (init_ok):      ${f(median(serveDisk))} / ${f(Math.min(...serveDisk))}`);
  console.log(`overhead over plain node (in memory):      ${f(median(serve) - median(plain))}`);
}

async function snapshot(keys) {
  const { KvStore } = await import(path.join(ROOT, 'dist/kv/store.js'));
  const { StorageNodeStore } = await import(path.join(ROOT, 'dist/node/storage-adapter.js'));
  const { DiskStorage } = await import(path.join(ROOT, 'dist/storage/node-storage.js'));
  const { silentLogger } = await import(path.join(ROOT, 'dist/node/log.js'));
  const kv = new KvStore();
  for (let i = 0; i < keys; i++) kv.set(i, i % 5);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'raftsnap-measure-'));
  const stores = {
    memory: new StorageNodeStore(DiskStorage.inMemory(), false, 'memory', silentLogger),
    disk: new StorageNodeStore(DiskStorage.open(path.join(tmp, 'n1'), { fsync: true }), true, tmp, silentLogger),
  };
  for (const [name, store] of Object.entries(stores)) {
    await store.recover();
    const h = monitorEventLoopDelay({ resolution: 1 });
    // A 1 ms interval records the largest gap between its runs as well (a second opinion).
    let last = performance.now();
    let maxGap = 0;
    let applied = 0;
    const probe = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
      // Keep writing while the snapshot is encoded, as a live node would.
      kv.set(applied++ % keys, -1);
    }, 1);
    h.enable();
    const t0 = performance.now();
    const view = kv.freeze();
    const { size } = await store.saveSnapshot({ index: 1, term: 1, config: ['n1'] }, view, Number(process.env.CHUNK ?? 2048));
    view.release();
    const total = performance.now() - t0;
    h.disable();
    clearInterval(probe);
    console.log(
      `${name}: ${keys} keys, ${(size / 1e6).toFixed(2)} MB, total ${total.toFixed(0)} ms; ` +
        `longest event-loop pause: ${(h.max / 1e6).toFixed(1)} ms (monitorEventLoopDelay), ${maxGap.toFixed(1)} ms (1 ms interval); ` +
        `p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms; writes applied meanwhile: ${applied}`,
    );
    await store.close();
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}

const [what, arg] = process.argv.slice(2);
if (what === 'startup') await startup(Number(arg ?? 20));
else if (what === 'snapshot') await snapshot(Number(arg ?? 1_000_000));
else console.error('usage: measure.mjs startup [N] | snapshot [KEYS]');
