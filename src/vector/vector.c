/* vector: the HNSW graph of cg_vindex (API in vector.h).
 *
 * Owns: options, allocation, the id -> slot map, insertion (level draw,
 * greedy descent, ef_construction search per layer, heuristic neighbour
 * selection, reverse links pruned by the same heuristic), search (exact
 * scan for small indexes, else greedy descent plus an ef_search beam on
 * layer 0), deletes (tombstones: still routed through, never returned) and
 * the purge that repairs every list pointing at a tombstone from the
 * tombstone's own neighbours and then frees its slot.
 *
 * Locking: wmu serialises writers. A writer reads the graph with no rwlock
 * (only writers change it, and it holds wmu), builds a plan of the lists it
 * will change, and takes the write lock only to copy the plan in. Searches
 * hold the read lock. Distances are -dot on normalised vectors: the query
 * (or the vector being inserted) in float32, the stored side in float16.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vector/vector_internal.h"

const char *cg_vindex_strerror(int err) {
    switch (err) {
    case CG_VE_OK:
        return "ok";
    case CG_VE_INVAL:
        return "invalid argument";
    case CG_VE_NOMEM:
        return "out of memory";
    case CG_VE_FULL:
        return "index full";
    case CG_VE_NOTFOUND:
        return "id not found";
    case CG_VE_IO:
        return "I/O error";
    case CG_VE_FORMAT:
        return "bad index file";
    case CG_VE_CHECKSUM:
        return "checksum mismatch";
    case CG_VE_TRUNCATED:
        return "truncated index file";
    default:
        return "unknown error";
    }
}

int cg_vindex_opts_resolve(cg_vindex_opts *o) {
    if (o->M == 0)
        o->M = CG_VINDEX_DEFAULT_M;
    if (o->ef_construction == 0)
        o->ef_construction = CG_VINDEX_DEFAULT_EFC;
    if (o->max_elements == 0)
        o->max_elements = CG_VINDEX_DEFAULT_MAX;
    if (o->brute_threshold == 0)
        o->brute_threshold = CG_VINDEX_DEFAULT_BRUTE;
    if (o->seed == 0)
        o->seed = 0x9e3779b97f4a7c15ull;
    if (o->M < 2 || o->M > 256 || o->ef_construction < 1 || o->ef_construction > 65536 ||
        o->ef_search < 0 || o->ef_search > 65536 || o->max_elements > CG_VINDEX_MAX_ELEMENTS)
        return CG_VE_INVAL;
    return CG_VE_OK;
}

/* ---- id map: open addressing, linear probing, backward-shift delete ---- */

static uint32_t idhash(uint64_t k, uint32_t mask) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (uint32_t)k & mask;
}

uint32_t cg_vidmap_get(const cg_vidmap *m, uint64_t key) {
    if (m->cap == 0)
        return CG_V_NONE;
    uint32_t mask = m->cap - 1;
    for (uint32_t i = idhash(key, mask);; i = (i + 1) & mask) {
        if (m->vals[i] == CG_V_NONE)
            return CG_V_NONE;
        if (m->keys[i] == key)
            return m->vals[i];
    }
}

static int idmap_grow(cg_vidmap *m) {
    uint32_t ncap = m->cap ? m->cap * 2 : 16;
    uint64_t *nk = malloc(sizeof(*nk) * ncap);
    uint32_t *nv = malloc(sizeof(*nv) * ncap);
    if (!nk || !nv) {
        free(nk);
        free(nv);
        return CG_VE_NOMEM;
    }
    memset(nv, 0xff, sizeof(*nv) * ncap);
    uint32_t mask = ncap - 1;
    for (uint32_t i = 0; i < m->cap; i++) {
        if (m->vals[i] == CG_V_NONE)
            continue;
        uint32_t j = idhash(m->keys[i], mask);
        while (nv[j] != CG_V_NONE)
            j = (j + 1) & mask;
        nk[j] = m->keys[i];
        nv[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = nk;
    m->vals = nv;
    m->cap = ncap;
    return CG_VE_OK;
}

int cg_vidmap_put(cg_vidmap *m, uint64_t key, uint32_t val) {
    if ((uint64_t)(m->used + 1) * 4 > (uint64_t)m->cap * 3) {
        int rc = idmap_grow(m);
        if (rc)
            return rc;
    }
    uint32_t mask = m->cap - 1;
    uint32_t i = idhash(key, mask);
    while (m->vals[i] != CG_V_NONE && m->keys[i] != key)
        i = (i + 1) & mask;
    if (m->vals[i] == CG_V_NONE)
        m->used++;
    m->keys[i] = key;
    m->vals[i] = val;
    return CG_VE_OK;
}

void cg_vidmap_del(cg_vidmap *m, uint64_t key) {
    if (m->cap == 0)
        return;
    uint32_t mask = m->cap - 1;
    uint32_t i = idhash(key, mask);
    while (m->vals[i] != CG_V_NONE && m->keys[i] != key)
        i = (i + 1) & mask;
    if (m->vals[i] == CG_V_NONE)
        return;
    m->used--;
    /* backward shift: pull later members of the probe run into the hole */
    for (uint32_t j = (i + 1) & mask;; j = (j + 1) & mask) {
        if (m->vals[j] == CG_V_NONE)
            break;
        uint32_t h = idhash(m->keys[j], mask);
        /* j may move to i when its home h is not cyclically in (i, j] */
        int move = (i <= j) ? (h <= i || h > j) : (h <= i && h > j);
        if (move) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            i = j;
        }
    }
    m->vals[i] = CG_V_NONE;
}

void cg_vidmap_free(cg_vidmap *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

/* ---- allocation ---- */

#define BLOCK_MMAP_MIN ((size_t)1 << 20)

/* Bytes of block b (the last block stops at the slot capacity). */
static size_t block_bytes(const cg_vindex *ix, uint32_t b) {
    uint32_t first = cg_v_block_first(b), n = cg_v_block_slots(b);
    if (first + n > ix->slot_cap)
        n = ix->slot_cap - first;
    return (size_t)n * ix->rec_size;
}

cg_vindex *cg_v_alloc(int dim, const cg_vindex_opts *o) {
    cg_v_kernels_init();
    cg_vindex *ix = calloc(1, sizeof(*ix));
    if (!ix)
        return NULL;
    ix->dim = dim;
    ix->M = o->M;
    ix->M0 = 2 * o->M;
    ix->efc = o->ef_construction;
    ix->efs = o->ef_search;
    ix->brute_threshold = o->brute_threshold;
    ix->max_elements = o->max_elements;
    uint32_t allowance = o->max_elements / 8 > 64 ? o->max_elements / 8 : 64;
    ix->slot_cap = o->max_elements + allowance;
    ix->seed = o->seed;
    ix->rng = o->seed;
    ix->mult = 1.0 / log((double)o->M);
    size_t hdr = sizeof(cg_vnode) + sizeof(uint32_t) * (size_t)ix->M0;
    ix->vec_off = (hdr + 63) & ~(size_t)63;
    ix->rec_size = (ix->vec_off + sizeof(uint16_t) * (size_t)dim + 63) & ~(size_t)63;
    ix->entry = CG_V_NONE;
    ix->maxlevel = -1;
    ix->tmpv = malloc(sizeof(float) * (size_t)dim);
    ix->tmpb = malloc(sizeof(float) * (size_t)dim);
    ix->tmpc = malloc(sizeof(float) * (size_t)dim);
    pthread_rwlockattr_t ra;
    int rc_attr = pthread_rwlockattr_init(&ra);
    if (rc_attr == 0)
        pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc_rw = pthread_rwlock_init(&ix->rw, rc_attr == 0 ? &ra : NULL);
    if (rc_attr == 0)
        pthread_rwlockattr_destroy(&ra);
    int rc_mu = pthread_mutex_init(&ix->wmu, NULL);
    if (!ix->tmpv || !ix->tmpb || !ix->tmpc || rc_rw || rc_mu) {
        if (!rc_rw)
            pthread_rwlock_destroy(&ix->rw);
        if (!rc_mu)
            pthread_mutex_destroy(&ix->wmu);
        free(ix->tmpv);
        free(ix->tmpb);
        free(ix->tmpc);
        free(ix);
        return NULL;
    }
    return ix;
}

cg_vindex *cg_vindex_new(int dim, const cg_vindex_opts *o) {
    cg_vindex_opts r = {0};
    if (o)
        r = *o;
    if (dim < 1 || dim > CG_VINDEX_MAX_DIM || cg_vindex_opts_resolve(&r) != CG_VE_OK)
        return NULL;
    return cg_v_alloc(dim, &r);
}

void cg_vindex_free(cg_vindex *ix) {
    if (!ix)
        return;
    for (uint32_t s = 0; s < ix->nslots; s++) {
        cg_vnode *n = cg_v_node(ix, s);
        free(n->upper);
    }
    for (uint32_t b = 0; b < CG_V_MAX_BLOCKS; b++) {
        if (!ix->blocks[b])
            continue;
        size_t bytes = block_bytes(ix, b);
        if (bytes >= BLOCK_MMAP_MIN)
            munmap(ix->blocks[b], bytes);
        else
            free(ix->blocks[b]);
    }
    cg_vidmap_free(&ix->ids);
    free(ix->freelist);
    free(ix->tmpv);
    free(ix->tmpb);
    free(ix->tmpc);
    pthread_rwlock_destroy(&ix->rw);
    pthread_mutex_destroy(&ix->wmu);
    free(ix);
}

int cg_v_ensure_block(cg_vindex *ix, uint32_t s) {
    uint32_t off;
    uint32_t b = cg_v_block_of(s, &off);
    if (b >= CG_V_MAX_BLOCKS)
        return CG_VE_FULL;
    if (ix->blocks[b])
        return CG_VE_OK;
    size_t bytes = block_bytes(ix, b);
    void *p;
    if (bytes >= BLOCK_MMAP_MIN) {
        /* zero pages on first touch: memory grows with the slots used */
        p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return CG_VE_NOMEM;
    } else {
        p = aligned_alloc(64, bytes);
        if (!p)
            return CG_VE_NOMEM;
        memset(p, 0, bytes);
    }
    ix->blocks[b] = p;
    return CG_VE_OK;
}

/* ---- per-thread scratch: visited tags and the two heaps ---- */

typedef struct vc {
    float d;
    uint32_t id;
} vc;

typedef struct scratch {
    uint32_t *tags;
    uint32_t ntags;
    uint32_t epoch;
    vc *cand; /* min-heap on d */
    size_t ccap;
    vc *top; /* max-heap on d */
    size_t tcap;
    float *q; /* normalised query */
    int qdim;
} scratch;

static pthread_key_t scr_key;
static pthread_once_t scr_once = PTHREAD_ONCE_INIT;
static int scr_key_ok;

static void scr_destroy(void *p) {
    scratch *s = p;
    if (!s)
        return;
    free(s->tags);
    free(s->cand);
    free(s->top);
    free(s->q);
    free(s);
}

static void scr_key_init(void) {
    scr_key_ok = pthread_key_create(&scr_key, scr_destroy) == 0;
}

static scratch *scr_get(uint32_t nslots, int dim) {
    pthread_once(&scr_once, scr_key_init);
    if (!scr_key_ok)
        return NULL;
    scratch *s = pthread_getspecific(scr_key);
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s || pthread_setspecific(scr_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    if (s->ntags < nslots) {
        uint32_t n = nslots < 1024 ? 1024 : nslots + nslots / 4;
        uint32_t *t = calloc(n, sizeof(*t));
        if (!t)
            return NULL;
        free(s->tags);
        s->tags = t;
        s->ntags = n;
        s->epoch = 0;
    }
    if (s->qdim < dim) {
        float *q = malloc(sizeof(float) * (size_t)dim);
        if (!q)
            return NULL;
        free(s->q);
        s->q = q;
        s->qdim = dim;
    }
    return s;
}

static void scr_new_epoch(scratch *s) {
    if (++s->epoch == 0) {
        memset(s->tags, 0, sizeof(*s->tags) * s->ntags);
        s->epoch = 1;
    }
}

static int grow(vc **a, size_t *cap, size_t need) {
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    vc *p = realloc(*a, sizeof(vc) * n);
    if (!p)
        return -1;
    *a = p;
    *cap = n;
    return 0;
}

static void minheap_push(vc *h, size_t *n, vc x) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].d <= x.d)
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static vc minheap_pop(vc *h, size_t *n) {
    vc top = h[0];
    vc x = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m)
            break;
        if (c + 1 < m && h[c + 1].d < h[c].d)
            c++;
        if (x.d <= h[c].d)
            break;
        h[i] = h[c];
        i = c;
    }
    if (m)
        h[i] = x;
    return top;
}

static void maxheap_push(vc *h, size_t *n, vc x) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].d >= x.d)
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static vc maxheap_pop(vc *h, size_t *n) {
    vc top = h[0];
    vc x = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m)
            break;
        if (c + 1 < m && h[c + 1].d > h[c].d)
            c++;
        if (x.d >= h[c].d)
            break;
        h[i] = h[c];
        i = c;
    }
    if (m)
        h[i] = x;
    return top;
}

static int vc_cmp(const void *a, const void *b) {
    const vc *x = a, *y = b;
    if (x->d < y->d)
        return -1;
    if (x->d > y->d)
        return 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* ---- graph primitives ---- */

static inline float vdist(const cg_vindex *ix, const float *q, uint32_t s) {
    return -cg_v_doth(q, cg_v_vec(ix, s), ix->dim);
}

static inline const uint32_t *links_of(const cg_vindex *ix, const cg_vnode *n, int l,
                                       uint32_t *cnt) {
    if (l == 0) {
        *cnt = n->n0;
        return n->l0;
    }
    const uint32_t *u = cg_v_upper(ix, n, l);
    *cnt = u[0];
    return u + 1;
}

/* Records prefetched ahead of the distance loop (4: measured ~10% less CPU
 * per lookup than 1 on a 1M index). */
#ifndef PREFETCH_AHEAD
#define PREFETCH_AHEAD 4
#endif

/* The node header and the whole vector (a 512-d float16 vector is 16 lines). */
static inline void prefetch_vec(const cg_vindex *ix, uint32_t s) {
    const char *p = (const char *)cg_v_node(ix, s);
    size_t n = ix->rec_size;
    for (size_t off = 0; off < n; off += 64)
        __builtin_prefetch(p + off);
}

static uint32_t greedy(const cg_vindex *ix, const float *q, uint32_t cur, float *curd, int from,
                       int to) {
    for (int l = from; l > to; l--) {
        int changed = 1;
        while (changed) {
            changed = 0;
            uint32_t cnt;
            const uint32_t *nb = links_of(ix, cg_v_node(ix, cur), l, &cnt);
            for (uint32_t j = 0; j < cnt; j++) {
                float d = vdist(ix, q, nb[j]);
                if (d < *curd) {
                    *curd = d;
                    cur = nb[j];
                    changed = 1;
                }
            }
        }
    }
    return cur;
}

/* Beam search on layer l from ep. Results (live nodes only) are left in
 * s->top as a max-heap of size *ntop <= ef. Tombstones are expanded but
 * never returned. */
static int search_layer(const cg_vindex *ix, scratch *s, const float *q, uint32_t ep, float epd,
                        int ef, int l, size_t *ntop) {
    size_t nc = 0, nt = 0;
    uint32_t unvisited[2 * 256 + 1]; /* M0 <= 512 */
    if (grow(&s->top, &s->tcap, (size_t)ef + 1) || grow(&s->cand, &s->ccap, 64))
        return CG_VE_NOMEM;
    scr_new_epoch(s);
    uint32_t ep_tag = s->epoch;
    s->tags[ep] = ep_tag;
    minheap_push(s->cand, &nc, (vc){epd, ep});
    int has_tomb = ix->ntomb > 0;
    if (cg_v_node(ix, ep)->state == CG_V_LIVE)
        maxheap_push(s->top, &nt, (vc){epd, ep});
    float lower = nt ? s->top[0].d : INFINITY;
    while (nc) {
        vc c = minheap_pop(s->cand, &nc);
        if (c.d > lower && ((int)nt == ef || !has_tomb))
            break;
        uint32_t cnt, nn = 0;
        const uint32_t *nb = links_of(ix, cg_v_node(ix, c.id), l, &cnt);
        /* unvisited neighbours first, so their vectors can be prefetched
         * while the previous one's distance is computed */
        for (uint32_t j = 0; j < cnt; j++) {
            uint32_t e = nb[j];
            if (s->tags[e] == ep_tag)
                continue;
            s->tags[e] = ep_tag;
            unvisited[nn++] = e;
        }
        for (uint32_t j = 0; j < nn && j < PREFETCH_AHEAD; j++)
            prefetch_vec(ix, unvisited[j]);
        for (uint32_t j = 0; j < nn; j++) {
            uint32_t e = unvisited[j];
            if (j + PREFETCH_AHEAD < nn)
                prefetch_vec(ix, unvisited[j + PREFETCH_AHEAD]);
            float d = vdist(ix, q, e);
            if ((int)nt < ef || d < lower) {
                if (grow(&s->cand, &s->ccap, nc + 1))
                    return CG_VE_NOMEM;
                minheap_push(s->cand, &nc, (vc){d, e});
                if (cg_v_node(ix, e)->state == CG_V_LIVE) {
                    maxheap_push(s->top, &nt, (vc){d, e});
                    if ((int)nt > ef)
                        maxheap_pop(s->top, &nt);
                }
                if (nt)
                    lower = s->top[0].d;
            }
        }
    }
    *ntop = nt;
    return CG_VE_OK;
}

/* Heuristic neighbour selection (paper's algorithm 4 without extension or
 * kept pruned links): c sorted by distance to the base; keep a candidate
 * only if it is closer to the base than to every neighbour kept so far. */
static int select_heuristic(const cg_vindex *ix, const vc *c, int n, int M, uint32_t *out) {
    int r = 0;
    float *vi = ix->tmpc; /* writers only: the candidate as float32 */
    for (int i = 0; i < n && r < M; i++) {
        if (r > 0)
            cg_v_f16_to_f32(cg_v_vec(ix, c[i].id), vi, ix->dim);
        int good = 1;
        for (int j = 0; j < r; j++) {
            if (vdist(ix, vi, out[j]) < c[i].d) {
                good = 0;
                break;
            }
        }
        if (good)
            out[r++] = c[i].id;
    }
    return r;
}

static int draw_level(cg_vindex *ix) {
    /* splitmix64 */
    uint64_t z = (ix->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    double u = ((double)(z >> 11) + 1.0) * (1.0 / 9007199254740992.0); /* (0, 1] */
    int l = (int)(-log(u) * ix->mult);
    return l < CG_V_MAX_LEVEL ? l : CG_V_MAX_LEVEL;
}

/* ---- plans: lists a writer will publish under the write lock ----
 * Entry layout (stride M0 + 3 u32): node, layer, count, ids[M0]. */

typedef struct plan {
    uint32_t *e;
    size_t n, cap, stride;
} plan;

static uint32_t *plan_add(plan *p) {
    if (p->n == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 64;
        uint32_t *ne = realloc(p->e, sizeof(uint32_t) * p->stride * ncap);
        if (!ne)
            return NULL;
        p->e = ne;
        p->cap = ncap;
    }
    return p->e + p->stride * p->n++;
}

static void plan_apply(cg_vindex *ix, const plan *p) {
    for (size_t i = 0; i < p->n; i++) {
        const uint32_t *e = p->e + p->stride * i;
        cg_vnode *nd = cg_v_node(ix, e[0]);
        if (e[1] == 0) {
            memcpy(nd->l0, e + 3, sizeof(uint32_t) * e[2]);
            nd->n0 = e[2];
        } else {
            uint32_t *u = cg_v_upper(ix, nd, (int)e[1]);
            memcpy(u + 1, e + 3, sizeof(uint32_t) * e[2]);
            u[0] = e[2];
        }
    }
}

/* Plans nb's list at layer l with `add` appended (pruned by the heuristic
 * when over maxM; tombstones are dropped when the list is rebuilt). */
static int plan_backlink(cg_vindex *ix, plan *p, uint32_t nb, int l, uint32_t add, vc *tmp) {
    cg_vnode *nd = cg_v_node(ix, nb);
    uint32_t cnt;
    const uint32_t *cur = links_of(ix, nd, l, &cnt);
    uint32_t maxM = l ? (uint32_t)ix->M : (uint32_t)ix->M0;
    for (uint32_t j = 0; j < cnt; j++)
        if (cur[j] == add)
            return CG_VE_OK;
    uint32_t *e = plan_add(p);
    if (!e)
        return CG_VE_NOMEM;
    e[0] = nb;
    e[1] = (uint32_t)l;
    if (cnt < maxM) {
        memcpy(e + 3, cur, sizeof(uint32_t) * cnt);
        e[3 + cnt] = add;
        e[2] = cnt + 1;
        return CG_VE_OK;
    }
    float *bv = ix->tmpb;
    cg_v_f16_to_f32(cg_v_vec(ix, nb), bv, ix->dim);
    int n = 0;
    tmp[n++] = (vc){vdist(ix, bv, add), add};
    for (uint32_t j = 0; j < cnt; j++)
        if (cg_v_node(ix, cur[j])->state == CG_V_LIVE)
            tmp[n++] = (vc){vdist(ix, bv, cur[j]), cur[j]};
    qsort(tmp, (size_t)n, sizeof(vc), vc_cmp);
    e[2] = (uint32_t)select_heuristic(ix, tmp, n, (int)maxM, e + 3);
    return CG_VE_OK;
}

static int purge_locked(cg_vindex *ix);

/* Pops or makes a free slot (purging when the slots are exhausted). */
static int take_slot(cg_vindex *ix, uint32_t *slot) {
    if (ix->nfree == 0 && ix->nslots >= ix->slot_cap && ix->ntomb > 0) {
        int rc = purge_locked(ix);
        if (rc)
            return rc;
    }
    if (ix->nfree > 0) {
        *slot = ix->freelist[ix->nfree - 1];
        return CG_VE_OK;
    }
    if (ix->nslots >= ix->slot_cap)
        return CG_VE_FULL;
    int rc = cg_v_ensure_block(ix, ix->nslots);
    if (rc)
        return rc;
    *slot = ix->nslots;
    return CG_VE_OK;
}

static int add_locked(cg_vindex *ix, uint64_t id, const float *v) {
    int rc = cg_v_normalize(v, ix->tmpv, ix->dim);
    if (rc)
        return rc;
    uint32_t old = cg_vidmap_get(&ix->ids, id);
    if (old == CG_V_NONE && ix->nlive >= ix->max_elements)
        return CG_VE_FULL;
    if (ix->nlive == 0 && ix->ntomb > 0 && (rc = purge_locked(ix)) != 0)
        return rc;
    uint32_t slot;
    if ((rc = take_slot(ix, &slot)) != 0)
        return rc;
    scratch *s = scr_get(ix->nslots + 1, ix->dim);
    if (!s)
        return CG_VE_NOMEM;

    int level = draw_level(ix);
    cg_vnode *nd = cg_v_node(ix, slot); /* unreachable: FREE or beyond nslots */
    const float *nv = ix->tmpv;         /* searched with the exact float32 vector */
    cg_v_f32_to_f16(ix->tmpv, cg_v_vec(ix, slot), ix->dim);
    uint32_t *up = NULL;
    plan p = {.stride = (size_t)ix->M0 + 3};
    plan own = {.stride = (size_t)ix->M0 + 3};
    vc *tmp = malloc(sizeof(vc) * ((size_t)ix->M0 + 1));
    vc *w = NULL;
    rc = CG_VE_NOMEM;
    if (!tmp)
        goto out;
    if (level > 0 && !(up = calloc((size_t)level * (size_t)(ix->M + 1), sizeof(uint32_t))))
        goto out;
    for (int l = 0; l <= level; l++) {
        uint32_t *e = plan_add(&own);
        if (!e)
            goto out;
        e[0] = slot;
        e[1] = (uint32_t)l;
        e[2] = 0;
    }
    if (ix->entry != CG_V_NONE) {
        uint32_t cur = ix->entry;
        float curd = vdist(ix, nv, cur);
        if (ix->maxlevel > level)
            cur = greedy(ix, nv, cur, &curd, ix->maxlevel, level);
        for (int l = level < ix->maxlevel ? level : ix->maxlevel; l >= 0; l--) {
            size_t nt;
            if ((rc = search_layer(ix, s, nv, cur, curd, ix->efc, l, &nt)) != 0)
                goto out;
            vc *nw = realloc(w, sizeof(vc) * (nt ? nt : 1));
            if (!nw) {
                rc = CG_VE_NOMEM;
                goto out;
            }
            w = nw;
            memcpy(w, s->top, sizeof(vc) * nt);
            qsort(w, nt, sizeof(vc), vc_cmp);
            uint32_t *e = own.e + own.stride * (size_t)l;
            e[2] = (uint32_t)select_heuristic(ix, w, (int)nt, ix->M, e + 3);
            for (uint32_t j = 0; j < e[2]; j++)
                if ((rc = plan_backlink(ix, &p, e[3 + j], l, slot, tmp)) != 0)
                    goto out;
            if (nt) {
                cur = w[0].id;
                curd = w[0].d;
            }
        }
    }

    pthread_rwlock_wrlock(&ix->rw);
    rc = cg_vidmap_put(&ix->ids, id, slot);
    if (rc == CG_VE_OK) {
        nd->label = id;
        nd->level = (uint8_t)level;
        nd->upper = up;
        up = NULL;
        plan_apply(ix, &own);
        plan_apply(ix, &p);
        nd->state = CG_V_LIVE;
        if (slot == ix->nslots)
            ix->nslots++;
        else
            ix->nfree--;
        ix->nlive++;
        if (old != CG_V_NONE) {
            cg_v_node(ix, old)->state = CG_V_TOMB;
            ix->nlive--;
            ix->ntomb++;
        }
        if (ix->entry == CG_V_NONE || level > ix->maxlevel) {
            ix->entry = slot;
            ix->maxlevel = level;
        }
    }
    pthread_rwlock_unlock(&ix->rw);
out:
    free(up);
    free(p.e);
    free(own.e);
    free(tmp);
    free(w);
    return rc;
}

int cg_vindex_add(cg_vindex *ix, uint64_t id, const float *v) {
    if (!ix || !v)
        return CG_VE_INVAL;
    pthread_mutex_lock(&ix->wmu);
    int rc = add_locked(ix, id, v);
    if (rc == CG_VE_OK && ix->ntomb >= 64 && ix->ntomb >= ix->nlive / 8)
        rc = purge_locked(ix);
    pthread_mutex_unlock(&ix->wmu);
    return rc;
}

/* ---- delete and purge ---- */

int cg_vindex_delete(cg_vindex *ix, uint64_t id) {
    if (!ix)
        return CG_VE_INVAL;
    pthread_mutex_lock(&ix->wmu);
    int rc = CG_VE_NOTFOUND;
    uint32_t s = cg_vidmap_get(&ix->ids, id);
    if (s != CG_V_NONE) {
        pthread_rwlock_wrlock(&ix->rw);
        cg_v_node(ix, s)->state = CG_V_TOMB;
        cg_vidmap_del(&ix->ids, id);
        ix->nlive--;
        ix->ntomb++;
        pthread_rwlock_unlock(&ix->rw);
        rc = CG_VE_OK;
        if (ix->ntomb >= 64 && ix->ntomb >= ix->nlive / 8)
            rc = purge_locked(ix);
    }
    pthread_mutex_unlock(&ix->wmu);
    return rc;
}

/* Plans node v's list at layer l without its tombstones: the live members
 * plus the live neighbours (at l) of each removed tombstone, pruned by the
 * heuristic when over maxM. */
static int plan_repair(cg_vindex *ix, scratch *s, plan *p, uint32_t v, int l, vc **cand,
                       size_t *ccap) {
    cg_vnode *nd = cg_v_node(ix, v);
    uint32_t cnt;
    const uint32_t *cur = links_of(ix, nd, l, &cnt);
    int any = 0;
    for (uint32_t j = 0; j < cnt && !any; j++)
        any = cg_v_node(ix, cur[j])->state != CG_V_LIVE;
    if (!any)
        return CG_VE_OK;
    uint32_t maxM = l ? (uint32_t)ix->M : (uint32_t)ix->M0;
    scr_new_epoch(s);
    s->tags[v] = s->epoch;
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t j = 0; j < cnt; j++) {
            cg_vnode *m = cg_v_node(ix, cur[j]);
            uint32_t mc = 1;
            const uint32_t *ml = &cur[j];
            if (m->state != CG_V_LIVE) {
                if (pass == 0)
                    continue;
                ml = links_of(ix, m, l, &mc);
            } else if (pass == 1) {
                continue;
            }
            if (grow(cand, ccap, n + mc))
                return CG_VE_NOMEM;
            for (uint32_t k = 0; k < mc; k++) {
                uint32_t x = ml[k];
                if (s->tags[x] == s->epoch || cg_v_node(ix, x)->state != CG_V_LIVE)
                    continue;
                s->tags[x] = s->epoch;
                (*cand)[n++] = (vc){0, x};
            }
        }
    }
    uint32_t *e = plan_add(p);
    if (!e)
        return CG_VE_NOMEM;
    e[0] = v;
    e[1] = (uint32_t)l;
    if (n <= maxM) {
        for (size_t k = 0; k < n; k++)
            e[3 + k] = (*cand)[k].id;
        e[2] = (uint32_t)n;
        return CG_VE_OK;
    }
    float *bv = ix->tmpb;
    cg_v_f16_to_f32(cg_v_vec(ix, v), bv, ix->dim);
    for (size_t k = 0; k < n; k++)
        (*cand)[k].d = vdist(ix, bv, (*cand)[k].id);
    qsort(*cand, n, sizeof(vc), vc_cmp);
    e[2] = (uint32_t)select_heuristic(ix, *cand, (int)n, (int)maxM, e + 3);
    return CG_VE_OK;
}

static int purge_locked(cg_vindex *ix) {
    if (ix->ntomb == 0)
        return CG_VE_OK;
    scratch *s = scr_get(ix->nslots, ix->dim);
    if (!s)
        return CG_VE_NOMEM;
    uint32_t *nfl = realloc(ix->freelist, sizeof(uint32_t) * ((size_t)ix->nfree + ix->ntomb));
    if (!nfl)
        return CG_VE_NOMEM;
    ix->freelist = nfl;
    plan p = {.stride = (size_t)ix->M0 + 3};
    vc *cand = NULL;
    size_t ccap = 0;
    int rc = CG_VE_OK;
    for (uint32_t v = 0; v < ix->nslots && rc == CG_VE_OK; v++) {
        cg_vnode *nd = cg_v_node(ix, v);
        if (nd->state != CG_V_LIVE)
            continue;
        for (int l = 0; l <= nd->level && rc == CG_VE_OK; l++)
            rc = plan_repair(ix, s, &p, v, l, &cand, &ccap);
        if (p.n >= 256) { /* publish in batches so searches keep running */
            pthread_rwlock_wrlock(&ix->rw);
            plan_apply(ix, &p);
            pthread_rwlock_unlock(&ix->rw);
            p.n = 0;
        }
    }
    if (rc == CG_VE_OK) {
        pthread_rwlock_wrlock(&ix->rw);
        plan_apply(ix, &p);
        for (uint32_t v = ix->nslots; v-- > 0;) {
            cg_vnode *nd = cg_v_node(ix, v);
            if (nd->state != CG_V_TOMB)
                continue;
            free(nd->upper);
            nd->upper = NULL;
            nd->level = 0;
            nd->n0 = 0;
            nd->state = CG_V_FREE;
            ix->freelist[ix->nfree++] = v;
        }
        ix->ntomb = 0;
        if (ix->entry != CG_V_NONE && cg_v_node(ix, ix->entry)->state != CG_V_LIVE) {
            ix->entry = CG_V_NONE;
            ix->maxlevel = -1;
            for (uint32_t v = 0; v < ix->nslots; v++) {
                cg_vnode *nd = cg_v_node(ix, v);
                if (nd->state == CG_V_LIVE && (int)nd->level > ix->maxlevel) {
                    ix->entry = v;
                    ix->maxlevel = nd->level;
                }
            }
        }
        pthread_rwlock_unlock(&ix->rw);
    }
    free(p.e);
    free(cand);
    return rc;
}

int cg_vindex_purge(cg_vindex *ix) {
    if (!ix)
        return CG_VE_INVAL;
    pthread_mutex_lock(&ix->wmu);
    int rc = purge_locked(ix);
    pthread_mutex_unlock(&ix->wmu);
    return rc;
}

/* ---- search ---- */

static int finish(vc *h, size_t n, int k, cg_vhit *out, const cg_vindex *ix) {
    qsort(h, n, sizeof(vc), vc_cmp);
    int r = (int)n < k ? (int)n : k;
    for (int i = 0; i < r; i++) {
        out[i].id = cg_v_node(ix, h[i].id)->label;
        out[i].similarity = -h[i].d;
    }
    return r;
}

static int brute_locked(const cg_vindex *ix, scratch *s, const float *q, int k, cg_vhit *out) {
    if (grow(&s->top, &s->tcap, (size_t)k + 1))
        return CG_VE_NOMEM;
    size_t nt = 0;
    for (uint32_t b = 0; b < CG_V_MAX_BLOCKS; b++) {
        uint32_t first = cg_v_block_first(b);
        if (first >= ix->nslots)
            break;
        uint32_t n = cg_v_block_slots(b);
        if (first + n > ix->nslots)
            n = ix->nslots - first;
        const uint8_t *base = ix->blocks[b];
        for (uint32_t i = 0; i < n; i++) {
            const cg_vnode *nd = (const cg_vnode *)(base + (size_t)i * ix->rec_size);
            if (nd->state != CG_V_LIVE)
                continue;
            float d = -cg_v_doth(q, (const uint16_t *)((const uint8_t *)nd + ix->vec_off), ix->dim);
            if ((int)nt < k) {
                maxheap_push(s->top, &nt, (vc){d, first + i});
            } else if (d < s->top[0].d) {
                maxheap_pop(s->top, &nt);
                maxheap_push(s->top, &nt, (vc){d, first + i});
            }
        }
    }
    return finish(s->top, nt, k, out, ix);
}

static int search_impl(cg_vindex *ix, const float *q, int k, int ef, int exact, cg_vhit *out) {
    if (!ix || !q || !out || k < 1)
        return CG_VE_INVAL;
    pthread_rwlock_rdlock(&ix->rw);
    int rc = 0;
    scratch *s = scr_get(ix->nslots, ix->dim);
    if (!s) {
        rc = CG_VE_NOMEM;
        goto out;
    }
    if ((rc = cg_v_normalize(q, s->q, ix->dim)) != 0 || ix->nlive == 0)
        goto out;
    if (exact || ix->nlive <= ix->brute_threshold) {
        rc = brute_locked(ix, s, s->q, k, out);
        goto out;
    }
    if (ef <= 0)
        ef = ix->efs;
    if (ef <= 0) /* auto */
        ef = ix->nlive > CG_VINDEX_AUTO_EF_BIG ? 2 * CG_VINDEX_DEFAULT_EFS : CG_VINDEX_DEFAULT_EFS;
    if (ef < k)
        ef = k;
    uint32_t cur = ix->entry;
    float curd = vdist(ix, s->q, cur);
    cur = greedy(ix, s->q, cur, &curd, ix->maxlevel, 0);
    size_t nt;
    if ((rc = search_layer(ix, s, s->q, cur, curd, ef, 0, &nt)) != 0)
        goto out;
    rc = finish(s->top, nt, k, out, ix);
out:
    pthread_rwlock_unlock(&ix->rw);
    return rc;
}

int cg_vindex_search(cg_vindex *ix, const float *q, int k, cg_vhit *out) {
    return search_impl(ix, q, k, 0, 0, out);
}

int cg_vindex_search_ef(cg_vindex *ix, const float *q, int k, int ef, cg_vhit *out) {
    return search_impl(ix, q, k, ef, 0, out);
}

int cg_vindex_search_exact(cg_vindex *ix, const float *q, int k, cg_vhit *out) {
    return search_impl(ix, q, k, 0, 1, out);
}

/* ---- accessors ---- */

int cg_vindex_contains(cg_vindex *ix, uint64_t id) {
    if (!ix)
        return 0;
    pthread_rwlock_rdlock(&ix->rw);
    int r = cg_vidmap_get(&ix->ids, id) != CG_V_NONE;
    pthread_rwlock_unlock(&ix->rw);
    return r;
}

size_t cg_vindex_count(cg_vindex *ix) {
    if (!ix)
        return 0;
    pthread_rwlock_rdlock(&ix->rw);
    size_t n = ix->nlive;
    pthread_rwlock_unlock(&ix->rw);
    return n;
}

int cg_vindex_dim(const cg_vindex *ix) {
    return ix ? ix->dim : 0;
}

void cg_vindex_get_opts(cg_vindex *ix, cg_vindex_opts *o) {
    memset(o, 0, sizeof(*o));
    o->M = ix->M;
    o->ef_construction = ix->efc;
    pthread_rwlock_rdlock(&ix->rw);
    o->ef_search = ix->efs;
    pthread_rwlock_unlock(&ix->rw);
    o->max_elements = ix->max_elements;
    o->brute_threshold = ix->brute_threshold;
    o->seed = ix->seed;
}

void cg_vindex_set_ef_search(cg_vindex *ix, int ef) {
    if (!ix || ef < 0 || ef > 65536)
        return;
    pthread_rwlock_wrlock(&ix->rw);
    ix->efs = ef;
    pthread_rwlock_unlock(&ix->rw);
}

size_t cg_vindex_memory(cg_vindex *ix) {
    if (!ix)
        return 0;
    pthread_rwlock_rdlock(&ix->rw);
    size_t m = sizeof(*ix) + 3 * sizeof(float) * (size_t)ix->dim;
    for (uint32_t b = 0; b < CG_V_MAX_BLOCKS; b++) {
        if (!ix->blocks[b])
            continue;
        size_t bytes = block_bytes(ix, b);
        if (bytes >= BLOCK_MMAP_MIN) { /* resident: the pages of used slots */
            uint32_t first = cg_v_block_first(b);
            size_t used = ix->nslots > first ? (size_t)(ix->nslots - first) * ix->rec_size : 0;
            bytes = used < bytes ? (used + 4095) & ~(size_t)4095 : bytes;
        }
        m += bytes;
    }
    for (uint32_t v = 0; v < ix->nslots; v++) {
        const cg_vnode *nd = cg_v_node(ix, v);
        m += sizeof(uint32_t) * (size_t)nd->level * (size_t)(ix->M + 1);
    }
    m += (size_t)ix->ids.cap * (sizeof(uint64_t) + sizeof(uint32_t));
    m += sizeof(uint32_t) * (size_t)ix->nfree;
    pthread_rwlock_unlock(&ix->rw);
    return m;
}

void cg_vindex_foreach(cg_vindex *ix, void (*fn)(void *ud, uint64_t id), void *ud) {
    if (!ix || !fn)
        return;
    pthread_rwlock_rdlock(&ix->rw);
    for (uint32_t v = 0; v < ix->nslots; v++) {
        const cg_vnode *nd = cg_v_node(ix, v);
        if (nd->state == CG_V_LIVE)
            fn(ud, nd->label);
    }
    pthread_rwlock_unlock(&ix->rw);
}

const char *cg_vindex_kernel(void) {
    return cg_v_kernel_name();
}
