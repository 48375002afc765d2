import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DataDir, StorageError, readSnapshotFile, verifySnapshotFile } from '../../src/storage/index.js';
import { tmpDir } from './helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const script = path.join(root, 'scripts', 'make-fixtures.js');

function make(out: string): void {
  if (!fs.existsSync(path.join(root, 'dist', 'storage', 'index.js'))) {
    throw new Error('dist/storage is missing: run `npx tsc -p .` (npm test builds first)');
  }
  const r = spawnSync(process.execPath, [script, out], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
}

function tree(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string): void => {
    for (const n of fs.readdirSync(d).sort()) {
      const p = path.join(d, n);
      if (fs.statSync(p).isDirectory()) walk(p);
      else out.set(path.relative(dir, p), fs.readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

function code(f: () => unknown): string {
  try {
    f();
    return 'OK';
  } catch (e) {
    if (e instanceof StorageError) return e.code;
    throw e;
  }
}

describe('fixtures', () => {
  const a = tmpDir();
  const b = tmpDir();

  it('the script is deterministic: two runs give identical bytes (and match fixtures/)', () => {
    make(a);
    make(b);
    const ta = tree(a);
    const tb = tree(b);
    expect([...ta.keys()]).toEqual([...tb.keys()]);
    for (const [k, v] of ta) expect(v.equals(tb.get(k)!), k).toBe(true);
    // The committed fixtures are up to date with the script.
    const committed = path.join(root, 'fixtures');
    for (const [k, v] of ta) {
      const p = path.join(committed, k);
      expect(fs.existsSync(p), `fixtures/${k} missing: run node scripts/make-fixtures.js`).toBe(true);
      expect(fs.readFileSync(p).equals(v), `fixtures/${k} is stale: run node scripts/make-fixtures.js`).toBe(true);
    }
  });

  it('every damaged snapshot file is detected with its code', () => {
    make(a);
    const s = (n: string) => path.join(a, 'snapshots', n);
    const expected: Record<string, string> = {
      'good.snap': 'OK',
      'diff-a.snap': 'OK',
      'diff-b.snap': 'OK',
      'truncated.snap': 'TRUNCATED',
      'bitflip-payload.snap': 'BAD_PAYLOAD_CRC',
      'bad-header-crc.snap': 'BAD_HEADER_CRC',
      'future-version.snap': 'UNSUPPORTED_VERSION',
      'not-a-snapshot.snap': 'NOT_SNAPSHOT',
    };
    for (const [n, c] of Object.entries(expected)) {
      expect(code(() => readSnapshotFile(s(n))), n).toBe(c);
      expect(verifySnapshotFile(s(n)).problems.map((p) => p.code), n).toEqual(c === 'OK' ? [] : [c]);
    }
    const good = readSnapshotFile(s('good.snap'));
    expect(good.content.kv.slice(0, 2)).toEqual([
      [1, 'integer key 1'],
      ['1', 'string key "1"'],
    ]);
  });

  it('every data directory recovers (or fails) as fixtures/README.md says', () => {
    make(a);
    const d = (n: string) => path.join(a, n);
    const healthy = DataDir.open(d('healthy')).recover();
    expect(healthy.snapshot!.header.index).toBe(250);
    expect(healthy.entries.map((e) => e.index)).toEqual(Array.from({ length: 50 }, (_, i) => 251 + i));
    expect(healthy.hardState).toEqual({ term: 3, votedFor: 'n1', commit: 290 });
    expect(healthy.warnings).toEqual([]);
    expect(DataDir.open(d('healthy')).listSnapshots().length).toBe(3);
    expect(DataDir.open(d('healthy')).listSegments().length).toBeGreaterThan(2);

    expect(DataDir.open(d('torn-tail')).recover().warnings.map((w) => w.kind)).toEqual(['torn-tail', 'unsealed-tail']);
    expect(code(() => DataDir.open(d('corrupt-mid-wal')).recover())).toBe('CORRUPT_WAL');
    expect(DataDir.open(d('leftovers')).recover().warnings.map((w) => w.kind).sort()).toEqual(['partial-receive', 'temp-file', 'temp-file', 'temp-file']);
    const locked = DataDir.open(d('locked'));
    expect(locked.lockedBy).toBe(1);
    expect(code(() => DataDir.open(d('locked'), { mode: 'write' }))).toBe('LOCKED');
    const broken = DataDir.open(d('broken-snapshot')).recover();
    expect(broken.snapshot!.header.index).toBe(200);
    expect(broken.entries.length).toBe(100);
    expect(broken.warnings.map((w) => w.kind)).toEqual(['broken-snapshot']);

    // Repairing the torn tail keeps a copy and leaves a clean directory.
    const dd = DataDir.open(d('torn-tail'), { mode: 'write' });
    const r = dd.recover({ repair: true, now: 1 });
    dd.close();
    expect(r.entries.length).toBe(healthy.entries.length);
    expect(fs.readdirSync(path.join(d('torn-tail'), 'wal')).some((n) => n.endsWith('.torn-1'))).toBe(true);
    expect(DataDir.open(d('torn-tail')).recover().warnings).toEqual([]);
  });
});
