/* pretok: hand-written scanners equivalent to tiktoken's split regexes.
 *
 * Owns: the class flags derived from uclass and the per-alternative
 * matchers. Each alternative is tried in the regex's order and returns the
 * end the backtracking engine would find; see pretok.h for the patterns.
 */
#include "tokenize/pretok.h"

#include "tokenize/uclass.h"

enum {
    F_L = 1,     /* \p{L} */
    F_N = 2,     /* \p{N} */
    F_WS = 4,    /* \s */
    F_CRLF = 8,  /* [\r\n] */
    F_UP = 16,   /* [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] */
    F_LO = 32,   /* [\p{Ll}\p{Lm}\p{Lo}\p{M}] */
    F_O = 64,    /* [^\s\p{L}\p{N}] */
    F_PRE = 128, /* [^\r\n\p{L}\p{N}] */
};

static const uint8_t FLAGS[16] = {
    [CG_UC_OTHER] = F_O | F_PRE,
    [CG_UC_LU] = F_L | F_UP,
    [CG_UC_LL] = F_L | F_LO,
    [CG_UC_LT] = F_L | F_UP,
    [CG_UC_LM] = F_L | F_UP | F_LO,
    [CG_UC_LO] = F_L | F_UP | F_LO,
    [CG_UC_M] = F_UP | F_LO | F_O | F_PRE,
    [CG_UC_N] = F_N,
    [CG_UC_WS] = F_WS | F_PRE,
    [CG_UC_CRLF] = F_WS | F_CRLF,
};

/* Flags of the code point at i (< n); *next = offset after it. */
static inline uint8_t at(const cg_pretok *pt, size_t i, size_t *next) {
    const uint8_t *s = pt->s;
    uint32_t b = s[i], cp;
    if (b < 0x80) {
        *next = i + 1;
        cp = b;
    } else if (b < 0xE0) {
        *next = i + 2;
        cp = ((b & 0x1Fu) << 6) | (s[i + 1] & 0x3Fu);
    } else if (b < 0xF0) {
        *next = i + 3;
        cp = ((b & 0x0Fu) << 12) | ((s[i + 1] & 0x3Fu) << 6) | (s[i + 2] & 0x3Fu);
    } else {
        *next = i + 4;
        cp = ((b & 0x07u) << 18) | ((s[i + 1] & 0x3Fu) << 12) | ((s[i + 2] & 0x3Fu) << 6) |
             (s[i + 3] & 0x3Fu);
    }
    return FLAGS[pt->uc[cp]];
}

/* End of the run of code points from i whose flags intersect mask. */
static size_t run(const cg_pretok *pt, size_t i, uint8_t mask) {
    size_t nx;
    while (i < pt->n && (at(pt, i, &nx) & mask))
        i = nx;
    return i;
}

static inline int fold_is(uint8_t c, char lower) {
    return c == (uint8_t)lower || c == (uint8_t)(lower - 32);
}

/* Length of (?i:'s|'t|'re|'ve|'m|'ll|'d) at i, or 0. */
static size_t contraction(const cg_pretok *pt, size_t i) {
    const uint8_t *s = pt->s;
    size_t n = pt->n;
    if (i + 1 >= n || s[i] != '\'')
        return 0;
    uint8_t c = s[i + 1];
    if (fold_is(c, 's') || fold_is(c, 't') || fold_is(c, 'm') || fold_is(c, 'd'))
        return 2;
    if (c == 0xC5 && i + 2 < n && s[i + 2] == 0xBF) /* U+017F folds to 's' */
        return 3;
    if (i + 2 < n) {
        uint8_t d = s[i + 2];
        if ((fold_is(c, 'r') || fold_is(c, 'v')) && fold_is(d, 'e'))
            return 3;
        if (fold_is(c, 'l') && fold_is(d, 'l'))
            return 3;
    }
    return 0;
}

/* [UP]*[LO]+ contraction? from j; 0 if no match, else end. */
static size_t word_lower(const cg_pretok *pt, size_t j) {
    size_t p = j, nx, last_lo_end = 0, e;
    uint8_t f = 0;
    while (p < pt->n) {
        f = at(pt, p, &nx);
        if (!(f & F_UP))
            break;
        if (f & F_LO)
            last_lo_end = nx;
        p = nx;
    }
    if (p < pt->n && (f & F_LO) && !(f & F_UP))
        e = run(pt, nx, F_LO);
    else if (last_lo_end)
        e = last_lo_end;
    else
        return 0;
    return e + contraction(pt, e);
}

/* [UP]+[LO]* contraction? from j; 0 if no match, else end. */
static size_t word_upper(const cg_pretok *pt, size_t j) {
    size_t p = run(pt, j, F_UP);
    if (p == j)
        return 0;
    size_t e = run(pt, p, F_LO);
    return e + contraction(pt, e);
}

/* The whitespace alternatives shared by both encodings, at a \s char:
 * \s*[\r\n]+ | \s+(?!\S) | \s+ */
static size_t space(const cg_pretok *pt, size_t i) {
    size_t p = i, nx, last = i, crlf_end = 0, m = 0;
    while (p < pt->n) {
        uint8_t f = at(pt, p, &nx);
        if (!(f & F_WS))
            break;
        if (f & F_CRLF)
            crlf_end = nx;
        last = p;
        p = nx;
        m++;
    }
    if (crlf_end)
        return crlf_end;
    if (p == pt->n || m == 1)
        return p;
    return last;
}

size_t cg_pretok_o200k(const cg_pretok *pt, size_t i) {
    const uint8_t *s = pt->s;
    size_t n = pt->n, i1, e;
    uint8_t f0 = at(pt, i, &i1);

    if ((f0 & F_PRE) && (e = word_lower(pt, i1)))
        return e;
    if ((f0 & (F_UP | F_LO)) && (e = word_lower(pt, i)))
        return e;
    if ((f0 & F_PRE) && (e = word_upper(pt, i1)))
        return e;
    if ((f0 & F_UP) && (e = word_upper(pt, i)))
        return e;
    if (f0 & F_N) {
        size_t p = i1, nx;
        for (int k = 1; k < 3 && p < n && (at(pt, p, &nx) & F_N); k++)
            p = nx;
        return p;
    }
    /* ' '?[^\s\p{L}\p{N}]+[\r\n/]* */
    size_t j = (f0 & F_O) ? i : n;
    if (s[i] == ' ' && i1 < n) {
        size_t nx;
        if (at(pt, i1, &nx) & F_O)
            j = i1;
    }
    if (j < n) {
        e = run(pt, j, F_O);
        while (e < n && (s[e] == '\r' || s[e] == '\n' || s[e] == '/'))
            e++;
        return e;
    }
    return space(pt, i);
}

size_t cg_pretok_cl100k(const cg_pretok *pt, size_t i) {
    const uint8_t *s = pt->s;
    size_t n = pt->n, i1, e;
    uint8_t f0 = at(pt, i, &i1);

    if ((e = contraction(pt, i)))
        return i + e;
    if (f0 & F_L)
        return run(pt, i1, F_L);
    if ((f0 & F_PRE) && i1 < n) {
        size_t nx;
        if (at(pt, i1, &nx) & F_L)
            return run(pt, nx, F_L);
    }
    if (f0 & F_N) {
        size_t p = i1, nx;
        for (int k = 1; k < 3 && p < n && (at(pt, p, &nx) & F_N); k++)
            p = nx;
        return p;
    }
    /* ' '?[^\s\p{L}\p{N}]+[\r\n]* */
    size_t j = (f0 & F_O) ? i : n;
    if (s[i] == ' ' && i1 < n) {
        size_t nx;
        if (at(pt, i1, &nx) & F_O)
            j = i1;
    }
    if (j < n) {
        e = run(pt, j, F_O);
        while (e < n && (s[e] == '\r' || s[e] == '\n'))
            e++;
        return e;
    }
    return space(pt, i);
}
