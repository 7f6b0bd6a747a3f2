/** How a container or an exec'd command ended, as the console's wire says it. */
import type { ExitStatus as WireExit } from '../api/model.js';
import type { ExitStatus } from '../launch/launcher.js';

export function toWireExit(s: ExitStatus): WireExit {
  return 'code' in s ? { exit: { code: s.code } } : { signalled: { signal: s.signal } };
}
