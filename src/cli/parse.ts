/**
 * Command-line parsing of the offline commands, with errors that fit on one line and say what to
 * do: `missing argument <path> (snapshot file or data directory)`, `unknown flag --verfy (did you
 * mean --verify?)`, `--top: expected an integer, got "abc"`, `--retain: must be at least 1, got 0`.
 * A flag that takes a value takes the next word whatever it looks like (`--top -1` is a value,
 * refused by its own rule, never "ambiguous").
 */
import { ToolError } from '../tools/errors.js';
import { GLOBAL_FLAGS, type CommandSpec, type FlagSpec, type FlagValues } from './spec.js';

/** Edit distance (insertions, deletions, substitutions, adjacent swaps). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) d.push([i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest of `names` to `word` when it is close enough to be a typo (or a prefix), else null. */
export function closest(word: string, names: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const n of names) {
    const dist = n.startsWith(word) && word.length >= 2 ? 0.5 : editDistance(word, n);
    if (dist < bestD) {
      bestD = dist;
      best = n;
    }
  }
  return best !== null && bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : null;
}

function usage(message: string): ToolError {
  return new ToolError('BAD_ARGS', null, message);
}

export interface Parsed {
  args: Record<string, string | undefined>;
  /** Words after the last argument when it is variadic. */
  rest: string[];
  flags: FlagValues;
}

/** Parse `argv` (the words after the command name) against a command's spec. */
export function parseArgv(spec: CommandSpec, argv: readonly string[]): Parsed {
  const all: FlagSpec[] = [...spec.flags, ...GLOBAL_FLAGS];
  const byName = new Map(all.map((f) => [f.name, f]));
  const byChar = new Map(all.filter((f) => f.char).map((f) => [f.char!, f]));
  const given = new Map<string, string | boolean>();
  const positional: string[] = [];
  let rest = false;
  for (let i = 0; i < argv.length; i++) {
    const w = argv[i]!;
    if (rest || w === '-' || !w.startsWith('-')) {
      positional.push(w);
      continue;
    }
    if (w === '--') {
      rest = true;
      continue;
    }
    let flag: FlagSpec | undefined;
    let inline: string | undefined;
    let shown: string;
    if (w.startsWith('--')) {
      const eq = w.indexOf('=');
      const name = eq >= 0 ? w.slice(2, eq) : w.slice(2);
      inline = eq >= 0 ? w.slice(eq + 1) : undefined;
      flag = byName.get(name);
      shown = `--${name}`;
      if (!flag) {
        const near = closest(name, all.map((f) => f.name));
        throw usage(`unknown flag --${name}${near ? ` (did you mean --${near}?)` : ''}`);
      }
    } else {
      shown = w.slice(0, 2);
      flag = byChar.get(w.slice(1, 2));
      if (!flag) throw usage(`unknown flag ${shown}`);
      if (w.length > 2) inline = w.slice(2).replace(/^=/, '');
    }
    if (flag.kind === 'boolean') {
      if (inline !== undefined) throw usage(`${shown} takes no value (got "${inline}")`);
      given.set(flag.name, true);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      if (i + 1 >= argv.length) throw usage(`${shown} needs a value${flag.helpValue ? ` (${flag.helpValue})` : ''}`);
      value = argv[++i]!;
    }
    if (given.has(flag.name)) throw usage(`${shown} given twice`);
    given.set(flag.name, value);
  }

  const flags: FlagValues = {};
  for (const f of all) {
    const v = given.get(f.name);
    if (f.kind === 'boolean') {
      flags[f.name] = v === true;
      continue;
    }
    if (v === undefined) {
      flags[f.name] = f.default;
      continue;
    }
    const text = v as string;
    if (f.kind === 'integer') {
      if (!/^-?\d+$/.test(text)) throw usage(`--${f.name}: expected an integer, got "${text}"`);
      const n = Number(text);
      if (!Number.isSafeInteger(n)) throw usage(`--${f.name}: ${text} is too large`);
      if (f.min !== undefined && n < f.min) throw usage(`--${f.name}: must be at least ${f.min}, got ${n}`);
      flags[f.name] = n;
    } else {
      if (f.options && !f.options.includes(text)) throw usage(`--${f.name}: expected one of ${f.options.join(', ')}, got "${text}"`);
      flags[f.name] = text;
    }
  }
  for (const f of all) {
    if (f.required && !given.has(f.name)) throw usage(`missing flag --${f.name}${f.helpValue ? ` ${f.helpValue}` : ''} (${f.description})`);
    if (!given.has(f.name)) continue;
    for (const x of f.exclusive ?? []) if (given.has(x)) throw usage(`--${f.name} and --${x} cannot be given together`);
    for (const x of f.dependsOn ?? []) if (!given.has(x)) throw usage(`--${f.name} needs --${x}`);
  }

  const args: Record<string, string | undefined> = {};
  spec.args.forEach((a, i) => (args[a.name] = positional[i]));
  const missing = spec.args.filter((a, i) => a.required && positional[i] === undefined);
  if (missing.length > 0) {
    const list = missing.map((a) => `<${a.name}> (${a.description})`).join(' and ');
    throw usage(`missing argument${missing.length > 1 ? 's' : ''} ${list}`);
  }
  const variadic = spec.args.length > 0 && spec.args[spec.args.length - 1]!.variadic === true;
  if (positional.length > spec.args.length && !variadic) {
    const extra = positional.slice(spec.args.length);
    throw usage(`unexpected argument${extra.length > 1 ? 's' : ''} ${extra.map((x) => `"${x}"`).join(', ')} (${spec.id} takes ${spec.args.map((a) => `<${a.name}>`).join(' ') || 'no arguments'})`);
  }
  return { args, flags, rest: variadic ? positional.slice(spec.args.length) : [] };
}
