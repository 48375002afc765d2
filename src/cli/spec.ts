/**
 * What an offline command is, without the CLI framework: its arguments and flags, its help text
 * and examples, and its `run`. The same spec is run by the fast path (src/cli/main.ts, which
 * bin/run.js loads for every command but --help, so that a command spends its time on its work)
 * and, wrapped as an oclif command (src/cli/oclif.ts), by oclif for --help, completion and the
 * in-process tests. Parsing is src/cli/parse.ts in both cases.
 */

import { LIMIT_FLAGS } from './limits.js';

export interface ArgSpec {
  name: string;
  description: string;
  required?: boolean;
  /** The last argument only: it takes every word left as well (RunInput.rest); `hash A B C`. */
  variadic?: boolean;
}

export interface FlagSpec {
  name: string;
  char?: string;
  kind: 'boolean' | 'integer' | 'string';
  description: string;
  /** Value when the flag is not given (booleans: false). */
  default?: number | string;
  /** Integers: smallest value accepted. */
  min?: number;
  /** Strings: the values accepted. */
  options?: string[];
  /** Flags this one cannot be given with. */
  exclusive?: string[];
  /** Flags this one needs. */
  dependsOn?: string[];
  /** The flag must be given (`restore --data-dir`). */
  required?: boolean;
  /** Name of the value in --help (`--out FILE`). */
  helpValue?: string;
}

export type FlagValues = Record<string, string | number | boolean | undefined>;

/** Where a command writes, and how (set by the runner). */
export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
  /** --json: one JSON document on stdout (or NDJSON where the command says so). */
  json: boolean;
}

export interface RunInput {
  args: Record<string, string | undefined>;
  /** Words after the last argument, when it is variadic. */
  rest?: string[];
  flags: FlagValues;
  io: Io;
}

export interface CommandSpec {
  id: string;
  summary: string;
  /** Paragraphs (see text.ts `prose`). */
  description: string;
  /** Command lines after `raftsnap ` (a test runs each of them). */
  examples: string[];
  args: ArgSpec[];
  flags: FlagSpec[];
  /** Returns the exit code. Throws ToolError (one line, exit 2 unless it says otherwise). */
  run(input: RunInput): Promise<number> | number;
}

/** Flags every offline command takes. */
export const GLOBAL_FLAGS: FlagSpec[] = [
  { name: 'json', kind: 'boolean', description: 'Format output as JSON (errors too: {"error": {...}}).' },
  { name: 'no-color', kind: 'boolean', description: 'No colour in tables (also when NO_COLOR is set, or stdout is not a terminal).' },
  // The limits on what a file may hold (src/cli/limits.ts; docs/FORMAT.md, "Limits").
  ...LIMIT_FLAGS,
];

/** Print a result: JSON under --json, else the rendering; returns `exit`. */
export function emit<T>(io: Io, result: T, render: (r: T) => string, exit = 0): number {
  if (io.json) io.stdout(JSON.stringify(result, null, 2) + '\n');
  else io.stdout(render(result) + '\n');
  return exit;
}

/** A `warning: ...` line on stderr, with and without --json (stdout stays clean). */
export function warn(io: Io, text: string): void {
  io.stderr(`warning: ${text}\n`);
}
