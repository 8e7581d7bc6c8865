/* partition: cg_vparts, one cg_vindex per scope key (API in partition.h).
 *
 * Owns: the key -> partition map (chained hash over the SHA-256 key's first
 * bytes) with the partitions' LRU list and reference counts, each
 * partition's id LRU (doubly linked over arrays, id -> entry via the
 * module's id map), capacity and partition-count eviction, and the
 * directory format: "<hex key>.cgv" index files plus the manifest
 *   "CGVPARTS", u32 version (1), u32 dim, u32 partitions, u32 zero,
 *   per partition (least recently used first): 32-byte key, u32 n, n u64
 *   ids (least recently used first),
 *   u32 CRC-32C of all the above, "CGVPEND\0".
 *
 * Locks: the set mutex guards the map, the partition LRU and refcounts and
 * is never held while a partition's mutex is taken. A partition's mutex
 * serialises its writers (add, delete, touch, save) and guards its id LRU.
 * A partition evicted or dropped is unlinked from the map, marked dead
 * under its own mutex (writers that raced with it retry on a fresh one)
 * and freed when its last reference goes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "vector/partition.h"
#include "vector/vector_internal.h"

typedef struct vpart {
    uint8_t key[32];
    cg_vindex *ix;
    pthread_mutex_t mu;
    int dead; /* under mu */
    /* id LRU, under mu: head = most recent */
    cg_vidmap pos;
    uint64_t *eid;
    uint32_t *prev, *next;
    uint32_t cap, n, live, head, tail, freehead;
    /* under the set mutex */
    struct vpart *hnext, *lprev, *lnext;
    int refs;
    int removed;
} vpart;

struct cg_vparts {
    int dim;
    cg_vindex_opts iopts;
    uint32_t capacity, maxp;
    cg_vparts_evict_fn fn;
    void *ud;
    pthread_mutex_t mu;
    vpart **bk;
    uint32_t nbk;
    vpart *head, *tail; /* head = most recently used */
    uint32_t n;
};

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int code, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---- a partition's id LRU ---- */

static int lru_grow(vpart *pt) {
    uint32_t ncap = pt->cap ? pt->cap * 2 : 16;
    uint64_t *e = realloc(pt->eid, sizeof(*e) * ncap);
    if (!e)
        return CG_VE_NOMEM;
    pt->eid = e;
    uint32_t *pr = realloc(pt->prev, sizeof(*pr) * ncap);
    if (!pr)
        return CG_VE_NOMEM;
    pt->prev = pr;
    uint32_t *nx = realloc(pt->next, sizeof(*nx) * ncap);
    if (!nx)
        return CG_VE_NOMEM;
    pt->next = nx;
    pt->cap = ncap;
    return CG_VE_OK;
}

static void lru_unlink(vpart *pt, uint32_t e) {
    uint32_t a = pt->prev[e], b = pt->next[e];
    if (a != CG_V_NONE)
        pt->next[a] = b;
    else
        pt->head = b;
    if (b != CG_V_NONE)
        pt->prev[b] = a;
    else
        pt->tail = a;
}

static void lru_link_front(vpart *pt, uint32_t e) {
    pt->prev[e] = CG_V_NONE;
    pt->next[e] = pt->head;
    if (pt->head != CG_V_NONE)
        pt->prev[pt->head] = e;
    pt->head = e;
    if (pt->tail == CG_V_NONE)
        pt->tail = e;
}

/* Makes id the most recent, adding it when absent. */
static int lru_use(vpart *pt, uint64_t id) {
    uint32_t e = cg_vidmap_get(&pt->pos, id);
    if (e != CG_V_NONE) {
        lru_unlink(pt, e);
        lru_link_front(pt, e);
        return CG_VE_OK;
    }
    if (pt->freehead != CG_V_NONE) {
        e = pt->freehead;
    } else {
        if (pt->n == pt->cap && lru_grow(pt) != CG_VE_OK)
            return CG_VE_NOMEM;
        e = pt->n;
    }
    if (cg_vidmap_put(&pt->pos, id, e) != CG_VE_OK)
        return CG_VE_NOMEM;
    if (e == pt->freehead)
        pt->freehead = pt->next[e];
    else
        pt->n++;
    pt->eid[e] = id;
    lru_link_front(pt, e);
    pt->live++;
    return CG_VE_OK;
}

static void lru_remove(vpart *pt, uint64_t id) {
    uint32_t e = cg_vidmap_get(&pt->pos, id);
    if (e == CG_V_NONE)
        return;
    lru_unlink(pt, e);
    cg_vidmap_del(&pt->pos, id);
    pt->next[e] = pt->freehead;
    pt->freehead = e;
    pt->live--;
}

static vpart *part_new(const cg_vparts *p, const uint8_t key[32], cg_vindex *ix) {
    vpart *pt = calloc(1, sizeof(*pt));
    if (!pt)
        return NULL;
    if (pthread_mutex_init(&pt->mu, NULL) != 0) {
        free(pt);
        return NULL;
    }
    memcpy(pt->key, key, 32);
    pt->head = pt->tail = pt->freehead = CG_V_NONE;
    if (!ix) {
        cg_vindex_opts o = p->iopts;
        o.max_elements = p->capacity + 1; /* add first, then evict */
        ix = cg_vindex_new(p->dim, &o);
    }
    if (!ix) {
        pthread_mutex_destroy(&pt->mu);
        free(pt);
        return NULL;
    }
    pt->ix = ix;
    return pt;
}

static void part_free(vpart *pt) {
    cg_vindex_free(pt->ix);
    cg_vidmap_free(&pt->pos);
    free(pt->eid);
    free(pt->prev);
    free(pt->next);
    pthread_mutex_destroy(&pt->mu);
    free(pt);
}

/* ---- the set ---- */

cg_vparts *cg_vparts_new(const cg_vparts_opts *o) {
    if (!o || o->dim < 1 || o->dim > CG_VINDEX_MAX_DIM)
        return NULL;
    cg_vparts *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->dim = o->dim;
    p->iopts = o->index;
    p->capacity = o->capacity ? o->capacity : CG_VPARTS_DEFAULT_CAPACITY;
    p->maxp = o->max_partitions ? o->max_partitions : CG_VPARTS_DEFAULT_MAX;
    p->fn = o->on_evict;
    p->ud = o->ud;
    cg_vindex_opts chk = p->iopts;
    chk.max_elements = 0;
    if (p->capacity >= CG_VINDEX_MAX_ELEMENTS || cg_vindex_opts_resolve(&chk) != CG_VE_OK) {
        free(p);
        return NULL;
    }
    p->nbk = 16;
    while (p->nbk < p->maxp && p->nbk < (1u << 20))
        p->nbk *= 2;
    p->bk = calloc(p->nbk, sizeof(*p->bk));
    if (!p->bk || pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p->bk);
        free(p);
        return NULL;
    }
    return p;
}

void cg_vparts_free(cg_vparts *p) {
    if (!p)
        return;
    for (vpart *pt = p->head; pt;) {
        vpart *nx = pt->lnext;
        part_free(pt);
        pt = nx;
    }
    free(p->bk);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static uint32_t bucket(const cg_vparts *p, const uint8_t key[32]) {
    uint64_t h;
    memcpy(&h, key, 8);
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return (uint32_t)h & (p->nbk - 1);
}

static vpart *find_locked(const cg_vparts *p, const uint8_t key[32]) {
    for (vpart *pt = p->bk[bucket(p, key)]; pt; pt = pt->hnext)
        if (memcmp(pt->key, key, 32) == 0)
            return pt;
    return NULL;
}

static void lru_detach_locked(cg_vparts *p, vpart *pt) {
    if (pt->lprev)
        pt->lprev->lnext = pt->lnext;
    else
        p->head = pt->lnext;
    if (pt->lnext)
        pt->lnext->lprev = pt->lprev;
    else
        p->tail = pt->lprev;
    pt->lprev = pt->lnext = NULL;
}

static void lru_front_locked(cg_vparts *p, vpart *pt) {
    if (p->head == pt)
        return;
    lru_detach_locked(p, pt);
    pt->lnext = p->head;
    if (p->head)
        p->head->lprev = pt;
    p->head = pt;
    if (!p->tail)
        p->tail = pt;
}

static void insert_locked(cg_vparts *p, vpart *pt) {
    uint32_t b = bucket(p, pt->key);
    pt->hnext = p->bk[b];
    p->bk[b] = pt;
    pt->lprev = NULL;
    pt->lnext = p->head;
    if (p->head)
        p->head->lprev = pt;
    p->head = pt;
    if (!p->tail)
        p->tail = pt;
    p->n++;
}

static void unlink_locked(cg_vparts *p, vpart *pt) {
    vpart **pp = &p->bk[bucket(p, pt->key)];
    while (*pp && *pp != pt)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = pt->hnext;
    lru_detach_locked(p, pt);
    pt->removed = 1;
    p->n--;
}

static void unref(cg_vparts *p, vpart *pt) {
    pthread_mutex_lock(&p->mu);
    int gone = --pt->refs == 0 && pt->removed;
    pthread_mutex_unlock(&p->mu);
    if (gone)
        part_free(pt);
}

/* Finds (or with create, makes) key's partition, marks it used and takes a
 * reference. *victim gets a partition evicted to make room (referenced). */
static int acquire(cg_vparts *p, const uint8_t key[32], int create, vpart **out, vpart **victim) {
    *out = NULL;
    if (victim)
        *victim = NULL;
    pthread_mutex_lock(&p->mu);
    vpart *pt = find_locked(p, key);
    int rc = CG_VE_OK;
    if (!pt && create) {
        pt = part_new(p, key, NULL);
        if (!pt) {
            rc = CG_VE_NOMEM;
        } else {
            if (p->n >= p->maxp && p->tail) {
                vpart *v = p->tail;
                unlink_locked(p, v);
                v->refs++;
                *victim = v;
            }
            insert_locked(p, pt);
        }
    }
    if (pt) {
        lru_front_locked(p, pt);
        pt->refs++;
        *out = pt;
    } else if (rc == CG_VE_OK) {
        rc = CG_VE_NOTFOUND;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* Reports every id of a removed partition and drops the reference. */
static void evict_whole(cg_vparts *p, vpart *pt, cg_vevict_reason why) {
    pthread_mutex_lock(&pt->mu);
    pt->dead = 1;
    if (p->fn)
        for (uint32_t e = pt->tail; e != CG_V_NONE; e = pt->prev[e])
            p->fn(p->ud, pt->key, pt->eid[e], why);
    pthread_mutex_unlock(&pt->mu);
    unref(p, pt);
}

int cg_vparts_add(cg_vparts *p, const uint8_t key[32], uint64_t id, const float *v) {
    if (!p || !key || !v)
        return CG_VE_INVAL;
    int rc = CG_VE_NOMEM;
    for (int tries = 0; tries < 8; tries++) {
        vpart *pt, *victim;
        rc = acquire(p, key, 1, &pt, &victim);
        if (victim)
            evict_whole(p, victim, CG_VEVICT_PARTITION);
        if (rc)
            return rc;
        pthread_mutex_lock(&pt->mu);
        if (pt->dead) { /* evicted between lookup and lock: use a fresh one */
            pthread_mutex_unlock(&pt->mu);
            unref(p, pt);
            continue;
        }
        int evicted = 0;
        uint64_t ev = 0;
        rc = cg_vindex_add(pt->ix, id, v);
        if (rc == CG_VE_OK && (rc = lru_use(pt, id)) != CG_VE_OK)
            cg_vindex_delete(pt->ix, id);
        if (rc == CG_VE_OK && pt->live > p->capacity) {
            ev = pt->eid[pt->tail];
            cg_vindex_delete(pt->ix, ev);
            lru_remove(pt, ev);
            evicted = 1;
        }
        pthread_mutex_unlock(&pt->mu);
        if (evicted && p->fn)
            p->fn(p->ud, key, ev, CG_VEVICT_CAPACITY);
        unref(p, pt);
        return rc;
    }
    return rc;
}

int cg_vparts_search(cg_vparts *p, const uint8_t key[32], const float *q, int k, cg_vhit *out) {
    if (!p || !key)
        return CG_VE_INVAL;
    vpart *pt;
    int rc = acquire(p, key, 0, &pt, NULL);
    if (rc == CG_VE_NOTFOUND)
        return 0;
    if (rc)
        return rc;
    rc = cg_vindex_search(pt->ix, q, k, out);
    unref(p, pt);
    return rc;
}

int cg_vparts_touch(cg_vparts *p, const uint8_t key[32], uint64_t id) {
    if (!p || !key)
        return CG_VE_INVAL;
    vpart *pt;
    int rc = acquire(p, key, 0, &pt, NULL);
    if (rc)
        return rc;
    pthread_mutex_lock(&pt->mu);
    rc = CG_VE_NOTFOUND;
    if (!pt->dead && cg_vidmap_get(&pt->pos, id) != CG_V_NONE)
        rc = lru_use(pt, id);
    pthread_mutex_unlock(&pt->mu);
    unref(p, pt);
    return rc;
}

int cg_vparts_delete(cg_vparts *p, const uint8_t key[32], uint64_t id) {
    if (!p || !key)
        return CG_VE_INVAL;
    vpart *pt;
    int rc = acquire(p, key, 0, &pt, NULL);
    if (rc)
        return rc;
    pthread_mutex_lock(&pt->mu);
    rc = CG_VE_NOTFOUND;
    if (!pt->dead && cg_vidmap_get(&pt->pos, id) != CG_V_NONE) {
        rc = cg_vindex_delete(pt->ix, id);
        lru_remove(pt, id);
    }
    pthread_mutex_unlock(&pt->mu);
    unref(p, pt);
    return rc;
}

int cg_vparts_drop(cg_vparts *p, const uint8_t key[32]) {
    if (!p || !key)
        return CG_VE_INVAL;
    pthread_mutex_lock(&p->mu);
    vpart *pt = find_locked(p, key);
    if (pt) {
        unlink_locked(p, pt);
        pt->refs++;
    }
    pthread_mutex_unlock(&p->mu);
    if (!pt)
        return CG_VE_NOTFOUND;
    evict_whole(p, pt, CG_VEVICT_DROP);
    return CG_VE_OK;
}

size_t cg_vparts_count(cg_vparts *p) {
    if (!p)
        return 0;
    pthread_mutex_lock(&p->mu);
    size_t n = p->n;
    pthread_mutex_unlock(&p->mu);
    return n;
}

size_t cg_vparts_size(cg_vparts *p, const uint8_t key[32]) {
    vpart *pt;
    if (!p || !key || acquire(p, key, 0, &pt, NULL) != CG_VE_OK)
        return 0;
    size_t n = cg_vindex_count(pt->ix);
    unref(p, pt);
    return n;
}

/* Referenced snapshot of the partitions, least recently used first. */
static vpart **snapshot(cg_vparts *p, uint32_t *n) {
    pthread_mutex_lock(&p->mu);
    vpart **a = malloc(sizeof(*a) * (p->n ? p->n : 1));
    *n = 0;
    if (a)
        for (vpart *pt = p->tail; pt; pt = pt->lprev) {
            pt->refs++;
            a[(*n)++] = pt;
        }
    pthread_mutex_unlock(&p->mu);
    return a;
}

size_t cg_vparts_memory(cg_vparts *p) {
    if (!p)
        return 0;
    uint32_t n;
    vpart **a = snapshot(p, &n);
    size_t m = sizeof(*p) + sizeof(vpart *) * p->nbk;
    for (uint32_t i = 0; a && i < n; i++) {
        m += sizeof(vpart) + cg_vindex_memory(a[i]->ix);
        pthread_mutex_lock(&a[i]->mu);
        m += (size_t)a[i]->cap * (8 + 4 + 4) + (size_t)a[i]->pos.cap * 12;
        pthread_mutex_unlock(&a[i]->mu);
        unref(p, a[i]);
    }
    free(a);
    return m;
}

/* ---- persistence ---- */

typedef struct mbuf {
    uint8_t *b;
    size_t n, cap;
    int oom;
} mbuf;

static void mput(mbuf *m, const void *p, size_t n) {
    if (m->oom)
        return;
    if (m->n + n > m->cap) {
        size_t c = m->cap ? m->cap : 4096;
        while (c < m->n + n)
            c *= 2;
        uint8_t *nb = realloc(m->b, c);
        if (!nb) {
            m->oom = 1;
            return;
        }
        m->b = nb;
        m->cap = c;
    }
    memcpy(m->b + m->n, p, n);
    m->n += n;
}

static void mu32(mbuf *m, uint32_t v) {
    mput(m, &v, 4);
}

static int part_path(char *out, size_t cap, const char *dir, const uint8_t key[32]) {
    static const char hx[] = "0123456789abcdef";
    char hex[65];
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = hx[key[i] >> 4];
        hex[2 * i + 1] = hx[key[i] & 15];
    }
    hex[64] = 0;
    int n = snprintf(out, cap, "%s/%s.cgv", dir, hex);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen) {
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp)
        return fail(err, errlen, CG_VE_NOMEM, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp);
    int e = 0;
    if (fd < 0) {
        e = errno;
    } else {
        const uint8_t *s = data;
        size_t off = 0;
        while (off < len && !e) {
            ssize_t r = write(fd, s + off, len - off);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                e = r < 0 ? errno : EIO;
            else
                off += (size_t)r;
        }
        if (!e && fsync(fd) != 0)
            e = errno;
        if (close(fd) != 0 && !e)
            e = errno;
        if (!e && rename(tmp, path) != 0)
            e = errno;
        if (e)
            unlink(tmp);
    }
    free(tmp);
    if (e)
        return fail(err, errlen, CG_VE_IO, "%s: %s", path, strerror(e));
    return CG_VE_OK;
}

static int is_part_file(const char *name, uint8_t key[32]) {
    size_t n = strlen(name);
    if (n != 68 || strcmp(name + 64, ".cgv") != 0)
        return 0;
    for (int i = 0; i < 32; i++) {
        int v = 0;
        for (int j = 0; j < 2; j++) {
            char c = name[2 * i + j];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                return 0;
            v = v * 16 + d;
        }
        key[i] = (uint8_t)v;
    }
    return 1;
}

/* Removes "<hex>.cgv" files of partitions not in a (the saved set). */
static void remove_stale(const char *dir, vpart **a, uint32_t n) {
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint8_t key[32];
        if (!is_part_file(de->d_name, key))
            continue;
        int keep = 0;
        for (uint32_t i = 0; i < n && !keep; i++)
            keep = a[i] && memcmp(a[i]->key, key, 32) == 0;
        if (!keep) {
            char path[4096];
            if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) < (int)sizeof(path))
                unlink(path);
        }
    }
    closedir(d);
}

int cg_vparts_save(cg_vparts *p, const char *dir, char *err, size_t errlen) {
    if (!p || !dir)
        return fail(err, errlen, CG_VE_INVAL, "vector partitions save: no set or directory");
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return fail(err, errlen, CG_VE_IO, "vector partitions save %s: %s", dir, strerror(errno));
    uint32_t n;
    vpart **a = snapshot(p, &n);
    if (!a)
        return fail(err, errlen, CG_VE_NOMEM, "vector partitions save: out of memory");
    mbuf m = {0};
    mput(&m, "CGVPARTS", 8);
    mu32(&m, 1);
    mu32(&m, (uint32_t)p->dim);
    size_t count_off = m.n;
    mu32(&m, 0);
    mu32(&m, 0);
    uint32_t saved = 0;
    int rc = CG_VE_OK;
    char path[4096];
    for (uint32_t i = 0; i < n && rc == CG_VE_OK; i++) {
        vpart *pt = a[i];
        if (part_path(path, sizeof(path), dir, pt->key) != 0) {
            rc = fail(err, errlen, CG_VE_INVAL, "vector partitions save %s: path too long", dir);
            break;
        }
        pthread_mutex_lock(&pt->mu);
        if (!pt->dead) {
            rc = cg_vindex_save(pt->ix, path, err, errlen);
            if (rc == CG_VE_OK) {
                mput(&m, pt->key, 32);
                mu32(&m, pt->live);
                for (uint32_t e = pt->tail; e != CG_V_NONE; e = pt->prev[e])
                    mput(&m, &pt->eid[e], 8);
                saved++;
            }
        } else {
            a[i] = NULL; /* its file, if any, is stale */
        }
        pthread_mutex_unlock(&pt->mu);
        if (!a[i])
            unref(p, pt);
    }
    if (rc == CG_VE_OK && !m.oom) {
        memcpy(m.b + count_off, &saved, 4);
        uint32_t crc = cg_crc32c(0, m.b, m.n);
        mu32(&m, crc);
        mput(&m, "CGVPEND\0", 8);
    }
    if (rc == CG_VE_OK && m.oom)
        rc = fail(err, errlen, CG_VE_NOMEM, "vector partitions save: out of memory");
    if (rc == CG_VE_OK) {
        int k = snprintf(path, sizeof(path), "%s/%s", dir, CG_VPARTS_MANIFEST);
        if (k < 0 || (size_t)k >= sizeof(path))
            rc = fail(err, errlen, CG_VE_INVAL, "vector partitions save %s: path too long", dir);
        else
            rc = write_atomic(path, m.b, m.n, err, errlen);
    }
    if (rc == CG_VE_OK) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        remove_stale(dir, a, n);
    }
    for (uint32_t i = 0; i < n; i++)
        if (a[i])
            unref(p, a[i]);
    free(a);
    free(m.b);
    return rc;
}

static void report(cg_vparts *p, const uint8_t *key, const uint8_t *ids, uint32_t n,
                   cg_vevict_reason why, cg_vparts_load_stats *st) {
    for (uint32_t j = 0; j < n; j++) {
        uint64_t id;
        memcpy(&id, ids + 8ull * j, 8);
        if (p->fn)
            p->fn(p->ud, key, id, why);
    }
    st->lost += n;
}

/* Builds a partition from a loaded index and the manifest's LRU order, or
 * NULL when they disagree (*ixp then still belongs to the caller). Rebuilds the index when it was
 * saved with other bounds than this set's, keeping the newest `capacity` ids. */
static vpart *restore(cg_vparts *p, const uint8_t *key, const uint8_t *ids, uint32_t n,
                      cg_vindex **ixp, cg_vparts_load_stats *st) {
    cg_vindex *ix = *ixp;
    if (ix->dim != p->dim || cg_vindex_count(ix) != n)
        return NULL;
    for (uint32_t j = 0; j < n; j++) {
        uint64_t id;
        memcpy(&id, ids + 8ull * j, 8);
        if (cg_vidmap_get(&ix->ids, id) == CG_V_NONE)
            return NULL;
    }
    uint32_t skip = n > p->capacity ? n - p->capacity : 0;
    if (ix->max_elements != p->capacity + 1) {
        cg_vindex_opts o = p->iopts;
        o.max_elements = p->capacity + 1;
        cg_vindex *nx = cg_vindex_new(p->dim, &o);
        if (!nx)
            return NULL;
        for (uint32_t j = skip; j < n; j++) {
            uint64_t id;
            memcpy(&id, ids + 8ull * j, 8);
            cg_v_f16_to_f32(cg_v_vec(ix, cg_vidmap_get(&ix->ids, id)), ix->tmpv, ix->dim);
            if (cg_vindex_add(nx, id, ix->tmpv) != CG_VE_OK) {
                cg_vindex_free(nx);
                return NULL;
            }
        }
        cg_vindex_free(ix);
        *ixp = ix = nx;
    } else {
        skip = 0;
    }
    vpart *pt = part_new(p, key, ix);
    if (!pt)
        return NULL;
    for (uint32_t j = skip; j < n; j++) {
        uint64_t id;
        memcpy(&id, ids + 8ull * j, 8);
        if (lru_use(pt, id) != CG_VE_OK) {
            pt->ix = NULL; /* the caller still owns *ixp on failure */
            part_free(pt);
            return NULL;
        }
    }
    *ixp = NULL;
    report(p, key, ids, skip, CG_VEVICT_CAPACITY, st);
    return pt;
}

int cg_vparts_load(cg_vparts *p, const char *dir, cg_vparts_load_stats *st, char *err,
                   size_t errlen) {
    cg_vparts_load_stats dummy;
    if (!st)
        st = &dummy;
    memset(st, 0, sizeof(*st));
    if (!p || !dir)
        return fail(err, errlen, CG_VE_INVAL, "vector partitions load: no set or directory");
    if (cg_vparts_count(p) != 0)
        return fail(err, errlen, CG_VE_INVAL, "vector partitions load: the set is not empty");
    char path[4096];
    int k = snprintf(path, sizeof(path), "%s/%s", dir, CG_VPARTS_MANIFEST);
    if (k < 0 || (size_t)k >= sizeof(path))
        return fail(err, errlen, CG_VE_INVAL, "vector partitions load %s: path too long", dir);
    uint8_t *b = NULL;
    int rc = CG_VE_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat stt;
    if (fd < 0 || fstat(fd, &stt) != 0) {
        rc = fail(err, errlen, CG_VE_IO, "%s: %s", path, strerror(errno));
        goto out;
    }
    size_t len = (size_t)stt.st_size;
    if (len < 24 + 12) {
        rc = fail(err, errlen, CG_VE_TRUNCATED, "%s: truncated (%zu bytes)", path, len);
        goto out;
    }
    if (!(b = malloc(len))) {
        rc = fail(err, errlen, CG_VE_NOMEM, "%s: out of memory", path);
        goto out;
    }
    for (size_t off = 0; off < len;) {
        ssize_t r = read(fd, b + off, len - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = fail(err, errlen, r < 0 ? CG_VE_IO : CG_VE_TRUNCATED, "%s: %s", path,
                      r < 0 ? strerror(errno) : "file shrank while reading");
            goto out;
        }
        off += (size_t)r;
    }
    uint32_t crc, ver, dim, np;
    memcpy(&crc, b + len - 12, 4);
    if (memcmp(b, "CGVPARTS", 8) != 0) {
        rc = fail(err, errlen, CG_VE_FORMAT, "%s: not a vector partition manifest", path);
        goto out;
    }
    if (memcmp(b + len - 8, "CGVPEND\0", 8) != 0) {
        rc = fail(err, errlen, CG_VE_TRUNCATED, "%s: truncated (no end marker)", path);
        goto out;
    }
    if (crc != cg_crc32c(0, b, len - 12)) {
        rc = fail(err, errlen, CG_VE_CHECKSUM, "%s: checksum mismatch", path);
        goto out;
    }
    memcpy(&ver, b + 8, 4);
    memcpy(&dim, b + 12, 4);
    memcpy(&np, b + 16, 4);
    if (ver != 1 || dim != (uint32_t)p->dim) {
        rc = fail(err, errlen, CG_VE_FORMAT, "%s: version %u, dimension %u (expected 1, %d)", path,
                  ver, dim, p->dim);
        goto out;
    }
    /* first pass: bounds of every entry */
    size_t end = len - 12, off = 24;
    for (uint32_t i = 0; i < np; i++) {
        uint32_t n;
        if (end - off < 36) {
            rc = fail(err, errlen, CG_VE_FORMAT, "%s: entry %u overruns the file", path, i);
            goto out;
        }
        memcpy(&n, b + off + 32, 4);
        if ((end - off - 36) / 8 < n) {
            rc = fail(err, errlen, CG_VE_FORMAT, "%s: entry %u overruns the file", path, i);
            goto out;
        }
        off += 36 + 8ull * n;
    }
    if (off != end) {
        rc = fail(err, errlen, CG_VE_FORMAT, "%s: trailing bytes after the entries", path);
        goto out;
    }
    uint32_t skip = np > p->maxp ? np - p->maxp : 0;
    off = 24;
    for (uint32_t i = 0; i < np; i++) {
        const uint8_t *key = b + off;
        uint32_t n;
        memcpy(&n, b + off + 32, 4);
        const uint8_t *ids = b + off + 36;
        off += 36 + 8ull * n;
        if (i < skip) {
            report(p, key, ids, n, CG_VEVICT_PARTITION, st);
            continue;
        }
        char lerr[512] = "";
        cg_vindex *ix = NULL;
        vpart *pt = NULL;
        pthread_mutex_lock(&p->mu);
        int dup = find_locked(p, key) != NULL;
        pthread_mutex_unlock(&p->mu);
        if (!dup && part_path(path, sizeof(path), dir, key) == 0 &&
            cg_vindex_load(path, &ix, lerr, sizeof(lerr)) == CG_VE_OK)
            pt = restore(p, key, ids, n, &ix, st);
        if (!pt) {
            CG_WARN("vector partitions load: partition %u skipped: %s", i,
                    lerr[0] ? lerr : "ids or dimension differ from the manifest");
            cg_vindex_free(ix);
            report(p, key, ids, n, CG_VEVICT_LOST, st);
            st->skipped++;
            continue;
        }
        pthread_mutex_lock(&p->mu);
        insert_locked(p, pt);
        pthread_mutex_unlock(&p->mu);
        st->loaded++;
    }
out:
    if (fd >= 0)
        close(fd);
    free(b);
    return rc;
}
