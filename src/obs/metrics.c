/* metrics: Prometheus counters and histograms (see metrics.h). */
#include "obs/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "store/ledger.h"

#define N_BUCKETS 14
static const int64_t BUCKET_US[N_BUCKETS] = {1000,    5000,     10000,    25000,   50000,
                                             100000,  250000,   500000,   1000000, 2500000,
                                             5000000, 10000000, 30000000, 60000000};

typedef struct hist {
    atomic_uint_fast64_t b[N_BUCKETS + 1];
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_us;
} hist;

#define MAX_MODELS 256
typedef struct model_series {
    char name[128];
    uint64_t requests, estimated, unpriced;
    uint64_t tok[8]; /* input cached_read cache_write_5m cache_write_1h output reasoning embedding
                        web_searches */
    int64_t cost[5]; /* input output embedding external_api storage_compute */
} model_series;

static const char *API_NAMES[] = {"openai", "anthropic"};
static const char *EP_NAMES[] = {"chat", "messages", "embeddings", "models"};
static const char *CLASS_NAMES[] = {"2xx", "3xx", "4xx", "5xx", "other"};

static const char *BSCOPES[] = {"query",       "user_day",   "segment_day", "tenant_month",
                                "feature_day", "global_day", "slo"};
static const char *BACTIONS[] = {"reject", "downgrade", "dry_run", "fallback"};

struct cg_metrics {
    atomic_uint_fast64_t budget[7][4];
    atomic_uint_fast64_t req[2][4][5][2]; /* api, endpoint, class, stream */
    atomic_int_fast64_t inflight;
    atomic_uint_fast64_t disconnects;
    hist latency, ttfb;
    pthread_mutex_t mu;
    model_series models[MAX_MODELS];
    int n_models;
};

cg_metrics *cg_metrics_new(void) {
    cg_metrics *m = calloc(1, sizeof *m);
    if (m)
        pthread_mutex_init(&m->mu, NULL);
    return m;
}

void cg_metrics_free(cg_metrics *m) {
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static int idx(const char *const *names, int n, const char *s) {
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return i;
    return -1;
}

void cg_metrics_request(cg_metrics *m, const char *api, const char *endpoint, int http_status,
                        int stream) {
    int a = idx(API_NAMES, 2, api), e = idx(EP_NAMES, 4, endpoint);
    if (a < 0 || e < 0)
        return;
    int c = http_status >= 200 && http_status < 600 ? http_status / 100 - 2 : 4;
    atomic_fetch_add(&m->req[a][e][c][stream ? 1 : 0], 1);
}

static void hist_add(hist *h, int64_t us) {
    int i = 0;
    while (i < N_BUCKETS && us > BUCKET_US[i])
        i++;
    atomic_fetch_add(&h->b[i], 1);
    atomic_fetch_add(&h->count, 1);
    atomic_fetch_add(&h->sum_us, (uint64_t)(us > 0 ? us : 0));
}

void cg_metrics_upstream_latency(cg_metrics *m, int64_t latency_us, int64_t ttfb_us) {
    hist_add(&m->latency, latency_us);
    if (ttfb_us > 0)
        hist_add(&m->ttfb, ttfb_us);
}

void cg_metrics_inflight(cg_metrics *m, int delta) {
    atomic_fetch_add(&m->inflight, delta);
}

void cg_metrics_client_disconnect(cg_metrics *m) {
    atomic_fetch_add(&m->disconnects, 1);
}

void cg_metrics_budget_action(cg_metrics *m, const char *scope, const char *action) {
    int s = idx(BSCOPES, 7, scope), a = idx(BACTIONS, 4, action);
    if (s >= 0 && a >= 0)
        atomic_fetch_add(&m->budget[s][a], 1);
}

void cg_metrics_settle(cg_metrics *m, const char *model, const cg_usage *u, const cg_cost *c,
                       int estimated, int unpriced) {
    pthread_mutex_lock(&m->mu);
    model_series *s = NULL;
    for (int i = 0; i < m->n_models; i++)
        if (strcmp(m->models[i].name, model) == 0) {
            s = &m->models[i];
            break;
        }
    if (!s) {
        /* the table is bounded: past it, series fold into "other" */
        int slot = m->n_models < MAX_MODELS - 1 ? m->n_models++ : MAX_MODELS - 1;
        s = &m->models[slot];
        if (!s->name[0])
            snprintf(s->name, sizeof s->name, "%s", slot == MAX_MODELS - 1 ? "other" : model);
    }
    s->requests++;
    s->estimated += estimated ? 1 : 0;
    s->unpriced += unpriced ? 1 : 0;
    int64_t t[8] = {u->input,  u->cached_read, u->cache_write_5m, u->cache_write_1h,
                    u->output, u->reasoning,   u->embedding,      u->web_searches};
    for (int i = 0; i < 8; i++)
        s->tok[i] += (uint64_t)(t[i] > 0 ? t[i] : 0);
    int64_t k[5] = {c->input, c->output, c->embedding, c->external_api, c->storage_compute};
    for (int i = 0; i < 5; i++)
        s->cost[i] += k[i];
    pthread_mutex_unlock(&m->mu);
}

static void render_hist(cg_buf *out, const char *name, const char *help, hist *h) {
    cg_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < N_BUCKETS; i++) {
        cum += atomic_load(&h->b[i]);
        cg_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, (double)BUCKET_US[i] / 1e6,
                      (unsigned long long)cum);
    }
    cum += atomic_load(&h->b[N_BUCKETS]);
    cg_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    uint64_t sum = atomic_load(&h->sum_us);
    cg_buf_printf(out, "%s_sum %llu.%06llu\n%s_count %llu\n", name,
                  (unsigned long long)(sum / 1000000), (unsigned long long)(sum % 1000000), name,
                  (unsigned long long)atomic_load(&h->count));
}

/* Prometheus label values: escape backslash, quote and newline. */
static void label(cg_buf *out, const char *v) {
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            cg_buf_printf(out, "\\%c", *v);
        else if (*v == '\n')
            cg_buf_puts(out, "\\n");
        else
            cg_buf_append(out, v, 1);
    }
}

void cg_metrics_render(cg_metrics *m, struct cg_ledger *ledger, cg_buf *out) {
    cg_buf_puts(out, "# HELP costgate_requests_total Proxied requests by API, endpoint, status "
                     "class and streaming.\n# TYPE costgate_requests_total counter\n");
    for (int a = 0; a < 2; a++)
        for (int e = 0; e < 4; e++)
            for (int c = 0; c < 5; c++)
                for (int s = 0; s < 2; s++) {
                    uint64_t v = atomic_load(&m->req[a][e][c][s]);
                    if (v)
                        cg_buf_printf(out,
                                      "costgate_requests_total{api=\"%s\",endpoint=\"%s\",code="
                                      "\"%s\",stream=\"%s\"} %llu\n",
                                      API_NAMES[a], EP_NAMES[e], CLASS_NAMES[c],
                                      s ? "true" : "false", (unsigned long long)v);
                }
    cg_buf_printf(out,
                  "# HELP costgate_inflight_requests Requests in progress.\n# TYPE "
                  "costgate_inflight_requests gauge\ncostgate_inflight_requests %lld\n",
                  (long long)atomic_load(&m->inflight));
    cg_buf_printf(out,
                  "# HELP costgate_client_disconnects_total Clients that left before the "
                  "response ended.\n# TYPE costgate_client_disconnects_total counter\n"
                  "costgate_client_disconnects_total %llu\n",
                  (unsigned long long)atomic_load(&m->disconnects));
    static const char *TOK[8] = {"input",  "cached_read", "cache_write_5m", "cache_write_1h",
                                 "output", "reasoning",   "embedding",      "web_search"};
    static const char *AX[5] = {"input", "output", "embedding", "external_api", "storage_compute"};
    pthread_mutex_lock(&m->mu);
    cg_buf_puts(out, "# HELP costgate_model_requests_total Settled upstream calls by served "
                     "model.\n# TYPE costgate_model_requests_total counter\n");
    for (int i = 0; i < m->n_models; i++) {
        cg_buf_puts(out, "costgate_model_requests_total{model=\"");
        label(out, m->models[i].name);
        cg_buf_printf(out, "\"} %llu\n", (unsigned long long)m->models[i].requests);
    }
    cg_buf_puts(out, "# HELP costgate_estimated_total Settled calls whose cost was estimated "
                     "(no usage reported).\n# TYPE costgate_estimated_total counter\n");
    for (int i = 0; i < m->n_models; i++) {
        cg_buf_puts(out, "costgate_estimated_total{model=\"");
        label(out, m->models[i].name);
        cg_buf_printf(out, "\"} %llu\n", (unsigned long long)m->models[i].estimated);
    }
    cg_buf_puts(out, "# HELP costgate_tokens_total Tokens by served model and class.\n# TYPE "
                     "costgate_tokens_total counter\n");
    for (int i = 0; i < m->n_models; i++)
        for (int t = 0; t < 8; t++) {
            if (!m->models[i].tok[t])
                continue;
            cg_buf_puts(out, "costgate_tokens_total{model=\"");
            label(out, m->models[i].name);
            cg_buf_printf(out, "\",class=\"%s\"} %llu\n", TOK[t],
                          (unsigned long long)m->models[i].tok[t]);
        }
    cg_buf_puts(out, "# HELP costgate_cost_nano_usd_total Cost in nano-USD by served model and "
                     "axis.\n# TYPE costgate_cost_nano_usd_total counter\n");
    for (int i = 0; i < m->n_models; i++)
        for (int a = 0; a < 5; a++) {
            cg_buf_puts(out, "costgate_cost_nano_usd_total{model=\"");
            label(out, m->models[i].name);
            cg_buf_printf(out, "\",axis=\"%s\"} %lld\n", AX[a], (long long)m->models[i].cost[a]);
        }
    pthread_mutex_unlock(&m->mu);
    cg_buf_puts(out, "# HELP costgate_budget_actions_total Budget and SLO actions by scope and "
                     "action.\n# TYPE costgate_budget_actions_total counter\n");
    for (int si = 0; si < 7; si++)
        for (int a = 0; a < 4; a++) {
            uint64_t v = atomic_load(&m->budget[si][a]);
            if (v)
                cg_buf_printf(out,
                              "costgate_budget_actions_total{scope=\"%s\",action=\"%s\"} %llu\n",
                              BSCOPES[si], BACTIONS[a], (unsigned long long)v);
        }
    render_hist(out, "costgate_upstream_latency_seconds",
                "Upstream call duration, request sent to last byte.", &m->latency);
    render_hist(out, "costgate_upstream_ttfb_seconds", "Upstream time to first response byte.",
                &m->ttfb);
    if (ledger) {
        uint64_t rows, commits, errors, queued;
        cg_ledger_stats(ledger, &rows, &commits, &errors, &queued);
        cg_buf_printf(out,
                      "# HELP costgate_ledger_rows_total Ledger rows committed.\n# TYPE "
                      "costgate_ledger_rows_total counter\ncostgate_ledger_rows_total %llu\n"
                      "# HELP costgate_ledger_commits_total Ledger group commits.\n# TYPE "
                      "costgate_ledger_commits_total counter\ncostgate_ledger_commits_total %llu\n"
                      "# HELP costgate_ledger_errors_total Ledger rows that failed to commit.\n"
                      "# TYPE costgate_ledger_errors_total counter\n"
                      "costgate_ledger_errors_total %llu\n"
                      "# HELP costgate_ledger_queue Rows waiting for the writer (queued or "
                      "spooled).\n# TYPE "
                      "costgate_ledger_queue gauge\ncostgate_ledger_queue %llu\n"
                      "# HELP costgate_ledger_spool_full_total Rows that found their spool ring "
                      "full and waited for a commit.\n# TYPE costgate_ledger_spool_full_total "
                      "counter\ncostgate_ledger_spool_full_total %llu\n",
                      (unsigned long long)rows, (unsigned long long)commits,
                      (unsigned long long)errors, (unsigned long long)queued,
                      (unsigned long long)cg_ledger_spool_full(ledger));
    }
}
