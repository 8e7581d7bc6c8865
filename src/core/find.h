/* find: substring search for the request path.
 *
 * Owns: cg_memmem, a drop-in for memmem(3) tuned for what the gateway
 * searches: short needles (a JSON key such as "\"usage\":{") in short
 * haystacks (one SSE event, one response body). glibc's memmem sets up a
 * shift table on every call, which costs more than the search itself there.
 * This one compares the needle's first and last byte against 16 positions
 * at once (SSE2, part of every x86-64 CPU; a plain loop elsewhere) and
 * checks the middle only where both match.
 */
#ifndef CG_CORE_FIND_H
#define CG_CORE_FIND_H

#include <stddef.h>

/* The first occurrence of needle[0..nl) in hay[0..n), or NULL (as memmem:
 * an empty needle is found at hay). */
const char *cg_memmem(const char *hay, size_t n, const char *needle, size_t nl);

#endif
