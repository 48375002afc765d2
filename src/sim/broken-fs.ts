/**
 * Test-only: deliberately broken storage for the simulator's mutation check (docs/SIMULATION.md,
 * "The broken node"). A FileSystem wrapper around a node's SimFs that leaves out one kind of fsync
 * the storage library makes, so that a run shows whether the simulator notices:
 *
 *  - `no-wal-fsync`: the fsync of a WAL segment after records were appended to it (the one a sync
 *    makes before the driver acknowledges anything) does nothing. The sync returns as if the
 *    records were durable; a crash then loses what the node acknowledged.
 *  - `no-snapshot-dir-fsync`: the fsync of the snapshot directory right after a rename into it (a
 *    saved or received snapshot put in place) does nothing. The rename stays pending, so a crash
 *    can undo it although the WAL already records the snapshot and the log it covers may be gone.
 *
 * Nothing else changes: every other call goes to the SimFs as is. Never used outside the simulator.
 */
import path from 'node:path';
import type { FileStat, FileSystem, OpenFlags } from '../storage/fs.js';

/** The broken storage modes (the third broken mode, ack-before-persist, is the server's own switch). */
export type BrokenStorage = 'no-wal-fsync' | 'no-snapshot-dir-fsync';

export const BROKEN_STORAGE: readonly BrokenStorage[] = ['no-wal-fsync', 'no-snapshot-dir-fsync'];

export class BrokenFs implements FileSystem {
  /** What each open fd names (only the ones the broken mode cares about). */
  private readonly fds = new Map<number, { path: string; flags: OpenFlags }>();
  /** Snapshot directories renamed into since their last fsync. */
  private readonly renamedInto = new Set<string>();
  /** fsyncs left out so far. */
  skipped = 0;

  constructor(
    private readonly fs: FileSystem,
    readonly mode: BrokenStorage,
  ) {}

  get tempPid(): number | undefined {
    return this.fs.tempPid;
  }

  open(p: string, flags: OpenFlags, mode?: number): number {
    const fd = this.fs.open(p, flags, mode);
    this.fds.set(fd, { path: path.posix.resolve('/', p), flags });
    return fd;
  }

  close(fd: number): void {
    this.fds.delete(fd);
    this.fs.close(fd);
  }

  fsync(fd: number): void {
    const f = this.fds.get(fd);
    if (f && this.leftOut(f)) {
      this.skipped++;
      return;
    }
    this.fs.fsync(fd);
  }

  fsyncAsync(fd: number): Promise<void> {
    const f = this.fds.get(fd);
    if (f && this.leftOut(f)) {
      this.skipped++;
      return Promise.resolve();
    }
    return this.fs.fsyncAsync ? this.fs.fsyncAsync(fd) : Promise.resolve(this.fs.fsync(fd));
  }

  private leftOut(f: { path: string; flags: OpenFlags }): boolean {
    if (this.mode === 'no-wal-fsync') {
      // The WAL writer appends to a segment through an fd opened with 'a'.
      return f.flags === 'a' && f.path.endsWith('.wal') && path.posix.basename(path.posix.dirname(f.path)) === 'wal';
    }
    if (f.flags === 'r' && this.renamedInto.has(f.path)) {
      this.renamedInto.delete(f.path);
      return true;
    }
    return false;
  }

  rename(from: string, to: string): void {
    this.fs.rename(from, to);
    if (this.mode === 'no-snapshot-dir-fsync' && to.endsWith('.snap')) {
      const dir = path.posix.dirname(path.posix.resolve('/', to));
      if (path.posix.basename(dir) === 'snap') this.renamedInto.add(dir);
    }
  }

  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number | null): number {
    return this.fs.read(fd, buf, offset, length, position);
  }

  write(fd: number, buf: Uint8Array, offset: number, length: number, position?: number | null): number {
    return this.fs.write(fd, buf, offset, length, position);
  }

  ftruncate(fd: number, length: number): void {
    this.fs.ftruncate(fd, length);
  }

  fstat(fd: number): FileStat {
    return this.fs.fstat(fd);
  }

  link(existing: string, newPath: string): void {
    this.fs.link(existing, newPath);
  }

  unlink(p: string): void {
    this.fs.unlink(p);
  }

  rmdir(p: string): void {
    this.fs.rmdir(p);
  }

  mkdir(p: string, opts?: { recursive?: boolean }): void {
    this.fs.mkdir(p, opts);
  }

  readdir(p: string): string[] {
    return this.fs.readdir(p);
  }

  stat(p: string): FileStat {
    return this.fs.stat(p);
  }

  access(p: string, mode: 'read' | 'write'): void {
    this.fs.access(p, mode);
  }

  readFile(p: string): Buffer {
    return this.fs.readFile(p);
  }
}
