/**
 * Upstream Northstar's example manifests, example key pair and resource payloads, kept in the
 * repository (test/fixtures/upstream-examples/README.md says where they come from), so a
 * clone alone runs the compatibility tests. Paths resolve from dist/test/helpers/.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const UPSTREAM_EXAMPLES = fileURLToPath(new URL('../../../test/fixtures/upstream-examples/', import.meta.url));
/** Upstream's example signing key (raw 32-byte Ed25519 seed). */
export const UPSTREAM_KEY = join(UPSTREAM_EXAMPLES, 'northstar.key');
/** Upstream's example public key (raw 32 bytes). */
export const UPSTREAM_PUB = join(UPSTREAM_EXAMPLES, 'northstar.pub');
