#!/usr/bin/env bash
# Checks the kernel configuration for what the Northstar runtime needs (like upstream's
# check_conf.sh). Reads /proc/config.gz, else /boot/config-$(uname -r), or the file given
# as $1. Exit 0 when every required option is set, 1 otherwise.
set -uo pipefail
src=${1:-}
if [ -z "$src" ]; then
  if [ -r /proc/config.gz ]; then src=/proc/config.gz
  elif [ -r "/boot/config-$(uname -r)" ]; then src="/boot/config-$(uname -r)"
  else echo "no kernel config found (/proc/config.gz or /boot/config-$(uname -r)); pass one as argument" >&2; exit 2; fi
fi
if [[ "$src" == *.gz ]]; then config=$(zcat "$src"); else config=$(cat "$src"); fi

value() { grep -E "^CONFIG_$1=" <<<"$config" | head -1 | cut -d= -f2; }
missing=0
check() { # level option why
  local v; v=$(value "$2")
  if [ "$v" = y ] || [ "$v" = m ]; then printf '  ok       %-28s %s\n' "$2" "$3"
  elif [ "$1" = required ]; then printf '  MISSING  %-28s %s\n' "$2" "$3"; missing=1
  else printf '  optional %-28s %s (not set)\n' "$2" "$3"; fi
}

echo "kernel config: $src"
echo "required:"
check required NAMESPACES "namespaces"
check required PID_NS "PID namespace per container"
check required UTS_NS "UTS namespace"
check required IPC_NS "IPC namespace"
check required NET_NS "network namespace per container"
check required BLK_DEV_LOOP "loop devices for NPK images"
check required SQUASHFS "squashfs images"
check required SQUASHFS_ZLIB "gzip-compressed squashfs"
check required SQUASHFS_XATTR "SELinux labels in images"
check required CGROUPS "cgroups"
check required MEMCG "memory limits and the OOM monitor"
check required SECCOMP_FILTER "seccomp"
check required MEMFD_CREATE "sealed memfds (mem repositories, sealed launch core)"
check required PROC_FS "/proc in containers"
check required SYSFS "/sys in containers"
check required UNIX "unix sockets (console, manifest sockets)"
echo "optional:"
check optional BLK_DEV_DM "device-mapper (kernel dm-verity; else user-space verification)"
check optional DM_VERITY "dm-verity"
check optional CRYPTO_SHA256 "sha256 for dm-verity"
check optional SQUASHFS_ZSTD "zstd-compressed squashfs"
check optional TMPFS "tmpfs mounts and writable roots"
check optional OVERLAY_FS "writable roots and recipe builds"
check optional CGROUP_SCHED "cpu shares and quotas"
check optional BLK_CGROUP "block-IO limits"
check optional CGROUP_PIDS "pids controller"
check optional RT_GROUP_SCHED "realtime budgets per cgroup"
check optional VETH "veth pairs for named network namespaces"
check optional BRIDGE "bridges for named network namespaces"
check optional SECURITY_SELINUX "SELinux contexts"
exit $missing
