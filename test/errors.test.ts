import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { NorthstarError, SystemError, ValidationError, errorMessage, isSystemError } from '../src/common/errors.js';

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
