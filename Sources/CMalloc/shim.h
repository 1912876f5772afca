// glibc's malloc tuning calls, which Swift's Glibc module does not export (<malloc.h>). Header-only.
#ifndef RANKD_CMALLOC_H
#define RANKD_CMALLOC_H

#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
#endif

/// Returns the free pages of every malloc arena to the system (glibc `malloc_trim(0)`); a no-op elsewhere.
static inline void rankd_malloc_trim(void) {
#if defined(__GLIBC__)
    (void)malloc_trim(0);
#endif
}

#endif
