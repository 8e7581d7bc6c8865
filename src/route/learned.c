/* learned: the learned router: P(the strong model is needed | prompt).
 *
 * Owns: n-gram hashing of prompts, the logistic model, its deterministic
 * AdaGrad trainer with validation-chosen L2, and the text model file
 * (format in docs/tiering.md). See learned.h for the contract.
 */
#include "route/learned.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_FILE_BYTES (64u << 20)

struct cg_learned_model {
    unsigned hash_bits, word_ngrams;
    size_t max_bytes;
    float l2;
    char label[32];
    char note[160];
    float bias;
    float hand_mean[CG_CLASS_NFEAT];
    float hand_scale[CG_CLASS_NFEAT]; /* 1/sd, or 0 for a constant feature */
    float hand_w[CG_CLASS_NFEAT];
    size_t embed_dim;
    float *embed_w; /* embed_dim */
    float *w;       /* 2^hash_bits */
};

static const float default_grid[] = {1e-4f, 1e-3f, 3e-3f, 1e-2f, 3e-2f, 1e-1f, 3e-1f, 1.0f, 3.0f};

void cg_learned_opts_default(cg_learned_opts *o) {
    memset(o, 0, sizeof *o);
    o->hash_bits = 16;
    o->word_ngrams = 2;
    o->max_bytes = 8192;
    o->epochs = 8;
    o->min_count = 3;
    o->bags = 1;
    o->lr = 0.2f;
    o->seed = 1;
    o->l2_grid = default_grid;
    o->n_l2 = sizeof default_grid / sizeof default_grid[0];
    o->refit = 1;
    o->label = "needed";
}

static void errf(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t cap, const char *fmt, ...) {
    if (!err || !cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ */
/* Hashing                                                              */

static uint64_t mix64(uint64_t x) { /* splitmix64 finaliser */
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

#define FNV_OFF UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME UINT64_C(0x100000001b3)

typedef struct grams {
    unsigned bits, order;
    size_t max_bytes;
} grams;

/* Calls emit(index) for every word n-gram (n = 1..order) of the text.
 * Words: runs of ASCII letters/digits (lower-cased, digits folded to '0')
 * and bytes >= 0x80 (so Hangul and other scripts form words); every other
 * visible ASCII byte is a one-character word; whitespace separates.
 * Returns the number of grams emitted. */
#define FOR_EACH_GRAM(g, text, len, IDX, BODY)                                                     \
    do {                                                                                           \
        const unsigned char *p_ = (const unsigned char *)(text);                                   \
        size_t n_ = (len) < (g)->max_bytes ? (len) : (g)->max_bytes;                               \
        uint64_t hist_[3] = {0, 0, 0};                                                             \
        unsigned have_ = 0;                                                                        \
        uint64_t mask_ = ((uint64_t)1 << (g)->bits) - 1;                                           \
        size_t i_ = 0;                                                                             \
        while (i_ < n_) {                                                                          \
            unsigned char b_ = p_[i_];                                                             \
            if (b_ <= ' ' || b_ == 0x7f) {                                                         \
                i_++;                                                                              \
                continue;                                                                          \
            }                                                                                      \
            uint64_t h_ = FNV_OFF;                                                                 \
            if ((b_ >= '0' && b_ <= '9') || (b_ >= 'a' && b_ <= 'z') ||                            \
                (b_ >= 'A' && b_ <= 'Z') || b_ >= 0x80) {                                          \
                while (i_ < n_) {                                                                  \
                    unsigned char c_ = p_[i_];                                                     \
                    if (c_ >= '0' && c_ <= '9')                                                    \
                        c_ = '0';                                                                  \
                    else if (c_ >= 'A' && c_ <= 'Z')                                               \
                        c_ = (unsigned char)(c_ + 32);                                             \
                    else if (!((c_ >= 'a' && c_ <= 'z') || c_ >= 0x80))                            \
                        break;                                                                     \
                    h_ = (h_ ^ c_) * FNV_PRIME;                                                    \
                    i_++;                                                                          \
                }                                                                                  \
            } else {                                                                               \
                h_ = (h_ ^ b_) * FNV_PRIME;                                                        \
                h_ = (h_ ^ 0x01) * FNV_PRIME; /* punctuation differs from letters */               \
                i_++;                                                                              \
            }                                                                                      \
            hist_[2] = hist_[1];                                                                   \
            hist_[1] = hist_[0];                                                                   \
            hist_[0] = h_;                                                                         \
            if (have_ < 3)                                                                         \
                have_++;                                                                           \
            for (unsigned o_ = 1; o_ <= (g)->order && o_ <= have_; o_++) {                         \
                uint64_t k_ = (uint64_t)o_ * UINT64_C(0x9e3779b97f4a7c15);                         \
                for (unsigned j_ = 0; j_ < o_; j_++)                                               \
                    k_ = mix64(k_ ^ hist_[j_]);                                                    \
                uint32_t IDX = (uint32_t)(k_ & mask_);                                             \
                BODY;                                                                              \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------------------------ */
/* Prediction                                                           */

static float sigmoidf(double z) {
    if (z > 40)
        z = 40;
    if (z < -40)
        z = -40;
    return (float)(1.0 / (1.0 + exp(-z)));
}

static double hand_dot(const cg_learned_model *m, const float *hand) {
    double z = 0;
    if (!hand)
        hand = m->hand_mean; /* standardises to 0 */
    for (size_t j = 0; j < CG_CLASS_NFEAT; j++) {
        float x = hand[j];
        if (!isfinite(x))
            continue;
        z += (double)m->hand_w[j] * ((double)(x - m->hand_mean[j]) * m->hand_scale[j]);
    }
    return z;
}

float cg_learned_predict(const cg_learned_model *m, const cg_learned_input *in) {
    if (!m || !in)
        return 0.5f;
    grams g = {m->hash_bits, m->word_ngrams, m->max_bytes};
    double sum = 0;
    size_t cnt = 0;
    if (in->text)
        FOR_EACH_GRAM(&g, in->text, in->len, ix, {
            sum += m->w[ix];
            cnt++;
        });
    double z = m->bias + (cnt ? sum / sqrt((double)cnt) : 0) + hand_dot(m, in->hand);
    if (m->embed_dim && in->embed && in->embed_dim == m->embed_dim)
        for (size_t j = 0; j < m->embed_dim; j++)
            if (isfinite(in->embed[j]))
                z += (double)m->embed_w[j] * in->embed[j];
    return sigmoidf(z);
}

/* ------------------------------------------------------------------ */
/* Training                                                             */

typedef struct prepared {
    uint32_t *ix; /* all grams, concatenated */
    size_t *off;  /* n + 1 offsets */
    float *v;     /* per example: 1/sqrt(count) */
    size_t n;
} prepared;

static void prepared_free(prepared *p) {
    free(p->ix);
    free(p->off);
    free(p->v);
    memset(p, 0, sizeof *p);
}

static int prepare(const grams *g, const cg_learned_example *a, size_t na,
                   const cg_learned_example *b, size_t nb, prepared *out) {
    memset(out, 0, sizeof *out);
    size_t n = na + nb, total = 0;
    out->off = calloc(n + 1, sizeof *out->off);
    out->v = calloc(n ? n : 1, sizeof *out->v);
    if (!out->off || !out->v)
        goto fail;
    for (size_t e = 0; e < n; e++) {
        const cg_learned_example *x = e < na ? &a[e] : &b[e - na];
        size_t c = 0;
        if (x->text)
            FOR_EACH_GRAM(g, x->text, x->len, ix, {
                (void)ix;
                c++;
            });
        out->off[e] = total;
        total += c;
        out->v[e] = c ? (float)(1.0 / sqrt((double)c)) : 0.0f;
    }
    out->off[n] = total;
    out->ix = malloc((total ? total : 1) * sizeof *out->ix);
    if (!out->ix)
        goto fail;
    for (size_t e = 0; e < n; e++) {
        const cg_learned_example *x = e < na ? &a[e] : &b[e - na];
        size_t k = out->off[e];
        if (x->text)
            FOR_EACH_GRAM(g, x->text, x->len, ix, { out->ix[k++] = ix; });
    }
    out->n = n;
    return 0;
fail:
    prepared_free(out);
    return -1;
}

static const cg_learned_example *ex_at(const cg_learned_example *a, size_t na,
                                       const cg_learned_example *b, size_t i) {
    return i < na ? &a[i] : &b[i - na];
}

static uint64_t xorshift(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * UINT64_C(0x2545F4914F6CDD1D);
}

static cg_learned_model *model_new(const cg_learned_opts *o) {
    cg_learned_model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->hash_bits = o->hash_bits;
    m->word_ngrams = o->word_ngrams;
    m->max_bytes = o->max_bytes;
    snprintf(m->label, sizeof m->label, "%s", o->label ? o->label : "needed");
    snprintf(m->note, sizeof m->note, "%s", o->note ? o->note : "");
    for (char *c = m->note; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    m->w = calloc((size_t)1 << o->hash_bits, sizeof *m->w);
    if (!m->w) {
        free(m);
        return NULL;
    }
    return m;
}

/* One fit on examples [0, n) of (a ++ b) with the given L2. */
static cg_learned_model *fit(const prepared *pr, const cg_learned_example *a, size_t na,
                             const cg_learned_example *b, size_t n, const cg_learned_opts *o,
                             float l2) {
    cg_learned_model *m = model_new(o);
    size_t dim = (size_t)1 << o->hash_bits;
    float *g2 = calloc(dim, sizeof *g2);
    double *avg = calloc(dim, sizeof *avg);
    uint8_t *seen = calloc(dim, 1);
    size_t *perm = malloc((n ? n : 1) * sizeof *perm);
    if (!m || !g2 || !avg || !seen || !perm)
        goto fail;
    /* Hashed n-grams seen fewer than min_count times in this fit's data keep
     * a zero weight: rare grams only memorise their few examples (and would
     * make the model file large). */
    for (size_t i = 0; i < pr->off[n]; i++)
        if (seen[pr->ix[i]] < UINT8_MAX)
            seen[pr->ix[i]]++;
    m->l2 = l2;
    /* Standardisation of hand features on this fit's data. */
    for (size_t j = 0; j < CG_CLASS_NFEAT; j++) {
        double s = 0, s2 = 0;
        for (size_t i = 0; i < n; i++) {
            double x = ex_at(a, na, b, i)->hand[j];
            s += isfinite(x) ? x : 0;
        }
        double mean = n ? s / (double)n : 0;
        for (size_t i = 0; i < n; i++) {
            double x = ex_at(a, na, b, i)->hand[j];
            x = isfinite(x) ? x : mean;
            s2 += (x - mean) * (x - mean);
        }
        double sd = n ? sqrt(s2 / (double)n) : 0;
        m->hand_mean[j] = (float)mean;
        m->hand_scale[j] = sd > 1e-6 ? (float)(1.0 / sd) : 0.0f;
    }
    double avg_bias = 0, avg_hand[CG_CLASS_NFEAT] = {0};
    unsigned n_avg = 0;
    const double eps = 1e-8, lr = o->lr;
    /* bags independent runs (shuffle seeds seed, seed+1, ...), averaged */
    for (unsigned bag = 0; bag < o->bags; bag++) {
        double gb2 = 0, gh2[CG_CLASS_NFEAT] = {0};
        uint64_t rng = mix64((o->seed ? o->seed : 1) + bag);
        memset(m->w, 0, dim * sizeof *m->w);
        memset(g2, 0, dim * sizeof *g2);
        m->bias = 0;
        memset(m->hand_w, 0, sizeof m->hand_w);
        for (size_t i = 0; i < n; i++)
            perm[i] = i;
        for (unsigned ep = 0; ep < o->epochs; ep++) {
            for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
                size_t j = (size_t)(xorshift(&rng) % i);
                size_t t = perm[i - 1];
                perm[i - 1] = perm[j];
                perm[j] = t;
            }
            for (size_t r = 0; r < n; r++) {
                size_t e = perm[r];
                const cg_learned_example *x = ex_at(a, na, b, e);
                const uint32_t *ix = pr->ix + pr->off[e];
                size_t cnt = pr->off[e + 1] - pr->off[e];
                double v = pr->v[e], xs[CG_CLASS_NFEAT];
                double z = m->bias;
                for (size_t k = 0; k < cnt; k++)
                    z += m->w[ix[k]] * v;
                for (size_t j = 0; j < CG_CLASS_NFEAT; j++) {
                    double h = isfinite(x->hand[j]) ? x->hand[j] : m->hand_mean[j];
                    xs[j] = (h - m->hand_mean[j]) * m->hand_scale[j];
                    z += m->hand_w[j] * xs[j];
                }
                double gr = ((double)sigmoidf(z) - x->y) * (x->w > 0 ? x->w : 1.0);
                gb2 += gr * gr;
                m->bias -= (float)(lr * gr / sqrt(gb2 + eps));
                for (size_t k = 0; k < cnt; k++) {
                    if (seen[ix[k]] < o->min_count)
                        continue;
                    double gi = gr * v + l2 * m->w[ix[k]];
                    g2[ix[k]] += (float)(gi * gi);
                    m->w[ix[k]] -= (float)(lr * gi / sqrt(g2[ix[k]] + eps));
                }
                for (size_t j = 0; j < CG_CLASS_NFEAT; j++) {
                    double gi = gr * xs[j] + l2 * m->hand_w[j];
                    gh2[j] += gi * gi;
                    m->hand_w[j] -= (float)(lr * gi / sqrt(gh2[j] + eps));
                }
            }
            /* The model is the mean of the weights at the ends of the second half
             * of the epochs: it damps the shuffle-order noise of the last steps. */
            if (2 * (ep + 1) > o->epochs) {
                for (size_t i = 0; i < dim; i++)
                    avg[i] += m->w[i];
                avg_bias += m->bias;
                for (size_t j = 0; j < CG_CLASS_NFEAT; j++)
                    avg_hand[j] += m->hand_w[j];
                n_avg++;
            }
        }
    }
    for (size_t i = 0; i < dim; i++)
        m->w[i] = (float)(avg[i] / n_avg);
    m->bias = (float)(avg_bias / n_avg);
    for (size_t j = 0; j < CG_CLASS_NFEAT; j++)
        m->hand_w[j] = (float)(avg_hand[j] / n_avg);
    free(g2);
    free(avg);
    free(seen);
    free(perm);
    return m;
fail:
    free(g2);
    free(avg);
    free(seen);
    free(perm);
    cg_learned_free(m);
    return NULL;
}

static double neg_logloss(const float *p, size_t n, void *arg) {
    const cg_learned_example *val = arg;
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double q = p[i] < 1e-6f ? 1e-6 : p[i] > 1 - 1e-6f ? 1 - 1e-6 : p[i];
        s += val[i].y * log(q) + (1 - val[i].y) * log(1 - q);
    }
    return n ? s / (double)n : 0;
}

static size_t count_nonzero(const cg_learned_model *m) {
    size_t nz = 0, dim = (size_t)1 << m->hash_bits;
    for (size_t i = 0; i < dim; i++)
        nz += m->w[i] != 0.0f;
    return nz;
}

cg_learned_model *cg_learned_train(const cg_learned_example *train, size_t n_train,
                                   const cg_learned_example *val, size_t n_val,
                                   const cg_learned_opts *opts, cg_learned_val_fn fn, void *arg,
                                   cg_learned_report *rep, char *err, size_t errcap) {
    cg_learned_opts o;
    if (opts)
        o = *opts;
    else
        cg_learned_opts_default(&o);
    if (!o.l2_grid || o.n_l2 == 0) {
        o.l2_grid = default_grid;
        o.n_l2 = sizeof default_grid / sizeof default_grid[0];
    }
    if (o.hash_bits < 10 || o.hash_bits > 24 || o.word_ngrams < 1 || o.word_ngrams > 3 ||
        o.max_bytes == 0 || o.epochs == 0 || o.epochs > 1000 || o.bags == 0 || o.bags > 64 ||
        !(o.lr > 0) || o.min_count > 255 || o.n_l2 > CG_LEARNED_MAX_L2) {
        errf(err, errcap,
             "bad training options (hash_bits 10..24, ngrams 1..3, epochs 1..1000, "
             "lr > 0, at most 16 L2 values)");
        return NULL;
    }
    for (size_t i = 0; i < o.n_l2; i++)
        if (!(o.l2_grid[i] >= 0) || !isfinite(o.l2_grid[i])) {
            errf(err, errcap, "L2 values must be finite and >= 0");
            return NULL;
        }
    if (n_train == 0 || !train || (n_val && !val)) {
        errf(err, errcap, "no training examples");
        return NULL;
    }
    for (size_t i = 0; i < n_train + n_val; i++) {
        const cg_learned_example *x = ex_at(train, n_train, val, i);
        if (!(x->y >= 0 && x->y <= 1)) {
            errf(err, errcap, "example %zu: label must be in [0,1]", i);
            return NULL;
        }
    }
    grams g = {o.hash_bits, o.word_ngrams, o.max_bytes};
    prepared pr;
    float *p = NULL;
    cg_learned_model *best = NULL;
    if (prepare(&g, train, n_train, val, n_val, &pr) != 0) {
        errf(err, errcap, "out of memory");
        return NULL;
    }
    if (rep) {
        memset(rep, 0, sizeof *rep);
        rep->n_train = n_train;
        rep->n_val = n_val;
        rep->refit = o.refit && n_val > 0;
    }
    float chosen = o.l2_grid[0];
    if (n_val > 0) {
        p = malloc(n_val * sizeof *p);
        if (!p) {
            errf(err, errcap, "out of memory");
            goto out;
        }
        double best_score = -INFINITY;
        for (size_t k = 0; k < o.n_l2; k++) {
            cg_learned_model *m = fit(&pr, train, n_train, val, n_train, &o, o.l2_grid[k]);
            if (!m) {
                errf(err, errcap, "out of memory");
                goto out;
            }
            for (size_t i = 0; i < n_val; i++) {
                const cg_learned_example *x = &val[i];
                cg_learned_input in = {x->text, x->len, x->hand, NULL, 0};
                p[i] = cg_learned_predict(m, &in);
            }
            double s = fn ? fn(p, n_val, arg) : neg_logloss(p, n_val, (void *)val);
            if (rep) {
                rep->l2[k] = o.l2_grid[k];
                rep->val[k] = s;
                rep->n_l2 = k + 1;
            }
            /* ties go to the stronger regularisation */
            if (s > best_score || (s == best_score && o.l2_grid[k] > chosen)) {
                best_score = s;
                chosen = o.l2_grid[k];
                cg_learned_free(best);
                best = m;
            } else {
                cg_learned_free(m);
            }
        }
        if (o.refit) {
            cg_learned_free(best);
            best = fit(&pr, train, n_train, val, n_train + n_val, &o, chosen);
        }
    } else {
        best = fit(&pr, train, n_train, val, n_train, &o, chosen);
    }
    if (!best)
        errf(err, errcap, "out of memory");
    else if (rep) {
        rep->chosen_l2 = chosen;
        rep->nonzero = count_nonzero(best);
    }
out:
    free(p);
    prepared_free(&pr);
    if (!best)
        return NULL;
    return best;
}

void cg_learned_free(cg_learned_model *m) {
    if (!m)
        return;
    free(m->w);
    free(m->embed_w);
    free(m);
}

void cg_learned_get_info(const cg_learned_model *m, cg_learned_info *out) {
    memset(out, 0, sizeof *out);
    if (!m)
        return;
    out->version = CG_LEARNED_VERSION;
    out->hash_bits = m->hash_bits;
    out->word_ngrams = m->word_ngrams;
    out->max_bytes = m->max_bytes;
    out->nonzero = count_nonzero(m);
    out->embed_dim = m->embed_dim;
    out->l2 = m->l2;
    snprintf(out->label, sizeof out->label, "%s", m->label);
    snprintf(out->note, sizeof out->note, "%s", m->note);
}

/* ------------------------------------------------------------------ */
/* Model file                                                           */

static uint64_t fnv1a(const char *p, size_t n) {
    uint64_t h = FNV_OFF;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * FNV_PRIME;
    return h;
}

int cg_learned_save(const cg_learned_model *m, const char *path, char *err, size_t errcap) {
    char tmp[4096];
    char *text = NULL;
    size_t len = 0;
    FILE *mem = NULL, *f = NULL;
    int rc = -1;
    if (!m || !path) {
        errf(err, errcap, "no model or path");
        return -1;
    }
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        errf(err, errcap, "path too long");
        return -1;
    }
    mem = open_memstream(&text, &len);
    if (!mem) {
        errf(err, errcap, "out of memory");
        return -1;
    }
    fprintf(mem, "%s %d\n", CG_LEARNED_MAGIC, CG_LEARNED_VERSION);
    fprintf(mem, "label %s\nhash_bits %u\nword_ngrams %u\nmax_bytes %zu\nl2 %.9g\n", m->label,
            m->hash_bits, m->word_ngrams, m->max_bytes, (double)m->l2);
    fprintf(mem, "note %s\nbias %.9g\nhand %d\n", m->note, (double)m->bias, CG_CLASS_NFEAT);
    for (size_t j = 0; j < CG_CLASS_NFEAT; j++)
        fprintf(mem, "h %s %.9g %.9g %.9g\n", cg_class_feature_name(j), (double)m->hand_mean[j],
                (double)m->hand_scale[j], (double)m->hand_w[j]);
    fprintf(mem, "embed %zu\n", m->embed_dim);
    for (size_t j = 0; j < m->embed_dim; j++)
        fprintf(mem, "e %zu %.9g\n", j, (double)m->embed_w[j]);
    size_t dim = (size_t)1 << m->hash_bits;
    fprintf(mem, "weights %zu\n", count_nonzero(m));
    for (size_t i = 0; i < dim; i++)
        if (m->w[i] != 0.0f)
            fprintf(mem, "w %zu %.9g\n", i, (double)m->w[i]);
    if (fflush(mem) != 0) {
        errf(err, errcap, "out of memory");
        goto out;
    }
    uint64_t h = fnv1a(text, len);
    fprintf(mem, "checksum %016llx\n", (unsigned long long)h);
    if (fclose(mem) != 0) {
        mem = NULL;
        errf(err, errcap, "out of memory");
        goto out;
    }
    mem = NULL;
    f = fopen(tmp, "w");
    if (!f) {
        errf(err, errcap, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    if (fwrite(text, 1, len, f) != len || fclose(f) != 0) {
        f = NULL;
        errf(err, errcap, "%s: write failed", tmp);
        unlink(tmp);
        goto out;
    }
    f = NULL;
    if (rename(tmp, path) != 0) {
        errf(err, errcap, "%s: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    if (mem)
        fclose(mem);
    if (f)
        fclose(f);
    free(text);
    return rc;
}

/* Line reader over a buffer: returns the next line (without '\n') or NULL. */
typedef struct lines {
    const char *p, *end;
    size_t no;
    char buf[512];
} lines;

static const char *next_line(lines *L, int *too_long) {
    *too_long = 0;
    if (L->p >= L->end)
        return NULL;
    const char *nl = memchr(L->p, '\n', (size_t)(L->end - L->p));
    if (!nl) /* the last line must end with '\n' */
        return NULL;
    size_t n = (size_t)(nl - L->p);
    L->no++;
    if (n >= sizeof L->buf || memchr(L->p, '\0', n)) {
        *too_long = 1;
        L->p = nl + 1;
        return NULL;
    }
    memcpy(L->buf, L->p, n);
    L->buf[n] = '\0';
    L->p = nl + 1;
    return L->buf;
}

static int parse_float(const char *s, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int parse_size(const char *s, size_t *out) {
    if (!*s)
        return -1;
    for (const char *c = s; *c; c++)
        if (*c < '0' || *c > '9')
            return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno == ERANGE || v > (unsigned long long)SIZE_MAX)
        return -1;
    *out = (size_t)v;
    return 0;
}

/* "KEY VALUE" with exactly one space; returns VALUE or NULL. */
static const char *kv(const char *line, const char *key) {
    size_t k = strlen(key);
    if (strncmp(line, key, k) != 0 || line[k] != ' ')
        return NULL;
    return line + k + 1;
}

cg_learned_model *cg_learned_parse(const char *data, size_t len, char *err, size_t errcap) {
    cg_learned_model *m = NULL;
    if (!data || len == 0) {
        errf(err, errcap, "empty model file");
        return NULL;
    }
    /* Checksum: the last line, over every byte before it. */
    if (data[len - 1] != '\n') {
        errf(err, errcap, "truncated model file (no final newline)");
        return NULL;
    }
    size_t last = len - 1;
    while (last > 0 && data[last - 1] != '\n')
        last--;
    {
        char want[64];
        size_t ln = len - 1 - last;
        if (ln >= sizeof want || ln < 10 || memcmp(data + last, "checksum ", 9) != 0) {
            errf(err, errcap, "truncated model file (no checksum line)");
            return NULL;
        }
        memcpy(want, data + last + 9, ln - 9);
        want[ln - 9] = '\0';
        char got[32];
        snprintf(got, sizeof got, "%016llx", (unsigned long long)fnv1a(data, last));
        if (strcmp(want, got) != 0) {
            errf(err, errcap, "checksum mismatch (file %s, content %s): corrupt or edited", want,
                 got);
            return NULL;
        }
    }
    lines L = {data, data + last, 0, {0}};
    int tl = 0;
    const char *s;
    cg_learned_opts o;
    cg_learned_opts_default(&o);
#define NEXT()                                                                                     \
    do {                                                                                           \
        s = next_line(&L, &tl);                                                                    \
        if (!s) {                                                                                  \
            errf(err, errcap, "line %zu: %s", L.no, tl ? "line too long" : "unexpected end");      \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)
#define BAD(what)                                                                                  \
    do {                                                                                           \
        errf(err, errcap, "line %zu: %s", L.no, what);                                             \
        goto fail;                                                                                 \
    } while (0)
    NEXT();
    {
        const char *v = kv(s, CG_LEARNED_MAGIC);
        if (!v)
            BAD("not a costgate route model (bad magic)");
        size_t ver;
        if (parse_size(v, &ver) != 0 || ver != CG_LEARNED_VERSION) {
            errf(err, errcap, "unsupported model version \"%s\" (this build reads %d)", v,
                 CG_LEARNED_VERSION);
            goto fail;
        }
    }
    char label[32];
    size_t bits, ngr, maxb;
    float l2;
    NEXT();
    {
        const char *v = kv(s, "label");
        if (!v || strlen(v) == 0 || strlen(v) >= sizeof label)
            BAD("expected \"label NAME\"");
        snprintf(label, sizeof label, "%s", v);
    }
    NEXT();
    if (!kv(s, "hash_bits") || parse_size(kv(s, "hash_bits"), &bits) || bits < 10 || bits > 24)
        BAD("expected \"hash_bits 10..24\"");
    NEXT();
    if (!kv(s, "word_ngrams") || parse_size(kv(s, "word_ngrams"), &ngr) || ngr < 1 || ngr > 3)
        BAD("expected \"word_ngrams 1..3\"");
    NEXT();
    if (!kv(s, "max_bytes") || parse_size(kv(s, "max_bytes"), &maxb) || maxb == 0)
        BAD("expected \"max_bytes N\"");
    NEXT();
    if (!kv(s, "l2") || parse_float(kv(s, "l2"), &l2) || l2 < 0)
        BAD("expected \"l2 X\"");
    o.hash_bits = (unsigned)bits;
    o.word_ngrams = (unsigned)ngr;
    o.max_bytes = maxb;
    o.label = label;
    NEXT();
    const char *note = kv(s, "note");
    if (!note && strcmp(s, "note") != 0)
        BAD("expected \"note TEXT\"");
    o.note = note ? note : "";
    m = model_new(&o);
    if (!m) {
        errf(err, errcap, "out of memory");
        return NULL;
    }
    m->l2 = l2;
    NEXT();
    if (!kv(s, "bias") || parse_float(kv(s, "bias"), &m->bias))
        BAD("expected \"bias X\"");
    NEXT();
    {
        size_t nh;
        if (!kv(s, "hand") || parse_size(kv(s, "hand"), &nh))
            BAD("expected \"hand N\"");
        if (nh != CG_CLASS_NFEAT) {
            errf(err, errcap, "model has %zu hand features, this build has %d: retrain it", nh,
                 CG_CLASS_NFEAT);
            goto fail;
        }
    }
    for (size_t j = 0; j < CG_CLASS_NFEAT; j++) {
        NEXT();
        char name[64], a[64], b[64], c[64], extra[2];
        if (sscanf(s, "h %63s %63s %63s %63s %1s", name, a, b, c, extra) != 4)
            BAD("expected \"h NAME MEAN SCALE WEIGHT\"");
        if (strcmp(name, cg_class_feature_name(j)) != 0) {
            errf(err, errcap,
                 "line %zu: hand feature %zu is \"%s\", this build has \"%s\": "
                 "retrain the model",
                 L.no, j, name, cg_class_feature_name(j));
            goto fail;
        }
        if (parse_float(a, &m->hand_mean[j]) || parse_float(b, &m->hand_scale[j]) ||
            parse_float(c, &m->hand_w[j]))
            BAD("bad number in hand feature");
    }
    NEXT();
    {
        size_t ed;
        if (!kv(s, "embed") || parse_size(kv(s, "embed"), &ed) || ed > 65536)
            BAD("expected \"embed 0..65536\"");
        m->embed_dim = ed;
        if (ed) {
            m->embed_w = calloc(ed, sizeof *m->embed_w);
            if (!m->embed_w) {
                errf(err, errcap, "out of memory");
                goto fail;
            }
        }
        for (size_t j = 0; j < ed; j++) {
            NEXT();
            char a[32], b[64], extra[2];
            size_t ix;
            if (sscanf(s, "e %31s %63s %1s", a, b, extra) != 2 || parse_size(a, &ix) || ix != j ||
                parse_float(b, &m->embed_w[j]))
                BAD("expected \"e INDEX WEIGHT\" in order");
        }
    }
    NEXT();
    size_t nw, dim = (size_t)1 << m->hash_bits;
    if (!kv(s, "weights") || parse_size(kv(s, "weights"), &nw) || nw > dim)
        BAD("expected \"weights N\" (N <= 2^hash_bits)");
    size_t prev = 0;
    for (size_t k = 0; k < nw; k++) {
        NEXT();
        char a[32], b[64], extra[2];
        size_t ix;
        float v;
        if (sscanf(s, "w %31s %63s %1s", a, b, extra) != 2 || parse_size(a, &ix) ||
            parse_float(b, &v))
            BAD("expected \"w INDEX WEIGHT\"");
        if (ix >= dim)
            BAD("weight index out of range");
        if (k > 0 && ix <= prev)
            BAD("weight indexes must increase");
        prev = ix;
        m->w[ix] = v;
    }
    if (L.p != L.end) {
        errf(err, errcap, "line %zu: unexpected data after the weights", L.no + 1);
        goto fail;
    }
#undef NEXT
#undef BAD
    return m;
fail:
    cg_learned_free(m);
    return NULL;
}

cg_learned_model *cg_learned_load(const char *path, char *err, size_t errcap) {
    FILE *f = path ? fopen(path, "rb") : NULL;
    char *data = NULL;
    cg_learned_model *m = NULL;
    if (!f) {
        errf(err, errcap, "%s: %s", path ? path : "(null)", strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    data = malloc(cap);
    while (data) {
        if (len == cap) {
            if (cap >= MAX_FILE_BYTES) {
                errf(err, errcap, "%s: larger than 64 MiB", path);
                goto out;
            }
            char *nd = realloc(data, cap * 2);
            if (!nd) {
                errf(err, errcap, "out of memory");
                goto out;
            }
            data = nd;
            cap *= 2;
        }
        size_t r = fread(data + len, 1, cap - len, f);
        len += r;
        if (r == 0)
            break;
    }
    if (!data) {
        errf(err, errcap, "out of memory");
        goto out;
    }
    if (ferror(f)) {
        errf(err, errcap, "%s: read error", path);
        goto out;
    }
    {
        char sub[256];
        m = cg_learned_parse(data, len, sub, sizeof sub);
        if (!m)
            errf(err, errcap, "%s: %s", path, sub);
    }
out:
    free(data);
    fclose(f);
    return m;
}
