/* tokenizer: the SentencePiece unigram tokenizer of the embedder.
 *
 * Owns: text -> SentencePiece ids, reproducing exactly what the reference
 * JavaScript tokenizer (@energetic-ai/embeddings) does, quirks included:
 *   - bytes are read as UTF-8 the WHATWG way (each maximal invalid subpart
 *     becomes one U+FFFD), then NFKC-normalised (utf8proc; for characters
 *     newer than its Unicode version, the model file's table of the
 *     reference runtime's NFKC of single characters);
 *   - non-empty text gets a leading U+2581 and every U+0020 becomes U+2581
 *     (no other whitespace is touched, nothing is collapsed or trimmed);
 *   - pieces are matched by code point in a trie of ids >= 6; where no piece
 *     starts at a position, that one character is an unknown (id 0, score 0);
 *   - Viterbi keeps, per end position, the last candidate whose score is
 *     >= the best so far, and treats a best of exactly 0 as unset;
 *   - the backtrack steps by each piece's length in UTF-16 units;
 *   - consecutive unknowns merge into one.
 * Only the first max_tokens ids reach the model. Text after the 128th ASCII
 * space is never read: no piece has U+2581 except first, so every space is
 * a boundary the best path passes through, and the ids before it do not
 * depend on what follows. Other text is cut at CG_EMBED_MAX_TEXT_BYTES.
 */
#include "embed/embed_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define WORD_MARK 0x2581u
#define REPLACEMENT 0xFFFDu

/* ---- trie ---- */

static uint64_t trie_key(int32_t node, uint32_t cp) {
    return ((uint64_t)(node + 1) << 21) | cp;
}

static size_t trie_hash(uint64_t key, size_t mask) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & mask;
}

static int32_t trie_child(const cg_emb_trie *t, int32_t node, uint32_t cp) {
    uint64_t key = trie_key(node, cp);
    for (size_t i = trie_hash(key, t->mask);; i = (i + 1) & t->mask) {
        if (t->keys[i] == key)
            return t->child[i];
        if (t->keys[i] == 0)
            return -1;
    }
}

/* Decodes one code point of valid UTF-8 (the model file's pieces and
 * utf8proc's output are valid); returns its length in bytes, 0 if invalid. */
static size_t utf8_valid_next(const uint8_t *s, size_t n, uint32_t *cp) {
    if (n == 0)
        return 0;
    uint8_t b = s[0];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    size_t need;
    uint32_t c, lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
        need = 1;
        c = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
        need = 2;
        c = b & 0x0F;
        lo = b == 0xE0 ? 0xA0 : 0x80;
        hi = b == 0xED ? 0x9F : 0xBF;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 3;
        c = b & 0x07;
        lo = b == 0xF0 ? 0x90 : 0x80;
        hi = b == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if (n < need + 1)
        return 0;
    for (size_t k = 1; k <= need; k++) {
        if (s[k] < lo || s[k] > hi)
            return 0;
        lo = 0x80;
        hi = 0xBF;
        c = (c << 6) | (s[k] & 0x3F);
    }
    *cp = c;
    return need + 1;
}

void cg_emb_trie_free(cg_emb_trie *t) {
    free(t->keys);
    free(t->child);
    free(t->piece);
    free(t->score);
    memset(t, 0, sizeof *t);
}

int cg_emb_trie_build(cg_embedder *e, char *err, size_t errcap) {
    cg_emb_trie *t = &e->trie;
    size_t total = (size_t)e->piece_off[e->n_vocab];
    size_t cap = 1024;
    while (cap < 2 * (total + 1))
        cap *= 2;
    int rc = -1;
    memset(t, 0, sizeof *t);
    t->mask = cap - 1;
    t->keys = calloc(cap, sizeof *t->keys);
    t->child = calloc(cap, sizeof *t->child);
    t->piece = malloc((total + 1) * sizeof *t->piece);
    t->score = calloc(total + 1, sizeof *t->score);
    e->utf16_len = malloc((size_t)e->n_vocab);
    if (!t->keys || !t->child || !t->piece || !t->score || !e->utf16_len) {
        snprintf(err, errcap, "out of memory building the tokenizer");
        goto out;
    }
    t->n_nodes = 1;
    t->piece[0] = -1;
    for (int id = 0; id < e->n_vocab; id++) {
        const uint8_t *p = e->pieces + e->piece_off[id];
        size_t n = (size_t)(e->piece_off[id + 1] - e->piece_off[id]), units = 0;
        int32_t node = 0;
        if (n == 0) {
            snprintf(err, errcap, "vocabulary piece %d is empty", id);
            goto out;
        }
        while (n > 0) {
            uint32_t cp;
            size_t k = utf8_valid_next(p, n, &cp);
            if (k == 0) {
                snprintf(err, errcap, "vocabulary piece %d is not valid UTF-8", id);
                goto out;
            }
            units += cp >= 0x10000 ? 2 : 1;
            p += k;
            n -= k;
            if (id < e->reserved)
                continue;
            /* Insert as the reference does: a later duplicate wins. */
            int32_t ch = trie_child(t, node, cp);
            if (ch < 0) {
                uint64_t key = trie_key(node, cp);
                size_t i = trie_hash(key, t->mask);
                while (t->keys[i] != 0)
                    i = (i + 1) & t->mask;
                ch = t->n_nodes++;
                t->keys[i] = key;
                t->child[i] = ch;
                t->piece[ch] = -1;
                t->score[ch] = 0.0;
            }
            node = ch;
        }
        if (units > 255) {
            snprintf(err, errcap, "vocabulary piece %d is too long", id);
            goto out;
        }
        e->utf16_len[id] = (uint8_t)units;
        if (id >= e->reserved) {
            t->piece[node] = id;
            t->score[node] = e->scores[id];
        }
    }
    rc = 0;
out:
    if (rc != 0) {
        cg_emb_trie_free(t);
        free(e->utf16_len);
        e->utf16_len = NULL;
    }
    return rc;
}

/* ---- text -> code points ---- */

/* WHATWG UTF-8 decode: every maximal invalid subpart becomes one U+FFFD.
 * out has room for n code points. Returns the count. */
static size_t utf8_decode_lossy(const uint8_t *s, size_t n, uint32_t *out) {
    size_t i = 0, o = 0;
    while (i < n) {
        uint8_t b = s[i++];
        if (b < 0x80) {
            out[o++] = b;
            continue;
        }
        size_t need;
        uint32_t c, lo = 0x80, hi = 0xBF;
        if (b >= 0xC2 && b <= 0xDF) {
            need = 1;
            c = b & 0x1F;
        } else if (b >= 0xE0 && b <= 0xEF) {
            need = 2;
            c = b & 0x0F;
            lo = b == 0xE0 ? 0xA0 : 0x80;
            hi = b == 0xED ? 0x9F : 0xBF;
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3;
            c = b & 0x07;
            lo = b == 0xF0 ? 0x90 : 0x80;
            hi = b == 0xF4 ? 0x8F : 0xBF;
        } else {
            out[o++] = REPLACEMENT;
            continue;
        }
        int ok = 1;
        for (size_t k = 0; k < need; k++) {
            if (i >= n || s[i] < lo || s[i] > hi) {
                ok = 0; /* the offending byte (if any) is read again */
                break;
            }
            lo = 0x80;
            hi = 0xBF;
            c = (c << 6) | (s[i++] & 0x3F);
        }
        out[o++] = ok ? c : REPLACEMENT;
    }
    return o;
}

static size_t utf8_encode(uint32_t cp, uint8_t *o) {
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (cp >> 18));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* The reference runtime's NFKC of cp when utf8proc does not know cp (a
 * character newer than its Unicode version) and NFKC changes it; else NULL. */
static const uint8_t *nfkc_override(const cg_embedder *e, uint32_t cp, size_t *len) {
    if (cp < 0x80 || utf8proc_category((utf8proc_int32_t)cp) != UTF8PROC_CATEGORY_CN)
        return NULL;
    int lo = 0, hi = e->n_nfkc - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if ((uint32_t)e->nfkc_cps[mid] == cp) {
            *len = (size_t)(e->nfkc_off[mid + 1] - e->nfkc_off[mid]);
            return e->nfkc_bytes + e->nfkc_off[mid];
        }
        if ((uint32_t)e->nfkc_cps[mid] < cp)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

/* NFKC of cps[0..n) (valid scalar values). Returns a malloc'd array and its
 * length in *out_n, or NULL when memory ran out. */
static uint32_t *nfkc(const cg_embedder *e, const uint32_t *cps, size_t n, size_t *out_n) {
    uint8_t *u8 = NULL;
    utf8proc_uint8_t *norm = NULL;
    uint32_t *res = NULL;
    size_t len = 0, olen;
    for (size_t i = 0; i < n; i++) {
        uint8_t tmp[4];
        len += nfkc_override(e, cps[i], &olen) ? olen : utf8_encode(cps[i], tmp);
    }
    if (!(u8 = malloc(len + 1)))
        goto out;
    len = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *o = nfkc_override(e, cps[i], &olen);
        if (o) {
            memcpy(u8 + len, o, olen);
            len += olen;
        } else {
            len += utf8_encode(cps[i], u8 + len);
        }
    }
    utf8proc_ssize_t m = utf8proc_map(u8, (utf8proc_ssize_t)len, &norm,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
    if (m < 0)
        goto out;
    res = malloc(((size_t)m + 1) * sizeof *res);
    if (!res)
        goto out;
    size_t k = 0;
    for (size_t i = 0; i < (size_t)m;) {
        uint32_t cp;
        size_t step = utf8_valid_next(norm + i, (size_t)m - i, &cp);
        if (step == 0) { /* cannot happen: utf8proc writes valid UTF-8 */
            cp = REPLACEMENT;
            step = 1;
        }
        res[k++] = cp;
        i += step;
    }
    *out_n = k;
out:
    free(u8);
    free(norm);
    return res;
}

/* The part of the input that can matter (see the file comment). */
static size_t text_window(const cg_embedder *e, const char *text, size_t len) {
    int spaces = 0;
    for (size_t i = 0; i < len; i++)
        if (text[i] == ' ' && ++spaces == e->max_tokens) {
            len = i;
            break;
        }
    if (len > CG_EMBED_MAX_TEXT_BYTES) {
        len = CG_EMBED_MAX_TEXT_BYTES;
        for (int back = 0; back < 3 && len > 0 && ((uint8_t)text[len] & 0xC0) == 0x80; back++)
            len--;
    }
    return len;
}

/* Tokenizes into ids (room for e->max_tokens); returns the count or -1. */
static int tokenize(const cg_embedder *e, const char *text, size_t len, int32_t *ids) {
    const cg_emb_trie *t = &e->trie;
    uint32_t *cps = NULL, *norm = NULL, *sym = NULL;
    double *best = NULL;
    int32_t *words = NULL, *rev = NULL;
    int rc = -1;

    len = text_window(e, text, len);
    if (len == 0)
        return 0;
    cps = malloc(len * sizeof *cps);
    if (!cps)
        goto out;
    size_t n = utf8_decode_lossy((const uint8_t *)text, len, cps);
    int ascii = 1;
    for (size_t i = 0; i < n && ascii; i++)
        ascii = cps[i] < 0x80;
    const uint32_t *src = cps;
    if (!ascii) { /* ASCII is its own NFKC */
        if (!(norm = nfkc(e, cps, n, &n)))
            goto out;
        src = norm;
    }
    if (n == 0) {
        rc = 0;
        goto out;
    }
    size_t ns = n + 1; /* symbols: U+2581, then the text with ' ' -> U+2581 */
    sym = malloc(ns * sizeof *sym);
    best = calloc(ns + 1, sizeof *best);
    words = calloc(ns + 1, sizeof *words);
    rev = malloc(ns * sizeof *rev);
    if (!sym || !best || !words || !rev)
        goto out;
    sym[0] = WORD_MARK;
    for (size_t i = 0; i < n; i++)
        sym[i + 1] = src[i] == ' ' ? WORD_MARK : src[i];

    /* Forward Viterbi. Per end position the candidates arrive in increasing
     * start order, as in the reference's loop over end then start. */
    for (size_t i = 0; i < ns; i++) {
        int32_t node = 0;
        int matched = 0;
        for (size_t j = i; j < ns; j++) {
            node = trie_child(t, node, sym[j]);
            if (node < 0)
                break;
            if (t->piece[node] < 0)
                continue;
            matched = 1;
            double score = t->score[node] + best[i];
            if (best[j + 1] == 0 || score >= best[j + 1]) {
                best[j + 1] = score;
                words[j + 1] = t->piece[node];
            }
        }
        if (!matched) { /* unknown: this one character, id 0, score 0 */
            double score = 0.0 + best[i];
            if (best[i + 1] == 0 || score >= best[i + 1]) {
                best[i + 1] = score;
                words[i + 1] = 0;
            }
        }
    }
    size_t nr = 0;
    for (ptrdiff_t it = (ptrdiff_t)ns; it > 0; it -= e->utf16_len[words[it]])
        rev[nr++] = words[it];
    /* Merge runs of unknowns, restore text order, keep the first max_tokens. */
    size_t nm = 0;
    int prev_unk = 0;
    for (size_t i = 0; i < nr; i++) {
        int32_t id = rev[i];
        if (!(prev_unk && id == 0))
            rev[nm++] = id;
        prev_unk = id == 0;
    }
    size_t keep = nm < (size_t)e->max_tokens ? nm : (size_t)e->max_tokens;
    for (size_t i = 0; i < keep; i++)
        ids[i] = rev[nm - 1 - i];
    rc = (int)keep;
out:
    free(cps);
    free(norm);
    free(sym);
    free(best);
    free(words);
    free(rev);
    return rc;
}

int cg_embed_tokenize(const cg_embedder *e, const char *text, size_t len, int32_t *ids,
                      size_t cap) {
    int32_t buf[CG_EMBED_MAX_TOKENS];
    int n = tokenize(e, text, len, buf);
    if (n < 0)
        return -1;
    for (int i = 0; i < n && (size_t)i < cap; i++)
        ids[i] = buf[i];
    return n;
}
