/**
 * The one door between the storage library and a file system. Every rule of src/storage (WAL,
 * snapshots, data directory, recovery) reaches files only through a `FileSystem`, injected:
 * `nodeFs` (src/storage/node-fs.ts) in `serve` and the offline tools, an in-memory one for `serve`
 * without a directory, and the simulator's `SimFs` (src/sim/sim-fs.ts) with page-cache semantics,
 * crashes and injected faults.
 *
 * Calls are synchronous (the storage library is; `fsyncAsync` is the one exception), and fail by throwing an Error whose `code` is
 * the errno name Node.js uses (`ENOENT`, `EEXIST`, `ENOTDIR`, `EISDIR`, `ENOTEMPTY`, `EACCES`,
 * `EIO`, `ENOSPC`, `EROFS`, `EBADF`, ...), so that `fsError` (errors.ts) turns it into a
 * StorageError naming the file.
 *
 * Durability contract (what SimFs models and what callers must assume of a real disk):
 *  - bytes written to a file are volatile until `fsync` of that file returns;
 *  - creating, renaming, linking or unlinking a name is volatile until `fsync` of the directory
 *    that holds the name returns (open a directory with flags 'r' to fsync it);
 *  - after a failed `fsync` nothing is known about the file's unsynced bytes (never retry it).
 */

/** How a file is opened, as Node.js spells the flags. */
export type OpenFlags =
  /** read only; the file must exist (also: a directory, to fsync it) */
  | 'r'
  /** read and write; the file must exist */
  | 'r+'
  /** append; created when missing */
  | 'a'
  /** write; created exclusively (EEXIST when it exists) */
  | 'wx'
  /** write; created or truncated */
  | 'w';

export interface FileStat {
  size: number;
  isFile(): boolean;
  isDirectory(): boolean;
  /** Modification time, ms since the epoch (0 where the file system keeps none). */
  mtimeMs: number;
}

export interface FileSystem {
  /**
   * The process id temporary names carry (`tempName`; default `process.pid`). A simulated file
   * system gives a fixed one, so that a seed's run names the same files in every process.
   */
  readonly tempPid?: number;
  open(path: string, flags: OpenFlags, mode?: number): number;
  close(fd: number): void;
  /** Read up to `length` bytes into `buf` at `offset`, from file position `position` (null: the current one). Returns the count read (0 at the end). */
  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number | null): number;
  /** Write `length` bytes of `buf` from `offset`, at file position `position` (null or absent: the current one; always the end for 'a'). Returns the count written (may be short). */
  write(fd: number, buf: Uint8Array, offset: number, length: number, position?: number | null): number;
  fsync(fd: number): void;
  /**
   * fsync off the caller's thread (the node's event loop keeps running meanwhile); resolves when
   * the file's bytes written before the call are durable, rejects as `fsync` throws. Optional: a
   * file system without it (MemFs, the offline tools) is used synchronously. While it is in flight
   * the caller must not close `fd`.
   */
  fsyncAsync?(fd: number): Promise<void>;
  ftruncate(fd: number, length: number): void;
  fstat(fd: number): FileStat;
  /** Atomically replace `to` with `from` (same file system). */
  rename(from: string, to: string): void;
  /** A second name for an existing file; EEXIST when `newPath` exists. */
  link(existing: string, newPath: string): void;
  unlink(path: string): void;
  /** Remove an empty directory. */
  rmdir(path: string): void;
  mkdir(path: string, opts?: { recursive?: boolean }): void;
  /** Names in a directory (not sorted). */
  readdir(path: string): string[];
  /** Throws ENOENT when the path does not exist. */
  stat(path: string): FileStat;
  /** Throws EACCES when the access is not allowed (`write`: create, rename and delete inside a directory). */
  access(path: string, mode: 'read' | 'write'): void;
  /** The whole file (open + read + close, in one call for speed). */
  readFile(path: string): Buffer;
}

/** Throw this from a FileSystem: an Error with the errno name as `code`, as Node.js does. */
export function fsFault(code: string, syscall: string, path?: string): NodeJS.ErrnoException {
  const e = new Error(`${code}: ${syscall}${path !== undefined ? ` '${path}'` : ''}`) as NodeJS.ErrnoException;
  e.code = code;
  e.syscall = syscall;
  if (path !== undefined) e.path = path;
  return e;
}
