// Progress bars of the commands that read a whole state: drawn on stderr when it is a terminal
// (a real pseudo-terminal via util-linux `script` when present), nothing when it is not.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startProgress } from '../../src/cli/progress.js';
import { KvStore } from '../../src/kv/store.js';
import { DiskStorage, SnapshotEncoder } from '../../src/storage/index.js';
import { PROGRESS_MIN_KEYS } from '../../src/tools/load.js';
import { abs } from '../commands/helpers.js';

describe('startProgress', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('draws a bar on stderr when enabled, ending at 100% and a newline', () => {
    const out: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
      out.push(String(s));
      return true;
    });
    const bar = startProgress('reading', 1000, true);
    bar.update(500);
    bar.stop();
    const text = out.join('');
    expect(text).toMatch(/^\rreading \[-+\] 0% 0\/1000/);
    expect(text).toMatch(/\rreading \[#+\] 100% 1000\/1000 [\d.]+s\n$/);
  });

  it('writes nothing when not enabled (stderr not a terminal) or when there is nothing to count', () => {
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    for (const bar of [startProgress('reading', 1000, false), startProgress('reading', 0, true)]) {
      bar.update(10);
      bar.stop();
    }
    expect(spy).not.toHaveBeenCalled();
  });
});

/** A one-node data directory whose snapshot holds `keys` integer keys, plus a few committed entries. */
function bigDir(keys: number): string {
  // Its own temporary directory: the helpers' tmpDir() is removed after each test.
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rs-progress-')), 'n1');
  const store = new KvStore();
  for (let i = 0; i < keys; i++) store.set(i, i % 5);
  const st = DiskStorage.open(dir, { nodeId: 'n1', fsync: false });
  st.recover();
  st.dir.setMembers(['n1']);
  const meta = { index: keys, term: 1, config: ['n1'] };
  const view = store.freeze();
  const enc = new SnapshotEncoder(meta, { nodeId: 'n1', createdAt: 0 });
  for (const c of view.columns(8192)) enc.addColumns(c.keys, c.values);
  st.saveSnapshot(meta, enc.finish(view.sessions));
  view.release();
  st.append([1, 2, 3].map((n) => ({ index: keys + n, term: 2, data: { op: 'write', key: n, value: 'x' } })));
  st.setHardState({ term: 2, votedFor: 'n1', commit: keys + 3 });
  st.close();
  return dir;
}

const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
const built = fs.existsSync(abs('dist/cli/main.js'));

describe.skipIf(!hasScript || !built)('commands on a large state (real processes)', () => {
  let dir = '';
  beforeAll(() => {
    dir = bigDir(PROGRESS_MIN_KEYS + 20_000);
  });
  afterAll(() => {
    if (dir !== '') fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  });
  const bin = abs('bin/run.js');
  const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const cases: Array<[string, (d: string) => string[], RegExp]> = [
    ['hash DIR', (d) => ['hash', d], /reading \[#+\] 100%/],
    ['dump DIR', (d) => ['dump', d, '--prefix', 'none'], /reading \[#+\] 100%/],
    ['diff DIR DIR', (d) => ['diff', d, d], /reading \[#+\] 100%/],
    ['snapshot DIR --out F', (d) => ['snapshot', d, '--out', path.join(path.dirname(d), 'x.snap'), '--force'], /loading \[#+\] 100%[\s\S]*encoding \[#+\] 100%[\s\S]*verifying \[#+\] 100%/],
    // Last: it changes the directory (the run through a pipe then finds nothing to fold).
    ['compact DIR', (d) => ['compact', d], /loading \[#+\] 100%[\s\S]*encoding \[#+\] 100%[\s\S]*verifying \[#+\] 100%/],
  ];

  for (const [name, args, bar] of cases) {
    it(`${name}: a bar on a terminal, none through a pipe, the same stdout`, () => {
      const argv = args(dir);
      const cmd = [process.execPath, bin, ...argv].map(shq).join(' ');
      // stdout to a file, stderr left on the pseudo-terminal `script` gives the command.
      const outFile = path.join(path.dirname(dir), 'stdout.txt');
      const tty = spawnSync('script', ['-qfec', `${cmd} > ${shq(outFile)}`, '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
      expect(tty.status, tty.stdout + tty.stderr).toBe(0);
      expect(tty.stdout).toMatch(bar);
      const pipe = spawnSync(process.execPath, [bin, ...argv], { encoding: 'utf8', timeout: 60_000 });
      expect(pipe.status).toBe(0);
      expect(pipe.stderr).not.toMatch(/\[[#-]+\]/);
      if (!/^(snapshot|compact)/.test(name)) expect(fs.readFileSync(outFile, 'utf8')).toBe(pipe.stdout);
    }, 120_000);
  }
});
