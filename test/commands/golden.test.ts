// Every read-only command on the fixtures, in-process and as a real process, against golden files
// in fixtures/golden/ (UPDATE_GOLDEN=1 rewrites them).
import { describe, expect, it } from 'vitest';
import { golden, inproc, proc, treeHash } from './helpers.js';

const S = 'fixtures/snapshots';

interface Case {
  name: string;
  args: string[];
  exit: number;
}

const cases: Case[] = [
  { name: 'inspect-snapshot.txt', args: ['inspect', `${S}/good.snap`, '--top', '5'], exit: 0 },
  { name: 'inspect-snapshot.json', args: ['inspect', `${S}/good.snap`, '--top', '3', '--json'], exit: 0 },
  { name: 'inspect-header.json', args: ['inspect', `${S}/good.snap`, '--header', '--json'], exit: 0 },
  { name: 'inspect-dir.txt', args: ['inspect', 'fixtures/healthy'], exit: 0 },
  { name: 'inspect-dir.json', args: ['inspect', 'fixtures/healthy', '--json'], exit: 0 },
  { name: 'inspect-dir-leftovers.txt', args: ['inspect', 'fixtures/leftovers'], exit: 0 },
  { name: 'inspect-dir-torn.txt', args: ['inspect', 'fixtures/torn-tail'], exit: 0 },
  { name: 'inspect-dir-broken-snapshot.txt', args: ['inspect', 'fixtures/broken-snapshot'], exit: 0 },
  { name: 'inspect-dir-locked.txt', args: ['inspect', 'fixtures/locked'], exit: 0 },
  { name: 'inspect-dir-corrupt.txt', args: ['inspect', 'fixtures/corrupt-mid-wal'], exit: 2 },
  { name: 'inspect-verify.txt', args: ['inspect', 'fixtures/healthy', '--verify'], exit: 0 },
  { name: 'inspect-verify-broken.txt', args: ['inspect', 'fixtures/broken-snapshot', '--verify'], exit: 1 },
  { name: 'inspect-verify-broken.json', args: ['inspect', 'fixtures/corrupt-mid-wal', '--verify', '--json'], exit: 1 },
  { name: 'inspect-verify-file.txt', args: ['inspect', `${S}/bitflip-payload.snap`, '--verify'], exit: 1 },
  { name: 'inspect-log.txt', args: ['inspect', 'fixtures/healthy', '--log', '--from', '285', '--to', '295'], exit: 0 },
  { name: 'inspect-log.ndjson', args: ['inspect', 'fixtures/healthy', '--log', '--from', '296', '--json'], exit: 0 },
  { name: 'diff.txt', args: ['diff', `${S}/diff-a.snap`, `${S}/diff-b.snap`], exit: 1 },
  { name: 'diff-keys.txt', args: ['diff', `${S}/diff-a.snap`, `${S}/diff-b.snap`, '--keys'], exit: 1 },
  { name: 'diff-keys.json', args: ['diff', `${S}/diff-a.snap`, `${S}/diff-b.snap`, '--keys', '--json'], exit: 1 },
  { name: 'diff-equal.txt', args: ['diff', 'fixtures/healthy', 'fixtures/leftovers'], exit: 0 },
  { name: 'diff-dirs.json', args: ['diff', 'fixtures/healthy', 'fixtures/broken-snapshot', '--json'], exit: 0 },
];

/** The damage cases: one line on stderr naming the file, exit 2, and `{"error": ...}` with --json. */
const errors: Array<{ name: string; args: string[]; code: string; file: string }> = [
  { name: 'missing', args: ['inspect', 'fixtures/no-such.snap'], code: 'ENOENT', file: 'fixtures/no-such.snap' },
  { name: 'not-a-snapshot', args: ['inspect', `${S}/not-a-snapshot.snap`], code: 'NOT_SNAPSHOT', file: `${S}/not-a-snapshot.snap` },
  { name: 'truncated', args: ['inspect', `${S}/truncated.snap`], code: 'TRUNCATED', file: `${S}/truncated.snap` },
  { name: 'bitflip', args: ['inspect', `${S}/bitflip-payload.snap`], code: 'BAD_PAYLOAD_CRC', file: `${S}/bitflip-payload.snap` },
  { name: 'bad-header', args: ['inspect', `${S}/bad-header-crc.snap`, '--header'], code: 'BAD_HEADER_CRC', file: `${S}/bad-header-crc.snap` },
  { name: 'future-version', args: ['inspect', `${S}/future-version.snap`], code: 'UNSUPPORTED_VERSION', file: `${S}/future-version.snap` },
  { name: 'diff-damaged', args: ['diff', `${S}/good.snap`, `${S}/truncated.snap`], code: 'TRUNCATED', file: `${S}/truncated.snap` },
  { name: 'diff-corrupt-dir', args: ['diff', 'fixtures/healthy', 'fixtures/corrupt-mid-wal'], code: 'CORRUPT_WAL', file: 'fixtures/corrupt-mid-wal/wal/' },
  { name: 'snapshot-on-file', args: ['snapshot', `${S}/good.snap`, '--out', 'tmp/x.snap'], code: 'ENOTDIR', file: `${S}/good.snap` },
  // A file where a directory is expected (stands in for "no permission", which root cannot test).
  { name: 'file-as-dir', args: ['inspect', `${S}/good.snap/inner`], code: 'ENOTDIR', file: `${S}/good.snap/inner` },
  { name: 'not-a-data-dir', args: ['inspect', 'fixtures/snapshots'], code: 'NOT_DATA_DIR', file: 'fixtures/snapshots' },
];

describe('golden output', () => {
  for (const c of cases) {
    it(`${c.args.join(' ')} (in-process)`, async () => {
      const r = await inproc(c.args);
      expect(r.exit).toBe(c.exit);
      golden(c.name, r.stdout);
    });
  }

  it('real processes give the same output and exit codes', () => {
    const before = treeHash('fixtures');
    // A sample (each process costs ~0.3 s): one per command and output form.
    for (const c of cases.filter((x) => /^(inspect-snapshot\.txt|inspect-dir\.json|inspect-verify-broken\.txt|inspect-log\.ndjson|diff-keys\.txt|diff-equal\.txt)$/.test(x.name))) {
      const r = proc(c.args);
      expect(r.exit, c.name).toBe(c.exit);
      golden(c.name, r.stdout);
    }
    expect(treeHash('fixtures')).toBe(before);
  });
});

describe('errors', () => {
  for (const e of errors) {
    it(`${e.name}: one line naming the file, exit 2`, async () => {
      const r = await inproc(e.args);
      expect(r.exit).toBe(2);
      const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('warning:'));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(e.file);
      const j = await inproc([...e.args, '--json']);
      expect(j.exit).toBe(2);
      const doc = JSON.parse(j.stdout) as { error: { code: string; file: string; message: string } };
      expect(doc.error.code).toBe(e.code);
      expect(doc.error.message).toContain(e.file);
    });
  }

  it('as real processes: one line on stderr, nothing on stdout, exit 2', () => {
    for (const e of errors.slice(0, 4)) {
      const r = proc(e.args);
      expect(r.exit).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      golden(`error-${e.name}.txt`, r.stderr);
    }
  });

  it('flag errors are short JSON with --json', async () => {
    const r = await inproc(['inspect', '--json']);
    expect(r.exit).toBe(2);
    expect(r.stdout.length).toBeLessThan(500);
    expect(JSON.parse(r.stdout).error.message).toBe('missing argument <path> (snapshot file or data directory)');
  });

  it('--help has examples (real process)', () => {
    for (const cmd of ['inspect', 'snapshot', 'compact', 'restore', 'diff', 'repair', 'version']) {
      const r = proc([cmd, '--help']);
      expect(r.exit).toBe(0);
      expect(r.stdout).toContain('EXAMPLES');
    }
  });
});
