/**
 * An oclif command made from a spec (src/cli/spec.ts), for what oclif does here: --help (and the
 * listing of commands), shell completion, and the in-process tests (@oclif/test). Its flags are
 * declared for the help text only; the words are parsed by src/cli/parse.ts, as on the fast path.
 */
import { Args, Command, Errors, Flags, type Interfaces } from '@oclif/core';
import { runSpec } from './run.js';
import { GLOBAL_FLAGS, type CommandSpec } from './spec.js';

export function oclifCommand(spec: CommandSpec): typeof Command {
  const args: Interfaces.ArgInput = {};
  for (const a of spec.args) args[a.name] = Args.string({ description: a.description, required: a.required === true });
  const flags: Interfaces.FlagInput = {};
  for (const f of [...spec.flags, ...GLOBAL_FLAGS]) {
    const common = {
      description: f.description,
      ...(f.char ? { char: f.char as Interfaces.AlphabetLowercase } : {}),
      ...(f.exclusive ? { exclusive: f.exclusive } : {}),
      ...(f.dependsOn ? { dependsOn: f.dependsOn } : {}),
    };
    if (f.kind === 'boolean') {
      // `--no-color` is a flag of its own here, not oclif's negation of `--color`.
      flags[f.name] = Flags.boolean({ ...common, allowNo: false });
    } else if (f.kind === 'integer') {
      flags[f.name] = Flags.integer({ ...common, ...(f.min !== undefined ? { min: f.min } : {}), ...(typeof f.default === 'number' ? { default: f.default } : {}), ...(f.required ? { required: true } : {}) });
    } else {
      flags[f.name] = Flags.string({ ...common, ...(f.helpValue ? { helpValue: f.helpValue } : {}), ...(f.options ? { options: f.options } : {}), ...(f.required ? { required: true } : {}) });
    }
  }
  return class extends Command {
    static override summary = spec.summary;
    static override description = spec.description;
    static override examples = spec.examples.map((e) => `<%= config.bin %> ${e}`);
    static override args = args;
    static override flags = flags;

    async run(): Promise<void> {
      this.parsed = true; // by src/cli/parse.ts, in runSpec
      const code = await runSpec(spec, this.argv);
      if (code !== 0) throw new Errors.ExitError(code);
    }
  };
}
