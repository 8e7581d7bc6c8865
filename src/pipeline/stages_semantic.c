/* stages_semantic: the semantic cache on the request path (see
 * stages_semantic.h and docs/semantic-cache.md, "On the request path").
 *
 * Owns the `semantic` stage, between the exact lookup and cache_hit. It runs
 * for an exact miss whose answer may be stored (the exact cache's policy:
 * TTL > 0, no no-store, temperature within the ceiling) and that is
 * eligible (cache/semantic.h: one last user turn of text, no tools):
 *   1. partition key: the exact key's material minus that turn's text, plus
 *      segment and the x-costgate-permissions context;
 *   2. threshold: the configured floor, raised (never lowered) by
 *      x-costgate-semantic-threshold;
 *   3. embedding: the built-in embedder on the pool, or an HTTP call to the
 *      configured /v1/embeddings on the loop (upstream client) whose reply is
 *      parsed on the pool;
 *   4. search + accept decision (cache/semantic.c) on the pool; a full
 *      queue is a miss, never a wait;
 *   5. back on the loop: the matched exact entry, if it is still there and
 *      young enough for this request's TTL, is served through the exact
 *      cache's hit path (cg_stage_cache_serve), its audit row queued.
 * The store stage hands every entry it writes to cg_stage_semantic_stored:
 * its vector (the lookup's, or embedded then) is added on the pool. The
 * HTTP embedder's tokens are billed once, on the embedding axis of the
 * request's row (hit or miss); the built-in embedder costs 0 there.
 */
#include "pipeline/stages_semantic.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cache/exact.h"
#include "cache/key.h"
#include "cache/policy.h"
#include "cache/semantic.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/pool.h"
#include "cost/meter.h"
#include "embed/embed.h"
#include "http/feedback.h"
#include "http/hserve.h"
#include "http/server.h"
#include "http/upstream.h"
#include "pipeline/engine.h"
#include "provider/provider.h"
#include "store/ledger_schema.h"

#define EMBED_BODY_MAX (64u << 10) /* the embeddings request */
#define EMBED_RESP_MAX (8u << 20)  /* its response */
#define EMBED_DIM_MAX 65536        /* CG_VINDEX_MAX_DIM */
#define INDEX_NICE 10              /* the indexing thread yields the CPU to loops and lookups */
#define LAT_BUCKET_US 50
#define LAT_BUCKETS 2001 /* 0..100 ms, then one for longer */

typedef struct cg_semrt {
    const cg_semantic_cfg *cfg;
    cg_gateway *gw;
    cg_embedder *emb; /* built-in; NULL with the HTTP embedder */
    cg_pool *pool;    /* lookups: embedding, search, decision (latency-critical) */
    cg_pool *ipool;   /* indexing: one thread at a lower priority (INDEX_NICE) */
    cg_semantic *idx;
    char *api_key; /* HTTP embedder key from its env var (never logged) */
    cg_price price;
    int has_price;
    char embedder_id[CG_SEMANTIC_ID_MAX];
    int started;
    _Atomic uint64_t lookups, hits, misses, rejected, skipped, stale, embed_errors, stored,
        store_skipped;
    /* how long lookups keep a request (stage start to the decision back on
     * its loop), in LAT_BUCKET_US buckets; the last one is "longer" */
    _Atomic uint32_t lat[LAT_BUCKETS];
} cg_semrt;

typedef struct cg_sem_req {
    cg_semrt *rt;
    uint8_t part[32];
    char text[CG_SEMANTIC_TEXT_MAX + 1]; /* the last user turn */
    size_t len;
    double threshold;
    int search; /* 0: cache-control no-cache: embed for the store only */
    float *vec;
    int dim, have_vec;
    int64_t t0_us;
    /* the HTTP embedder's call */
    cg_up_call *call;
    cg_up_headers hdrs;
    cg_buf body, resp;
    long status;
    int64_t emb_tokens, emb_nano;
    int emb_estimated;
    int billed; /* the attempt whose row carries the embedding (0 = none yet) */
    /* the lookup */
    int looked;
    cg_semantic_match m;
    int hit;
    int index_pending; /* the store wrote index_key: index it once the request is done */
    uint8_t index_key[32];
    float similarity; /* the served candidate's, or the nearest vector's on a miss */
    int has_sim;
    char match_hex[65];
    char note[160];
} cg_sem_req;

static void add_note(cg_sem_req *q, const char *fmt, const char *arg) {
    size_t n = strlen(q->note);
    if (n + 2 >= sizeof q->note)
        return;
    if (n)
        q->note[n++] = ' ';
    snprintf(q->note + n, sizeof q->note - n, fmt, arg);
}

static const char *hdr(cg_req *r, const char *name) {
    return r->hreq ? cg_hreq_header(r->hreq, name) : NULL;
}

static void post_to_worker(void *target, void (*fn)(void *), void *arg) {
    cg_worker_post(target, fn, arg);
}

/* --- lookup ------------------------------------------------------------------- */

/* The HTTP embedder's vector from its (OpenAI-shaped) reply. 0 / -1. */
static int parse_vector(cg_sem_req *q) {
    json_t *j = json_loadb(q->resp.data, q->resp.len, 0, NULL);
    const json_t *v = json_object_get(json_array_get(json_object_get(j, "data"), 0), "embedding");
    size_t n = json_array_size(v);
    int want = q->rt->cfg->dimensions, rc = -1;
    if (!json_is_array(v) || n == 0 || n > EMBED_DIM_MAX || (want > 0 && (size_t)want != n))
        goto out;
    q->vec = malloc(n * sizeof *q->vec);
    if (!q->vec)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const json_t *x = json_array_get(v, i);
        if (!json_is_number(x) || !isfinite(json_number_value(x)))
            goto out;
        q->vec[i] = (float)json_number_value(x);
    }
    q->dim = (int)n;
    q->have_vec = 1;
    rc = 0;
out:
    if (rc) {
        free(q->vec);
        q->vec = NULL;
    }
    json_decref(j);
    return rc;
}

/* On a pool thread: embed (or parse the HTTP reply), search, decide. The
 * loop does not touch r meanwhile. */
static void lookup_work(void *arg) {
    cg_req *r = arg;
    cg_sem_req *q = r->sem;
    cg_semrt *rt = q->rt;
    if (!q->have_vec) {
        if (rt->emb) {
            q->vec = malloc(CG_EMBED_DIM * sizeof *q->vec);
            if (q->vec && cg_embed(rt->emb, q->text, q->len, q->vec) == 0) {
                q->dim = CG_EMBED_DIM;
                q->have_vec = 1;
            }
        } else if (q->resp.len) {
            parse_vector(q);
        }
    }
    if (q->have_vec && q->search &&
        cg_semantic_lookup(rt->idx, q->part, q->vec, q->dim, q->text, q->len, q->threshold,
                           rt->cfg->gate_rules, &q->m) == 0)
        q->looked = 1;
}

typedef struct touch_job {
    cg_semantic *idx;
    uint8_t part[32];
    uint64_t id;
} touch_job;

/* Indexing runs on ipool's thread, at a lower priority than the loops and
 * the lookups (a nice value can be raised without privileges). */
static void lower_priority(void) {
    static _Thread_local int done;
    if (!done) {
        done = 1;
        if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), INDEX_NICE) != 0)
            CG_DEBUG("semantic: indexing thread keeps its priority");
    }
}

static void touch_work(void *arg) {
    touch_job *t = arg;
    lower_priority();
    cg_semantic_touch(t->idx, t->part, t->id);
}

/* The served hit's row in semantic_hits (for `costgate cache audit
 * --semantic`): the two query texts, capped, and what matched. */
typedef struct audit_row {
    char request_id[48], tenant[64], segment[64], model[128], match_key[65], match_src[48];
    int64_t ts_ms;
    double similarity, threshold;
    char asked[CG_LEDGER_SEMHIT_TEXT_MAX + 1], cached[CG_LEDGER_SEMHIT_TEXT_MAX + 1];
} audit_row;

/* Copies at most CG_LEDGER_SEMHIT_TEXT_MAX bytes, cut back to a UTF-8
 * boundary. */
static void cap_text(char *dst, const char *src, size_t len) {
    size_t n = len < CG_LEDGER_SEMHIT_TEXT_MAX ? len : CG_LEDGER_SEMHIT_TEXT_MAX;
    if (n < len)
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int audit_run(sqlite3 *db, void *arg) {
    audit_row *a = arg;
    sqlite3_stmt *s = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(
            db,
            "INSERT OR REPLACE INTO semantic_hits (request_id, ts_ms, tenant, segment,"
            " model, similarity, threshold, match_key, match_src, asked, cached)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            -1, &s, NULL) != SQLITE_OK)
        goto out;
    int i = 1;
    sqlite3_bind_text(s, i++, a->request_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, i++, a->ts_ms);
    sqlite3_bind_text(s, i++, a->tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, i++, a->segment, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, i++, a->model, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, i++, a->similarity);
    sqlite3_bind_double(s, i++, a->threshold);
    sqlite3_bind_text(s, i++, a->match_key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, i++, a->match_src, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, i++, a->asked, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, i++, a->cached, -1, SQLITE_STATIC);
    rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -1;
out:
    if (rc)
        CG_ERROR("semantic: cannot record the audit row of %s: %s", a->request_id,
                 sqlite3_errmsg(db));
    sqlite3_finalize(s);
    return rc;
}

static void audit_done(void *arg, int ok) {
    (void)ok;
    free(arg);
}

static void queue_audit(cg_req *r, const cg_cache_entry *e) {
    cg_sem_req *q = r->sem;
    audit_row *a = calloc(1, sizeof *a);
    if (!a)
        return;
    snprintf(a->request_id, sizeof a->request_id, "%s", r->id);
    snprintf(a->tenant, sizeof a->tenant, "%s", r->tenant);
    snprintf(a->segment, sizeof a->segment, "%s", r->segment);
    snprintf(a->model, sizeof a->model, "%s", e->model[0] ? e->model : r->model);
    snprintf(a->match_key, sizeof a->match_key, "%s", e->key_hex);
    snprintf(a->match_src, sizeof a->match_src, "%s", e->writer_id);
    a->ts_ms = r->ts_ms;
    a->similarity = q->similarity;
    a->threshold = q->threshold;
    cap_text(a->asked, q->text, q->len);
    cap_text(a->cached, q->m.text, q->m.text_len);
    if (cg_ledger_run(r->gw->ledger, audit_run, a, audit_done, a) != 0)
        free(a);
}

/* Whether r may be served entry e: the partition already guarantees the
 * scope; this checks it again on the entry itself, and that the entry is
 * not older than this request's own TTL allows. */
static int servable(cg_req *r, const cg_cache_entry *e) {
    const cg_cache_tenant_cfg *tc = cg_cache_tenant(&r->gw->cfg->cache, r->tenant);
    const char *group = tc ? tc->share_group : "";
    int scope_ok =
        group[0] ? strcmp(e->share_group, group) == 0 : strcmp(e->tenant, r->tenant) == 0;
    long long age_ms = cg_cache_now(r->gw->cache) - e->created_ms;
    return scope_ok && e->api == (int)r->api && age_ms <= r->xc.ttl_s * 1000;
}

/* Back on the request's loop. */
static void lookup_done(void *arg) {
    cg_req *r = arg;
    cg_sem_req *q = r->sem;
    cg_semrt *rt = q->rt;
    if (q->looked) {
        int64_t us = cg_mono_us() - q->t0_us, b = us / LAT_BUCKET_US;
        atomic_fetch_add(&rt->lat[b < LAT_BUCKETS - 1 ? b : LAT_BUCKETS - 1], 1);
        atomic_fetch_add(&rt->lookups, 1);
        if (q->m.have_best) {
            q->similarity = q->m.best;
            q->has_sim = 1;
        }
    }
    if (q->looked && q->m.found) {
        cg_cache_entry *e = cg_cache_fetch(r->gw->cache, q->m.xkey);
        if (e && servable(r, e)) {
            q->hit = 1;
            q->similarity = q->m.similarity;
            q->has_sim = 1;
            memcpy(q->match_hex, e->key_hex, sizeof q->match_hex);
            atomic_fetch_add(&rt->hits, 1);
            queue_audit(r, e);
            touch_job *t = malloc(sizeof *t);
            if (t) {
                cg_pool_job j = {.work = touch_work, .done = free, .arg = t};
                t->idx = rt->idx;
                memcpy(t->part, q->part, 32);
                t->id = q->m.id;
                if (cg_pool_submit(rt->ipool, &j) != 0)
                    free(t);
            }
            if (cg_stage_cache_serve(r, e, CG_CACHE_HIT_SEMANTIC) == CG_NEXT)
                cg_engine_resume(r);
            return;
        }
        if (e) {
            cg_cache_entry_release(e);
            add_note(q, "%s", "semantic:entry_too_old");
        } else {
            cg_semantic_forget_key(rt->idx, q->m.xkey); /* gone meanwhile */
            atomic_fetch_add(&rt->stale, 1);
            add_note(q, "%s", "semantic:entry_gone");
        }
    } else if (q->looked && q->m.rejected != CG_GATE_PASS) {
        atomic_fetch_add(&rt->rejected, 1);
        add_note(q, "semantic:gate=%s", cg_gate_reason_name(q->m.rejected));
    } else if (q->search && !q->looked) {
        atomic_fetch_add(&rt->embed_errors, 1);
        add_note(q, "%s", "semantic:embed_failed");
    }
    if (q->looked)
        atomic_fetch_add(&rt->misses, 1);
    cg_engine_resume(r);
}

/* Queues the lookup job. 0, or -1 when the pool refused it. */
static int submit_lookup(cg_req *r) {
    cg_pool_job j = {
        .work = lookup_work, .done = lookup_done, .arg = r, .post = post_to_worker, .target = r->w};
    return cg_pool_submit(r->sem->rt->pool, &j);
}

/* --- the HTTP embedder ----------------------------------------------------------- */

static void http_status(void *arg, long status) {
    ((cg_req *)arg)->sem->status = status;
}

static int http_data(void *arg, const char *p, size_t n) {
    return cg_buf_append(&((cg_req *)arg)->sem->resp, p, n) == 0 ? CG_UP_CONTINUE : CG_UP_ABORT;
}

/* Its usage: the embedding tokens billed (estimated from the text when the
 * endpoint reports none: never silently zero). */
static void bill(cg_sem_req *q) {
    const char *os = NULL, *oe = NULL;
    cg_usage u;
    memset(&u, 0, sizeof u);
    json_t *uj = NULL;
    if (cg_provider_usage_object(q->resp.data, q->resp.len, 1, &os, &oe) == 0)
        uj = json_loadb(os, (size_t)(oe - os), 0, NULL);
    if (!uj || cg_usage_from_openai_embedding(uj, &u) != 0 || !(u.have & CG_USAGE_HAVE_EMBED)) {
        memset(&u, 0, sizeof u);
        u.embedding = (int64_t)(q->len + 3) / 4;
        q->emb_estimated = 1;
        add_note(q, "%s", "semantic:embedding_usage_estimated");
    }
    json_decref(uj);
    q->emb_tokens = u.embedding;
    if (q->rt->has_price) {
        cg_cost c;
        cg_cost_compute(&q->rt->price, &u, 0, &c);
        q->emb_nano = c.embedding;
    }
}

static void http_done(void *arg, cg_up_result res, const char *detail) {
    (void)detail;
    cg_req *r = arg;
    cg_sem_req *q = r->sem;
    q->call = NULL;
    if (res == CG_UP_OK && q->status == 200) {
        bill(q);
        if (submit_lookup(r) == 0)
            return; /* lookup_done resumes */
        atomic_fetch_add(&q->rt->skipped, 1);
        add_note(q, "%s", "semantic:skipped_queue_full");
    } else {
        char why[32];
        snprintf(why, sizeof why, "%ld", res == CG_UP_OK ? q->status : -(long)res);
        atomic_fetch_add(&q->rt->embed_errors, 1);
        add_note(q, "semantic:embedder_error=%s", why);
        CG_WARN("semantic: the embeddings endpoint failed for %s (%s %s)", r->id,
                res == CG_UP_OK ? "HTTP" : "result", why);
    }
    cg_engine_resume(r);
}

/* Starts the embeddings call. 0, or -1 (nothing started). */
static int start_http(cg_req *r) {
    cg_sem_req *q = r->sem;
    cg_semrt *rt = q->rt;
    const cg_semantic_cfg *c = rt->cfg;
    cg_buf_init(&q->body, EMBED_BODY_MAX);
    cg_buf_init(&q->resp, EMBED_RESP_MAX);
    int bad = cg_buf_puts(&q->body, "{\"model\":") ||
              cg_buf_json_str(&q->body, c->model, strlen(c->model)) ||
              cg_buf_puts(&q->body, ",\"input\":") || cg_buf_json_str(&q->body, q->text, q->len) ||
              cg_buf_puts(&q->body, ",\"encoding_format\":\"float\"");
    if (!bad && c->dimensions > 0)
        bad = cg_buf_printf(&q->body, ",\"dimensions\":%d", c->dimensions);
    bad = bad || cg_buf_puts(&q->body, "}") ||
          cg_up_headers_add(&q->hdrs, "Content-Type", "application/json") != 0;
    if (!bad && rt->api_key) {
        char auth[1100];
        int n = snprintf(auth, sizeof auth, "Bearer %s", rt->api_key);
        bad = n < 0 || (size_t)n >= sizeof auth ||
              cg_up_headers_add(&q->hdrs, "Authorization", auth) != 0;
        memset(auth, 0, sizeof auth);
    }
    if (bad)
        return -1;
    cg_up_opts o = {
        .url = c->url,
        .headers = &q->hdrs,
        .body = q->body.data,
        .body_len = q->body.len,
        .connect_timeout_ms = c->timeout_ms,
        .first_byte_timeout_ms = c->timeout_ms,
        .idle_timeout_ms = c->timeout_ms,
    };
    static const cg_up_callbacks cb = {
        .on_headers_done = http_status, .on_data = http_data, .on_done = http_done};
    q->call = cg_upstream_start(cg_worker_upstream(r->w), &o, &cb, r);
    return q->call ? 0 : -1;
}

/* --- the stage ----------------------------------------------------------------- */

/* x-costgate-semantic-threshold raises the floor, never lowers it. -1
 * after cg_req_fail on a malformed value. */
static int take_threshold(cg_req *r, cg_sem_req *q) {
    const char *v = hdr(r, "x-costgate-semantic-threshold");
    q->threshold = q->rt->cfg->threshold;
    if (!v)
        return 0;
    char *end = NULL;
    errno = 0;
    double t = strtod(v, &end);
    if (!*v || !end || *end || errno || !isfinite(t) || t < 0 || t > 1)
        return cg_req_fail(r, 400, "invalid_request_error", "invalid_header",
                           "x-costgate-semantic-threshold",
                           "Header x-costgate-semantic-threshold must be a number from 0 to 1.");
    if (t > q->threshold)
        q->threshold = t;
    else if (t < q->threshold)
        add_note(q, "%s", "semantic:threshold_below_floor_ignored");
    return 0;
}

cg_stage_rc cg_stage_semantic(cg_req *r) {
    cg_semrt *rt = r->gw->semantic;
    if (!rt || r->sem || r->attempt > 1 || !r->xc.store || r->xc.hit)
        return CG_NEXT;
    cg_sem_req *q = calloc(1, sizeof *q);
    json_t *part_body = NULL;
    cg_stage_rc rc = CG_NEXT;
    if (!q)
        return CG_NEXT; /* no memory: an ordinary miss */
    int anth = r->api == CG_API_ANTHROPIC;
    cg_sem_elig el = cg_semantic_eligible(r->body, anth, rt->cfg->same_context, q->text,
                                          sizeof q->text, &q->len, &part_body);
    if (el != CG_SEM_OK) {
        free(q);
        return CG_NEXT;
    }
    q->rt = rt;
    r->sem = q;
    if (take_threshold(r, q) != 0) {
        rc = CG_ERROR;
        goto out;
    }
    cg_semantic_part_in in = {
        .scope = r->xc.scope,
        .segment = r->segment,
        .permissions = r->xc.perms, /* canonical, from the exact cache's stage */
        .api = anth ? "anthropic.messages" : "openai.chat_completions",
        .prompt_version = r->xc.prompt_version,
        .context_ids = r->xc.ctx_ids,
        .anthropic_version = anth ? r->anthropic_version : "",
        .anthropic_beta = anth ? r->anthropic_beta : "",
        .body = part_body,
    };
    if (cg_semantic_partition(&in, q->part) != 0) {
        r->sem = NULL; /* not indexable: an ordinary miss */
        free(q);
        goto out;
    }
    q->search = !r->xc.no_lookup;
    q->t0_us = cg_mono_us();
    if (rt->emb) {
        if (!q->search)
            goto out; /* no-cache: embedded at the store, off the request path */
        if (submit_lookup(r) == 0) {
            rc = CG_AGAIN;
            goto out;
        }
        atomic_fetch_add(&rt->skipped, 1);
        add_note(q, "%s", "semantic:skipped_queue_full");
        goto out;
    }
    if (start_http(r) == 0) {
        rc = CG_AGAIN;
        goto out;
    }
    atomic_fetch_add(&rt->embed_errors, 1);
    add_note(q, "%s", "semantic:embedder_error=start");
out:
    json_decref(part_body);
    return rc;
}

/* --- accounting ------------------------------------------------------------------ */

void cg_stage_semantic_settle(cg_req *r) {
    cg_sem_req *q = r->sem;
    if (!q || q->billed || (!q->emb_tokens && !q->emb_nano))
        return;
    q->billed = r->attempt;
    r->cost.embedding += q->emb_nano;
    r->cost.total += q->emb_nano;
}

void cg_stage_semantic_row(cg_req *r, cg_ledger_row *row) {
    cg_sem_req *q = r->sem;
    if (!q)
        return;
    if (q->billed && q->billed == row->attempt) {
        row->tok_embedding += q->emb_tokens;
        row->estimated |= q->emb_estimated;
        if (r->xc.hit) { /* a hit's row has no token cost of its own */
            row->cost_embedding = r->cost.embedding;
            row->cost_total = r->cost.total;
        }
    }
    if (q->has_sim) {
        row->has_similarity = 1;
        row->cache_similarity = q->similarity;
    }
    if (q->hit)
        snprintf(row->cache_match, sizeof row->cache_match, "%s", q->match_hex);
    if (q->note[0] && row->attempt == 1) {
        size_t n = strlen(row->note);
        snprintf(row->note + n, sizeof row->note - n, "%s%s", n ? " " : "", q->note);
    }
}

void cg_stage_semantic_headers(cg_req *r) {
    cg_sem_req *q = r->sem;
    if (!q || !q->hit)
        return;
    char v[32];
    snprintf(v, sizeof v, "%.4f", q->similarity);
    cg_hreq_add_header(r->hreq, "x-costgate-cache-similarity", v);
}

/* --- the store hook -------------------------------------------------------------- */

typedef struct store_job {
    cg_semrt *rt;
    uint8_t part[32], xkey[32];
    char text[CG_SEMANTIC_TEXT_MAX + 1];
    size_t len;
    int dim, have_vec;
    float vec[]; /* dim floats when have_vec */
} store_job;

static void store_work(void *arg) {
    store_job *j = arg;
    cg_semrt *rt = j->rt;
    float own[CG_EMBED_DIM];
    const float *v = j->vec;
    int dim = j->dim;
    lower_priority();
    if (!j->have_vec) {
        if (!rt->emb || cg_embed(rt->emb, j->text, j->len, own) != 0)
            return;
        v = own;
        dim = CG_EMBED_DIM;
    }
    cg_semantic_reap(rt->idx); /* vectors of entries that went: deleted here, off the loops */
    if (cg_semantic_add(rt->idx, j->part, j->xkey, j->text, j->len, v, dim) != 0)
        return;
    atomic_fetch_add(&rt->stored, 1);
    /* the entry may have gone while this job waited: then so does its vector */
    if (!cg_cache_contains(rt->gw->cache, j->xkey))
        cg_semantic_forget_key(rt->idx, j->xkey);
}

void cg_stage_semantic_stored(cg_req *r, const uint8_t key[32]) {
    cg_sem_req *q = r->sem;
    if (!q || !q->rt)
        return;
    memcpy(q->index_key, key, 32);
    q->index_pending = 1; /* after the response: cg_stage_semantic_finish */
}

void cg_stage_semantic_finish(cg_req *r) {
    cg_sem_req *q = r->sem;
    if (!q || !q->rt || !q->index_pending)
        return;
    q->index_pending = 0;
    cg_semrt *rt = q->rt;
    const uint8_t *key = q->index_key;
    int have = q->have_vec && q->vec;
    if (!have && !rt->emb)
        return; /* the HTTP embedder gave no vector: not indexed */
    size_t extra = have ? (size_t)q->dim * sizeof(float) : 0;
    store_job *j = malloc(sizeof *j + extra);
    if (!j)
        return;
    j->rt = rt;
    memcpy(j->part, q->part, 32);
    memcpy(j->xkey, key, 32);
    memcpy(j->text, q->text, q->len + 1);
    j->len = q->len;
    j->have_vec = have;
    j->dim = have ? q->dim : 0;
    if (have)
        memcpy(j->vec, q->vec, extra);
    cg_pool_job pj = {.work = store_work, .done = free, .arg = j};
    if (cg_pool_submit(rt->ipool, &pj) != 0) {
        free(j);
        atomic_fetch_add(&rt->store_skipped, 1);
    }
}

void cg_stage_semantic_free(cg_req *r) {
    cg_sem_req *q = r->sem;
    if (!q)
        return;
    if (q->call)
        cg_upstream_cancel(q->call);
    cg_up_headers_free(&q->hdrs); /* wipes the key */
    cg_buf_free(&q->body);
    cg_buf_free(&q->resp);
    free(q->vec);
    free(q);
    r->sem = NULL;
}

/* --- runtime ----------------------------------------------------------------------- */

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* A relative model path: as given, under $CG_SOURCE_DIR, or up to 4
 * directories above the binary (a build directory in the source tree). */
static void find_model(const char *want, char *out, size_t cap) {
    const char *env;
    snprintf(out, cap, "%s", want);
    if (want[0] == '/' || is_file(out))
        return;
    if ((env = getenv("CG_SOURCE_DIR")) && *env &&
        snprintf(out, cap, "%s/%s", env, want) < (int)cap && is_file(out))
        return;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        for (int up = 0; up < 4; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash)
                break;
            *slash = '\0';
            if (snprintf(out, cap, "%s/%s", exe, want) < (int)cap && is_file(out))
                return;
        }
    }
    snprintf(out, cap, "%s", want);
}

static void on_exact_remove(void *arg, const uint8_t key[32]) {
    cg_semantic_forget_key(((cg_semrt *)arg)->idx, key);
}

static int exact_live(void *arg, const uint8_t key[32]) {
    return cg_cache_contains(arg, key);
}

/* Thumbs down on a semantic hit: the entry it served goes (and, through the
 * remove hook, its vector). The exact cache's own hook handles exact hits
 * and misses. */
static void feedback_hook(void *arg, const cg_feedback *fb, json_t *reply) {
    cg_gateway *gw = arg;
    uint8_t key[32];
    if (!gw->semantic || !gw->cache || fb->rating >= 0 || !fb->cache ||
        strcmp(fb->cache, "semantic") != 0 || !fb->cache_match || strlen(fb->cache_match) != 64 ||
        cg_unhex(fb->cache_match, key, 32) != 0)
        return;
    cg_cache_filter f = {.key = key, .writer_id = fb->cache_src};
    size_t n = cg_cache_invalidate(gw->cache, &f, CG_INV_FEEDBACK, fb->request_id);
    json_object_set_new(reply, "cache_removed", json_integer((json_int_t)n));
}

static void rt_free(cg_semrt *rt) {
    if (!rt)
        return;
    cg_pool_free(rt->pool);
    cg_pool_free(rt->ipool);
    cg_semantic_free(rt->idx);
    cg_embed_close(rt->emb);
    if (rt->api_key) {
        memset(rt->api_key, 0, strlen(rt->api_key));
        free(rt->api_key);
    }
    free(rt);
}

int cg_semrt_start(cg_gateway *gw, char *err, size_t errlen) {
    const cg_semantic_cfg *c = &gw->cfg->cache.semantic;
    cg_semrt *rt = calloc(1, sizeof *rt);
    char path[PATH_MAX + 64];
    int dim = 0, rc = -1;
    if (!rt) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rt->cfg = c;
    rt->gw = gw;
    if (c->kind == CG_SEM_EMBED_BUILTIN) {
        char e[512];
        find_model(c->model_file, path, sizeof path);
        rt->emb = cg_embed_open(path, e, sizeof e);
        if (!rt->emb) {
            snprintf(err, errlen, "cache.semantic.model_file: %s (made by scripts/setup.sh)", e);
            goto out;
        }
        dim = CG_EMBED_DIM;
        snprintf(rt->embedder_id, sizeof rt->embedder_id, "builtin:use-lite:%d", dim);
    } else {
        const char *v = c->api_key_env[0] ? getenv(c->api_key_env) : NULL;
        if (v && *v && !(rt->api_key = strdup(v))) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        if (c->api_key_env[0] && !rt->api_key)
            CG_WARN("cache.semantic.embedder: %s is not set; embedding calls go without a key",
                    c->api_key_env);
        const cg_price *p = cg_prices_find(gw->prices, c->model);
        if (p) {
            rt->price = *p;
            rt->has_price = 1;
        } else if (!gw->cfg->allow_unpriced) {
            snprintf(err, errlen,
                     "cache.semantic.embedder.model: no price for '%s' (add it under "
                     "pricing.models, or set pricing.unknown_model: allow)",
                     c->model);
            goto out;
        }
        if (strncmp(c->url, "https://", 8) == 0 && cg_upstream_tls_prepare(NULL, err, errlen) != 0)
            goto out;
        dim = c->dimensions;
        snprintf(rt->embedder_id, sizeof rt->embedder_id, "http:%s|%s|%d", c->url, c->model,
                 c->dimensions);
    }
    rt->pool = cg_pool_new(c->pool_threads, (size_t)c->queue_max);
    rt->ipool = cg_pool_new(1, (size_t)c->queue_max);
    cg_semantic_opts so = {.dim = dim,
                           .capacity = (uint32_t)c->capacity,
                           .max_partitions = (uint32_t)c->max_partitions,
                           .embedder_id = rt->embedder_id};
    rt->idx = rt->pool && rt->ipool ? cg_semantic_new(&so, err, errlen) : NULL;
    if (!rt->idx) {
        if (!rt->pool || !rt->ipool)
            snprintf(err, errlen, "cannot start the semantic cache's worker pool");
        goto out;
    }
    cg_semantic_load_stats st;
    char lerr[512];
    if (cg_semantic_load(rt->idx, c->index_dir, &st, lerr, sizeof lerr) != 0) {
        CG_WARN("semantic: the saved index was not loaded (%s); starting empty", lerr);
        cg_semantic_free(rt->idx);
        rt->idx = cg_semantic_new(&so, err, errlen);
        if (!rt->idx)
            goto out;
    } else if (st.discarded) {
        CG_WARN("semantic: the saved index in %s was made by another embedder; starting empty",
                c->index_dir);
    }
    /* an entry the exact cache no longer has (expired, or lost in a crash)
     * takes its vector with it */
    cg_cache_set_remove_hook(gw->cache, on_exact_remove, rt);
    size_t gone = cg_semantic_reconcile(rt->idx, exact_live, gw->cache);
    cg_semantic_reap(rt->idx);
    if (cg_feedback_hook_add("semantic", feedback_hook, gw) != 0) {
        snprintf(err, errlen, "too many feedback consumers");
        cg_cache_set_remove_hook(gw->cache, NULL, NULL);
        goto out;
    }
    CG_INFO("semantic: %s embedder, threshold %.4f, %zu cached queries in %zu partitions loaded "
            "from %s (%zu dropped: their entries are gone)",
            rt->emb ? "built-in" : "HTTP", c->threshold, cg_semantic_count(rt->idx),
            cg_semantic_partitions(rt->idx), c->index_dir, gone);
    rt->started = 1;
    gw->semantic = rt;
    rc = 0;
out:
    if (rc)
        rt_free(rt);
    return rc;
}

void cg_semrt_stop(cg_gateway *gw) {
    cg_semrt *rt = gw->semantic;
    if (!rt)
        return;
    cg_pool_free(rt->pool);
    cg_pool_free(rt->ipool); /* queued stores finish first */
    rt->pool = rt->ipool = NULL;
    if (gw->cache)
        cg_cache_set_remove_hook(gw->cache, NULL, NULL);
    char err[512];
    if (rt->started && cg_semantic_save(rt->idx, rt->cfg->index_dir, err, sizeof err) != 0)
        CG_ERROR("semantic: the index was not saved: %s", err);
    CG_INFO("semantic: %llu lookups, %llu hits, %llu gate refusals, %llu skipped (queue full), "
            "%llu embedding failures, %llu indexed; %zu cached queries saved to %s",
            (unsigned long long)atomic_load(&rt->lookups),
            (unsigned long long)atomic_load(&rt->hits),
            (unsigned long long)atomic_load(&rt->rejected),
            (unsigned long long)atomic_load(&rt->skipped),
            (unsigned long long)atomic_load(&rt->embed_errors),
            (unsigned long long)atomic_load(&rt->stored), cg_semantic_count(rt->idx),
            rt->cfg->index_dir);
    gw->semantic = NULL;
    rt_free(rt);
}

/* Percentiles of the lookup time histogram (bucket upper bounds, µs). */
static json_t *latency_json(cg_semrt *rt) {
    static const double P[] = {0.5, 0.9, 0.99};
    static const char *const NAME[] = {"p50", "p90", "p99"};
    uint64_t n = 0, seen = 0;
    uint32_t c[LAT_BUCKETS];
    for (int i = 0; i < LAT_BUCKETS; i++)
        n += c[i] = atomic_load(&rt->lat[i]);
    json_t *j =
        json_pack("{s:I,s:I}", "count", (json_int_t)n, "bucket_us", (json_int_t)LAT_BUCKET_US);
    for (int k = 0, i = 0; j && n && k < 3; k++) {
        uint64_t want = (uint64_t)(P[k] * (double)n + 0.5);
        while (i < LAT_BUCKETS - 1 && seen + c[i] < want)
            seen += c[i++];
        json_object_set_new(j, NAME[k], json_integer((json_int_t)(i + 1) * LAT_BUCKET_US));
    }
    return j;
}

json_t *cg_semrt_stats_json(cg_gateway *gw) {
    cg_semrt *rt = gw->semantic;
    if (!rt)
        return json_pack("{s:b}", "enabled", 0);
    json_t *j = json_pack(
        "{s:b,s:s,s:f,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "enabled", 1, "embedder",
        rt->emb ? "builtin" : "http", "threshold", rt->cfg->threshold, "entries",
        (json_int_t)cg_semantic_count(rt->idx), "partitions",
        (json_int_t)cg_semantic_partitions(rt->idx), "lookups",
        (json_int_t)atomic_load(&rt->lookups), "hits", (json_int_t)atomic_load(&rt->hits), "misses",
        (json_int_t)atomic_load(&rt->misses), "gate_rejected",
        (json_int_t)atomic_load(&rt->rejected), "stale", (json_int_t)atomic_load(&rt->stale),
        "skipped_queue_full", (json_int_t)atomic_load(&rt->skipped), "embed_errors",
        (json_int_t)atomic_load(&rt->embed_errors), "indexed", (json_int_t)atomic_load(&rt->stored),
        "index_skipped", (json_int_t)atomic_load(&rt->store_skipped), "pending",
        (json_int_t)((rt->pool ? cg_pool_pending(rt->pool) : 0) +
                     (rt->ipool ? cg_pool_pending(rt->ipool) : 0)));
    if (j)
        json_object_set_new(j, "lookup_us", latency_json(rt));
    return j;
}
