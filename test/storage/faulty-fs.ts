/**
 * A FileSystem wrapper for tests that fails chosen calls: the Nth `write`, `fsync`, `rename`,
 * `open`, ... (optionally only on paths matching a pattern) throws an errno error such as EIO,
 * ENOSPC or EROFS. A failing write can first write part of its bytes ("short"), as a real disk
 * filling up does. Every call is recorded, with the path it concerns.
 */
import { fsFault, type FileStat, type FileSystem, type OpenFlags } from '../../src/storage/index.js';

export type FaultOp = 'open' | 'close' | 'read' | 'write' | 'fsync' | 'ftruncate' | 'fstat' | 'rename' | 'link' | 'unlink' | 'rmdir' | 'mkdir' | 'readdir' | 'stat' | 'access' | 'readFile';

export interface FaultRule {
  op: FaultOp;
  /** Fail the nth matching call (1-based); every matching call from then on when `sticky`. */
  nth: number;
  code: string;
  /** Only calls whose path matches. */
  path?: RegExp;
  /** For write: write half of the bytes, then throw. */
  short?: boolean;
  /** Keep failing after the first failure (a disk that stays full or read-only). */
  sticky?: boolean;
}

export class FaultyFs implements FileSystem {
  /** Every call as "op path", in order. */
  readonly calls: string[] = [];
  /** Calls that were failed, as "op path code". */
  readonly failed: string[] = [];
  private readonly rules: Array<FaultRule & { seen: number }> = [];
  private readonly fdPath = new Map<number, string>();

  constructor(readonly inner: FileSystem) {}

  fail(rule: FaultRule): this {
    this.rules.push({ ...rule, seen: 0 });
    return this;
  }

  /** Count of recorded calls of one kind. */
  count(op: FaultOp): number {
    return this.calls.filter((c) => c.startsWith(`${op} `)).length;
  }

  private check(op: FaultOp, p: string): FaultRule | null {
    this.calls.push(`${op} ${p}`);
    for (const r of this.rules) {
      if (r.op !== op || (r.path && !r.path.test(p))) continue;
      r.seen += 1;
      if (r.seen === r.nth || (r.sticky && r.seen > r.nth)) {
        this.failed.push(`${op} ${p} ${r.code}`);
        return r;
      }
    }
    return null;
  }

  private guard(op: FaultOp, p: string): void {
    const r = this.check(op, p);
    if (r) throw fsFault(r.code, op, p);
  }

  open(p: string, flags: OpenFlags, mode?: number): number {
    this.guard('open', p);
    const fd = this.inner.open(p, flags, mode);
    this.fdPath.set(fd, p);
    return fd;
  }
  close(fd: number): void {
    this.guard('close', this.fdPath.get(fd) ?? `fd ${fd}`);
    this.fdPath.delete(fd);
    this.inner.close(fd);
  }
  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number | null): number {
    this.guard('read', this.fdPath.get(fd) ?? `fd ${fd}`);
    return this.inner.read(fd, buf, offset, length, position);
  }
  write(fd: number, buf: Uint8Array, offset: number, length: number, position?: number | null): number {
    const p = this.fdPath.get(fd) ?? `fd ${fd}`;
    const r = this.check('write', p);
    if (r) {
      if (r.short && length > 1) this.inner.write(fd, buf, offset, Math.floor(length / 2), position);
      throw fsFault(r.code, 'write', p);
    }
    return this.inner.write(fd, buf, offset, length, position);
  }
  fsync(fd: number): void {
    this.guard('fsync', this.fdPath.get(fd) ?? `fd ${fd}`);
    this.inner.fsync(fd);
  }
  ftruncate(fd: number, length: number): void {
    this.guard('ftruncate', this.fdPath.get(fd) ?? `fd ${fd}`);
    this.inner.ftruncate(fd, length);
  }
  fstat(fd: number): FileStat {
    this.guard('fstat', this.fdPath.get(fd) ?? `fd ${fd}`);
    return this.inner.fstat(fd);
  }
  rename(from: string, to: string): void {
    this.guard('rename', `${from} -> ${to}`);
    this.inner.rename(from, to);
  }
  link(existing: string, newPath: string): void {
    this.guard('link', `${existing} -> ${newPath}`);
    this.inner.link(existing, newPath);
  }
  unlink(p: string): void {
    this.guard('unlink', p);
    this.inner.unlink(p);
  }
  rmdir(p: string): void {
    this.guard('rmdir', p);
    this.inner.rmdir(p);
  }
  mkdir(p: string, opts?: { recursive?: boolean }): void {
    this.guard('mkdir', p);
    this.inner.mkdir(p, opts);
  }
  readdir(p: string): string[] {
    this.guard('readdir', p);
    return this.inner.readdir(p);
  }
  stat(p: string): FileStat {
    this.guard('stat', p);
    return this.inner.stat(p);
  }
  access(p: string, mode: 'read' | 'write'): void {
    this.guard('access', p);
    this.inner.access(p, mode);
  }
  readFile(p: string): Buffer {
    this.guard('readFile', p);
    return this.inner.readFile(p);
  }
}
