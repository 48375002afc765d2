// The log views of `inspect` (issue 10): `--log` with entry types and filters, `--records` (the raw
// WAL), `inspect FILE.wal`, and the recovered state's keys in `inspect DIR`; their golden outputs
// (fixtures/golden/, UPDATE_GOLDEN=1 rewrites them) and bad input: one clear line, a non-zero exit,
// no file changed.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raft/types.js';
import { DataDir, DiskStorage, encodeRecord, encodeSegmentHeader } from '../../src/storage/index.js';
import { ToolError } from '../../src/tools/errors.js';
import { describeEntry, fileKind, inspectDir, readLog, readRecords, readSegmentFile, topKeys } from '../../src/tools/inspect.js';
import { loadDirState } from '../../src/tools/load.js';
import { ROOT, golden, inproc, isRoot, proc, tmpDir, treeHash } from '../commands/helpers.js';

const HEALTHY = path.join(ROOT, 'fixtures/healthy');
const SEG = 'fixtures/healthy/wal/000000000000000b-000000000000010f.wal';
const TORN_SEG = 'fixtures/torn-tail/wal/000000000000000b-000000000000010f.wal';

function thrown(fn: () => unknown): ToolError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ToolError) return e;
    throw e;
  }
  throw new Error('did not throw');
}

/** A data directory (relative to the root) whose log holds every kind of entry the node writes. */
function mixedDir(): string {
  const dir = path.join(tmpDir(), 'n1');
  const s = DiskStorage.open(dir, { nodeId: 'n1', fsync: false, createdAt: 1704164645000 });
  const entries: Entry[] = [
    { index: 1, term: 1, data: null },
    { index: 2, term: 1, data: { op: 'write', key: 'a', value: [1, 2] } },
    { index: 3, term: 1, data: { op: 'write', key: 1, value: 'one' } },
    { index: 4, term: 2, data: null },
    { index: 5, term: 2, data: { op: 'cas', key: 'a', from: [1, 2], to: 'x', create_if_not_exists: true, session: { origin: 'n2/ab', id: 7, low: 5 } } },
    { index: 6, term: 2, data: { op: 'read', key: '1' } },
    { index: 7, term: 2, data: { note: 'not a command' } },
  ];
  s.append(entries.slice(0, 3));
  s.setHardState({ term: 1, votedFor: 'n1', commit: 3 });
  s.sync();
  s.append(entries.slice(3));
  s.setHardState({ term: 2, votedFor: 'n1', commit: 6 });
  s.sync();
  s.close();
  return path.relative(ROOT, dir);
}

describe('entry types', () => {
  it('no-op, read, write, cas (with its session), other: by the rule the node applies entries by', () => {
    expect(describeEntry(null)).toEqual({ op: 'noop' });
    expect(describeEntry({ op: 'write', key: 1, value: null })).toEqual({ op: 'write', key: 1, value: null });
    expect(describeEntry({ op: 'read', key: [1] })).toEqual({ op: 'read', key: [1] });
    expect(describeEntry({ op: 'cas', key: 'k', from: 1, to: 2, session: { origin: 'o', id: 3 } })).toEqual({
      op: 'cas',
      key: 'k',
      from: 1,
      to: 2,
      createIfNotExists: false,
      session: { origin: 'o', id: 3 },
    });
    // What the state machine skips: not commands (a write without a value, an unknown op, no key).
    for (const d of [{ op: 'write', key: 1 }, { op: 'put', key: 1, value: 2 }, { value: 1 }, [1], 'x', 3]) expect(describeEntry(d).op).toBe('other');
  });
});

describe('inspect --log filters', () => {
  it('by term, operation and key, combinable with --from/--to; the total before the filters', () => {
    const all = readLog(HEALTHY);
    const r = readLog(HEALTHY, { term: 3, op: 'write,cas', from: 260, to: 300 });
    expect(r.rows.length).toBeGreaterThan(0);
    expect(r.rows.every((x) => x.term === 3 && (x.op === 'write' || x.op === 'cas') && x.index >= 260)).toBe(true);
    expect(r.total).toBe(41);
    expect(r.rows).toEqual(all.rows.filter((x) => x.term === 3 && (x.op === 'write' || x.op === 'cas') && x.index >= 260 && x.index <= 300));
    const k = readLog(HEALTHY, { key: '26' });
    expect(k.rows.length).toBeGreaterThan(1);
    expect(k.rows.every((x) => x.key === 26)).toBe(true);
    // The no-ops opening terms 2 and 3 (term 1's was compacted away).
    expect(readLog(HEALTHY, { op: 'noop' }).rows.map((x) => [x.index, x.term])).toEqual([
      [121, 2],
      [241, 3],
    ]);
    expect(readLog(HEALTHY, { op: 'no-op' }).rows).toHaveLength(2);
  });

  it('--key is JSON as for dump: 1 is the integer, \'"1"\' the string, other text a string key', () => {
    const dir = mixedDir();
    const keys = (k: string) => readLog(dir, { key: k }).rows.map((x) => x.index);
    expect(keys('1')).toEqual([3]);
    expect(keys('"1"')).toEqual([6]);
    expect(keys('a')).toEqual([2, 5]);
    expect(keys('"a"')).toEqual([2, 5]);
    const rows = readLog(dir).rows;
    expect(rows.map((x) => x.op)).toEqual(['noop', 'write', 'write', 'noop', 'cas', 'read', 'other']);
    expect(rows[4]).toMatchObject({ committed: true, from: [1, 2], to: 'x', createIfNotExists: true, session: { origin: 'n2/ab', id: 7, low: 5 } });
    expect(rows[6]).toMatchObject({ committed: false, data: { note: 'not a command' } });
    expect(rows[6]!.key).toBeUndefined();
  });

  it('an unknown operation is one line naming the nearest', () => {
    expect(thrown(() => readLog(HEALTHY, { op: 'write,csa' })).message).toBe(
      '--op: unknown operation "csa" (did you mean cas?); expected noop, read, write, cas, other or a comma-separated list of them',
    );
  });
});

describe('inspect --records (the raw WAL)', () => {
  it('every byte of every segment is in exactly one row: header, records, padding, commit records', () => {
    const r = readRecords(HEALTHY);
    const listing = DataDir.open(HEALTHY).listSegments();
    expect(r.segments.map((s) => s.seq)).toEqual(listing.map((s) => s.seq));
    for (const [i, s] of r.segments.entries()) {
      let at = 0;
      for (const x of s.records) {
        expect(x.offset, `${s.file} at ${at}`).toBe(at);
        at += x.size;
      }
      expect(at).toBe(s.size);
      expect(s.records.filter((x) => x.type === 'entry' || x.type === 'hardState' || x.type === 'snapshot')).toHaveLength(listing[i]!.recordCount);
      expect([s.entries, s.minIndex, s.maxIndex]).toEqual([listing[i]!.entryCount, listing[i]!.minIndex, listing[i]!.maxIndex]);
      // Format 2: every commit record is on a 512-byte boundary and closes the bytes after the one before.
      let sealed = 32;
      for (const x of s.records) {
        if (x.type !== 'commit') continue;
        expect(x.offset % 512).toBe(0);
        expect(x.batchStart).toBe(sealed);
        sealed = x.offset + x.size;
      }
    }
    expect(r.damaged).toBe(false);
    expect(r.warnings).toEqual([]);
  });

  it('a torn tail is shown where it is, with the unsealed records before it, as a warning', () => {
    const r = readRecords(path.join(ROOT, 'fixtures/torn-tail'));
    const last = r.segments.at(-1)!;
    expect(last.status).toBe('torn tail');
    expect(last.records.at(-1)).toMatchObject({ type: 'damage', offset: 1932, size: last.size - 1932, torn: true });
    const unsealed = last.records.filter((x) => 'sealed' in x && !x.sealed);
    expect(unsealed[0]!.offset).toBe(1554);
    expect(r.damaged).toBe(false);
    expect(r.warnings).toHaveLength(1);
  });

  it('a corrupt record is shown where it is; the other segments are still read', () => {
    const r = readRecords(path.join(ROOT, 'fixtures/corrupt-mid-wal'));
    expect(r.damaged).toBe(true);
    expect(r.segments.slice(0, -1).every((s) => s.status === 'ok')).toBe(true);
    const last = r.segments.at(-1)!;
    expect(last.status).toBe('damaged');
    expect(last.records.at(-1)).toMatchObject({ type: 'damage', offset: 1221, torn: false });
    expect(last.problem).toMatch(/^corrupt record at offset 1221: record checksum mismatch/);
  });

  it('a segment whose header is damaged is unreadable, at the offset of the damage', () => {
    const d = tmpDir();
    const f = path.join(d, 'x.wal');
    const b = fs.readFileSync(path.join(ROOT, SEG));
    b[20] ^= 1;
    fs.writeFileSync(f, b);
    const s = readSegmentFile(f).segments[0]!;
    expect(s.status).toBe('unreadable');
    expect(s.problem).toMatch(/WAL segment header checksum mismatch/);
    expect(s.records).toEqual([expect.objectContaining({ type: 'damage', offset: 28, torn: false })]);
  });
});

describe('a format 1 segment', () => {
  it('has no padding or commit records; every record it holds is sealed', () => {
    const f = path.join(tmpDir(), '0000000000000001-0000000000000001.wal');
    const recs = [
      encodeRecord({ type: 'hardState', hardState: { term: 1, votedFor: 'n1', commit: 0 } }),
      encodeRecord({ type: 'entry', entry: { index: 1, term: 1, data: null } }),
      encodeRecord({ type: 'entry', entry: { index: 2, term: 1, data: { op: 'write', key: 'k', value: 1 } } }),
    ];
    fs.writeFileSync(f, Buffer.concat([encodeSegmentHeader(1, 1, 1), ...recs]));
    const s = readSegmentFile(f).segments[0]!;
    expect(s).toMatchObject({ version: 1, seq: 1, firstIndex: 1, status: 'ok', entries: 2, minIndex: 1, maxIndex: 2 });
    expect(s.records.map((x) => [x.type, x.offset])).toEqual([
      ['header', 0],
      ['hardState', 32],
      ['entry', 32 + recs[0]!.length],
      ['entry', 32 + recs[0]!.length + recs[1]!.length],
    ]);
    expect(s.records.every((x) => !('sealed' in x) || x.sealed)).toBe(true);
  });
});

describe('what a file is', () => {
  it('snapshot, WAL segment, or one line saying it is neither', () => {
    const d = tmpDir();
    expect(fileKind(path.join(ROOT, 'fixtures/snapshots/good.snap'))).toBe('snapshot');
    expect(fileKind(path.join(ROOT, SEG))).toBe('wal');
    fs.writeFileSync(path.join(d, 'empty'), '');
    expect(thrown(() => fileKind(path.join(d, 'empty'))).problem).toBe('empty file, not a snapshot or WAL segment');
    // A cut magic is that kind of file, cut short (its reader says how).
    fs.writeFileSync(path.join(d, 'cut'), 'RSNAP');
    expect(fileKind(path.join(d, 'cut'))).toBe('wal');
    fs.writeFileSync(path.join(d, 'text'), 'hello world\n');
    expect(thrown(() => fileKind(path.join(d, 'text'))).problem).toMatch(/^not a raftsnap snapshot or WAL segment: it starts with bytes 68 65 6c 6c 6f 20 77 6f/);
  });
});

describe('inspect DIR: the recovered state', () => {
  it('key count and largest keys of the state recovery would serve (as loaded in memory)', () => {
    const r = inspectDir(HEALTHY, { top: 5 });
    const mem = loadDirState(HEALTHY).state;
    expect(r.state).toMatchObject({ index: 290, term: 3, keys: mem.pairs.length, sessions: 1 });
    expect(r.state!.top).toEqual(topKeys(mem.pairs, 5));
    expect(inspectDir(HEALTHY, { top: 0 }).state!.top).toEqual([]);
    // Keys the log created after the snapshot are counted (the mixed directory has no snapshot).
    const m = inspectDir(path.join(ROOT, mixedDir()));
    expect(m.state).toMatchObject({ index: 6, term: 2, keys: 2, sessions: 1 });
  });

  it('no state when recovery would fail', () => {
    expect(inspectDir(path.join(ROOT, 'fixtures/corrupt-mid-wal')).state).toBeNull();
  });
});

// ------------------------------------------------------------------------------------------------
// The command

const views: Array<{ name: string; args: string[]; exit: number }> = [
  { name: 'inspect-log-filter.txt', args: ['inspect', 'fixtures/healthy', '--log', '--term', '3', '--op', 'write,cas', '--key', '26'], exit: 0 },
  { name: 'inspect-log-filter.ndjson', args: ['inspect', 'fixtures/healthy', '--log', '--from', '280', '--op', 'cas', '--json'], exit: 0 },
  { name: 'inspect-records-torn.txt', args: ['inspect', 'fixtures/torn-tail', '--records'], exit: 0 },
  { name: 'inspect-records-corrupt.txt', args: ['inspect', 'fixtures/corrupt-mid-wal', '--records'], exit: 1 },
  { name: 'inspect-segment.txt', args: ['inspect', TORN_SEG], exit: 0 },
  { name: 'inspect-segment.json', args: ['inspect', SEG, '--json'], exit: 0 },
  { name: 'inspect-dir-top.txt', args: ['inspect', 'fixtures/broken-snapshot', '--top', '3'], exit: 0 },
];

describe('golden output of the log views', () => {
  for (const c of views) {
    it(`${c.args.join(' ')}`, async () => {
      const r = await inproc(c.args);
      expect(r.exit, r.stderr).toBe(c.exit);
      golden(c.name, r.stdout);
    });
  }

  it('a mixed log in the table and as NDJSON (stable field names)', async () => {
    const dir = mixedDir();
    const t = await inproc(['inspect', dir, '--log']);
    expect(t.exit).toBe(0);
    expect(t.stdout).toContain('│ 5     │ 2    │ yes       │ cas   │ "a" │ [1,2] -> "x" (create if missing) │ n2/ab #7     │');
    expect(t.stdout).toContain('│ 7     │ 2    │ no        │ other │     │ {"note":"not a command"}         │              │');
    const j = await inproc(['inspect', dir, '--log', '--json', '--op', 'cas,noop']);
    const rows = j.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.map((x) => Object.keys(x))).toEqual([
      ['index', 'term', 'committed', 'op', 'data'],
      ['index', 'term', 'committed', 'op', 'data'],
      ['index', 'term', 'committed', 'op', 'key', 'from', 'to', 'createIfNotExists', 'session', 'data'],
    ]);
  });

  it('--records --json: one document, the fields of each record type', async () => {
    const r = await inproc(['inspect', 'fixtures/torn-tail', '--records', '--json']);
    expect(r.exit).toBe(0);
    const doc = JSON.parse(r.stdout) as { kind: string; segments: Array<{ records: Array<Record<string, unknown>> }>; records: number; entries: number };
    expect(doc.kind).toBe('records');
    expect(doc.entries).toBe(210);
    const byType = new Map<unknown, string[]>();
    for (const s of doc.segments) for (const x of s.records) byType.set(x['type'], Object.keys(x));
    expect(Object.fromEntries(byType)).toEqual({
      header: ['offset', 'size', 'type', 'version', 'seq', 'firstIndex'],
      hardState: ['offset', 'size', 'type', 'sealed', 'term', 'votedFor', 'commit'],
      padding: ['offset', 'size', 'type'],
      commit: ['offset', 'size', 'type', 'batchStart', 'batchCrc'],
      entry: expect.arrayContaining(['offset', 'size', 'type', 'sealed', 'index', 'term', 'op', 'data']),
      snapshot: ['offset', 'size', 'type', 'sealed', 'index', 'term', 'file'],
      damage: ['offset', 'size', 'type', 'reason', 'torn'],
    });
  });

  it('--records is written a segment at a time, and is the JSON of the whole view', async () => {
    for (const dir of ['fixtures/torn-tail', 'fixtures/corrupt-mid-wal']) {
      const r = await inproc(['inspect', dir, '--records', '--json']);
      expect(r.stdout).toBe(JSON.stringify(readRecords(dir), null, 2) + '\n');
    }
    // A directory without WAL segments.
    const empty = path.join(tmpDir(), 'n1');
    DiskStorage.open(empty, { nodeId: 'n1', fsync: false }).close();
    for (const f of fs.readdirSync(path.join(empty, 'wal'))) fs.rmSync(path.join(empty, 'wal', f));
    const rel = path.relative(ROOT, empty);
    const r = await inproc(['inspect', rel, '--records', '--json']);
    expect(r.exit).toBe(0);
    expect(r.stdout).toBe(JSON.stringify(readRecords(rel), null, 2) + '\n');
    expect(JSON.parse(r.stdout)).toMatchObject({ segments: [], records: 0 });
    expect((await inproc(['inspect', rel, '--records'])).stdout).toBe('0 segments, 0 records (0 entries) and 0 commit records, 0 B.\n');
  });

  it('a damaged WAL: the view, then one line naming the segment and offset, exit 1', async () => {
    const r = await inproc(['inspect', 'fixtures/corrupt-mid-wal', '--records']);
    expect(r.exit).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      'raftsnap inspect: fixtures/corrupt-mid-wal/wal/000000000000000b-000000000000010f.wal: corrupt record at offset 1221: record checksum mismatch (stored 0xac0281ec, computed 0xaad57598); `raftsnap repair fixtures/corrupt-mid-wal` shows what a repair would keep and lose',
    ]);
  });

  it('a reader that goes away (| head) ends the view quietly, exit 0 (a real process)', () => {
    // The view is written a segment at a time: the writes after head exits meet EPIPE.
    const r = spawnSync('bash', ['-c', `"${process.execPath}" bin/run.js inspect fixtures/healthy --records | head -3 >/dev/null; echo "\${PIPESTATUS[0]}"`], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('0\n');
  });

  it('real processes give the same output', () => {
    for (const c of views.filter((x) => /^inspect-(segment\.json|records-corrupt\.txt|log-filter\.txt)$/.test(x.name))) {
      const r = proc(c.args);
      expect(r.exit, c.name).toBe(c.exit);
      golden(c.name, r.stdout);
    }
  });
});

describe('bad input: one line, non-zero exit, nothing changed', () => {
  const cases: Array<{ name: string; args: (d: string) => string[]; code: string; line: RegExp }> = [
    { name: 'missing segment', args: () => ['inspect', 'fixtures/healthy/wal/no-such.wal'], code: 'ENOENT', line: /^raftsnap inspect: fixtures\/healthy\/wal\/no-such\.wal: no such file or directory$/ },
    { name: 'empty file', args: (d) => ['inspect', `${d}/empty.wal`], code: 'NOT_SNAPSHOT', line: /^raftsnap inspect: tmp\/.*\/empty\.wal: empty file, not a snapshot or WAL segment$/ },
    { name: 'empty file, --header', args: (d) => ['inspect', `${d}/empty.wal`, '--header'], code: 'NOT_SNAPSHOT', line: /empty\.wal: empty file, not a snapshot or WAL segment$/ },
    { name: 'foreign file', args: () => ['inspect', 'fixtures/snapshots/not-a-snapshot.snap'], code: 'NOT_SNAPSHOT', line: /not-a-snapshot\.snap: not a raftsnap snapshot or WAL segment: it starts with bytes 7b 22/ },
    { name: 'a FIFO (never opened)', args: (d) => ['inspect', `${d}/p/fifo`], code: 'NOT_SNAPSHOT', line: /fifo: a named pipe \(FIFO\), not a snapshot or WAL segment$/ },
    { name: 'under a file (no such directory)', args: () => ['inspect', `${SEG}/x.wal`], code: 'ENOTDIR', line: /000000000000010f\.wal\/x\.wal: not a directory$/ },
    { name: '--records of a snapshot', args: () => ['inspect', 'fixtures/snapshots/good.snap', '--records'], code: 'BAD_ARGS', line: /good\.snap: --records needs a data directory or a WAL segment file/ },
    { name: '--header of a segment', args: () => ['inspect', SEG, '--header'], code: 'BAD_ARGS', line: /--header is for snapshot files; this is a WAL segment/ },
    { name: '--log of a segment', args: () => ['inspect', SEG, '--log'], code: 'BAD_ARGS', line: /--log needs a data directory/ },
    { name: '--op typo', args: () => ['inspect', 'fixtures/healthy', '--log', '--op', 'wirte'], code: 'BAD_ARGS', line: /--op: unknown operation "wirte" \(did you mean write\?\)/ },
    { name: '--term without --log', args: () => ['inspect', 'fixtures/healthy', '--term', '3'], code: 'BAD_ARGS', line: /--term needs --log/ },
    { name: '--records with --log', args: () => ['inspect', 'fixtures/healthy', '--records', '--log'], code: 'BAD_ARGS', line: /--log and --records cannot be given together/ },
  ];

  /** A scratch directory with an empty file, and a FIFO in a subdirectory (never read by treeHash). */
  function setup(): string {
    const d = path.relative(ROOT, tmpDir());
    fs.writeFileSync(path.join(ROOT, d, 'empty.wal'), '');
    fs.mkdirSync(path.join(ROOT, d, 'p'));
    expect(spawnSync('mkfifo', [path.join(ROOT, d, 'p', 'fifo')]).status).toBe(0);
    return d;
  }

  /** What `d` holds (the FIFO is never read: that would block). */
  const hashOf = (d: string): string => {
    const a = path.join(ROOT, d);
    return JSON.stringify([fs.readdirSync(a).sort(), fs.readFileSync(path.join(a, 'empty.wal')).length, fs.readdirSync(path.join(a, 'p')), fs.statSync(path.join(a, 'p', 'fifo')).isFIFO()]);
  };

  for (const c of cases) {
    it(c.name, async () => {
      const d = setup();
      const before = [treeHash('fixtures'), hashOf(d)];
      const r = await inproc(c.args(d));
      expect(r.exit).toBe(2);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(c.line);
      const j = await inproc([...c.args(d), '--json']);
      expect(j.exit).toBe(2);
      expect((JSON.parse(j.stdout) as { error: { code: string } }).error.code).toBe(c.code);
      expect([treeHash('fixtures'), hashOf(d)]).toEqual(before);
    });
  }

  it('no permission: a segment the user cannot read (a real process as nobody when run as root)', () => {
    const d = tmpDir();
    const f = path.join(d, 'seg.wal');
    fs.copyFileSync(path.join(ROOT, SEG), f);
    fs.chmodSync(f, 0o000);
    const rel = path.relative(ROOT, f);
    let r: { status: number | null; stdout: string; stderr: string };
    if (isRoot) {
      // Root reads any file: run the command as nobody (the repository is world-readable).
      r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'run.js'), 'inspect', rel], { cwd: ROOT, encoding: 'utf8', uid: 65534, gid: 65534 });
    } else {
      const p = proc(['inspect', rel]);
      r = { status: p.exit, stdout: p.stdout, stderr: p.stderr };
    }
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toEqual([`raftsnap inspect: ${rel}: permission denied`]);
    fs.chmodSync(f, 0o644);
    expect(fs.readFileSync(f).equals(fs.readFileSync(path.join(ROOT, SEG)))).toBe(true);
  });

  it('--verify of a segment file checks its records; of an empty file it fails with the same words', async () => {
    const ok = await inproc(['inspect', SEG, '--verify']);
    expect(ok.exit).toBe(0);
    expect(ok.stdout).toContain('header and 34 record checksums ok, entries 271..300');
    const torn = await inproc(['inspect', TORN_SEG, '--verify']);
    expect(torn.exit).toBe(1);
    expect(torn.stderr).toContain('torn tail at offset 1932');
    const d = setup();
    const e = await inproc(['inspect', `${d}/empty.wal`, '--verify']);
    expect(e.exit).toBe(1);
    expect(e.stderr.trim()).toBe(`raftsnap inspect: ${d}/empty.wal: empty file, not a snapshot or WAL segment`);
  });
});
