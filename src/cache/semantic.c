/* semantic: eligibility, partition key, vector <-> entry map, accept
 * decision and snapshots of the semantic cache (see semantic.h).
 *
 * The map: every mapped vector is one sem_ent, chained in two hash tables
 * (by vector id and by exact-cache key). Vector ids are never reused (a
 * counter kept with the snapshot), so an id that outlives its entry (a
 * vector whose delete is still queued) can only miss.
 *
 * Snapshot file entries.cgse, little-endian:
 *   "CGSEMENT", u32 version (1), u32 dim, u32 id length, embedder id bytes,
 *   u64 next id, u64 count, then per entry: u64 id, 32-byte partition key,
 *   32-byte exact key, u32 text length, text bytes;
 *   then the SHA-256 of everything above and "CGSEEND\0".
 */
#include "cache/semantic.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/key.h"
#include "core/buf.h"
#include "core/hash.h"
#include "core/log.h"
#include "vector/partition.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "semantic writes little-endian fields with memcpy; port the encoders first"
#endif

#define SCOPE_TAG "costgate-semantic-partition v1"
#define SCOPE_MAX (64u << 10)
#define BUCKETS_MIN 256
#define FILE_VERSION 1
#define ENTRIES_FILE "entries.cgse"
#define CURRENT_FILE "CURRENT"
#define SNAP_NAME_MAX 64
#define FILE_MAX (UINT64_C(1) << 36) /* 64 GiB: bound on what load reads */

static const char MAGIC[8] = {'C', 'G', 'S', 'E', 'M', 'E', 'N', 'T'};
static const char END_MAGIC[8] = {'C', 'G', 'S', 'E', 'E', 'N', 'D', 0};

/* --- eligibility ---------------------------------------------------------- */

const char *cg_sem_elig_name(cg_sem_elig e) {
    static const char *const names[CG_SEM_N] = {"ok",       "not_single_turn", "tools", "not_text",
                                                "too_long", "empty",           "shape"};
    return e >= 0 && e < CG_SEM_N ? names[e] : "?";
}

static int role_is(const json_t *m, const char *role) {
    const char *r = json_string_value(json_object_get(m, "role"));
    return r && strcmp(r, role) == 0;
}

static int nonempty_array(const json_t *v) {
    return json_is_array(v) && json_array_size(v) > 0;
}

/* Appends the text of content (a string, or an array of text parts only)
 * to text. CG_SEM_OK, CG_SEM_NOT_TEXT or CG_SEM_TOO_LONG. */
static cg_sem_elig content_text(const json_t *content, char *text, size_t cap, size_t *len) {
    size_t limit = cap - 1 < CG_SEMANTIC_TEXT_MAX ? cap - 1 : CG_SEMANTIC_TEXT_MAX;
    *len = 0;
    if (json_is_string(content)) {
        size_t n = json_string_length(content);
        if (n > limit)
            return CG_SEM_TOO_LONG;
        memcpy(text, json_string_value(content), n);
        *len = n;
        text[n] = '\0';
        return CG_SEM_OK;
    }
    if (!json_is_array(content) || json_array_size(content) == 0)
        return CG_SEM_NOT_TEXT;
    size_t i;
    const json_t *part;
    json_array_foreach(content, i, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        const json_t *t = json_object_get(part, "text");
        if (!type || strcmp(type, "text") != 0 || !json_is_string(t))
            return CG_SEM_NOT_TEXT;
        size_t n = json_string_length(t), sep = i ? 1 : 0;
        if (*len + sep + n > limit)
            return CG_SEM_TOO_LONG;
        if (sep)
            text[(*len)++] = '\n';
        memcpy(text + *len, json_string_value(t), n);
        *len += n;
    }
    text[*len] = '\0';
    return CG_SEM_OK;
}

/* An earlier turn of a same_context conversation: no tool traffic. */
static int has_tool_turn(const json_t *m, int anthropic) {
    if (anthropic) {
        const json_t *c = json_object_get(m, "content");
        size_t i;
        const json_t *b;
        json_array_foreach(c, i, b) {
            const char *type = json_string_value(json_object_get(b, "type"));
            if (type && strstr(type, "tool"))
                return 1;
        }
        return 0;
    }
    if (role_is(m, "tool") || role_is(m, "function"))
        return 1;
    return json_object_get(m, "tool_calls") != NULL || json_object_get(m, "function_call") != NULL;
}

cg_sem_elig cg_semantic_eligible(const json_t *body, int anthropic, int same_context, char *text,
                                 size_t cap, size_t *len, json_t **part_body) {
    *part_body = NULL;
    *len = 0;
    if (cap)
        text[0] = '\0';
    const json_t *msgs = json_object_get(body, "messages");
    if (!json_is_object(body) || !nonempty_array(msgs) || cap < 2)
        return CG_SEM_SHAPE;
    if (nonempty_array(json_object_get(body, "tools")) ||
        nonempty_array(json_object_get(body, "functions")))
        return CG_SEM_TOOLS;
    size_t n = json_array_size(msgs);
    const json_t *last = json_array_get(msgs, n - 1);
    if (!json_is_object(last) || !role_is(last, "user"))
        return CG_SEM_NOT_SINGLE_TURN;
    for (size_t i = 0; i + 1 < n; i++) {
        const json_t *m = json_array_get(msgs, i);
        if (!json_is_object(m))
            return CG_SEM_SHAPE;
        if (has_tool_turn(m, anthropic))
            return CG_SEM_TOOLS;
        /* strict: before the user turn only instructions (OpenAI system /
         * developer; Anthropic keeps its system prompt outside messages) */
        if (!same_context && (anthropic || !(role_is(m, "system") || role_is(m, "developer"))))
            return CG_SEM_NOT_SINGLE_TURN;
    }
    cg_sem_elig e = content_text(json_object_get(last, "content"), text, cap, len);
    if (e != CG_SEM_OK) {
        *len = 0;
        text[0] = '\0';
        return e;
    }
    if (*len == 0)
        return CG_SEM_EMPTY;
    json_t *b = json_copy((json_t *)body);
    json_t *ms = json_copy((json_t *)msgs);
    json_t *lm = json_copy((json_t *)last);
    if (!b || !ms || !lm || json_object_set_new(lm, "content", json_null()) != 0 ||
        json_array_set(ms, n - 1, lm) != 0 || json_object_set(b, "messages", ms) != 0) {
        json_decref(b);
        json_decref(ms);
        json_decref(lm);
        return CG_SEM_SHAPE;
    }
    json_decref(ms);
    json_decref(lm);
    *part_body = b;
    return CG_SEM_OK;
}

/* --- partition key ---------------------------------------------------------- */

int cg_semantic_partition(const cg_semantic_part_in *in, uint8_t out[32]) {
    cg_buf scope;
    int rc = -1;
    const char *sc = in->scope ? in->scope : "", *seg = in->segment ? in->segment : "",
               *perm = in->permissions ? in->permissions : "";
    cg_buf_init(&scope, SCOPE_MAX);
    if (cg_buf_printf(&scope, "%s;scope=%zu:%s;segment=%zu:%s;permissions=%zu:%s", SCOPE_TAG,
                      strlen(sc), sc, strlen(seg), seg, strlen(perm), perm) != 0)
        goto out;
    cg_cache_key_in k = {
        .scope = scope.data,
        .api = in->api,
        .prompt_version = in->prompt_version,
        .context_ids = in->context_ids,
        .anthropic_version = in->anthropic_version,
        .anthropic_beta = in->anthropic_beta,
        .body = in->body,
    };
    rc = cg_cache_key(&k, out);
out:
    cg_buf_free(&scope);
    return rc;
}

/* --- the accept decision ------------------------------------------------------ */

int cg_semantic_decide(double similarity, double threshold, const char *asked, size_t asked_len,
                       const char *cached, size_t cached_len, unsigned rules,
                       cg_gate_result *gate) {
    if (gate) {
        gate->reason = CG_GATE_PASS;
        gate->detail[0] = '\0';
    }
    if (!(similarity >= threshold))
        return 0;
    return cg_gate_check(asked, asked_len, cached, cached_len, rules, gate) == CG_GATE_PASS;
}

/* --- the map ---------------------------------------------------------------- */

typedef struct sem_ent {
    uint64_t id;
    uint8_t part[32];
    uint8_t xkey[32];
    char *text;
    uint32_t len;
    struct sem_ent *next_id, *next_key;
} sem_ent;

typedef struct pend {
    struct pend *next;
    uint8_t part[32];
    uint64_t id;
} pend;

struct cg_semantic {
    uint32_t capacity, maxp;
    char embedder_id[CG_SEMANTIC_ID_MAX];

    pthread_mutex_t mu; /* everything below */
    cg_vparts *vp;      /* NULL until the dimension is known */
    int dim;
    sem_ent **by_id, **by_key;
    size_t nb, n;
    uint64_t next_id;
    pend *pending;
};

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    return x;
}

static size_t id_slot(const cg_semantic *s, uint64_t id) {
    return (size_t)(mix64(id) & (s->nb - 1));
}

static size_t key_slot(const cg_semantic *s, const uint8_t k[32]) {
    uint64_t h;
    memcpy(&h, k, sizeof h); /* SHA-256 output: already uniform */
    return (size_t)(h & (s->nb - 1));
}

static sem_ent *find_id(const cg_semantic *s, uint64_t id) {
    sem_ent *e = s->by_id[id_slot(s, id)];
    while (e && e->id != id)
        e = e->next_id;
    return e;
}

static sem_ent *find_key(const cg_semantic *s, const uint8_t k[32]) {
    sem_ent *e = s->by_key[key_slot(s, k)];
    while (e && memcmp(e->xkey, k, 32) != 0)
        e = e->next_key;
    return e;
}

static void unlink_ent(cg_semantic *s, sem_ent *e) {
    sem_ent **p = &s->by_id[id_slot(s, e->id)];
    while (*p && *p != e)
        p = &(*p)->next_id;
    if (*p)
        *p = e->next_id;
    p = &s->by_key[key_slot(s, e->xkey)];
    while (*p && *p != e)
        p = &(*p)->next_key;
    if (*p)
        *p = e->next_key;
    s->n--;
}

static void link_ent(cg_semantic *s, sem_ent *e) {
    size_t i = id_slot(s, e->id), k = key_slot(s, e->xkey);
    e->next_id = s->by_id[i];
    s->by_id[i] = e;
    e->next_key = s->by_key[k];
    s->by_key[k] = e;
    s->n++;
}

/* Doubles the tables when they are as full as they are wide (on failure
 * the chains just get longer). */
static void maybe_grow(cg_semantic *s) {
    if (s->n < s->nb)
        return;
    size_t nb = s->nb * 2;
    sem_ent **bi = calloc(nb, sizeof *bi), **bk = calloc(nb, sizeof *bk);
    if (!bi || !bk) {
        free(bi);
        free(bk);
        return;
    }
    sem_ent **old = s->by_id;
    size_t onb = s->nb;
    s->by_id = bi;
    free(s->by_key);
    s->by_key = bk;
    s->nb = nb;
    s->n = 0;
    for (size_t i = 0; i < onb; i++) {
        sem_ent *e = old[i];
        while (e) {
            sem_ent *next = e->next_id;
            link_ent(s, e);
            e = next;
        }
    }
    free(old);
}

static void free_ent(sem_ent *e) {
    if (e) {
        free(e->text);
        free(e);
    }
}

/* Queues e's vector for deletion (under mu). On out of memory the vector
 * stays, unreachable (its id has no mapping), until its partition's LRU
 * evicts it. */
static void queue_delete(cg_semantic *s, const sem_ent *e) {
    pend *p = malloc(sizeof *p);
    if (!p)
        return;
    memcpy(p->part, e->part, 32);
    p->id = e->id;
    p->next = s->pending;
    s->pending = p;
}

/* Partition eviction / loss: the vector is already gone. */
static void on_evict(void *ud, const uint8_t key[32], uint64_t id, cg_vevict_reason why) {
    (void)key;
    (void)why;
    cg_semantic *s = ud;
    pthread_mutex_lock(&s->mu);
    sem_ent *e = find_id(s, id);
    if (e)
        unlink_ent(s, e);
    pthread_mutex_unlock(&s->mu);
    free_ent(e);
}

/* The partition set for vectors of length dim (created at the first one).
 * NULL on a length mismatch or failure. */
static cg_vparts *parts_for(cg_semantic *s, int dim) {
    cg_vparts *vp = NULL;
    pthread_mutex_lock(&s->mu);
    if (!s->vp && dim > 0 && (s->dim == 0 || s->dim == dim)) {
        cg_vparts_opts o = {.dim = dim,
                            .capacity = s->capacity,
                            .max_partitions = s->maxp,
                            .on_evict = on_evict,
                            .ud = s};
        s->vp = cg_vparts_new(&o);
        if (s->vp)
            s->dim = dim;
    }
    if (s->vp && s->dim == dim)
        vp = s->vp;
    pthread_mutex_unlock(&s->mu);
    return vp;
}

cg_semantic *cg_semantic_new(const cg_semantic_opts *o, char *err, size_t errlen) {
    if (!o || o->dim < 0 || o->dim > CG_VINDEX_MAX_DIM || o->capacity >= CG_VINDEX_MAX_ELEMENTS) {
        snprintf(err, errlen, "bad semantic index options");
        return NULL;
    }
    cg_semantic *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->capacity = o->capacity ? o->capacity : CG_VPARTS_DEFAULT_CAPACITY;
    s->maxp = o->max_partitions ? o->max_partitions : CG_VPARTS_DEFAULT_MAX;
    snprintf(s->embedder_id, sizeof s->embedder_id, "%s", o->embedder_id ? o->embedder_id : "");
    s->nb = BUCKETS_MIN;
    s->by_id = calloc(s->nb, sizeof *s->by_id);
    s->by_key = calloc(s->nb, sizeof *s->by_key);
    s->next_id = 1;
    pthread_mutex_init(&s->mu, NULL);
    if (!s->by_id || !s->by_key) {
        snprintf(err, errlen, "out of memory");
        cg_semantic_free(s);
        return NULL;
    }
    if (o->dim > 0 && !parts_for(s, o->dim)) {
        snprintf(err, errlen, "cannot create the vector index (dimension %d)", o->dim);
        cg_semantic_free(s);
        return NULL;
    }
    return s;
}

void cg_semantic_free(cg_semantic *s) {
    if (!s)
        return;
    cg_vparts_free(s->vp); /* reports nothing: no on_evict on free */
    for (size_t i = 0; s->by_id && i < s->nb; i++) {
        sem_ent *e = s->by_id[i];
        while (e) {
            sem_ent *next = e->next_id;
            free_ent(e);
            e = next;
        }
    }
    while (s->pending) {
        pend *p = s->pending;
        s->pending = p->next;
        free(p);
    }
    free(s->by_id);
    free(s->by_key);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int cg_semantic_add(cg_semantic *s, const uint8_t part[32], const uint8_t xkey[32],
                    const char *text, size_t len, const float *vec, int dim) {
    if (len > CG_SEMANTIC_TEXT_MAX)
        return CG_VE_INVAL;
    cg_vparts *vp = parts_for(s, dim);
    if (!vp)
        return s->dim && s->dim != dim ? CG_VE_INVAL : CG_VE_NOMEM;
    sem_ent *e = calloc(1, sizeof *e);
    char *t = malloc(len + 1);
    if (!e || !t) {
        free(e);
        free(t);
        return CG_VE_NOMEM;
    }
    memcpy(t, text, len);
    t[len] = '\0';
    e->text = t;
    e->len = (uint32_t)len;
    memcpy(e->part, part, 32);
    memcpy(e->xkey, xkey, 32);
    pthread_mutex_lock(&s->mu);
    e->id = s->next_id++;
    pthread_mutex_unlock(&s->mu);
    int rc = cg_vparts_add(vp, part, e->id, vec);
    if (rc != CG_VE_OK) {
        free_ent(e);
        return rc;
    }
    sem_ent *old;
    pthread_mutex_lock(&s->mu);
    old = find_key(s, xkey); /* the key's previous vector (or a racing add's) goes */
    if (old) {
        unlink_ent(s, old);
        queue_delete(s, old);
    }
    maybe_grow(s);
    link_ent(s, e);
    pthread_mutex_unlock(&s->mu);
    free_ent(old);
    return CG_VE_OK;
}

int cg_semantic_lookup(cg_semantic *s, const uint8_t part[32], const float *vec, int dim,
                       const char *asked, size_t asked_len, double threshold, unsigned rules,
                       cg_semantic_match *m) {
    m->found = 0;
    m->have_best = 0;
    m->candidates = 0;
    m->stale = 0;
    m->rejected = CG_GATE_PASS;
    m->gate_detail[0] = '\0';
    m->text_len = 0;
    m->text[0] = '\0';
    pthread_mutex_lock(&s->mu);
    cg_vparts *vp = s->vp && s->dim == dim ? s->vp : NULL;
    pthread_mutex_unlock(&s->mu);
    if (!vp)
        return 0; /* nothing cached yet (or vectors of another length: never similar) */
    cg_vhit hits[CG_SEMANTIC_K];
    int n = cg_vparts_search(vp, part, vec, CG_SEMANTIC_K, hits);
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++) {
        int above = (double)hits[i].similarity >= threshold;
        pthread_mutex_lock(&s->mu);
        const sem_ent *e = find_id(s, hits[i].id);
        /* the partition key recorded with the vector must be the query's:
         * isolation does not rest on the index alone */
        int ok = e && memcmp(e->part, part, 32) == 0;
        if (ok && above) {
            memcpy(m->xkey, e->xkey, 32);
            memcpy(m->text, e->text, e->len);
            m->text[e->len] = '\0';
            m->text_len = e->len;
        }
        pthread_mutex_unlock(&s->mu);
        if (!ok) { /* its entry went: its delete is queued */
            m->stale += above;
            continue;
        }
        if (!m->have_best) { /* the nearest vector that still stands for an entry */
            m->have_best = 1;
            m->best = hits[i].similarity;
        }
        if (!above)
            break;
        m->candidates++;
        cg_gate_result g;
        if (cg_semantic_decide(hits[i].similarity, threshold, asked, asked_len, m->text,
                               m->text_len, rules, &g)) {
            m->found = 1;
            m->id = hits[i].id;
            m->similarity = hits[i].similarity;
            return 0;
        }
        if (m->rejected == CG_GATE_PASS && g.reason != CG_GATE_PASS) {
            m->rejected = g.reason;
            snprintf(m->gate_detail, sizeof m->gate_detail, "%s", g.detail);
        }
    }
    m->text_len = 0;
    m->text[0] = '\0';
    return 0;
}

void cg_semantic_touch(cg_semantic *s, const uint8_t part[32], uint64_t id) {
    pthread_mutex_lock(&s->mu);
    cg_vparts *vp = s->vp;
    pthread_mutex_unlock(&s->mu);
    if (vp)
        cg_vparts_touch(vp, part, id);
}

int cg_semantic_forget_key(cg_semantic *s, const uint8_t xkey[32]) {
    pthread_mutex_lock(&s->mu);
    sem_ent *e = find_key(s, xkey);
    if (e) {
        unlink_ent(s, e);
        queue_delete(s, e);
    }
    pthread_mutex_unlock(&s->mu);
    free_ent(e);
    return e != NULL;
}

void cg_semantic_reap(cg_semantic *s) {
    pthread_mutex_lock(&s->mu);
    pend *p = s->pending;
    s->pending = NULL;
    cg_vparts *vp = s->vp;
    pthread_mutex_unlock(&s->mu);
    while (p) {
        pend *next = p->next;
        if (vp)
            cg_vparts_delete(vp, p->part, p->id); /* CG_VE_NOTFOUND: evicted meanwhile */
        free(p);
        p = next;
    }
}

size_t cg_semantic_reconcile(cg_semantic *s, int (*live)(void *arg, const uint8_t xkey[32]),
                             void *arg) {
    uint8_t(*keys)[32] = NULL;
    size_t n = 0, gone = 0;
    pthread_mutex_lock(&s->mu);
    if (s->n)
        keys = malloc(s->n * sizeof *keys);
    for (size_t i = 0; keys && i < s->nb; i++)
        for (const sem_ent *e = s->by_key[i]; e; e = e->next_key)
            memcpy(keys[n++], e->xkey, 32);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n; i++)
        if (!live(arg, keys[i]))
            gone += (size_t)cg_semantic_forget_key(s, keys[i]);
    free(keys);
    return gone;
}

size_t cg_semantic_count(cg_semantic *s) {
    pthread_mutex_lock(&s->mu);
    size_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

size_t cg_semantic_partitions(cg_semantic *s) {
    pthread_mutex_lock(&s->mu);
    cg_vparts *vp = s->vp;
    pthread_mutex_unlock(&s->mu);
    return vp ? cg_vparts_count(vp) : 0;
}

int cg_semantic_dim(cg_semantic *s) {
    pthread_mutex_lock(&s->mu);
    int d = s->dim;
    pthread_mutex_unlock(&s->mu);
    return d;
}

/* --- snapshots ------------------------------------------------------------------- */

static int put32(cg_buf *b, uint32_t v) {
    return cg_buf_append(b, &v, 4);
}

static int put64(cg_buf *b, uint64_t v) {
    return cg_buf_append(b, &v, 8);
}

/* Writes len bytes to path atomically (temp file, fsync, rename). */
static int write_file(const char *path, const void *p, size_t len, char *err, size_t errlen) {
    char tmp[1200];
    int fd = -1, rc = -1;
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        goto out;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, (const char *)p + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto out;
        off += (size_t)w;
    }
    if (fsync(fd) != 0)
        goto out;
    if (close(fd) != 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto out;
    rc = 0;
out:
    if (rc) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp);
    }
    return rc;
}

static void fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static int mkdirs(const char *path) {
    char p[1024];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p)
        return -1;
    for (char *c = p + 1; *c; c++) {
        if (*c != '/')
            continue;
        *c = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return -1;
        *c = '/';
    }
    return mkdir(p, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* Removes a snapshot directory's files and the directory (only names this
 * module writes: no recursion, nothing outside it). */
static void remove_snapshot(const char *dir, const char *name) {
    char path[1200];
    if (strncmp(name, "snap-", 5) != 0 || strchr(name, '/') ||
        snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return;
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        char f[1400];
        if (de->d_name[0] == '.')
            continue;
        if (snprintf(f, sizeof f, "%s/%s", path, de->d_name) < (int)sizeof f)
            unlink(f);
    }
    closedir(d);
    rmdir(path);
}

/* The snapshot name in dir/CURRENT ("" when there is none). */
static int read_current(const char *dir, char *name, size_t cap) {
    char path[1200];
    name[0] = '\0';
    snprintf(path, sizeof path, "%s/%s", dir, CURRENT_FILE);
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    int ok = fgets(name, (int)cap, f) != NULL;
    fclose(f);
    if (!ok) {
        name[0] = '\0';
        return -1;
    }
    name[strcspn(name, "\r\n")] = '\0';
    if (strncmp(name, "snap-", 5) != 0 || strchr(name, '/') || strstr(name, "..")) {
        name[0] = '\0';
        return -1;
    }
    return 0;
}

static int serialize(cg_semantic *s, cg_buf *b) {
    int rc = 0;
    size_t idlen = strlen(s->embedder_id);
    pthread_mutex_lock(&s->mu);
    rc |= cg_buf_append(b, MAGIC, 8);
    rc |= put32(b, FILE_VERSION);
    rc |= put32(b, (uint32_t)s->dim);
    rc |= put32(b, (uint32_t)idlen);
    rc |= cg_buf_append(b, s->embedder_id, idlen);
    rc |= put64(b, s->next_id);
    rc |= put64(b, (uint64_t)s->n);
    for (size_t i = 0; i < s->nb && !rc; i++)
        for (const sem_ent *e = s->by_id[i]; e && !rc; e = e->next_id) {
            rc |= put64(b, e->id);
            rc |= cg_buf_append(b, e->part, 32);
            rc |= cg_buf_append(b, e->xkey, 32);
            rc |= put32(b, e->len);
            rc |= cg_buf_append(b, e->text, e->len);
        }
    pthread_mutex_unlock(&s->mu);
    if (!rc) {
        uint8_t sum[32];
        cg_sha256(b->data, b->len, sum);
        rc |= cg_buf_append(b, sum, 32);
        rc |= cg_buf_append(b, END_MAGIC, 8);
    }
    return rc ? -1 : 0;
}

int cg_semantic_save(cg_semantic *s, const char *dir, char *err, size_t errlen) {
    char old[SNAP_NAME_MAX], name[SNAP_NAME_MAX] = "", snap[1200], path[1400];
    cg_buf b;
    int rc = -1, made = 0;
    cg_buf_init(&b, (size_t)FILE_MAX);
    cg_semantic_reap(s);
    if (mkdirs(dir) != 0) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        goto out;
    }
    if (read_current(dir, old, sizeof old) != 0)
        old[0] = '\0'; /* unreadable: replaced below */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(name, sizeof name, "snap-%lld-%09ld-%d", (long long)ts.tv_sec, ts.tv_nsec,
             (int)getpid());
    if (snprintf(snap, sizeof snap, "%s/%s", dir, name) >= (int)sizeof snap) {
        snprintf(err, errlen, "%s: path too long", dir);
        goto out;
    }
    if (mkdir(snap, 0755) != 0) {
        snprintf(err, errlen, "cannot create %s: %s", snap, strerror(errno));
        goto out;
    }
    made = 1;
    pthread_mutex_lock(&s->mu);
    cg_vparts *vp = s->vp;
    pthread_mutex_unlock(&s->mu);
    if (vp && cg_vparts_save(vp, snap, err, errlen) != 0)
        goto out;
    if (serialize(s, &b) != 0) {
        snprintf(err, errlen, "out of memory writing the semantic index");
        goto out;
    }
    snprintf(path, sizeof path, "%s/%s", snap, ENTRIES_FILE);
    if (write_file(path, b.data, b.len, err, errlen) != 0)
        goto out;
    fsync_dir(snap);
    char line[SNAP_NAME_MAX + 2];
    snprintf(line, sizeof line, "%s\n", name);
    snprintf(path, sizeof path, "%s/%s", dir, CURRENT_FILE);
    if (write_file(path, line, strlen(line), err, errlen) != 0)
        goto out;
    fsync_dir(dir);
    if (old[0] && strcmp(old, name) != 0)
        remove_snapshot(dir, old);
    rc = 0;
out:
    if (rc && made)
        remove_snapshot(dir, name);
    cg_buf_free(&b);
    return rc;
}

typedef struct rd {
    const uint8_t *p;
    size_t n, off;
} rd;

static int get(rd *r, void *out, size_t n) {
    if (r->n - r->off < n)
        return -1;
    memcpy(out, r->p + r->off, n);
    r->off += n;
    return 0;
}

/* Parses entries.cgse into the (empty) maps. *dim and the embedder check
 * are the caller's. */
static int parse_entries(cg_semantic *s, const cg_buf *b, int *dim, int *other, char *err,
                         size_t errlen, const char *path) {
    rd r = {(const uint8_t *)b->data, b->len, 0};
    char magic[8];
    uint32_t ver, d, idlen;
    uint64_t next, count;
    if (b->len < 8 + 12 + 16 + 40 || memcmp(b->data + b->len - 8, END_MAGIC, 8) != 0) {
        snprintf(err, errlen, "%s: truncated or not a semantic index file", path);
        return -1;
    }
    uint8_t sum[32];
    cg_sha256(b->data, b->len - 40, sum);
    if (memcmp(sum, b->data + b->len - 40, 32) != 0) {
        snprintf(err, errlen, "%s: checksum mismatch (corrupt)", path);
        return -1;
    }
    r.n = b->len - 40;
    if (get(&r, magic, 8) || memcmp(magic, MAGIC, 8) != 0 || get(&r, &ver, 4) ||
        ver != FILE_VERSION || get(&r, &d, 4) || d > CG_VINDEX_MAX_DIM || get(&r, &idlen, 4) ||
        idlen >= CG_SEMANTIC_ID_MAX || r.n - r.off < idlen) {
        snprintf(err, errlen, "%s: bad header", path);
        return -1;
    }
    char id[CG_SEMANTIC_ID_MAX];
    get(&r, id, idlen);
    id[idlen] = '\0';
    *dim = (int)d;
    *other = strcmp(id, s->embedder_id) != 0;
    if (*other)
        return 0;
    if (get(&r, &next, 8) || get(&r, &count, 8) || count > (r.n - r.off) / 76) {
        snprintf(err, errlen, "%s: bad header", path);
        return -1;
    }
    for (uint64_t i = 0; i < count; i++) {
        sem_ent *e = calloc(1, sizeof *e);
        uint32_t len = 0;
        if (!e || get(&r, &e->id, 8) || get(&r, e->part, 32) || get(&r, e->xkey, 32) ||
            get(&r, &len, 4) || len > CG_SEMANTIC_TEXT_MAX || r.n - r.off < len ||
            !(e->text = malloc(len + 1))) {
            free_ent(e);
            snprintf(err, errlen, "%s: entry %llu is malformed", path, (unsigned long long)i);
            return -1;
        }
        get(&r, e->text, len);
        e->text[len] = '\0';
        e->len = len;
        if (e->id >= next)
            next = e->id + 1;
        pthread_mutex_lock(&s->mu);
        int dup = find_id(s, e->id) || find_key(s, e->xkey);
        if (!dup) {
            maybe_grow(s);
            link_ent(s, e);
        }
        pthread_mutex_unlock(&s->mu);
        if (dup) /* a duplicate id or key: the first one stays */
            free_ent(e);
    }
    if (r.off != r.n) {
        snprintf(err, errlen, "%s: trailing bytes", path);
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    s->next_id = next;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* Drops every mapping (a snapshot that could not be used). */
static void clear_map(cg_semantic *s) {
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->nb; i++) {
        sem_ent *e = s->by_id[i];
        while (e) {
            sem_ent *next = e->next_id;
            free_ent(e);
            e = next;
        }
        s->by_id[i] = s->by_key[i] = NULL;
    }
    s->n = 0;
    pthread_mutex_unlock(&s->mu);
}

int cg_semantic_load(cg_semantic *s, const char *dir, cg_semantic_load_stats *st, char *err,
                     size_t errlen) {
    char name[SNAP_NAME_MAX], snap[1200], path[1400];
    cg_buf b;
    int rc = -1, dim = 0, other = 0;
    memset(st, 0, sizeof *st);
    cg_buf_init(&b, (size_t)FILE_MAX);
    if (cg_semantic_count(s) || cg_semantic_partitions(s)) {
        snprintf(err, errlen, "the semantic index is not empty");
        goto out;
    }
    if (read_current(dir, name, sizeof name) != 0) {
        snprintf(err, errlen, "%s/%s is unreadable", dir, CURRENT_FILE);
        goto out;
    }
    if (!name[0]) {
        rc = 0; /* no snapshot yet */
        goto out;
    }
    st->found = 1;
    snprintf(snap, sizeof snap, "%s/%s", dir, name);
    snprintf(path, sizeof path, "%s/%s", snap, ENTRIES_FILE);
    if (cg_buf_read_file(&b, path) != 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    if (parse_entries(s, &b, &dim, &other, err, errlen, path) != 0) {
        clear_map(s);
        goto out;
    }
    int have_dim = cg_semantic_dim(s);
    if (other || (have_dim && dim && have_dim != dim)) {
        clear_map(s);
        st->discarded = 1;
        rc = 0;
        goto out;
    }
    if (dim == 0) { /* nothing was ever added */
        clear_map(s);
        rc = 0;
        goto out;
    }
    cg_vparts *vp = parts_for(s, dim);
    cg_vparts_load_stats vst;
    if (!vp || cg_vparts_load(vp, snap, &vst, err, errlen) != 0) {
        if (!vp)
            snprintf(err, errlen, "cannot create the vector index (dimension %d)", dim);
        clear_map(s);
        goto out;
    }
    st->partitions = vst.loaded;
    st->lost = vst.lost;
    st->entries = cg_semantic_count(s);
    rc = 0;
out:
    cg_buf_free(&b);
    return rc;
}
