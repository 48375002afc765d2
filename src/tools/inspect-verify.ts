/**
 * `inspect --verify`: every checksum of a snapshot file, a WAL segment file, or every file of a
 * data directory, each a row that passed or failed. Read-only.
 */
import path from 'node:path';
import { DataDir, verifySnapshotFile } from '../storage/index.js';
import { ToolError } from './errors.js';
import { underBase } from './files.js';
import { fileKind, readSegmentFile } from './inspect-wal.js';
import { guard, openReadOnly, pathKind } from './load.js';

export interface VerifyCheck {
  file: string;
  check: string;
  ok: boolean;
  detail: string;
}

export interface VerifyResult {
  path: string;
  ok: boolean;
  checked: number;
  failed: number;
  checks: VerifyCheck[];
  warnings: string[];
}

function verifySnap(file: string, shown = file): VerifyCheck {
  const r = verifySnapshotFile(file);
  if (r.problems.length === 0) {
    const h = r.header!;
    return { file: shown, check: 'snapshot', ok: true, detail: `header and payload checksums ok, ${h.keyCount} ${h.keyCount === 1 ? 'key' : 'keys'} decoded (index ${h.index}, term ${h.term})` };
  }
  const p = r.problems[0]!;
  return { file: shown, check: 'snapshot', ok: false, detail: stripFile(p.message, file) };
}

function stripFile(msg: string, file: string): string {
  return msg.startsWith(`${file}: `) ? msg.slice(file.length + 2) : msg;
}

/** A file: a snapshot, a WAL segment (every record checksum), or neither (a failed check saying so). */
function verifyFile(file: string): VerifyCheck {
  let kind: 'snapshot' | 'wal';
  try {
    kind = fileKind(file);
  } catch (e) {
    if (e instanceof ToolError && e.code === 'NOT_SNAPSHOT') return { file, check: 'file', ok: false, detail: e.problem };
    throw e;
  }
  if (kind === 'snapshot') return verifySnap(file);
  const s = readSegmentFile(file).segments[0]!;
  if (s.status !== 'ok') return { file, check: 'wal segment', ok: false, detail: s.problem ?? s.status };
  const n = s.records.filter((r) => r.type === 'entry' || r.type === 'hardState' || r.type === 'snapshot').length;
  const range = s.entries > 0 ? `entries ${s.minIndex}..${s.maxIndex}` : 'no entries';
  return { file, check: 'wal segment', ok: true, detail: `header and ${n} record checksums ok, ${range}` };
}

/** Check every checksum of a snapshot file, or of every file in a data directory. */
export function verifyPath(p: string): VerifyResult {
  const warnings: string[] = [];
  const checks: VerifyCheck[] = [];
  if (pathKind(p) === 'file') {
    checks.push(verifyFile(p));
  } else {
    const dd: DataDir = openReadOnly(p, warnings);
    checks.push({ file: underBase(p, path.join(p, 'meta.json')), check: 'meta', ok: true, detail: `data directory version ${dd.meta.version}, node ${dd.meta.nodeId ?? '(none)'}` });
    for (const s of guard(() => dd.listSnapshots(), p)) checks.push(verifySnap(s.path, underBase(p, s.path)));
    const segs = guard(() => dd.listSegments(), p);
    segs.forEach((s, i) => {
      if (s.error) {
        checks.push({ file: underBase(p, s.path), check: 'wal segment', ok: false, detail: stripFile(s.error.message, s.path) });
        return;
      }
      // listSegments already scanned every record checksum: its counts are used, the file is not read again.
      if (s.damage) {
        const torn = i === segs.length - 1 && s.damage.tailOnly;
        checks.push({
          file: underBase(p, s.path),
          check: 'wal segment',
          ok: false,
          detail: `${torn ? 'torn tail' : 'corrupt record'} at offset ${s.damage.offset}: ${s.damage.reason}`,
        });
        return;
      }
      const range = s.entryCount > 0 ? `entries ${s.minIndex}..${s.maxIndex}` : 'no entries';
      checks.push({ file: underBase(p, s.path), check: 'wal segment', ok: true, detail: `header and ${s.recordCount} record checksums ok, ${range}` });
    });
    for (const l of guard(() => dd.leftovers(), p)) warnings.push(`${underBase(p, l.path)}: leftover ${l.kind} file (${l.size} bytes), not checked`);
  }
  const failed = checks.filter((c) => !c.ok).length;
  return { path: p, ok: failed === 0, checked: checks.length, failed, checks, warnings };
}
