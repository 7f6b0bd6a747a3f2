/**
 * The nstar binary without a runtime: usage errors (exit 2), connection errors (exit 1),
 * help and version (exit 0), the completion scripts (syntax-checked by the shells themselves
 * and exercised for subcommands and options) and the offline seccomp command.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasCommand, tempDir } from '../helpers/tmp.js';
import { nstar, spawnNstar } from './run.js';
import { chooseConsoleUrl, QUICKSTART_SOCKET, unreachableHint } from '../../src/nstar/connect.js';
import { suggestCommands } from '../../src/nstar/help.js';
import { Container } from '../../src/common/container.js';

const BASH_COMPLETION = '/usr/share/bash-completion/bash_completion';

describe('nstar command line', () => {
  test('help and version exit 0', async () => {
    const h = await nstar('--help');
    assert.equal(h.code, 0);
    assert.match(h.stdout, /^Usage: nstar \[options\] \[command\]/);
    for (const c of ['list|ls', 'ps', 'repositories|repos', 'mount', 'umount', 'start', 'kill', 'install', 'uninstall', 'shutdown', 'notifications', 'inspect', 'token', 'verify-token', 'ident', 'completion', 'seccomp']) {
      assert.ok(h.stdout.includes(`  ${c} `), `help lists ${c}`);
    }
    const v = await nstar('--version');
    assert.deepEqual([v.code, v.stdout], [0, '0.1.0 (Northstar API version 0.9.3)\n']);
    const sub = await nstar('uninstall', '--help');
    assert.equal(sub.code, 0);
    assert.match(sub.stdout, /-w, --wipe/);
  });

  test('usage errors exit 2 with the reason on stderr', async () => {
    const cases: [string[], RegExp][] = [
      [[], /Usage: nstar/],
      [['bogus'], /error: unknown command 'bogus'/],
      [['kill'], /error: missing required argument 'name\[:version\]'/],
      [['ident', 'extra'], /error: too many arguments for 'ident'/],
      [['--nope', 'ls'], /error: unknown option '--nope'/],
      [['-u', 'not a url', 'ls'], /error: option '-u, --url <url>' argument 'not a url' is invalid/],
      [['-t', '10', 'ls'], /invalid duration "10": time unit needed/],
      [['-t', '10 parsecs', 'ls'], /unknown time unit "parsecs"/],
      [['--format', 'xml', 'ls'], /argument 'xml' is invalid. Allowed choices are table, json/],
      [['notifications', '-n', 'many'], /error: option '-n, --number <n>' argument 'many' is invalid/],
      [['completion'], /error: required option '-s, --shell <shell>' not specified/],
      [['completion', '-s', 'tcsh'], /Allowed choices are bash, zsh, fish/],
    ];
    for (const [args, re] of cases) {
      const r = await nstar(...args);
      assert.equal(r.code, 2, `nstar ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re, `nstar ${args.join(' ')}`);
      assert.equal(r.stdout, '');
    }
  });

  test('connection errors exit 1 with one line "Error: ..." and, for an unreachable console, a hint', async (t) => {
    const dir = tempDir(t);
    const unreachable = (url: string, why: string): string =>
      `hint: is the runtime running? nstar tried ${url} (${why}); start it (./scripts/quickstart.sh in the checkout), or give its console with -u URL or NORTHSTAR_URL=URL (unix:///path/to/console.sock or tcp://host:port; the Quickstart's is unix://${QUICKSTART_SOCKET})\n`;
    const cases: [string[], NodeJS.ProcessEnv, string][] = [
      [['-u', 'http://localhost:4200', 'ls'], {}, 'Error: invalid url "http://localhost:4200": the scheme must be tcp or unix\n'],
      [['-u', `unix://${dir}/missing.sock`, 'ident'], {}, `Error: failed to connect to unix://${dir}/missing.sock: ENOENT\n${unreachable(`unix://${dir}/missing.sock`, 'given with -u')}`],
      [['-u', 'tcp://127.0.0.1:1', 'ident'], {}, `Error: failed to connect to tcp://127.0.0.1:1: ECONNREFUSED\n${unreachable('tcp://127.0.0.1:1', 'given with -u')}`],
      [['ident'], { NORTHSTAR_URL: 'tcp://127.0.0.1:1' }, `Error: failed to connect to tcp://127.0.0.1:1: ECONNREFUSED\n${unreachable('tcp://127.0.0.1:1', 'from $NORTHSTAR_URL')}`],
    ];
    for (const [args, env, err] of cases) {
      const r = await spawnNstar(args, env).done;
      assert.deepEqual([r.code, r.stdout, r.stderr], [1, '', err], args.join(' '));
    }
  });

  test('the hint names the default address and why it was chosen; a root-only socket says so', () => {
    const none = chooseConsoleUrl(undefined, {}, () => false);
    assert.deepEqual(none, { url: 'tcp://localhost:4200', source: 'default' });
    assert.match(unreachableHint(none.url, none.source, 'ECONNREFUSED'), /nstar tried tcp:\/\/localhost:4200 \(the default: neither \/run\/northstar\/console \(a device\) nor \/.*\/target\/northstar\/console\.sock \(the Quickstart\) is a socket\)/);
    const dev = chooseConsoleUrl(undefined, {}, (p) => p === '/run/northstar/console');
    assert.deepEqual(dev, { url: 'unix:///run/northstar/console', source: 'socket' });
    assert.equal(
      unreachableHint(dev.url, dev.source, 'EACCES'),
      "hint: unix:///run/northstar/console (the console socket found there) is the runtime's console with full permissions, a socket only root may open: run nstar as root (sudo nstar ...)",
    );
    assert.deepEqual(chooseConsoleUrl('tcp://h', { NORTHSTAR_URL: 'tcp://e' }), { url: 'tcp://h', source: 'option' });
  });

  test('a mistyped command suggests only a plausible typo', async () => {
    for (const [word, suggestion] of [['lgos', 'logs'], ['instal', 'install'], ['unintsall', 'uninstall'], ['notification', 'notifications']] as const) {
      const r = await nstar(word);
      assert.deepEqual([r.code, r.stderr], [2, `error: unknown command '${word}'\n(Did you mean ${suggestion}?)\n`]);
    }
    // Words of other tools and unrelated words: no suggestion (commander's own would say stop, kill, start).
    for (const word of ['xyz', 'top', 'pull', 'status', 'stats', 'run', 'rm']) {
      const r = await nstar(word);
      assert.deepEqual([r.code, r.stderr], [2, `error: unknown command '${word}'\n`], word);
    }
    assert.deepEqual(suggestCommands('ks', ['ls', 'ps', 'kill']), []);
    assert.deepEqual(suggestCommands('mont', ['mount', 'umount']), ['mount']);
  });

  test('help: one example per command, in its help and after the program\'s', async () => {
    const h = await nstar('--help');
    const examples = h.stdout.slice(h.stdout.indexOf('\nExamples:\n'));
    const commands = [...h.stdout.matchAll(/^ {2}([a-z-]+)(?:\|[a-z]+)? .*$/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
    assert.ok(commands.length >= 20, commands.join(' '));
    for (const c of commands) {
      const sub = await nstar(c, '--help');
      const m = /\nExample:\n {2}\$ (nstar .*)\n+$/.exec(sub.stdout);
      assert.ok(m, `nstar ${c} --help ends with an example:\n${sub.stdout}`);
      assert.ok(m[1]!.startsWith(`nstar ${c} `) || m[1] === `nstar ${c}`, m[1]);
      assert.ok(examples.includes(`\n  $ ${m[1]}\n`), `the program's help lists ${m[1]}`);
    }
  });

  test('a console that never answers the handshake: -t limits it', async (t) => {
    const net = await import('node:net');
    const server = net.createServer(() => undefined);
    const dir = tempDir(t);
    const sock = join(dir, 'silent.sock');
    const peers: import('node:net').Socket[] = [];
    server.on('connection', (s) => peers.push(s));
    await new Promise<void>((r) => server.listen(sock, r));
    t.after(async () => {
      for (const p of peers) p.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    });
    const r = await nstar('-u', `unix://${sock}`, '-t', '200ms', 'ident');
    assert.deepEqual([r.code, r.stderr], [1, 'Error: console handshake timed out after 200 ms\n']);
    // -j shows what was written before the limit: the connect line.
    const j = await nstar('-u', `unix://${sock}`, '-t', '200ms', '-j', 'ident');
    assert.deepEqual([j.code, j.stdout], [1, '{"connect":{"version":"0.9.3","subscribe_notifications":false}}\n']);
  });

  test('completion scripts: every subcommand, alias and option; -o writes a file', async (t) => {
    for (const shell of ['bash', 'zsh', 'fish']) {
      const r = await nstar('completion', '-s', shell);
      assert.equal(r.code, 0);
      for (const w of ['list', 'ls', 'ps', 'repos', 'mount', 'umount', 'start', 'kill', 'install', 'uninstall', 'shutdown', 'notifications', 'inspect', 'token', 'verify-token', 'ident', 'completion', 'seccomp', 'wipe', 'number', 'format', 'timeout', 'url']) {
        assert.ok(r.stdout.includes(w), `${shell} script mentions ${w}`);
      }
    }
    const dir = tempDir(t);
    const out = join(dir, 'nstar.bash');
    const w = await nstar('completion', '-s', 'bash', '-o', out);
    assert.deepEqual([w.code, w.stdout], [0, `Generating bash completions to ${out}\n`]);
    assert.equal(readFileSync(out, 'utf8'), (await nstar('completion', '-s', 'bash')).stdout);
    const bad = await nstar('completion', '-s', 'bash', '-o', join(dir, 'no', 'such', 'dir'));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^Error: failed to create .*: ENOENT\n$/);
  });

  for (const shell of ['bash', 'zsh', 'fish'] as const) {
    test(`${shell} -n accepts the ${shell} script`, { skip: !hasCommand(shell) && `${shell} is not installed (apt-get install -y ${shell})` }, async (t) => {
      const dir = tempDir(t);
      const file = join(dir, `nstar.${shell}`);
      writeFileSync(file, (await nstar('completion', '-s', shell)).stdout);
      execFileSync(shell, ['-n', file]);
    });
  }

  test('bash completion: subcommands, options and option values', { skip: !hasCommand('bash') && 'bash is not installed' }, async (t) => {
    const dir = tempDir(t);
    const script = join(dir, 'nstar.bash');
    writeFileSync(script, (await nstar('completion', '-s', 'bash')).stdout);
    const complete = (...words: string[]): string[] => {
      const program = `source ${script}
COMP_LINE=${JSON.stringify(words.join(' '))}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')})
COMP_CWORD=${words.length - 1}
_nstar
printf '%s\\n' "\${COMPREPLY[@]}"`;
      return execFileSync('bash', ['-c', program], { encoding: 'utf8' }).split('\n').filter((l) => l !== '');
    };
    assert.deepEqual(complete('nstar', 'u').sort(), ['umount', 'uninstall']);
    assert.deepEqual(complete('nstar', 're').sort(), ['repos', 'repositories', 'restart']);
    assert.deepEqual(complete('nstar', '--f'), ['--format']);
    assert.deepEqual(complete('nstar', '--format', ''), ['table', 'json']);
    assert.deepEqual(complete('nstar', '-u', 'x', 'uninstall', '-').sort(), ['--format', '--help', '--wipe', '-f', '-h', '-w']);
    assert.deepEqual(complete('nstar', 'completion', '--shell', 'z'), ['zsh']);
    assert.deepEqual(complete('nstar', 'notifications', '--n'), ['--number']);
    // kill NAME <TAB>: signal names (a container is the first argument, the signal the second).
    assert.deepEqual(complete('nstar', 'kill', 'hello-world', 'SIGK'), ['SIGKILL']);
    assert.deepEqual(complete('nstar', 'kill', 'hello-world', 'ki'), ['KILL']);
    assert.deepEqual(complete('nstar', '-u', 'unix:///x', 'kill', '-f', 'json', 'hello-world', 'SIGTE'), ['SIGTERM']);
    const all = complete('nstar', 'kill', 'hello-world', '');
    assert.ok(all.includes('SIGTERM') && all.includes('SIGHUP') && !all.includes('TERM'), all.join(' '));
  });

  test('bash completion installed as documented: bash-completion loads it from the completion directory', {
    skip: !existsSync(BASH_COMPLETION) && `${BASH_COMPLETION} is missing (apt-get install bash-completion; scripts/install.sh does)`,
  }, async (t) => {
    // The documented `nstar completion -s bash -o /etc/bash_completion.d/nstar`, into a
    // directory of our own that bash-completion reads instead (BASH_COMPLETION_COMPAT_DIR).
    const dir = tempDir(t);
    const w = await nstar('completion', '-s', 'bash', '-o', join(dir, 'nstar'));
    assert.equal(w.code, 0, w.stderr);
    const out = execFileSync('bash', ['-c', `source ${BASH_COMPLETION}; complete -p nstar`], { encoding: 'utf8', env: { ...process.env, BASH_COMPLETION_COMPAT_DIR: dir } });
    assert.equal(out, 'complete -F _nstar nstar\n');
  });

  test('fish completion: subcommands, options and option values', { skip: !hasCommand('fish') && 'fish is not installed (apt-get install -y fish)' }, async (t) => {
    const dir = tempDir(t);
    const script = join(dir, 'nstar.fish');
    writeFileSync(script, (await nstar('completion', '-s', 'fish')).stdout);
    const complete = (line: string): string[] =>
      execFileSync('fish', ['-c', `source ${script}; complete -C ${JSON.stringify(line)}`], { encoding: 'utf8' })
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => l.split('\t')[0]!);
    assert.deepEqual(complete('nstar u').sort(), ['umount', 'uninstall']);
    assert.deepEqual(complete('nstar uninstall --w'), ['--wipe']);
    assert.deepEqual(complete('nstar completion -s ').sort(), ['bash', 'fish', 'zsh']);
    assert.deepEqual(complete('nstar --format ').sort(), ['json', 'table']);
  });

  test('seccomp: an strace log becomes a manifest seccomp section', async (t) => {
    const dir = tempDir(t);
    const log = join(dir, 'strace.log');
    writeFileSync(log, ['execve("/bin/true", ["true"], 0x7ffc /* 1 vars */) = 0', '[pid  42] mount("none", "/x", "tmpfs", 0, NULL) = 0', '42 read(3, "", 4096) = 0', '+++ exited with 0 +++', 'init_module(0x1, 2, "") = -1 EPERM'].join('\n'));
    const r = await nstar('seccomp', log);
    assert.deepEqual([r.code, r.stdout], [0, 'profile: default\nallow:\n  init_module: any\n  mount: any\n']);
    const all = await nstar('seccomp', '--no-default-profile', log);
    assert.equal(all.stdout, 'allow:\n  execve: any\n  init_module: any\n  mount: any\n  read: any\n');
    const missing = await nstar('seccomp', join(dir, 'nope.log'));
    assert.deepEqual([missing.code, missing.stderr], [1, `Error: failed to open strace log ${join(dir, 'nope.log')}: ENOENT\n`]);
  });
});

describe('nstar against a console whose containers change meanwhile', () => {
  test('ps and ls skip a container uninstalled between the list and its inspect; other errors still fail', async (t) => {
    const { startServer } = await import('../console/fake.js');
    const h = await startServer(t);
    // The fake lists hello-world:0.0.1 and answers every inspect with invalid_container, as the
    // runtime does for a container uninstalled after the list.
    for (const cmd of ['ps', 'ls']) {
      const r = await nstar('-u', h.url, '-f', 'json', cmd);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), []);
    }
    h.handle.reply = (req) =>
      typeof req === 'object' && 'inspect' in req
        ? { inspect: { error: { container: req.inspect.container, error: { unexpected: { error: 'boom' } } } } }
        : { list: [Container.parse('hello-world:0.0.1')] };
    const failed = await nstar('-u', h.url, 'ps');
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /boom/);
  });
});
