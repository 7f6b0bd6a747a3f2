/**
 * What an image implies for its manifest (a recipe's instructions, an OCI image's config):
 * init, args, env, uid and gid, only those set; merged under the manifest the user wrote.
 */
export interface ImpliedManifest {
  init?: string;
  args?: string[];
  env: Record<string, string>;
  uid?: number;
  gid?: number;
}
