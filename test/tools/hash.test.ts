// `raftsnap hash`: a state hash that does not depend on the order of the pairs, their chunking or
// the file they are in, with one row per state and a verdict per index.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Json } from '../../src/raft/types.js';
import { snapshotFromItems, stateItems } from '../../src/fuzz/seal.js';
import { encodeSnapshot } from '../../src/storage/index.js';
import { exportSnapshot } from '../../src/tools/export.js';
import { StateHasher, expandPaths, hashPaths, hashState, murmur3x86_128 } from '../../src/tools/hash.js';
import { ROOT, golden, inproc, proc, tmpDir, treeHash } from '../commands/helpers.js';
import dumpSpec from '../../src/cli/commands/dump.js';
import hashSpec from '../../src/cli/commands/hash.js';
import { runSpec } from '../../src/cli/run.js';

const hashOf = (pairs: Array<[Json, Json]>): string => {
  const h = new StateHasher();
  for (const [k, v] of pairs) h.add(k, v);
  return h.digest();
};

describe('the state hash', () => {
  const pairs: Array<[Json, Json]> = [
    [1, 'one'],
    ['1', 'string one'],
    [[1, 2], { b: 1, a: [true, null] }],
    [{ z: 1, a: 2 }, 'é中'],
    [null, 1.5],
  ];

  it('does not depend on the order of the pairs or on the order of object keys; 1 and "1" are different keys', () => {
    const h = hashOf(pairs);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(hashOf([...pairs].reverse())).toBe(h);
    expect(hashOf(pairs.map(([k, v]) => [k, v && typeof v === 'object' && !Array.isArray(v) ? { a: (v as Record<string, Json>)['a']!, b: (v as Record<string, Json>)['b']! } : v]))).toBe(h);
    expect(hashOf([[1, 'x']])).not.toBe(hashOf([['1', 'x']]));
    expect(hashOf([[1, 'x']])).not.toBe(hashOf([[1, 'y']]));
    expect(hashOf([])).not.toBe(hashOf([[0, 0]]));
    // Two pairs swapping their values is a different state.
    expect(hashOf([[1, 'a'], [2, 'b']])).not.toBe(hashOf([[1, 'b'], [2, 'a']]));
  });

  it('MurmurHash3_x86_128 with seed 0: the empty input is 0 and the tail lengths 1..15 all mix', () => {
    const out = new Uint32Array(4);
    murmur3x86_128(new Uint8Array(0), 0, out);
    expect([...out]).toEqual([0, 0, 0, 0]);
    const seen = new Set<string>();
    const b = Buffer.from('abcdefghijklmnopqrstuvwxyz0123456789');
    for (let n = 1; n <= 36; n++) {
      murmur3x86_128(b, n, out);
      seen.add([...out].join(','));
    }
    expect(seen.size).toBe(36);
  });

  it('is the same for a snapshot written in other chunks, and for a directory and the snapshot made from it', () => {
    const d = tmpDir();
    const kv: Array<[Json, Json]> = Array.from({ length: 20_000 }, (_, i) => [i % 3 === 0 ? `k${i}` : i, { v: i }]);
    const a = path.join(d, 'a.snap');
    const b = path.join(d, 'b.snap');
    fs.writeFileSync(a, encodeSnapshot({ index: 9, term: 2, config: ['n1'] }, { kv }));
    fs.writeFileSync(b, snapshotFromItems(stateItems([...kv].reverse(), 777), { index: 9, term: 2, keyCount: kv.length }));
    expect(hashState(a).hash).toBe(hashState(b).hash);
    expect(hashState(a).hash).toBe(hashOf(kv));
    const out = path.join(d, 'healthy.snap');
    exportSnapshot(path.join(ROOT, 'fixtures/healthy'), { out });
    const fromDir = hashState(path.join(ROOT, 'fixtures/healthy'));
    const fromFile = hashState(out);
    expect(fromFile).toMatchObject({ index: fromDir.index, term: fromDir.term, keys: fromDir.keys, hash: fromDir.hash, sessions: fromDir.sessions });
  });

  it('a data root stands for its data directories, in natural order (n2 before n10)', () => {
    const root = tmpDir();
    for (const n of ['n1', 'n2', 'n10']) fs.cpSync(path.join(ROOT, 'fixtures/healthy'), path.join(root, n), { recursive: true });
    fs.writeFileSync(path.join(root, 'notes.txt'), 'not a data directory');
    expect(expandPaths([root]).map((p) => path.basename(p))).toEqual(['n1', 'n2', 'n10']);
    const r = hashPaths([root]);
    expect(r.rows).toHaveLength(3);
    expect(r.groups).toEqual([{ index: 290, sources: r.rows.map((x) => x.source), distinct: 1, agree: true }]);
    expect(r.agree).toBe(true);
  });

  it('states at the same index that differ: the verdict says so and the exit is 1', async () => {
    const d = tmpDir();
    fs.writeFileSync(path.join(d, 'x.snap'), encodeSnapshot({ index: 500, term: 4, config: ['n1'] }, { kv: [[1, 1]] }));
    const rel = path.relative(ROOT, path.join(d, 'x.snap'));
    const r = await inproc(['hash', 'fixtures/snapshots/diff-a.snap', rel, 'fixtures/snapshots/diff-b.snap']);
    expect(r.exit).toBe(1);
    expect(r.stdout).toContain('Index 500: 2 states DISAGREE (2 different hashes).');
    expect(r.stdout).toContain('Index 530: fixtures/snapshots/diff-b.snap alone (nothing to compare it with).');
    expect(r.stdout).toContain('Verdict: the states DISAGREE.');
    const j = await inproc(['hash', 'fixtures/snapshots/diff-a.snap', rel, '--json']);
    expect(j.exit).toBe(1);
    expect((JSON.parse(j.stdout) as { agree: boolean }).agree).toBe(false);
  });
});

describe('raftsnap hash', () => {
  const cases = [
    { name: 'hash-dirs.txt', args: ['hash', 'fixtures/healthy', 'fixtures/leftovers', 'fixtures/torn-tail', 'fixtures/broken-snapshot'], exit: 0 },
    { name: 'hash-files.json', args: ['hash', 'fixtures/snapshots/good.snap', 'fixtures/snapshots/diff-a.snap', '--json'], exit: 0 },
  ];
  for (const c of cases) {
    it(`${c.args.join(' ')}: golden output`, async () => {
      const r = await inproc(c.args);
      expect(r.exit, r.stderr).toBe(c.exit);
      golden(c.name, r.stdout);
    });
  }

  it('a real process gives the same output; fixtures unchanged', () => {
    const before = treeHash('fixtures');
    const r = proc(cases[0]!.args);
    expect(r.exit).toBe(0);
    golden(cases[0]!.name, r.stdout);
    expect(treeHash('fixtures')).toBe(before);
  });

  it('bad input: one clear line, exit 2, nothing changed', async () => {
    const before = treeHash('fixtures');
    const bad: Array<[string[], RegExp]> = [
      [['hash', 'fixtures/no-such'], /^raftsnap hash: fixtures\/no-such: no such file or directory/],
      [['hash', 'fixtures/healthy', 'fixtures/snapshots/bitflip-payload.snap'], /^raftsnap hash: fixtures\/snapshots\/bitflip-payload\.snap: snapshot payload checksum mismatch/],
      [['hash', 'fixtures/corrupt-mid-wal'], /^raftsnap hash: fixtures\/corrupt-mid-wal\/wal\/.*WAL corrupt/],
      [['hash', 'fixtures/snapshots'], /^raftsnap hash: fixtures\/snapshots: not a raftsnap data directory \(no meta\.json\), nor a data root/],
      [['hash', 'fixtures/hostile/value-400mb.snap'], /^raftsnap hash: fixtures\/hostile\/value-400mb\.snap: snapshot payload holds a string of 419430400 bytes/],
      [['hash'], /^raftsnap hash: missing argument <paths>/],
    ];
    for (const [args, re] of bad) {
      const r = await inproc(args);
      expect(r.exit, args.join(' ')).toBe(2);
      expect(r.stdout, args.join(' ')).toBe('');
      const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('warning:'));
      expect(lines, args.join(' ')).toHaveLength(1);
      expect(lines[0], args.join(' ')).toMatch(re);
    }
    expect(treeHash('fixtures')).toBe(before);
  });

  it('a live directory is hashed anyway, with a warning', async () => {
    const r = await inproc(['hash', 'fixtures/locked', 'fixtures/healthy']);
    expect(r.exit).toBe(0);
    expect(r.stderr).toContain('warning: fixtures/locked: directory is in use by pid 1; reading anyway');
  });
});

describe('--help examples of dump and hash run as printed', () => {
  it('in a directory holding ./raftsnap-data/n1 and n2 and a backup.snap', async () => {
    const cwd = tmpDir();
    for (const n of ['n1', 'n2']) fs.cpSync(path.join(ROOT, 'fixtures', 'healthy'), path.join(cwd, 'raftsnap-data', n), { recursive: true });
    exportSnapshot(path.join(cwd, 'raftsnap-data', 'n1'), { out: path.join(cwd, 'backup.snap') });
    let count = 0;
    for (const spec of [dumpSpec, hashSpec]) {
      expect(spec.examples.length).toBeGreaterThanOrEqual(3);
      for (const ex of spec.examples) {
        const args = ex.split(' | ')[0]!.trim().split(/\s+/);
        const prev = process.cwd();
        const out: string[] = [];
        const err: string[] = [];
        process.chdir(cwd);
        let code: number;
        try {
          code = await runSpec(spec, args.slice(1), { stdout: (s) => void out.push(s), stderr: (s) => void err.push(s) });
        } finally {
          process.chdir(prev);
        }
        expect(code, `raftsnap ${ex}: ${err.join('')}`).toBe(0);
        expect(out.join('').length, ex).toBeGreaterThan(0);
        count++;
      }
    }
    expect(count).toBe(7);
  });
});

describe('canonical JSON (the text every pair hash is of)', () => {
  it('is what sorting the keys and joining gives, for any JSON value', async () => {
    const fc = (await import('fast-check')).default;
    const { canonicalJson } = await import('../../src/kv/keys.js');
    const reference = (v: Json): string => {
      if (v === null || typeof v !== 'object') return JSON.stringify(v);
      if (Array.isArray(v)) return '[' + v.map(reference).join(',') + ']';
      const keys = Object.keys(v).sort();
      return '{' + keys.map((k) => JSON.stringify(k) + ':' + reference(v[k] as Json)).join(',') + '}';
    };
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => {
        expect(canonicalJson(v as Json)).toBe(reference(v as Json));
      }),
      { numRuns: 2000 },
    );
    expect(canonicalJson({ b: 1, a: [{ d: 1, c: 2 }], __proto__x: null } as Json)).toBe('{"__proto__x":null,"a":[{"c":2,"d":1}],"b":1}');
  });
});
