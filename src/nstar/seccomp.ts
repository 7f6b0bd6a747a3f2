/**
 * `nstar seccomp <strace log>`: a manifest `seccomp` section allowing every syscall the log
 * shows. With the default profile (the default), syscalls it already allows are left out.
 */
import { readFile } from 'node:fs/promises';
import { NorthstarError } from '../common/errors.js';
import { ARCH_SYSCALLS, BASE_SYSCALLS } from '../manifest/seccomp-profile.js';

// `[pid 12] name(`, `12 name(` or `name(`: the syscall name before its argument list.
const LINE = /^\s*(?:\[[^\]]*\]|\d+)?\s*([a-zA-Z0-9_]+)\(([^)<]*)/;

/** The syscall names of an strace log, in first-seen order. */
export function straceSyscalls(log: string): string[] {
  const seen = new Set<string>();
  for (const line of log.split('\n')) {
    const m = LINE.exec(line);
    if (m) seen.add(m[1]!);
  }
  return [...seen];
}

/** The YAML text: `profile: default` (unless disabled) and `allow: {name: any}` sorted by name. */
export function seccompYaml(log: string, defaultProfile = true): string {
  const covered = new Set<string>([...BASE_SYSCALLS, ...(ARCH_SYSCALLS[process.arch] ?? []), 'personality']);
  const allow = straceSyscalls(log)
    .filter((s) => !defaultProfile || !covered.has(s))
    .sort();
  const lines: string[] = [];
  if (defaultProfile) lines.push('profile: default');
  if (allow.length > 0) {
    lines.push('allow:');
    for (const s of allow) lines.push(`  ${s}: any`);
  }
  return lines.length === 0 ? '{}\n' : `${lines.join('\n')}\n`;
}

export async function seccompFromFile(path: string, defaultProfile: boolean): Promise<string> {
  const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new NorthstarError('ESTRACE', `failed to open strace log ${path}: ${e.code ?? e.message}`);
  });
  return seccompYaml(text, defaultProfile);
}
