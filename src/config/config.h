/* config: the YAML configuration file -> one typed, validated cg_config.
 *
 * Owns: the config schema, defaults, ${ENV} / ${ENV:-default} interpolation
 * in scalar values, and validation. Every error names the file, the line and
 * the dotted field path, e.g.
 *   "etc/costgate.yaml:12: providers[1].base_url: must start with http:// or https://"
 * The loaded config is immutable and shared read-only by all threads.
 */
#ifndef CG_CONFIG_CONFIG_H
#define CG_CONFIG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "budget/slo.h"
#include "cost/prices.h"

typedef enum { CG_API_OPENAI = 0, CG_API_ANTHROPIC = 1 } cg_api;

typedef struct cg_provider_cfg {
    char name[64];
    cg_api api;
    char base_url[512];    /* scheme://host[:port][/prefix], no trailing slash */
    char api_key_env[128]; /* name of the env var holding the provider key ("" = none) */
    char ca_file[512];     /* https: PEM CA bundle verifying the provider ("" = system store) */
    char **models;         /* exact names, or patterns ending in '*' (prefix match) */
    size_t n_models;
    char failover_name[64]; /* same-API provider tried on 5xx/429 before the first byte */
    int failover;           /* its index, -1 = none */
    int failover_line;
} cg_provider_cfg;

typedef struct cg_key_cfg {
    char name[64];
    uint8_t sha256[32]; /* SHA-256 of the gateway key; the key itself is never stored */
    char tenant[64];
    char user[128];
    char segment[64];
    int allow_attribution; /* may assert x-costgate-user/-segment/-feature/-intent */
} cg_key_cfg;

/* Budgets (config section `budgets`). Limits are nano-USD; CG_NO_LIMIT = none. */
#define CG_NO_LIMIT INT64_C(-1)
typedef enum { CG_ACT_REJECT = 0, CG_ACT_DOWNGRADE = 1, CG_ACT_DRY_RUN = 2 } cg_budget_action;

typedef struct cg_segment_budget {
    char name[64];              /* "" for the default */
    int64_t max_per_query;      /* per request, on the pre-call upper bound */
    int64_t daily_max_per_user; /* per (tenant, user) per day */
    int64_t daily_max;          /* the whole segment (per tenant) per day */
    cg_budget_action action;
} cg_segment_budget;

typedef struct cg_named_budget {
    char name[128]; /* tenant or feature */
    int64_t limit;
    cg_budget_action action;
} cg_named_budget;

typedef struct cg_downgrade {
    char from[128];
    char to[128];
} cg_downgrade;

typedef struct cg_budgets_cfg {
    int enabled;       /* the section is present */
    char timezone[64]; /* IANA name for period boundaries; default "UTC" */
    cg_segment_budget dflt;
    cg_segment_budget *segments;
    size_t n_segments;
    cg_named_budget *tenants; /* monthly */
    size_t n_tenants;
    cg_named_budget *features; /* daily, per tenant */
    size_t n_features;
    int64_t global_daily;
    cg_budget_action global_action;
    cg_downgrade *downgrades; /* model -> cheaper model, tried in order */
    size_t n_downgrades;
} cg_budgets_cfg;

/* Model tiering (section `tiering`, shaped like the seeds' tiering.yaml). */
#define CG_TIERS_MAX 8
typedef struct cg_tier_cfg {
    char name[32];
    char model[2][128]; /* per API [openai, anthropic]; "" = this tier has none */
    int line;
} cg_tier_cfg;

typedef struct cg_tier_rule {
    char intent[64], segment[64], feature[64], key[64]; /* "" = any */
    int complexity; /* -1 any, else cg_route_complexity (0 simple, 1 medium, 2 complex) */
    int tier;       /* index into tiers */
    int line;
} cg_tier_rule;

typedef struct cg_tiering_cfg {
    int enabled;
    cg_tier_cfg tiers[CG_TIERS_MAX]; /* cheapest first */
    size_t n_tiers;
    cg_tier_rule *rules; /* first match wins */
    size_t n_rules;
    int default_tier;      /* when no rule matches and no classifier says otherwise */
    char **virtual_models; /* always routed (default: costgate/auto) */
    size_t n_virtual;
    char **routable_keys; /* key names whose explicit model may be re-routed ("*" = all) */
    size_t n_routable;
    /* cascade: answer with the cheaper tier first, escalate on low confidence */
    int cascade;
    int cascade_stream;       /* 0 = no cascade for streams, 1 = buffer armed attempts */
    int request_logprobs;     /* OpenAI: ask for logprobs on the first attempt */
    double min_mean_logprob;  /* escalate below this mean token logprob */
    double min_token_logprob; /* ... or when any token is below this */
    char **refusal_phrases;
    size_t n_refusal;
    /* bandit: Thompson sampling per (intent, tier) */
    int bandit;
    double lambda_per_usd;    /* reward -= lambda * cost in USD */
    double explore_max;       /* at most this share of decisions away from the rules' tier */
    double implicit_reward;   /* reward of an answer that was not escalated and not rated */
    char learned_model[1024]; /* optional learned router file ("" = rules only) */
    double learned_threshold; /* P(strong needed) above which the learned router goes up a tier */
    int line;
} cg_tiering_cfg;

/* Exact response cache (section `cache`, config_cache.c; docs/cache.md). */
typedef struct cg_cache_intent_ttl {
    char intent[64];
    int64_t ttl_s; /* 0 = not cached */
} cg_cache_intent_ttl;

typedef struct cg_cache_tenant_cfg {
    char tenant[64];
    int enabled;          /* 0 = this tenant's requests are never cached */
    char share_group[64]; /* "" = private; tenants naming the same group share entries */
    int64_t ttl_default;  /* -1 = the global default */
    cg_cache_intent_ttl *by_intent;
    size_t n_by_intent;
} cg_cache_tenant_cfg;

enum { CG_CACHE_PART_SEGMENT = 1, CG_CACHE_PART_USER = 2, CG_CACHE_PART_FEATURE = 4 };

/* The semantic cache (section `cache.semantic`, config_cache.c;
 * docs/semantic-cache.md "On the request path"). */
typedef enum { CG_SEM_EMBED_BUILTIN = 0, CG_SEM_EMBED_HTTP = 1 } cg_sem_embedder;

typedef struct cg_semantic_cfg {
    int enabled;           /* default 0: off unless `enabled: true` */
    double threshold;      /* the floor, in (0, 1]; default 0.98 */
    unsigned gate_rules;   /* second-gate rule mask (cache/gate.h), default CG_GATE_DEFAULT_RULES */
    cg_sem_embedder kind;  /* builtin (default) or an OpenAI-compatible /v1/embeddings */
    char model_file[1024]; /* builtin: the converted model, default var/models/use-lite.bin */
    char url[512];         /* http: the endpoint's full URL (.../v1/embeddings) */
    char model[128];       /* http: the embedding model (priced on the embedding axis) */
    char api_key_env[128]; /* http: env var holding its key ("" = none) */
    int dimensions;        /* http: sent as `dimensions` when > 0 (0 = the model's own) */
    int timeout_ms;        /* http: connect / first byte / idle, default 2000 */
    int64_t capacity;      /* vectors per partition (LRU), default 100000 */
    int64_t max_partitions; /* default 4096 */
    char index_dir[1024];   /* persisted index, default var/semantic */
    int same_context;       /* single_turn: strict (0, default) | same_context (1) */
    int pool_threads;       /* embedding / search threads, default 2 */
    int queue_max;          /* queued jobs; a full queue is a miss; default 1024 */
} cg_semantic_cfg;

typedef struct cg_cache_cfg {
    int enabled;                    /* the section is present and not `enabled: false` */
    int64_t max_bytes;              /* in-memory bound (LRU), default 64 MiB */
    int64_t ttl_default;            /* seconds, default 3600 */
    cg_cache_intent_ttl *by_intent; /* default: the seeds' cache_ttl.yaml */
    size_t n_by_intent;
    cg_cache_tenant_cfg *tenants;
    size_t n_tenants;
    unsigned partition_by;   /* CG_CACHE_PART_* added to the tenant partition */
    double max_temperature;  /* above it, not cached; default 1.0 (absent = 1.0) */
    int store_tool_calls;    /* default 0: answers that call a tool are not stored */
    int64_t guard_max_bytes; /* largest stored answer, default 1 MiB */
    char **deny;             /* POSIX extended regexes, case-insensitive, on the answer text */
    size_t n_deny;
    int coalesce;             /* default 1 */
    int64_t coalesce_wait_ms; /* default 30000 */
    cg_semantic_cfg semantic;
} cg_cache_cfg;

typedef struct cg_config {
    char path[1024];

    /* server */
    char listen_host[256];
    int listen_port;           /* 0 = ephemeral (the bound port is printed) */
    int workers;               /* resolved: >= 1 (0 in the file = one per core) */
    size_t max_body_bytes;     /* default 4 MiB */
    int connect_timeout_ms;    /* default 5000 */
    int first_byte_timeout_ms; /* default 120000 */
    int idle_timeout_ms;       /* between stream chunks, default 60000 */
    int drain_timeout_ms;      /* after client disconnect, default 10000 */
    size_t drain_max_bytes;    /* default 4 MiB */
    char log_level[16];        /* debug|info|warn|error, default info */

    /* admin */
    char admin_listen_host[256]; /* "" = admin API served on the main listener only with the admin
                                    key */
    int admin_listen_port;
    uint8_t admin_key_sha256[32];
    int has_admin_key;

    /* ledger */
    char ledger_path[1024]; /* default var/ledger.db */
    int ledger_batch_max;   /* rows per group commit, default 256 */
    int ledger_spool;       /* rows spooled per event loop, response released at once (default 1) */
    int ledger_spool_slots; /* rows per spool ring, default 4096 */
    int ledger_commit_delay_ms; /* writer's wait for more spooled rows, default 10 */
    int ledger_predict_every;   /* pre-call input prediction on 1 call in N when nothing else
                                 * needs it (default 16; 1 = every call, 0 = never) */

    /* pricing */
    int allow_unpriced;             /* pricing.unknown_model: allow (flagged) | reject (default) */
    char litellm_prices_path[1024]; /* optional import */
    cg_price *price_overrides;
    size_t n_price_overrides;

    cg_provider_cfg *providers;
    size_t n_providers;
    cg_key_cfg *keys;
    size_t n_keys;

    cg_budgets_cfg budgets;

    /* cost SLOs (section `slos`, shaped like the seeds' cost_slo.yaml) */
    cg_slo_def *slos;
    size_t n_slos;
    char slo_webhook[512];       /* POSTed a JSON body on every SLO event ("" = none) */
    int slo_eval_interval_ms;    /* default 10000 */
    char fallback_model[2][128]; /* cheapest model per API [openai, anthropic] */

    cg_tiering_cfg tiering;

    cg_cache_cfg cache;
    uint64_t generation; /* unique per loaded config in this process (memos key on it) */
} cg_config;

/* Loads and validates. On error returns -1 and writes "file:line: field: problem"
 * into err. */
int cg_config_load(const char *path, cg_config **out, char *err, size_t errlen);
/* Same, from a memory buffer; `name` is used in messages. */
int cg_config_load_string(const char *name, const char *yaml, size_t len, cg_config **out,
                          char *err, size_t errlen);
void cg_config_free(cg_config *c);

/* Provider serving `model` for API kind `api`, or NULL. */
const cg_provider_cfg *cg_config_provider_for(const cg_config *c, cg_api api, const char *model);
/* Key entry whose hash matches SHA-256(key), compared in constant time, or NULL. */
const cg_key_cfg *cg_config_key_lookup(const cg_config *c, const char *key, size_t keylen);

#endif
