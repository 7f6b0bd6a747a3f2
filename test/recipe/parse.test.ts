import { test } from 'node:test';
import assert from 'node:assert/strict';
import { impliedManifest, initInstruction, isRegistryReference, parseRecipe, RecipeError } from '../../src/recipe/parse.js';
import { mergeManifest } from '../../src/recipe/manifest.js';

const bad = (text: string, re: RegExp) => assert.throws(() => parseRecipe(text, 'R'), (e: unknown) => e instanceof RecipeError && re.test(e.message));

test('instructions, comments, continuations and both command forms', () => {
  const r = parseRecipe(
    [
      '# a comment',
      'from scratch',
      '',
      'COPY --chown=7:8 a b/c* "d e" /dest/',
      'RUN --network=none echo one \\',
      '  # comment inside a continuation',
      '  && echo two',
      'RUN ["/bin/true", "x"]',
      'ENV A=1 B="two words" C=\'x y\'',
      'ENV LEGACY value with spaces',
      'USER 1000:1001',
      'ENTRYPOINT ["/app", "--flag"]',
      'CMD ["arg"]',
    ].join('\n'),
    'R',
  );
  const [from, copy, run1, run2, env1, env2, user] = r.instructions;
  assert.deepEqual(from, { op: 'FROM', line: 2, text: 'from scratch', source: { kind: 'scratch' } });
  assert.equal(copy?.op, 'COPY');
  if (copy?.op === 'COPY') {
    assert.deepEqual(copy.sources, ['a', 'b/c*', 'd e']);
    assert.equal(copy.dest, '/dest/');
    assert.deepEqual(copy.chown, { uid: 7, gid: 8 });
  }
  assert.ok(run1?.op === 'RUN' && run1.network === 'none' && 'shell' in run1.command && /echo one\s+&& echo two/.test(run1.command.shell));
  assert.equal(run1.line, 5);
  assert.ok(run2?.op === 'RUN' && run2.network === 'host');
  assert.deepEqual(run2.command, { exec: ['/bin/true', 'x'] });
  assert.ok(env1?.op === 'ENV');
  assert.deepEqual(env1.env, [['A', '1'], ['B', 'two words'], ['C', 'x y']]);
  assert.ok(env2?.op === 'ENV');
  assert.deepEqual(env2.env, [['LEGACY', 'value with spaces']]);
  assert.ok(user?.op === 'USER' && user.uid === 1000 && user.gid === 1001);
  const m = impliedManifest(r);
  assert.deepEqual(m, { init: '/app', args: ['--flag', 'arg'], env: { A: '1', B: 'two words', C: 'x y', LEGACY: 'value with spaces' }, uid: 1000, gid: 1001 });
});

test('FROM forms', () => {
  assert.deepEqual(parseRecipe('FROM debian:bookworm').instructions[0], { op: 'FROM', line: 1, text: 'FROM debian:bookworm', source: { kind: 'debian', suite: 'bookworm' } });
  assert.deepEqual(parseRecipe('FROM ./base.npk').instructions[0], { op: 'FROM', line: 1, text: 'FROM ./base.npk', source: { kind: 'path', path: './base.npk' } });
});

test('ENTRYPOINT and CMD combine as in Docker', () => {
  const im = (t: string) => impliedManifest(parseRecipe(`FROM scratch\n${t}`));
  assert.deepEqual(im('CMD echo hi'), { init: '/bin/sh', args: ['-c', 'echo hi'], env: {} });
  assert.deepEqual(im('CMD ["/x", "y"]'), { init: '/x', args: ['y'], env: {} });
  assert.deepEqual(im('ENTRYPOINT run me\nCMD ["ignored"]'), { init: '/bin/sh', args: ['-c', 'run me'], env: {} });
  assert.deepEqual(im('ENTRYPOINT ["/e"]\nCMD c d'), { init: '/e', args: ['/bin/sh', '-c', 'c d'], env: {} });
  assert.deepEqual(im('USER 5'), { env: {}, uid: 5, gid: 5 });
});

test('bad recipes get clear errors with file and line', () => {
  bad('', /recipe is empty/);
  bad('RUN x', /R:1: the first instruction must be FROM/);
  bad('FROM scratch\nFROM scratch', /R:2: FROM may appear only once/);
  bad('FROM scratch\nWORKDIR /app', /R:2: WORKDIR is not supported: a northstar manifest has no working directory/);
  bad('FROM scratch\nUSER nobody', /R:2: USER "nobody": only numeric/);
  bad('FROM scratch\nUSER 70000', /at most 65535/);
  bad('FROM scratch\nCOPY onlyone', /at least one source and a destination/);
  bad('FROM scratch\nRUN --network=bridge x', /--network must be host or none/);
  bad('FROM scratch\nRUN --mount=x y', /RUN has no flag --mount/);
  bad('FROM scratch\nRUN ["a", 1]', /array of strings/);
  bad('FROM scratch\nRUN [oops', /invalid JSON form/);
  bad('FROM scratch\nENV 1X=2', /invalid environment variable name/);
  bad('FROM scratch\nFROBNICATE x', /unknown instruction "FROBNICATE"/);
  bad('FROM scratch\nADD x /', /ADD is not supported: use COPY/);
  bad('FROM debian:Bad', /invalid Debian suite/);
  bad('FROM scratch\nENV A="unterminated', /unterminated double quote/);
});

test('the manifest merge: the recipe wins, env merges, the result is validated', () => {
  const r = impliedManifest(parseRecipe('FROM scratch\nENV B=2 C=3\nUSER 10:20\nCMD ["/bin/app", "x"]'));
  const m = mergeManifest('name: app\nversion: 1.0.0\ninit: /old\nenv:\n  A: 1\n  B: old\n', 'yaml', r);
  assert.equal(m.init, '/bin/app');
  assert.deepEqual(m.args, ['x']);
  assert.deepEqual(m.env, { A: '1', B: '2', C: '3' });
  assert.equal(m.uid, 10);
  assert.equal(m.gid, 20);
  const j = mergeManifest('{"name": "app", "version": "1.0.0", "uid": 1, "gid": 1}', 'json', r);
  assert.equal(j.uid, 10);
  assert.throws(() => mergeManifest('name: app\nversion: 1.0.0\n', 'yaml', { env: {} }), /uid: missing field|uid/);
  assert.throws(() => mergeManifest('name: app\nversion: 1.0.0\n', 'yaml', { env: {}, uid: 0, gid: 0 }), /uid: must be at least 1/);
  assert.throws(() => mergeManifest('name: [', 'yaml', r), /invalid manifest|unexpected|flow/i);
});

test('EXPOSE and LABEL are accepted with a warning that says what they do not do', () => {
  const r = parseRecipe('FROM scratch\nEXPOSE 8080/tcp\nLABEL a=b\nCMD ["/app"]\n', 'R');
  assert.deepEqual(r.instructions.map((i) => i.op), ['FROM', 'CMD'], 'neither becomes a step');
  assert.equal(r.warnings.length, 2);
  assert.match(r.warnings[0]!, /^R:2: EXPOSE is ignored: northstar maps no ports\. .*own empty network namespace unless the manifest sets `network: host`/);
  assert.match(r.warnings[1]!, /^R:3: LABEL is ignored: .*manifest field `custom`/);
  assert.deepEqual(parseRecipe('FROM scratch').warnings, []);
});

test('FROM with a registry image says how to copy it to a file and what FROM accepts', () => {
  for (const ref of ['python:3.11-slim', 'docker.io/library/redis:7', 'ghcr.io/owner/app:latest', 'alpine@sha256:' + 'a'.repeat(64), 'localhost:5000/app:1']) {
    bad(`FROM ${ref}`, new RegExp(`^R:1: FROM ${ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: registry images are not fetched; copy the image to a file first \\(skopeo copy docker://.*\\) and write FROM oci-archive:image.tar .*FROM accepts scratch, debian:<suite>.*oci:<dir>\\[:<tag>\\], oci-archive:<file>.*docker-archive:<file>.*a directory, or an NPK file`));
  }
  bad('FROM debian:12', /invalid Debian suite "12": debian:<suite> takes a Debian suite name such as bookworm/);
  bad('FROM debian:bookworm-slim', /invalid Debian suite "bookworm-slim"/);
  bad('FROM python AS build', /multi-stage builds are not supported/);
  // Paths stay paths.
  assert.deepEqual(parseRecipe('FROM base.npk').instructions[0], { op: 'FROM', line: 1, text: 'FROM base.npk', source: { kind: 'path', path: 'base.npk' } });
  assert.deepEqual(parseRecipe('FROM oci-archive:app.tar:v1').instructions[0], { op: 'FROM', line: 1, text: 'FROM oci-archive:app.tar:v1', source: { kind: 'oci', image: 'oci-archive:app.tar:v1' } });
  assert.deepEqual(parseRecipe('FROM docker-archive:/tmp/x.tar').instructions[0]?.op, 'FROM');
  assert.deepEqual(parseRecipe('FROM ./a:b').instructions[0], { op: 'FROM', line: 1, text: 'FROM ./a:b', source: { kind: 'path', path: './a:b' } });
  assert.equal(isRegistryReference('rootfs'), false, 'a bare name is a directory or NPK (its absence is reported with what FROM accepts)');
});

test('initInstruction: the ENTRYPOINT or CMD whose program becomes init', () => {
  const at = (t: string) => initInstruction(parseRecipe(`FROM scratch\n${t}`))?.line ?? null;
  assert.equal(at('ENV A=1'), null);
  assert.equal(at('CMD ["a"]\nENTRYPOINT ["b"]'), 3);
  assert.equal(at('ENTRYPOINT ["b"]\nCMD ["a"]'), 2);
  assert.equal(at('CMD ["a"]\nCMD ["c"]'), 3);
});
