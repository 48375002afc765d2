/**
 * `snapshot`: a standalone snapshot file of a data directory's state at its commit index (or at a
 * given index), built read-only (newest snapshot + committed log replayed) and verified after
 * writing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SNAPSHOT_MAGIC, encodeSnapshot, readSnapshotFile, snapshotFileName, writeSnapshotFile } from '../storage/index.js';
import { ToolError } from './errors.js';
import { insideDataDir, retype, underBase } from './files.js';
import { guard, isoTime, loadDirState, pathKind, toolNow, type ConfigSource } from './load.js';
import { countSessions } from './state.js';
import { canonicalJson } from '../kv/keys.js';

export interface ExportResult {
  dir: string;
  file: string;
  index: number;
  term: number;
  config: string[];
  /** Where the configuration came from: meta.json's members, the base snapshot, a newer snapshot (membership is fixed), or none known. */
  configSource: ConfigSource;
  keys: number;
  /** Client-session origins in the file's table (null: no table). */
  sessions: number | null;
  /** The snapshot the state was built from and how many log entries were replayed on it. */
  base: { snapshot: string | null; index: number; replayed: number };
  createdAt: string;
  size: number;
  rawSize: number;
  compressedSize: number;
  verified: boolean;
  warnings: string[];
}

export function exportSnapshot(dir: string, opts: { out?: string; index?: number; force?: boolean; cwd?: string } = {}): ExportResult {
  if (pathKind(dir) !== 'dir') throw new ToolError('ENOTDIR', dir, 'not a directory (expected a raftsnap data directory)');
  const d = loadDirState(dir, { at: opts.index });
  const st = d.state;
  const name = snapshotFileName({ index: st.header.index, term: st.header.term });
  const out = opts.out ?? (opts.cwd ? path.join(opts.cwd, name) : name);
  const inside = insideDataDir(out);
  if (inside) throw new ToolError('REFUSED', out, `${inside} (nothing was changed)`);
  const existing = fs.existsSync(out) ? fs.statSync(out) : null;
  if (existing?.isDirectory()) throw new ToolError('EXISTS', out, 'is a directory; give a file name with --out');
  if (existing && !opts.force) throw new ToolError('EXISTS', out, 'already exists; use --force to overwrite');
  if (existing && !isSnapshotFile(out)) {
    throw new ToolError('EXISTS', out, 'already exists and is not a raftsnap snapshot file; --force overwrites only a snapshot file (nothing was changed)');
  }
  const createdAt = toolNow();
  const content = d.state.dedup === null ? { kv: st.pairs } : { kv: st.pairs, sessions: st.dedup! };
  const bytes = encodeSnapshot({ index: st.header.index, term: st.header.term, config: st.header.config }, content, { createdAt, nodeId: d.nodeId });
  const written = guard(() => writeSnapshotFile(path.dirname(out), bytes, { name: path.basename(out) }), out);
  // Verify what is on disk: checksums, decode, and the same pairs as the state.
  const back = guard(() => readSnapshotFile(written), out);
  const same =
    back.header.index === st.header.index &&
    back.content.kv.length === st.pairs.length &&
    back.content.kv.every(([k, v], i) => canonicalJson(k) === canonicalJson(st.pairs[i]![0]) && canonicalJson(v) === canonicalJson(st.pairs[i]![1]));
  if (!same) throw new ToolError('CORRUPT', out, 'the written snapshot does not read back as the state it was made from');
  return {
    dir,
    file: out,
    index: st.header.index,
    term: st.header.term,
    config: st.header.config,
    configSource: d.configSource,
    keys: st.pairs.length,
    sessions: countSessions(st.dedup),
    base: { snapshot: d.base.file === null ? null : underBase(dir, d.base.file), index: d.base.index, replayed: d.replayed },
    createdAt: isoTime(createdAt),
    size: bytes.length,
    rawSize: back.header.rawSize,
    compressedSize: back.header.compressedSize,
    verified: true,
    warnings: d.warnings.map((w) => retype(dir, w)),
  };
}

/** Does the file start with the snapshot magic? (What --force may overwrite.) */
function isSnapshotFile(file: string): boolean {
  let fd: number | null = null;
  try {
    fd = fs.openSync(file, 'r');
    const b = Buffer.alloc(SNAPSHOT_MAGIC.length);
    return fs.readSync(fd, b, 0, b.length, 0) === b.length && b.equals(SNAPSHOT_MAGIC);
  } catch {
    return false;
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
}
