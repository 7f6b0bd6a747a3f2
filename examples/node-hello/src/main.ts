/**
 * A TypeScript app in a container: connects to the runtime over the console fd the
 * runtime passed in NORTHSTAR_CONSOLE, using the project's client library, and prints
 * who it is, the installed containers and what the runtime says about itself.
 */
import { Client } from '../../../src/client/index.js';

const client = await Client.connect('env', { timeout: 5000 });
try {
  const me = await client.ident();
  console.log(`Hello from TypeScript in ${me.toString()} on Node.js ${process.version}`);
  const containers = (await client.list()).map((c) => c.toString()).sort();
  console.log(`Installed containers: ${containers.join(', ')}`);
  const data = await client.inspect(me);
  console.log(`Inspect ${me.toString()}: init ${data.manifest.init ?? '-'}, pid ${data.process?.pid ?? '-'}, repository ${data.repository}`);
} finally {
  await client.close();
}
