import { z } from 'zod';
import { byteLength, nonNul } from './fields.js';

/** Maximum length of an xattr value (XATTR_SIZE_MAX); a context must be shorter. */
export const XATTR_SIZE_MAX = 65536;

const contextSchema = nonNul()
  .superRefine((c, ctx) => {
    if (c.length === 0) ctx.addIssue({ code: 'custom', message: 'selinux context must not be empty' });
    else if (byteLength(c) >= XATTR_SIZE_MAX) ctx.addIssue({ code: 'custom', message: `selinux context must be shorter than ${XATTR_SIZE_MAX} bytes` });
    else if (!/^[A-Za-z0-9:_]+$/.test(c)) {
      ctx.addIssue({ code: 'custom', message: "selinux context may contain only ASCII letters, digits, ':' and '_'" });
    }
  })
  .describe("An SELinux context such as system_u:object_r:container_file_t:s0 (only [A-Za-z0-9:_])");

export const selinuxSchema = z
  .object({ mount_context: contextSchema.optional(), exec: contextSchema.optional() })
  .strict()
  .describe('SELinux contexts: mount_context for the root mount, exec for the process.');

export type Selinux = z.output<typeof selinuxSchema>;
