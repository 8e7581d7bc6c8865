/* verifier_train: fitting and writing the pair verifier (see
 * verifier_train.h).
 *
 * Owns: input standardisation, weight initialisation, the minibatch Adam
 * loop (log-loss, L2 weight decay), folding the standardisation into the
 * first layer, and the file write.
 */
#include "cache/verifier_train.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/verifier_internal.h"

#define NF CG_VERIFIER_NFEAT
#define ADAM_B1 0.9f
#define ADAM_B2 0.999f
#define ADAM_EPS 1e-8f

void cg_verifier_train_opts_default(cg_verifier_train_opts *o) {
    o->hidden = 0;
    o->epochs = 8;
    o->batch = 64;
    o->lr = 0.001f;
    o->l2 = 0.001f;
    o->seed = 1;
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static float unif(uint64_t *s) {
    return (float)((double)(splitmix(s) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

static uint64_t digest(const float *x, const uint8_t *y, size_t n) {
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    const unsigned char *p = (const unsigned char *)x;
    for (size_t i = 0; i < n * NF * sizeof *x; i++)
        h = (h ^ p[i]) * UINT64_C(0x100000001b3);
    for (size_t i = 0; i < n; i++)
        h = (h ^ y[i]) * UINT64_C(0x100000001b3);
    return h;
}

typedef struct {
    size_t n; /* parameters */
    float *p, *g, *m, *v;
} params;

static int params_init(params *P, size_t n) {
    P->n = n;
    P->p = calloc(n, sizeof *P->p);
    P->g = calloc(n, sizeof *P->g);
    P->m = calloc(n, sizeof *P->m);
    P->v = calloc(n, sizeof *P->v);
    return P->p && P->g && P->m && P->v ? 0 : -1;
}

static void params_free(params *P) {
    free(P->p);
    free(P->g);
    free(P->m);
    free(P->v);
}

/* One Adam step on the averaged gradient; decay[k]: parameter k is decayed. */
static void adam_step(params *P, const uint8_t *decay, float lr, float l2, float inv_b,
                      unsigned long t) {
    float c1 = 1.0f - powf(ADAM_B1, (float)t), c2 = 1.0f - powf(ADAM_B2, (float)t);
    float step = lr * sqrtf(c2) / c1;
    for (size_t k = 0; k < P->n; k++) {
        float g = P->g[k] * inv_b + (decay[k] ? l2 * P->p[k] : 0.0f);
        P->m[k] = ADAM_B1 * P->m[k] + (1.0f - ADAM_B1) * g;
        P->v[k] = ADAM_B2 * P->v[k] + (1.0f - ADAM_B2) * g * g;
        P->p[k] -= step * P->m[k] / (sqrtf(P->v[k]) + ADAM_EPS);
        P->g[k] = 0.0f;
    }
}

cg_verifier *cg_verifier_train(const float *x, const uint8_t *y, size_t n,
                               const cg_verifier_train_opts *o, char *err, size_t errcap) {
    cg_verifier *v = NULL;
    params P = {0};
    float *mean = NULL, *scale = NULL, *xs = NULL, *hid = NULL;
    uint8_t *decay = NULL;
    size_t *order = NULL;
    int ok = 0;
    if (!o || o->hidden > CG_VERIFIER_MAX_HIDDEN || o->epochs == 0 || o->batch == 0 ||
        !(o->lr > 0.0f) || !isfinite(o->lr) || !(o->l2 >= 0.0f) || !isfinite(o->l2) || n == 0 ||
        n > UINT_MAX || !x || !y) {
        snprintf(err, errcap, "verifier training: bad options or no data");
        return NULL;
    }
    const unsigned H = o->hidden;
    /* parameters: LR: w[NF], b. MLP: W1[H][NF], b1[H], w2[H], b2 */
    size_t np = H ? (size_t)H * NF + 2u * H + 1u : NF + 1u;
    mean = calloc(NF, sizeof *mean);
    scale = calloc(NF, sizeof *scale);
    xs = calloc(NF, sizeof *xs);
    hid = calloc(H + 1u, sizeof *hid);
    decay = calloc(np, 1);
    order = malloc(n * sizeof *order);
    if (!mean || !scale || !xs || !hid || !decay || !order || params_init(&P, np) != 0) {
        snprintf(err, errcap, "out of memory");
        goto out;
    }
    /* standardisation */
    for (size_t f = 0; f < NF; f++) {
        double s = 0, ss = 0;
        for (size_t i = 0; i < n; i++)
            s += x[i * NF + f];
        double m = s / (double)n;
        for (size_t i = 0; i < n; i++) {
            double d = x[i * NF + f] - m;
            ss += d * d;
        }
        double sd = sqrt(ss / (double)n);
        mean[f] = (float)m;
        scale[f] = sd > 1e-9 ? (float)(1.0 / sd) : 0.0f;
    }
    uint64_t rng = o->seed;
    float *W1 = P.p, *b1 = P.p + (H ? (size_t)H * NF : NF);
    float *w2 = H ? b1 + H : NULL, *b2 = H ? w2 + H : NULL;
    float *gW1 = P.g, *gb1 = P.g + (H ? (size_t)H * NF : NF);
    float *gw2 = H ? gb1 + H : NULL, *gb2 = H ? gw2 + H : NULL;
    if (H) {
        float a1 = sqrtf(3.0f / (float)NF), a2 = sqrtf(3.0f / (float)H);
        for (size_t k = 0; k < (size_t)H * NF; k++)
            W1[k] = a1 * unif(&rng), decay[k] = 1;
        for (unsigned j = 0; j < H; j++)
            w2[j] = a2 * unif(&rng), decay[(size_t)H * NF + H + j] = 1;
    } else {
        memset(decay, 1, NF);
    }
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    unsigned long t = 0;
    for (unsigned ep = 0; ep < o->epochs; ep++) {
        for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
            size_t j = (size_t)(splitmix(&rng) % i);
            size_t tmp = order[i - 1];
            order[i - 1] = order[j];
            order[j] = tmp;
        }
        for (size_t s = 0; s < n; s += o->batch) {
            size_t e = s + o->batch < n ? s + o->batch : n;
            for (size_t q = s; q < e; q++) {
                const float *row = x + order[q] * NF;
                for (size_t f = 0; f < NF; f++)
                    xs[f] = (row[f] - mean[f]) * scale[f];
                float target = y[order[q]] ? 1.0f : 0.0f;
                if (!H) {
                    float z = b1[0];
                    for (size_t f = 0; f < NF; f++)
                        z += W1[f] * xs[f];
                    float g = 1.0f / (1.0f + expf(-z)) - target;
                    for (size_t f = 0; f < NF; f++)
                        gW1[f] += g * xs[f];
                    gb1[0] += g;
                    continue;
                }
                float z = b2[0];
                for (unsigned j = 0; j < H; j++) {
                    const float *wr = W1 + (size_t)j * NF;
                    float a = b1[j];
                    for (size_t f = 0; f < NF; f++)
                        a += wr[f] * xs[f];
                    hid[j] = tanhf(a);
                    z += w2[j] * hid[j];
                }
                float g = 1.0f / (1.0f + expf(-z)) - target;
                gb2[0] += g;
                for (unsigned j = 0; j < H; j++) {
                    float d = g * w2[j] * (1.0f - hid[j] * hid[j]);
                    gw2[j] += g * hid[j];
                    gb1[j] += d;
                    float *gr = gW1 + (size_t)j * NF;
                    for (size_t f = 0; f < NF; f++)
                        gr[f] += d * xs[f];
                }
            }
            adam_step(&P, decay, o->lr, o->l2, 1.0f / (float)(e - s), ++t);
        }
    }
    v = cg_verifier_alloc(H);
    if (!v) {
        snprintf(err, errcap, "out of memory");
        goto out;
    }
    /* fold the standardisation: w' = w * scale, b' = b - sum(w * scale * mean) */
    for (unsigned j = 0; j < (H ? H : 1u); j++) {
        const float *wr = W1 + (size_t)j * NF;
        float *dst = v->w1 + (size_t)j * NF;
        double shift = 0;
        for (size_t f = 0; f < NF; f++) {
            dst[f] = wr[f] * scale[f];
            shift += (double)dst[f] * (double)mean[f];
        }
        v->b1[j] = (float)((double)b1[j] - shift);
    }
    if (H) {
        memcpy(v->w2, w2, H * sizeof *w2);
        v->b2 = b2[0];
    }
    v->l2 = o->l2;
    v->epochs = o->epochs;
    v->seed = o->seed;
    v->n_train = (unsigned)n;
    v->digest = digest(x, y, n);
    ok = 1;
out:
    params_free(&P);
    free(mean);
    free(scale);
    free(xs);
    free(hid);
    free(decay);
    free(order);
    if (!ok) {
        cg_verifier_free(v);
        v = NULL;
    }
    return v;
}

int cg_verifier_set_operating_point(cg_verifier *v, float floor, float threshold, unsigned n_val,
                                    const char *note) {
    if (!v || !(floor >= 0.0f && floor <= 1.0f) || !(threshold >= 0.0f && threshold <= 1.0f))
        return -1;
    v->floor = floor;
    v->threshold = threshold;
    v->n_val = n_val;
    snprintf(v->note, sizeof v->note, "%s", note ? note : "");
    return 0;
}

int cg_verifier_save(cg_verifier *v, const char *path, char *err, size_t errcap) {
    size_t len = 0;
    unsigned char *buf = cg_verifier_serialise(v, &len);
    char tmp[PATH_MAX + 16];
    FILE *f = NULL;
    int rc = -1;
    if (!buf) {
        snprintf(err, errcap, "out of memory");
        goto out;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "wb");
    if (!f || fwrite(buf, 1, len, f) != len) {
        snprintf(err, errcap, "%s: cannot write", tmp);
        goto out;
    }
    int cr = fclose(f);
    f = NULL;
    if (cr != 0 || rename(tmp, path) != 0) {
        snprintf(err, errcap, "%s: cannot write", path);
        remove(tmp);
        goto out;
    }
    rc = 0;
out:
    if (f) {
        fclose(f);
        remove(tmp);
    }
    free(buf);
    return rc;
}
