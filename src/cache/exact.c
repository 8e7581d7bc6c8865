/* exact: in-memory index + LRU + persistence of the exact cache (see
 * exact.h). */
#include "cache/exact.h"

#include <jansson.h>
#include <malloc.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/key.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"
#include "store/ledger.h"

#define SLOTS_MIN 1024 /* index slots; at most half are used (grown by doubling) */

typedef enum { OP_PUT, OP_DEL, OP_STATS, OP_INVAL, OP_PURGE, OP_FINALIZE, OP_N } op_kind;

typedef struct op {
    struct op *next;
    op_kind kind;
    cg_cache_entry *e; /* PUT, STATS: a reference */
    char key_hex[65];  /* DEL */
    int64_t ts_ms;     /* INVAL, PURGE */
    char cause[24];
    char detail[256];
    int64_t removed;
} op;

/* One index slot: the entry and the first 8 bytes of its key, so a probe
 * that meets another key is rejected without touching that entry (a cold
 * cache line; with unique requests the index holds ~100k of them). */
typedef struct islot {
    uint64_t tag;
    cg_cache_entry *e; /* NULL: empty */
} islot;

struct cg_cache {
    const cg_cache_cfg *cfg;
    cg_cache_guard guard;
    cg_cache_clock_fn clock;
    void *clock_arg;

    pthread_mutex_t mu;
    islot *slots; /* open addressing, linear probing, no tombstones */
    size_t n_slots, n_entries, bytes, max_bytes;
    cg_cache_entry *head, *tail; /* LRU: head = most recent */

    /* persistence */
    struct cg_ledger *ledger;
    pthread_mutex_t pmu;
    pthread_cond_t pcv;
    op *ops_head, *ops_tail;
    int flushing;
    sqlite3 *st_db; /* the connection the statements belong to (writer thread only) */
    sqlite3_stmt *st[OP_N];

    cg_cache_remove_fn on_remove;
    void *on_remove_arg;

    /* counters */
    _Atomic uint64_t lookups, hits, misses, coalesced, bypassed, stores, replaced, evictions,
        expirations, semantic_hits;
    _Atomic uint64_t rejects[CG_GUARD_N];
    _Atomic uint64_t invalidated[CG_INV_N];
    _Atomic uint64_t co_waits, co_timeouts, co_failed;
    _Atomic int64_t saved_nano;
};

const char *cg_inv_cause_name(cg_inv_cause c) {
    static const char *const names[CG_INV_N] = {"key",      "tag", "tenant", "prompt_version",
                                                "feedback", "all"};
    return c >= 0 && c < CG_INV_N ? names[c] : "?";
}

static uint64_t hash_key(const uint8_t key[32]) {
    uint64_t h;
    memcpy(&h, key, sizeof h); /* SHA-256 output: already uniform */
    return h;
}

cg_cache *cg_cache_new(const cg_cache_cfg *cfg, cg_cache_clock_fn clock, void *clock_arg, char *err,
                       size_t errlen) {
    cg_cache *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->cfg = cfg;
    c->clock = clock;
    c->clock_arg = clock_arg;
    c->max_bytes = (size_t)cfg->max_bytes;
    c->n_slots = SLOTS_MIN;
    c->slots = calloc(c->n_slots, sizeof *c->slots);
    if (!c->slots) {
        snprintf(err, errlen, "out of memory");
        free(c);
        return NULL;
    }
    if (cg_cache_guard_init(&c->guard, cfg, err, errlen) != 0) {
        free(c->slots);
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->pmu, NULL);
    pthread_cond_init(&c->pcv, NULL);
    return c;
}

const cg_cache_guard *cg_cache_guard_of(const cg_cache *c) {
    return &c->guard;
}

long long cg_cache_now(const cg_cache *c) {
    return c->clock(c->clock_arg);
}

/* --- entries ------------------------------------------------------------- */

/* The meta strings in the order of cg_cache_entry_meta, with their caps. */
#define N_META 6
static const size_t META_CAP[N_META] = {CG_CACHE_TENANT_MAX,         CG_CACHE_SHARE_GROUP_MAX,
                                        CG_CACHE_MODEL_MAX,          CG_CACHE_INTENT_MAX,
                                        CG_CACHE_PROMPT_VERSION_MAX, CG_CACHE_WRITER_ID_MAX};

cg_cache_entry *cg_cache_entry_new(const uint8_t key[32], const char *body, size_t body_len,
                                   const char *const *tags, size_t n_tags,
                                   const cg_cache_entry_meta *meta) {
    if (n_tags > CG_CACHE_TAGS_MAX)
        n_tags = CG_CACHE_TAGS_MAX;
    const cg_cache_entry_meta none = {0};
    if (!meta)
        meta = &none;
    const char *ms[N_META] = {meta->tenant, meta->share_group,    meta->model,
                              meta->intent, meta->prompt_version, meta->writer_id};
    size_t ml[N_META], tl[CG_CACHE_TAGS_MAX];
    /* layout: the entry, the tag pointers, the body, the tag strings, the
     * meta strings (each NUL-terminated) */
    size_t size = sizeof(cg_cache_entry) + n_tags * sizeof(char *) + body_len + 1;
    for (size_t i = 0; i < n_tags; i++)
        size += (tl[i] = strlen(tags[i])) + 1;
    for (size_t i = 0; i < N_META; i++)
        size += (ml[i] = ms[i] ? strnlen(ms[i], META_CAP[i]) : 0) + 1;
    cg_cache_entry *e = malloc(size);
    if (!e)
        return NULL;
    *e = (cg_cache_entry){.n_tags = n_tags, .body_len = body_len};
    char **tp = (char **)(e + 1);
    char *p = (char *)(tp + n_tags);
    e->tags = n_tags ? tp : NULL;
    e->body = p;
    if (body_len) /* a stored row's empty blob comes back as NULL */
        memcpy(p, body, body_len);
    p[body_len] = '\0';
    p += body_len + 1;
    for (size_t i = 0; i < n_tags; i++) {
        memcpy(p, tags[i], tl[i] + 1);
        tp[i] = p;
        p += tl[i] + 1;
    }
    const char **dst[N_META] = {&e->tenant, &e->share_group,    &e->model,
                                &e->intent, &e->prompt_version, &e->writer_id};
    for (size_t i = 0; i < N_META; i++) {
        if (ml[i])
            memcpy(p, ms[i], ml[i]);
        p[ml[i]] = '\0';
        *dst[i] = p;
        p += ml[i] + 1;
    }
    memcpy(e->key, key, 32);
    cg_cache_key_hex(key, e->key_hex); /* by table, as cg_hex */
    /* what it takes: the allocator's block, and two index slots (the index
     * is at most half full) */
    e->bytes = malloc_usable_size(e) + 2 * sizeof(islot);
    atomic_init(&e->refs, 1);
    return e;
}

static void entry_free(cg_cache_entry *e) {
    free(e);
}

void cg_cache_entry_release(cg_cache_entry *e) {
    if (e && atomic_fetch_sub(&e->refs, 1) == 1)
        entry_free(e);
}

static void entry_ref(cg_cache_entry *e) {
    atomic_fetch_add(&e->refs, 1);
}

/* --- persistence queue ----------------------------------------------------- */

static void persist_kick(cg_cache *c);

/* Queues an op (takes ownership). The cache lock may be held: only pmu is
 * taken here, never the other way round. */
static void queue_op(cg_cache *c, op *o) {
    if (!c->ledger) {
        if (o->e)
            cg_cache_entry_release(o->e);
        free(o);
        return;
    }
    pthread_mutex_lock(&c->pmu);
    if (c->ops_tail)
        c->ops_tail->next = o;
    else
        c->ops_head = o;
    c->ops_tail = o;
    pthread_mutex_unlock(&c->pmu);
    persist_kick(c);
}

static void queue_entry_op(cg_cache *c, op_kind k, cg_cache_entry *e) {
    op *o = calloc(1, sizeof *o);
    if (!o) {
        CG_ERROR("cache: out of memory queueing a write; entry %.12s not persisted", e->key_hex);
        return;
    }
    o->kind = k;
    if (k == OP_DEL) {
        memcpy(o->key_hex, e->key_hex, sizeof o->key_hex);
    } else {
        entry_ref(e);
        o->e = e;
    }
    queue_op(c, o);
}

static int bind_text(sqlite3_stmt *s, int i, const char *v) {
    return sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
}

static char *tags_json(const cg_cache_entry *e) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < e->n_tags; i++)
        json_array_append_new(a, json_string(e->tags[i]));
    char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return s;
}

/* Statements, prepared once on the ledger's connection and kept (only the
 * writer thread touches them); OP_FINALIZE drops them before it closes. */
static const char *const SQL[OP_N] = {
    [OP_PUT] = "INSERT OR REPLACE INTO cache_entries (key, api, tenant, share_group, model,"
               " intent, prompt_version, writer_id, tags, body, tok_input, tok_cached_read,"
               " tok_cache_write_5m, tok_cache_write_1h, tok_output, tok_reasoning,"
               " tok_embedding, web_searches, usage_have, created_ms, expires_ms, hits,"
               " saved_nano, bytes) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [OP_DEL] = "DELETE FROM cache_entries WHERE key = ?",
    [OP_STATS] = "UPDATE cache_entries SET hits = ?, saved_nano = ? WHERE key = ? AND "
                 "created_ms = ?",
    [OP_INVAL] = "INSERT INTO cache_invalidations (ts_ms, cause, detail, removed) VALUES "
                 "(?,?,?,?)",
    [OP_PURGE] = "DELETE FROM cache_entries WHERE expires_ms <= ?",
};

static sqlite3_stmt *stmt(cg_cache *c, sqlite3 *db, op_kind k) {
    if (c->st_db != db) {
        for (int i = 0; i < OP_N; i++) {
            sqlite3_finalize(c->st[i]);
            c->st[i] = NULL;
        }
        c->st_db = db;
    }
    if (!c->st[k] &&
        sqlite3_prepare_v3(db, SQL[k], -1, SQLITE_PREPARE_PERSISTENT, &c->st[k], NULL) != SQLITE_OK)
        c->st[k] = NULL;
    return c->st[k];
}

static void finalize_all(cg_cache *c) {
    for (int i = 0; i < OP_N; i++) {
        sqlite3_finalize(c->st[i]);
        c->st[i] = NULL;
    }
    c->st_db = NULL;
}

static void bind_put(sqlite3_stmt *s, const cg_cache_entry *e, const char *tags) {
    int i = 1;
    bind_text(s, i++, e->key_hex);
    sqlite3_bind_int(s, i++, e->api);
    bind_text(s, i++, e->tenant);
    bind_text(s, i++, e->share_group);
    bind_text(s, i++, e->model);
    bind_text(s, i++, e->intent);
    bind_text(s, i++, e->prompt_version);
    bind_text(s, i++, e->writer_id);
    bind_text(s, i++, tags ? tags : "[]");
    sqlite3_bind_blob(s, i++, e->body, (int)e->body_len, SQLITE_STATIC);
    const cg_usage *u = &e->usage;
    sqlite3_bind_int64(s, i++, u->input);
    sqlite3_bind_int64(s, i++, u->cached_read);
    sqlite3_bind_int64(s, i++, u->cache_write_5m);
    sqlite3_bind_int64(s, i++, u->cache_write_1h);
    sqlite3_bind_int64(s, i++, u->output);
    sqlite3_bind_int64(s, i++, u->reasoning);
    sqlite3_bind_int64(s, i++, u->embedding);
    sqlite3_bind_int64(s, i++, u->web_searches);
    sqlite3_bind_int64(s, i++, (sqlite3_int64)u->have);
    sqlite3_bind_int64(s, i++, e->created_ms);
    sqlite3_bind_int64(s, i++, e->expires_ms);
    sqlite3_bind_int64(s, i++, atomic_load(&e->hits));
    sqlite3_bind_int64(s, i++, atomic_load(&e->saved_nano));
    sqlite3_bind_int64(s, i++, (sqlite3_int64)e->bytes);
}

/* One queued change, with its cached statement. */
static int run_op(cg_cache *c, sqlite3 *db, op *o) {
    if (o->kind == OP_FINALIZE) {
        finalize_all(c);
        return 0;
    }
    sqlite3_stmt *s = stmt(c, db, o->kind);
    char *tags = NULL;
    int rc = -1;
    if (!s)
        goto out;
    switch (o->kind) {
    case OP_PUT:
        pthread_mutex_lock(&c->mu);
        o->e->dirty = 0;
        o->e->hits_persisted = atomic_load(&o->e->hits);
        pthread_mutex_unlock(&c->mu);
        tags = tags_json(o->e);
        bind_put(s, o->e, tags);
        break;
    case OP_DEL:
        bind_text(s, 1, o->key_hex);
        break;
    case OP_STATS:
        pthread_mutex_lock(&c->mu);
        o->e->dirty = 0;
        o->e->hits_persisted = atomic_load(&o->e->hits);
        pthread_mutex_unlock(&c->mu);
        sqlite3_bind_int64(s, 1, o->e->hits_persisted);
        sqlite3_bind_int64(s, 2, atomic_load(&o->e->saved_nano));
        bind_text(s, 3, o->e->key_hex);
        sqlite3_bind_int64(s, 4, o->e->created_ms);
        break;
    case OP_INVAL:
        sqlite3_bind_int64(s, 1, o->ts_ms);
        bind_text(s, 2, o->cause);
        bind_text(s, 3, o->detail);
        sqlite3_bind_int64(s, 4, o->removed);
        break;
    case OP_PURGE:
        sqlite3_bind_int64(s, 1, o->ts_ms);
        break;
    default:
        goto out;
    }
    rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -1;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
out:
    if (rc)
        CG_ERROR("cache: persistence failed: %s", sqlite3_errmsg(db));
    free(tags);
    return rc;
}

/* On the ledger writer thread, inside its transaction. */
static int persist_run(sqlite3 *db, void *arg) {
    cg_cache *c = arg;
    pthread_mutex_lock(&c->pmu);
    op *list = c->ops_head;
    c->ops_head = c->ops_tail = NULL;
    pthread_mutex_unlock(&c->pmu);
    int rc = 0;
    while (list) {
        op *o = list;
        list = o->next;
        rc |= run_op(c, db, o);
        if (o->e)
            cg_cache_entry_release(o->e);
        free(o);
    }
    return rc;
}

/* On the writer thread, after the commit: the next batch, if any. */
static void persist_done(void *arg, int ok) {
    cg_cache *c = arg;
    if (!ok)
        CG_WARN("cache: a batch of cache writes was not committed");
    pthread_mutex_lock(&c->pmu);
    c->flushing = 0;
    int more = c->ops_head != NULL;
    pthread_cond_broadcast(&c->pcv);
    pthread_mutex_unlock(&c->pmu);
    if (more)
        persist_kick(c);
}

static void persist_kick(cg_cache *c) {
    pthread_mutex_lock(&c->pmu);
    if (c->flushing || !c->ops_head || !c->ledger) {
        pthread_mutex_unlock(&c->pmu);
        return;
    }
    c->flushing = 1;
    pthread_mutex_unlock(&c->pmu);
    if (cg_ledger_run(c->ledger, persist_run, c, persist_done, c) != 0) {
        pthread_mutex_lock(&c->pmu);
        c->flushing = 0; /* the ledger is closing: what is queued stays in memory */
        pthread_cond_broadcast(&c->pcv);
        pthread_mutex_unlock(&c->pmu);
    }
}

void cg_cache_attach_ledger(cg_cache *c, struct cg_ledger *l) {
    c->ledger = l;
}

void cg_cache_persist_sync(cg_cache *c) {
    if (!c || !c->ledger)
        return;
    /* entries not written yet, and hit counters that changed (a dirty
     * entry's write is already queued) */
    pthread_mutex_lock(&c->mu);
    for (cg_cache_entry *e = c->head; e; e = e->next) {
        if (!e->persisted) { /* never served a hit: written now */
            e->persisted = 1;
            e->dirty = 1;
            queue_entry_op(c, OP_PUT, e);
        } else if (!e->dirty && atomic_load(&e->hits) != e->hits_persisted) {
            e->dirty = 1;
            queue_entry_op(c, OP_STATS, e);
        }
    }
    pthread_mutex_unlock(&c->mu);
    op *fin = calloc(1, sizeof *fin);
    if (fin) { /* last: the kept statements go before the ledger closes */
        fin->kind = OP_FINALIZE;
        queue_op(c, fin);
    }
    for (;;) {
        persist_kick(c);
        pthread_mutex_lock(&c->pmu);
        int stuck = !c->flushing && c->ops_head; /* the ledger is closing */
        while (c->flushing)
            pthread_cond_wait(&c->pcv, &c->pmu);
        int more = c->ops_head != NULL;
        pthread_mutex_unlock(&c->pmu);
        if (stuck || !more)
            break;
    }
}

/* --- index (callers hold mu) ------------------------------------------------ */

/* The entry of key, or NULL. */
static cg_cache_entry *ix_get(const cg_cache *c, const uint8_t key[32]) {
    uint64_t tag = hash_key(key);
    size_t mask = c->n_slots - 1;
    for (size_t i = tag & mask; c->slots[i].e; i = (i + 1) & mask)
        if (c->slots[i].tag == tag && memcmp(c->slots[i].e->key, key, 32) == 0)
            return c->slots[i].e;
    return NULL;
}

/* Takes e out of the index (nothing when it is not there). The entries
 * after it in its run move back where their probe allows (backward-shift
 * deletion), so the table never needs tombstones. */
static void ix_del(cg_cache *c, const cg_cache_entry *e) {
    uint64_t tag = hash_key(e->key);
    size_t mask = c->n_slots - 1, i = tag & mask;
    while (c->slots[i].e && c->slots[i].e != e)
        i = (i + 1) & mask;
    if (!c->slots[i].e)
        return;
    for (size_t j = (i + 1) & mask; c->slots[j].e; j = (j + 1) & mask) {
        size_t home = c->slots[j].tag & mask;
        /* slot j may fill the hole at i unless its home lies in (i, j] */
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            c->slots[i] = c->slots[j];
            i = j;
        }
    }
    c->slots[i].e = NULL;
    c->slots[i].tag = 0;
}

static void ix_place(islot *slots, size_t n, uint64_t tag, cg_cache_entry *e) {
    size_t i = tag & (n - 1);
    while (slots[i].e)
        i = (i + 1) & (n - 1);
    slots[i].tag = tag;
    slots[i].e = e;
}

/* Doubles the index; 0, or -1 when out of memory (the table stays). */
static int ix_grow(cg_cache *c) {
    size_t n = c->n_slots * 2;
    islot *s = calloc(n, sizeof *s);
    if (!s)
        return -1;
    for (size_t i = 0; i < c->n_slots; i++)
        if (c->slots[i].e)
            ix_place(s, n, c->slots[i].tag, c->slots[i].e); /* no entry read */
    free(c->slots);
    c->slots = s;
    c->n_slots = n;
    return 0;
}

/* Adds e, whose key is not in the index: 0, or -1 when the index is full
 * and could not grow (e is not in the index; the caller disposes of it). */
static int ix_add(cg_cache *c, cg_cache_entry *e) {
    if ((c->n_entries + 1) * 2 > c->n_slots && ix_grow(c) != 0 &&
        (c->n_entries + 1) * 8 > c->n_slots * 7)
        return -1; /* over 7/8 full: probes would get long */
    ix_place(c->slots, c->n_slots, hash_key(e->key), e);
    return 0;
}

static void lru_unlink(cg_cache *c, cg_cache_entry *e) {
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_front(cg_cache *c, cg_cache_entry *e) {
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

/* Takes e out of the index and the LRU, drops the table's reference and
 * queues the deletion of its row (when it has one). */
static void unlink_entry(cg_cache *c, cg_cache_entry *e) {
    ix_del(c, e);
    lru_unlink(c, e);
    e->in_table = 0;
    c->n_entries--;
    c->bytes -= e->bytes;
    if (c->on_remove)
        c->on_remove(c->on_remove_arg, e->key);
    if (e->persisted)
        queue_entry_op(c, OP_DEL, e);
    cg_cache_entry_release(e);
}

/* --- public -------------------------------------------------------------- */

static cg_cache_entry *get(cg_cache *c, const uint8_t key[32]) {
    long long now = c->clock(c->clock_arg);
    pthread_mutex_lock(&c->mu);
    cg_cache_entry *e = ix_get(c, key);
    if (e && e->expires_ms <= now) {
        unlink_entry(c, e);
        atomic_fetch_add(&c->expirations, 1);
        e = NULL;
    }
    if (e) {
        if (c->head != e) {
            lru_unlink(c, e);
            lru_front(c, e);
        }
        entry_ref(e);
    }
    pthread_mutex_unlock(&c->mu);
    return e;
}

cg_cache_entry *cg_cache_get(cg_cache *c, const uint8_t key[32]) {
    atomic_fetch_add(&c->lookups, 1);
    return get(c, key);
}

cg_cache_entry *cg_cache_fetch(cg_cache *c, const uint8_t key[32]) {
    return get(c, key);
}

void cg_cache_hit(cg_cache *c, cg_cache_entry *e, int64_t saved_nano, int how) {
    atomic_fetch_add(&e->hits, 1);
    atomic_fetch_add(&e->saved_nano, saved_nano);
    atomic_fetch_add(how == CG_CACHE_HIT_SEMANTIC ? &c->semantic_hits : &c->hits, 1);
    atomic_fetch_add(&c->saved_nano, saved_nano);
    if (how == CG_CACHE_HIT_COALESCED)
        atomic_fetch_add(&c->coalesced, 1);
    int queue = 0;
    int64_t now = cg_mono_us();
    pthread_mutex_lock(&c->mu);
    if (e->in_table && !e->persisted) {
        /* its first hit: the entry is worth keeping across a restart */
        e->persisted = 1;
        e->dirty = 1;
        e->stats_us = now;
        queue = OP_PUT + 1;
    } else if (e->in_table && !e->dirty && now - e->stats_us >= CG_CACHE_STATS_EVERY_MS * 1000) {
        e->dirty = 1;
        e->stats_us = now;
        queue = OP_STATS + 1;
    }
    pthread_mutex_unlock(&c->mu);
    if (queue)
        queue_entry_op(c, (op_kind)(queue - 1), e);
}

int cg_cache_contains(cg_cache *c, const uint8_t key[32]) {
    long long now = c->clock(c->clock_arg);
    pthread_mutex_lock(&c->mu);
    const cg_cache_entry *e = ix_get(c, key);
    int live = e && e->expires_ms > now;
    pthread_mutex_unlock(&c->mu);
    return live;
}

void cg_cache_set_remove_hook(cg_cache *c, cg_cache_remove_fn fn, void *arg) {
    pthread_mutex_lock(&c->mu);
    c->on_remove = fn;
    c->on_remove_arg = arg;
    pthread_mutex_unlock(&c->mu);
}

int cg_cache_put(cg_cache *c, cg_cache_entry *e) {
    if (e->bytes > c->max_bytes) {
        cg_cache_entry_release(e);
        atomic_fetch_add(&c->rejects[CG_GUARD_TOO_LARGE], 1);
        return -1;
    }
    pthread_mutex_lock(&c->mu);
    cg_cache_entry *old = ix_get(c, e->key);
    if (old) {
        unlink_entry(c, old); /* its row (if written) goes: a crash must not revive it */
        atomic_fetch_add(&c->replaced, 1);
    }
    while (c->bytes + e->bytes > c->max_bytes && c->tail) {
        unlink_entry(c, c->tail);
        atomic_fetch_add(&c->evictions, 1);
    }
    if (ix_add(c, e) != 0) {
        pthread_mutex_unlock(&c->mu);
        cg_cache_entry_release(e);
        return -1;
    }
    lru_front(c, e);
    e->in_table = 1;
    c->n_entries++;
    c->bytes += e->bytes;
    pthread_mutex_unlock(&c->mu); /* written to the file at its first hit (or at stop) */
    atomic_fetch_add(&c->stores, 1);
    return 0;
}

void cg_cache_count_miss(cg_cache *c) {
    atomic_fetch_add(&c->misses, 1);
}

void cg_cache_count_bypass(cg_cache *c) {
    atomic_fetch_add(&c->bypassed, 1);
}

void cg_cache_count_reject(cg_cache *c, cg_guard_reason r) {
    if (r > 0 && r < CG_GUARD_N)
        atomic_fetch_add(&c->rejects[r], 1);
}

void cg_cache_count_coalesce(cg_cache *c, int waited, int timed_out, int leader_failed) {
    if (waited)
        atomic_fetch_add(&c->co_waits, 1);
    if (timed_out)
        atomic_fetch_add(&c->co_timeouts, 1);
    if (leader_failed)
        atomic_fetch_add(&c->co_failed, 1);
}

static int has_tag(const cg_cache_entry *e, const char *const *tags, size_t n) {
    for (size_t i = 0; i < e->n_tags; i++)
        for (size_t j = 0; j < n; j++)
            if (strcmp(e->tags[i], tags[j]) == 0)
                return 1;
    return 0;
}

static int matches(const cg_cache_entry *e, const cg_cache_filter *f) {
    if (f->tags && f->n_tags && !has_tag(e, f->tags, f->n_tags))
        return 0;
    if (f->tenant && strcmp(e->tenant, f->tenant) != 0)
        return 0;
    if (f->share_group && strcmp(e->share_group, f->share_group) != 0)
        return 0;
    if (f->prompt_version && strcmp(e->prompt_version, f->prompt_version) != 0)
        return 0;
    if (f->writer_id && strcmp(e->writer_id, f->writer_id) != 0)
        return 0;
    return 1;
}

size_t cg_cache_invalidate(cg_cache *c, const cg_cache_filter *f, cg_inv_cause cause,
                           const char *detail) {
    int any = f->key || (f->tags && f->n_tags) || f->tenant || f->share_group ||
              f->prompt_version || f->writer_id;
    if (!any && !f->all)
        return 0;
    size_t removed = 0;
    pthread_mutex_lock(&c->mu);
    if (f->key) {
        cg_cache_entry *e = ix_get(c, f->key);
        if (e && matches(e, f)) {
            unlink_entry(c, e);
            removed++;
        }
    } else {
        cg_cache_entry *e = c->head;
        while (e) {
            cg_cache_entry *next = e->next;
            if (matches(e, f)) {
                unlink_entry(c, e);
                removed++;
            }
            e = next;
        }
    }
    pthread_mutex_unlock(&c->mu);
    if (cause >= 0 && cause < CG_INV_N)
        atomic_fetch_add(&c->invalidated[cause], removed);
    op *o = calloc(1, sizeof *o);
    if (o) {
        o->kind = OP_INVAL;
        o->ts_ms = c->clock(c->clock_arg);
        snprintf(o->cause, sizeof o->cause, "%s", cg_inv_cause_name(cause));
        snprintf(o->detail, sizeof o->detail, "%s", detail ? detail : "");
        o->removed = (int64_t)removed;
        queue_op(c, o);
    }
    return removed;
}

void cg_cache_stats_get(cg_cache *c, cg_cache_stats *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_lock(&c->mu);
    s->entries = c->n_entries;
    s->bytes = c->bytes;
    pthread_mutex_unlock(&c->mu);
    s->max_bytes = c->max_bytes;
    s->lookups = atomic_load(&c->lookups);
    s->hits = atomic_load(&c->hits);
    s->misses = atomic_load(&c->misses);
    s->coalesced = atomic_load(&c->coalesced);
    s->bypassed = atomic_load(&c->bypassed);
    s->stores = atomic_load(&c->stores);
    s->replaced = atomic_load(&c->replaced);
    s->evictions = atomic_load(&c->evictions);
    s->expirations = atomic_load(&c->expirations);
    for (int i = 0; i < CG_GUARD_N; i++)
        s->rejects[i] = atomic_load(&c->rejects[i]);
    for (int i = 0; i < CG_INV_N; i++)
        s->invalidated[i] = atomic_load(&c->invalidated[i]);
    s->coalesce_waits = atomic_load(&c->co_waits);
    s->coalesce_timeouts = atomic_load(&c->co_timeouts);
    s->coalesce_leader_failed = atomic_load(&c->co_failed);
    s->semantic_hits = atomic_load(&c->semantic_hits);
    s->saved_nano = atomic_load(&c->saved_nano);
}

void cg_cache_visit(cg_cache *c, void (*fn)(void *arg, const cg_cache_entry *e), void *arg) {
    pthread_mutex_lock(&c->mu);
    for (cg_cache_entry *e = c->head; e; e = e->next)
        fn(arg, e);
    pthread_mutex_unlock(&c->mu);
}

/* --- load ------------------------------------------------------------------ */

/* Column i as text ("" for NULL); valid until the statement moves on. */
static const char *col_text(sqlite3_stmt *s, int i) {
    const char *v = (const char *)sqlite3_column_text(s, i);
    return v ? v : "";
}

static cg_cache_entry *row_entry(sqlite3_stmt *s) {
    uint8_t key[32];
    const char *hex = (const char *)sqlite3_column_text(s, 0);
    if (!hex || strlen(hex) != 64 || cg_unhex(hex, key, 32) != 0)
        return NULL;
    const char *tags_s = (const char *)sqlite3_column_text(s, 8);
    json_t *ta = tags_s ? json_loads(tags_s, 0, NULL) : NULL;
    const char *tags[CG_CACHE_TAGS_MAX];
    size_t n = 0, i;
    json_t *t;
    json_array_foreach(ta, i, t) {
        if (json_is_string(t) && n < CG_CACHE_TAGS_MAX)
            tags[n++] = json_string_value(t);
    }
    cg_cache_entry_meta meta = {col_text(s, 2), col_text(s, 3), col_text(s, 4),
                                col_text(s, 5), col_text(s, 6), col_text(s, 7)};
    cg_cache_entry *e = cg_cache_entry_new(key, sqlite3_column_blob(s, 9),
                                           (size_t)sqlite3_column_bytes(s, 9), tags, n, &meta);
    json_decref(ta);
    if (!e)
        return NULL;
    e->api = sqlite3_column_int(s, 1);
    cg_usage *u = &e->usage;
    u->input = sqlite3_column_int64(s, 10);
    u->cached_read = sqlite3_column_int64(s, 11);
    u->cache_write_5m = sqlite3_column_int64(s, 12);
    u->cache_write_1h = sqlite3_column_int64(s, 13);
    u->output = sqlite3_column_int64(s, 14);
    u->reasoning = sqlite3_column_int64(s, 15);
    u->embedding = sqlite3_column_int64(s, 16);
    u->web_searches = sqlite3_column_int64(s, 17);
    u->have = (unsigned)sqlite3_column_int64(s, 18);
    e->created_ms = sqlite3_column_int64(s, 19);
    e->expires_ms = sqlite3_column_int64(s, 20);
    atomic_store(&e->hits, sqlite3_column_int64(s, 21));
    e->hits_persisted = sqlite3_column_int64(s, 21);
    e->persisted = 1;
    atomic_store(&e->saved_nano, sqlite3_column_int64(s, 22));
    return e;
}

int cg_cache_load(cg_cache *c, const char *db_path, char *err, size_t errlen) {
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int rc = -1;
    long long now = c->clock(c->clock_arg);
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", db_path, db ? sqlite3_errmsg(db) : "?");
        goto out;
    }
    if (sqlite3_prepare_v2(db,
                           "SELECT key, api, tenant, share_group, model, intent, prompt_version,"
                           " writer_id, tags, body, tok_input, tok_cached_read, tok_cache_write_5m,"
                           " tok_cache_write_1h, tok_output, tok_reasoning, tok_embedding,"
                           " web_searches, usage_have, created_ms, expires_ms, hits, saved_nano"
                           " FROM cache_entries WHERE expires_ms > ? ORDER BY created_ms DESC",
                           -1, &s, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot read cache_entries in %s: %s", db_path, sqlite3_errmsg(db));
        goto out;
    }
    sqlite3_bind_int64(s, 1, now);
    size_t loaded = 0, skipped = 0;
    const struct cg_ledger *keep = c->ledger;
    c->ledger = NULL; /* loading is not a change to persist */
    while (sqlite3_step(s) == SQLITE_ROW) {
        cg_cache_entry *e = row_entry(s);
        if (!e) {
            skipped++;
            continue;
        }
        pthread_mutex_lock(&c->mu);
        int fits = c->bytes + e->bytes <= c->max_bytes && !ix_get(c, e->key) && ix_add(c, e) == 0;
        if (fits) {
            /* newest first: each older entry goes to the LRU's tail */
            e->prev = c->tail;
            if (c->tail)
                c->tail->next = e;
            else
                c->head = e;
            c->tail = e;
            e->in_table = 1;
            c->n_entries++;
            c->bytes += e->bytes;
        }
        pthread_mutex_unlock(&c->mu);
        if (!fits) {
            skipped++;
            cg_cache_entry_release(e);
            continue;
        }
        loaded++;
    }
    c->ledger = (struct cg_ledger *)keep;
    if (skipped)
        CG_WARN("cache: %zu stored entries did not fit cache.max_bytes or were unreadable",
                skipped);
    CG_INFO("cache: loaded %zu entries (%zu bytes) from %s", loaded, c->bytes, db_path);
    op *o = calloc(1, sizeof *o);
    if (o) { /* expired rows go */
        o->kind = OP_PURGE;
        o->ts_ms = now;
        queue_op(c, o);
    }
    rc = 0;
out:
    sqlite3_finalize(s);
    sqlite3_close(db);
    return rc;
}

void cg_cache_free(cg_cache *c) {
    if (!c)
        return;
    cg_cache_entry *e = c->head;
    while (e) {
        cg_cache_entry *next = e->next;
        cg_cache_entry_release(e);
        e = next;
    }
    op *o = c->ops_head;
    while (o) {
        op *next = o->next;
        if (o->e)
            cg_cache_entry_release(o->e);
        free(o);
        o = next;
    }
    cg_cache_guard_free(&c->guard);
    free(c->slots);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->pmu);
    pthread_cond_destroy(&c->pcv);
    free(c);
}
