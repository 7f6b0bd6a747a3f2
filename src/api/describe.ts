/**
 * One line, lower case, describing a runtime error variant: what clients print and what the
 * runtime logs for a failed operation.
 */
import type { Container } from '../common/container.js';
import type { ExitStatus, ModelError } from './model.js';

function exitText(s: ExitStatus): string {
  return 'exit' in s ? `exit code ${s.exit.code}` : `signal ${s.signalled.signal}`;
}

/**
 * A one-line, lowercase description of a runtime error variant. `subject` is the container
 * the request named (a start's or an uninstall's), when known: the variant names another
 * container in some refusals (the running version of the name, the user of a resource).
 */
export function describeModelError(e: ModelError, subject?: Container): string {
  const other = (c: Container): boolean => subject !== undefined && subject.toString() !== c.toString();
  if ('configuration' in e) return `configuration error: ${e.configuration.context}`;
  if ('duplicate_container' in e) return `duplicate container ${e.duplicate_container.container}`;
  if ('invalid_container' in e) return `invalid container ${e.invalid_container.container}`;
  if ('invalid_arguments' in e) return `invalid arguments: ${e.invalid_arguments.cause}`;
  if ('mount_busy' in e) return `container ${e.mount_busy.container} is busy (mount)`;
  if ('umount_busy' in e && subject !== undefined) {
    const c = e.umount_busy.container;
    return other(c) ? `${subject} is in use: container ${c} is running and uses it; stop ${c} first` : `container ${c} is running: stop it first`;
  }
  if ('umount_busy' in e) return `container ${e.umount_busy.container} is busy (umount)`;
  if ('start_container_started' in e && other(e.start_container_started.container)) {
    const c = e.start_container_started.container;
    return `cannot start ${subject}: ${c} is running, and only one version of a name may run at a time; stop ${c} first`;
  }
  if ('start_container_started' in e) return `container ${e.start_container_started.container} is already started`;
  if ('start_container_resource' in e) return `container ${e.start_container_resource.container} is a resource container and has no init`;
  if ('start_container_missing_resource' in e) {
    const m = e.start_container_missing_resource;
    return `container ${m.container} misses resource ${m.resource} ${m.version}`;
  }
  if ('start_container_failed' in e) return `failed to start container ${e.start_container_failed.container}: ${e.start_container_failed.error}`;
  if ('stop_container_not_started' in e) return `container ${e.stop_container_not_started.container} is not started`;
  if ('invalid_repository' in e) return `invalid repository ${e.invalid_repository.repository}`;
  // Upstream sends it only for a copy in another repository (one in the same is `unexpected`).
  if ('install_duplicate' in e) return `container ${e.install_duplicate.container} is already installed in another repository: uninstall it there first`;
  if ('critical_container' in e) return `critical container ${e.critical_container.container} exited with ${exitText(e.critical_container.status)}`;
  // The runtime words each of its `unexpected` refusals as a plain cause (a bad package, a
  // bad signal, a full repository): no prefix that would make a refusal read like a crash.
  return e.unexpected.error;
}
