/**
 * Typed errors of the storage library. Every error names the file it is about and says what is
 * wrong in one line, so that a command can print `err.message` as is.
 */

export type StorageErrorCode =
  /** The path does not exist. */
  | 'ENOENT'
  /** Permission denied (reading, writing or listing). */
  | 'EACCES'
  /** Not a directory where one was expected, or a directory where a file was expected. */
  | 'ENOTDIR'
  /** The file does not start with the snapshot magic. */
  | 'NOT_SNAPSHOT'
  /** The file ends before the size its header announces. */
  | 'TRUNCATED'
  /** The header checksum does not match (or the header cannot be parsed). */
  | 'BAD_HEADER_CRC'
  /** The payload checksum does not match. */
  | 'BAD_PAYLOAD_CRC'
  /** The payload passes its checksum but cannot be decompressed or decoded (writer bug). */
  | 'BAD_PAYLOAD'
  /** A format version this build does not read (snapshot, WAL segment or meta.json). */
  | 'UNSUPPORTED_VERSION'
  /**
   * A file declares more than a reader accepts (docs/FORMAT.md, "Limits"): a length beyond the
   * bytes that remain, a payload that decompresses to more than its header declares, a key or value
   * larger or nested deeper than `serve` would ever have accepted, a header beyond a limit. Refused
   * before anything is allocated for it; nothing is changed on disk.
   */
  | 'LIMIT'
  /** A damaged WAL record that is not a torn tail, or a damaged WAL segment header. */
  | 'CORRUPT_WAL'
  /** Log entries are missing between the snapshot and the WAL (or inside the WAL above the snapshot). */
  | 'LOG_GAP'
  /** The last hard state commits an index that neither the recovered log nor the snapshot holds. */
  | 'COMMIT_BEYOND_LOG'
  /**
   * Fail-stop: an earlier write, fsync, rename or open of this storage failed, so nothing is known
   * about what is durable; every later call throws this (naming the first failure) and nothing is
   * written again.
   */
  | 'STOPPED'
  /** Another live process holds the data directory lock. */
  | 'LOCKED'
  /** The directory is not a raftsnap data directory (no or unreadable meta.json). */
  | 'NOT_DATA_DIR'
  /** The data directory belongs to another node id. */
  | 'NODE_MISMATCH'
  /** A path that must not exist (or must be empty) does. */
  | 'EXISTS'
  /** Misuse of the API (wrong mode, closed storage, invalid argument). */
  | 'INVALID'
  /** Any other I/O failure. */
  | 'IO';

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  /** The file or directory concerned. */
  readonly file: string;
  /** Byte offset of the problem inside `file`, when it has one. */
  readonly offset?: number;
  /** The errno name of the file-system failure behind it (`EIO`, `ENOSPC`, `EROFS`, ...), when there is one. */
  readonly errno?: string;

  constructor(code: StorageErrorCode, file: string, problem: string, offset?: number, cause?: unknown) {
    super(`${file}: ${problem}${offset !== undefined ? ` (at offset ${offset})` : ''}`, cause !== undefined ? { cause } : undefined);
    this.name = 'StorageError';
    this.code = code;
    this.file = file;
    if (offset !== undefined) this.offset = offset;
    const errno = cause instanceof StorageError ? cause.errno : (cause as NodeJS.ErrnoException | undefined)?.code;
    if (typeof errno === 'string' && /^E[A-Z0-9]+$/.test(errno)) this.errno = errno;
  }
}

/**
 * The error every call of a stopped storage throws: it names the first failure (file, operation,
 * errno) and carries it as `cause`.
 */
export function stoppedError(first: StorageError): StorageError {
  const problem = first.message.startsWith(`${first.file}: `) ? first.message.slice(first.file.length + 2) : first.message;
  return new StorageError('STOPPED', first.file, `storage stopped after an earlier failure, nothing more is written: ${problem}`, undefined, first);
}

export function isStorageError(e: unknown, code?: StorageErrorCode): e is StorageError {
  return e instanceof StorageError && (code === undefined || e.code === code);
}

/** Turn a Node.js fs error into a StorageError naming `file`; StorageErrors pass through. */
export function fsError(err: unknown, file: string, action: string): StorageError {
  if (err instanceof StorageError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return new StorageError('ENOENT', file, `no such file or directory (${action})`, undefined, err);
    case 'EACCES':
    case 'EPERM':
      return new StorageError('EACCES', file, `permission denied (${action})`, undefined, err);
    case 'ENOTDIR':
      return new StorageError('ENOTDIR', file, `not a directory (${action})`, undefined, err);
    case 'EISDIR':
      return new StorageError('ENOTDIR', file, `is a directory, expected a file (${action})`, undefined, err);
    case 'EEXIST':
      return new StorageError('EXISTS', file, `already exists (${action})`, undefined, err);
    // One line without Node's syscall and temporary path ("EROFS: ..., open 'x.tmp-123-1'").
    case 'EROFS':
      return new StorageError('IO', file, `read-only file system (${action})`, undefined, err);
    case 'ENOSPC':
      return new StorageError('IO', file, `no space left on device (${action})`, undefined, err);
    default: {
      const msg = err instanceof Error ? err.message : String(err);
      return new StorageError('IO', file, `${action} failed: ${msg}`, undefined, err);
    }
  }
}
