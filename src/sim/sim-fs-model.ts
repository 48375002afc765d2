/**
 * The state SimFs (sim-fs.ts) keeps, and the one rule of what a crash leaves of a file: its
 * durable bytes plus a prefix of its pending writes and truncations, cut at sector pieces, the
 * last kept piece possibly garbled.
 */
import path from 'node:path';
import type { Random } from './random.js';

/** The unit a crash keeps or loses of a write (a write is split at absolute multiples of it). */
export const SECTOR_BYTES = 512;

export const ROOT_INO = 1;

/** A path made absolute and normal (POSIX, against '/'; lexically: no symlinks to follow). */
export function absPath(p: string): string {
  if (p.charCodeAt(0) === 47 && !p.includes('//') && !p.includes('/.') && !p.endsWith('/')) return p; // already normal
  return p === '' ? '' : path.posix.resolve('/', p);
}

const EMPTY = new Uint8Array(0);

/**
 * A growable byte array with copy-on-write sharing: `fork()` gives a second owner of the same
 * buffer, and whichever owner changes it first copies it. Bytes past `len` are unspecified; every
 * extension zero-fills the gap.
 */
export class Bytes {
  private constructor(
    public buf: Uint8Array,
    public len: number,
    private shared: boolean,
  ) {}

  static empty(): Bytes {
    return new Bytes(EMPTY, 0, true);
  }

  view(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  fork(): Bytes {
    this.shared = true;
    return new Bytes(this.buf, this.len, true);
  }

  private reserve(n: number): void {
    if (!this.shared && this.buf.length >= n) return;
    // At least 4 KiB at once: a WAL segment or a small snapshot grows in one or two steps, not five.
    const cap = this.buf.length >= n ? this.buf.length : Math.max(n, this.buf.length * 2, 4096);
    const nb = new Uint8Array(cap);
    nb.set(this.buf.subarray(0, this.len));
    this.buf = nb;
    this.shared = false;
  }

  /** Append `src` and return where it starts. */
  append(src: Uint8Array): number {
    const at = this.len;
    this.write(at, src);
    return at;
  }

  write(off: number, src: Uint8Array): void {
    const end = off + src.length;
    this.reserve(Math.max(end, this.len));
    if (off > this.len) this.buf.fill(0, this.len, off);
    this.buf.set(src, off);
    if (end > this.len) this.len = end;
  }

  truncate(n: number): void {
    if (n > this.len) {
      this.reserve(n);
      this.buf.fill(0, this.len, n);
    }
    this.len = n;
  }

  /** Overwrite [start, end) (inside the file) with zeros or random bytes. */
  garble(start: number, end: number, g: 'zeros' | Random): void {
    this.reserve(this.len);
    if (g === 'zeros') this.buf.fill(0, start, end);
    else for (let i = start; i < end; i++) this.buf[i] = g.nextU32() & 0xff;
  }
}

/** A pending change of a file's bytes: a write of `n` bytes at `off` (kept at `at` in the file's `log`), or a truncation. */
export type FileOp = { t: 'w'; off: number; at: number; n: number } | { t: 't'; len: number };

/** A pending change of names: one or two directories (a rename between two is one operation of both). */
export interface DirOp {
  /** Creation order (every directory's queue is in increasing id). */
  id: number;
  changes: Array<{ dir: number; name: string; ino: number | null }>;
  dirs: number[];
}

export interface FileNode {
  kind: 'file';
  ino: number;
  /** The current view (page cache). */
  cur: Bytes;
  /** What is on disk for sure. */
  dur: Bytes;
  /** Applied to `cur`, not yet to `dur`, in order. */
  ops: FileOp[];
  /** The bytes of the pending writes, appended (one buffer per file rather than one per write). */
  log: Bytes;
  /** After a failed fsync: `cur` holds bytes that no fsync will write, so `cur` is not `dur` plus `ops`. */
  lost: boolean;
  /** Names in the current view. */
  nlink: number;
  /** Open fds. */
  open: number;
  mtimeMs: number;
}

export interface DirNode {
  kind: 'dir';
  ino: number;
  entries: Map<string, number>;
  durable: Map<string, number>;
  /** Applied to `entries`, not yet to `durable`, in order; shared with the other directory of a two-directory rename. */
  ops: DirOp[];
  nlink: number;
  open: number;
  mtimeMs: number;
}

export type FsNode = FileNode | DirNode;

export interface FsState {
  inodes: Map<number, FsNode>;
  nextIno: number;
}

/** How the last kept piece of a file is garbled in a random crash. */
export type Garbage = 'zeros' | 'random' | 'mixed';

export interface CrashOptions {
  /** Probability that the last kept piece of a file's pending writes is garbled (default 0.25). */
  garble?: number;
  /** With what (default 'mixed': zeros or random bytes, half and half). */
  garbage?: Garbage;
}

/** 'clean': only the durable state; 'all': everything written; a Random: a drawn crash. */
export type CrashHow = 'clean' | 'all' | Random;

/** Pieces of one operation: a truncation is one, a write one per sector it touches. */
export function pieces(op: FileOp): number {
  if (op.t === 't') return 1;
  const n = op.n;
  if (n === 0) return 0;
  return Math.floor((op.off + n - 1) / SECTOR_BYTES) - Math.floor(op.off / SECTOR_BYTES) + 1;
}

export function totalPieces(ops: readonly FileOp[]): number {
  let n = 0;
  for (const op of ops) n += pieces(op);
  return n;
}

/** A cut in [0, n]: none and all a fifth of the time each, otherwise uniform. */
export function pickCut(rng: Random, n: number): number {
  if (n === 0) return 0;
  const r = rng.next();
  if (r < 0.2) return 0;
  if (r < 0.4) return n;
  return rng.int(n + 1);
}

/** Whether (and with what) a random crash garbles the last kept piece. */
export function drawGarble(rng: Random, opts: CrashOptions): 'zeros' | Random | null {
  if (!rng.chance(opts.garble ?? 0.25)) return null;
  const g = opts.garbage ?? 'mixed';
  return g === 'zeros' || (g === 'mixed' && rng.chance(0.5)) ? 'zeros' : rng;
}

/**
 * Apply the first `k` pieces of `ops` to `b`; with `garble`, the last kept piece (when it is part
 * of a write) is overwritten with zeros or random bytes. Only bytes that piece wrote are garbled:
 * bytes that were durable stay as they were.
 */
export function applyPrefix(b: Bytes, ops: readonly FileOp[], log: Bytes, k: number, garble: 'zeros' | Random | null): void {
  let left = k;
  let torn: [number, number] | null = null;
  for (const op of ops) {
    if (left <= 0) break;
    if (op.t === 't') {
      b.truncate(op.len);
      left--;
      torn = null;
      continue;
    }
    const p = pieces(op);
    if (p === 0) continue;
    const take = Math.min(p, left);
    left -= take;
    const first = Math.floor(op.off / SECTOR_BYTES);
    const end = take === p ? op.off + op.n : (first + take) * SECTOR_BYTES;
    b.write(op.off, log.buf.subarray(op.at, op.at + end - op.off));
    torn = [take === 1 ? op.off : (first + take - 1) * SECTOR_BYTES, end];
  }
  if (garble !== null && torn !== null) b.garble(torn[0], torn[1], garble);
}

/** Apply one pending operation to `b`. */
export function applyOp(b: Bytes, op: FileOp, log: Bytes): void {
  if (op.t === 'w') b.write(op.off, log.buf.subarray(op.at, op.at + op.n));
  else b.truncate(op.len);
}
