import fs from 'node:fs';
import path from 'node:path';
import { fsError } from './errors.js';

let tmpCounter = 0;

/** Pattern of temporary names made by `tempName` (`<name>.tmp-<pid>-<n>`). */
export const TEMP_NAME_RE = /\.tmp-(\d+)-(\d+)$/;

/** A fresh temporary name next to `file`: `<file>.tmp-<pid>-<n>`. */
export function tempName(file: string): string {
  tmpCounter += 1;
  return `${file}.tmp-${process.pid}-${tmpCounter}`;
}

export interface SyncOptions {
  /** fsync files and directories (default true); false for `--fsync=false` and tests. */
  fsync?: boolean;
}

/** fsync a directory so that renames and creations inside it are durable. */
export function fsyncDir(dir: string, opts: SyncOptions = {}): void {
  if (opts.fsync === false) return;
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch (e) {
    throw fsError(e, dir, 'open directory for fsync');
  }
  try {
    fs.fsyncSync(fd);
  } catch (e) {
    // Some file systems refuse fsync on directories; that is not worth failing a write for.
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EBADF') throw fsError(e, dir, 'fsync directory');
  } finally {
    fs.closeSync(fd);
  }
}

/** Write all of `chunks` to `fd` at its current position. */
export function writeAll(fd: number, chunks: readonly Uint8Array[], file: string): number {
  let total = 0;
  for (const c of chunks) {
    let off = 0;
    while (off < c.length) {
      let n: number;
      try {
        n = fs.writeSync(fd, c, off, c.length - off);
      } catch (e) {
        throw fsError(e, file, 'write');
      }
      off += n;
    }
    total += c.length;
  }
  return total;
}

/**
 * Atomically replace `file` with `data`: write to `<file>.tmp-<pid>-<n>`, fsync it, rename it over
 * `file`, fsync the directory. On failure the temporary file is removed and `file` is untouched.
 */
export function writeFileAtomic(file: string, data: Uint8Array | readonly Uint8Array[], opts: SyncOptions = {}): void {
  const tmp = tempName(file);
  const chunks = data instanceof Uint8Array ? [data] : data;
  let fd: number;
  try {
    fd = fs.openSync(tmp, 'wx', 0o644);
  } catch (e) {
    throw fsError(e, path.dirname(file), 'create temporary file');
  }
  try {
    try {
      writeAll(fd, chunks, tmp);
      if (opts.fsync !== false) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    try {
      fs.renameSync(tmp, file);
    } catch (e) {
      throw fsError(e, file, 'rename into place');
    }
  } catch (e) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      // already gone
    }
    throw fsError(e, tmp, 'write');
  }
  fsyncDir(path.dirname(file), opts);
}

/** Rename `from` to `to` and fsync the directory of `to` (and of `from` when different). */
export function renameDurable(from: string, to: string, opts: SyncOptions = {}): void {
  try {
    fs.renameSync(from, to);
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

/** `fs.readdirSync` with a StorageError on failure. */
export function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch (e) {
    throw fsError(e, dir, 'list directory');
  }
}

export function statOrNull(p: string): fs.Stats | null {
  try {
    return fs.statSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fsError(e, p, 'stat');
  }
}

/** Read a whole file, with a StorageError naming it on failure. */
export function readFile(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw fsError(e, file, 'read');
  }
}

export function hex16(n: number): string {
  return n.toString(16).padStart(16, '0');
}
