/**
 * The fast path of the offline commands: bin/run.js loads this module for every command line but
 * `serve` and --help, so that a command spends its time on its work rather than on loading the
 * CLI framework (oclif, which is loaded only for help, completion and the commands it runs itself).
 */
import fs from 'node:fs';
import { closest } from './parse.js';
import { runSpec } from './run.js';
import type { CommandSpec } from './spec.js';
import { readVersion } from './version-info.js';

type Loader = () => Promise<{ default: CommandSpec }>;

/** The commands this path runs, loaded on demand. */
export const FAST_COMMANDS: Record<string, Loader> = {
  inspect: () => import('./commands/inspect.js'),
  snapshot: () => import('./commands/snapshot.js'),
  compact: () => import('./commands/compact.js'),
  restore: () => import('./commands/restore.js'),
  diff: () => import('./commands/diff.js'),
  repair: () => import('./commands/repair.js'),
  version: () => import('./commands/version.js'),
  dump: () => import('./commands/dump.js'),
  hash: () => import('./commands/hash.js'),
};

/** Commands of plugins that oclif runs. */
export const PLUGIN_COMMANDS = ['autocomplete', 'help'];

/** Commands oclif runs: those in dist/commands/ that this path does not (serve, cluster, ...), and the plugins'. */
export function oclifCommands(): string[] {
  let names: string[] = [];
  try {
    names = fs.readdirSync(new URL('../commands/', import.meta.url)).filter((n) => n.endsWith('.js')).map((n) => n.slice(0, -3));
  } catch {
    // no commands directory: only the fast ones
  }
  return [...names.filter((n) => !Object.hasOwn(FAST_COMMANDS, n)), ...PLUGIN_COMMANDS];
}

/** Why a command line is unknown, with the nearest command name: one line. */
export function unknownCommand(word: string): string {
  const near = closest(word, [...Object.keys(FAST_COMMANDS), ...oclifCommands()]);
  return `raftsnap: unknown command "${word}"${near ? `; did you mean "raftsnap ${near}"?` : ''} (raftsnap --help lists the commands)`;
}

/** Runs the command line and returns its exit code, or 'oclif' when oclif should take it. */
export async function main(argv: readonly string[]): Promise<number | 'oclif'> {
  const first = argv[0];
  if (first === undefined || first === '--help' || first === '-h') return 'oclif';
  if (first === '--version' || first === '-v') {
    process.stdout.write(readVersion().line + '\n');
    return 0;
  }
  const load = Object.hasOwn(FAST_COMMANDS, first) ? FAST_COMMANDS[first] : undefined;
  if (load) {
    const rest = argv.slice(1);
    const end = rest.indexOf('--');
    const words = end >= 0 ? rest.slice(0, end) : rest;
    if (words.includes('--help') || words.includes('-h')) return 'oclif';
    return runSpec((await load()).default, rest);
  }
  if (first.startsWith('-') || oclifCommands().includes(first)) return 'oclif';
  process.stderr.write(unknownCommand(first) + '\n');
  return 2;
}
