import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { NorthstarError, SystemError, ValidationError, errorMessage, isSystemError } from '../src/common/errors.js';
import { describeModelError } from '../src/api/describe.js';
import { Container } from '../src/common/container.js';

test('ValidationError names the field path and the rule', () => {
  const e = new ValidationError([{ path: 'mounts./data.host', rule: 'must be an absolute path' }]);
  assert.equal(e.message, 'mounts./data.host: must be an absolute path');
  assert.equal(e.code, 'EINVALID');
  assert.equal(errorMessage(e), e.message);
});

test('SystemError keeps the shape of a Node system error, with our message', async () => {
  const cause = await readFile('/nonexistent-dir/x').catch((e: unknown) => e);
  assert.ok(isSystemError(cause));
  const e = new SystemError('repository r: cannot read /nonexistent-dir/x', cause);
  assert.ok(e instanceof NorthstarError);
  assert.equal(e.code, 'ENOENT');
  assert.equal(e.errno, cause.errno);
  assert.equal(e.syscall, 'open');
  assert.equal(e.path, '/nonexistent-dir/x');
  assert.equal(e.cause, cause);
  assert.equal(errorMessage(e), 'repository r: cannot read /nonexistent-dir/x');
  assert.equal(errorMessage(cause), 'open /nonexistent-dir/x: ENOENT');
  assert.ok(!isSystemError(new NorthstarError('EARGUMENT', 'x')));
});

test('error codes are typed: an errno name or a typo is not one of ours', () => {
  // @ts-expect-error EINVAL is the kernel's; ours are in ErrorCode (docs/design/errors.md)
  const errnoName = new NorthstarError('EINVAL', 'x');
  // @ts-expect-error a typo of ECGROUP
  const typo = new NorthstarError('ECGROPU', 'x');
  assert.equal(errnoName.code, 'EINVAL', 'the check is at compile time only');
  assert.equal(typo.code, 'ECGROPU');
});

test('runtime error variants read as plain causes: no "unexpected error:", the subject when another container is named', () => {
  const v1 = Container.parse('app:0.0.1');
  const v2 = Container.parse('app:0.0.2');
  const res = Container.parse('res:0.0.1');
  // The runtime words its `unexpected` refusals itself; nothing is put in front of them.
  assert.equal(describeModelError({ unexpected: { error: 'max number of container reached' } }), 'max number of container reached');
  assert.equal(
    describeModelError({ start_container_started: { container: v1 } }, v2),
    'cannot start app:0.0.2: app:0.0.1 is running, and only one version of a name may run at a time; stop app:0.0.1 first',
  );
  assert.equal(describeModelError({ start_container_started: { container: v1 } }, v1), 'container app:0.0.1 is already started');
  assert.equal(describeModelError({ start_container_started: { container: v1 } }), 'container app:0.0.1 is already started');
  assert.equal(describeModelError({ umount_busy: { container: v1 } }, v1), 'container app:0.0.1 is running: stop it first');
  assert.equal(describeModelError({ umount_busy: { container: v1 } }, res), 'res:0.0.1 is in use: container app:0.0.1 is running and uses it; stop app:0.0.1 first');
  // Without a subject (a mount/umount batch result) the text says only what the variant says.
  assert.equal(describeModelError({ umount_busy: { container: v1 } }), 'container app:0.0.1 is busy (umount)');
});
