/**
 * `snapshot DIR --out F --force`: the new file is verified before it replaces anything. A file that
 * does not read back as the bytes verified (here: the check of the written file made to fail) leaves the file --force would
 * have overwritten exactly as it was, and no temporary file behind.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ToolError } from '../../src/tools/errors.js';

let failVerify = false;
vi.mock('../../src/tools/snapshot.js', async (orig) => {
  const real = await orig<typeof import('../../src/tools/snapshot.js')>();
  return {
    ...real,
    checkWrittenFile: (...a: Parameters<typeof real.checkWrittenFile>) => {
      if (failVerify) throw new ToolError('CORRUPT', a[1], 'the snapshot file written does not read back as the bytes written (simulated)');
      return real.checkWrittenFile(...a);
    },
  };
});
const { exportSnapshot } = await import('../../src/tools/export.js');
const { compactDir } = await import('../../src/tools/compact.js');

const ROOT = path.resolve(import.meta.dirname, '../..');
let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  dirs = [];
  failVerify = false;
});

function setup(): { dir: string; out: string; before: Buffer } {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'raftsnap-export-'));
  dirs.push(tmp);
  const dir = path.join(tmp, 'n1');
  fs.cpSync(path.join(ROOT, 'fixtures/healthy'), dir, { recursive: true });
  const out = path.join(tmp, 'backup.snap');
  fs.copyFileSync(path.join(ROOT, 'fixtures/snapshots/good.snap'), out);
  return { dir, out, before: fs.readFileSync(out) };
}

describe('snapshot --out --force verifies before it replaces', () => {
  it('a file that does not verify leaves the old one untouched and no temporary file', () => {
    const { dir, out, before } = setup();
    failVerify = true;
    expect(() => exportSnapshot(dir, { out, force: true })).toThrow(/does not read back/);
    expect(fs.readFileSync(out).equals(before)).toBe(true);
    expect(fs.readdirSync(path.dirname(out)).sort()).toEqual(['backup.snap', 'n1']);
  });

  it('a file that verifies replaces the old one (and leaves no temporary file)', () => {
    const { dir, out, before } = setup();
    const r = exportSnapshot(dir, { out, force: true });
    expect(r.verified).toBe(true);
    expect(fs.readFileSync(out).equals(before)).toBe(false);
    expect(fs.readdirSync(path.dirname(out)).sort()).toEqual(['backup.snap', 'n1']);
  });
});

/** Every file under `dir` with its bytes (a tree to compare before and after). */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[path.relative(dir, p)] = fs.readFileSync(p).toString('base64');
    }
  };
  walk(dir);
  return out;
}

describe('compact checks its new snapshot before it removes the log', () => {
  it('a new snapshot that does not read back as the bytes verified: the directory is left exactly as it was', () => {
    const { dir } = setup();
    const before = tree(dir);
    failVerify = true;
    expect(() => compactDir(dir)).toThrow(/does not read back/);
    expect(tree(dir)).toEqual(before);
  });

  it('without the fault it compacts (a new snapshot, the old segments gone)', () => {
    const { dir } = setup();
    const before = tree(dir);
    const r = compactDir(dir);
    expect(r.verified).toBe(true);
    expect(r.newSnapshot).not.toBeNull();
    expect(tree(dir)).not.toEqual(before);
  });
});
