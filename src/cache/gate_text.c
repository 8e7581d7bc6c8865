/* gate_text: characters and normalisation for the second gate (gate.h).
 *
 * Owns: UTF-8 decoding, the character classes (space, punctuation, word)
 * and the normalisation every text goes through before any rule reads it.
 *
 * Each text is first normalised into a stack buffer: at most
 * CG_GATE_SCAN_MAX bytes, cut at a UTF-8 boundary; ASCII lower-cased (a bit
 * per byte remembers what was upper case); whitespace runs collapsed to one
 * space (a newline if the run held one); curly quotes and primes folded to
 * ' and "; full-width ASCII (U+FF01-FF5E) folded to ASCII; each byte of an
 * invalid UTF-8 sequence replaced by 0x01, which separates words and occurs
 * in no pattern. Everything after that reads only the normalised text, so
 * all work is linear in CG_GATE_SCAN_MAX (the word dictionary is a short
 * hash table built once; string search is memmem).
 */
#include <stdint.h>
#include <string.h>

#include "cache/gate_internal.h"

/* ------------------------------------------------------------------ */
/* UTF-8 and character classes                                          */

int32_t gate_u8dec(const unsigned char *s, size_t n, size_t *len) {
    unsigned c = s[0];
    *len = 1;
    if (c < 0x80)
        return (int32_t)c;
    size_t k;
    uint32_t cp, min;
    if (c >= 0xC2 && c <= 0xDF) {
        k = 1, cp = c & 0x1Fu, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        k = 2, cp = c & 0x0Fu, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 3, cp = c & 0x07u, min = 0x10000;
    } else {
        return -1;
    }
    if (k >= n)
        return -1;
    for (size_t i = 1; i <= k; i++) {
        if ((s[i] & 0xC0u) != 0x80u)
            return -1;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *len = k + 1;
    return (int32_t)cp;
}

int gate_cp_class(int32_t cp) {
    if (cp < 0)
        return C_PUNCT;
    if (cp < 0x80) {
        if (is_alnum(cp))
            return C_WORD;
        if (cp == ' ' || (cp >= '\t' && cp <= '\r'))
            return C_SPACE;
        return C_PUNCT;
    }
    if (cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200B) || cp == 0x2028 ||
        cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000 || cp == 0xFEFF)
        return C_SPACE;
    if (cp <= 0xBF || cp == 0xD7 || cp == 0xF7 || (cp >= 0x2000 && cp <= 0x2BFF) ||
        (cp >= 0x3000 && cp <= 0x303F) || (cp >= 0xFE30 && cp <= 0xFE4F) ||
        (cp >= 0xFF00 && cp <= 0xFF0F) || (cp >= 0xFF5B && cp <= 0xFF65) || cp >= 0x1F000)
        return C_PUNCT;
    return C_WORD;
}

/* ------------------------------------------------------------------ */
/* Normalisation                                                        */

void gate_normalise(feat *f, const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t cut = len;
    f->truncated = 0;
    if (cut > CG_GATE_SCAN_MAX) {
        f->truncated = 1;
        cut = CG_GATE_SCAN_MAX;
        while (cut > 0 && (u[cut] & 0xC0u) == 0x80u)
            cut--;
    }
    memset(f->cap, 0, sizeof f->cap);
    size_t o = 0;
    f->norm[o++] = ' ';
    int space = 1; /* the last byte written is a space or newline */
    for (size_t i = 0; i < cut;) {
        size_t l;
        int32_t cp = gate_u8dec(u + i, cut - i, &l);
        i += l;
        if (cp >= 0xFF01 && cp <= 0xFF5E)
            cp -= 0xFEE0; /* full-width ASCII */
        if (cp < 0) {
            f->norm[o++] = '\x01';
            space = 0;
            continue;
        }
        if (gate_cp_class(cp) == C_SPACE) {
            int nl = cp == '\n' || cp == '\r' || cp == 0x2028 || cp == 0x2029;
            if (!space)
                f->norm[o++] = nl ? '\n' : ' ';
            else if (nl)
                f->norm[o - 1] = '\n';
            space = 1;
            continue;
        }
        space = 0;
        if (cp < 0x80) {
            char c = (char)cp;
            if (c >= 'A' && c <= 'Z') {
                f->cap[o >> 3] |= (uint8_t)(1u << (o & 7));
                c = (char)(c - 'A' + 'a');
            }
            f->norm[o++] = c;
        } else if (cp == 0x2018 || cp == 0x2019 || cp == 0x201B || cp == 0x2032) {
            f->norm[o++] = '\'';
        } else if (cp == 0x201C || cp == 0x201D || cp == 0x201E || cp == 0x2033) {
            f->norm[o++] = '"';
        } else {
            memcpy(f->norm + o, s + i - l, l);
            o += l;
        }
    }
    if (!space)
        f->norm[o++] = ' ';
    f->norm[o] = '\0';
    f->n = o;
}
