/**
 * Limits on input, in one place: what `serve` accepts from the wire (docs/SERVE.md, "Limits on
 * input") and what the storage library accepts from a file (docs/FORMAT.md, "Limits"). Where a
 * file limit means the same thing as a wire limit it is the same number: a key or value that could
 * never have entered the log through `serve` is refused in a snapshot or WAL file too.
 *
 * The file limits can be raised by an operator who knows better: each has an environment variable
 * (read by every command and by `serve`) and the offline commands have a flag of the same name.
 */

/** Characters in one input line of `serve` (a UTF-16 code unit each; bytes, for ASCII JSON). */
export const MAX_LINE_CHARS = 32 * 1024 * 1024;
/** Nesting depth of a whole message: the envelope is 1, its body 2. */
export const MAX_MESSAGE_DEPTH = 128;
/** Nesting depth of a client key or value (a scalar is 0, `[1]` is 1). */
export const MAX_VALUE_DEPTH = 64;
/** Characters of a client request's key and values together, as JSON (as the log stores them). */
export const MAX_VALUE_CHARS = 64 * 1024;

/** The fields of a lin-kv request (and of the command a log entry holds) that carry keys and values. */
export const VALUE_FIELDS = ['key', 'value', 'from', 'to'] as const;

/** Limits applied when a file is read. */
export interface ReadLimits {
  /**
   * Key and value of one pair of a snapshot (or the key and values of one logged command)
   * together, as JSON text, counted as serve counts them (MAX_VALUE_CHARS; characters, which are
   * bytes for ASCII).
   */
  maxValueBytes: number;
  /** Nesting depth of one key or value (MAX_VALUE_DEPTH). */
  maxDepth: number;
  /** Decompressed size of a snapshot payload (its header's rawSize). */
  maxStateBytes: number;
}

/** Default of `maxStateBytes`: 2 GiB of raw CBOR, several times that as a state in memory (a 24 GiB, 2-core machine). */
export const DEFAULT_MAX_STATE_BYTES = 2 * 1024 * 1024 * 1024;

export const DEFAULT_READ_LIMITS: Readonly<ReadLimits> = Object.freeze({
  maxValueBytes: MAX_VALUE_CHARS,
  maxDepth: MAX_VALUE_DEPTH,
  maxStateBytes: DEFAULT_MAX_STATE_BYTES,
});

/** Environment variable and command-line flag of each file limit. */
export const LIMIT_NAMES: Readonly<Record<keyof ReadLimits, { env: string; flag: string }>> = Object.freeze({
  maxValueBytes: { env: 'RAFTSNAP_MAX_VALUE_BYTES', flag: 'max-value-bytes' },
  maxDepth: { env: 'RAFTSNAP_MAX_DEPTH', flag: 'max-depth' },
  maxStateBytes: { env: 'RAFTSNAP_MAX_STATE_BYTES', flag: 'max-state-bytes' },
});

/** Largest value any limit may be set to (a safe integer of bytes far beyond any machine). */
const MAX_SETTING = 2 ** 50;

/** A limit given a value that is not a positive integer. */
export class LimitSettingError extends Error {
  override readonly name = 'LimitSettingError';
  readonly code = 'BAD_ARGS';
}

/** `text` as a limit: a positive integer, with an optional K/M/G suffix (powers of 1024). */
export function parseLimit(text: string, what: string): number {
  const m = /^\s*(\d+)\s*([kKmMgG]?)(i?[bB])?\s*$/.exec(text);
  const mult = m ? ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as Record<string, number>)[m[2]!.toLowerCase()]! : 0;
  const n = m ? Number(m[1]) * mult : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_SETTING) {
    throw new LimitSettingError(`${what}: "${text}" is not a positive whole number (e.g. 65536, 64K, 2G)`);
  }
  return n;
}

/** The defaults, with each limit whose environment variable is set replaced by it. */
export function limitsFromEnv(env: NodeJS.ProcessEnv = process.env): ReadLimits {
  const out: ReadLimits = { ...DEFAULT_READ_LIMITS };
  for (const k of Object.keys(LIMIT_NAMES) as Array<keyof ReadLimits>) {
    const v = env[LIMIT_NAMES[k].env];
    if (v !== undefined && v !== '') out[k] = parseLimit(v, LIMIT_NAMES[k].env);
  }
  return out;
}

let current: ReadLimits | null = null;

/** The limits in force in this process: set by `setReadLimits`, else the environment's, else the defaults. */
export function readLimits(): ReadLimits {
  if (current === null) current = limitsFromEnv();
  return current;
}

/** Set the limits of this process (a command's flags over the environment); null: back to the environment's. */
export function setReadLimits(l: Partial<ReadLimits> | null): ReadLimits {
  current = l === null ? null : { ...limitsFromEnv(), ...definedOnly(l) };
  return readLimits();
}

function definedOnly(l: Partial<ReadLimits>): Partial<ReadLimits> {
  const out: Partial<ReadLimits> = {};
  for (const k of Object.keys(l) as Array<keyof ReadLimits>) if (l[k] !== undefined) out[k] = l[k];
  return out;
}

/**
 * Bytes of CBOR that one key or value within the limits can take at most: a JSON text of n
 * characters is at most 3n + 16 bytes of CBOR (a UTF-16 unit is at most 3 bytes of UTF-8; a
 * number of at least one character is at most 9 bytes). Checked on the CBOR heads before anything
 * is allocated; the exact JSON size is checked once the value is decoded.
 */
export function maxItemCborBytes(l: ReadLimits): number {
  return 3 * l.maxValueBytes + 16;
}

/**
 * Bytes of CBOR below which a key and a value together are always within `maxValueBytes` as JSON
 * (a CBOR byte becomes at most 6 characters of JSON, `\u0001` or `false,`): larger pairs get the
 * exact JSON measure.
 */
export function surelySmallPairBytes(l: ReadLimits): number {
  return Math.floor((l.maxValueBytes - 4) / 6);
}

/**
 * Largest snapshot file whose payload can be within `maxStateBytes`: zstd adds at most about
 * 1/128 to incompressible data, plus the header (at most 1 MiB) and the frame's own overhead.
 * A leader's InstallSnapshot that announces a larger file is refused before a byte is stored.
 */
export function maxSnapshotFileBytes(l: ReadLimits): number {
  return l.maxStateBytes + Math.ceil(l.maxStateBytes / 128) + 2 * 1024 * 1024;
}
