/**
 * Entry of the Mender Update Module `northstar-npk` (packaging/mender/northstar-npk runs
 * `node dist/src/mender/main.js STATE DIRECTORY`): runs the state, exits with its code.
 */
import { runState } from './module.js';

const [state, tree] = process.argv.slice(2);
const code = await runState(state, tree, {
  env: process.env,
  log: (line) => process.stderr.write(`${line}\n`),
  answer: (line) => process.stdout.write(`${line}\n`),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
});
// Exit once the output is written, even if a connection's handle lingers.
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
