/**
 * `raftsnap version` and `--version` (issue 10): golden output (the Node.js version, the platform
 * and raftsnap's own version replaced, so that the files do not change with the machine or a
 * release), and the format versions it lists are true of this build: it reads every version it
 * says it reads and the fixtures it can read are among them. Real processes (npm run build).
 */
import { describe, expect, it } from 'vitest';
import { golden, proc } from './helpers.js';

interface VersionJson {
  name: string;
  version: string;
  node: string;
  platform: string;
  formats: Record<'snapshot' | 'wal' | 'dataDir', { writes: number; reads: number[] }>;
}

function normalise(text: string, v: VersionJson): string {
  return text.split(v.node).join('vNODE').split(v.platform).join('PLATFORM').split(`/${v.version} `).join('/VERSION ').split(`"${v.version}"`).join('"VERSION"');
}

describe('raftsnap version', () => {
  const j = proc(['version', '--json']);
  const v = JSON.parse(j.stdout) as VersionJson;

  it('golden text and JSON; --version is its first line', () => {
    expect(j.exit).toBe(0);
    expect(j.stderr).toBe('');
    const t = proc(['version']);
    expect(t.exit).toBe(0);
    expect(t.stderr).toBe('');
    golden('version.txt', normalise(t.stdout, v));
    golden('version.json', normalise(j.stdout, v));
    const first = proc(['--version']);
    expect(first.exit).toBe(0);
    expect(first.stdout).toBe(t.stdout.split('\n')[0] + '\n');
    expect(first.stdout).toBe(`raftsnap/${v.version} ${v.platform} node-${v.node}\n`);
  });

  it('each format it writes is among those it reads', () => {
    for (const f of Object.values(v.formats)) expect(f.reads).toContain(f.writes);
  });

  it('the fixtures it reads are of versions it lists as read', () => {
    // fixtures/snapshots/good.snap and fixtures/healthy, as written by an earlier format perhaps.
    const snap = proc(['inspect', 'fixtures/snapshots/good.snap', '--header', '--json']);
    expect(snap.exit, snap.stderr).toBe(0);
    expect(v.formats.snapshot.reads).toContain((JSON.parse(snap.stdout) as { header: { formatVersion: number } }).header.formatVersion);
    const dir = proc(['inspect', 'fixtures/healthy', '--json']);
    expect(dir.exit, dir.stderr).toBe(0);
    const d = JSON.parse(dir.stdout) as { formatVersion: number; snapshots: Array<{ file: string }> };
    expect(v.formats.dataDir.reads).toContain(d.formatVersion);
    for (const s of d.snapshots) {
      const h = proc(['inspect', s.file, '--header', '--json']);
      expect(h.exit, h.stderr).toBe(0);
      expect(v.formats.snapshot.reads).toContain((JSON.parse(h.stdout) as { header: { formatVersion: number } }).header.formatVersion);
    }
  });

  it('a version it does not list is refused with a line naming what it reads', () => {
    const r = proc(['inspect', 'fixtures/snapshots/future-version.snap']);
    expect(r.exit).toBe(2);
    expect(r.stderr).toMatch(/unsupported snapshot format version 99/);
    for (const n of v.formats.snapshot.reads) expect(r.stderr).toContain(String(n));
  });
});
