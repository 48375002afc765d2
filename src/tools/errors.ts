/**
 * Errors of the offline tools. Every failure an operator can meet carries the file it is about
 * (as the user spelled it) and one line saying what is wrong with it; the commands print exactly
 * that line, or `{"error": {...}}` under --json, and exit 2.
 */
export type ToolErrorCode =
  | 'ENOENT' // path does not exist
  | 'EACCES' // no permission to read or write
  | 'ENOTDIR' // a file where a directory is expected (or the reverse)
  | 'NOT_SNAPSHOT' // not a raftsnap snapshot file (bad magic)
  | 'UNSUPPORTED_VERSION'
  | 'CORRUPT' // checksum failure, truncation, undecodable payload
  | 'NOT_DATA_DIR' // a directory that is not a raftsnap data directory
  | 'LOCKED' // a live node holds the directory
  | 'EXISTS' // refusing to overwrite
  | 'NOT_EMPTY' // restore target is not empty
  | 'BAD_INDEX' // --index outside what the directory can produce
  | 'REFUSED' // an output path inside a data directory, a directory that is not raftsnap's
  | 'BAD_ARGS'
  | 'INTERNAL';

export class ToolError extends Error {
  override readonly name = 'ToolError';
  constructor(
    readonly code: ToolErrorCode | string,
    /** The file or directory the problem is about, as given by the user; null when none. */
    readonly file: string | null,
    /** What is wrong, without the file name. */
    readonly problem: string,
    readonly exit = 2,
  ) {
    super(file ? `${file}: ${problem}` : problem);
  }
}

interface ErrnoLike {
  code?: unknown;
  path?: unknown;
  message?: unknown;
  file?: unknown;
}

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory, expected a file',
  ENOTEMPTY: 'directory not empty',
  EEXIST: 'already exists',
  ELOOP: 'too many symbolic links',
  EMFILE: 'too many open files',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
};

/**
 * Turn anything thrown below a command into a ToolError: Node's errno errors (ENOENT, EACCES...),
 * the storage library's errors (which carry a code and usually a path), and plain Errors.
 * `fallbackFile` names the input when the error itself does not.
 */
export function toToolError(err: unknown, fallbackFile: string | null = null): ToolError {
  if (err instanceof ToolError) return err;
  const e = (err ?? {}) as ErrnoLike;
  const code = typeof e.code === 'string' ? e.code : 'INTERNAL';
  const file =
    typeof e.file === 'string' ? e.file : typeof e.path === 'string' ? e.path : fallbackFile;
  let message = typeof e.message === 'string' ? e.message : String(err);
  if (code in ERRNO_TEXT && typeof e.path === 'string') {
    // Node's own message repeats the syscall and path ("ENOENT: no such file..., open 'x'").
    message = ERRNO_TEXT[code]!;
  }
  message = oneLine(message);
  // Do not print the file twice when the message already starts with it.
  if (file && (message.startsWith(`${file}: `) || message.startsWith(`${file} `))) {
    message = message.slice(file.length).replace(/^:?\s+/, '');
  }
  return new ToolError(code, file, message);
}

/** Collapse a multi-line message into one line. */
export function oneLine(s: string): string {
  return s
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .join('; ');
}

