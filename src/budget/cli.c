/* cli: `costgate budget list|set` over the admin API (see cli.h). */
#include "budget/cli.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "http/admin_client.h"
#include "core/money.h"

static void usage(FILE *f) {
    fputs("usage: costgate budget list [--url URL] [--key KEY] [--json]\n"
          "       costgate budget set --scope SCOPE [--name NAME] [--field FIELD]\n"
          "                           --limit USD|none [--action reject|downgrade|dry_run]\n"
          "                           [--url URL] [--key KEY]\n"
          "\n"
          "Talks to a running gateway's admin listener (default http://127.0.0.1:8081;\n"
          "the admin key from --key or COSTGATE_ADMIN_KEY).\n"
          "  list   spend, in-flight reservations and what is left per budget scope in\n"
          "         the current periods, and the cost SLOs' burn rates and fallback state\n"
          "  set    change a limit now (persisted in the ledger database):\n"
          "         SCOPE default|segment|tenant|feature|global; FIELD for default and\n"
          "         segment: max_per_query | daily_max_per_user | daily_max\n",
          f);
}

static const char *usd_or_none(json_t *v) {
    return json_is_string(v) ? json_string_value(v) : "-";
}

static void print_list(json_t *j) {
    printf("%-13s %-40s %16s %16s %16s %16s  %s\n", "SCOPE", "WHO", "LIMIT", "SPENT", "RESERVED",
           "REMAINING", "RESETS (UTC)");
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(j, "scopes"), i, s) {
        char when[32] = "-";
        json_t *r = json_object_get(s, "reset_at_ms");
        if (json_is_integer(r)) {
            time_t t = (time_t)(json_integer_value(r) / 1000);
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
        }
        printf("%-13s %-40s %16s %16s %16s %16s  %s\n",
               json_string_value(json_object_get(s, "scope")),
               json_string_value(json_object_get(s, "who")),
               usd_or_none(json_object_get(s, "limit_usd")),
               usd_or_none(json_object_get(s, "spent_usd")),
               usd_or_none(json_object_get(s, "reserved_usd")),
               usd_or_none(json_object_get(s, "remaining_usd")), when);
    }
    json_t *slos = json_object_get(j, "slos");
    if (json_array_size(slos)) {
        printf("\n%-24s %-12s %10s %10s %10s %10s %6s %6s %8s\n", "SLO", "SEGMENT", "FAST-L",
               "FAST-S", "SLOW-L", "SLOW-S", "FAST", "SLOW", "FALLBACK");
        json_array_foreach(slos, i, s) {
            printf("%-24s %-12s %10s %10s %10s %10s %6s %6s %8s\n",
                   json_string_value(json_object_get(s, "name")),
                   json_string_value(json_object_get(s, "segment")),
                   usd_or_none(json_object_get(s, "burn_fast_long")),
                   usd_or_none(json_object_get(s, "burn_fast_short")),
                   usd_or_none(json_object_get(s, "burn_slow_long")),
                   usd_or_none(json_object_get(s, "burn_slow_short")),
                   json_is_true(json_object_get(s, "fast_alert")) ? "ALERT" : "ok",
                   json_is_true(json_object_get(s, "slow_alert")) ? "ALERT" : "ok",
                   json_is_true(json_object_get(s, "fallback")) ? "ON" : "off");
        }
    }
}

int cg_budget_main(int argc, char **argv) {
    const char *url = "http://127.0.0.1:8081", *key = getenv("COSTGATE_ADMIN_KEY");
    const char *scope = NULL, *name = NULL, *field = NULL, *limit = NULL, *action = NULL;
    int as_json = 0;
    static const struct option opts[] = {
        {"url", required_argument, 0, 'u'},    {"key", required_argument, 0, 'k'},
        {"scope", required_argument, 0, 's'},  {"name", required_argument, 0, 'n'},
        {"field", required_argument, 0, 'f'},  {"limit", required_argument, 0, 'l'},
        {"action", required_argument, 0, 'a'}, {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    optind = 2;
    int o;
    while ((o = getopt_long(argc, argv, "u:k:s:n:f:l:a:jh", opts, NULL)) != -1) {
        switch (o) {
        case 'u':
            url = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 's':
            scope = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'f':
            field = optarg;
            break;
        case 'l':
            limit = optarg;
            break;
        case 'a':
            action = optarg;
            break;
        case 'j':
            as_json = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            return 2;
        }
    }
    char full[1024];
    snprintf(full, sizeof full, "%s/admin/budgets", url);
    cg_buf out;
    cg_buf_init(&out, 64u << 20);
    long status = 0;
    int rc = 1;
    json_t *body = NULL;
    char *payload = NULL;
    if (strcmp(sub, "list") == 0) {
        if (cg_admin_call("costgate budget", full, key, "GET", NULL, &out, &status) != 0)
            goto done;
    } else if (strcmp(sub, "set") == 0) {
        if (!scope || !limit) {
            fprintf(stderr, "costgate budget set: --scope and --limit are required\n");
            rc = 2;
            goto done;
        }
        int64_t nano;
        if (strcmp(limit, "none") != 0 && cg_money_parse_usd(limit, &nano) != 0) {
            fprintf(stderr, "costgate budget set: --limit must be a USD amount or none\n");
            rc = 2;
            goto done;
        }
        body = json_pack("{s:s}", "scope", scope);
        if (name)
            json_object_set_new(body, "name", json_string(name));
        if (field)
            json_object_set_new(body, "field", json_string(field));
        json_object_set_new(body, "limit_usd",
                            strcmp(limit, "none") == 0 ? json_null() : json_string(limit));
        if (action)
            json_object_set_new(body, "action", json_string(action));
        payload = json_dumps(body, JSON_COMPACT);
        if (!payload ||
            cg_admin_call("costgate budget", full, key, "PUT", payload, &out, &status) != 0)
            goto done;
    } else {
        usage(stderr);
        rc = 2;
        goto done;
    }
    if (status < 200 || status >= 300) {
        fprintf(stderr, "costgate budget: HTTP %ld: %s\n", status, out.data ? out.data : "");
        goto done;
    }
    json_t *j = json_loadb(out.data ? out.data : "", out.len, 0, NULL);
    if (!j) {
        fprintf(stderr, "costgate budget: the gateway's answer is not JSON\n");
        goto done;
    }
    if (as_json || strcmp(sub, "set") == 0)
        printf("%s\n", out.data);
    else
        print_list(j);
    json_decref(j);
    rc = 0;
done:
    json_decref(body);
    free(payload);
    cg_buf_free(&out);
    return rc;
}
