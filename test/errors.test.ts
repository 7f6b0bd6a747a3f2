import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationError, errorMessage } from '../src/common/errors.js';

test('ValidationError names the field path and the rule', () => {
  const e = new ValidationError([{ path: 'mounts./data.host', rule: 'must be an absolute path' }]);
  assert.equal(e.message, 'mounts./data.host: must be an absolute path');
  assert.equal(e.code, 'EINVALID');
  assert.equal(errorMessage(e), e.message);
});
