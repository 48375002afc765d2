/**
 * File rules of the offline tools, over the storage library's FileSystem (default node:fs):
 * what is a data directory and what in it belongs to raftsnap (a tool replaces or deletes only
 * that), removing a tree the tool made, fresh names next to a target, and printing paths as the
 * user typed them.
 */
import { realpathSync } from 'node:fs';
import path from 'node:path';
import {
  BROKEN_SUFFIX,
  DATA_DIR_FORMAT,
  LOCK_FILE,
  META_FILE,
  RECV_SUFFIX,
  SNAP_DIR,
  TEMP_NAME_RE,
  TORN_RE,
  WAL_DIR,
  nodeFs,
  parseSegmentFileName,
  parseSnapshotFileName,
  type FileSystem,
} from '../storage/index.js';
import { ToolError } from './errors.js';

export function statOrNull(fsys: FileSystem, p: string): ReturnType<FileSystem['stat']> | null {
  try {
    return fsys.stat(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw e;
  }
}

/** Does `dir` hold a raftsnap data directory's meta.json (format "raftsnap-data")? Never throws. */
export function isDataDir(dir: string, fsys: FileSystem = nodeFs): boolean {
  try {
    const m = JSON.parse(fsys.readFile(path.join(dir, META_FILE)).toString('utf8')) as { format?: unknown } | null;
    return m !== null && typeof m === 'object' && m.format === DATA_DIR_FORMAT;
  } catch {
    return false;
  }
}

/** Names raftsnap itself writes at the top of a data directory. */
function ownTopLevel(name: string): boolean {
  if (name === META_FILE || name === LOCK_FILE || name === SNAP_DIR || name === WAL_DIR) return true;
  const t = TEMP_NAME_RE.exec(name);
  return t !== null && (name.slice(0, t.index) === META_FILE || name.slice(0, t.index) === LOCK_FILE);
}

function ownSnapFile(name: string): boolean {
  const base = name.replace(TEMP_NAME_RE, '').replace(new RegExp(`(${RECV_SUFFIX.replace('.', '\\.')}|${BROKEN_SUFFIX.replace('.', '\\.')})$`), '');
  return parseSnapshotFileName(base) !== null;
}

function ownWalFile(name: string): boolean {
  const base = name.replace(TEMP_NAME_RE, '').replace(TORN_RE, '').replace(new RegExp(`${BROKEN_SUFFIX.replace('.', '\\.')}$`), '');
  return parseSegmentFileName(base) !== null;
}

/**
 * Entries of a data directory that raftsnap did not write (relative paths, sorted): anything but
 * meta.json, LOCK, snap/ and wal/ at the top, snapshot files (and their .recv, .broken and
 * temporary forms) in snap/, segments (and their .torn-<ms> copies) in wal/.
 */
export function foreignEntries(dir: string, fsys: FileSystem = nodeFs): string[] {
  const out: string[] = [];
  for (const name of fsys.readdir(dir).sort()) {
    if (!ownTopLevel(name)) {
      out.push(name);
      continue;
    }
    if (name !== SNAP_DIR && name !== WAL_DIR) continue;
    const sub = path.join(dir, name);
    if (!fsys.stat(sub).isDirectory()) {
      out.push(name);
      continue;
    }
    for (const n of fsys.readdir(sub).sort()) {
      const own = name === SNAP_DIR ? ownSnapFile(n) : ownWalFile(n);
      if (!own || !fsys.stat(path.join(sub, n)).isFile()) out.push(`${name}/${n}`);
    }
  }
  return out;
}

/** Remove a file or a directory tree (which the caller created). */
export function removeTree(fsys: FileSystem, p: string): void {
  const st = statOrNull(fsys, p);
  if (!st) return;
  if (st.isDirectory()) {
    for (const n of fsys.readdir(p)) removeTree(fsys, path.join(p, n));
    fsys.rmdir(p);
  } else fsys.unlink(p);
}

/** A name next to `target` that does not exist: `.<base>.<what>-<pid>-<n>`. */
export function freshSibling(fsys: FileSystem, target: string, what: string): string {
  const dir = path.dirname(target);
  const base = path.basename(target);
  for (let n = 1; ; n++) {
    const p = path.join(dir, `.${base}.${what}-${process.pid}-${n}`);
    if (!statOrNull(fsys, p)) return p;
  }
}

/**
 * A path under `base` for people, as the user typed `base`: `show("./raftsnap-data/n1",
 * "raftsnap-data/n1/snap/x.snap")` is `./raftsnap-data/n1/snap/x.snap`. A path that is not under
 * `base` is returned as it is.
 */
export function underBase(base: string, p: string): string {
  const rel = path.relative(path.resolve(base), path.resolve(p));
  if (rel === '') return base;
  if (rel.startsWith('..') || path.isAbsolute(rel)) return p;
  return base.endsWith('/') ? base + rel : `${base}/${rel}`;
}

/** Is `p` (resolved) the current directory or one of its ancestors? */
export function holdsCwd(p: string): boolean {
  const rel = path.relative(path.resolve(p), process.cwd());
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Why `out` may not be written by a tool that makes a file of its own (a snapshot, a copy), or
 * null: a path inside a data directory's snap/ or wal/ (the node's own files, whoever's node), or
 * one of a data directory's own names (meta.json, LOCK, snap, wal).
 */
export function insideDataDir(out: string, fsys: FileSystem = nodeFs): string | null {
  let dir = path.dirname(path.resolve(out));
  const name = path.basename(path.resolve(out));
  try {
    dir = realpathSync(dir); // symbolic links: judge the real directory
  } catch {
    // a directory that does not exist yet holds nothing of a node's
  }
  if ((name === META_FILE || name === LOCK_FILE || name === SNAP_DIR || name === WAL_DIR) && isDataDir(dir, fsys)) {
    return `is a data directory's own ${name}; write elsewhere`;
  }
  for (let d = dir; path.dirname(d) !== d; d = path.dirname(d)) {
    const base = path.basename(d);
    if ((base === SNAP_DIR || base === WAL_DIR) && isDataDir(path.dirname(d), fsys)) {
      return `is inside a data directory's ${base}/ (the node's own files, which only the node and compact write); write elsewhere`;
    }
  }
  return null;
}

const DIR_NAMES = ['snap/', 'wal/', 'meta.json', 'LOCK'];

/**
 * A message of the storage library for people, with the paths in it as the user typed `base`:
 * the library joins names onto the directory (`path.join`), which normalises `./raftsnap-data/n1`
 * to `raftsnap-data/n1` and `.` to nothing.
 */
export function retype(base: string, text: string): string {
  const typed = base.length > 1 ? base.replace(/\/+$/, '') : base;
  const norm = path.normalize(typed);
  if (norm === typed && norm !== '.') return text;
  if (norm === '.') {
    const names = DIR_NAMES.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
    return text.replace(new RegExp(`(^|[\\s("'])(${names})`, 'g'), `$1${typed}/$2`);
  }
  const esc = norm.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return text.replace(new RegExp(`(^|[\\s("'])${esc}(?=/|$|[\\s:;,)"'])`, 'g'), `$1${typed}`);
}

/** The same error with its paths as the user typed `base` (see `retype`). */
export function retypeError(base: string, e: ToolError): ToolError {
  const file = e.file === null ? null : retype(base, e.file);
  const problem = retype(base, e.problem);
  if (file === e.file && problem === e.problem) return e;
  return new ToolError(e.code, file, problem, e.exit);
}
