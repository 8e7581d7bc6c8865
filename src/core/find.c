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
    /* the two bytes tested first: the second and the last but one when the
     * needle has four or more, since a JSON key's first and last byte are
     * quotes, which a JSON text has everywhere */
    size_t pa = nl >= 4 ? 1 : 0, pb = nl >= 4 ? nl - 2 : nl - 1;
    const __m128i va = _mm_set1_epi8(needle[pa]), vb = _mm_set1_epi8(needle[pb]);
    for (; i + 16 <= lim; i += 16) {
        /* hay[i + k + pa] and hay[i + k + pb], k = 0..15: both loads end at
         * or before hay + lim - 1 + nl - 1 < hay + n */
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(hay + i + pa));
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(hay + i + pb));
        unsigned m = (unsigned)_mm_movemask_epi8(
            _mm_and_si128(_mm_cmpeq_epi8(a, va), _mm_cmpeq_epi8(b, vb)));
        while (m) {
            unsigned k = (unsigned)__builtin_ctz(m);
            if (memcmp(hay + i + k, needle, nl) == 0)
                return hay + i + k;
            m &= m - 1;
        }
    }
#endif
    return scan_plain(hay, i, lim, needle, nl);
}

size_t cg_find2(const char *p, size_t n, char a, char b) {
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i va = _mm_set1_epi8(a), vb = _mm_set1_epi8(b);
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        unsigned m =
            (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, va), _mm_cmpeq_epi8(v, vb)));
        if (m)
            return i + (unsigned)__builtin_ctz(m);
    }
#endif
    for (; i < n; i++)
        if (p[i] == a || p[i] == b)
            return i;
    return n;
}

size_t cg_find_eol(const char *p, size_t n) {
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        unsigned m =
            (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)));
        if (m)
            return i + (unsigned)__builtin_ctz(m);
    }
#endif
    for (; i < n; i++)
        if (p[i] == '\r' || p[i] == '\n')
            return i;
    return n;
}
