/**
 * The image config → what it implies for the manifest, as `sextant build` does with a recipe:
 * Entrypoint + Cmd → init and args, Env → env, User → uid/gid. Only what the -m file leaves
 * open is asked for (`open`), so a root image whose manifest sets uid and gid imports fine.
 */
import { imagePath } from '../common/image-path.js';
import type { ImpliedManifest } from '../manifest/implied.js';
import { lstat, readFile } from 'node:fs/promises';
import { RESERVED_ENV_VARIABLES } from '../manifest/schema.js';
import { OciError, type ImageConfig } from './image.js';

/** A host path of `path` inside `root`, following symlinks inside it; undefined when it cannot be resolved. */
async function inRoot(root: string, path: string): Promise<string | undefined> {
  const r = await imagePath(root, path, { followLast: true, create: false }).catch(() => undefined);
  return r?.ok ? r.path : undefined;
}

async function fileInRoot(root: string, path: string): Promise<string | undefined> {
  const p = await inRoot(root, path);
  if (!p) return undefined;
  const s = await lstat(p).catch(() => undefined);
  return s?.isFile() ? p : undefined;
}

function idDb(text: string | undefined): { name: string; id: number; gid: number }[] {
  if (text === undefined) return [];
  return text
    .split('\n')
    .map((l) => l.split(':'))
    .filter((f) => f.length >= 3 && /^\d+$/.test(f[2]!))
    .map((f) => ({ name: f[0]!, id: Number(f[2]), gid: /^\d+$/.test(f[3] ?? '') ? Number(f[3]) : -1 }));
}

export type { ImpliedManifest };

export interface ConfigResult {
  implied: ImpliedManifest;
  warnings: string[];
}

/**
 * `open`: the manifest fields the -m file does not set (init, uid, gid); env is merged key by key.
 * `root`: the imported tree (for /etc/passwd, /etc/group and a relative program's PATH search).
 */
export async function configToManifest(config: ImageConfig, root: string, open: { init: boolean; uid: boolean; gid: boolean }): Promise<ConfigResult> {
  const implied: ImpliedManifest = { env: {} };
  const warnings: string[] = [];
  // Env
  for (const kv of config.Env ?? []) {
    if (typeof kv !== 'string') continue;
    const i = kv.indexOf('=');
    const k = i < 0 ? kv : kv.slice(0, i);
    const v = i < 0 ? '' : kv.slice(i + 1);
    if ((RESERVED_ENV_VARIABLES as readonly string[]).includes(k)) {
      warnings.push(`image config Env ${k} is left out: the runtime sets it`);
      continue;
    }
    implied.env[k] = v;
  }
  // Entrypoint + Cmd
  const argv = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])].filter((a): a is string => typeof a === 'string');
  if (open.init && argv.length > 0) {
    let init = argv[0]!;
    if (!init.startsWith('/')) {
      // The runtime execs init without a PATH search: find it the way a shell would, in the image.
      const path = (implied.env['PATH'] ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':');
      let found: string | undefined;
      for (const d of path) {
        if (!d.startsWith('/')) continue;
        if (init.includes('/') ? false : await fileInRoot(root, `${d}/${init}`)) {
          found = `${d.replace(/\/+$/, '')}/${init}`;
          break;
        }
      }
      if (!found) throw new OciError(`image config Entrypoint/Cmd: program ${JSON.stringify(init)} is not an absolute path and is not found on the image's PATH; set init (an absolute path) in the manifest`);
      init = found;
    }
    implied.init = init;
    implied.args = argv.slice(1);
  }
  // User
  if (open.uid || open.gid) {
    const user = (config.User ?? '').trim();
    const [u, g] = user === '' ? ['', undefined] : (user.split(':', 2) as [string, string | undefined]);
    const rootAdvice = 'the manifest needs uid and gid ≥ 1: set uid and gid in the manifest (-m), or USER to a non-root user in the image';
    if (u === '') throw new OciError(`image config User is empty (the image runs as root); ${rootAdvice}`);
    const passwd = idDb(await fileInRoot(root, '/etc/passwd').then((p) => (p ? readFile(p, 'utf8') : undefined)));
    const groups = idDb(await fileInRoot(root, '/etc/group').then((p) => (p ? readFile(p, 'utf8') : undefined)));
    let uid: number;
    let primary: number | undefined;
    if (/^\d+$/.test(u)) {
      uid = Number(u);
      primary = passwd.find((p) => p.id === uid)?.gid;
    } else {
      const e = passwd.find((p) => p.name === u);
      if (!e) throw new OciError(`image config User ${JSON.stringify(user)}: no user ${JSON.stringify(u)} in the image's /etc/passwd; set uid and gid in the manifest (-m)`);
      uid = e.id;
      primary = e.gid;
    }
    let gid: number | undefined;
    if (g !== undefined && g !== '') {
      if (/^\d+$/.test(g)) gid = Number(g);
      else {
        const e = groups.find((x) => x.name === g);
        if (!e) throw new OciError(`image config User ${JSON.stringify(user)}: no group ${JSON.stringify(g)} in the image's /etc/group; set gid in the manifest (-m)`);
        gid = e.id;
      }
    } else if (primary !== undefined && primary >= 0) gid = primary;
    if (open.uid) {
      if (uid === 0) throw new OciError(`image config User ${JSON.stringify(user)} is root (uid 0); ${rootAdvice}`);
      implied.uid = uid;
    }
    if (open.gid) {
      if (gid === undefined) throw new OciError(`image config User ${JSON.stringify(user)}: no group given and uid ${uid} has no /etc/passwd entry; write User as <uid>:<gid> or set gid in the manifest (-m)`);
      if (gid === 0) throw new OciError(`image config User ${JSON.stringify(user)}: the group is root (gid 0); ${rootAdvice}`);
      implied.gid = gid;
    }
  }
  // What the manifest cannot take from the config.
  if (config.WorkingDir && config.WorkingDir !== '/') {
    warnings.push(`image config WorkingDir ${config.WorkingDir} is not kept: a container starts in /; make the program change directory (e.g. init /bin/sh with args -c "cd ${config.WorkingDir} && exec …")`);
  }
  const ports = Object.keys(config.ExposedPorts ?? {});
  if (ports.length > 0) warnings.push(`image config ExposedPorts ${ports.join(', ')}: an NPK has no port mapping; a container has only loopback unless the manifest sets network: host (then it listens on the host's ports directly)`);
  const volumes = Object.keys(config.Volumes ?? {});
  if (volumes.length > 0) warnings.push(`image config Volumes ${volumes.join(', ')}: add them as manifest mounts (type persist for data that survives, tmpfs for scratch)`);
  if (config.Healthcheck) warnings.push('image config Healthcheck is ignored: the runtime has no health checks; a client can watch the container\'s exit notifications and restart it');
  if (config.StopSignal && config.StopSignal !== 'SIGTERM' && config.StopSignal !== '15') warnings.push(`image config StopSignal ${config.StopSignal} is ignored: the runtime stops containers with SIGTERM`);
  return { implied, warnings };
}
