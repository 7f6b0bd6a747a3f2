/* Keep the long-lived runtime-side processes (the launcher waiting for init, and init
 * waiting for the app) small. Both run from the same sealed memfd; executing the setup
 * code faults in most of the binary's read-only segments (fault-around maps 64 KiB per
 * fault). Once setup is over that code is not needed any more, so the page-table
 * mappings of the read-only PT_LOAD segments are dropped with MADV_DONTNEED: the pages
 * stay in the memfd and are faulted back on demand, only the few the wait loops touch.
 * Writable segments are never touched (that would lose data). */
#include <link.h>
#include <malloc.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core.h"

static int drop_readonly(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  (void)data;
  const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W)) continue;
    uintptr_t start = (info->dlpi_addr + ph->p_vaddr) & ~(page - 1);
    uintptr_t end = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + page - 1) & ~(page - 1);
    /* Failure only means more stays resident; nothing to report. */
    (void)madvise((void *)start, end - start, MADV_DONTNEED);
  }
  return 1; /* only the main program: static binary */
}

void trim_rss(void) {
  malloc_trim(0);
  dl_iterate_phdr(drop_readonly, NULL);
}
