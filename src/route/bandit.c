/* bandit: Thompson sampling over tiers per intent (see bandit.h).
 *
 * Owns the shared arms (under one mutex) and, for every thread that
 * decides or records, that thread's request-path state, so that a routed
 * request takes no lock at all in the usual case:
 *   - outcomes: cg_bandit_record appends the outcome (arm, reward, cost,
 *     request id to remember) to the thread's ring of RING_SLOTS, a
 *     single-producer ring (the owner publishes with a release store of its
 *     head; a merger, holding the mutex, reads up to head and gives the
 *     slots back with a release store of the tail). The owner merges every
 *     ring into the shared arms when its ring is full or the coarse clock's
 *     second changed since its last merge (so outcomes reach the arms
 *     within about a second, and the ledger at the next write of changed
 *     arms, at most once a second as before); every reader of the shared state
 *     (cg_bandit_snapshot, cg_bandit_feedback, cg_bandit_flush, a thread
 *     refreshing its view) merges every ring first, so it sees every
 *     outcome recorded before it was called, exactly.
 *   - decisions: each thread samples from its own copy of the candidate
 *     arms' posteriors (alpha, beta, mean cost, and the Gamma samplers'
 *     constants), refreshed under the mutex when the shared arms changed
 *     since the copy (a version number bumped by every merge, rating and
 *     load; read without the lock). That is Thompson sampling with delayed
 *     feedback: a decision does not see the outcomes still in some thread's
 *     ring (at most RING_SLOTS per thread, or about a second's worth).
 *   - exploration: each thread counts its own decisions per intent and caps
 *     them by explore_max, so an intent's share of decisions away from the
 *     rules' tier stays within explore_max, give or take one decision per
 *     thread.
 * A thread keeps views of TL_INTENTS intents; others (and a thread whose
 * state could not be allocated) take the locked path, which works on the
 * shared arms directly as before: per-intent counters, arm sampler
 * constants recomputed at the first draw after the arm changed.
 * In instructions this costs about what the mutex did (the outcome's work
 * moved into the merge); what it saves is the two lock/unlock pairs, whose
 * locked instructions drain the store buffer, on every routed request.
 *
 * Sampling is cheap: Gamma variates come from Marsaglia and Tsang's method
 * with its squeeze (a logarithm only on the rare squeeze miss) on normals
 * from the polar method (two per logarithm), and no sample is drawn at all
 * when the exploration budget already forces the rules' tier. */
#include "route/bandit.h"

#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "store/ledger.h"

#define ARMS_MAX 1024
#define INTENTS_MAX 128
#define REMEMBER_SLOTS (1u << 16)

#define PERSIST_EVERY_MS 1000 /* dirty arms are written at most this often */
#define RING_SLOTS 64         /* outcomes a thread holds before it merges them; a power of two */
#define TL_INTENTS 64         /* intents a thread keeps its own view of */
#define ID_MAX 48             /* remembered request id, with its NUL */

typedef struct intent_stat {
    char name[64];
    int64_t decisions, explored;
    int arm[CG_TIERS_MAX]; /* arm index of each configured tier, -1 = not looked up yet */
} intent_stat;

/* Constants of a Gamma(shape) sampler (Marsaglia & Tsang): d = s - 1/3 and
 * c = 1 / sqrt(9 d) with s = shape, or shape + 1 and a final U^(1/shape)
 * when shape < 1. */
typedef struct gamma_k {
    double d, c, inv_shape;
    int boost;
} gamma_k;

typedef struct arm_gen {
    gamma_k a, b; /* for alpha and for beta */
} arm_gen;

typedef struct remembered {
    char id[ID_MAX];
    int arm;
    double implicit; /* reward already credited (replaced by a rating) */
    double penalty;  /* lambda x cost, also taken off a rating */
    int rated;
} remembered;

/* A random stream: xorshift64* and the polar method's second normal. */
typedef struct rng {
    uint64_t s;
    double spare;
    int has_spare;
} rng;

/* An outcome on its way from a thread's ring to the shared arms. */
typedef struct outcome {
    int arm;
    int remember;
    double r, pen;
    int64_t cost_nano;
    char id[ID_MAX];
} outcome;

/* A thread's copy of one arm, as of version `version` of the shared arms. */
typedef struct tier_view {
    int arm;          /* -2 not looked up yet, -1 none (arms full) */
    uint32_t version; /* 0: never copied */
    double mean_cost_usd;
    arm_gen gen;
} tier_view;

/* A thread's state for one intent. */
typedef struct tl_intent {
    char name[64];
    int64_t decisions, explored; /* this thread's */
    tier_view view[CG_TIERS_MAX];
} tl_intent;

/* One thread's request-path state (owned by the bandit, used by its owner
 * thread; only ring, head and tail are touched by others, see above). */
typedef struct tl_state {
    struct tl_state *next;
    pthread_t owner;
    rng rng;
    long merged_sec; /* coarse clock second of the owner's last merge */
    size_t n_intents;
    tl_intent intents[TL_INTENTS];
    _Atomic uint32_t head, tail;
    outcome ring[RING_SLOTS];
} tl_state;

struct cg_bandit {
    pthread_mutex_t mu;
    const cg_tiering_cfg *t;
    struct cg_ledger *ledger;
    uint64_t serial;          /* tells this bandit from a freed one at the same address */
    _Atomic uint32_t version; /* bumped whenever the arms change (threads' views follow) */
    rng rng;                  /* the locked path's, and the seeds of the threads' */
    tl_state *threads;        /* every thread's state, newest first */
    cg_bandit_arm arms[ARMS_MAX];
    arm_gen gen[ARMS_MAX];             /* follows arms[i].alpha and .beta ... */
    unsigned char gen_stale[ARMS_MAX]; /* ... unless set: recomputed before a draw */
    size_t n_arms;
    intent_stat intents[INTENTS_MAX];
    size_t n_intents;
    remembered *mem; /* REMEMBER_SLOTS, direct-mapped by id hash */
    unsigned char dirty[ARMS_MAX];
    int64_t last_persist_ms;
    /* the ledger writer thread's prepared upsert of arms, kept between
     * writes (preparing it cost more than writing the arms); touched only
     * on that thread, finalized by the write cg_bandit_flush sends */
    sqlite3_stmt *save_st;
};

/* The coarse clock (a few ms resolution) is plenty for "once a second" and
 * several times cheaper to read. */
static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t next_u64(rng *g) {
    uint64_t x = g->s; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    g->s = x;
    return x * UINT64_C(2685821657736338717);
}

static double uniform01(rng *g) {
    return ((double)(next_u64(g) >> 11) + 0.5) / 9007199254740992.0; /* (0, 1) */
}

/* Standard normal, Marsaglia's polar method: two per logarithm, the second
 * kept for the next call. */
static double normal(rng *g) {
    if (g->has_spare) {
        g->has_spare = 0;
        return g->spare;
    }
    double u, v, q;
    do {
        u = 2.0 * uniform01(g) - 1.0;
        v = 2.0 * uniform01(g) - 1.0;
        q = u * u + v * v;
    } while (q >= 1.0 || q == 0.0);
    double f = sqrt(-2.0 * log(q) / q);
    g->spare = v * f;
    g->has_spare = 1;
    return u * f;
}

static void gamma_prepare(gamma_k *k, double shape) {
    k->boost = shape < 1.0;
    k->inv_shape = 1.0 / shape;
    k->d = (k->boost ? shape + 1.0 : shape) - 1.0 / 3.0;
    k->c = 1.0 / sqrt(9.0 * k->d);
}

/* Marsaglia & Tsang (2000), with the squeeze u < 1 - 0.0331 x^4 that accepts
 * most draws before the logarithmic test; shape < 1 by the boost
 * Gamma(a) = Gamma(a + 1) U^(1/a). */
static double gamma_sample(rng *g, const gamma_k *k) {
    for (;;) {
        double x = normal(g), v = 1.0 + k->c * x;
        if (v <= 0)
            continue;
        v = v * v * v;
        double u = uniform01(g), x2 = x * x;
        if (u < 1.0 - 0.0331 * x2 * x2 || log(u) < 0.5 * x2 + k->d - k->d * v + k->d * log(v)) {
            double y = k->d * v;
            return k->boost ? y * pow(uniform01(g), k->inv_shape) : y;
        }
    }
}

/* A Beta(alpha, beta) draw from the samplers of g. */
static double beta_draw(rng *r, const arm_gen *g) {
    double x = gamma_sample(r, &g->a), y = gamma_sample(r, &g->b);
    return x + y > 0 ? x / (x + y) : 0.5;
}

/* A Beta(alpha, beta) draw for arm i (locked path). */
static double beta_sample(cg_bandit *b, size_t i) {
    arm_gen *g = &b->gen[i];
    if (b->gen_stale[i]) {
        gamma_prepare(&g->a, b->arms[i].alpha);
        gamma_prepare(&g->b, b->arms[i].beta);
        b->gen_stale[i] = 0;
    }
    return beta_draw(&b->rng, g);
}

/* Called whenever arm i's alpha or beta changes (with the mutex held):
 * the threads' views of it refresh at their next decision. */
static void arm_changed(cg_bandit *b, size_t i) {
    b->gen_stale[i] = 1;
    atomic_store_explicit(&b->version, atomic_load_explicit(&b->version, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

cg_bandit *cg_bandit_new(const cg_tiering_cfg *t, uint64_t seed) {
    cg_bandit *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->mem = calloc(REMEMBER_SLOTS, sizeof *b->mem);
    if (!b->mem) {
        free(b);
        return NULL;
    }
    pthread_mutex_init(&b->mu, NULL);
    b->t = t;
    if (!seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)(uintptr_t)b;
    }
    b->rng.s = seed | 1;
    static atomic_uint_fast64_t serials;
    b->serial = atomic_fetch_add(&serials, 1) + 1;
    atomic_init(&b->version, 1);
    return b;
}

void cg_bandit_free(cg_bandit *b) {
    if (!b)
        return;
    pthread_mutex_destroy(&b->mu);
    for (tl_state *s = b->threads, *next; s; s = next) {
        next = s->next;
        free(s);
    }
    sqlite3_finalize(b->save_st); /* only when no flush ran (NULL-safe) */
    free(b->mem);
    free(b);
}

void cg_bandit_set_ledger(cg_bandit *b, struct cg_ledger *l) {
    b->ledger = l;
}

/* Arm of (intent, tier name); created with the uniform prior Beta(1, 1). -1 when full. */
static int arm_of(cg_bandit *b, const char *intent, const char *tier) {
    for (size_t i = 0; i < b->n_arms; i++)
        if (strcmp(b->arms[i].intent, intent) == 0 && strcmp(b->arms[i].tier, tier) == 0)
            return (int)i;
    if (b->n_arms == ARMS_MAX)
        return -1;
    cg_bandit_arm *a = &b->arms[b->n_arms];
    memset(a, 0, sizeof *a);
    snprintf(a->intent, sizeof a->intent, "%s", intent);
    snprintf(a->tier, sizeof a->tier, "%s", tier);
    a->alpha = a->beta = 1.0;
    arm_changed(b, b->n_arms);
    return (int)b->n_arms++;
}

static intent_stat *intent_find(cg_bandit *b, const char *intent) {
    for (size_t i = 0; i < b->n_intents; i++)
        if (b->intents[i].name[0] == intent[0] && strcmp(b->intents[i].name, intent) == 0)
            return &b->intents[i];
    return NULL;
}

static intent_stat *intent_of(cg_bandit *b, const char *intent) {
    intent_stat *found = intent_find(b, intent);
    if (found || b->n_intents == INTENTS_MAX)
        return found;
    intent_stat *s = &b->intents[b->n_intents++];
    snprintf(s->name, sizeof s->name, "%s", intent);
    for (size_t t = 0; t < CG_TIERS_MAX; t++)
        s->arm[t] = -1;
    return s;
}

/* The arm of (intent, configured tier), through the intent's cache when
 * there is one. */
static int arm_for(cg_bandit *b, intent_stat *st, const char *intent, int tier) {
    if (st && st->arm[tier] >= 0)
        return st->arm[tier];
    int ai = arm_of(b, intent, b->t->tiers[tier].name);
    if (st && ai >= 0)
        st->arm[tier] = ai;
    return ai;
}

static const char *intent_key(const char *intent) {
    return intent && intent[0] ? intent : "default";
}

/* cg_bandit_choose on the shared arms, under the mutex (intent already keyed). */
static int choose_locked(cg_bandit *b, const char *intent, const int *cand, int n, int *explored) {
    pthread_mutex_lock(&b->mu);
    intent_stat *st = intent_of(b, intent);
    int best = cand[0];
    double best_score = -INFINITY;
    /* with the exploration budget spent the rules' tier is taken whatever the
     * samples say: then none is drawn */
    int may_explore =
        st && (double)(st->explored + 1) <= b->t->explore_max * (double)(st->decisions + 1);
    for (int i = 0; i < n; i++) {
        int ai = arm_for(b, st, intent, cand[i]); /* every candidate has an arm (reports) */
        if (ai < 0 || !may_explore)
            continue;
        const cg_bandit_arm *a = &b->arms[ai];
        double mean_cost_usd = a->n ? (double)a->cost_nano / (double)a->n / 1e9 : 0.0;
        double score = beta_sample(b, (size_t)ai) - b->t->lambda_per_usd * mean_cost_usd;
        if (score > best_score) {
            best_score = score;
            best = cand[i];
        }
    }
    if (st) {
        /* bounded exploration: away from the rules only within the budget */
        if (best != cand[0] &&
            (double)(st->explored + 1) > b->t->explore_max * (double)(st->decisions + 1))
            best = cand[0];
        st->decisions++;
        if (best != cand[0]) {
            st->explored++;
            *explored = 1;
        }
    } else {
        best = cand[0];
    }
    pthread_mutex_unlock(&b->mu);
    return best;
}

/* --- the threads' request-path state --------------------------------------- */

static void merge_all(cg_bandit *b);

/* The calling thread's state for b, created on its first call; NULL when it
 * cannot be allocated (the caller then takes the locked path). */
static tl_state *tl_of(cg_bandit *b) {
    static _Thread_local struct {
        uint64_t serial;
        tl_state *s;
    } cur;
    if (cur.serial == b->serial)
        return cur.s;
    pthread_t self = pthread_self();
    pthread_mutex_lock(&b->mu);
    tl_state *s = b->threads;
    while (s && !pthread_equal(s->owner, self)) /* a thread back to this bandit */
        s = s->next;
    if (!s && (s = calloc(1, sizeof *s)) != NULL) {
        s->owner = self;
        s->rng.s = next_u64(&b->rng) | 1;
        atomic_init(&s->head, 0);
        atomic_init(&s->tail, 0);
        s->next = b->threads;
        b->threads = s;
    }
    pthread_mutex_unlock(&b->mu);
    if (s) {
        cur.serial = b->serial;
        cur.s = s;
    }
    return s;
}

/* The thread's entry for `intent` (added on first use: every view not
 * looked up yet); NULL when the thread keeps TL_INTENTS intents already. */
static tl_intent *tl_intent_of(tl_state *s, const char *intent) {
    for (size_t i = 0; i < s->n_intents; i++)
        if (s->intents[i].name[0] == intent[0] && strcmp(s->intents[i].name, intent) == 0)
            return &s->intents[i];
    if (s->n_intents == TL_INTENTS)
        return NULL;
    tl_intent *e = &s->intents[s->n_intents++];
    snprintf(e->name, sizeof e->name, "%s", intent);
    for (size_t t = 0; t < CG_TIERS_MAX; t++)
        e->view[t] = (tier_view){.arm = -2};
    return e;
}

/* With the mutex held: the arm behind each of the views of cand[0..n),
 * looked up (created) where not yet, and with `copy` their posteriors
 * copied as of the current version. */
static void views_fill(cg_bandit *b, tl_intent *e, const int *cand, int n, int copy) {
    for (int i = 0; i < n; i++)
        if (e->view[cand[i]].arm == -2)
            e->view[cand[i]].arm = arm_of(b, e->name, b->t->tiers[cand[i]].name);
    uint32_t version = atomic_load_explicit(&b->version, memory_order_relaxed); /* after arm_of */
    for (int i = 0; i < n; i++) {
        tier_view *v = &e->view[cand[i]];
        if (!copy || v->arm < 0)
            continue;
        const cg_bandit_arm *a = &b->arms[v->arm];
        v->mean_cost_usd = a->n ? (double)a->cost_nano / (double)a->n / 1e9 : 0.0;
        gamma_prepare(&v->gen.a, a->alpha);
        gamma_prepare(&v->gen.b, a->beta);
        v->version = version;
    }
}

int cg_bandit_choose(cg_bandit *b, const char *intent, const int *cand, int n, int *explored) {
    *explored = 0;
    if (n <= 1)
        return n == 1 ? cand[0] : -1;
    intent = intent_key(intent);
    tl_state *s = tl_of(b);
    tl_intent *e = s ? tl_intent_of(s, intent) : NULL;
    if (!e)
        return choose_locked(b, intent, cand, n, explored);
    const cg_tiering_cfg *t = b->t;
    /* with the exploration budget spent the rules' tier is taken whatever the
     * samples say: then none is drawn (and no view needs to be current) */
    int may_explore = (double)(e->explored + 1) <= t->explore_max * (double)(e->decisions + 1);
    uint32_t version = atomic_load_explicit(&b->version, memory_order_relaxed);
    int stale = 0;
    for (int i = 0; i < n; i++) {
        const tier_view *v = &e->view[cand[i]];
        stale |= v->arm == -2 || (may_explore && v->arm >= 0 && v->version != version);
    }
    if (stale) { /* every candidate has an arm (reports) */
        pthread_mutex_lock(&b->mu);
        if (may_explore)
            merge_all(b); /* the outcomes still in rings: the copy is then current */
        views_fill(b, e, cand, n, may_explore);
        pthread_mutex_unlock(&b->mu);
    }
    int best = cand[0];
    if (may_explore) {
        double best_score = -INFINITY;
        for (int i = 0; i < n; i++) {
            const tier_view *v = &e->view[cand[i]];
            if (v->arm < 0)
                continue;
            double score = beta_draw(&s->rng, &v->gen) - t->lambda_per_usd * v->mean_cost_usd;
            if (score > best_score) {
                best_score = score;
                best = cand[i];
            }
        }
    }
    e->decisions++;
    if (best != cand[0]) { /* only when may_explore: within the budget */
        e->explored++;
        *explored = 1;
    }
    return best;
}

/* --- persistence ---------------------------------------------------------- */

typedef struct arm_batch {
    cg_bandit *b;
    int last; /* cg_bandit_flush's: the statement is finalized after it */
    size_t n;
    cg_bandit_arm arms[];
} arm_batch;

/* The upsert of one arm, prepared once on the writer thread's db (the
 * table is created when the statement finds none). NULL on failure. */
static sqlite3_stmt *save_statement(sqlite3 *db, cg_bandit *b) {
    static const char *const ddl =
        "CREATE TABLE IF NOT EXISTS bandit_arms (intent TEXT NOT NULL, tier TEXT NOT NULL, "
        "alpha REAL NOT NULL, beta REAL NOT NULL, n INTEGER NOT NULL, cost_nano INTEGER NOT "
        "NULL, thumbs_up INTEGER NOT NULL DEFAULT 0, thumbs_down INTEGER NOT NULL DEFAULT 0, "
        "PRIMARY KEY (intent, tier))";
    /* every column is written, so a replace equals an upsert, and this short
     * statement is cheap to prepare */
    static const char *const ins = "INSERT OR REPLACE INTO bandit_arms VALUES (?,?,?,?,?,?,?,?)";
    if (b->save_st && sqlite3_db_handle(b->save_st) == db)
        return b->save_st;
    sqlite3_finalize(b->save_st);
    b->save_st = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(db, ins, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK &&
        (sqlite3_exec(db, ddl, NULL, NULL, NULL) != SQLITE_OK ||
         sqlite3_prepare_v3(db, ins, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)) {
        sqlite3_finalize(st);
        return NULL;
    }
    b->save_st = st;
    return st;
}

/* Runs on the ledger's writer thread (cg_ledger_run). */
static int save_arms(sqlite3 *db, void *arg) {
    const arm_batch *batch = arg;
    cg_bandit *b = batch->b;
    int rc = -1;
    sqlite3_stmt *st = batch->n ? save_statement(db, b) : NULL;
    if (batch->n && !st)
        goto done;
    for (size_t i = 0; i < batch->n; i++) {
        const cg_bandit_arm *a = &batch->arms[i];
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, a->intent, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, a->tier, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 3, a->alpha);
        sqlite3_bind_double(st, 4, a->beta);
        sqlite3_bind_int64(st, 5, a->n);
        sqlite3_bind_int64(st, 6, a->cost_nano);
        sqlite3_bind_int64(st, 7, a->thumbs_up);
        sqlite3_bind_int64(st, 8, a->thumbs_down);
        if (sqlite3_step(st) != SQLITE_DONE)
            goto done;
    }
    rc = 0;
done:
    if (b->save_st)
        sqlite3_reset(b->save_st); /* no statement left running between writes */
    if (batch->last || rc != 0) {
        sqlite3_finalize(b->save_st);
        b->save_st = NULL;
    }
    return rc;
}

static void saved(void *arg, int ok) {
    if (!ok)
        CG_WARN("bandit: could not persist its arms");
    free(arg);
}

/* Called with the mutex held: writes every dirty arm through the ledger's
 * writer thread when `force` or PERSIST_EVERY_MS have passed since the last
 * write (one statement per arm in one of the writer's transactions). `last`
 * (cg_bandit_flush) also sends a write with no dirty arm: the writer thread
 * then finalizes its statement before the ledger closes. */
static void persist(cg_bandit *b, int force, int last) {
    if (!b->ledger)
        return;
    int64_t now = mono_ms();
    if (!force && now - b->last_persist_ms < PERSIST_EVERY_MS)
        return;
    size_t n = 0;
    for (size_t i = 0; i < b->n_arms; i++)
        n += b->dirty[i];
    if (!n && !last)
        return;
    arm_batch *batch = malloc(sizeof *batch + n * sizeof batch->arms[0]);
    if (!batch)
        return;
    batch->b = b;
    batch->last = last;
    batch->n = 0;
    for (size_t i = 0; i < b->n_arms; i++)
        if (b->dirty[i]) {
            batch->arms[batch->n++] = b->arms[i];
            b->dirty[i] = 0;
        }
    b->last_persist_ms = now;
    if (cg_ledger_run(b->ledger, save_arms, batch, saved, batch) != 0)
        free(batch);
}

void cg_bandit_flush(cg_bandit *b) {
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    merge_all(b);
    persist(b, 1, 1);
    pthread_mutex_unlock(&b->mu);
}

int cg_bandit_load(cg_bandit *b, const char *db_path, char *err, size_t errlen) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        rc = 0; /* no ledger yet: nothing learned yet */
        goto done;
    }
    if (sqlite3_prepare_v2(db,
                           "SELECT intent, tier, alpha, beta, n, cost_nano, thumbs_up, "
                           "thumbs_down FROM bandit_arms",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = 0; /* no table: nothing learned yet */
        goto done;
    }
    pthread_mutex_lock(&b->mu);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *in = (const char *)sqlite3_column_text(st, 0);
        const char *tn = (const char *)sqlite3_column_text(st, 1);
        if (!in || !tn)
            continue;
        int ai = arm_of(b, in, tn);
        if (ai < 0)
            break;
        cg_bandit_arm *a = &b->arms[ai];
        a->alpha = sqlite3_column_double(st, 2);
        a->beta = sqlite3_column_double(st, 3);
        if (!(a->alpha >= 1e-6) || !(a->beta >= 1e-6))
            a->alpha = a->beta = 1.0;
        arm_changed(b, (size_t)ai);
        a->n = sqlite3_column_int64(st, 4);
        a->cost_nano = sqlite3_column_int64(st, 5);
        a->thumbs_up = sqlite3_column_int64(st, 6);
        a->thumbs_down = sqlite3_column_int64(st, 7);
    }
    pthread_mutex_unlock(&b->mu);
    if (step != SQLITE_DONE && step != SQLITE_ROW) {
        snprintf(err, errlen, "%s: reading bandit_arms: %s", db_path, sqlite3_errmsg(db));
        goto done;
    }
    rc = 0;
done:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

/* --- outcomes ----------------------------------------------------------------- */

/* Hash of a request id, 8 bytes at a time (ids are ~30 characters). */
/* w as if loaded from memory little-endian (the tail below needs its byte order). */
static uint64_t le64(uint64_t w) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return __builtin_bswap64(w);
#else
    return w;
#endif
}

static uint32_t id_hash(const char *s) {
    const char *start = s;
    size_t n = strlen(s);
    uint64_t h = 0x9E3779B97F4A7C15u ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDu;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    if (n && s - start >= 8) { /* the last n < 8 bytes: the end of the word before s + n */
        memcpy(&w, s + n - 8, 8);
        w = le64(w) >> (8 * (8 - n));
    } else {
        for (size_t i = 0; i < n; i++)
            w |= (uint64_t)(unsigned char)s[i] << (8 * i);
    }
    h = (h ^ w) * 0xC4CEB9FE1A85EC53u;
    return (uint32_t)(h ^ (h >> 29));
}

static double clamp01(double v) {
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

/* With the mutex held: outcome o into the shared arms (and the map of
 * remembered requests). */
static void apply(cg_bandit *b, const outcome *o) {
    cg_bandit_arm *a = &b->arms[o->arm];
    a->alpha += o->r;
    a->beta += 1.0 - o->r;
    a->n++;
    a->cost_nano += o->cost_nano;
    arm_changed(b, (size_t)o->arm);
    b->dirty[o->arm] = 1;
    if (o->remember) {
        remembered *m = &b->mem[id_hash(o->id) & (REMEMBER_SLOTS - 1)];
        memcpy(m->id, o->id, sizeof m->id);
        m->arm = o->arm;
        m->implicit = o->r;
        m->penalty = o->pen;
        m->rated = 0;
    }
}

/* With the mutex held: every thread's ring into the shared arms (the one
 * consumer at a time the rings allow), then the periodic write of the arms
 * when anything was merged. */
static void merge_all(cg_bandit *b) {
    int any = 0;
    for (tl_state *s = b->threads; s; s = s->next) {
        uint32_t head = atomic_load_explicit(&s->head, memory_order_acquire);
        uint32_t tail = atomic_load_explicit(&s->tail, memory_order_relaxed);
        if (tail == head)
            continue;
        for (; tail != head; tail++)
            apply(b, &s->ring[tail & (RING_SLOTS - 1)]);
        atomic_store_explicit(&s->tail, tail, memory_order_release);
        any = 1;
    }
    if (any)
        persist(b, 0, 0);
}

/* An outcome (arm known) on the locked path: straight into the arms. */
static void record_locked(cg_bandit *b, const outcome *o) {
    pthread_mutex_lock(&b->mu);
    apply(b, o);
    persist(b, 0, 0);
    pthread_mutex_unlock(&b->mu);
}

/* The coarse clock's second (a few ms resolution, cheap to read). */
static long coarse_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (long)ts.tv_sec;
}

void cg_bandit_record(cg_bandit *b, const char *request_id, const char *intent, int tier,
                      double good, int64_t cost_nano, int remember) {
    if (tier < 0 || (size_t)tier >= b->t->n_tiers)
        return;
    intent = intent_key(intent);
    double pen = b->t->lambda_per_usd * (double)cost_nano / 1e9;
    tl_state *s = tl_of(b);
    tl_intent *e = s ? tl_intent_of(s, intent) : NULL;
    int ai;
    if (e && e->view[tier].arm != -2) {
        ai = e->view[tier].arm;
    } else {
        pthread_mutex_lock(&b->mu);
        if (e)
            views_fill(b, e, &tier, 1, 0);
        ai = e ? e->view[tier].arm : arm_for(b, intent_find(b, intent), intent, tier);
        pthread_mutex_unlock(&b->mu);
    }
    if (ai < 0)
        return;
    uint32_t head = s ? atomic_load_explicit(&s->head, memory_order_relaxed) : 0;
    outcome tmp, *o = s ? &s->ring[head & (RING_SLOTS - 1)] : &tmp;
    o->arm = ai;
    o->r = clamp01(clamp01(good) - pen);
    o->pen = pen;
    o->cost_nano = cost_nano;
    o->remember = remember && request_id && request_id[0];
    if (o->remember) {
        size_t idn = strnlen(request_id, sizeof o->id - 1);
        memcpy(o->id, request_id, idn);
        o->id[idn] = '\0';
    }
    if (!s) {
        record_locked(b, o);
        return;
    }
    atomic_store_explicit(&s->head, head + 1, memory_order_release);
    long sec = coarse_sec();
    if (head + 1 - atomic_load_explicit(&s->tail, memory_order_acquire) >= RING_SLOTS ||
        sec != s->merged_sec) {
        pthread_mutex_lock(&b->mu);
        merge_all(b);
        pthread_mutex_unlock(&b->mu);
        s->merged_sec = sec;
    }
}

int cg_bandit_feedback(cg_bandit *b, const char *request_id, int rating) {
    int rc = -1;
    pthread_mutex_lock(&b->mu);
    merge_all(b); /* the request's outcome may still be in a ring */
    remembered *m = &b->mem[id_hash(request_id) & (REMEMBER_SLOTS - 1)];
    if (m->id[0] && strcmp(m->id, request_id) == 0 && !m->rated) {
        cg_bandit_arm *a = &b->arms[m->arm];
        /* replace the implicit reward credited at settle by the rating */
        double target = clamp01((rating > 0 ? 1.0 : 0.0) - m->penalty);
        a->alpha += target - m->implicit;
        a->beta += m->implicit - target;
        if (a->alpha < 1e-6)
            a->alpha = 1e-6;
        if (a->beta < 1e-6)
            a->beta = 1e-6;
        arm_changed(b, (size_t)m->arm);
        if (rating > 0)
            a->thumbs_up++;
        else
            a->thumbs_down++;
        m->rated = 1;
        b->dirty[m->arm] = 1;
        persist(b, 1, 0); /* ratings are rare: written at once */
        rc = 0;
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

size_t cg_bandit_snapshot(cg_bandit *b, cg_bandit_arm *out, size_t cap) {
    pthread_mutex_lock(&b->mu);
    merge_all(b);
    size_t n = b->n_arms;
    memcpy(out, b->arms, (n < cap ? n : cap) * sizeof *out);
    pthread_mutex_unlock(&b->mu);
    return n;
}
