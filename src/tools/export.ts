/**
 * `snapshot`: a standalone snapshot file of a data directory's state at its commit index (or at a
 * given index), built read-only (newest snapshot + committed log replayed), written under a
 * temporary name, verified there, then renamed into place.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SNAPSHOT_MAGIC, renameDurable, snapshotFileName, tempName, writeSnapshotFile } from '../storage/index.js';
import { ToolError } from './errors.js';
import { insideDataDir, retype, underBase } from './files.js';
import { guard, isoTime, pathKind, toolNow, type ConfigSource } from './load.js';
import { checkWrittenFile, encodeState } from './snapshot.js';
import { loadDirHeld } from './held-state.js';
import { countSessions } from './state.js';

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
  const d = loadDirHeld(dir, { at: opts.index });
  const st = d.header;
  const name = snapshotFileName({ index: st.index, term: st.term });
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
  // Verified before anything is written (read back through the node's reader against the state);
  // written under a temporary name and compared byte for byte there before it replaces anything: a
  // file that does not read back never takes the place of the one --force would overwrite, and the
  // temporary file is removed.
  const { bytes, header: back } = encodeState(d.state, st, d.dedup, { createdAt, nodeId: d.nodeId, shown: out });
  const written = guard(() => writeSnapshotFile(path.dirname(out), bytes, { name: path.basename(tempName(out)) }), out);
  try {
    checkWrittenFile(written, out, bytes);
    guard(() => renameDurable(written, out), out);
  } catch (e) {
    fs.rmSync(written, { force: true });
    throw e;
  }
  return {
    dir,
    file: out,
    index: st.index,
    term: st.term,
    config: st.config,
    configSource: d.configSource,
    keys: d.state.size,
    sessions: countSessions(d.dedup),
    base: { snapshot: d.base.file === null ? null : underBase(dir, d.base.file), index: d.base.index, replayed: d.replayed },
    createdAt: isoTime(createdAt),
    size: bytes.length,
    rawSize: back.rawSize,
    compressedSize: back.compressedSize,
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
