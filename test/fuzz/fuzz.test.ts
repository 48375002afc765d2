// The mutation fuzzer (src/fuzz/fuzz.ts) over every decoder of untrusted input: snapshot files,
// the snapshot payload behind its checksums, WAL segments (re-sealed too), meta.json and serve's
// message decoder. Each input ends in a valid result or a clear error; anything else is a crash.
// A few thousand cases here; `npm run fuzz -- --runs N` runs more.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng, TARGETS, fuzz, mutate, runCase, type Target } from '../../src/fuzz/fuzz.js';
import { tmpDir } from '../storage/helpers.js';

const RUNS = 700;
/** Whole-directory recovery cases are dearer (three recoveries over MemFs each). */
const RUNS_OF: Record<string, number> = { recovery: 150 };

describe('fuzzing the decoders', () => {
  for (const t of TARGETS) {
    const runs = RUNS_OF[t.name] ?? RUNS;
    it(`${t.name}: ${runs} mutated inputs, no crash, no hang`, () => {
      expect(t.seeds().length, `${t.name} has seeds`).toBeGreaterThan(0);
      const r = fuzz({ runs, seed: 20261201, targets: [t.name], slowMs: 5000 });
      const c = r.cases[t.name]!;
      console.log(`${t.name}: ${c.runs} cases, ${c.ok} ok, ${c.refused} refused, ${c.crashes} crashes, slowest ${c.slowestMs.toFixed(1)} ms`);
      expect(r.crashes.map((x) => `${x.target}: ${x.error}`)).toEqual([]);
      expect(c.runs).toBe(runs);
      // The mutations reach past the first check: some inputs are refused, some still read.
      expect(c.refused).toBeGreaterThan(0);
      expect(c.ok).toBeGreaterThan(0);
      expect(c.ok + c.refused).toBe(runs);
    }, 60_000);
  }

  it('is deterministic for a seed', () => {
    const a = fuzz({ runs: 50, seed: 5, targets: ['snapshot-payload', 'serve-line'] });
    const b = fuzz({ runs: 50, seed: 5, targets: ['snapshot-payload', 'serve-line'] });
    const counts = (r: typeof a) => Object.fromEntries(Object.entries(r.cases).map(([k, v]) => [k, [v.ok, v.refused, v.crashes]]));
    expect(counts(a)).toEqual(counts(b));
  });

  it('the oracle: an exception that is not a StorageError or ProtocolError is a crash, and is saved', () => {
    const broken: Target = {
      name: 'broken',
      seeds: () => [Buffer.from('seed')],
      make: (s, rng) => mutate(s, rng),
      run: (input) => {
        if (input.length > 3) throw new TypeError('cannot read properties of undefined');
        return 'refused';
      },
    };
    const r = runCase(broken, Buffer.from('abcd'));
    expect(r.error).toBe('TypeError: cannot read properties of undefined');
    expect(runCase(broken, Buffer.from('ab')).error).toBeNull();
    // A StorageError of the decoders is a refusal; a RangeError from a too-deep decode would be a crash.
    const snap = TARGETS.find((t) => t.name === 'snapshot-file')!;
    expect(runCase(snap, Buffer.from('RAFTSNAP')).outcome).toBe('refused');
    const dir = tmpDir();
    const saved = fuzz({ runs: 3, seed: 1, targets: ['snapshot-file'], saveDir: dir });
    expect(saved.crashes).toEqual([]);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('mutations: bit flips, cuts, insertions, extreme lengths and deep nesting all occur', () => {
    const rng = new Rng(3);
    const seed = Buffer.from(Array.from({ length: 64 }, (_, i) => i));
    const lens = new Set<number>();
    for (let i = 0; i < 400; i++) lens.add(Math.sign(mutate(seed, rng).length - seed.length));
    expect([...lens].sort()).toEqual([-1, 0, 1]);
  });
});

describe('saved crashes (fixtures/fuzz/crashes/) stay fixed', () => {
  const dir = path.resolve(__dirname, '../../fixtures/fuzz/crashes');
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.bin')) : [];
  it(`${files.length} saved inputs end in a result or a clear error`, async () => {
    const { targetOf } = await import('../../src/fuzz/fuzz.js');
    for (const f of files) {
      const t = targetOf(f);
      expect(t, f).toBeDefined();
      expect(runCase(t!, fs.readFileSync(path.join(dir, f))).error, f).toBeNull();
    }
  });
});

describe('snapshot-frames (format 3)', () => {
  it('its seeds are version 3 files of one and of five chunk frames that every reader reads alike', async () => {
    const { framesSeeds, snapshotFrames } = await import('../../src/fuzz/frames.js');
    const { decodeSnapshotHeader } = await import('../../src/storage/index.js');
    const seeds = framesSeeds();
    expect(seeds.map((b) => decodeSnapshotHeader(b).frames?.chunks.length)).toEqual([1, 5]);
    for (const b of seeds) expect(runCase(snapshotFrames, b)).toMatchObject({ outcome: 'ok', error: null });
  });

  it('two zstd frames declared as one chunk frame: every reader refuses it (decodeSnapshot and FramedSnapshot read it, the file reader did not; the target found it with the fix undone)', async () => {
    const { framesSeeds, snapshotFrames } = await import('../../src/fuzz/frames.js');
    const { decodeSnapshotHeader } = await import('../../src/storage/index.js');
    const { snapshotFromPayload } = await import('../../src/fuzz/seal.js');
    const seed = framesSeeds()[1]!;
    const h = decodeSnapshotHeader(seed);
    const f = h.frames!;
    const [a, b, ...rest] = f.chunks;
    const entry = (c: typeof a) => [c!.size, c!.rawSize, c!.pairs, c!.firstShard, c!.lastShard];
    const joined = [a!.size + b!.size, a!.rawSize + b!.rawSize, a!.pairs + b!.pairs, Math.min(a!.firstShard, b!.firstShard), Math.max(a!.lastShard, b!.lastShard)];
    const bytes = snapshotFromPayload(seed.subarray(h.payloadOffset), h.rawSize, {
      formatVersion: 3,
      keyCount: h.keyCount,
      index: h.index,
      term: h.term,
      extra: { stateFrame: [f.state.size, f.state.rawSize], chunkFrames: [joined, ...rest.map(entry)], endFrame: [f.end.size, f.end.rawSize] },
    });
    expect(runCase(snapshotFrames, bytes)).toMatchObject({ outcome: 'refused', error: null });
  });
});

describe('found by the fuzzer', () => {
  it('a codec name holding a newline makes a one-line error (the name is quoted as JSON); so does a meta.json version', async () => {
    const { snapshotFromItems } = await import('../../src/fuzz/seal.js');
    const { decodeSnapshot, DataDir, MemFs, StorageError } = await import('../../src/storage/index.js');
    const bad = snapshotFromItems([['raftsnap-state', 1], { keyCount: 0 }], { codec: 'z\ntd+cbor-seq\u001b[31m' });
    let msg = '';
    try {
      decodeSnapshot(bad, 'x.snap');
    } catch (e) {
      if (!(e instanceof StorageError)) throw e;
      msg = e.message;
    }
    expect(msg).toBe('x.snap: unsupported snapshot codec "z\\ntd+cbor-seq\\u001b[31m" (this build reads "zstd+cbor-seq")');
    const mfs = new MemFs();
    mfs.mkdir('/d', { recursive: true });
    const text = Buffer.from(JSON.stringify({ format: 'raftsnap-data', version: '1\n2', nodeId: null, created: 0 }));
    const fd = mfs.open('/d/meta.json', 'w');
    mfs.write(fd, text, 0, text.length);
    mfs.close(fd);
    let m2 = '';
    try {
      DataDir.open('/d', { fs: mfs });
    } catch (e) {
      if (!(e instanceof StorageError)) throw e;
      m2 = e.message;
    }
    expect(m2).toBe('/d/meta.json: unsupported data directory version "1\\n2" (this build reads version 1)');
  });

  it('a meta.json whose version is an array nested 5,000 deep is a one-line error, not a stack overflow (String() of it overflowed)', async () => {
    const { DataDir, MemFs, StorageError } = await import('../../src/storage/index.js');
    const mfs = new MemFs();
    mfs.mkdir('/d', { recursive: true });
    const text = Buffer.from(`{"format":"raftsnap-data","version":${'['.repeat(5000)}${']'.repeat(5000)}}`);
    const fd = mfs.open('/d/meta.json', 'w');
    mfs.write(fd, text, 0, text.length);
    mfs.close(fd);
    let err: unknown = null;
    try {
      DataDir.open('/d', { fs: mfs });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StorageError);
    expect((err as Error).message).toBe('/d/meta.json: unsupported data directory version (an array) (this build reads version 1)');
  });
});
