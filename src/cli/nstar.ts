#!/usr/bin/env node
/**
 * nstar: the console client (upstream northstar-nstar). Thin: parse the command line, call
 * src/nstar. Exit codes: 0 ok, 1 error (one line `Error: ...` on stderr), 2 usage.
 */
import { writeFile } from 'node:fs/promises';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { errorMessage } from '../common/errors.js';
import { PROTOCOL_VERSION } from '../api/model.js';
import { Nstar, type GlobalOptions, type OutputFormat } from '../nstar/commands.js';
import { DEFAULT_CONSOLE_URL } from '../common/console-url.js';
import { chooseConsoleUrl, DEVICE_SOCKET } from '../nstar/connect.js';
import { commandExample, programExamples, suggestCommands } from '../nstar/help.js';
import { parseDurationMs } from '../nstar/duration.js';
import { completionScript, SHELLS, type Shell } from '../nstar/completion.js';
import { programSpec } from '../nstar/program-spec.js';
import { seccompFromFile } from '../nstar/seccomp.js';

const CONTAINER = 'name[:version]';

function url(v: string): string {
  try {
    new URL(v);
  } catch {
    throw new InvalidArgumentError(`not a url, for example ${DEFAULT_CONSOLE_URL} or unix://${DEVICE_SOCKET}`);
  }
  return v;
}

function duration(v: string): number {
  try {
    return parseDurationMs(v);
  } catch (e) {
    throw new InvalidArgumentError(errorMessage(e));
  }
}

function count(v: string): number {
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new InvalidArgumentError('must be a number');
  return Number(v);
}

const formatOption = (): Option => new Option('-f, --format <format>', 'output format (json: the result as JSON, not the -j transcript)').choices(['table', 'json']);

const program = new Command('nstar')
  .description(`Northstar console client. Northstar API version ${PROTOCOL_VERSION}`)
  .version('0.1.0 (Northstar API version 0.9.3)', '-V, --version', 'Print version')
  .enablePositionalOptions()
  .exitOverride()
  .configureOutput({ outputError: (str, write) => write(str) })
  .showSuggestionAfterError()
  .addOption(
    new Option('-u, --url <url>', 'console url (tcp:// or unix://)')
      .default(undefined, `$NORTHSTAR_URL, else the unix socket ${DEVICE_SOCKET} or the Quickstart's if there, else ${DEFAULT_CONSOLE_URL}`)
      .argParser(url),
  )
  .option('-j, --json', 'print the raw transcript: every byte read and written on the console connection')
  .addOption(new Option('-t, --timeout <duration>', 'handshake timeout (humantime: 10s, 500ms, 1m)').default(10_000, '10s').argParser(duration))
  .addOption(formatOption().default('table'));

/** The options the command runs with: the global ones, the command's --format over the global one. */
function session(cmd: Command): Nstar {
  const g = program.opts<{ url?: string; json?: boolean; timeout: number; format: OutputFormat }>();
  const local = cmd.opts<{ format?: OutputFormat }>();
  const { url, source } = chooseConsoleUrl(g.url);
  const opts: GlobalOptions = { url, urlSource: source, transcript: g.json === true, timeoutMs: g.timeout, format: local.format ?? g.format };
  return new Nstar(opts, {
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
    color: process.stdout.isTTY === true && !process.env['NO_COLOR'],
    progress: process.stderr.isTTY === true,
  });
}

function command(name: string, description: string): Command {
  return program.command(name).description(description).addOption(formatOption());
}

command('list', 'List available containers: name, version, repository, type, mounted, pid, uptime')
  .alias('ls')
  .action((_o, cmd: Command) => session(cmd).list());

command('ps', 'List containers with their state: running, mounted or installed')
  .action((_o, cmd: Command) => session(cmd).ps());

command('repositories', 'List configured repositories')
  .alias('repos')
  .action((_o, cmd: Command) => session(cmd).repositories());

command('mount', 'Mount containers')
  .argument(`[${CONTAINER}...]`, 'container name and optional version')
  .action((names: string[], _o, cmd: Command) => session(cmd).mount(names));

command('umount', 'Umount containers')
  .argument(`[${CONTAINER}...]`, 'container name and optional version')
  .action((names: string[], _o, cmd: Command) => session(cmd).mount(names, true));

command('start', 'Start a container; [command...] is [KEY=VALUE...] [init] [args...], <INIT> in init is the manifest init')
  .argument(`<${CONTAINER}>`, 'container name and optional version')
  .argument('[command...]', 'environment (KEY=VALUE), init and arguments; default: the manifest\'s')
  .passThroughOptions()
  .action((name: string, rest: string[], _o, cmd: Command) => session(cmd).start(name, rest));

command('kill', 'Send a signal to a container (default SIGTERM)')
  .argument(`<${CONTAINER}>`, 'container name and optional version')
  .argument('[signal]', 'signal number or name (9, KILL, SIGKILL)')
  .action((name: string, signal: string | undefined, _o, cmd: Command) => session(cmd).kill(name, signal));

command('stop', 'Stop a container: SIGTERM, then SIGKILL after the grace time (ours)')
  .addOption(new Option('-t, --time <seconds>', 'seconds to wait for the exit before SIGKILL').default(10).argParser(count))
  .argument(`<${CONTAINER}>`, 'container name and optional version')
  .action((name: string, o: { time: number }, cmd: Command) => session(cmd).stop(name, o.time));

command('restart', 'Stop a container and start it with the arguments it last ran with (ours)')
  .addOption(new Option('-t, --time <seconds>', 'seconds to wait for the exit before SIGKILL').default(10).argParser(count))
  .argument(`<${CONTAINER}>`, 'container name and optional version')
  .action((name: string, o: { time: number }, cmd: Command) => session(cmd).restart(name, o.time));

// Not command(): -f is --follow here (as in docker/podman logs); the format is --format only.
program
  .command('logs')
  .description("Print a container's kept output (io: pipe); -f follows it until the container exits (ours)")
  .addOption(new Option('--format <format>', 'output format (json: one JSON object per line)').choices(['table', 'json']))
  .option('-f, --follow', 'print new lines as they come, until the container exits or Ctrl-C')
  .addOption(new Option('-n, --tail <n>', 'only the last n lines (default all kept)').argParser(count))
  .option('-t, --timestamps', 'prefix each line with the time the runtime read it (RFC 3339, UTC)')
  .addOption(new Option('--stream <stream>', 'only this stream').choices(['stdout', 'stderr']))
  .argument(`<${CONTAINER}>`, 'container name and optional version')
  .action((name: string, o: { follow?: boolean; tail?: number; timestamps?: boolean; stream?: 'stdout' | 'stderr' }, cmd: Command) =>
    session(cmd).logs(name, { follow: o.follow === true, tail: o.tail, timestamps: o.timestamps === true, stream: o.stream }),
  );

// Not command(): -t is --tty here (as in docker exec); -i, -t and -e as docker's.
program
  .command('exec')
  .passThroughOptions()
  .description('Run a command inside a running container, with its ids, capabilities and seccomp filter (ours)')
  .option('-i, --interactive', 'send stdin to the command')
  .option('-t, --tty', 'give the command a terminal (the local one in raw mode, its size followed)')
  .addOption(new Option('-e, --env <KEY=VALUE>', 'set a variable (repeatable)').argParser((v: string, prev: string[] = []) => [...prev, v]))
  .argument(`<${CONTAINER}>`, 'container name and optional version')
  .argument('<command...>', 'the program (looked up in the container\'s PATH) and its arguments; put -- before it')
  .action(async (name: string, command: string[], o: { interactive?: boolean; tty?: boolean; env?: string[] }, cmd: Command) => {
    const env: Record<string, string> = {};
    for (const kv of o.env ?? []) {
      const i = kv.indexOf('=');
      if (i <= 0) throw new InvalidArgumentError(`-e ${kv}: expected KEY=VALUE`);
      env[kv.slice(0, i)] = kv.slice(i + 1);
    }
    // `--` ends nstar's options; with passThroughOptions commander keeps it among the operands.
    if (command[0] === '--') command = command.slice(1);
    if (command.length === 0) throw new InvalidArgumentError('exec: no command given (nstar exec NAME -- CMD [ARGS...])');
    process.exitCode = await session(cmd).exec(name, command, { interactive: o.interactive === true, tty: o.tty === true, env });
  });

command('install', 'Install an npk; --replace swaps an installed one of the same name and version (ours)')
  .option('-r, --replace', 'if the npk\'s name:version is installed: stop it if it runs, uninstall it (its data kept), install, start it again if it ran')
  .addOption(new Option('-t, --time <seconds>', 'with --replace: seconds to wait for the exit before SIGKILL').default(10).argParser(count))
  .argument('<npk>', 'path to the .npk file')
  .argument('<repository>', 'target repository')
  .action((npk: string, repo: string, o: { replace?: boolean; time: number }, cmd: Command) =>
    session(cmd).install(npk, repo, o.replace === true ? { seconds: o.time } : undefined),
  );

command('uninstall', 'Uninstall a container')
  .option('-w, --wipe', "wipe the container's persistent dir (if present)")
  .argument(`<${CONTAINER}>`, 'container name and optional version')
  .action((name: string, o: { wipe?: boolean }, cmd: Command) => session(cmd).uninstall(name, o.wipe === true));

command('shutdown', 'Shutdown Northstar').action((_o, cmd: Command) => session(cmd).shutdown());

command('notifications', 'Print notifications as they arrive')
  .option('-n, --number <n>', 'exit after n notifications', count)
  .action((o: { number?: number }, cmd: Command) => session(cmd).notifications(o.number));

command('inspect', 'Display information about a container')
  .argument(`<${CONTAINER}>`, 'container name and optional version')
  .action((name: string, _o, cmd: Command) => session(cmd).inspect(name));

command('token', 'Create a token')
  .argument('<target>', 'token target (a container name)')
  .argument('<shared>', 'shared info')
  .action((target: string, shared: string, _o, cmd: Command) => session(cmd).token(target, shared));

command('verify-token', 'Verify a token')
  .argument('<token>', 'token (base64)')
  .argument('<user>', 'user (a container name)')
  .argument('<shared>', 'shared info')
  .action(async (token: string, user: string, shared: string, _o, cmd: Command) => {
    // Exit 1 for Invalid, Expired and Future: a script can test the result.
    if ((await session(cmd).verifyToken(token, user, shared)) !== 'Ok') process.exitCode = 1;
  });

command('ident', 'Identification').action((_o, cmd: Command) => session(cmd).ident());

program
  .command('completion')
  .description('Shell completion script generation')
  .addOption(new Option('-s, --shell <shell>', 'generate completions for this shell').choices(SHELLS).makeOptionMandatory())
  .option('-o, --output <file>', 'output file where to generate completions into')
  .action(async (o: { shell: Shell; output?: string }) => {
    const spec = programSpec(program, { [CONTAINER]: 'container', npk: 'file', input: 'file', signal: 'signal' }, ['output']);
    const script = completionScript(o.shell, spec);
    if (o.output === undefined) {
      process.stdout.write(script);
      return;
    }
    process.stdout.write(`Generating ${o.shell} completions to ${o.output}\n`);
    await writeFile(o.output, script).catch((e: NodeJS.ErrnoException) => {
      throw new Error(`failed to create ${o.output}: ${e.code ?? e.message}`);
    });
  });

program
  .command('seccomp')
  .description('Generate a seccomp profile from an strace log')
  .argument('<input>', 'path to the strace log file')
  .option('--no-default-profile', 'do not build on the default profile (allow every syscall of the log)')
  .action(async (input: string, o: { defaultProfile: boolean }) => {
    process.stdout.write(await seccompFromFile(input, o.defaultProfile));
  });

// One example per command, in its help and (all of them) after the program's help.
for (const c of program.commands) {
  const e = commandExample(c.name());
  if (e !== undefined) c.addHelpText('after', e);
}
program.addHelpText('after', () => programExamples(program.commands.map((c) => c.name())));

// Commander suggests any command within 3 edits (`top` → stop, `pull` → kill); ours only
// plausible typos (help.ts).
Object.assign(program, {
  unknownCommand(this: Command): void {
    const word = this.args[0] ?? '';
    const names = this.commands.flatMap((c) => [c.name(), ...c.aliases()]);
    const s = suggestCommands(word, names);
    const hint = s.length === 0 ? '' : s.length === 1 ? `\n(Did you mean ${s[0]}?)` : `\n(Did you mean one of ${s.join(', ')}?)`;
    this.error(`error: unknown command '${word}'${hint}`, { code: 'commander.unknownCommand' });
  },
});

process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  // A closed pipe (nstar list | head): stop quietly.
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

program.parseAsync().catch((e: unknown) => {
  if (e instanceof CommanderError) {
    // Help and version end with 0; every usage error with 2 (commander printed the message).
    process.exitCode = e.exitCode === 0 ? 0 : 2;
    return;
  }
  process.stderr.write(`Error: ${errorMessage(e)}\n`);
  // A console that cannot be reached: what to check (commands.ts, connect.ts).
  const hint = (e as { hint?: unknown } | null)?.hint;
  if (typeof hint === 'string') process.stderr.write(`${hint}\n`);
  process.exitCode = 1;
});
