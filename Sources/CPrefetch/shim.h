// Cache prefetch hints for the HNSW walk (Swift has no portable prefetch). Header-only: the functions are inlined
// into the Swift caller as one `prefetcht0` each; no library is linked.
#ifndef RANKD_CPREFETCH_H
#define RANKD_CPREFETCH_H

/// Hints that the 64-byte cache line holding `address` will be read soon (into all cache levels).
static inline __attribute__((always_inline)) void rankd_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

#endif
