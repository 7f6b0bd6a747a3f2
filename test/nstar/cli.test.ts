/**
 * The nstar binary without a runtime: usage errors (exit 2), connection errors (exit 1),
 * help and version (exit 0), the completion scripts (syntax-checked by the shells themselves
 * and exercised for subcommands and options) and the offline seccomp command.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasCommand, tempDir } from '../helpers/tmp.js';
import { nstar } from './run.js';
import { Container } from '../../src/common/container.js';

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

  test('connection errors exit 1 with one line "Error: ..."', async (t) => {
    const dir = tempDir(t);
    const cases: [string[], string][] = [
      [['-u', 'http://localhost:4200', 'ls'], 'Error: invalid url "http://localhost:4200": the scheme must be tcp or unix\n'],
      [['-u', `unix://${dir}/missing.sock`, 'ident'], `Error: failed to connect to unix://${dir}/missing.sock: ENOENT\n`],
      [['-u', 'tcp://127.0.0.1:1', 'ident'], 'Error: failed to connect to tcp://127.0.0.1:1: ECONNREFUSED\n'],
    ];
    for (const [args, err] of cases) {
      const r = await nstar(...args);
      assert.deepEqual([r.code, r.stdout, r.stderr], [1, '', err], args.join(' '));
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
