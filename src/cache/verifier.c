/* verifier: the learned pair verifier and the accept decision (see
 * verifier.h).
 *
 * Owns: the lexical features of a pair (word, content-word, bigram and
 * character-trigram overlap, the content words only one text has, lengths,
 * first and question words), the embedding features, the model's forward
 * pass, the file's parser and writer, and cg_semantic_accept().
 *
 * Lexical features read at most CG_VERIFIER_SCAN_MAX bytes of each text and
 * at most LEX_WORDS words: ASCII letters are lower-cased, a word is a run of
 * ASCII letters and digits and non-ASCII bytes (so Korean and other scripts
 * form words), an apostrophe (' or U+2019) inside a word is dropped
 * ("what's" = "whats"); a run of the symbols + # = < > ( ) [ ] { } * / \ | &
 * ^ % $ @ ~ is a token of its own (C++ = "c" "++"); everything else
 * separates tokens. Content words are
 * the words not in STOP below, a final "s" dropped from words longer than
 * three letters not ending in "ss" (coasters = coaster). Words are compared
 * by 64-bit FNV-1a hash.
 */
#include "cache/verifier.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/verifier_internal.h"

#define LEX_WORDS 64
#define TRI_WORDS 16 /* 1,024-bit trigram set */
#define FNV_OFF UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME UINT64_C(0x100000001b3)

static uint64_t fnv_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * FNV_PRIME;
    return h;
}

/* ------------------------------------------------------------------ */
/* Feature names and the feature-set id                                 */

static const char *const HAND_NAMES[CG_VF_GATE_FIRST] = {
    "cos",        "cos_h85",     "cos_h90",     "cos_h95",    "cos_h98",
    "jac_words",  "jac_content", "jac_bigrams", "jac_chars",  "only_min",
    "only_max",   "only_none",   "only_one",    "len_ratio",  "words_log",
    "words_diff", "first_same",  "qword_same",  "same_words",
};

const char *cg_verifier_feature_name(size_t i, char *buf, size_t cap) {
    if (i < CG_VF_GATE_FIRST)
        snprintf(buf, cap, "%s", HAND_NAMES[i]);
    else if (i < CG_VF_N)
        snprintf(buf, cap, "gate_%s",
                 cg_gate_reason_name((cg_gate_reason)(i - CG_VF_GATE_FIRST + 1)));
    else if (i < CG_VF_N + CG_VERIFIER_DIM)
        snprintf(buf, cap, "absdiff_%zu", i - CG_VF_N);
    else if (i < CG_VERIFIER_NFEAT)
        snprintf(buf, cap, "prod_%zu", i - CG_VF_N - CG_VERIFIER_DIM);
    else
        snprintf(buf, cap, "?");
    return buf;
}

uint64_t cg_verifier_feature_id(void) {
    /* the names in order, and the version of the text processing above */
    uint64_t h = fnv_bytes(FNV_OFF, "lex2;", 5);
    char b[48];
    for (size_t i = 0; i < CG_VERIFIER_NFEAT; i++) {
        cg_verifier_feature_name(i, b, sizeof b);
        h = fnv_bytes(h, b, strlen(b) + 1);
    }
    return h;
}

/* ------------------------------------------------------------------ */
/* Lexical features                                                     */

static const char *const STOP[] = {
    "a",     "an",    "the",   "of",      "to",     "in",   "on",    "for",    "with",  "at",
    "by",    "from",  "as",    "into",    "about",  "is",   "are",   "was",    "were",  "be",
    "been",  "am",    "do",    "does",    "did",    "can",  "could", "should", "would", "will",
    "shall", "may",   "might", "must",    "i",      "me",   "my",    "you",    "your",  "we",
    "our",   "he",    "she",   "it",      "its",    "they", "them",  "their",  "his",   "her",
    "what",  "how",   "why",   "when",    "where",  "who",  "which", "whom",   "whose", "this",
    "that",  "these", "those", "there",   "here",   "and",  "or",    "but",    "if",    "then",
    "so",    "than",  "some",  "any",     "one",    "get",  "have",  "has",    "had",   "whats",
    "hows",  "im",    "ive",   "someone", "anyone", "way",  "ways",  "best",   "good",  "really",
};
#define NSTOP (sizeof STOP / sizeof STOP[0])
static const char *const QWORDS[] = {"what", "how", "why", "when", "where", "who", "which"};
#define NQW (sizeof QWORDS / sizeof QWORDS[0])

static uint64_t g_stop[NSTOP];
static uint64_t g_qw[NQW];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void lex_init(void) {
    for (size_t i = 0; i < NSTOP; i++)
        g_stop[i] = fnv_bytes(FNV_OFF, STOP[i], strlen(STOP[i]));
    qsort(g_stop, NSTOP, sizeof g_stop[0], cmp_u64);
    for (size_t i = 0; i < NQW; i++)
        g_qw[i] = fnv_bytes(FNV_OFF, QWORDS[i], strlen(QWORDS[i]));
}

typedef struct {
    int n;                  /* words kept */
    uint64_t w[LEX_WORDS];  /* word hashes, in text order */
    uint64_t ws[LEX_WORDS]; /* sorted distinct word hashes */
    int nws;
    uint64_t cs[LEX_WORDS]; /* sorted distinct content-word (stemmed) hashes */
    int ncs;
    uint64_t bg[LEX_WORDS]; /* sorted distinct bigram hashes */
    int nbg;
    uint64_t tri[TRI_WORDS];
    unsigned qw;
    size_t bytes;
} lex;

static void sort_unique(uint64_t *v, int *n) {
    for (int i = 1; i < *n; i++) { /* insertion sort: n <= 64 */
        uint64_t x = v[i];
        int j = i - 1;
        while (j >= 0 && v[j] > x) {
            v[j + 1] = v[j];
            j--;
        }
        v[j + 1] = x;
    }
    int m = 0;
    for (int i = 0; i < *n; i++)
        if (m == 0 || v[m - 1] != v[i])
            v[m++] = v[i];
    *n = m;
}

static void tri_add(lex *L, uint32_t win) {
    uint64_t h = (uint64_t)(win & 0xFFFFFFu) * UINT64_C(0x9E3779B97F4A7C15);
    unsigned bit = (unsigned)(h >> 54); /* 10 bits */
    L->tri[bit >> 6] |= UINT64_C(1) << (bit & 63);
}

/* Symbols that change a question when they differ (C vs C++, = vs ==). */
static int sym_char(unsigned char c) {
    return c != 0 && strchr("+#=<>()[]{}*/\\|&^%$@~", c) != NULL;
}

/* Appends byte c to the trigram stream. */
static void tri_push(lex *L, uint32_t *win, int *len, unsigned char c) {
    *win = (*win << 8) | c;
    if (++*len >= 3)
        tri_add(L, *win);
}

static void word_done(lex *L, uint64_t h, uint64_t h_stem, int stem) {
    if (L->n >= LEX_WORDS)
        return;
    L->w[L->n++] = h;
    L->ws[L->nws++] = h;
    for (size_t i = 0; i < NQW; i++)
        if (g_qw[i] == h)
            L->qw |= 1u << i;
    if (!bsearch(&h, g_stop, NSTOP, sizeof g_stop[0], cmp_u64))
        L->cs[L->ncs++] = stem ? h_stem : h;
}

static void lex_scan(lex *L, const char *text, size_t len) {
    const unsigned char *s = (const unsigned char *)(text ? text : "");
    size_t n = text ? len : 0;
    if (n > CG_VERIFIER_SCAN_MAX) {
        n = CG_VERIFIER_SCAN_MAX;
        while (n > 0 && (s[n] & 0xC0u) == 0x80u)
            n--;
    }
    memset(L, 0, sizeof *L);
    L->bytes = n;
    uint32_t win = 0;
    int wlen = 0;
    tri_push(L, &win, &wlen, ' ');
    uint64_t h = FNV_OFF, h_prev = FNV_OFF;
    size_t chars = 0;
    int kind = 0; /* of the token being read: 1 word, 2 symbols */
    unsigned char last = 0, before_last = 0;
    for (size_t i = 0; i <= n; i++) {
        unsigned char c = i < n ? s[i] : ' ';
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        int apos = kind == 1 &&
                   (c == '\'' || (c == 0xE2 && i + 2 < n && s[i + 1] == 0x80 && s[i + 2] == 0x99));
        if (apos) { /* dropped inside a word */
            if (c == 0xE2)
                i += 2;
            continue;
        }
        int k = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80 ? 1
                : sym_char(c)                                                 ? 2
                                                                              : 0;
        if (k != kind && chars > 0) { /* the token ends */
            int stem = kind == 1 && chars > 3 && last == 's' && before_last != 's';
            word_done(L, h, h_prev, stem);
            tri_push(L, &win, &wlen, ' ');
            h = h_prev = FNV_OFF;
            chars = 0;
            last = before_last = 0;
        }
        kind = k;
        if (k) {
            h_prev = h;
            h = (h ^ c) * FNV_PRIME;
            before_last = last;
            last = c;
            chars++;
            tri_push(L, &win, &wlen, c);
        }
    }
    for (int i = 0; i + 1 < L->n; i++)
        L->bg[L->nbg++] = (L->w[i] * UINT64_C(0x100000001b3)) ^ (L->w[i + 1] + UINT64_C(0x9E37));
    sort_unique(L->ws, &L->nws);
    sort_unique(L->cs, &L->ncs);
    sort_unique(L->bg, &L->nbg);
}

/* |a & b| of two sorted distinct arrays. */
static int common(const uint64_t *a, int na, const uint64_t *b, int nb) {
    int i = 0, j = 0, c = 0;
    while (i < na && j < nb) {
        if (a[i] == b[j])
            c++, i++, j++;
        else if (a[i] < b[j])
            i++;
        else
            j++;
    }
    return c;
}

static float jaccard(const uint64_t *a, int na, const uint64_t *b, int nb) {
    int c = common(a, na, b, nb), u = na + nb - c;
    return u ? (float)c / (float)u : 1.0f;
}

static float hinge(float c, float t) {
    return c > t ? c - t : 0.0f;
}

static float cap1(float v) {
    return v > 1.0f ? 1.0f : v;
}

void cg_verifier_features(float cosine, const float *u, const float *w, const char *asked,
                          size_t alen, const char *cached, size_t clen, unsigned gate_fails,
                          float *x) {
    lex a, b;
    pthread_once(&g_once, lex_init);
    lex_scan(&a, asked, alen);
    lex_scan(&b, cached, clen);
    float c = isfinite(cosine) ? cosine : 0.0f;
    x[CG_VF_COS] = c;
    x[CG_VF_COS_H85] = hinge(c, 0.85f);
    x[CG_VF_COS_H90] = hinge(c, 0.90f);
    x[CG_VF_COS_H95] = hinge(c, 0.95f);
    x[CG_VF_COS_H98] = hinge(c, 0.98f);
    x[CG_VF_JAC_WORDS] = jaccard(a.ws, a.nws, b.ws, b.nws);
    x[CG_VF_JAC_CONTENT] = jaccard(a.cs, a.ncs, b.cs, b.ncs);
    x[CG_VF_JAC_BIGRAMS] = jaccard(a.bg, a.nbg, b.bg, b.nbg);
    int ti = 0, tu = 0;
    for (int k = 0; k < TRI_WORDS; k++) {
        ti += __builtin_popcountll(a.tri[k] & b.tri[k]);
        tu += __builtin_popcountll(a.tri[k] | b.tri[k]);
    }
    x[CG_VF_JAC_CHARS] = tu ? (float)ti / (float)tu : 1.0f;
    int cc = common(a.cs, a.ncs, b.cs, b.ncs);
    int oa = a.ncs - cc, ob = b.ncs - cc;
    int lo = oa < ob ? oa : ob, hi = oa < ob ? ob : oa;
    x[CG_VF_ONLY_MIN] = cap1((float)lo / 4.0f);
    x[CG_VF_ONLY_MAX] = cap1((float)hi / 4.0f);
    x[CG_VF_ONLY_NONE] = hi == 0 ? 1.0f : 0.0f;
    x[CG_VF_ONLY_ONE] = lo == 0 && hi > 0 ? 1.0f : 0.0f;
    size_t bl = a.bytes < b.bytes ? a.bytes : b.bytes, bh = a.bytes < b.bytes ? b.bytes : a.bytes;
    x[CG_VF_LEN_RATIO] = bh ? (float)bl / (float)bh : 1.0f;
    x[CG_VF_WORDS_LOG] = (float)(log1p((a.n + b.n) / 2.0) / 4.0);
    x[CG_VF_WORDS_DIFF] = (float)fabs(log((1.0 + a.n) / (1.0 + b.n)));
    x[CG_VF_FIRST_SAME] = a.n > 0 && b.n > 0 && a.w[0] == b.w[0] ? 1.0f : 0.0f;
    x[CG_VF_QWORD_SAME] = a.qw == b.qw ? 1.0f : 0.0f;
    int same = a.n == b.n;
    for (int k = 0; k < a.n && same; k++)
        same = a.w[k] == b.w[k];
    x[CG_VF_SAME_WORDS] = same ? 1.0f : 0.0f;
    for (int r = 1; r <= CG_VF_GATE_RULES; r++)
        x[CG_VF_GATE_FIRST + r - 1] = (gate_fails & CG_GATE_RULE(r)) ? 1.0f : 0.0f;
    float *ad = x + CG_VF_N, *pr = ad + CG_VERIFIER_DIM;
    for (int k = 0; k < CG_VERIFIER_DIM; k++) {
        float p = u && w ? u[k] : 0.0f, q = u && w ? w[k] : 0.0f;
        ad[k] = fabsf(p - q);
        pr[k] = p * q;
    }
}

/* ------------------------------------------------------------------ */
/* Forward pass                                                         */

static float sigmoid(double z) {
    return (float)(1.0 / (1.0 + exp(-z)));
}

float cg_verifier_prob(const cg_verifier *v, const float *x) {
    if (!v)
        return 0.0f;
    if (v->hidden == 0) {
        double z = v->b1[0];
        for (size_t i = 0; i < CG_VERIFIER_NFEAT; i++)
            z += (double)v->w1[i] * (double)x[i];
        return sigmoid(z);
    }
    double z = v->b2;
    for (unsigned j = 0; j < v->hidden; j++) {
        const float *row = v->w1 + (size_t)j * CG_VERIFIER_NFEAT;
        double a = v->b1[j];
        for (size_t i = 0; i < CG_VERIFIER_NFEAT; i++)
            a += (double)row[i] * (double)x[i];
        z += (double)v->w2[j] * tanh(a);
    }
    return sigmoid(z);
}

float cg_verifier_score(const cg_verifier *v, float cosine, const float *u, const float *w,
                        const char *asked, size_t alen, const char *cached, size_t clen) {
    float x[CG_VERIFIER_NFEAT];
    unsigned fails = 0;
    cg_gate_check_all(asked, alen, cached, clen, 0, NULL, &fails);
    cg_verifier_features(cosine, u, w, asked, alen, cached, clen, fails, x);
    return cg_verifier_prob(v, x);
}

/* ------------------------------------------------------------------ */
/* The file                                                             */

#define NOTE_LEN 160
#define HEADER_LEN (8 + 5 * 4 + 8 + 3 * 4 + 4 + 8 + 2 * 4 + 8 + NOTE_LEN)

static size_t n_weights(unsigned hidden) {
    return hidden ? (size_t)hidden * CG_VERIFIER_NFEAT + 2u * hidden + 1u : CG_VERIFIER_NFEAT + 1u;
}

cg_verifier *cg_verifier_alloc(unsigned hidden) {
    if (hidden > CG_VERIFIER_MAX_HIDDEN)
        return NULL;
    cg_verifier *v = calloc(1, sizeof *v);
    float *wts = calloc(n_weights(hidden) + 1, sizeof *wts);
    if (!v || !wts) {
        free(v);
        free(wts);
        return NULL;
    }
    v->hidden = hidden;
    v->w1 = wts;
    if (hidden) {
        v->b1 = wts + (size_t)hidden * CG_VERIFIER_NFEAT;
        v->w2 = v->b1 + hidden;
    } else {
        v->b1 = wts + CG_VERIFIER_NFEAT;
        v->w2 = NULL;
    }
    return v;
}

void cg_verifier_free(cg_verifier *v) {
    if (!v)
        return;
    free(v->w1);
    free(v);
}

static void put32(unsigned char **p, uint32_t x) {
    for (int i = 0; i < 4; i++)
        *(*p)++ = (unsigned char)(x >> (8 * i));
}
static void put64(unsigned char **p, uint64_t x) {
    for (int i = 0; i < 8; i++)
        *(*p)++ = (unsigned char)(x >> (8 * i));
}
static void putf(unsigned char **p, float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    put32(p, x);
}
static uint32_t get32(const unsigned char **p) {
    uint32_t x = 0;
    for (int i = 0; i < 4; i++)
        x |= (uint32_t)(*p)[i] << (8 * i);
    *p += 4;
    return x;
}
static uint64_t get64(const unsigned char **p) {
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x |= (uint64_t)(*p)[i] << (8 * i);
    *p += 8;
    return x;
}
static float getf(const unsigned char **p) {
    uint32_t x = get32(p);
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* The weights in file order: w1, b1, then w2 and b2 for a network. */
static float *weight_at(cg_verifier *v, size_t k) {
    size_t n1 = v->hidden ? (size_t)v->hidden * CG_VERIFIER_NFEAT : CG_VERIFIER_NFEAT;
    size_t nb = v->hidden ? v->hidden : 1;
    if (k < n1 + nb) /* w1 and b1 are contiguous */
        return v->w1 + k;
    k -= n1 + nb;
    return k < v->hidden ? v->w2 + k : &v->b2;
}

unsigned char *cg_verifier_serialise(cg_verifier *v, size_t *len) {
    size_t nw = n_weights(v->hidden);
    size_t total = HEADER_LEN + nw * 4 + 8;
    unsigned char *buf = calloc(1, total), *p = buf;
    if (!buf)
        return NULL;
    memcpy(p, CG_VERIFIER_MAGIC, 8);
    p += 8;
    put32(&p, CG_VERIFIER_VERSION);
    put32(&p, CG_VERIFIER_DIM);
    put32(&p, CG_VF_N);
    put32(&p, CG_VERIFIER_NFEAT);
    put32(&p, v->hidden);
    put64(&p, cg_verifier_feature_id());
    putf(&p, v->floor);
    putf(&p, v->threshold);
    putf(&p, v->l2);
    put32(&p, v->epochs);
    put64(&p, v->seed);
    put32(&p, v->n_train);
    put32(&p, v->n_val);
    put64(&p, v->digest);
    memcpy(p, v->note, strnlen(v->note, NOTE_LEN - 1));
    p += NOTE_LEN;
    for (size_t k = 0; k < nw; k++)
        putf(&p, *weight_at(v, k));
    v->checksum = fnv_bytes(FNV_OFF, buf, (size_t)(p - buf));
    put64(&p, v->checksum);
    *len = total;
    return buf;
}

cg_verifier *cg_verifier_parse(const void *data, size_t len, char *err, size_t errcap) {
    const unsigned char *p = data;
    cg_verifier *v = NULL;
    if (!data || len < HEADER_LEN + 8) {
        snprintf(err, errcap, "verifier file truncated (%zu bytes)", len);
        goto fail;
    }
    if (memcmp(p, CG_VERIFIER_MAGIC, 8) != 0) {
        snprintf(err, errcap, "not a verifier file (bad magic)");
        goto fail;
    }
    p += 8;
    uint32_t version = get32(&p), dim = get32(&p), nhand = get32(&p), nin = get32(&p);
    uint32_t hidden = get32(&p);
    uint64_t fid = get64(&p);
    if (version != CG_VERIFIER_VERSION) {
        snprintf(err, errcap, "verifier file version %u, this build reads %d", version,
                 CG_VERIFIER_VERSION);
        goto fail;
    }
    if (dim != CG_VERIFIER_DIM || nhand != CG_VF_N || nin != CG_VERIFIER_NFEAT ||
        fid != cg_verifier_feature_id()) {
        snprintf(err, errcap,
                 "verifier file has other features (dim %u, %u hand, %u inputs) than this "
                 "build (%d, %d, %d)",
                 dim, nhand, nin, CG_VERIFIER_DIM, (int)CG_VF_N, (int)CG_VERIFIER_NFEAT);
        goto fail;
    }
    if (hidden > CG_VERIFIER_MAX_HIDDEN) {
        snprintf(err, errcap, "verifier file: %u hidden units (at most %d)", hidden,
                 CG_VERIFIER_MAX_HIDDEN);
        goto fail;
    }
    size_t nw = n_weights(hidden), want = HEADER_LEN + nw * 4 + 8;
    if (len != want) {
        snprintf(err, errcap, "verifier file is %zu bytes, %zu expected (truncated or padded)", len,
                 want);
        goto fail;
    }
    uint64_t sum = fnv_bytes(FNV_OFF, data, len - 8);
    const unsigned char *tail = (const unsigned char *)data + len - 8;
    if (get64(&tail) != sum) {
        snprintf(err, errcap, "verifier file checksum mismatch (corrupt)");
        goto fail;
    }
    v = cg_verifier_alloc(hidden);
    if (!v) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    v->floor = getf(&p);
    v->threshold = getf(&p);
    v->l2 = getf(&p);
    v->epochs = get32(&p);
    v->seed = get64(&p);
    v->n_train = get32(&p);
    v->n_val = get32(&p);
    v->digest = get64(&p);
    memcpy(v->note, p, NOTE_LEN);
    v->note[NOTE_LEN - 1] = '\0';
    p += NOTE_LEN;
    v->checksum = sum;
    if (!(v->floor >= 0.0f && v->floor <= 1.0f && v->threshold >= 0.0f && v->threshold <= 1.0f)) {
        snprintf(err, errcap, "verifier file: operating point out of [0, 1]");
        goto fail;
    }
    for (size_t k = 0; k < nw; k++) {
        float f = getf(&p);
        if (!isfinite(f)) {
            snprintf(err, errcap, "verifier file: weight %zu is not finite", k);
            goto fail;
        }
        *weight_at(v, k) = f;
    }
    return v;
fail:
    cg_verifier_free(v);
    return NULL;
}

cg_verifier *cg_verifier_load(const char *path, char *err, size_t errcap) {
    /* the largest valid file, plus one byte to notice a longer one */
    const size_t cap = HEADER_LEN + n_weights(CG_VERIFIER_MAX_HIDDEN) * 4 + 8 + 1;
    unsigned char *buf = NULL;
    cg_verifier *v = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errcap, "%s: cannot open", path);
        goto out;
    }
    buf = malloc(cap);
    if (!buf) {
        snprintf(err, errcap, "out of memory");
        goto out;
    }
    size_t n = fread(buf, 1, cap, f);
    if (ferror(f)) {
        snprintf(err, errcap, "%s: cannot read", path);
        goto out;
    }
    char why[200];
    v = cg_verifier_parse(buf, n, why, sizeof why);
    if (!v)
        snprintf(err, errcap, "%s: %s", path, why);
out:
    if (f)
        fclose(f);
    free(buf);
    return v;
}

void cg_verifier_get_info(const cg_verifier *v, cg_verifier_info *out) {
    memset(out, 0, sizeof *out);
    if (!v)
        return;
    out->version = CG_VERIFIER_VERSION;
    out->dim = CG_VERIFIER_DIM;
    out->inputs = CG_VERIFIER_NFEAT;
    out->hidden = v->hidden;
    out->floor = v->floor;
    out->threshold = v->threshold;
    out->l2 = v->l2;
    out->epochs = v->epochs;
    out->seed = v->seed;
    out->data_digest = v->digest;
    out->checksum = v->checksum;
    out->n_train = v->n_train;
    out->n_val = v->n_val;
    snprintf(out->note, sizeof out->note, "%s", v->note);
}

/* ------------------------------------------------------------------ */
/* The accept decision                                                  */

void cg_semantic_policy_default(cg_semantic_policy *pol, const cg_verifier *v) {
    memset(pol, 0, sizeof *pol);
    pol->gate_rules = CG_GATE_DEFAULT_RULES;
    if (v) {
        pol->floor = v->floor;
        pol->verifier_threshold = v->threshold;
    } else {
        pol->floor = CG_SEMANTIC_FLOOR_NO_VERIFIER;
    }
}

static const char *const SEM_NAMES[] = {"accept",   "below_floor", "gate",
                                        "verifier", "no_verifier", "bad_input"};

const char *cg_semantic_reason_name(cg_semantic_reason r) {
    return (unsigned)r < sizeof SEM_NAMES / sizeof SEM_NAMES[0] ? SEM_NAMES[r] : "?";
}

int cg_semantic_accept(const cg_verifier *v, float cosine, const float *u, const float *w,
                       const char *asked, size_t alen, const char *cached, size_t clen,
                       const cg_semantic_policy *pol, cg_semantic_verdict *out) {
    cg_semantic_verdict tmp;
    cg_semantic_verdict *o = out ? out : &tmp;
    memset(o, 0, sizeof *o);
    o->reason = CG_SEM_BAD_INPUT;
    o->cosine = cosine;
    o->prob = -1.0f;
    o->gate = CG_GATE_PASS;
    if (!pol) {
        snprintf(o->detail, sizeof o->detail, "no policy");
        return 0;
    }
    /* a request may raise the floor, never lower it; NaN fails closed */
    float floor = pol->floor;
    if (pol->request_floor > floor)
        floor = pol->request_floor;
    o->floor = floor;
    o->threshold = pol->verifier_threshold;
    int want_v = !(pol->verifier_threshold <= 0.0f); /* NaN: on, and never reached */
    if (!(cosine >= floor)) {
        o->reason = CG_SEM_BELOW_FLOOR;
        snprintf(o->detail, sizeof o->detail, "below floor: cosine %.3f < %.3f", (double)cosine,
                 (double)floor);
        return 0;
    }
    cg_gate_result g;
    unsigned fails = 0;
    cg_gate_check_all(asked, alen, cached, clen, pol->gate_rules, &g, want_v ? &fails : NULL);
    o->gate = g.reason;
    if (g.reason != CG_GATE_PASS) {
        o->reason = CG_SEM_GATE;
        snprintf(o->detail, sizeof o->detail, "gate %s: %s", cg_gate_reason_name(g.reason),
                 g.detail);
        return 0;
    }
    if (want_v) {
        if (!v) {
            o->reason = CG_SEM_NO_VERIFIER;
            snprintf(o->detail, sizeof o->detail, "no verifier loaded (threshold %.3f)",
                     (double)pol->verifier_threshold);
            return 0;
        }
        if (!u || !w) {
            snprintf(o->detail, sizeof o->detail, "the verifier needs both embeddings");
            return 0;
        }
        float x[CG_VERIFIER_NFEAT];
        cg_verifier_features(cosine, u, w, asked, alen, cached, clen, fails, x);
        o->prob = cg_verifier_prob(v, x);
        if (!(o->prob >= pol->verifier_threshold)) {
            o->reason = CG_SEM_VERIFIER;
            snprintf(o->detail, sizeof o->detail, "verifier %.3f < %.3f (cosine %.3f)",
                     (double)o->prob, (double)pol->verifier_threshold, (double)cosine);
            return 0;
        }
        snprintf(o->detail, sizeof o->detail,
                 "accept: cosine %.3f >= %.3f, gate pass, verifier %.3f >= %.3f", (double)cosine,
                 (double)floor, (double)o->prob, (double)pol->verifier_threshold);
    } else {
        snprintf(o->detail, sizeof o->detail, "accept: cosine %.3f >= %.3f, gate pass",
                 (double)cosine, (double)floor);
    }
    o->reason = CG_SEM_ACCEPT;
    o->accept = 1;
    return 1;
}
