/* find: substring search for the request path.
 *
 * Owns: cg_memmem, a drop-in for memmem(3) tuned for what the gateway
 * searches: short needles (a JSON key such as "\"usage\":{") in short
 * haystacks (one SSE event, one response body). glibc's memmem sets up a
 * shift table on every call, which costs more than the search itself there.
 * This one compares two bytes of the needle (its second and last but one,
 * as a JSON key starts and ends with a quote; first and last when shorter)
 * against 16 positions at once (SSE2, part of every x86-64 CPU; a plain
 * loop elsewhere) and compares the whole needle only where both match.
 * cg_find_eol finds a line end and cg_find2 either of two bytes the same
 * way, 16 bytes at a time; cg_json_plain_len the end of a JSON string's
 * plain run and cg_header_ctl_len a header value's first forbidden byte.
 */
#ifndef CG_CORE_FIND_H
#define CG_CORE_FIND_H

#include <stddef.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* The first occurrence of needle[0..nl) in hay[0..n), or NULL (as memmem:
 * an empty needle is found at hay). */
const char *cg_memmem(const char *hay, size_t n, const char *needle, size_t nl);

/* The index of the first CR or LF in p[0..n), or n when there is none (the
 * line scans of the SSE parser). */
size_t cg_find_eol(const char *p, size_t n);

/* The index of the first byte equal to a or to b in p[0..n), or n when there
 * is none (a == b searches one byte). The JSON scanners use it for the next
 * quote or backslash: unlike memchr, no call setup dominates a short run. */
size_t cg_find2(const char *p, size_t n, char a, char b);

/* The index of the first byte of p[0..n) that a JSON string cannot simply
 * run over: a quote, a backslash, a control byte (below 0x20) or a byte of
 * 0x80 and above (UTF-8, for the caller to check); n when there is none.
 * The JSON scanners skip a string's plain run with it, 16 bytes at a time
 * (one signed compare catches both the control bytes and the high ones);
 * inline, since most runs end within their first 16 bytes. */
static inline size_t cg_json_plain_len(const char *p, size_t n) {
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\'), sp = _mm_set1_epi8(0x20);
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        __m128i special = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, bs)),
                                       _mm_cmplt_epi8(v, sp)); /* signed: >= 0x80 too */
        unsigned m = (unsigned)_mm_movemask_epi8(special);
        if (m)
            return i + (unsigned)__builtin_ctz(m);
    }
#endif
    for (; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
            return i;
    }
    return n;
}

/* The index of the first byte of p[0..n) that a header value may not hold
 * (a control byte other than tab, or DEL), or n: obs-text (0x80 and above)
 * is allowed, as RFC 9110 says. 16 bytes at a time. */
static inline size_t cg_header_ctl_len(const char *p, size_t n) {
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i c1f = _mm_set1_epi8(0x1f), tab = _mm_set1_epi8('\t'), del = _mm_set1_epi8(0x7f);
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(v, c1f), v); /* v <= 0x1f, unsigned */
        __m128i bad =
            _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(v, tab), ctl), _mm_cmpeq_epi8(v, del));
        unsigned m = (unsigned)_mm_movemask_epi8(bad);
        if (m)
            return i + (unsigned)__builtin_ctz(m);
    }
#endif
    for (; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return i;
    }
    return n;
}

#endif
