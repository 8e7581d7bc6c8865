/* main: the costgate command line.
 *
 * Owns: argument parsing and the wiring of modules for each command:
 *   serve    run the gateway
 *   report   five-axis cost report from the ledger
 *   keys     hash a gateway/admin key for the config
 *   prices   list or look up model prices (built-in + config + LiteLLM file)
 *   config   validate a config file
 *   budget   budgets and SLO state of a running gateway; change a limit
 *   tokens   count tokens and estimate the cost range of a text or request
 *   embed    sentence embeddings with the built-in encoder
 *   cache    exact response cache: audit, invalidate, stats (cache/cli.c)
 *   tier-train / tier-eval   learned-router training and routing replay (route/cli.c)
 *   eval semantic   semantic-cache threshold and gate evaluation (cache/eval_semantic.c)
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "budget/budget.h"
#include "budget/cli.h"
#include "budget/slo.h"
#include "budget/slo_runner.h"
#include "cache/cli.h"
#include "cache/coalesce.h"
#include "cache/eval_semantic.h"
#include "cache/exact.h"
#include "config/config.h"
#include "http/admin_budget.h"
#include "http/admin_cache.h"
#include "http/feedback.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/money.h"
#include "embed/cli.h"
#include "cost/prices.h"
#include "http/server.h"
#include "pipeline/stages_semantic.h"
#include "http/upstream.h"
#include "obs/metrics.h"
#include "obs/predict.h"
#include "obs/report.h"
#include "obs/tiers.h"
#include "route/bandit.h"
#include "route/classify.h"
#include "route/learned.h"
#include "route/cli.h"
#include "store/ledger.h"
#include "tokenize/cli.h"
#include "tokenize/tokenize.h"
#ifdef CG_MIMALLOC
#include <mimalloc.h>
#endif

#define DEFAULT_CONFIG "config/example.yaml"

/* POST /v1/feedback -> the bandit: a rating replaces the implicit reward of
 * the routed answer it rates. */
static void bandit_feedback(void *arg, const cg_feedback *fb, json_t *reply) {
    if (cg_bandit_feedback(arg, fb->request_id, fb->rating) == 0)
        json_object_set_new(reply, "bandit_updated", json_integer(1));
}

static void usage(FILE *f) {
    fputs("usage: costgate <command> [options]\n"
          "\n"
          "commands:\n"
          "  serve    run the gateway                       (costgate serve --help)\n"
          "  report   cost report from the ledger           (costgate report --help)\n"
          "  keys     hash a key for the config             (costgate keys --help)\n"
          "  prices   list or look up model prices          (costgate prices --help)\n"
          "  config   validate a config file                (costgate config --help)\n"
          "  budget   budget/SLO state, change a limit      (costgate budget --help)\n"
          "  tokens   count tokens, estimate a cost range   (costgate tokens --help)\n"
          "  embed    sentence embeddings (built-in model)  (costgate embed --help)\n"
          "  cache    exact/semantic cache audit, invalidate (costgate cache --help)\n"
          "  tier-train  train the learned tier router      (costgate tier-train --help)\n"
          "  tier-eval   replay routing policies: CPT/APGR   (costgate tier-eval --help)\n"
          "  eval semantic  semantic cache: threshold, gate  (costgate eval semantic --help)\n"
          "  help     this text\n",
          f);
}

static int load_config(const char *path, cg_config **out) {
    char err[1024];
    if (cg_config_load(path, out, err, sizeof err) != 0) {
        fprintf(stderr, "costgate: invalid config: %s\n", err);
        return -1;
    }
    return 0;
}

/* Built-in prices, then the LiteLLM file (if configured, not replacing
 * built-ins), then the config's own overrides (always winning). */
static cg_price_table *load_prices(const cg_config *c) {
    cg_price_table *t = cg_prices_builtin();
    if (!t) {
        fprintf(stderr, "costgate: out of memory loading prices\n");
        return NULL;
    }
    if (c->litellm_prices_path[0]) {
        char err[512];
        int n = cg_prices_load_litellm(t, c->litellm_prices_path, 0, err, sizeof err);
        if (n < 0) {
            fprintf(stderr, "costgate: %s: pricing.litellm_file: %s\n", c->path, err);
            cg_prices_free(t);
            return NULL;
        }
        CG_INFO("prices: imported %d models from %s", n, c->litellm_prices_path);
    }
    for (size_t i = 0; i < c->n_price_overrides; i++)
        cg_prices_set(t, &c->price_overrides[i]);
    return t;
}

static int64_t gateway_clock(void *arg) {
    return (int64_t)cg_gateway_now_ms(arg);
}

static int ensure_parent_dir(const char *path) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(dir, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int cmd_serve(int argc, char **argv) {
    const char *cfg_path = DEFAULT_CONFIG;
    const char *port_file = NULL;
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"port-file", required_argument, 0, 'p'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "c:p:h", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            cfg_path = optarg;
            break;
        case 'p':
            port_file = optarg;
            break;
        case 'h':
            puts("usage: costgate serve [-c CONFIG] [--port-file FILE]\n"
                 "\n"
                 "Runs the gateway. CONFIG defaults to " DEFAULT_CONFIG ".\n"
                 "Provider API keys are read from the environment variables the config\n"
                 "names (providers[].api_key_env). On start it prints one line:\n"
                 "  costgate: listening on http://HOST:PORT (admin PORT|-) workers N\n"
                 "and, with --port-file, writes \"PORT ADMIN_PORT\" to FILE.\n"
                 "SIGINT/SIGTERM: stop accepting, finish in-flight requests (up to 10 s),\n"
                 "flush the ledger, exit 0.");
            return 0;
        default:
            return 2;
        }
    }
    cg_config *cfg = NULL;
    if (load_config(cfg_path, &cfg) != 0)
        return 2;
    cg_log_level lvl;
    if (cg_log_level_parse(cfg->log_level, &lvl) == 0)
        cg_log_set_level(lvl);
#ifdef CG_MIMALLOC
    CG_INFO("allocator: mimalloc %d", mi_version());
#else
    CG_INFO("allocator: system malloc");
#endif
    int rc = 1;
    cg_gateway gw = {.cfg = cfg};
    cg_server *srv = NULL;
    gw.prices = load_prices(cfg);
    gw.metrics = cg_metrics_new();
    gw.provider_keys = calloc(cfg->n_providers + 1, sizeof *gw.provider_keys);
    if (!gw.prices || !gw.metrics || !gw.provider_keys)
        goto out;
    for (size_t i = 0; i < cfg->n_providers; i++) {
        const char *env = cfg->providers[i].api_key_env;
        const char *v = env[0] ? getenv(env) : NULL;
        gw.provider_keys[i] = v && *v ? strdup(v) : NULL;
        if (!gw.provider_keys[i])
            CG_WARN("provider %s: %s is not set; calls go upstream without a provider key",
                    cfg->providers[i].name, env[0] ? env : "api_key_env");
    }
    char err[1024];
    if (ensure_parent_dir(cfg->ledger_path) != 0) {
        fprintf(stderr, "costgate: cannot create the directory of ledger.path %s: %s\n",
                cfg->ledger_path, strerror(errno));
        goto out;
    }
    cg_ledger_opts lo = {.batch_max = cfg->ledger_batch_max,
                         .spool_rings = cfg->ledger_spool ? cfg->workers : 0,
                         .spool_slots = (uint32_t)cfg->ledger_spool_slots,
                         .commit_delay_ms = cfg->ledger_commit_delay_ms};
    gw.ledger = cg_ledger_open(cfg->ledger_path, &lo, err, sizeof err);
    if (!gw.ledger) {
        fprintf(stderr, "costgate: %s\n", err);
        goto out;
    }
    if (cg_upstream_global_init() != 0) {
        fprintf(stderr, "costgate: TLS initialisation failed\n");
        goto out;
    }
    /* TLS contexts (CA files) load here, never on an event loop */
    for (size_t i = 0; i < cfg->n_providers; i++) {
        const cg_provider_cfg *p = &cfg->providers[i];
        if (strncasecmp(p->base_url, "https://", 8) == 0 &&
            cg_upstream_tls_prepare(p->ca_file[0] ? p->ca_file : NULL, err, sizeof err) != 0) {
            fprintf(stderr, "costgate: provider %s: %s\n", p->name, err);
            goto out;
        }
    }
    /* the BPE rank tables load here, never on an event loop */
    for (int e = 0; e < CG_ENC_COUNT; e++) {
        if (!cg_tok_get((cg_encoding)e, err, sizeof err)) {
            fprintf(stderr, "costgate: tokenizer: %s\n", err);
            goto out;
        }
    }
    /* budget periods (UTC day, month) follow budgets.timezone */
    setenv("TZ", cfg->budgets.timezone, 1);
    tzset();
    const char *tc = getenv("COSTGATE_TEST_CLOCK");
    gw.test_clock = tc && strcmp(tc, "1") == 0;
    if (gw.test_clock)
        CG_WARN("COSTGATE_TEST_CLOCK=1: POST /admin/test/clock may set the time (tests only)");
    if (cfg->budgets.enabled) {
        gw.budgets = cg_budgets_new(cfg, gateway_clock, &gw);
        if (!gw.budgets || cg_budgets_load_ledger(gw.budgets, cfg->ledger_path, err, sizeof err) ||
            cg_admin_budget_load(&gw, cfg->ledger_path, err, sizeof err)) {
            fprintf(stderr, "costgate: budgets: %s\n", gw.budgets ? err : "out of memory");
            goto out;
        }
    }
    if (cfg->tiering.enabled) {
        gw.classifier = cg_classifier_new(NULL, err, sizeof err);
        if (!gw.classifier) {
            fprintf(stderr, "costgate: tiering classifier: %s\n", err);
            goto out;
        }
        if (cfg->tiering.learned_model[0]) {
            gw.learned = cg_learned_load(cfg->tiering.learned_model, err, sizeof err);
            if (!gw.learned) {
                fprintf(stderr, "costgate: %s: tiering.learned.model: %s\n", cfg->path, err);
                goto out;
            }
        }
    }
    if (cfg->tiering.enabled && cfg->tiering.bandit) {
        gw.bandit = cg_bandit_new(&cfg->tiering, 0);
        if (!gw.bandit || cg_bandit_load(gw.bandit, cfg->ledger_path, err, sizeof err) != 0) {
            fprintf(stderr, "costgate: tiering.bandit: %s\n", gw.bandit ? err : "out of memory");
            goto out;
        }
        cg_bandit_set_ledger(gw.bandit, gw.ledger);
        if (cg_feedback_hook_add("bandit", bandit_feedback, gw.bandit) != 0) {
            fprintf(stderr, "costgate: too many feedback consumers\n");
            goto out;
        }
    }
    if (cfg->cache.enabled) {
        gw.cache = cg_cache_new(&cfg->cache, cg_gateway_now_ms, &gw, err, sizeof err);
        gw.coalesce = gw.cache ? cg_coalesce_new() : NULL;
        if (gw.cache)
            cg_cache_attach_ledger(gw.cache, gw.ledger);
        if (!gw.cache || !gw.coalesce ||
            cg_cache_load(gw.cache, cfg->ledger_path, err, sizeof err) != 0 ||
            cg_feedback_hook_add("cache", cg_admin_cache_feedback_hook, &gw) != 0) {
            fprintf(stderr, "costgate: cache: %s\n", gw.cache ? err : "out of memory");
            goto out;
        }
        if (cfg->cache.semantic.enabled && cg_semrt_start(&gw, err, sizeof err) != 0) {
            fprintf(stderr, "costgate: %s: %s\n", cfg->path, err);
            goto out;
        }
    }
    if (cfg->n_slos) {
        gw.slos = cg_slos_new(cfg->slos, cfg->n_slos);
        gw.slo_runner = gw.slos ? cg_slo_runner_start(gw.slos, cfg->slo_eval_interval_ms,
                                                      cfg->slo_webhook, gateway_clock, &gw)
                                : NULL;
        if (!gw.slo_runner) {
            fprintf(stderr, "costgate: cannot start the SLO evaluator\n");
            goto out;
        }
    }
    /* signals are taken by sigwait below, never by a worker thread */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    srv = cg_server_start(&gw, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "costgate: %s\n", err);
        goto out;
    }
    char admin[16] = "-";
    if (cg_server_admin_port(srv))
        snprintf(admin, sizeof admin, "%d", cg_server_admin_port(srv));
    printf("costgate: listening on http://%s:%d (admin %s) workers %d\n", cfg->listen_host,
           cg_server_port(srv), admin, cfg->workers);
    fflush(stdout);
    if (port_file) {
        FILE *pf = fopen(port_file, "w");
        if (pf) {
            fprintf(pf, "%d %d\n", cg_server_port(srv), cg_server_admin_port(srv));
            fclose(pf);
        }
    }
    int sig = 0;
    sigwait(&set, &sig);
    CG_INFO("signal %d: draining in-flight requests", sig);
    cg_server_stop(srv, 10000);
    srv = NULL;
    rc = 0;
out:
    cg_slo_runner_stop(gw.slo_runner);
    cg_slos_free(gw.slos);
    cg_budgets_free(gw.budgets);
    cg_semrt_stop(&gw);              /* the semantic index is saved (its entries follow) */
    cg_cache_persist_sync(gw.cache); /* queued cache writes and hit counters */
    cg_bandit_flush(gw.bandit);      /* the last arm changes, before the ledger closes */
    if (gw.ledger)
        cg_ledger_close(gw.ledger);
    cg_feedback_hooks_clear();
    cg_cache_free(gw.cache);
    cg_coalesce_free(gw.coalesce);
    cg_bandit_free(gw.bandit);
    cg_classifier_free(gw.classifier);
    cg_learned_free(gw.learned);
    cg_metrics_free(gw.metrics);
    cg_prices_free(gw.prices);
    for (size_t i = 0; gw.provider_keys && i < cfg->n_providers; i++)
        free(gw.provider_keys[i]);
    free(gw.provider_keys);
    cg_config_free(cfg);
    return rc;
}

static int cmd_report(int argc, char **argv) {
    cg_report_opts ro = {.db_path = "var/ledger.db", .group_by = "day", .format = CG_REPORT_TABLE};
    const char *cfg_path = NULL;
    static const struct option opts[] = {
        {"db", required_argument, 0, 'd'},     {"by", required_argument, 0, 'b'},
        {"since", required_argument, 0, 's'},  {"until", required_argument, 0, 'u'},
        {"tenant", required_argument, 0, 't'}, {"format", required_argument, 0, 'f'},
        {"limit", required_argument, 0, 'l'},  {"config", required_argument, 0, 'c'},
        {"predictions", no_argument, 0, 'p'},  {"tiers", no_argument, 0, 'T'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    int o, predictions = 0, tiers = 0;
    while ((o = getopt_long(argc, argv, "d:b:s:u:t:f:l:c:pTh", opts, NULL)) != -1) {
        switch (o) {
        case 'd':
            ro.db_path = optarg;
            break;
        case 'b':
            ro.group_by = optarg;
            break;
        case 's':
            ro.since = optarg;
            break;
        case 'u':
            ro.until = optarg;
            break;
        case 't':
            ro.tenant = optarg;
            break;
        case 'l':
            ro.limit = atoi(optarg);
            break;
        case 'c':
            cfg_path = optarg;
            break;
        case 'p':
            predictions = 1;
            break;
        case 'T':
            tiers = 1;
            break;
        case 'f':
            if (cg_report_format_parse(optarg, &ro.format) != 0) {
                fprintf(stderr, "costgate report: --format must be table, json or csv\n");
                return 2;
            }
            break;
        case 'h':
            puts("usage: costgate report [--db PATH | -c CONFIG] [--by FIELDS] [--since DATE]\n"
                 "                       [--until DATE] [--tenant T] [--format table|json|csv]\n"
                 "                       [--limit N] [--predictions | --tiers]\n"
                 "\n"
                 "Five-axis cost report (input, output, embedding, external API,\n"
                 "storage/compute) from the ledger, with totals, savings against the\n"
                 "baseline and each axis's share of the total.\n"
                 "  --db       ledger file (default var/ledger.db; -c takes ledger.path)\n"
                 "  --by       comma list of day,tenant,user,segment,feature,intent,model,\n"
                 "             provider,key,status,requested,action (default day); action\n"
                 "             groups budget downgrades, dry-runs and SLO fallbacks\n"
                 "  --since/--until  YYYY-MM-DD, inclusive, UTC\n"
                 "  --limit    show at most N groups (totals still cover all)\n"
                 "  --predictions  instead: per model, pre-call input-token predictions\n"
                 "             against the provider's reported usage (error distribution)\n"
                 "  --tiers    instead: model tiering per tier: answers served and their\n"
                 "             share (tier mix), cost, baseline and savings, attempts\n"
                 "             escalated away and their cost, thumbs up/down and the\n"
                 "             thumbs-up rate from /v1/feedback (table or json)");
            return 0;
        default:
            return 2;
        }
    }
    cg_config *cfg = NULL;
    if (cfg_path) {
        if (load_config(cfg_path, &cfg) != 0)
            return 2;
        ro.db_path = cfg->ledger_path;
    }
    char err[512];
    int rc = predictions ? cg_report_predictions(ro.db_path, ro.format == CG_REPORT_JSON, stdout,
                                                 err, sizeof err)
             : tiers
                 ? cg_report_tiers(ro.db_path, ro.format == CG_REPORT_JSON, stdout, err, sizeof err)
                 : cg_report_run(&ro, stdout, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "costgate report: %s\n", err);
    cg_config_free(cfg);
    return rc == 0 ? 0 : 1;
}

static int cmd_keys(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "hash") != 0) {
        puts("usage: costgate keys hash [KEY]\n"
             "\n"
             "Prints the SHA-256 (hex) of KEY, or of standard input when KEY is omitted\n"
             "(a trailing newline is removed), for keys[].sha256 or admin.key_sha256.\n"
             "The config stores only this hash; costgate never stores or logs the key.");
        return argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) ? 0 : 2;
    }
    char buf[4096];
    size_t n;
    if (argc >= 3) {
        n = strlen(argv[2]);
        if (n >= sizeof buf)
            return 2;
        memcpy(buf, argv[2], n);
    } else {
        n = fread(buf, 1, sizeof buf - 1, stdin);
        while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            n--;
    }
    uint8_t d[32];
    char hex[65];
    cg_sha256(buf, n, d);
    cg_hex(d, 32, hex);
    puts(hex);
    return 0;
}

static void print_price(const cg_price *p) {
    cg_price e;
    cg_price_effective(p, &e);
    char a[40], b[40], c[40], d[40], f[40];
    printf("%-40s %-10s in $%s  cached $%s  write5m $%s  write1h $%s  out $%s  /1M tok\n", p->model,
           p->provider, cg_money_fmt(e.input, a, sizeof a),
           cg_money_fmt(e.cached_input, b, sizeof b), cg_money_fmt(e.cache_write_5m, c, sizeof c),
           cg_money_fmt(e.cache_write_1h, d, sizeof d), cg_money_fmt(e.output, f, sizeof f));
}

static int cmd_prices(int argc, char **argv) {
    const char *cfg_path = NULL, *litellm = NULL;
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"litellm", required_argument, 0, 'l'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "c:l:h", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            cfg_path = optarg;
            break;
        case 'l':
            litellm = optarg;
            break;
        case 'h':
            puts("usage: costgate prices [-c CONFIG] [--litellm FILE] [MODEL...]\n"
                 "\n"
                 "Lists the price table (built-in, plus CONFIG's LiteLLM file and\n"
                 "overrides, plus FILE), or looks up the given models the way the gateway\n"
                 "does (exact, then without a date suffix, then without a provider/ prefix).\n"
                 "Prices are USD per million tokens, exact to the nano-dollar.");
            return 0;
        default:
            return 2;
        }
    }
    cg_config *cfg = NULL;
    cg_price_table *t = NULL;
    int rc = 1;
    if (cfg_path) {
        if (load_config(cfg_path, &cfg) != 0)
            return 2;
        t = load_prices(cfg);
    } else {
        t = cg_prices_builtin();
    }
    if (!t)
        goto out;
    if (litellm) {
        char err[512];
        int n = cg_prices_load_litellm(t, litellm, 0, err, sizeof err);
        if (n < 0) {
            fprintf(stderr, "costgate prices: %s\n", err);
            goto out;
        }
        fprintf(stderr, "imported %d models from %s\n", n, litellm);
    }
    rc = 0;
    if (optind >= argc) {
        for (size_t i = 0; i < cg_prices_count(t); i++)
            print_price(cg_prices_at(t, i));
    }
    for (int i = optind; i < argc; i++) {
        const cg_price *p = cg_prices_find(t, argv[i]);
        if (p)
            print_price(p);
        else {
            fprintf(stderr, "%s: no price\n", argv[i]);
            rc = 1;
        }
    }
out:
    cg_prices_free(t);
    cg_config_free(cfg);
    return rc;
}

static int cmd_config(int argc, char **argv) {
    if (argc < 3 || strcmp(argv[1], "check") != 0) {
        puts("usage: costgate config check FILE\n"
             "\n"
             "Loads and validates FILE exactly as `serve` would; prints \"ok\" or the\n"
             "first problem as FILE:LINE: FIELD: PROBLEM and exits non-zero.");
        return argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) ? 0 : 2;
    }
    cg_config *cfg = NULL;
    if (load_config(argv[2], &cfg) != 0)
        return 2;
    printf("ok: %s (%zu providers, %zu keys, %d workers)\n", argv[2], cfg->n_providers, cfg->n_keys,
           cfg->workers);
    cg_config_free(cfg);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "report") == 0)
        return cmd_report(argc - 1, argv + 1);
    if (strcmp(cmd, "keys") == 0)
        return cmd_keys(argc - 1, argv + 1);
    if (strcmp(cmd, "prices") == 0)
        return cmd_prices(argc - 1, argv + 1);
    if (strcmp(cmd, "config") == 0)
        return cmd_config(argc - 1, argv + 1);
    if (strcmp(cmd, "budget") == 0)
        return cg_budget_main(argc - 1, argv + 1);
    if (strcmp(cmd, "tokens") == 0)
        return cg_tokens_main(argc - 1, argv + 1);
    if (strcmp(cmd, "embed") == 0)
        return cg_embed_main(argc - 1, argv + 1);
    if (strcmp(cmd, "cache") == 0)
        return cg_cache_main(argc - 1, argv + 1);
    if (strcmp(cmd, "tier-train") == 0)
        return cg_tier_train_main(argc - 1, argv + 1);
    if (strcmp(cmd, "tier-eval") == 0)
        return cg_tier_eval_main(argc - 1, argv + 1);
    if (strcmp(cmd, "eval") == 0) {
        if (argc >= 3 && strcmp(argv[2], "semantic") == 0)
            return cg_eval_semantic_main(argc - 2, argv + 2);
        int help = argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0);
        fputs("usage: costgate eval semantic [options]   (costgate eval semantic --help)\n",
              help ? stdout : stderr);
        return help ? 0 : 2;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "costgate: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
