/**
 * A mount step's failure names the package, never the `/proc/<pid>/fd/<n>` path through which
 * the runtime reads a mem repository's sealed copy (issue 13: no such paths in refusals).
 * The tool text is real: losetup run on such a path that has no file behind it (nothing is
 * attached), as the mounter runs it for a mem repository's package.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../../src/common/exec.js';
import { hasCommand } from '../helpers/tmp.js';
import { mountError } from '../../src/runtime/mount/mounter.js';

test('a losetup failure on a mem repository package does not name /proc/<pid>/fd/<n>', async (t) => {
  if (!hasCommand('losetup')) return t.skip('losetup (util-linux) is not installed');
  const path = `/proc/${process.pid}/fd/999999`;
  const r = await run('losetup', ['--find', '--show', '--read-only', '--offset', '4096', '--sizelimit', '4096', path]);
  assert.notEqual(r.code, 0);
  assert.ok(r.stderr.includes(path), `losetup names the path it was given: ${r.stderr}`);
  const e = mountError('ENOLOOP', 'mount hello:0.0.1', r.stderr);
  assert.doesNotMatch(e.message, /\/proc\/\d+\/fd\/\d+/);
  assert.ok(e.message.startsWith("mount hello:0.0.1: losetup: the package's sealed in-memory copy: "), e.message);
  assert.equal(e.code, 'ENOLOOP');
});
