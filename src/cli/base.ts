import { format } from 'node:util';
import { Command, Errors, type Interfaces } from '@oclif/core';
import { applyLimitFlags } from './limits.js';
import { oneLine, toToolError, ToolError } from '../tools/errors.js';

/** Exit codes shared by the offline commands (diff follows diff(1): 0 same, 1 different, 2 trouble). */
export const EXIT_OK = 0;
export const EXIT_DIFFERENT = 1;
export const EXIT_ERROR = 2;

function isExit(err: unknown): err is Errors.ExitError {
  return err instanceof Errors.ExitError || (err as { code?: unknown })?.code === 'EEXIT';
}

function exitCodeOf(err: unknown): number {
  if (err instanceof ToolError) return err.exit;
  const e = err as { oclif?: { exit?: unknown } };
  const n = e?.oclif?.exit;
  return typeof n === 'number' && n !== 0 ? n : EXIT_ERROR;
}

/**
 * Base of every raftsnap command: `--json` on all of them, a short JSON error instead of oclif's
 * default (which prints its whole configuration, about 13 KB), and exactly one line on stderr for
 * an error without --json: `raftsnap <command>: <file>: <problem>`. Errors exit 2.
 */
export abstract class RaftsnapCommand extends Command {
  static override enableJsonFlag = true;

  /** Parse, then set the file limits from the flags (src/cli/limits.ts) or the environment. */
  protected override async parse<F extends Record<string, unknown>, B extends Record<string, unknown>, A extends Record<string, unknown>>(
    options?: Interfaces.Input<F, B, A>,
    argv?: string[],
  ): Promise<Interfaces.ParserOutput<F, B, A>> {
    const out = await super.parse(options, argv);
    applyLimitFlags(out.flags as Record<string, unknown>);
    return out;
  }

  protected override toErrorJson(err: unknown): unknown {
    if (err instanceof ToolError) {
      return { error: { message: err.message, code: err.code, file: err.file, problem: err.problem, exit: err.exit } };
    }
    const e = err as { message?: string; code?: string };
    return { error: { message: oneLine(e?.message ?? String(err)), code: e?.code ?? 'BAD_ARGS', exit: exitCodeOf(err) } };
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<unknown> {
    if (isExit(err)) throw err;
    // Errors from below the command (storage, fs) become ToolErrors; oclif's own (flag parsing) stay.
    const known = err instanceof Errors.CLIError ? err : toToolError(err);
    const exit = exitCodeOf(known);
    if (this.jsonEnabled()) {
      this.logJson(this.toErrorJson(known));
    } else {
      process.stderr.write(`raftsnap ${this.id ?? ''}: ${oneLine(known.message)}\n`.replace('raftsnap : ', 'raftsnap: '));
    }
    throw new Errors.ExitError(exit);
  }

  /** Plain, deterministic JSON (oclif's colouring serialiser is slow and theme dependent). */
  override logJson(json: unknown): void {
    process.stdout.write(JSON.stringify(json, null, 2) + '\n');
  }

  /**
   * oclif's `log` goes through console.log, which test runners intercept; write to stdout directly
   * so that in-process runs capture exactly what a real process prints.
   */
  override log(message = '', ...args: unknown[]): void {
    if (this.jsonEnabled()) return;
    process.stdout.write(format(message, ...args) + '\n');
  }

  /** Print a line for people (suppressed under --json). */
  protected say(text: string): void {
    this.log(text);
  }

  /** A warning line on stderr (`warning: ...`), shown with and without --json: stdout stays clean. */
  protected warnLine(text: string): void {
    process.stderr.write(`warning: ${text}\n`);
  }

  /**
   * Output a result and finish with `exit`. With exit 0 the result is returned and oclif prints it
   * under --json; otherwise it is printed here and the command exits with that code.
   */
  protected emit<T>(result: T, render: (r: T) => string, exit = EXIT_OK): T {
    if (exit === EXIT_OK) {
      if (!this.jsonEnabled()) this.log(render(result));
      return result;
    }
    if (this.jsonEnabled()) this.logJson(result);
    else this.log(render(result));
    throw new Errors.ExitError(exit);
  }
}
