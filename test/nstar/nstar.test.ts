/**
 * The real `nstar` binary against a real runtime (one `northstar` process per test): every
 * subcommand's plain output and its `--format json` output, the `-j` transcript, exit codes,
 * name resolution, notifications and container-name completion.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Container } from '../../src/common/container.js';
import type { Client, Notification } from '../../src/client/index.js';
import { hasCommand, isRoot, tempDir } from '../helpers/tmp.js';
import { packTestVariant, startRuntime, testContainerManifest, testNpks, type TestRuntime } from '../runtime/harness.js';
import { NSTAR, nstar, spawnNstar } from './run.js';

const TC = Container.parse('test-container:0.0.1');

async function runtime(t: TestContext, extra: string[] = []): Promise<{ rt: TestRuntime; u: string[] }> {
  const npks = await testNpks();
  const rt = await startRuntime(t, { npks: [npks['test-container']!, npks['test-resource']!, ...extra] });
  return { rt, u: ['-u', rt.consoleUrl] };
}

async function subscribed(t: TestContext, rt: TestRuntime): Promise<Client> {
  const c = await rt.client({ subscribe: true });
  t.after(() => c.close());
  return c;
}

/** The next notification that matches. */
async function until(c: Client, match: (n: Notification) => boolean): Promise<Notification> {
  for await (const n of c.notifications()) if (match(n)) return n;
  throw new Error('notifications ended');
}
const started = (c: Container) => (n: Notification) => typeof n === 'object' && 'started' in n && n.started.equals(c);
const exited = (c: Container) => (n: Notification) => typeof n === 'object' && 'exit' in n && n.exit[0].equals(c);

/**
 * Wait until `count` subscribed console connections were logged. The log is read here because
 * nothing typed says that another process (nstar) has subscribed: no request lists the console
 * connections, and nstar prints nothing before its first notification.
 */
async function subscribers(rt: TestRuntime, count: number): Promise<void> {
  await rt.until(() => rt.logs.filter((l) => l.includes('console connected') && l.includes('"subscribe":true')).length >= count, `${count} subscribed console connections`);
}

const lines = (s: string): string[] => s.split('\n').filter((l) => l !== '');

describe('nstar against the runtime', { skip: !isRoot && 'needs root (the runtime mounts and starts containers)', timeout: 600_000 }, () => {
  test('list, ps, repositories, ident: tables, JSON and the -j transcript', async (t) => {
    const { rt, u } = await runtime(t);

    const ls = await nstar(...u, 'ls');
    assert.equal(ls.code, 0, ls.stderr);
    assert.equal(
      ls.stdout,
      [
        ' Name           | Version | Repository | Type     | Mounted | PID | Uptime',
        '----------------+---------+------------+----------+---------+-----+--------',
        ' test-container | 0.0.1   | default    | app      | no      |     |',
        ' test-resource  | 0.0.1   | default    | resource | no      |     |',
        '',
      ].join('\n'),
    );
    assert.equal((await nstar(...u, 'list')).stdout, ls.stdout, 'list and ls are the same command');

    const ps = await nstar(...u, 'ps');
    assert.equal(
      ps.stdout,
      [
        ' Name           | Version | Type     | State     | PID | Uptime | Repository',
        '----------------+---------+----------+-----------+-----+--------+------------',
        ' test-container | 0.0.1   | app      | installed |     |        | default',
        ' test-resource  | 0.0.1   | resource | installed |     |        | default',
        '',
      ].join('\n'),
    );

    // --format json, given after the command or as a global option before it.
    const json = await nstar(...u, 'ls', '--format', 'json');
    assert.equal(json.code, 0);
    assert.deepEqual(JSON.parse(json.stdout), [
      { container: 'test-container:0.0.1', name: 'test-container', version: '0.0.1', repository: 'default', type: 'app', mounted: false, state: 'installed', pid: null, uptime_ns: null },
      { container: 'test-resource:0.0.1', name: 'test-resource', version: '0.0.1', repository: 'default', type: 'resource', mounted: false, state: 'installed', pid: null, uptime_ns: null },
    ]);
    assert.equal((await nstar(...u, '--format', 'json', 'ps')).stdout, json.stdout);

    // -j: the raw transcript only: connect, ack, list, one inspect per container.
    const tr = await nstar(...u, '-j', 'ls');
    assert.equal(tr.code, 0);
    const tl = lines(tr.stdout);
    assert.equal(tl[0], '{"connect":{"version":"0.9.3","subscribe_notifications":false}}');
    assert.equal(tl[1], '{"connect_ack":null}');
    assert.equal(tl[2], '{"request":"list"}');
    assert.match(tl[3]!, /^\{"response":\{"list":\[/);
    assert.deepEqual(
      tl.slice(4).filter((l) => l.startsWith('{"request"')).sort(),
      ['{"request":{"inspect":{"container":"test-container:0.0.1"}}}', '{"request":{"inspect":{"container":"test-resource:0.0.1"}}}'],
    );
    assert.equal(tl.length, 8);
    assert.ok(!tr.stdout.includes('Name'), 'no table in -j mode');

    const repos = await nstar(...u, 'repos');
    assert.equal(repos.stdout, ' Name\n---------\n default\n memory\n');
    assert.equal((await nstar(...u, 'repositories')).stdout, repos.stdout);
    assert.deepEqual(JSON.parse((await nstar(...u, 'repos', '-f', 'json')).stdout), ['default', 'memory']);

    assert.deepEqual(await nstar(...u, 'ident'), { code: 0, stdout: 'extern:0.0.0\n', stderr: '', raw: Buffer.from('extern:0.0.0\n') });
    assert.deepEqual(JSON.parse((await nstar(...u, 'ident', '--format', 'json')).stdout), { ident: 'extern:0.0.0' });
    assert.equal(
      (await nstar(...u, '-j', 'ident')).stdout,
      '{"connect":{"version":"0.9.3","subscribe_notifications":false}}\n{"connect_ack":null}\n{"request":"ident"}\n{"response":{"ident":"extern:0.0.0"}}\n',
    );

    // Running: state, PID and uptime.
    const c = await subscribed(t, rt);
    await c.start(TC, { args: ['sleep'] });
    await until(c, started(TC));
    const pid = (await c.inspect(TC)).process!.pid;
    const running = lines((await nstar(...u, 'ps')).stdout);
    assert.match(running[2]!, new RegExp(`^ test-container \\| 0\\.0\\.1   \\| app      \\| running \\| ${pid} \\| \\d+s +\\| default$`));
    assert.ok(running[3]!.startsWith(' test-resource  | 0.0.1   | resource | mounted |'), running[3]);
    const listed = lines((await nstar(...u, 'ls')).stdout);
    assert.match(listed[2]!, new RegExp(`^ test-container \\| 0\\.0\\.1   \\| default    \\| app      \\| yes     \\| ${pid} \\| ((\\d+(h|m|s|ms|us|ns)) ?)+$`));
    const rows = JSON.parse((await nstar(...u, '-f', 'json', 'ps')).stdout) as { state: string; pid: number | null; uptime_ns: number | null; mounted: boolean }[];
    assert.equal(rows[0]!.state, 'running');
    assert.equal(rows[0]!.pid, pid);
    assert.ok(Number.isInteger(rows[0]!.uptime_ns) && rows[0]!.uptime_ns! > 0);
    assert.deepEqual([rows[1]!.state, rows[1]!.mounted, rows[1]!.pid], ['mounted', true, null]);
    await c.kill(TC, 'SIGKILL');
    await until(c, exited(TC));
  });

  test('mount, umount, start, kill, inspect: output, errors and exit codes', async (t) => {
    const { rt, u } = await runtime(t);
    const c = await subscribed(t, rt);

    const m = await nstar(...u, 'mount', 'test-resource');
    assert.equal(m.code, 0);
    assert.equal(m.stdout, ' Name                | Result\n---------------------+--------\n test-resource:0.0.1 | ok\n');
    // A failed entry shows in the table only; the exit code stays 0 (as upstream).
    const again = await nstar(...u, 'mount', 'test-resource:0.0.1', 'test-container');
    assert.equal(again.code, 0);
    assert.equal(
      again.stdout,
      [
        ' Name                 | Result',
        '----------------------+---------------------------------------',
        ' test-resource:0.0.1  | invalid container test-resource:0.0.1',
        ' test-container:0.0.1 | ok',
        '',
      ].join('\n'),
    );
    const uj = await nstar(...u, 'umount', '--format', 'json', 'test-container', 'test-resource');
    assert.deepEqual(JSON.parse(uj.stdout), [
      { container: 'test-container:0.0.1', result: 'ok' },
      { container: 'test-resource:0.0.1', result: 'ok' },
    ]);
    const uj2 = await nstar(...u, 'umount', '-f', 'json', 'test-resource:0.0.1');
    assert.deepEqual(JSON.parse(uj2.stdout), [
      { container: 'test-resource:0.0.1', result: 'error', error: { umount_busy: { container: 'test-resource:0.0.1' } }, message: 'container busy: test-resource:0.0.1' },
    ]);
    assert.equal((await nstar(...u, 'mount')).stdout, ' Name | Result\n------+--------\n', 'no containers: an empty table');

    // start with env, init and args (needs start_command; the global console has full permissions).
    const s = await nstar(...u, 'start', 'test-container', 'DEBUG=1', 'A=b=c', '<INIT>', 'sleep');
    assert.equal(s.code, 0, s.stderr);
    assert.equal(s.stdout, 'started test-container:0.0.1 DEBUG=1 A=b=c <INIT> sleep\n');
    await until(c, started(TC));
    const twice = await nstar(...u, 'start', 'test-container:0.0.1');
    assert.equal(twice.code, 1);
    assert.equal(twice.stdout, '');
    assert.equal(twice.stderr, 'Error: container test-container:0.0.1 is already started\n');

    const bad = await nstar(...u, 'kill', 'test-container', 'FOO');
    assert.deepEqual([bad.code, bad.stderr], [1, 'Error: unknown signal "FOO"\n']);
    const k = await nstar(...u, 'kill', '--format', 'json', 'test-container', 'SIGTERM');
    assert.deepEqual([k.code, JSON.parse(k.stdout)], [0, { signalled: 'test-container:0.0.1', signal: 15 }]);
    assert.deepEqual((await until(c, exited(TC))), { exit: [TC, { signalled: { signal: 15 } }] });
    const notStarted = await nstar(...u, 'kill', 'test-container:0.0.1', '9');
    assert.deepEqual([notStarted.code, notStarted.stderr], [1, 'Error: container test-container:0.0.1 is not started\n']);

    // start without overrides, kill by name with the default signal; -j shows the resolving list.
    assert.equal((await nstar(...u, 'start', '--format', 'json', 'test-container')).stdout, '{\n  "started": "test-container:0.0.1",\n  "init": null,\n  "args": [],\n  "env": {}\n}\n');
    await until(c, started(TC));
    const kj = await nstar(...u, '-j', 'kill', 'test-container');
    assert.equal(kj.code, 0);
    assert.deepEqual(lines(kj.stdout).slice(1), [
      '{"connect_ack":null}',
      '{"request":"list"}',
      lines(kj.stdout)[3]!,
      '{"request":{"kill":{"container":"test-container:0.0.1","signal":15}}}',
      '{"response":{"kill":{"ok":{"container":"test-container:0.0.1"}}}}',
    ]);
    await until(c, exited(TC));
    const k2 = await nstar(...u, 'start', 'test-container:0.0.1');
    assert.equal(k2.stdout, 'started test-container:0.0.1\n');
    await until(c, started(TC));
    assert.equal((await nstar(...u, 'kill', 'test-container:0.0.1', 'kill')).stdout, 'signalled test-container:0.0.1 with signal 9\n');
    await until(c, exited(TC));

    // Unknown containers: by name (client-side resolution) and by name:version (the runtime's error).
    const none = await nstar(...u, 'kill', 'nope');
    assert.deepEqual([none.code, none.stdout, none.stderr], [1, '', 'Error: no container found with name nope\n']);
    const unknown = await nstar(...u, 'start', 'nope:0.0.1');
    assert.deepEqual([unknown.code, unknown.stderr], [1, 'Error: invalid container nope:0.0.1\n']);
    const badName = await nstar(...u, 'inspect', 'no/pe');
    assert.equal(badName.code, 1);
    assert.match(badName.stderr, /^Error: container name: invalid character "\/"/);

    // The start mounted the resource; unmount it for a stopped, unmounted inspect.
    assert.equal((await nstar(...u, 'umount', 'test-resource')).code, 0);
    const expected = '{\n  "manifest": {\n    "name": "test-resource",\n    "version": "0.0.1",\n    "uid": 1000,\n    "gid": 1000\n  },\n  "repository": "default",\n  "mounted": false,\n  "process": null\n}\n';
    const ins = await nstar(...u, 'inspect', 'test-resource');
    assert.deepEqual([ins.code, ins.stdout], [0, expected]);
    assert.equal((await nstar(...u, 'inspect', '-f', 'json', 'test-resource:0.0.1')).stdout, expected);
    const full = JSON.parse((await nstar(...u, 'inspect', 'test-container')).stdout) as { manifest: { init: string; mounts: Record<string, unknown> }; process: unknown };
    assert.equal(full.manifest.init, '/test-container');
    assert.ok('/data' in full.manifest.mounts);
    assert.equal(full.process, null);
  });

  test('name resolution: a name with several versions is refused', async (t) => {
    const v2 = await packTestVariant('test-container-v2', testContainerManifest().replace('version: 0.0.1', 'version: 0.0.2'));
    const { u } = await runtime(t, [v2]);
    const r = await nstar(...u, 'inspect', 'test-container');
    const many = 'Error: container test-container has multiple versions: 0.0.1, 0.0.2; give one, for example test-container:0.0.2\n';
    assert.deepEqual([r.code, r.stdout, r.stderr], [1, '', many]);
    const m = await nstar(...u, 'mount', 'test-resource', 'test-container');
    assert.deepEqual([m.code, m.stderr], [1, many]);
    assert.equal((await nstar(...u, 'inspect', 'test-container:0.0.2')).code, 0);
    const ps = lines((await nstar(...u, 'ps')).stdout).map((l) => l.split('|').slice(0, 2).join('|'));
    assert.deepEqual(ps.slice(2), [' test-container | 0.0.1   ', ' test-container | 0.0.2   ', ' test-resource  | 0.0.1   ']);
  });

  test('install and uninstall: output, -j transcript with the NPK bytes, errors', async (t) => {
    const npks = await testNpks();
    const rt = await startRuntime(t, { npks: [npks['test-container']!] });
    const u = ['-u', rt.consoleUrl];
    const npk = npks['test-resource']!;

    const bad = await nstar(...u, 'install', npk, 'nope');
    assert.deepEqual([bad.code, bad.stderr], [1, 'Error: invalid repository nope\n']);
    const missing = await nstar(...u, 'install', '/nonexistent.npk', 'memory');
    assert.deepEqual([missing.code, missing.stderr], [1, 'Error: /nonexistent.npk: ENOENT\n']);

    const i = await nstar(...u, 'install', npk, 'memory');
    assert.deepEqual([i.code, i.stdout, i.stderr], [0, `installed ${npk} into memory\n`, '']);
    const dup = await nstar(...u, 'install', npk, 'default');
    assert.deepEqual([dup.code, dup.stderr], [1, 'Error: container test-resource:0.0.1 is already installed in another repository: uninstall it there first\n']);
    assert.ok((await nstar(...u, 'ps')).stdout.includes(' test-resource  | 0.0.1   | resource | installed |     |        | memory\n'));

    const un = await nstar(...u, 'uninstall', '--wipe', 'test-resource');
    assert.deepEqual([un.code, un.stdout], [0, 'uninstalled test-resource:0.0.1\n']);
    const gone = await nstar(...u, 'uninstall', 'test-resource');
    assert.deepEqual([gone.code, gone.stderr], [1, 'Error: no container found with name test-resource\n']);

    // -j: the install request line, then exactly the NPK's bytes, then the response.
    const bytes = readFileSync(npk);
    const j = await nstar(...u, '-j', 'install', npk, 'memory');
    assert.equal(j.code, 0);
    const head = `{"connect":{"version":"0.9.3","subscribe_notifications":false}}\n{"connect_ack":null}\n{"request":{"install":{"repository":"memory","size":${bytes.length}}}}\n`;
    assert.ok(j.raw.subarray(0, head.length).equals(Buffer.from(head)));
    assert.ok(j.raw.subarray(head.length, head.length + bytes.length).equals(bytes), 'the raw NPK follows the request');
    assert.equal(j.raw.subarray(head.length + bytes.length).toString(), '{"response":{"install":{"ok":{"container":"test-resource:0.0.1"}}}}\n');

    const uj = await nstar(...u, 'uninstall', '-f', 'json', 'test-resource:0.0.1');
    assert.deepEqual(JSON.parse(uj.stdout), { uninstalled: 'test-resource:0.0.1', wipe: false });
    const ij = await nstar(...u, 'install', '--format', 'json', npk, 'default');
    assert.deepEqual(JSON.parse(ij.stdout), { installed: 'test-resource:0.0.1', path: npk, repository: 'default' });
  });

  test('on a terminal: coloured tables and a progress bar for install', { skip: !hasCommand('script') && 'script (util-linux) is not installed' }, async (t) => {
    const npks = await testNpks();
    const rt = await startRuntime(t, { npks: [npks['test-container']!] });
    // script(1) runs nstar on a pseudo terminal; its output is what the terminal showed.
    const onTty = (...args: string[]): string =>
      execFileSync('script', ['-qec', [process.execPath, NSTAR, '-u', rt.consoleUrl, ...args].map((a) => `'${a}'`).join(' '), '/dev/null'], {
        encoding: 'utf8',
        env: { ...process.env, NO_COLOR: '' },
      });
    const out = onTty('install', npks['test-resource']!, 'memory');
    assert.match(out, /\rinstalling \[#{30}\] 100% \d+\.\d MiB\/\d+\.\d MiB\r?\n/);
    assert.ok(out.includes(`installed ${npks['test-resource']!} into memory`));
    const ls = onTty('ls');
    assert.ok(ls.includes('\x1b[1mName\x1b[0m'), 'bold titles');
    assert.ok(ls.includes('\x1b[34mapp\x1b[0m') && ls.includes('\x1b[32mresource\x1b[0m'), 'coloured types');
    // NO_COLOR turns colours off on a terminal too; a pipe never gets them (the other tests).
    const plain = execFileSync('script', ['-qec', `'${process.execPath}' '${NSTAR}' -u '${rt.consoleUrl}' ls`, '/dev/null'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    assert.ok(!plain.includes('\x1b['), 'no escape sequences with NO_COLOR');
  });

  test('token and verify-token; shutdown in JSON', async (t) => {
    const { rt, u } = await runtime(t);
    const tok = await nstar(...u, 'token', 'extern', 'hello');
    assert.equal(tok.code, 0);
    const m = /^created token ([A-Za-z0-9+/]{54}==)\n$/.exec(tok.stdout);
    assert.ok(m, tok.stdout);
    const token = m[1]!;
    const ok = await nstar(...u, 'verify-token', token, 'extern', 'hello');
    assert.deepEqual([ok.code, ok.stdout], [0, 'Ok\n']);
    // Anything but Ok exits with 1, so a script can test it.
    const invalid = await nstar(...u, 'verify-token', token, 'extern', 'other');
    assert.deepEqual([invalid.code, invalid.stdout, invalid.stderr], [1, 'Invalid\n', '']);
    assert.deepEqual(JSON.parse((await nstar(...u, 'verify-token', '--format', 'json', token, 'extern', 'hello')).stdout), { result: 'Ok' });
    const tj = JSON.parse((await nstar(...u, 'token', '-f', 'json', 'extern', '')).stdout) as { token: string };
    assert.equal(Buffer.from(tj.token, 'base64').length, 40);
    const bad = await nstar(...u, 'verify-token', 'abc', 'extern', 'hello');
    assert.deepEqual([bad.code, bad.stderr], [1, 'Error: invalid token: not base64\n']);
    const short = await nstar(...u, 'verify-token', 'AAAA', 'extern', 'hello');
    assert.deepEqual([short.code, short.stderr], [1, 'Error: invalid token: expected 40 bytes, got 3\n']);
    const target = await nstar(...u, 'token', 'not a name', 'x');
    assert.equal(target.code, 1);
    assert.match(target.stderr, /^Error: target: invalid character " "/);

    const down = await nstar(...u, 'shutdown', '--format', 'json');
    assert.deepEqual([down.code, JSON.parse(down.stdout)], [0, { shutdown: true }]);
    assert.equal(await rt.exited(), 0);
  });

  test('notifications -n 2 prints started and exit; JSON lines; follow until shutdown', async (t) => {
    const { rt, u } = await runtime(t);
    const c = await rt.client();
    t.after(() => c.close());

    const plain = spawnNstar([...u, 'notifications', '-n', '2']);
    t.after(() => plain.child.kill());
    await subscribers(rt, 1);
    await c.start(TC, { args: ['exit', '3'] });
    const r = await plain.done;
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, 'started test-container:0.0.1\ncontainer test-container:0.0.1 exited with status exit code 3\n', '']);

    const json = spawnNstar([...u, 'notifications', '--format', 'json', '--number', '2']);
    t.after(() => json.child.kill());
    await subscribers(rt, 2);
    await c.start(TC, { args: ['exit', '3'] });
    const rj = await json.done;
    assert.equal(rj.code, 0, rj.stderr);
    assert.equal(rj.stdout, '{"started":"test-container:0.0.1"}\n{"exit":["test-container:0.0.1",{"exit":{"code":3}}]}\n');

    // -j: the subscribing connect and its ack, then the notification lines as they came
    // (every byte read: a sleeping container, so that no exit notification can arrive
    // before nstar has closed; the shutdown below stops it).
    const raw = spawnNstar([...u, '-j', 'notifications', '-n', '1']);
    t.after(() => raw.child.kill());
    await subscribers(rt, 3);
    await c.start(TC, { args: ['sleep'] });
    const rr = await raw.done;
    assert.equal(rr.stdout, '{"connect":{"version":"0.9.3","subscribe_notifications":true}}\n{"connect_ack":null}\n{"notification":{"started":"test-container:0.0.1"}}\n');

    // Without -n: follows until the runtime goes away (our runtime announces its shutdown).
    const follow = spawnNstar([...u, 'notifications']);
    t.after(() => follow.child.kill());
    await subscribers(rt, 4);
    const s = await nstar(...u, 'shutdown');
    assert.deepEqual([s.code, s.stdout, s.stderr], [0, 'shutdown\n', '']);
    const rf = await follow.done;
    assert.equal(rf.code, 0, rf.stderr);
    assert.ok(lines(rf.stdout).includes('shutting down'), rf.stdout);
    assert.equal(await rt.exited(), 0);
    const after = await nstar(...u, 'ident');
    assert.equal(after.code, 1);
    assert.match(after.stderr, /^Error: failed to connect to unix:\/\/.*: (ENOENT|ECONNREFUSED)\nhint: is the runtime running\? nstar tried unix:\/\/.* \(given with -u\); /);
  });

  test('notifications: a connection cut without the shutdown notification exits 1, not like a finished stream', async (t) => {
    const { rt, u } = await runtime(t);
    const c = await rt.client();
    t.after(() => c.close());
    const follow = spawnNstar([...u, 'notifications']);
    t.after(() => follow.child.kill());
    await subscribers(rt, 1);
    // It printed a notification: then the runtime dies without a word.
    await c.start(TC, { args: ['sleep'] });
    await rt.until(() => follow.stdout().includes('started test-container:0.0.1\n'), 'nstar printed the started notification');
    process.kill(rt.innerPid(), 'SIGKILL');
    const r = await follow.done;
    assert.deepEqual(
      [r.code, r.stdout, r.stderr],
      [1, 'started test-container:0.0.1\n', `Error: the connection to ${rt.consoleUrl} was lost without the runtime's shutdown notification (was the runtime killed?)\n`],
    );
  });

  test('bash completion asks the runtime for container names', { skip: !hasCommand('bash') && 'bash is not installed' }, async (t) => {
    const { u } = await runtime(t);
    const dir = tempDir(t);
    const script = join(dir, 'nstar.bash');
    writeFileSync(script, (await nstar('completion', '-s', 'bash')).stdout);
    const complete = (line: string): string[] => {
      const words = line.split(' ');
      const program = `source ${script}
COMP_LINE=${JSON.stringify(line)}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')})
COMP_CWORD=${words.length - 1}
_nstar
printf '%s\\n' "\${COMPREPLY[@]}"`;
      return execFileSync('bash', ['-c', program], { encoding: 'utf8' }).split('\n').filter((l) => l !== '');
    };
    assert.deepEqual(complete(`${NSTAR} ${u.join(' ')} kill test-`).sort(), ['test-container', 'test-container:0.0.1', 'test-resource', 'test-resource:0.0.1']);
    assert.deepEqual(complete(`${NSTAR} ${u.join(' ')} mount test-resource test-r`).sort(), ['test-resource', 'test-resource:0.0.1']);
  });

  test('fish completion asks the runtime for container names', { skip: !hasCommand('fish') && 'fish is not installed (apt-get install -y fish)' }, async (t) => {
    const { u } = await runtime(t);
    const dir = tempDir(t);
    const script = join(dir, 'nstar.fish');
    writeFileSync(script, (await nstar('completion', '-s', 'fish')).stdout);
    // fish picks completions by the command's name: put `nstar` on PATH.
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    symlinkSync(NSTAR, join(bin, 'nstar'));
    const complete = (line: string): string[] =>
      execFileSync('fish', ['-c', `source ${script}; complete -C ${JSON.stringify(line)}`], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env['PATH']}` } })
        .split('\n')
        .filter((l) => l !== '')
        .sort();
    assert.deepEqual(complete(`nstar ${u.join(' ')} inspect test-c`), ['test-container', 'test-container:0.0.1']);
    assert.deepEqual(complete(`nstar --url=${u[1]} uninstall -w test-`), ['test-container', 'test-container:0.0.1', 'test-resource', 'test-resource:0.0.1']);
  });
});
