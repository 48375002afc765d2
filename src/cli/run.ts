/**
 * Runs an offline command from its spec: parse, set the output style, run, and turn any error
 * into exactly one line on stderr (`raftsnap <command>: <file>: <problem>`) or `{"error": {...}}`
 * on stdout under --json. Returns the exit code (0 ok, 1 "found a difference / damage", 2 error).
 */
import path from 'node:path';
import { ToolError, toToolError } from '../tools/errors.js';
import { applyLimitFlags } from './limits.js';
import { parseArgv } from './parse.js';
import type { CommandSpec, Io } from './spec.js';
import { setStyle } from './table.js';

export const EXIT_OK = 0;
export const EXIT_DIFFERENT = 1;
export const EXIT_ERROR = 2;

/** Colour only on a terminal, and never with NO_COLOR (any value, https://no-color.org), --no-color or TERM=dumb. */
export function wantColor(noColorFlag: boolean, env: NodeJS.ProcessEnv = process.env, tty = process.stdout.isTTY === true): boolean {
  if (noColorFlag || (env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '') || env['TERM'] === 'dumb') return false;
  return tty;
}

/** Errors of a data directory that `raftsnap repair` deals with. */
const DAMAGE_CODES = new Set(['CORRUPT_WAL', 'LOG_GAP', 'COMMIT_BEYOND_LOG']);

export function errorJson(err: ToolError): unknown {
  return { error: { message: err.message, code: err.code, file: err.file, problem: err.problem, exit: err.exit } };
}

let epipeQuiet = false;

/**
 * A reader of stdout that went away (`inspect DIR --records | head`) ends the command quietly, as
 * `yes | head` does, instead of an unhandled 'error' event printing a stack trace.
 */
function quietOnEpipe(): void {
  if (epipeQuiet) return;
  epipeQuiet = true;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}

/** The exit code, after printing; `io` defaults to this process's stdout and stderr. */
export async function runSpec(spec: CommandSpec, argv: readonly string[], io?: Partial<Io>): Promise<number> {
  if (!io?.stdout) quietOnEpipe();
  const out = io?.stdout ?? ((s: string) => void process.stdout.write(s));
  const err = io?.stderr ?? ((s: string) => void process.stderr.write(s));
  // --json is known before parsing, so that a usage error is JSON too.
  const json = argv.includes('--json');
  let given: string[] = [];
  const fail = (e: unknown): number => {
    let t = toToolError(e);
    // The argument (a data directory) the damage is in.
    const dirArg = given.find((a) => t.file !== null && !path.relative(path.resolve(a), path.resolve(t.file)).startsWith('..'));
    if (DAMAGE_CODES.has(t.code) && dirArg !== undefined && spec.id !== 'repair') {
      // Damage recovery refuses to guess about: say where the way out is (it never runs on its own).
      t = new ToolError(t.code, t.file, `${t.problem}; \`raftsnap repair ${dirArg}\` shows what a repair would keep and lose`, t.exit);
    }
    if (json) out(JSON.stringify(errorJson(t), null, 2) + '\n');
    else {
      const hint = usageError ? `; see raftsnap ${spec.id} --help` : '';
      err(`raftsnap ${spec.id}: ${t.message}${hint}\n`);
    }
    return t.exit;
  };
  let parsed;
  let usageError = false;
  try {
    usageError = true; // what fails here is the command line
    parsed = parseArgv(spec, argv);
    usageError = false;
    // The file limits of this run: its flags, else the environment (src/cli/limits.ts).
    applyLimitFlags(parsed.flags);
  } catch (e) {
    return fail(e);
  }
  given = Object.values(parsed.args).filter((a): a is string => a !== undefined);
  setStyle({
    color: wantColor(parsed.flags['no-color'] === true),
    columns: process.stdout.isTTY === true && !json ? (process.stdout.columns ?? null) : null,
  });
  try {
    return await spec.run({ args: parsed.args, rest: parsed.rest, flags: parsed.flags, io: { stdout: out, stderr: err, json } });
  } catch (e) {
    return fail(e);
  }
}
