/**
 * oclif's `command_not_found` hook (runs when oclif itself is asked for an unknown command, e.g.
 * in-process tests): the same one line and exit 2 as the fast path (src/cli/main.ts).
 */
import { Errors } from '@oclif/core';
import { unknownCommand } from './main.js';

export default async function notFound(opts: { id: string }): Promise<never> {
  process.stderr.write(unknownCommand(opts.id.split(':')[0]!) + '\n');
  throw new Errors.ExitError(2);
}
