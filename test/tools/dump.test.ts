// `raftsnap dump` and the state stream under it: the pairs of a snapshot file, or of the state a
// data directory recovers (snapshot + committed log, read-only), streamed with a key filter.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/kv/keys.js';
import type { Json } from '../../src/raft/types.js';
import { DiskStorage, encodeSnapshot } from '../../src/storage/index.js';
import { dumpState, keyPredicate } from '../../src/tools/dump.js';
import { loadDirState } from '../../src/tools/load.js';
import { openStateStream, type StreamOrder } from '../../src/tools/state-stream.js';
import { loadDirHeld } from '../../src/tools/held-state.js';
import { ROOT, golden, inproc, proc, tmpDir, treeHash } from '../commands/helpers.js';
import { measure } from '../storage/limits-measure.js';

const DIRS = ['healthy', 'leftovers', 'torn-tail', 'broken-snapshot', 'locked'];

/** The three readers of a directory's state without the node's full replay: each must give what loadDirState gives. */
const READERS: Record<string, (p: string) => { pairs: Array<[Json, Json]>; sessions: Json | null }> = {
  "the stream in the snapshot's order (dump)": (p) => streamed(p, 'snapshot'),
  'the stream in one pass (hash, diff)': (p) => streamed(p, 'any'),
  'the held state (snapshot, compact)': (p) => {
    const d = loadDirHeld(p);
    const pairs: Array<[Json, Json]> = [];
    for (const c of d.state.columns()) for (let i = 0; i < c.keys.length; i++) pairs.push([c.keys[i]!, c.values[i]!]);
    return { pairs, sessions: d.dedup };
  },
};

function streamed(p: string, order: StreamOrder): { pairs: Array<[Json, Json]>; sessions: Json | null } {
  const st = openStateStream(p, { order });
  const pairs: Array<[Json, Json]> = [];
  for (const b of st.batches()) for (const x of b) pairs.push([x[0], x[1]]);
  return { pairs, sessions: st.sessions() };
}

const asSet = (pairs: Array<[Json, Json]>) => pairs.map(([k, v]) => `${canonicalJson(k)}=${canonicalJson(v)}`).sort();

/** A directory whose log writes, cas-es and creates keys after its snapshot, and leaves one write uncommitted. */
function loggedDir(): string {
  const dir = tmpDir();
  const s = DiskStorage.open(dir, { fsync: false, nodeId: 'n1' });
  const base: Array<[Json, Json]> = Array.from({ length: 20_000 }, (_, i) => [i, i * 2]);
  base.push(['s', 'x'], [[1, 2], { a: 1 }]);
  const snap = encodeSnapshot({ index: 10, term: 1, config: ['n1'] }, { kv: base });
  const entries = [];
  for (let i = 1; i <= 10; i++) entries.push({ index: i, term: 1, data: null });
  s.append(entries);
  s.setHardState({ term: 1, votedFor: 'n1', commit: 10 });
  s.sync();
  s.saveSnapshot({ index: 10, term: 1, config: ['n1'] }, snap);
  s.append([
    { index: 11, term: 1, data: { op: 'write', key: 5, value: 'five' } },
    { index: 12, term: 1, data: { op: 'cas', key: 's', from: 'x', to: 'y' } },
    { index: 13, term: 1, data: { op: 'cas', key: 6, from: 0, to: 'no' } },
    { index: 14, term: 1, data: { op: 'write', key: 'new', value: [1] } },
    { index: 15, term: 1, data: { op: 'write', key: [1, 2], value: { a: 2 } } },
    { index: 16, term: 1, data: { op: 'write', key: 'uncommitted', value: 1 } },
  ]);
  s.setHardState({ term: 1, votedFor: 'n1', commit: 15 });
  s.sync();
  s.close();
  return dir;
}

for (const [reader, read] of Object.entries(READERS)) {
  describe(`a directory's state: ${reader}`, () => {
    for (const d of DIRS) {
      it(`${d}: the same pairs and session table as the state recovery builds (loadDirState)`, () => {
        const dir = path.join(ROOT, 'fixtures', d);
        const want = loadDirState(dir);
        const got = read(dir);
        expect(asSet(got.pairs)).toEqual(asSet(want.state.pairs));
        expect(got.pairs.length).toBe(want.state.pairs.length);
        expect(got.sessions).toEqual(want.state.dedup);
      });
    }

    it('a directory whose log writes, cas-es and creates keys after its snapshot', () => {
      const dir = loggedDir();
      const got = read(dir);
      const want = loadDirState(dir);
      expect(asSet(got.pairs)).toEqual(asSet(want.state.pairs));
      const m = new Map(got.pairs.map(([k, v]) => [canonicalJson(k), v]));
      expect(m.get('5')).toBe('five');
      expect(m.get('"s"')).toBe('y');
      expect(m.get('6')).toBe(12);
      expect(m.get('"new"')).toEqual([1]);
      expect(m.get('[1,2]')).toEqual({ a: 2 });
      expect(m.has('"uncommitted"')).toBe(false);
      if (reader.includes('one pass')) {
        // Every key the log touched or created comes at the end.
        expect(got.pairs.slice(-5).map((p) => canonicalJson(p[0])).sort()).toEqual(['"new"', '"s"', '5', '6', '[1,2]'].sort());
      } else {
        // The snapshot's order, each touched key at its place, then what the log created.
        expect(got.pairs[got.pairs.length - 1]![0]).toBe('new');
        expect(got.pairs[0]![0]).toBe(0);
        expect(got.pairs[5]).toEqual([5, 'five']);
      }
    });
  });
}

describe('key filters', () => {
  it('--key is JSON text (7 the integer, "7" the string), --prefix string keys, --range integer keys', () => {
    const k7 = keyPredicate({ key: '7' })!;
    expect([k7(7), k7('7')]).toEqual([true, false]);
    const s7 = keyPredicate({ key: '"7"' })!;
    expect([s7(7), s7('7')]).toEqual([false, true]);
    expect(keyPredicate({ key: 'user:1' })!('user:1')).toBe(true);
    expect(keyPredicate({ key: '[1, 2]' })!([1, 2])).toBe(true);
    expect(keyPredicate({ key: '{"b":1,"a":2}' })!({ a: 2, b: 1 })).toBe(true);
    const p = keyPredicate({ prefix: 'us' })!;
    expect([p('user'), p('u'), p(5)]).toEqual([true, false, false]);
    const r = keyPredicate({ range: '-2..3' })!;
    expect([r(-2), r(3), r(4), r('1'), r(1.5)]).toEqual([true, true, false, false, false]);
    expect(keyPredicate({ range: '10..' })!(1e9)).toBe(true);
    expect(keyPredicate({ range: '..0' })!(-1e9)).toBe(true);
    expect(() => keyPredicate({ range: 'a..b' })).toThrow(/--range: expected a\.\.b with integers/);
    expect(() => keyPredicate({ range: '5..1' })).toThrow(/--range: 5 is after 1/);
    expect(() => keyPredicate({ key: '1', prefix: 'a' })).toThrow(/cannot be combined/);
  });
});

describe('raftsnap dump', () => {
  const S = 'fixtures/snapshots';
  const cases: Array<{ name: string; args: string[] }> = [
    { name: 'dump-snapshot.ndjson', args: ['dump', `${S}/diff-a.snap`] },
    { name: 'dump-dir-range.ndjson', args: ['dump', 'fixtures/healthy', '--range', '0..9'] },
    { name: 'dump-dir-key.json', args: ['dump', 'fixtures/healthy', '--key', '7', '--json'] },
    { name: 'dump-snapshot-table.txt', args: ['dump', `${S}/good.snap`, '--format', 'table', '--prefix', 'u'] },
  ];
  for (const c of cases) {
    it(`${c.args.join(' ')}: golden output`, async () => {
      const r = await inproc(c.args);
      expect(r.exit, r.stderr).toBe(0);
      golden(c.name, r.stdout);
      if (c.name.endsWith('.json')) expect(() => JSON.parse(r.stdout)).not.toThrow();
      if (c.name.endsWith('.ndjson')) for (const l of r.stdout.trim().split('\n')) expect(Object.keys(JSON.parse(l) as object)).toEqual(['key', 'value']);
    });
  }

  it('a real process gives the same output; fixtures unchanged', () => {
    const before = treeHash('fixtures');
    const r = proc(cases[1]!.args);
    expect(r.exit).toBe(0);
    golden(cases[1]!.name, r.stdout);
    expect(treeHash('fixtures')).toBe(before);
  });

  it('bad input: one clear line, exit 2, nothing changed (missing path, damaged file, not a data directory, a file as a directory, bad flags)', async () => {
    const before = treeHash('fixtures');
    const bad: Array<[string[], RegExp]> = [
      [['dump', 'fixtures/no-such.snap'], /^raftsnap dump: fixtures\/no-such\.snap: no such file or directory/],
      [['dump', `${S}/bitflip-payload.snap`], /^raftsnap dump: fixtures\/snapshots\/bitflip-payload\.snap: snapshot payload checksum mismatch/],
      [['dump', `${S}/truncated.snap`], /^raftsnap dump: fixtures\/snapshots\/truncated\.snap: truncated snapshot/],
      [['dump', 'fixtures/corrupt-mid-wal'], /^raftsnap dump: fixtures\/corrupt-mid-wal\/wal\/.*WAL corrupt/],
      [['dump', 'fixtures/snapshots'], /^raftsnap dump: fixtures\/snapshots: not a raftsnap data directory/],
      [['dump', `${S}/good.snap/inner`], /^raftsnap dump: fixtures\/snapshots\/good\.snap\/inner: not a directory/],
      [['dump', `${S}/good.snap`, '--range', 'x'], /^raftsnap dump: --range: expected a\.\.b/],
      [['dump', `${S}/good.snap`, '--key', '1', '--prefix', 'a'], /^raftsnap dump: --key and --prefix cannot be given together/],
      [['dump', `${S}/good.snap`, '--format', 'xml'], /^raftsnap dump: --format: expected one of ndjson, json, table/],
    ];
    for (const [args, re] of bad) {
      const r = await inproc(args);
      expect(r.exit, args.join(' ')).toBe(2);
      expect(r.stdout, args.join(' ')).toBe('');
      const lines = r.stderr.trim().split('\n');
      expect(lines, args.join(' ')).toHaveLength(1);
      expect(lines[0], args.join(' ')).toMatch(re);
      const j = await inproc([...args, '--json']);
      expect(j.exit).toBe(2);
      expect((JSON.parse(j.stdout) as { error: { message: string } }).error.message).toBeTruthy();
    }
    expect(treeHash('fixtures')).toBe(before);
  });

  it('a live directory is read anyway, with one warning line; nothing changes', async () => {
    const before = treeHash('fixtures/locked');
    const r = await inproc(['dump', 'fixtures/locked', '--range', '0..1']);
    expect(r.exit).toBe(0);
    expect(r.stderr.trim()).toBe('warning: fixtures/locked: directory is in use by pid 1; reading anyway');
    expect(r.stdout.trim().split('\n')).toHaveLength(2);
    expect(treeHash('fixtures/locked')).toBe(before);
  });

  it('no permission to read: one line, exit 2 (as a user other than root)', async () => {
    if (process.getuid?.() === 0) return; // root reads everything
    const d = tmpDir();
    const f = path.join(d, 'x.snap');
    fs.copyFileSync(path.join(ROOT, 'fixtures/snapshots/good.snap'), f);
    fs.chmodSync(f, 0o000);
    const r = await inproc(['dump', path.relative(ROOT, f)]);
    expect(r.exit).toBe(2);
    expect(r.stderr).toMatch(/permission denied/);
  });

  it('1,000,000 keys: streamed as a real process in bounded memory', () => {
    const d = tmpDir();
    const f = path.join(d, 'million.snap');
    const kv: Array<[Json, Json]> = new Array(1_000_000);
    for (let i = 0; i < kv.length; i++) kv[i] = [i, i % 1000];
    fs.writeFileSync(f, encodeSnapshot({ index: 5, term: 1, config: ['n1'] }, { kv }));
    const out = path.join(d, 'out.ndjson');
    const r = measure(['dump', f], { stdoutFile: out });
    expect(r.exit, r.stderr).toBe(0);
    const text = fs.readFileSync(out, 'utf8');
    const lines = text.split('\n');
    expect(lines.length - 1).toBe(1_000_000);
    expect(lines[999_999]).toBe('{"key":999999,"value":999}');
    // One chunk of 8,192 pairs at a time: well below what the decoded state alone would take.
    expect(r.rssMb).toBeLessThan(150);
    const h = measure(['hash', f, '--json']);
    expect(h.exit, h.stderr).toBe(0);
    expect(h.rssMb).toBeLessThan(150);
    console.log(`1,000,000 keys: dump ${r.ms} ms, ${r.rssMb.toFixed(0)} MB peak, ${(text.length / 1e6).toFixed(1)} MB of NDJSON; hash ${h.ms} ms, ${h.rssMb.toFixed(0)} MB peak`);
  }, 60_000);

  it('dumpState writes batches as it reads them (no whole-state string)', () => {
    const writes: number[] = [];
    const s = dumpState(path.join(ROOT, 'fixtures/snapshots/good.snap'), { format: 'ndjson', write: (t) => writes.push(t.length) });
    expect(s.read).toBe(207);
    expect(writes.length).toBeGreaterThanOrEqual(1);
  });
});
