/**
 * The file limits as command-line flags (docs/FORMAT.md, "Limits"): each flag overrides its
 * environment variable, which overrides the default. Applied by RaftsnapCommand.parse for every
 * command (a command without the flags gets the environment's limits), so that one in-process run
 * never inherits another's.
 */
import { Flags } from '@oclif/core';
import { DEFAULT_READ_LIMITS, LIMIT_NAMES, parseLimit, setReadLimits, type ReadLimits } from '../limits.js';

const GROUP = 'LIMITS';

export const limitFlags = {
  [LIMIT_NAMES.maxValueBytes.flag]: Flags.string({
    description: `largest key and value of one pair as JSON, as serve limits a request (default ${DEFAULT_READ_LIMITS.maxValueBytes}; env ${LIMIT_NAMES.maxValueBytes.env})`,
    helpGroup: GROUP,
  }),
  [LIMIT_NAMES.maxDepth.flag]: Flags.string({
    description: `deepest nesting of a key or value (default ${DEFAULT_READ_LIMITS.maxDepth}; env ${LIMIT_NAMES.maxDepth.env})`,
    helpGroup: GROUP,
  }),
  [LIMIT_NAMES.maxStateBytes.flag]: Flags.string({
    description: `largest snapshot payload, decompressed (default 2G; env ${LIMIT_NAMES.maxStateBytes.env})`,
    helpGroup: GROUP,
  }),
};

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
