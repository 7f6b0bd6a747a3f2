/* Why an executable that exists cannot be run: execve reports ENOENT both for a missing
 * file and for a missing interpreter, so "execve /app/main.py: ENOENT" on a file that is
 * there sends users looking in the wrong place. Before the seccomp filter is loaded (which
 * may forbid open), the app reads the head of its executable and names the real cause:
 *   - a script whose #! interpreter does not exist (or cannot be executed),
 *   - an ELF binary whose dynamic loader (PT_INTERP) does not exist, typically a binary
 *     copied from another distribution or an image without its C library.
 * An executable the app may run but not read (mode --x) is not checked: execve decides. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

#define HEAD 256

/* The interpreter cannot be run: report it with the executable that names it. */
static int report_interp(const char *path, const char *interp, const char *what) {
  int e = errno;
  return fail_step("exec", e, path, "%s: %s %s %s", path, what, interp,
                   e == ENOENT ? "does not exist in the container" : "cannot be executed");
}

/* PT_INTERP of an ELF file (either class) into buf; 1 found, 0 none, -1 unreadable. */
static int elf_interp(int fd, const unsigned char *head, ssize_t n, char *buf, size_t len) {
  if (n < EI_NIDENT || memcmp(head, ELFMAG, SELFMAG) != 0) return 0;
  const int is64 = head[EI_CLASS] == ELFCLASS64;
  if (!is64 && head[EI_CLASS] != ELFCLASS32) return 0;
  uint64_t phoff;
  uint16_t phnum, phentsize;
  if (is64) {
    if ((size_t)n < sizeof(Elf64_Ehdr)) return 0;
    Elf64_Ehdr eh;
    memcpy(&eh, head, sizeof eh);
    phoff = eh.e_phoff, phnum = eh.e_phnum, phentsize = eh.e_phentsize;
    if (phentsize != sizeof(Elf64_Phdr)) return 0;
  } else {
    if ((size_t)n < sizeof(Elf32_Ehdr)) return 0;
    Elf32_Ehdr eh;
    memcpy(&eh, head, sizeof eh);
    phoff = eh.e_phoff, phnum = eh.e_phnum, phentsize = eh.e_phentsize;
    if (phentsize != sizeof(Elf32_Phdr)) return 0;
  }
  for (uint16_t i = 0; i < phnum && i < 256; i++) {
    uint64_t type, off, size;
    if (is64) {
      Elf64_Phdr ph;
      if (pread(fd, &ph, sizeof ph, (off_t)(phoff + (uint64_t)i * phentsize)) != (ssize_t)sizeof ph) return -1;
      type = ph.p_type, off = ph.p_offset, size = ph.p_filesz;
    } else {
      Elf32_Phdr ph;
      if (pread(fd, &ph, sizeof ph, (off_t)(phoff + (uint64_t)i * phentsize)) != (ssize_t)sizeof ph) return -1;
      type = ph.p_type, off = ph.p_offset, size = ph.p_filesz;
    }
    if (type != PT_INTERP) continue;
    if (size == 0 || size >= len) return -1;
    if (pread(fd, buf, (size_t)size, (off_t)off) != (ssize_t)size) return -1;
    buf[size] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return buf[0] == '/' ? 1 : -1;
  }
  return 0;
}

int check_interpreter(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0; /* not readable by the app's ids: execve decides */
  unsigned char head[HEAD + 1];
  ssize_t n = read(fd, head, HEAD);
  if (n < 0) n = 0;
  head[n] = '\0';
  char interp[PLAN_MAX_PATH + 1];
  int rc = 0;
  if (n >= 2 && head[0] == '#' && head[1] == '!') {
    const char *s = (const char *)head + 2;
    s += strspn(s, " \t");
    size_t l = strcspn(s, " \t\r\n");
    if (l > 0 && l < sizeof interp && s[0] == '/') {
      memcpy(interp, s, l);
      interp[l] = '\0';
      if (faccessat(AT_FDCWD, interp, X_OK, AT_EACCESS) < 0) rc = report_interp(path, interp, "its #! interpreter");
    }
  } else if (elf_interp(fd, head, n, interp, sizeof interp) == 1) {
    if (faccessat(AT_FDCWD, interp, X_OK, AT_EACCESS) < 0) rc = report_interp(path, interp, "its ELF interpreter (dynamic loader, PT_INTERP)");
  }
  close(fd);
  return rc;
}
