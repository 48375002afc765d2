/**
 * An in-memory FileSystem that never loses anything: every write is durable the moment it returns
 * (fsync is a no-op), renames and unlinks are atomic and durable, and nothing fails except by POSIX
 * rules (ENOENT, EEXIST, ENOTDIR, EISDIR, ENOTEMPTY, EBADF, EINVAL). `serve` without a data
 * directory runs the real DiskStorage over one of these; tests use it for a fast, exact disk.
 * (The simulator's SimFs, with volatile bytes, crashes and faults, is another thing.)
 *
 * Paths are POSIX paths; relative ones are taken from "/". Open descriptors keep their file alive
 * after an unlink or a rename over it, as on a POSIX file system.
 */
import path from 'node:path';
import { fsFault, type FileStat, type FileSystem, type OpenFlags } from './fs.js';

interface FileNode {
  kind: 'file';
  /** Capacity >= size; bytes past `size` are not part of the file. */
  data: Buffer;
  size: number;
  mtimeMs: number;
}

interface DirNode {
  kind: 'dir';
  entries: Map<string, Node>;
  mtimeMs: number;
}

type Node = FileNode | DirNode;

interface OpenFile {
  node: Node;
  flags: OpenFlags;
  /** Current position (reads and writes without a position). */
  pos: number;
}

const READS: ReadonlySet<OpenFlags> = new Set(['r', 'r+']);
const WRITES: ReadonlySet<OpenFlags> = new Set(['r+', 'a', 'wx', 'w']);

function statOf(n: Node): FileStat {
  const size = n.kind === 'file' ? n.size : 0;
  const isFile = n.kind === 'file';
  return { size, isFile: () => isFile, isDirectory: () => !isFile, mtimeMs: n.mtimeMs };
}

export class MemFs implements FileSystem {
  private readonly root: DirNode;
  private readonly fds = new Map<number, OpenFile>();
  private nextFd = 3;

  /** `clock` gives modification times (default Date.now). */
  constructor(private readonly clock: () => number = Date.now) {
    this.root = { kind: 'dir', entries: new Map(), mtimeMs: clock() };
  }

  /** Number of open descriptors (tests check that nothing leaks). */
  get openCount(): number {
    return this.fds.size;
  }

  open(p: string, flags: OpenFlags, _mode?: number): number {
    const [dir, name] = this.parent(p, 'open');
    let node = name === '' ? this.root : dir.entries.get(name);
    if (node && flags === 'wx') throw fsFault('EEXIST', 'open', p);
    if (node && node.kind === 'dir' && flags !== 'r') throw fsFault('EISDIR', 'open', p);
    if (!node) {
      if (flags === 'r' || flags === 'r+') throw fsFault('ENOENT', 'open', p);
      node = { kind: 'file', data: Buffer.alloc(0), size: 0, mtimeMs: this.clock() };
      dir.entries.set(name, node);
      dir.mtimeMs = this.clock();
    } else if (flags === 'w' && node.kind === 'file') {
      node.size = 0;
      node.mtimeMs = this.clock();
    }
    const fd = this.nextFd++;
    this.fds.set(fd, { node, flags, pos: 0 });
    return fd;
  }

  close(fd: number): void {
    if (!this.fds.delete(fd)) throw fsFault('EBADF', 'close');
  }

  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number | null): number {
    const f = this.fd(fd, 'read');
    if (!READS.has(f.flags)) throw fsFault('EBADF', 'read');
    if (f.node.kind !== 'file') throw fsFault('EISDIR', 'read');
    const at = position ?? f.pos;
    const n = Math.max(0, Math.min(length, f.node.size - at));
    if (n > 0) f.node.data.copy(buf, offset, at, at + n);
    if (position === null) f.pos = at + n;
    return n;
  }

  write(fd: number, buf: Uint8Array, offset: number, length: number, position?: number | null): number {
    const f = this.fd(fd, 'write');
    if (!WRITES.has(f.flags)) throw fsFault('EBADF', 'write');
    const node = f.node as FileNode;
    const at = f.flags === 'a' ? node.size : (position ?? f.pos);
    const end = at + length;
    this.reserve(node, end);
    if (at > node.size) node.data.fill(0, node.size, at);
    node.data.set(buf.subarray(offset, offset + length), at);
    if (end > node.size) node.size = end;
    node.mtimeMs = this.clock();
    if (position === null || position === undefined || f.flags === 'a') f.pos = end;
    return length;
  }

  fsync(fd: number): void {
    this.fd(fd, 'fsync');
  }

  ftruncate(fd: number, length: number): void {
    const f = this.fd(fd, 'ftruncate');
    if (!WRITES.has(f.flags) || f.node.kind !== 'file') throw fsFault('EINVAL', 'ftruncate');
    const node = f.node;
    if (length > node.size) {
      this.reserve(node, length);
      node.data.fill(0, node.size, length);
    }
    node.size = length;
    node.mtimeMs = this.clock();
  }

  fstat(fd: number): FileStat {
    return statOf(this.fd(fd, 'fstat').node);
  }

  rename(from: string, to: string): void {
    const [fdir, fname] = this.parent(from, 'rename');
    const node = fdir.entries.get(fname);
    if (!node || fname === '') throw fsFault('ENOENT', 'rename', from);
    const [tdir, tname] = this.parent(to, 'rename');
    if (tname === '') throw fsFault('EBUSY', 'rename', to);
    const target = tdir.entries.get(tname);
    if (target === node) return;
    if (node.kind === 'dir' && this.contains(node, tdir)) throw fsFault('EINVAL', 'rename', to);
    if (target) {
      if (node.kind === 'file' && target.kind === 'dir') throw fsFault('EISDIR', 'rename', to);
      if (node.kind === 'dir' && target.kind === 'file') throw fsFault('ENOTDIR', 'rename', to);
      if (target.kind === 'dir' && target.entries.size > 0) throw fsFault('ENOTEMPTY', 'rename', to);
    }
    fdir.entries.delete(fname);
    tdir.entries.set(tname, node);
    fdir.mtimeMs = tdir.mtimeMs = this.clock();
  }

  link(existing: string, newPath: string): void {
    const node = this.lookup(existing, 'link');
    const [dir, name] = this.parent(newPath, 'link');
    if (name === '' || dir.entries.has(name)) throw fsFault('EEXIST', 'link', newPath);
    if (node.kind === 'dir') throw fsFault('EPERM', 'link', existing);
    dir.entries.set(name, node);
    dir.mtimeMs = this.clock();
  }

  unlink(p: string): void {
    const [dir, name] = this.parent(p, 'unlink');
    const node = name === '' ? this.root : dir.entries.get(name);
    if (!node) throw fsFault('ENOENT', 'unlink', p);
    if (node.kind === 'dir') throw fsFault('EISDIR', 'unlink', p);
    dir.entries.delete(name);
    dir.mtimeMs = this.clock();
  }

  rmdir(p: string): void {
    const [dir, name] = this.parent(p, 'rmdir');
    const node = name === '' ? this.root : dir.entries.get(name);
    if (!node) throw fsFault('ENOENT', 'rmdir', p);
    if (node.kind !== 'dir') throw fsFault('ENOTDIR', 'rmdir', p);
    if (node === this.root) throw fsFault('EBUSY', 'rmdir', p);
    if (node.entries.size > 0) throw fsFault('ENOTEMPTY', 'rmdir', p);
    dir.entries.delete(name);
    dir.mtimeMs = this.clock();
  }

  mkdir(p: string, opts?: { recursive?: boolean }): void {
    if (opts?.recursive) {
      let dir = this.root;
      for (const part of parts(p)) {
        const next = dir.entries.get(part);
        if (next && next.kind !== 'dir') throw fsFault('ENOTDIR', 'mkdir', p);
        if (next) {
          dir = next;
          continue;
        }
        const made: DirNode = { kind: 'dir', entries: new Map(), mtimeMs: this.clock() };
        dir.entries.set(part, made);
        dir.mtimeMs = this.clock();
        dir = made;
      }
      return;
    }
    const [dir, name] = this.parent(p, 'mkdir');
    if (name === '' || dir.entries.has(name)) throw fsFault('EEXIST', 'mkdir', p);
    dir.entries.set(name, { kind: 'dir', entries: new Map(), mtimeMs: this.clock() });
    dir.mtimeMs = this.clock();
  }

  readdir(p: string): string[] {
    const node = this.lookup(p, 'scandir');
    if (node.kind !== 'dir') throw fsFault('ENOTDIR', 'scandir', p);
    return [...node.entries.keys()];
  }

  stat(p: string): FileStat {
    return statOf(this.lookup(p, 'stat'));
  }

  access(p: string, _mode: 'read' | 'write'): void {
    this.lookup(p, 'access');
  }

  readFile(p: string): Buffer {
    const node = this.lookup(p, 'open');
    if (node.kind !== 'file') throw fsFault('EISDIR', 'read', p);
    return Buffer.from(node.data.subarray(0, node.size));
  }

  // ----------------------------------------------------------------------------------------------

  private fd(fd: number, syscall: string): OpenFile {
    const f = this.fds.get(fd);
    if (!f) throw fsFault('EBADF', syscall);
    return f;
  }

  private lookup(p: string, syscall: string): Node {
    let node: Node = this.root;
    for (const part of parts(p)) {
      if (node.kind !== 'dir') throw fsFault('ENOTDIR', syscall, p);
      const next = node.entries.get(part);
      if (!next) throw fsFault('ENOENT', syscall, p);
      node = next;
    }
    return node;
  }

  /** The directory holding `p` and the last name of `p` ('' for the root itself). */
  private parent(p: string, syscall: string): [DirNode, string] {
    const ps = parts(p);
    if (ps.length === 0) return [this.root, ''];
    let dir: Node = this.root;
    for (const part of ps.slice(0, -1)) {
      const next: Node | undefined = dir.kind === 'dir' ? dir.entries.get(part) : undefined;
      if (!next) throw fsFault('ENOENT', syscall, p);
      if (next.kind !== 'dir') throw fsFault('ENOTDIR', syscall, p);
      dir = next;
    }
    return [dir as DirNode, ps[ps.length - 1]!];
  }

  private contains(dir: DirNode, maybeInside: DirNode): boolean {
    if (dir === maybeInside) return true;
    for (const n of dir.entries.values()) if (n.kind === 'dir' && this.contains(n, maybeInside)) return true;
    return false;
  }

  private reserve(node: FileNode, size: number): void {
    if (size <= node.data.length) return;
    const grown = Buffer.allocUnsafe(Math.max(size, node.data.length * 2, 256));
    node.data.copy(grown, 0, 0, node.size);
    node.data = grown;
  }
}

function parts(p: string): string[] {
  return path.posix
    .resolve('/', p)
    .split('/')
    .filter((x) => x !== '');
}
