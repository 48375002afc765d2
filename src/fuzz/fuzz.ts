/**
 * A small mutation fuzzer for every decoder of untrusted input (docs/FORMAT.md, "Limits"; issue
 * 11): snapshot files, the decompressed snapshot payload (mutated, then compressed and sealed again
 * so that the checks behind the checksums are reached), format 3 files taken apart into their frames
 * and sealed again (src/fuzz/frames.ts: every reader, FramedSnapshot's chunks on their own too, and
 * they must agree), WAL segments (mutated, then re-sealed),
 * meta.json, and serve's message decoder (parseLine and the request validation). Seeds are the
 * fixture files and the bad-value lines of the wire tests. Each input must end in a valid result
 * or a clear error (StorageError, ProtocolError, a refused ParseResult); anything else thrown is a
 * crash, and so is a case that takes longer than `slowMs` or grows the heap by more than
 * `maxGrowthMb`. Deterministic for a seed.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { clientCommand } from '../node/dispatch.js';
import { LineSplitter, ProtocolError, parseLine } from '../node/protocol.js';
import { MAX_MESSAGE_DEPTH, MAX_VALUE_CHARS, MAX_VALUE_DEPTH } from '../limits.js';
import { clientValueProblem, valueProblem } from '../node/wire-limits.js';
import type { Body } from '../node/protocol.js';
import type { Json } from '../raft/types.js';
import { zstdDecompressExact } from '../storage/codec.js';
import { KvStore } from '../kv/store.js';
import { StateHasher, sessionsHash } from '../tools/hash.js';
import { DataDir } from '../storage/datadir.js';
import { MemFs } from '../storage/mem-fs.js';
import { FramedSnapshot } from '../storage/snapshot-framed.js';
import { decodeSnapshot, decodeSnapshotHeader, encodeSnapshot } from '../storage/snapshot.js';
import { scanSegmentBytes } from '../storage/wal.js';
import { EXTREMES32, HOSTILE_JSON, mutate, mutateItems, nest, storageOutcome, Rng, type Outcome, type Target } from './cases.js';
import { framesSeeds, snapshotFrames } from './frames.js';
import { resealSnapshot, resealWal, snapshotFromPayload, zstdFrame } from './seal.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export { Rng, mutate, type Outcome, type Target } from './cases.js';



function files(dir: string, re: RegExp): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let names: string[];
    try {
      names = fs.readdirSync(d).sort();
    } catch {
      return;
    }
    for (const n of names) {
      const p = path.join(d, n);
      if (fs.statSync(p).isDirectory()) walk(p);
      else if (re.test(n)) out.push(p);
    }
  };
  walk(path.join(ROOT, dir));
  return out;
}

/** Small snapshot fixtures (the large hostile ones are refused from their first bytes anyway), a version 2 file with every kind of group, and version 3 files (one chunk frame, and five). */
function snapshotSeeds(): Buffer[] {
  const seeds: Buffer[] = [...files('fixtures/snapshots', /\.snap$/), ...files('fixtures/healthy/snap', /\.snap$/), ...files('fixtures/hostile', /\.snap$/)]
    .map((f) => fs.readFileSync(f))
    .filter((b) => b.length < 64 * 1024);
  seeds.push(v2Seed(), ...framesSeeds());
  return seeds;
}

/**
 * A small version 2 snapshot holding every group form (src/storage/chunk-v2.ts): shuffled integer
 * keys (deltas) with integer values (varints), template keys (`user:<n>`, paths), hex keys, plain
 * keys, and mixed values.
 */
function v2Seed(): Buffer {
  const kv: Array<[Json, Json]> = [];
  for (let i = 0; i < 40; i++) {
    const n = (i * 37) % 41;
    kv.push([n * 1000 - 7, i % 5]);
    kv.push([`user:${n}`, i % 3 === 0 ? { id: n, name: 'ab', tags: [1, 'x'] } : `v${i}`]);
    kv.push([`/org/${i % 4}/repo/${n}/f-${i}.json`, [i, null, true]]);
    kv.push([(0x9e3779b9 * (i + 1)).toString(16).slice(-8).padStart(8, '0') + 'beef', i * 1e9]);
  }
  kv.push(['user:007', 1], [null, 2], [[1, 'a'], { b: [] }], [1.5, 'half'], [2 ** 53 - 1, -(2 ** 52)]);
  return encodeSnapshot({ index: 9, term: 2, config: ['n1', 'n2'] }, { kv, sessions: { forwards: [] } }, { createdAt: 1, nodeId: 'n1', formatVersion: 2 });
}


/** The snapshot file as it is: preamble, header, checksums, payload; read whole, and (format 3) by FramedSnapshot, every chunk on its own. */
const snapshotFile: Target = {
  name: 'snapshot-file',
  seeds: snapshotSeeds,
  make: (seed, rng) => {
    let b = mutate(seed, rng);
    if (rng.int(3) === 0) b = mutate(b, rng);
    // Half the time with its checksums made right again, so that the checks behind them are reached.
    return rng.int(2) === 0 ? resealSnapshot(b) : b;
  },
  run: (input) => {
    const whole = storageOutcome(() => {
      decodeSnapshotHeader(input, 'fuzz.snap');
      decodeSnapshot(input, 'fuzz.snap');
    });
    storageOutcome(() => {
      const f = FramedSnapshot.fromBytes(input, 'fuzz.snap');
      if (f !== null) for (let j = f.chunks.length - 1; j >= 0; j--) f.chunk(j);
    });
    return whole;
  },
};

/**
 * The raw payload (the CBOR sequence) of a version 1 or 2 file, mutated, compressed again and
 * sealed with correct checksums: reaches the decoder. (A version 3 payload sealed as one frame has
 * no frame table: snapshot-frames mutates those.)
 */
const snapshotPayload: Target = {
  name: 'snapshot-payload',
  seeds: () =>
    snapshotSeeds().flatMap((b) => {
      try {
        const h = decodeSnapshotHeader(b);
        if (h.rawSize > 1 << 20 || h.formatVersion > 2) return [];
        const version = Buffer.alloc(2);
        version.writeUInt16BE(h.formatVersion, 0);
        return [Buffer.concat([u32(h.keyCount), version, zstdDecompressExact(b.subarray(h.payloadOffset), h.rawSize)])];
      } catch {
        return [];
      }
    }),
  make: (seed, rng) => {
    // seed = keyCount (4 bytes) + format version (2 bytes) + raw payload; keep the count most of the
    // time, else an extreme; keep the version but now and then (version 2 items in a version 1 file).
    const count = rng.int(4) === 0 ? rng.pick(EXTREMES32) : seed.readUInt32BE(0);
    const version = rng.int(16) === 0 ? 3 - seed.readUInt16BE(4) : seed.readUInt16BE(4);
    const body = seed.subarray(6);
    const structural = rng.int(3) === 0 ? mutateItems(body, rng) : null;
    const raw = structural ?? mutate(body, rng);
    const { payload, rawSize } = zstdFrame(raw);
    const declared = rng.int(8) === 0 ? rng.pick([0, rawSize - 1, rawSize + 1, 2 ** 31, 2 ** 40]) : rawSize;
    return snapshotFromPayload(payload, rawSize, { keyCount: count, rawSize: Math.max(0, declared), formatVersion: version });
  },
  run: (input) =>
    storageOutcome(() => {
      const { content } = decodeSnapshot(input, 'fuzz.snap');
      // What the node does with a decoded state (load it, sessions included), and what hash does.
      const store = KvStore.fromEntries(content.kv, content.sessions);
      if (store.size > content.kv.length) throw new Error('the store holds more keys than the snapshot');
      const hasher = new StateHasher();
      for (const [k, v] of content.kv) hasher.add(k, v);
      hasher.digest();
      sessionsHash(content.sessions ?? null);
      JSON.stringify(content.kv);
    }),
};


function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

/** WAL segments: mutated as they are, or mutated and re-sealed (record and commit checksums correct again). */
const walSegment: Target = {
  name: 'wal-segment',
  seeds: () => [...files('fixtures/healthy/wal', /\.wal$/), ...files('fixtures/torn-tail/wal', /\.wal$/), ...files('fixtures/hostile', /\.wal$/)].map((f) => fs.readFileSync(f)),
  make: (seed, rng) => {
    const b = mutate(seed, rng);
    return rng.int(2) === 0 ? resealWal(b) : b;
  },
  run: (input) =>
    storageOutcome(() => {
      const scan = scanSegmentBytes(input, 'fuzz.wal');
      for (const r of scan.records) if (r.record.type === 'entry') JSON.stringify(r.record.entry.data);
    }),
};

/** meta.json, through DataDir.open over an in-memory file system. */
const metaJson: Target = {
  name: 'meta-json',
  seeds: () => files('fixtures', /^meta\.json$/).slice(0, 4).map((f) => fs.readFileSync(f)),
  make: (seed, rng) => {
    if (rng.int(2) === 0) {
      const j = mutateJson(seed.toString('utf8'), rng);
      if (j !== null) return Buffer.from(j, 'utf8');
    }
    return mutate(seed, rng);
  },
  run: (input) => {
    const mfs = new MemFs();
    mfs.mkdir('/d/snap', { recursive: true });
    mfs.mkdir('/d/wal', { recursive: true });
    const fd = mfs.open('/d/meta.json', 'w');
    mfs.write(fd, input, 0, input.length);
    mfs.close(fd);
    return storageOutcome(() => void DataDir.open('/d', { fs: mfs }));
  },
};

const env = (body: Record<string, unknown>, dest = 'n1'): string => JSON.stringify({ src: 'c1', dest, body });

/** The bad-value lines of the wire tests (test/node/wire.test.ts, wire-flood.test.ts), smaller where they are huge, and good lines. */
export function serveSeeds(): string[] {
  return [
    '{"src":"c1","dest":"n1","body":{"type":"read"',
    '\u0000\u0001\u0002\u00ff\ufffd',
    '[1,2,3]',
    '42',
    JSON.stringify({ dest: 'n1', body: { type: 'read', msg_id: 1, key: 1 } }),
    JSON.stringify({ src: 'c1', dest: 'n1' }),
    env({ msg_id: 2 }),
    env({ type: 'read', msg_id: 'x', key: 1 }),
    env({ type: 'frobnicate', msg_id: 3 }),
    env({ type: 'write', msg_id: 4, key: 1 }),
    env({ type: 'cas', msg_id: 5, key: 1, to: 2 }),
    `{"src":"c1","dest":"n1","body":{"type":"write","msg_id":6,"key":"deep","value":${nest(2000)}}}`,
    `{"src":"c1","dest":"n1","body":{"type":"write","msg_id":7,"key":"k","value":${nest(MAX_VALUE_DEPTH)}}}`,
    `{"src":"c1","dest":"n1","body":{"type":"cas","msg_id":8,"key":"k","from":1,"to":${nest(MAX_VALUE_DEPTH + 1)}}}`,
    `{"src":"c1","dest":"n1","body":{"type":"get_state","msg_id":9,"x":${nest(MAX_MESSAGE_DEPTH - 2)}}}`,
    '{"src":"c1","dest":"n1","body":{"type":"write","msg_id":10,"key":"inf","value":1e400}}',
    '{"src":"c1","dest":"n1","body":{"type":"read","msg_id":11,"key":-1e400}}',
    '{"src":"c1","dest":"n1","body":{"type":"cas","msg_id":12,"key":"k","from":1,"to":[1,{"a":1e999}]}}',
    '{"src":"c1","dest":"n1","body":{"type":"seed_state","msg_id":13,"state":{"x":1e400},"commit_index":1,"term":1}}',
    `{"src":"c1","dest":"n1","body":{"type":"write","msg_id":14,"key":"k","value":"${'x'.repeat(MAX_VALUE_CHARS + 1)}"}}`,
    `{"src":"n2","dest":"n1","body":{"type":"raft_forward","msg_id":15,"request":{"op":"write","key":"k","value":${nest(MAX_VALUE_DEPTH + 1)}}}}`,
    env({ type: 'write', msg_id: 16, key: 'other', value: 1 }, 'n9'),
    env({ type: 'error', in_reply_to: 17, code: 13, text: 'x' }),
    env({ type: 'read_ok', in_reply_to: 18, msg_id: 18, value: 1 }),
    env({ type: 'init', msg_id: 19, node_id: 'n1', node_ids: ['n1', 'n2', 'n3'] }),
    env({ type: 'write', msg_id: 20, key: [1, { a: '1' }], value: { b: [null, true, 1.5] } }),
    env({ type: 'cas', msg_id: 21, key: 'k', from: 1, to: 2, create_if_not_exists: true }),
    env({ type: 'read', msg_id: 22, key: '__proto__' }),
  ];
}


/** A seed line with one value (at a random place in its body) replaced by a hostile one; null when the seed is not a JSON object. */
function mutateJson(text: string, rng: Rng): string | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (v === null || typeof v !== 'object') return null;
  const MARK = '"@@HOSTILE@@"';
  // A random place: the body itself, a field of it, or an element of a value inside it.
  const body = (v as Record<string, unknown>)['body'];
  const holder = body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : (v as Record<string, unknown>);
  const keys = Object.keys(holder);
  const field = rng.int(3) === 0 || keys.length === 0 ? rng.pick(['key', 'value', 'from', 'to', 'msg_id', 'type', 'state', 'request', 'node_ids', 'entries']) : rng.pick(keys);
  holder[field] = '@@HOSTILE@@';
  return JSON.stringify(v).replace(MARK, rng.pick(HOSTILE_JSON)());
}

/** serve's decoder: LineSplitter (in random pieces), parseLine, then the request validation. */
const serveLine: Target = {
  name: 'serve-line',
  seeds: () => serveSeeds().map((s) => Buffer.from(s, 'utf8')),
  make: (seed, rng) => {
    if (rng.int(2) === 0) {
      const j = mutateJson(seed.toString('utf8'), rng);
      if (j !== null) return Buffer.from(j, 'utf8');
    }
    const b = mutate(seed, rng);
    return rng.int(4) === 0 ? mutate(b, rng) : b;
  },
  run: (input) => {
    const text = input.toString('utf8');
    // The splitter gives the same lines whatever the pieces.
    const whole: string[] = [];
    new LineSplitter((l) => void whole.push(l)).push(text + '\n');
    const parts: string[] = [];
    const sp = new LineSplitter((l) => void parts.push(l));
    for (let i = 0; i < text.length; i += 7) sp.push(text.slice(i, i + 7));
    sp.end();
    if (whole.join('\n') !== parts.join('\n')) throw new Error('LineSplitter gives other lines when the input comes in pieces');
    let outcome: Outcome = 'refused';
    for (const line of whole) {
      const r = parseLine(line);
      if (!r.ok) continue;
      // What is accepted can be written back (the node writes it to its log and its peers).
      JSON.stringify(r.msg);
      if (valueProblem(r.msg, MAX_MESSAGE_DEPTH) !== null) throw new Error('parseLine accepted a message beyond the wire limits');
      const t = r.msg.body.type;
      if (t === 'read' || t === 'write' || t === 'cas') {
        if (clientValueProblem(r.msg.body as Record<string, unknown>) !== null) throw new Error('parseLine accepted a client value beyond the limits');
        try {
          clientCommand(r.msg.body as Body);
          outcome = 'ok';
        } catch (e) {
          if (!(e instanceof ProtocolError)) throw e;
        }
      } else outcome = 'ok';
    }
    return outcome;
  },
};

/** A data directory as an input: file name -> bytes, as JSON with base64 contents. */
type DirImage = Record<string, string>;

function dirImage(dir: string): DirImage {
  const out: DirImage = {};
  const base = path.join(ROOT, dir);
  const walk = (d: string) => {
    for (const n of fs.readdirSync(d).sort()) {
      const p = path.join(d, n);
      if (fs.statSync(p).isDirectory()) walk(p);
      else out[path.relative(base, p)] = fs.readFileSync(p).toString('base64');
    }
  };
  walk(base);
  return out;
}

/** Every name and its bytes under `dir` of a MemFs, as one string. */
function treeOf(mfs: MemFs, dir: string): string {
  const parts: string[] = [];
  const walk = (d: string) => {
    for (const n of mfs.readdir(d).sort()) {
      const p = `${d}/${n}`;
      if (mfs.stat(p).isDirectory()) {
        parts.push(`D ${p}`);
        walk(p);
      } else parts.push(`F ${p} ${mfs.readFile(p).toString('base64')}`);
    }
  };
  walk(dir);
  return parts.join('\n');
}

/**
 * Recovery of a whole data directory (over MemFs) with one of its files mutated (snapshots and
 * segments re-sealed half of the time): read-only recovery, then recovery with repair, then
 * read-only recovery again, which must succeed once repair has (repair leaves a directory that
 * recovers).
 */
const recovery: Target = {
  name: 'recovery',
  seeds: () => ['fixtures/healthy', 'fixtures/torn-tail', 'fixtures/broken-snapshot'].map((d) => Buffer.from(JSON.stringify(dirImage(d)))),
  make: (seed, rng) => {
    const img = JSON.parse(seed.toString('utf8')) as DirImage;
    const names = Object.keys(img).filter((n) => n !== 'LOCK');
    const n = rng.pick(names);
    let b: Buffer = mutate(Buffer.from(img[n]!, 'base64'), rng);
    if (rng.int(2) === 0) b = n.endsWith('.wal') ? resealWal(b) : n.endsWith('.snap') ? resealSnapshot(b) : b;
    img[n] = b.toString('base64');
    if (rng.int(8) === 0) delete img[rng.pick(names)];
    return Buffer.from(JSON.stringify(img));
  },
  run: (input) => {
    const img = JSON.parse(input.toString('utf8')) as DirImage;
    const mfs = new MemFs();
    mfs.mkdir('/d/snap', { recursive: true });
    mfs.mkdir('/d/wal', { recursive: true });
    for (const [name, b64] of Object.entries(img)) {
      const bytes = Buffer.from(b64, 'base64');
      const fd = mfs.open(`/d/${name}`, 'w');
      mfs.write(fd, bytes, 0, bytes.length);
      mfs.close(fd);
    }
    // Read-only first (it must change nothing), then with repair whatever the read-only one said.
    const before = treeOf(mfs, '/d');
    storageOutcome(() => void DataDir.open('/d', { fs: mfs }).recover({ repair: false }));
    if (treeOf(mfs, '/d') !== before) throw new Error('read-only recovery changed the directory');
    return storageOutcome(() => {
      const w = DataDir.open('/d', { fs: mfs, mode: 'write', fsync: false, pid: 4242, isPidAlive: () => false });
      try {
        w.recover({ repair: true, now: 0 });
      } finally {
        w.close();
      }
      try {
        DataDir.open('/d', { fs: mfs }).recover({ repair: false });
      } catch (e) {
        throw new Error(`recovery fails after a successful repair: ${(e as Error).message}`);
      }
    });
  },
};

export const TARGETS: readonly Target[] = [snapshotFile, snapshotPayload, snapshotFrames, walSegment, metaJson, serveLine, recovery];

// ------------------------------------------------------------------------------------------------
// Runner

export interface Crash {
  target: string;
  error: string;
  input: Buffer;
  /** Where it was saved, when `saveDir` was given. */
  file?: string;
}

export interface FuzzReport {
  seed: number;
  cases: Record<string, { runs: number; ok: number; refused: number; crashes: number; slowestMs: number }>;
  crashes: Crash[];
  ms: number;
}

export interface FuzzOptions {
  /** Cases per target. */
  runs: number;
  seed?: number;
  targets?: string[];
  /** A case slower than this is a crash (a hang). */
  slowMs?: number;
  /** Resident memory this many MB above the start (checked every 64 cases) stops a target as a crash. */
  maxGrowthMb?: number;
  /** Save crashing inputs here as `<target>-<sha1>.bin`. */
  saveDir?: string;
}

function describeError(e: unknown): string {
  if (e instanceof Error) return `${e.constructor.name}: ${e.message.slice(0, 300)}`;
  return String(e);
}

/** Run one input through a target: null when it ends properly, else what went wrong. */
export function runCase(t: Target, input: Buffer, slowMs = 5000): { outcome: Outcome | null; error: string | null; ms: number } {
  const t0 = performance.now();
  try {
    const outcome = t.run(input);
    const ms = performance.now() - t0;
    if (ms > slowMs) return { outcome, error: `took ${ms.toFixed(0)} ms (a hang)`, ms };
    return { outcome, error: null, ms };
  } catch (e) {
    return { outcome: null, error: describeError(e), ms: performance.now() - t0 };
  }
}

export function fuzz(opts: FuzzOptions): FuzzReport {
  const seed = opts.seed ?? 1;
  const rng = new Rng(seed);
  const t0 = Date.now();
  const report: FuzzReport = { seed, cases: {}, crashes: [], ms: 0 };
  // Resident memory, not only the heap: native memory (zstd contexts, buffers) counts too.
  const rss0 = process.memoryUsage().rss;
  for (const t of TARGETS) {
    if (opts.targets && !opts.targets.includes(t.name)) continue;
    const seeds = t.seeds();
    const c = { runs: 0, ok: 0, refused: 0, crashes: 0, slowestMs: 0 };
    report.cases[t.name] = c;
    if (seeds.length === 0) continue;
    for (let i = 0; i < opts.runs; i++) {
      const input = t.make(seeds[i % seeds.length]!, rng);
      const r = runCase(t, input, opts.slowMs);
      c.runs++;
      c.slowestMs = Math.max(c.slowestMs, r.ms);
      let error = r.error;
      if (error === null && opts.maxGrowthMb !== undefined && (i & 63) === 63) {
        const grown = (process.memoryUsage().rss - rss0) / (1 << 20);
        if (grown > opts.maxGrowthMb) {
          error = `the resident memory grew by ${grown.toFixed(0)} MB`;
          c.crashes++;
          report.crashes.push({ target: t.name, error, input });
          break; // growth is not this input's alone: stop this target
        }
      }
      if (error === null) {
        if (r.outcome === 'ok') c.ok++;
        else c.refused++;
        continue;
      }
      c.crashes++;
      const crash: Crash = { target: t.name, error, input };
      if (opts.saveDir) {
        fs.mkdirSync(opts.saveDir, { recursive: true });
        const name = `${t.name}-${crypto.createHash('sha1').update(input).digest('hex').slice(0, 12)}.bin`;
        crash.file = path.join(opts.saveDir, name);
        fs.writeFileSync(crash.file, input);
      }
      report.crashes.push(crash);
    }
  }
  report.ms = Date.now() - t0;
  return report;
}

/** The target a saved crash file is for (its name starts with the target's). */
export function targetOf(file: string): Target | undefined {
  const base = path.basename(file);
  return TARGETS.find((t) => base.startsWith(`${t.name}-`));
}
