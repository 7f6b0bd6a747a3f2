/** The completion description of a commander program: commands, aliases, options, arguments. */
import type { Command, Option } from 'commander';
import type { ArgKind, CommandSpec, OptionSpec, ProgramSpec } from './completion.js';

const HELP: OptionSpec = { short: 'h', long: 'help', description: 'Print help' };

function optionSpec(o: Option, fileValues: ReadonlySet<string>): OptionSpec {
  const spec: OptionSpec = { description: o.description };
  if (o.short) spec.short = o.short.replace(/^-/, '');
  if (o.long) spec.long = o.long.replace(/^--/, '');
  if (o.required || o.optional) {
    spec.value = /[<[]([^>\]]+)[>\]]/.exec(o.flags)?.[1] ?? 'value';
    if (o.argChoices) spec.choices = o.argChoices;
    if (spec.long !== undefined && fileValues.has(spec.long)) spec.file = true;
  }
  return spec;
}

/**
 * `argKinds` maps argument names to what completes them (`name[:version]` → container,
 * `npk` → file); `fileOptions` lists long option names whose value is a file.
 */
export function programSpec(program: Command, argKinds: Readonly<Record<string, ArgKind>>, fileOptions: readonly string[] = []): ProgramSpec {
  const files = new Set(fileOptions);
  const visible = (opts: readonly Option[]): Option[] => opts.filter((o) => !o.hidden);
  const commands: CommandSpec[] = program.commands.map((c: Command) => ({
    name: c.name(),
    aliases: c.aliases(),
    description: c.description(),
    options: [...visible(c.options).map((o) => optionSpec(o, files)), HELP],
    args: c.registeredArguments.map((a) => ({ name: a.name(), kind: argKinds[a.name()] ?? 'other', variadic: a.variadic })),
  }));
  return {
    name: program.name(),
    options: [...visible(program.options).map((o) => optionSpec(o, files)), HELP],
    commands,
  };
}
