/* find: substring search (see find.h). */
#include "core/find.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Positions i < lim (lim = n - nl + 1) one at a time from i; nl >= 2. */
static const char *scan_plain(const char *hay, size_t i, size_t lim, const char *needle,
                              size_t nl) {
    const char first = needle[0], last = needle[nl - 1];
    for (; i < lim; i++)
        if (hay[i] == first && hay[i + nl - 1] == last &&
            memcmp(hay + i + 1, needle + 1, nl - 2) == 0)
            return hay + i;
    return NULL;
}

const char *cg_memmem(const char *hay, size_t n, const char *needle, size_t nl) {
    if (nl == 0)
        return hay;
    if (nl > n)
        return NULL;
    if (nl == 1)
        return memchr(hay, needle[0], n);
    size_t lim = n - nl + 1; /* a match starts below hay + lim */
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i vf = _mm_set1_epi8(needle[0]), vl = _mm_set1_epi8(needle[nl - 1]);
    for (; i + 16 <= lim; i += 16) {
        /* hay[i + k] == first and hay[i + k + nl - 1] == last, k = 0..15:
         * both loads end at or before hay + lim - 1 + nl - 1 < hay + n */
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(hay + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(hay + i + nl - 1));
        unsigned m = (unsigned)_mm_movemask_epi8(
            _mm_and_si128(_mm_cmpeq_epi8(a, vf), _mm_cmpeq_epi8(b, vl)));
        while (m) {
            unsigned k = (unsigned)__builtin_ctz(m);
            if (memcmp(hay + i + k + 1, needle + 1, nl - 2) == 0)
                return hay + i + k;
            m &= m - 1;
        }
    }
#endif
    return scan_plain(hay, i, lim, needle, nl);
}
