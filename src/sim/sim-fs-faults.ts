/**
 * Fault injection and crash points of SimFs (sim-fs.ts): the call kinds, the trace entry, the
 * fault rules and how a call is matched against them, and the SimCrash that stops a "process".
 */
import type { OpenFlags } from '../storage/fs.js';
import type { Random } from './random.js';
import { absPath } from './sim-fs-model.js';

/** Every call of the FileSystem interface. */
export type CallKind =
  | 'open'
  | 'close'
  | 'read'
  | 'write'
  | 'fsync'
  | 'ftruncate'
  | 'fstat'
  | 'rename'
  | 'link'
  | 'unlink'
  | 'rmdir'
  | 'mkdir'
  | 'readdir'
  | 'stat'
  | 'access'
  | 'readFile';

/** Calls that may change state (counted, traced, crash points; EROFS when read-only). `open` counts only with flags other than 'r'. */
export const MUTATING_KINDS: ReadonlySet<CallKind> = new Set<CallKind>(['open', 'write', 'fsync', 'ftruncate', 'rename', 'link', 'unlink', 'rmdir', 'mkdir']);

/** One mutating call, as recorded in `SimFs.trace`. */
export interface TraceEntry {
  /** 1-based number of the call among mutating calls (`SimFs.calls` after it started). */
  n: number;
  kind: CallKind;
  /** Absolute normalized path (of the fd's file for fd calls; the source for rename and link). */
  path: string;
  /** Target of rename and link. */
  to?: string;
  fd?: number;
  flags?: OpenFlags;
  /** write: bytes asked for; ftruncate: the new length. */
  bytes?: number;
  /** write: the position asked for (absent: the current one). */
  position?: number;
  /** The errno of an injected failure (fault rule, read-only switch or capacity limit); other errors are not recorded. */
  error?: string;
}

export type FaultCode = 'EIO' | 'ENOSPC' | 'EROFS';

/**
 * An injected fault. A call matches when its kind is in `kind` (default: the mutating kinds) and
 * its path (either path of rename and link) matches `path`. The rule fires on matching calls from
 * the `nth` one on (1-based, counted from when the rule was added; default 1), at most `times`
 * times (default 1 when `nth` is given, otherwise unlimited), each with `probability` (default 1,
 * drawn from the SimFs's Random).
 */
export interface FaultRule {
  kind?: CallKind | readonly CallKind[];
  /** A string matches that path and everything under it; a RegExp is tested on the absolute path. */
  path?: string | RegExp;
  nth?: number;
  times?: number;
  probability?: number;
  /** The errno to fail with (default 'EIO'). */
  error?: FaultCode;
  /** Writes only: instead of failing, write a random strict prefix of the bytes and return its length. */
  shortWrite?: boolean;
}

export interface FaultHandle {
  readonly rule: FaultRule;
  /** Matching calls seen so far. */
  readonly seen: number;
  /** Times the rule fired. */
  readonly fired: number;
  remove(): void;
}

export interface CapacityLimit {
  /** Sum of the current sizes of live files (linked or open); a write past it fails ENOSPC. */
  bytes?: number;
  /** Live files and directories (the root included); creating one more fails ENOSPC. */
  inodes?: number;
  /** The write that crosses `bytes` writes what fits and returns that short count (default true); false: it fails whole. */
  shortWrites?: boolean;
}

/** Thrown by the call at which a crash was armed (and by every call after it until `crash()`). */
export class SimCrash extends Error {
  constructor(
    readonly call: number,
    readonly kind: CallKind,
    readonly path: string,
  ) {
    super(`simulated crash at file-system call ${call} (${kind} ${path})`);
    this.name = 'SimCrash';
  }
}

/** True when `e` is a SimCrash or wraps one through `cause` (fsError wraps it in a StorageError). */
export function isSimCrash(e: unknown): boolean {
  let x: unknown = e;
  for (let i = 0; i < 8 && x instanceof Error; i++, x = x.cause) if (x instanceof SimCrash) return true;
  return false;
}

interface Fault {
  rule: FaultRule;
  kinds: ReadonlySet<CallKind> | null;
  seen: number;
  fired: number;
}

/** The fault rules of one SimFs, in the order they were added (the first that fires wins). */
export class FaultSet {
  private rules: Fault[] = [];

  add(rule: FaultRule): FaultHandle {
    const kinds = rule.kind === undefined ? null : new Set<CallKind>(typeof rule.kind === 'string' ? [rule.kind] : rule.kind);
    if (rule.shortWrite && (kinds === null || kinds.size !== 1 || !kinds.has('write'))) throw new RangeError("a shortWrite fault needs kind: 'write'");
    const f: Fault = { rule, kinds, seen: 0, fired: 0 };
    this.rules.push(f);
    return {
      rule,
      get seen() {
        return f.seen;
      },
      get fired() {
        return f.fired;
      },
      remove: () => {
        this.rules = this.rules.filter((x) => x !== f);
      },
    };
  }

  clear(): void {
    this.rules = [];
  }

  /** The fault this call gets (counting it against every rule it matches up to the one that fires), or null. */
  match(kind: CallKind, mutating: boolean, abs: string, to: string | undefined, rng: Random): FaultCode | 'short' | null {
    for (const f of this.rules) {
      if (f.kinds === null ? !mutating : !f.kinds.has(kind)) continue;
      const rp = f.rule.path;
      if (rp !== undefined && !pathMatches(rp, abs) && (to === undefined || !pathMatches(rp, to))) continue;
      f.seen++;
      if (f.seen < (f.rule.nth ?? 1)) continue;
      if (f.fired >= (f.rule.times ?? (f.rule.nth !== undefined ? 1 : Infinity))) continue;
      if (f.rule.probability !== undefined && !rng.chance(f.rule.probability)) continue;
      f.fired++;
      return f.rule.shortWrite ? 'short' : (f.rule.error ?? 'EIO');
    }
    return null;
  }
}

function pathMatches(rule: string | RegExp, abs: string): boolean {
  if (typeof rule !== 'string') {
    rule.lastIndex = 0; // a /g or /y RegExp keeps state between tests
    return rule.test(abs);
  }
  const r = absPath(rule);
  return abs === r || abs.startsWith(r === '/' ? '/' : r + '/');
}
