/**
 * The file limits as command-line flags (docs/FORMAT.md, "Limits"): each flag overrides its
 * environment variable, which overrides the default. Every offline command takes them (spec.ts
 * GLOBAL_FLAGS) and the runner applies them after parsing (run.ts), so that one in-process run
 * never inherits another's. No CLI framework here: the fast path loads this module.
 */
import { DEFAULT_READ_LIMITS, LIMIT_NAMES, parseLimit, setReadLimits, type ReadLimits } from '../limits.js';

/** A string flag, in the shape of spec.ts's FlagSpec (not imported: this module loads first). */
interface LimitFlag {
  name: string;
  kind: 'string';
  helpValue: string;
  description: string;
}

export const LIMIT_FLAGS: LimitFlag[] = [
  {
    name: LIMIT_NAMES.maxValueBytes.flag,
    kind: 'string',
    helpValue: 'N',
    description: `Largest key and value of one pair in a file, as JSON, as serve limits a request (default ${DEFAULT_READ_LIMITS.maxValueBytes}; env ${LIMIT_NAMES.maxValueBytes.env}).`,
  },
  {
    name: LIMIT_NAMES.maxDepth.flag,
    kind: 'string',
    helpValue: 'N',
    description: `Deepest nesting of a key or value in a file (default ${DEFAULT_READ_LIMITS.maxDepth}; env ${LIMIT_NAMES.maxDepth.env}).`,
  },
  {
    name: LIMIT_NAMES.maxStateBytes.flag,
    kind: 'string',
    helpValue: 'N',
    description: `Largest snapshot payload, decompressed (default 2G; env ${LIMIT_NAMES.maxStateBytes.env}).`,
  },
];

/** Set the process's read limits from parsed flags (absent flags: the environment's, else the defaults). */
export function applyLimitFlags(flags: Record<string, unknown>): ReadLimits {
  const given: Partial<ReadLimits> = {};
  for (const k of Object.keys(LIMIT_NAMES) as Array<keyof ReadLimits>) {
    const name = LIMIT_NAMES[k].flag;
    const v = flags[name];
    if (typeof v === 'string') given[k] = parseLimit(v, `--${name}`);
  }
  return setReadLimits(given);
}
