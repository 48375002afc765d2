import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inspectDir, inspectSnapshot, readLog, topKeys } from '../../src/tools/inspect.js';
import { startProgress } from '../../src/cli/progress.js';
import { formatBytes, formatDelta, renderTable } from '../../src/cli/table.js';
import { toToolError, ToolError } from '../../src/tools/errors.js';
import { StorageError } from '../../src/storage/index.js';

const F = path.resolve('fixtures/snapshots');

describe('inspect library', () => {
  it('header-only mode never reads the payload: a damaged payload still gives the header; a cut file does not pass', () => {
    const r = inspectSnapshot(path.join(F, 'bitflip-payload.snap'), { headerOnly: true });
    expect(r.header).toMatchObject({ index: 120, term: 3, headerChecksum: 'ok', payloadChecksum: 'not checked' });
    expect(r.keys).toBeNull();
    // ...while the full mode checks it.
    expect(() => inspectSnapshot(path.join(F, 'bitflip-payload.snap'))).toThrow(ToolError);
    // The file's length is known without reading the payload: shorter than the header records is an error (issue 10).
    expect(() => inspectSnapshot(path.join(F, 'truncated.snap'), { headerOnly: true })).toThrow(/truncated snapshot: header announces 900 payload bytes/);
  });

  it('header-only reads a few hundred bytes of a large file quickly (and reports bytes after the payload)', () => {
    const big = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rs-')), 'big.snap');
    const good = fs.readFileSync(path.join(F, 'good.snap'));
    // A file whose announced payload is followed by 32 MiB of junk: the header read does not read it.
    fs.writeFileSync(big, Buffer.concat([good, Buffer.alloc(32 << 20)]));
    const t = performance.now();
    expect(() => inspectSnapshot(big, { headerOnly: true })).toThrow(/33554432 unexpected bytes after the snapshot payload/);
    expect(performance.now() - t).toBeLessThan(50);
    fs.rmSync(path.dirname(big), { recursive: true });
  });

  it('top keys by encoded size, ties in key order', () => {
    const t = topKeys([[1, 'x'], ['1', 'x'], [2, 'long value'], [0, 'x']], 3);
    expect(t.map((k) => k.key)).toEqual([2, '1', 0]); // "1" encodes one byte longer than 1
    expect(topKeys([[1, 1]], 0)).toEqual([]);
  });
});

describe('cli helpers', () => {
  it('no progress bar off a terminal', () => {
    const writes: string[] = [];
    const orig = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (writes.push(String(s)), true)) as typeof process.stderr.write;
    try {
      const p = startProgress('x', 100, false);
      p.update(50);
      p.stop();
    } finally {
      process.stderr.write = orig;
    }
    expect(writes).toEqual([]);
  });

  it('tables have no colour codes off a terminal; sizes format', () => {
    expect(renderTable(['a'], [[1]], false)).not.toContain('\u001b[');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatDelta(2048, 1024)).toBe('-1.0 KiB (-50%)');
  });

  it('errors become one line naming the file', () => {
    const e = toToolError(new StorageError('TRUNCATED', 'a.snap', 'truncated\nsnapshot', 12));
    expect(e.message).toBe('a.snap: truncated; snapshot (at offset 12)');
    expect(e.code).toBe('TRUNCATED');
    const n = toToolError(Object.assign(new Error("ENOENT: no such file or directory, open 'x'"), { code: 'ENOENT', path: 'x' }));
    expect(n.message).toBe('x: no such file or directory');
  });
});

describe('inspect of a directory', () => {
  it('marks the snapshot that recovery would find broken as broken in the listing, not ok', () => {
    const r = inspectDir(path.resolve('fixtures/broken-snapshot'));
    const byIndex = new Map(r.snapshots.map((s) => [s.index, s]));
    expect(byIndex.get(250)!.status).toBe('broken');
    expect(byIndex.get(250)!.problem).toMatch(/payload checksum mismatch/);
    expect(byIndex.get(200)!.status).toBe('ok');
    expect(r.recovery.snapshotIndex).toBe(200);
  });

  it('when recovery would fail, commit and last index are not reported as 0', () => {
    const r = inspectDir(path.resolve('fixtures/corrupt-mid-wal'));
    expect(r.recovery.error?.code).toBe('CORRUPT_WAL');
    expect(r.recovery.commit).toBeNull();
    expect(r.recovery.lastIndex).toBeNull();
  });
});

describe('inspect --log', () => {
  it('says so when --from asks for entries that were compacted into a snapshot', () => {
    const r = readLog(path.resolve('fixtures/healthy'), { from: 1, to: 93 });
    expect(r.rows.map((x) => x.index)).toEqual([91, 92, 93]);
    expect(r.warnings.join('\n')).toMatch(/entries before 91 are no longer in the log \(compacted into a snapshot\)/);
    expect(readLog(path.resolve('fixtures/healthy'), { from: 100, to: 101 }).warnings).toEqual([]);
  });
});
