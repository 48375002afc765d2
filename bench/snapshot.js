// Snapshot benchmark: raftsnap's format (CBOR sequence + zstd, checksummed) against
// JSON.stringify + gzip and v8.serialize + gzip, on the same states, in the same run.
//   node bench/snapshot.js [--keys N] [--runs R] [--out docs/BENCHMARKS.md]
// Each figure is the median of R runs; ratios are against the baselines measured in this run.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import zlib from 'node:zlib';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import vm from 'node:vm';
import { spawnSync } from 'node:child_process';
import { decodeSnapshot, encodeSnapshot, readSnapshotHeader, writeFileAtomic } from '../dist/storage/index.js';
import { inspectSnapshot } from '../dist/tools/inspect.js';

const { values: args } = parseArgs({
  options: {
    keys: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '5' },
    out: { type: 'string' },
  },
});
const KEYS = Number(args.keys);
const RUNS = Number(args.runs);

// A full collection before each timed operation (outside the timing), so that one format's garbage
// is not collected inside another's measurement.
v8.setFlagsFromString('--expose-gc');
const collect = vm.runInNewContext('gc');

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function makeState(kind) {
  const kv = new Array(KEYS);
  for (let i = 0; i < KEYS; i++) {
    // Deterministic values: small integers 0..4 as Maelstrom's lin-kv writes, or 100-byte strings.
    kv[i] = kind === 'int' ? [i, (i * 7919) % 5] : [i, `v${String(i).padStart(8, '0')}-`.padEnd(100, String.fromCharCode(97 + (i % 26)))];
  }
  return { kv };
}

function writeDurable(file, bytes) {
  writeFileAtomic(file, bytes, { fsync: true });
}

const formats = {
  raftsnap: {
    write(state, file) {
      const bytes = encodeSnapshot({ index: KEYS, term: 3, config: ['n1', 'n2', 'n3'] }, state, { createdAt: 0 });
      writeDurable(file, bytes);
      return bytes.length;
    },
    load(file) {
      return decodeSnapshot(fs.readFileSync(file), file).content.kv.length;
    },
  },
  'json+gzip': {
    write(state, file) {
      const bytes = zlib.gzipSync(JSON.stringify(state));
      writeDurable(file, bytes);
      return bytes.length;
    },
    load(file) {
      return JSON.parse(zlib.gunzipSync(fs.readFileSync(file)).toString('utf8')).kv.length;
    },
  },
  'v8+gzip': {
    write(state, file) {
      const bytes = zlib.gzipSync(v8.serialize(state));
      writeDurable(file, bytes);
      return bytes.length;
    },
    load(file) {
      return v8.deserialize(zlib.gunzipSync(fs.readFileSync(file))).kv.length;
    },
  },
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'raftsnap-bench-'));
const results = [];
try {
  for (const kind of ['int', 'str100']) {
    const state = makeState(kind);
    const row = { kind, formats: {} };
    const m = Object.fromEntries(Object.keys(formats).map((name) => [name, { writes: [], loads: [], size: 0 }]));
    // Runs are interleaved (run r of every format, then run r + 1) so that the load of a shared
    // machine, which comes and goes, spreads over all formats alike.
    for (let r = 0; r < RUNS; r++) {
      for (const [name, f] of Object.entries(formats)) {
        const file = path.join(dir, `${kind}.${name}`);
        collect();
        let t = performance.now();
        m[name].size = f.write(state, file);
        m[name].writes.push(performance.now() - t);
        collect();
        t = performance.now();
        const n = f.load(file);
        m[name].loads.push(performance.now() - t);
        if (n !== KEYS) throw new Error(`${name} loaded ${n} keys, expected ${KEYS}`);
      }
    }
    for (const [name, { writes, loads, size }] of Object.entries(m)) {
      row.formats[name] = { writeMs: median(writes), loadMs: median(loads), bytes: size };
      process.stderr.write(`${kind} ${name}: write ${median(writes).toFixed(0)} ms, load ${median(loads).toFixed(0)} ms, ${size} bytes\n`);
    }
    // Header-only read: must not depend on the payload size.
    const file = path.join(dir, `${kind}.raftsnap`);
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
    results.push(row);
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}

const fmt = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const lines = [];
const cmd = `node bench/snapshot.js --keys ${KEYS} --runs ${RUNS}`;
lines.push(`### Snapshot write / load, ${KEYS.toLocaleString('en-US')} keys`);
lines.push('');
lines.push(`Command: \`${cmd}\` (via \`npm run bench\`). Machine: ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}. Medians of ${RUNS} runs, interleaved across formats, each timed operation after a full GC (not timed); write = encode + compress + write + fsync + rename + directory fsync; load = read + verify + decode.`);
lines.push('');
lines.push('| state | format | write ms | load ms | file bytes | write vs json+gzip | size vs json+gzip |');
lines.push('|---|---|---:|---:|---:|---:|---:|');
for (const r of results) {
  const base = r.formats['json+gzip'];
  for (const [name, f] of Object.entries(r.formats)) {
    lines.push(
      `| ${r.kind} | ${name} | ${fmt(f.writeMs)} | ${fmt(f.loadMs)} | ${f.bytes} | ${(base.writeMs / f.writeMs).toFixed(2)}x faster | ${(f.bytes / base.bytes).toFixed(2)}x |`,
    );
  }
}
lines.push('');
lines.push(`Header-only read of the ${KEYS.toLocaleString('en-US')}-key files (the payload is not read), median of 25: \`readSnapshotHeader\` ${results.map((r) => `${r.kind} ${r.headerMs.toFixed(3)} ms`).join(', ')}; \`inspectSnapshot(file, { headerOnly: true })\` (the work of \`raftsnap inspect FILE --header\`) ${results.map((r) => `${r.kind} ${r.inspectMs.toFixed(3)} ms`).join(', ')}. The whole \`node bin/run.js inspect FILE --header --json\` process, start-up included, median of 5: ${results.map((r) => `${r.kind} ${r.inspectCliMs.toFixed(0)} ms`).join(', ')}.`);
const text = lines.join('\n') + '\n';
process.stdout.write(text);
if (args.out) {
  const marker = '<!-- bench:snapshot -->';
  const endMarker = '<!-- /bench:snapshot -->';
  let doc = fs.existsSync(args.out) ? fs.readFileSync(args.out, 'utf8') : '# Benchmarks\n\n';
  const block = `${marker}\n${text}${endMarker}\n`;
  const start = doc.indexOf(marker);
  const end = doc.indexOf(endMarker);
  doc = start >= 0 && end > start ? doc.slice(0, start) + block + doc.slice(end + endMarker.length + 1) : doc + '\n' + block;
  fs.writeFileSync(args.out, doc);
}
