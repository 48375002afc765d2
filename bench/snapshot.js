// Snapshot benchmark: raftsnap's format (CBOR sequence + zstd, checksummed) against
// JSON.stringify + gzip and v8.serialize + gzip, on the same states, in the same run.
//   node bench/snapshot.js [--keys N] [--runs R] [--out docs/BENCHMARKS.md]
// Each figure is the median of R runs; ratios are against the json+gzip baseline of the same input,
// measured in this run. Two inputs per state:
//   node state   the node's state machine, a KvStore (src/kv) holding the N pairs. raftsnap writes it
//                the way StorageNodeStore.saveSnapshot does (freeze, FrozenView.columns in chunks of
//                SNAPSHOT_CHUNK_KEYS, SnapshotEncoder.addColumns, finish), without the event-loop
//                yields between chunks; the baselines serialize [...store.entries()]. Load = read +
//                verify + decode + rebuild the KvStore, as a recovering node does.
//   content API  an in-memory array of [key, value] pairs: encodeSnapshot({kv}) against
//                JSON.stringify({kv}) / v8.serialize({kv}); load = read + verify + decode to pairs.
// Every write ends with the same durable write (temp file, fsync, rename, directory fsync).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import zlib from 'node:zlib';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import vm from 'node:vm';
import { spawnSync } from 'node:child_process';
import { SnapshotReader, decodeSnapshot, encodeSnapshot, readSnapshotHeader, writeFileAtomic } from '../dist/storage/index.js';
import { inspectSnapshot } from '../dist/tools/inspect.js';
import { KvLoad, KvStore } from '../dist/kv/store.js';
import { SnapshotEncoder } from '../dist/storage/snapshot.js';
import { SNAPSHOT_CHUNK_KEYS } from '../dist/node/snapshotter.js';
import { StateHasher } from '../dist/tools/hash.js';
import { fmt, median, writeBlock } from './report.js';
import { mixedPair, xorshift } from './large-state.js';

const { values: args } = parseArgs({
  options: {
    keys: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '5' },
    out: { type: 'string' },
    // A comma-separated subset of the states, for quick measurements (the document gets all of them).
    states: { type: 'string' },
  },
});
const KEYS = Number(args.keys);
const RUNS = Number(args.runs);

// A full collection before each timed operation (outside the timing), so that one format's garbage
// is not collected inside another's measurement.
v8.setFlagsFromString('--expose-gc');
const collect = vm.runInNewContext('gc');

// States: `int` = integer keys 0..N-1 inserted in order, values 0..4 (Maelstrom's lin-kv shape);
// `int-shuffled` = the same pairs inserted in a pseudo-random order (so no chunk's keys are a run
// of consecutive integers, see docs/FORMAT.md); `str100` = keys 0..N-1 in order, 100-byte strings;
// `mixed` = string keys of three kinds (`user:<n>`, hex ids, path-like keys) in a pseudo-random
// order, with mixed JSON values (integers, short strings, small arrays and objects).
const ALL_STATES = ['int', 'int-shuffled', 'str100', 'mixed'];
const STATES = args.states ? args.states.split(',') : ALL_STATES;

function makeState(kind) {
  const order = Array.from({ length: KEYS }, (_, i) => i);
  if (kind === 'int-shuffled' || kind === 'mixed') {
    // Fisher-Yates with a fixed xorshift32 seed: the same order in every run.
    const rnd = xorshift(0x9e3779b9);
    for (let i = KEYS - 1; i > 0; i--) {
      const j = rnd() % (i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
  }
  const kv = new Array(KEYS);
  const store = new KvStore();
  const rnd = xorshift(0x2545f491);
  for (let n = 0; n < KEYS; n++) {
    const i = order[n];
    if (kind === 'mixed') {
      kv[n] = mixedPair(i, rnd, KEYS);
      store.set(kv[n][0], kv[n][1]);
      continue;
    }
    // Deterministic values: small integers 0..4 as Maelstrom's lin-kv writes, or 100-byte strings.
    const v = kind !== 'str100' ? (i * 7919) % 5 : `v${String(i).padStart(8, '0')}-`.padEnd(100, String.fromCharCode(97 + (i % 26)));
    kv[n] = [i, v];
    store.set(i, v);
  }
  return { kv, store };
}

function cpuMs(since) {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
}

function stateHash(pairs) {
  const h = new StateHasher();
  for (const [k, v] of pairs) h.add(k, v);
  return h.digest();
}

function writeDurable(file, bytes) {
  writeFileAtomic(file, bytes, { fsync: true });
}

const META = { index: KEYS, term: 3, config: ['n1', 'n2', 'n3'] };

/** Node-state loads: the decoded pairs go into a fresh KvStore, as a recovering node does (KvStore.reset). */
function rebuild(pairs) {
  const decodedAt = performance.now();
  const store = new KvStore();
  store.reset(pairs);
  return { n: store.size, decodedAt };
}

// The node's state machine (a KvStore) as input: what a node actually snapshots and recovers.
const nodeFormats = {
  raftsnap: {
    write(state, file) {
      // StorageNodeStore.saveSnapshot (src/node/storage-adapter.ts) without its yields.
      const view = state.store.freeze();
      const enc = new SnapshotEncoder(META, { createdAt: 0 });
      for (const c of view.columns(SNAPSHOT_CHUNK_KEYS)) enc.addColumns(c.keys, c.values);
      const bytes = enc.finish();
      view.release();
      writeDurable(file, bytes);
      return bytes.length;
    },
    load(file) {
      // What a recovering or installing node does (src/node/install.ts, without the yields): the
      // file streamed a piece at a time, its CRC checked as it streams (verify: 'streaming'), each
      // chunk added to a KvLoad, which becomes the state machine's state once the file is checked.
      // "load ms" is the reading and decoding; the time spent adding pairs to the maps is counted
      // in "load + KvStore" only, as for the other formats.
      const r = SnapshotReader.open(file, { verify: 'streaming' });
      const load = new KvLoad();
      let addMs = 0;
      for (const c of r.chunks()) {
        const t = performance.now();
        load.add(c.keys, c.values);
        addMs += performance.now() - t;
      }
      const store = new KvStore();
      store.replace(load, r.sessions);
      const end = performance.now();
      return { n: store.size, decodedAt: end - addMs };
    },
  },
  'json+gzip': {
    write(state, file) {
      const bytes = zlib.gzipSync(JSON.stringify([...state.store.entries()]));
      writeDurable(file, bytes);
      return bytes.length;
    },
    load(file) {
      return rebuild(JSON.parse(zlib.gunzipSync(fs.readFileSync(file)).toString('utf8')));
    },
  },
  'v8+gzip': {
    write(state, file) {
      const bytes = zlib.gzipSync(v8.serialize([...state.store.entries()]));
      writeDurable(file, bytes);
      return bytes.length;
    },
    load(file) {
      return rebuild(v8.deserialize(zlib.gunzipSync(fs.readFileSync(file))));
    },
  },
};

// An array of [key, value] pairs as input: the storage library's content API.
const contentFormats = {
  raftsnap: {
    write(state, file) {
      const bytes = encodeSnapshot(META, { kv: state.kv }, { createdAt: 0 });
      writeDurable(file, bytes);
      return bytes.length;
    },
    load(file) {
      return decodeSnapshot(fs.readFileSync(file), file).content.kv.length;
    },
  },
  'json+gzip': {
    write(state, file) {
      const bytes = zlib.gzipSync(JSON.stringify({ kv: state.kv }));
      writeDurable(file, bytes);
      return bytes.length;
    },
    load(file) {
      return JSON.parse(zlib.gunzipSync(fs.readFileSync(file)).toString('utf8')).kv.length;
    },
  },
  'v8+gzip': {
    write(state, file) {
      const bytes = zlib.gzipSync(v8.serialize({ kv: state.kv }));
      writeDurable(file, bytes);
      return bytes.length;
    },
    load(file) {
      return v8.deserialize(zlib.gunzipSync(fs.readFileSync(file))).kv.length;
    },
  },
};

const inputs = { 'node state': nodeFormats, 'content API': contentFormats };

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftsnap-bench-'));
const results = [];
try {
  for (const kind of STATES) {
    const state = makeState(kind);
    const row = { kind, inputs: {} };
    const cases = [];
    for (const [input, formats] of Object.entries(inputs)) for (const [name, f] of Object.entries(formats)) cases.push({ input, name, f });
    const m = new Map(cases.map((c) => [c, { writes: [], loads: [], recovers: [], writeCpu: [], recoverCpu: [], size: 0 }]));
    // Runs are interleaved (run r of every input and format, then run r + 1) so that the load of a
    // shared machine, which comes and goes, spreads over all of them alike.
    for (let r = 0; r < RUNS; r++) {
      for (const c of cases) {
        const file = path.join(dir, `${kind}.${c.input.replace(/\W+/g, '-')}.${c.name}`);
        const mm = m.get(c);
        collect();
        // CPU time too (process.cpuUsage: this process's threads, GC helpers included; waiting for
        // fsync is not CPU): on a shared machine the wall clock also counts other processes' turns.
        let cpu = process.cpuUsage();
        let t = performance.now();
        mm.size = c.f.write(state, file);
        mm.writes.push(performance.now() - t);
        mm.writeCpu.push(cpuMs(cpu));
        collect();
        cpu = process.cpuUsage();
        t = performance.now();
        const got = c.f.load(file);
        const t2 = performance.now();
        mm.recoverCpu.push(cpuMs(cpu));
        // Node-state loads report when decoding ended, before the KvStore was rebuilt.
        const n = typeof got === 'number' ? got : got.n;
        mm.loads.push((typeof got === 'number' ? t2 : got.decodedAt) - t);
        if (typeof got !== 'number') mm.recovers.push(t2 - t);
        if (n !== KEYS) throw new Error(`${c.input} ${c.name} loaded ${n} keys, expected ${KEYS}`);
      }
    }
    // Both raftsnap files decode to exactly the state's pairs (the order-independent state hash of
    // `raftsnap hash`; the node path's order is the KvStore's, which need not be the array's).
    const want = stateHash(state.kv);
    for (const input of ['node-state', 'content-API']) {
      const f = path.join(dir, `${kind}.${input}.raftsnap`);
      const got = stateHash(decodeSnapshot(fs.readFileSync(f), f).content.kv);
      if (got !== want) throw new Error(`${kind}: the ${input} raftsnap file does not decode to the state written (hash ${got}, expected ${want})`);
    }
    for (const [c, { writes, loads, recovers, writeCpu, recoverCpu, size }] of m) {
      const recoverMs = recovers.length > 0 ? median(recovers) : null;
      (row.inputs[c.input] ??= {})[c.name] = { writeMs: median(writes), loadMs: median(loads), recoverMs, writeCpuMs: median(writeCpu), loadCpuMs: median(recoverCpu), bytes: size };
      process.stderr.write(
        `${kind} ${c.input} ${c.name}: write ${median(writes).toFixed(0)} ms (cpu ${median(writeCpu).toFixed(0)}), load ${median(loads).toFixed(0)} ms${recoverMs === null ? '' : `, load + KvStore ${recoverMs.toFixed(0)} ms`} (cpu ${median(recoverCpu).toFixed(0)}), ${size} bytes\n`,
      );
    }
    // Header-only read: must not depend on the payload size.
    const file = path.join(dir, `${kind}.node-state.raftsnap`);
    const hdr = [];
    for (let r = 0; r < 25; r++) {
      const t = performance.now();
      readSnapshotHeader(file);
      hdr.push(performance.now() - t);
    }
    row.headerMs = median(hdr);
    // What `raftsnap inspect FILE --header` does in-process (open, read header, check, build the report).
    const insp = [];
    for (let r = 0; r < 25; r++) {
      const t = performance.now();
      inspectSnapshot(file, { headerOnly: true });
      insp.push(performance.now() - t);
    }
    row.inspectMs = median(insp);
    // The whole command as a process, for scale: mostly Node and oclif start-up, not reading.
    const cli = [];
    for (let r = 0; r < 5; r++) {
      const t = performance.now();
      const p = spawnSync(process.execPath, ['bin/run.js', 'inspect', file, '--header', '--json'], { encoding: 'utf8' });
      cli.push(performance.now() - t);
      if (p.status !== 0) throw new Error(`inspect --header failed: ${p.stderr}`);
    }
    row.inspectCliMs = median(cli);
    row.fileBytes = fs.statSync(file).size;
    row.loadAvg = os.loadavg()[0];
    results.push(row);
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}

// Two significant digits for ratios below 0.01, so that a tiny file does not read as 0.00x.
const sizeRatio = (x) => (x >= 0.01 ? x.toFixed(2) : x.toPrecision(2));
const lines = [];
const cmd = `node bench/snapshot.js --keys ${KEYS} --runs ${RUNS}`;
lines.push(`### Snapshot write / load, ${KEYS.toLocaleString('en-US')} keys`);
lines.push('');
lines.push(`Command: \`${cmd}\` (via \`npm run bench\`). Machine: ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}. Medians of ${RUNS} runs, interleaved across inputs and formats, each timed operation after a full GC (not timed); the load average while it ran is given below: the machine is shared, and the wall-clock figures count the turns of other processes too, which the CPU-time columns (this process's CPU, GC threads included, waiting for fsync not) do not. Every write ends with the same durable write (temp file, write, fsync, rename, directory fsync); ratios compare with json+gzip on the same input in the same run.`);
lines.push('');
lines.push('What the rows measure:');
lines.push('');
lines.push(`- states: **int** = integer keys 0..N-1 inserted in ascending order, values \`(i * 7919) % 5\` (0..4, repeating with period 5, which every compressor squeezes to almost nothing once the keys are out of the way); **int-shuffled** = the same pairs inserted in a fixed pseudo-random order, so that no chunk's keys are a run of consecutive integers and raftsnap writes every key (docs/FORMAT.md, key runs): the int case without that encoding; **str100** = keys 0..N-1 in ascending order, 100-byte string values; **mixed** = string keys of three kinds in equal shares (\`user:<n>\`, 16-digit hex ids, path-like keys \`/org/<a>/repo/<b>/<word>-<n>.json\`) inserted in a fixed pseudo-random order, values 35% integers (below 1,000 or below 10,000,000), 25% short strings (a word or 6 random base-36 digits), 15% arrays of 1-4 integers or words, 25% objects of two shapes (\`{id, name, active}\`, \`{owner, status, score, tags}\`); a deterministic generator (xorshift32, fixed seeds; bench/snapshot.js \`mixedPair\`). raftsnap writes format version 3 (docs/FORMAT.md): each chunk a zstd frame of its own; each chunk's integer keys sorted and delta-coded, string keys as templates and numbers or hex bytes, integer values as varints.`);
lines.push(`- **node state**: the input is the node's state machine, a \`KvStore\` (src/kv) holding the pairs. raftsnap = what \`StorageNodeStore.saveSnapshot\` does: \`store.freeze()\`, \`view.columns(${SNAPSHOT_CHUNK_KEYS})\` (serve's \`SNAPSHOT_CHUNK_KEYS\`), \`SnapshotEncoder.addColumns\` per chunk, \`finish()\`, durable write, but without the yields to the event loop between chunks (their cost is in the pause benchmark below) and without the WAL marker. json+gzip = \`gzipSync(JSON.stringify([...store.entries()]))\` + durable write; v8+gzip = \`gzipSync(v8.serialize([...store.entries()]))\` + durable write. "load + KvStore ms" = read, verify, decode and the state machine ready: for raftsnap what a recovering or installing node does (src/node/install.ts without its yields): \`SnapshotReader.open(file, { verify: 'streaming' })\` (the file read a piece at a time, its CRC checked as it streams, refused before the state is used), each chunk added to a \`KvLoad\`, \`KvStore.replace\`; for the baselines gunzip + parse + \`KvStore.reset(pairs)\`. "load ms" is that without the time spent putting pairs into the maps (raftsnap: the \`KvLoad.add\` calls; baselines: \`KvStore.reset\`).`);
lines.push(`- **content API**: the input is an array of \`[key, value]\` pairs already in memory. raftsnap = \`encodeSnapshot(meta, { kv })\` + durable write; json+gzip = \`gzipSync(JSON.stringify({ kv }))\` + durable write; v8+gzip = \`gzipSync(v8.serialize({ kv }))\` + durable write. Load = read + verify + decode to the array of pairs.`);
lines.push('');
lines.push('| state | input | format | write ms | write cpu ms | load ms | load + KvStore ms | load cpu ms | file bytes | write vs json+gzip | size vs json+gzip |');
lines.push('|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of results) {
  for (const [input, formats] of Object.entries(r.inputs)) {
    const base = formats['json+gzip'];
    for (const [name, f] of Object.entries(formats)) {
      lines.push(
        `| ${r.kind} | ${input} | ${name} | ${fmt(f.writeMs)} | ${fmt(f.writeCpuMs)} | ${fmt(f.loadMs)} | ${f.recoverMs === null ? '–' : fmt(f.recoverMs)} | ${fmt(f.loadCpuMs)} | ${f.bytes} | ${(base.writeMs / f.writeMs).toFixed(2)}x faster | ${sizeRatio(f.bytes / base.bytes)}x |`,
      );
    }
  }
}
lines.push('');
// The issue's format targets (issue 8, "Snapshots of large states", Format), checked on the node
// path (what a node writes and loads) and on the content API for the write ratio.
const INT_STATES = ['int', 'int-shuffled'];
const target = (ok) => (ok ? 'met' : '**missed**');
lines.push(`Load average (1 min) at the end of each state: ${results.map((r) => `${r.kind} ${r.loadAvg.toFixed(1)}`).join(', ')} (${os.cpus().length} cores).`);
lines.push('');
lines.push('Format targets of issue 8, on these figures (node state = what a node writes and loads):');
lines.push('');
lines.push('| target | state | measured | |');
lines.push('|---|---|---|---|');
for (const r of results) {
  const ns = r.inputs['node state'];
  const ca = r.inputs['content API'];
  const wNode = ns['json+gzip'].writeMs / ns.raftsnap.writeMs;
  const wApi = ca['json+gzip'].writeMs / ca.raftsnap.writeMs;
  const cNode = ns['json+gzip'].writeCpuMs / ns.raftsnap.writeCpuMs;
  lines.push(
    `| write >= 4x faster than json+gzip | ${r.kind} | node state ${wNode.toFixed(2)}x, content API ${wApi.toFixed(2)}x (CPU time, node state: ${cNode.toFixed(2)}x) | ${target(wNode >= 4 && wApi >= 4)} |`,
  );
  const size = ns.raftsnap.bytes / ns['json+gzip'].bytes;
  const limit = r.kind === 'mixed' ? 0.8 : 0.6;
  lines.push(`| file <= ${limit}x json+gzip | ${r.kind} | ${sizeRatio(size)}x | ${target(size <= limit)} |`);
  if (INT_STATES.includes(r.kind) && KEYS >= 1_000_000) {
    lines.push(`| 1M-key write < 150 ms | ${r.kind} | ${fmt(ns.raftsnap.writeMs)} ms (CPU ${fmt(ns.raftsnap.writeCpuMs)} ms) | ${target(ns.raftsnap.writeMs < 150)} |`);
    lines.push(
      `| 1M-key load, state machine ready, < 250 ms | ${r.kind} | ${fmt(ns.raftsnap.recoverMs)} ms (decode ${fmt(ns.raftsnap.loadMs)} ms; CPU ${fmt(ns.raftsnap.loadCpuMs)} ms) | ${target(ns.raftsnap.recoverMs < 250)} |`,
    );
  }
}
lines.push('');
lines.push(`Header-only read of the ${KEYS.toLocaleString('en-US')}-key files (the payload is not read), median of 25: \`readSnapshotHeader\` ${results.map((r) => `${r.kind} ${r.headerMs.toFixed(3)} ms`).join(', ')}; \`inspectSnapshot(file, { headerOnly: true })\` (the work of \`raftsnap inspect FILE --header\`) ${results.map((r) => `${r.kind} ${r.inspectMs.toFixed(3)} ms`).join(', ')}. The whole \`node bin/run.js inspect FILE --header --json\` process, start-up included, median of 5: ${results.map((r) => `${r.kind} ${r.inspectCliMs.toFixed(0)} ms`).join(', ')}.`);
const text = lines.join('\n') + '\n';
process.stdout.write(text);
if (args.out) writeBlock(args.out, 'snapshot', text);
