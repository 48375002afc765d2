/**
 * File helpers of the storage library, over an injected FileSystem (fs.ts). Public entry points
 * take the FileSystem as `opts.fs` (default `nodeFs`); the library's internal helpers take it as a
 * required argument, so that no call inside src/storage can fall back to node:fs by omission.
 */
import path from 'node:path';
import { fsError } from './errors.js';
import type { FileStat, FileSystem } from './fs.js';
import { nodeFs } from './node-fs.js';

/** Options of every storage call that reaches files. */
export interface IoOptions {
  /** The file system to use (default `nodeFs`, node:fs). */
  fs?: FileSystem;
}

export interface SyncOptions extends IoOptions {
  /** fsync files and directories (default true); false for `--fsync=false` and tests. */
  fsync?: boolean;
}

/** The FileSystem of an options object. */
export function fsOf(opts: IoOptions | undefined): FileSystem {
  return opts?.fs ?? nodeFs;
}

/** Pattern of temporary names made by `tempName` (`<name>.tmp-<pid>-<n>`). */
export const TEMP_NAME_RE = /\.tmp-(\d+)-(\d+)$/;

// One counter per FileSystem, so that a simulated file system sees the same names in every run.
const tmpCounters = new WeakMap<FileSystem, number>();

/** A fresh temporary name next to `file`: `<file>.tmp-<pid>-<n>` (`n` counts per FileSystem; the pid is `FileSystem.tempPid` when set). */
export function tempName(file: string, fsys: FileSystem = nodeFs): string {
  const n = (tmpCounters.get(fsys) ?? 0) + 1;
  tmpCounters.set(fsys, n);
  return `${file}.tmp-${fsys.tempPid ?? process.pid}-${n}`;
}

/** Existing names skipped by `createTemp` before it gives up. */
const TEMP_ATTEMPTS = 1000;

/**
 * Create a fresh temporary file next to `file` (`tempName`, opened 'wx' for writing). A name that
 * exists already is a leftover of a crashed process that had this pid and got as far in its
 * counter (a node running as pid 1 in a container has the same pid every time): it is skipped,
 * never reused or removed here (recovery removes leftovers once the lock is held). `what` names
 * the action in the error.
 */
export function createTemp(file: string, fsys: FileSystem, what: string): { tmp: string; fd: number } {
  for (let attempt = 1; ; attempt++) {
    const tmp = tempName(file, fsys);
    try {
      return { tmp, fd: fsys.open(tmp, 'wx', 0o644) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= TEMP_ATTEMPTS) throw fsError(e, path.dirname(file), what);
    }
  }
}

/** fsync a directory so that renames and creations inside it are durable. */
export function fsyncDir(dir: string, opts: SyncOptions = {}): void {
  if (opts.fsync === false) return;
  const fsys = fsOf(opts);
  let fd: number;
  try {
    fd = fsys.open(dir, 'r');
  } catch (e) {
    throw fsError(e, dir, 'open directory for fsync');
  }
  try {
    fsys.fsync(fd);
  } catch (e) {
    // Some file systems refuse fsync on directories; that is not worth failing a write for.
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EBADF') throw fsError(e, dir, 'fsync directory');
  } finally {
    closeQuietly(fsys, fd);
  }
}

/** Close a descriptor, ignoring a failure (used on paths that already fail or only read). */
export function closeQuietly(fsys: FileSystem, fd: number): void {
  try {
    fsys.close(fd);
  } catch {
    // nothing more to do with it
  }
}

/** Write all of `chunks` to `fd` at its current position (a short write is continued). */
export function writeAll(fsys: FileSystem, fd: number, chunks: readonly Uint8Array[], file: string): number {
  let total = 0;
  for (const c of chunks) {
    let off = 0;
    while (off < c.length) {
      let n: number;
      try {
        n = fsys.write(fd, c, off, c.length - off);
      } catch (e) {
        throw fsError(e, file, 'write');
      }
      if (n <= 0) throw fsError(new Error(`write returned ${n}`), file, 'write');
      off += n;
    }
    total += c.length;
  }
  return total;
}

/** fsync a file descriptor, with a StorageError naming `file` on failure. */
export function fsyncFd(fsys: FileSystem, fd: number, file: string, what = 'fsync'): void {
  try {
    fsys.fsync(fd);
  } catch (e) {
    throw fsError(e, file, what);
  }
}

/**
 * Atomically replace `file` with `data`: write to `<file>.tmp-<pid>-<n>`, fsync it, rename it over
 * `file`, fsync the directory. On failure the temporary file is removed and `file` is untouched.
 */
export function writeFileAtomic(file: string, data: Uint8Array | readonly Uint8Array[], opts: SyncOptions = {}): void {
  const w = beginAtomicWrite(file, data, opts);
  try {
    if (opts.fsync !== false) fsyncFd(fsOf(opts), w.fd, w.tmp);
  } catch (e) {
    abortAtomicWrite(w, opts, e);
  }
  completeAtomicWrite(w, opts);
}

/**
 * `writeFileAtomic` in two steps, so that its file fsync (the long part for a large file) can run
 * off the event loop where the file system can (FileSystem.fsyncAsync): `beginAtomicWrite`
 * creates the temporary file and writes `data` into it, synchronously (its failures are thrown at
 * once); `finishAtomicWrite` fsyncs it (asynchronously where possible), renames it into place and
 * fsyncs the directory. On failure the temporary file is removed and `file` is untouched.
 */
export function beginAtomicWrite(file: string, data: Uint8Array | readonly Uint8Array[], opts: SyncOptions = {}): AtomicWrite {
  const fsys = fsOf(opts);
  const chunks = data instanceof Uint8Array ? [data] : data;
  const { tmp, fd } = createTemp(file, fsys, 'create temporary file');
  const w = { file, tmp, fd };
  try {
    writeAll(fsys, fd, chunks, tmp);
  } catch (e) {
    abortAtomicWrite(w, opts, e);
  }
  return w;
}

export async function finishAtomicWrite(w: AtomicWrite, opts: SyncOptions = {}): Promise<void> {
  const fsys = fsOf(opts);
  try {
    if (opts.fsync !== false) {
      if (fsys.fsyncAsync) await fsys.fsyncAsync(w.fd);
      else fsys.fsync(w.fd);
    }
  } catch (e) {
    abortAtomicWrite(w, opts, fsError(e, w.tmp, 'fsync'));
  }
  completeAtomicWrite(w, opts);
}

/** A temporary file written by `beginAtomicWrite`, still open, to be renamed over `file`. */
export interface AtomicWrite {
  file: string;
  tmp: string;
  fd: number;
}

function abortAtomicWrite(w: AtomicWrite, opts: SyncOptions, e: unknown): never {
  const fsys = fsOf(opts);
  closeQuietly(fsys, w.fd);
  unlinkQuietly(fsys, w.tmp);
  throw fsError(e, w.tmp, 'write');
}

/** The temporary file's bytes are durable: close it, rename it into place, fsync the directory. */
function completeAtomicWrite(w: AtomicWrite, opts: SyncOptions): void {
  const fsys = fsOf(opts);
  closeQuietly(fsys, w.fd);
  try {
    fsys.rename(w.tmp, w.file);
  } catch (e) {
    unlinkQuietly(fsys, w.tmp);
    throw fsError(fsError(e, w.file, 'rename into place'), w.tmp, 'write');
  }
  fsyncDir(path.dirname(w.file), opts);
}

/** Remove a file if it is there, ignoring every failure (clean-up after a failed write). */
export function unlinkQuietly(fsys: FileSystem, file: string): void {
  try {
    fsys.unlink(file);
  } catch {
    // already gone, or the file system refuses: recovery removes leftovers
  }
}

/** Rename `from` to `to` and fsync the directory of `to` (and of `from` when different). */
export function renameDurable(from: string, to: string, opts: SyncOptions = {}): void {
  try {
    fsOf(opts).rename(from, to);
  } catch (e) {
    throw fsError(e, from, `rename to ${path.basename(to)}`);
  }
  fsyncDir(path.dirname(to), opts);
  if (path.dirname(from) !== path.dirname(to)) fsyncDir(path.dirname(from), opts);
}

/** True when a process with this pid exists (EPERM counts as alive: it exists, we may not signal it). */
export function isPidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Names in a directory, sorted, with a StorageError on failure. */
export function listDir(fsys: FileSystem, dir: string): string[] {
  try {
    return fsys.readdir(dir).sort();
  } catch (e) {
    throw fsError(e, dir, 'list directory');
  }
}

export function statOrNull(fsys: FileSystem, p: string): FileStat | null {
  try {
    return fsys.stat(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fsError(e, p, 'stat');
  }
}

/** Read a whole file, with a StorageError naming it on failure. */
export function readFile(fsys: FileSystem, file: string, what = 'read'): Buffer {
  try {
    return fsys.readFile(file);
  } catch (e) {
    throw fsError(e, file, what);
  }
}

export function hex16(n: number): string {
  return n.toString(16).padStart(16, '0');
}
