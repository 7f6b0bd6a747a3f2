/**
 * A failed start says why, to everyone: the error names the real cause (a script's missing
 * #! interpreter, not "execve ENOENT" on a file that exists), and the runtime logs it at warn,
 * not only in the answer to the client that asked.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isRoot } from '../helpers/tmp.js';
import { packOne, startRuntime } from './harness.js';

describe('start failures', { skip: !isRoot && 'needs root', timeout: 600_000 }, () => {
  test('a script whose #! interpreter is missing: the error and a warn log line name the interpreter; nothing keeps running', async (t) => {
    const npk = await packOne('nopython', 'name: nopython\nversion: 0.0.1\ninit: /app.py\nuid: 1000\ngid: 1000\n', {
      'app.py': { text: '#!/usr/bin/python3\nprint("hello")\n', mode: 0o755 },
    });
    const rt = await startRuntime(t, { npks: [npk] });
    const client = await rt.client();
    t.after(() => client.close());
    const err = await client.start('nopython:0.0.1').then(
      () => assert.fail('the start succeeded'),
      (e: unknown) => e as Error,
    );
    assert.match(err.message, /\/app\.py: its #! interpreter \/usr\/bin\/python3 does not exist in the container/);
    // The log line is the subject here: written before the answer, read from the runtime's stderr.
    const line = await rt.logged(/start of nopython:0\.0\.1 failed: .*its #! interpreter \/usr\/bin\/python3 does not exist in the container/);
    assert.match(line, /"level":"?(warn|40)/i);
    const data = await client.inspect('nopython:0.0.1');
    assert.equal(data.process, null);
  });
});
