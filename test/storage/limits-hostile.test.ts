// The hostile fixtures (fixtures/hostile/, made by scripts/make-hostile-fixtures.js): small files
// with valid checksums that hold or declare more than a reader accepts. `inspect --json`,
// `inspect --verify` and `restore` run on each as real processes: each refuses with one clear line
// (or a JSON error) naming the file and the limit, exits non-zero, stays under 200 MB of peak
// memory (VmHWM, read by the process itself at exit) and changes nothing.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tmpDir, treeHash } from '../commands/helpers.js';
import { measure } from './limits-measure.js';

const RUN = path.join(ROOT, 'bin', 'run.js');
const HOSTILE = 'fixtures/hostile';
const MAX_RSS_MB = 200;

const SNAPSHOTS: Array<{ file: string; code: string; text: RegExp }> = [
  { file: 'value-400mb.snap', code: 'LIMIT', text: /a string of 419430400 bytes, larger than a key and value within the limit of 65536 bytes as JSON/ },
  { file: 'value-64k-plus-1.snap', code: 'LIMIT', text: /key "k" whose key and value take 65537 bytes as JSON, more than the limit of 65536/ },
  { file: 'deep-65.snap', code: 'LIMIT', text: /nested more than 64 levels deep/ },
  { file: 'deep-1m.snap', code: 'LIMIT', text: /nested more than 64 levels deep/ },
  { file: 'string-4gib.snap', code: 'LIMIT', text: /a string of 4294967296 bytes/ },
  { file: 'array-4g.snap', code: 'LIMIT', text: /an array that declares 4294967295 elements where only 0 bytes remain/ },
  { file: 'bomb-1gib.snap', code: 'LIMIT', text: /decompresses to more than the 1024 bytes its header declares/ },
  { file: 'state-3gib.snap', code: 'LIMIT', text: /declares a payload of 3221225472 bytes decompressed, more than the limit of 2147483648/ },
  { file: 'window-1gib.snap', code: 'LIMIT', text: /needs a window of (more than )?\d+ bytes/ },
  { file: 'keys-2p40.snap', code: 'LIMIT', text: /declares 1099511627776 keys/ },
  { file: 'chunk-8193.snap', code: 'LIMIT', text: /a chunk of 8193 pairs/ },
  // Format version 2's group items (docs/FORMAT.md, "Payload").
  { file: 'v2-value-400mb.snap', code: 'LIMIT', text: /a string of 419430400 bytes, larger than a key and value within the limit of 65536 bytes as JSON/ },
  { file: 'v2-group-8193.snap', code: 'LIMIT', text: /a chunk of 8193 pairs/ },
  { file: 'v2-deltas-4gib.snap', code: 'BAD_PAYLOAD', text: /a column of 4294967296 bytes, more than the varints of 1 pairs take/ },
  { file: 'v2-keys-past-2p53.snap', code: 'BAD_PAYLOAD', text: /an integer key column whose keys leave the safe integers/ },
  { file: 'v2-deep-1m.snap', code: 'LIMIT', text: /nested more than 64 levels deep/ },
];

describe('hostile snapshot files', () => {
  it('the fixtures are small on disk and the script makes them again byte for byte', () => {
    const out = tmpDir();
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'make-hostile-fixtures.js'), out], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    for (const s of SNAPSHOTS) {
      const mine = fs.readFileSync(path.join(ROOT, HOSTILE, s.file));
      expect(mine.length, s.file).toBeLessThan(40_000);
      expect(fs.readFileSync(path.join(out, s.file)).equals(mine), s.file).toBe(true);
    }
  }, 60_000);

  for (const s of SNAPSHOTS) {
    it(`${s.file}: inspect --json, inspect --verify and restore refuse it clearly, under ${MAX_RSS_MB} MB, changing nothing`, () => {
      const file = `${HOSTILE}/${s.file}`;
      const before = treeHash(HOSTILE);
      const j = measure(['inspect', file, '--json']);
      expect(j.exit, j.stderr).toBe(2);
      const doc = JSON.parse(j.stdout) as { error: { code: string; message: string; file: string } };
      expect(doc.error.code).toBe(s.code);
      expect(doc.error.file).toBe(file);
      expect(doc.error.message).toMatch(s.text);
      expect(j.rssMb).toBeLessThan(MAX_RSS_MB);

      const v = measure(['inspect', file, '--verify']);
      expect(v.exit).toBe(1);
      const lines = v.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(file);
      expect(lines[0]).toMatch(s.text);
      expect(v.rssMb).toBeLessThan(MAX_RSS_MB);

      const parent = tmpDir();
      const target = path.join(parent, 'restored');
      const r = measure(['restore', file, '--data-dir', target]);
      expect(r.exit).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(s.text);
      expect(r.rssMb).toBeLessThan(MAX_RSS_MB);
      expect(fs.readdirSync(parent)).toEqual([]);
      expect(treeHash(HOSTILE)).toBe(before);
      if (s.file === 'value-400mb.snap') {
        // The numbers: 1.6 GB and 3.4 s (inspect), 3.1 GB and 11 s (restore) before the limits.
        console.log(`value-400mb.snap: inspect --json ${j.rssMb.toFixed(0)} MB ${j.ms} ms; --verify ${v.rssMb.toFixed(0)} MB ${v.ms} ms; restore ${r.rssMb.toFixed(0)} MB ${r.ms} ms`);
      }
    }, 30_000);
  }

  it('the operator who knows better raises the limit: the 65,537-character value is read with --max-value-bytes', () => {
    const r = measure(['inspect', `${HOSTILE}/value-64k-plus-1.snap`, '--json', '--max-value-bytes', '70000']);
    expect(r.exit, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { keys: number }).keys).toBe(1);
    const e = spawnSync(process.execPath, [RUN, 'inspect', `${HOSTILE}/value-64k-plus-1.snap`, '--json'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, RAFTSNAP_MAX_VALUE_BYTES: '64K' },
    });
    expect(e.status).toBe(2);
    const bad = spawnSync(process.execPath, [RUN, 'inspect', `${HOSTILE}/value-64k-plus-1.snap`, '--max-depth', 'deep'], { cwd: ROOT, encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/^raftsnap inspect: --max-depth: "deep" is not a positive whole number \(e\.g\. 65536, 64K, 2G\)/);
  }, 30_000);
});

describe('hostile data directories (WAL records over a limit)', () => {
  for (const d of ['wal-value-70k', 'wal-deep']) {
    it(`${d}: inspect and inspect --verify name the segment and offset; nothing changes`, () => {
      const dir = `${HOSTILE}/${d}`;
      const before = treeHash(dir);
      const j = measure(['inspect', dir, '--json']);
      expect(j.exit).toBe(2);
      const doc = JSON.parse(j.stdout) as { recovery: { error: { code: string; message: string } } };
      expect(doc.recovery.error.code).toBe('LIMIT');
      expect(doc.recovery.error.message).toMatch(/wal\/0000000000000001-0000000000000001\.wal: WAL record of type 1 holds .* \(at offset 60\)/);
      expect(j.rssMb).toBeLessThan(MAX_RSS_MB);
      const v = measure(['inspect', dir, '--verify']);
      expect(v.exit).toBe(1);
      expect(v.stderr).toMatch(/LIMIT|more than|deeper than/);
      expect(treeHash(dir)).toBe(before);
    }, 30_000);
  }
});
