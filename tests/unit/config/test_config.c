/* test_config: unit tests of the config module (src/config).
 *
 * Covers a full config round-tripping into cg_config, defaults, ${VAR}
 * interpolation, the exact "FILE:LINE: FIELD: PROBLEM" prefix of many
 * invalid configs, provider matching, key lookup, and that
 * config/example.yaml (from $CG_SOURCE_DIR) loads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/hash.h"

/* SHA-256 hex of the literal keys "cg-test-key", "cg-other-key" and
 * "cg-admin-test-key". */
#define TEST_KEY_HEX "92f4e5df8ff29f2b75936a2d98a4766055ee029c4ae35d5a23521589772138ec"
#define OTHER_KEY_HEX "7418a54fb2f089aac3b766d1369aa527004981a8c1066f4b4c8d9ec5ae75fd6c"
#define ADMIN_KEY_HEX "241d6416e7c7bf1bd3cba429a5697802d0416b2f9485845ac60824b431ef29fa"

/* A minimal valid tail: providers on lines N+1..N+3, keys on N+4..N+7. */
#define MIN_TAIL                                                                                   \
    "providers:\n"                                                                                 \
    "  - name: openai\n"                                                                           \
    "    api: openai\n"                                                                            \
    "keys:\n"                                                                                      \
    "  - name: k\n"                                                                                \
    "    sha256: \"" TEST_KEY_HEX "\"\n"                                                           \
    "    tenant: t\n"

static const char FULL[] =
    "# full config\n"                                                          /* 1 */
    "server:\n"                                                                /* 2 */
    "  listen: \"0.0.0.0:9000\"\n"                                             /* 3 */
    "  workers: 3\n"                                                           /* 4 */
    "  max_body_bytes: 512KiB\n"                                               /* 5 */
    "  log_level: debug\n"                                                     /* 6 */
    "  timeouts:\n"                                                            /* 7 */
    "    connect_ms: 1500\n"                                                   /* 8 */
    "    first_byte_ms: 30000\n"                                               /* 9 */
    "    idle_ms: 20000\n"                                                     /* 10 */
    "    drain_ms: 0\n"                                                        /* 11 */
    "  drain_max_bytes: 1MiB\n"                                                /* 12 */
    "admin:\n"                                                                 /* 13 */
    "  listen: \"[::1]:9001\"\n"                                               /* 14 */
    "  key_sha256: \"" ADMIN_KEY_HEX "\"\n"                                    /* 15 */
    "ledger:\n"                                                                /* 16 */
    "  path: /tmp/cg-ledger.db\n"                                              /* 17 */
    "  batch_max: 512\n"                                                       /* 18 */
    "pricing:\n"                                                               /* 19 */
    "  unknown_model: allow\n"                                                 /* 20 */
    "  litellm_file: data/litellm.json\n"                                      /* 21 */
    "  models:\n"                                                              /* 22 */
    "    my-model:\n"                                                          /* 23 */
    "      provider: openai\n"                                                 /* 24 */
    "      kind: chat\n"                                                       /* 25 */
    "      input: \"1.10\"\n"                                                  /* 26 */
    "      cached_input: \"0.55\"\n"                                           /* 27 */
    "      cache_write_5m: \"1.375\"\n"                                        /* 28 */
    "      cache_write_1h: 2.2\n"                                              /* 29 */
    "      output: \"4.40\"\n"                                                 /* 30 */
    "      batch_input: \"0.55\"\n"                                            /* 31 */
    "      batch_output: \"2.20\"\n"                                           /* 32 */
    "      max_output_tokens: 16384\n"                                         /* 33 */
    "      context_window: 128000\n"                                           /* 34 */
    "    my-embed:\n"                                                          /* 35 */
    "      kind: embedding\n"                                                  /* 36 */
    "      input: 0.02\n"                                                      /* 37 */
    "    claude-house:\n"                                                      /* 38 */
    "      input: 3\n"                                                         /* 39 */
    "      output: 15\n"                                                       /* 40 */
    "providers:\n"                                                             /* 41 */
    "  - name: openai\n"                                                       /* 42 */
    "    api: openai\n"                                                        /* 43 */
    "    base_url: https://api.openai.com/\n"                                  /* 44 */
    "    api_key_env: OPENAI_API_KEY\n"                                        /* 45 */
    "    models: [\"gpt-*\", \"o1*\", \"text-embedding-3-small\", my-embed]\n" /* 46 */
    "  - name: local\n"                                                        /* 47 */
    "    api: openai\n"                                                        /* 48 */
    "    base_url: \"http://127.0.0.1:11434/v1\"\n"                            /* 49 */
    "  - name: anthropic\n"                                                    /* 50 */
    "    api: anthropic\n"                                                     /* 51 */
    "    api_key_env: ANTHROPIC_API_KEY\n"                                     /* 52 */
    "    models:\n"                                                            /* 53 */
    "      - \"claude-*\"\n"                                                   /* 54 */
    "keys:\n"                                                                  /* 55 */
    "  - name: test\n"                                                         /* 56 */
    "    sha256: \"" TEST_KEY_HEX "\"\n"                                       /* 57 */
    "    tenant: acme\n"                                                       /* 58 */
    "    user: alice\n"                                                        /* 59 */
    "    segment: pro\n"                                                       /* 60 */
    "    allow_attribution: true\n"                                            /* 61 */
    "  - name: other\n"                                                        /* 62 */
    "    sha256: \"" OTHER_KEY_HEX "\"\n"                                      /* 63 */
    "    tenant: globex\n";                                                    /* 64 */

static cg_config *load_ok(const char *yaml) {
    cg_config *c = NULL;
    char err[1024] = "";
    int rc = cg_config_load_string("t.yaml", yaml, strlen(yaml), &c, err, sizeof err);
    if (rc != 0)
        fail_msg("expected success, got: %s", err);
    assert_non_null(c);
    return c;
}

static void expect_err(const char *yaml, const char *prefix) {
    cg_config *c = (cg_config *)0x1;
    char err[1024] = "";
    int rc = cg_config_load_string("t.yaml", yaml, strlen(yaml), &c, err, sizeof err);
    if (rc != -1 || c != NULL) {
        cg_config_free(c);
        fail_msg("expected error \"%s\", got success", prefix);
    }
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("expected prefix \"%s\"\n               got \"%s\"", prefix, err);
}

static void test_full_roundtrip(void **state) {
    (void)state;
    cg_config *c = load_ok(FULL);
    uint8_t h[32];
    assert_string_equal(c->path, "t.yaml");
    assert_string_equal(c->listen_host, "0.0.0.0");
    assert_int_equal(c->listen_port, 9000);
    assert_int_equal(c->workers, 3);
    assert_int_equal(c->max_body_bytes, 512 * 1024);
    assert_string_equal(c->log_level, "debug");
    assert_int_equal(c->connect_timeout_ms, 1500);
    assert_int_equal(c->first_byte_timeout_ms, 30000);
    assert_int_equal(c->idle_timeout_ms, 20000);
    assert_int_equal(c->drain_timeout_ms, 0);
    assert_int_equal(c->drain_max_bytes, 1 << 20);
    assert_string_equal(c->admin_listen_host, "::1");
    assert_int_equal(c->admin_listen_port, 9001);
    assert_int_equal(c->has_admin_key, 1);
    cg_sha256("cg-admin-test-key", strlen("cg-admin-test-key"), h);
    assert_memory_equal(c->admin_key_sha256, h, 32);
    assert_string_equal(c->ledger_path, "/tmp/cg-ledger.db");
    assert_int_equal(c->ledger_batch_max, 512);
    assert_int_equal(c->allow_unpriced, 1);
    assert_string_equal(c->litellm_prices_path, "data/litellm.json");

    assert_int_equal(c->n_price_overrides, 3);
    const cg_price *p = &c->price_overrides[0];
    assert_string_equal(p->model, "my-model");
    assert_string_equal(p->provider, "openai");
    assert_int_equal(p->kind, CG_MODEL_CHAT);
    assert_int_equal(p->input, 1100000000);
    assert_int_equal(p->cached_input, 550000000);
    assert_int_equal(p->cache_write_5m, 1375000000);
    assert_int_equal(p->cache_write_1h, 2200000000); /* unquoted 2.2: parsed as text */
    assert_int_equal(p->output, 4400000000);
    assert_int_equal(p->batch_input, 550000000);
    assert_int_equal(p->batch_output, 2200000000);
    assert_int_equal(p->max_output_tokens, 16384);
    assert_int_equal(p->context_window, 128000);
    assert_true(p->web_search_per_1k == CG_PRICE_UNSET);
    p = &c->price_overrides[1];
    assert_string_equal(p->model, "my-embed");
    assert_string_equal(p->provider, "openai"); /* inferred from providers[0].models */
    assert_int_equal(p->kind, CG_MODEL_EMBEDDING);
    assert_int_equal(p->input, 20000000);
    assert_int_equal(p->output, 0);
    assert_true(p->cached_input == CG_PRICE_UNSET);
    assert_true(p->batch_input == CG_PRICE_UNSET);
    assert_int_equal(p->max_output_tokens, 0);
    p = &c->price_overrides[2];
    assert_string_equal(p->model, "claude-house");
    assert_string_equal(p->provider, "openai"); /* "local" serves every openai model */
    assert_int_equal(p->input, 3000000000);
    assert_int_equal(p->output, 15000000000);

    assert_int_equal(c->n_providers, 3);
    assert_string_equal(c->providers[0].name, "openai");
    assert_int_equal(c->providers[0].api, CG_API_OPENAI);
    assert_string_equal(c->providers[0].base_url, "https://api.openai.com");
    assert_string_equal(c->providers[0].api_key_env, "OPENAI_API_KEY");
    assert_int_equal(c->providers[0].n_models, 4);
    assert_string_equal(c->providers[0].models[0], "gpt-*");
    assert_string_equal(c->providers[0].models[3], "my-embed");
    assert_string_equal(c->providers[1].name, "local");
    assert_string_equal(c->providers[1].base_url, "http://127.0.0.1:11434/v1");
    assert_string_equal(c->providers[1].api_key_env, "");
    assert_int_equal(c->providers[1].n_models, 0);
    assert_string_equal(c->providers[2].name, "anthropic");
    assert_int_equal(c->providers[2].api, CG_API_ANTHROPIC);
    assert_string_equal(c->providers[2].base_url, "https://api.anthropic.com"); /* default */
    assert_int_equal(c->providers[2].n_models, 1);
    assert_string_equal(c->providers[2].models[0], "claude-*");

    assert_int_equal(c->n_keys, 2);
    assert_string_equal(c->keys[0].name, "test");
    cg_sha256("cg-test-key", strlen("cg-test-key"), h);
    assert_memory_equal(c->keys[0].sha256, h, 32);
    assert_string_equal(c->keys[0].tenant, "acme");
    assert_string_equal(c->keys[0].user, "alice");
    assert_string_equal(c->keys[0].segment, "pro");
    assert_int_equal(c->keys[0].allow_attribution, 1);
    assert_string_equal(c->keys[1].name, "other");
    assert_string_equal(c->keys[1].tenant, "globex");
    assert_string_equal(c->keys[1].user, "");
    assert_string_equal(c->keys[1].segment, "default");
    assert_int_equal(c->keys[1].allow_attribution, 0);
    cg_config_free(c);
}

static void test_defaults(void **state) {
    (void)state;
    cg_config *c = load_ok(MIN_TAIL);
    assert_string_equal(c->listen_host, "127.0.0.1");
    assert_int_equal(c->listen_port, 8080);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(c->workers, ncpu < 1 ? 1 : ncpu > 64 ? 64 : ncpu);
    assert_int_equal(c->max_body_bytes, 4 << 20);
    assert_int_equal(c->connect_timeout_ms, 5000);
    assert_int_equal(c->first_byte_timeout_ms, 120000);
    assert_int_equal(c->idle_timeout_ms, 60000);
    assert_int_equal(c->drain_timeout_ms, 10000);
    assert_int_equal(c->drain_max_bytes, 4 << 20);
    assert_string_equal(c->log_level, "info");
    assert_string_equal(c->admin_listen_host, "");
    assert_int_equal(c->has_admin_key, 0);
    assert_string_equal(c->ledger_path, "var/ledger.db");
    assert_int_equal(c->ledger_batch_max, 256);
    assert_int_equal(c->ledger_spool, 1);
    assert_int_equal(c->ledger_spool_slots, 4096);
    assert_int_equal(c->ledger_commit_delay_ms, 10);
    assert_int_equal(c->ledger_predict_every, 16);
    assert_int_equal(c->allow_unpriced, 0);
    assert_string_equal(c->litellm_prices_path, "");
    assert_int_equal(c->n_price_overrides, 0);
    assert_null(c->price_overrides);
    assert_string_equal(c->providers[0].base_url, "https://api.openai.com");
    assert_string_equal(c->providers[0].api_key_env, "");
    assert_int_equal(c->providers[0].n_models, 0);
    assert_string_equal(c->keys[0].user, "");
    assert_string_equal(c->keys[0].segment, "default");
    assert_int_equal(c->keys[0].allow_attribution, 0);
    cg_config_free(c);

    /* Empty sections and null values keep the defaults. */
    c = load_ok("server:\nadmin: ~\nledger:\n  path:\n  batch_max: null\n" MIN_TAIL);
    assert_int_equal(c->listen_port, 8080);
    assert_string_equal(c->ledger_path, "var/ledger.db");
    assert_int_equal(c->ledger_batch_max, 256);
    cg_config_free(c);

    /* Byte sizes, port 0, quoted integers, yes/no. */
    c = load_ok("server:\n  listen: \"localhost:0\"\n  workers: \"2\"\n  max_body_bytes: 2 MiB\n"
                "  drain_max_bytes: 0\n" MIN_TAIL "    allow_attribution: yes\n");
    assert_string_equal(c->listen_host, "localhost");
    assert_int_equal(c->listen_port, 0);
    assert_int_equal(c->workers, 2);
    assert_int_equal(c->max_body_bytes, 2 << 20);
    assert_int_equal(c->drain_max_bytes, 0);
    assert_int_equal(c->keys[0].allow_attribution, 1);
    cg_config_free(c);
}

static void test_env_interpolation(void **state) {
    (void)state;
    setenv("CGT_PORT", "9191", 1);
    setenv("CGT_TENANT", "acme", 1);
    setenv("CGT_EMPTY", "", 1);
    setenv("CGT_HASH", TEST_KEY_HEX, 1);
    unsetenv("CGT_UNSET");
    cg_config *c = load_ok("server:\n"
                           "  listen: \"127.0.0.1:${CGT_PORT}\"\n"
                           "  workers: ${CGT_UNSET:-4}\n"
                           "providers:\n"
                           "  - name: openai\n"
                           "    api: openai\n"
                           "    base_url: \"${CGT_UNSET:-https://proxy.example:8443/openai/}\"\n"
                           "    api_key_env: ${CGT_EMPTY:-OPENAI_API_KEY}\n"
                           "keys:\n"
                           "  - name: k-${CGT_TENANT}\n"
                           "    sha256: ${CGT_HASH}\n"
                           "    tenant: ${CGT_TENANT}\n"
                           "    user: \"a$${CGT_TENANT}b${CGT_EMPTY}$x\"\n"
                           "    segment: ${CGT_UNSET:-}seg\n");
    assert_int_equal(c->listen_port, 9191);
    assert_int_equal(c->workers, 4);
    assert_string_equal(c->providers[0].base_url, "https://proxy.example:8443/openai");
    assert_string_equal(c->providers[0].api_key_env, "OPENAI_API_KEY");
    assert_string_equal(c->keys[0].name, "k-acme");
    assert_string_equal(c->keys[0].tenant, "acme");
    assert_string_equal(c->keys[0].user, "a${CGT_TENANT}b$x");
    assert_string_equal(c->keys[0].segment, "seg");
    assert_non_null(cg_config_key_lookup(c, "cg-test-key", 11));
    cg_config_free(c);

    expect_err("server:\n  workers: 2\n  listen: \"127.0.0.1:${CGT_UNSET}\"\n" MIN_TAIL,
               "t.yaml:3: server.listen: environment variable CGT_UNSET is not set");
    expect_err("server:\n  listen: \"127.0.0.1:${CGT_PORT\"\n" MIN_TAIL,
               "t.yaml:2: server.listen: bad ${CGT_PORT...}");
    expect_err("server:\n  listen: \"127.0.0.1:${CGT_PORT:-80\"\n" MIN_TAIL,
               "t.yaml:2: server.listen: unterminated ${CGT_PORT:-...}");
    expect_err("server:\n  listen: \"127.0.0.1:${1X}\"\n" MIN_TAIL,
               "t.yaml:2: server.listen: bad ${...}: the variable name must match");
    /* Interpolated text is still type-checked. */
    setenv("CGT_WORKERS", "lots", 1);
    expect_err("server:\n  workers: ${CGT_WORKERS}\n" MIN_TAIL,
               "t.yaml:2: server.workers: must be an integer in 0..64 (got \"lots\")");
    unsetenv("CGT_PORT");
    unsetenv("CGT_TENANT");
    unsetenv("CGT_EMPTY");
    unsetenv("CGT_HASH");
    unsetenv("CGT_WORKERS");
}

/* Each invalid config and the exact start of its message. */
static const struct {
    const char *yaml, *prefix;
} BAD[] = {
    /* wrong types */
    {"server: [1, 2]\n" MIN_TAIL, "t.yaml:1: server: expected a mapping, got a sequence"},
    {"server:\n  listen: [a]\n" MIN_TAIL,
     "t.yaml:2: server.listen: expected a scalar, got a sequence"},
    {"server:\n  workers: many\n" MIN_TAIL,
     "t.yaml:2: server.workers: must be an integer in 0..64 (got \"many\")"},
    {"server:\n  workers: 2.0\n" MIN_TAIL, "t.yaml:2: server.workers: must be an integer in 0..64"},
    {"providers: openai\nkeys: []\n", "t.yaml:1: providers: expected a sequence, got a scalar"},
    {"keys:\n  a: 1\nproviders:\n  - name: x\n    api: openai\n",
     "t.yaml:2: keys: expected a sequence, got a mapping"},
    /* ranges */
    {"server:\n  workers: 65\n" MIN_TAIL,
     "t.yaml:2: server.workers: must be an integer in 0..64 (got \"65\")"},
    {"server:\n  workers: -1\n" MIN_TAIL, "t.yaml:2: server.workers: must be an integer in 0..64"},
    {"server:\n  timeouts:\n    idle_ms: 0\n" MIN_TAIL,
     "t.yaml:3: server.timeouts.idle_ms: must be an integer in 1..3600000"},
    {"server:\n  max_body_bytes: 4MB\n" MIN_TAIL,
     "t.yaml:2: server.max_body_bytes: must be a byte count in 1024..1073741824"},
    {"server:\n  max_body_bytes: 2GiB\n" MIN_TAIL,
     "t.yaml:2: server.max_body_bytes: must be a byte count in 1024..1073741824"},
    {"ledger:\n  batch_max: 99999999999999999999\n" MIN_TAIL,
     "t.yaml:2: ledger.batch_max: must be an integer in 1..65536"},
    {"ledger:\n  path: x.db\n  commit_delay_ms: 5000\n" MIN_TAIL,
     "t.yaml:3: ledger.commit_delay_ms: must be an integer in 0..1000"},
    {"ledger:\n  predict_every: -1\n" MIN_TAIL,
     "t.yaml:2: ledger.predict_every: must be an integer in 0..1048576"},
    {"ledger:\n  spool_slots: 8\n" MIN_TAIL,
     "t.yaml:2: ledger.spool_slots: must be an integer in 64..1048576"},
    {"ledger:\n  spool: sometimes\n" MIN_TAIL, "t.yaml:2: ledger.spool:"},
    {"server:\n  log_level: verbose\n" MIN_TAIL,
     "t.yaml:2: server.log_level: must be one of debug|info|warn|error (got \"verbose\")"},
    /* listen */
    {"server:\n  listen: localhost\n" MIN_TAIL,
     "t.yaml:2: server.listen: must be host:port with port 0..65535"},
    {"server:\n  listen: \"127.0.0.1:70000\"\n" MIN_TAIL,
     "t.yaml:2: server.listen: must be host:port with port 0..65535"},
    {"server:\n  listen: \"::1:8080\"\n" MIN_TAIL,
     "t.yaml:2: server.listen: must be host:port with port 0..65535"},
    {"server:\n  listen: \":8080\"\n" MIN_TAIL, "t.yaml:2: server.listen: must be host:port"},
    {"admin:\n  listen: \"127.0.0.1:8080\"\n" MIN_TAIL,
     "t.yaml:2: admin.listen: must differ from server.listen"},
    /* unknown fields and duplicate mapping keys */
    {"provders:\n  - name: openai\n    api: openai\n",
     "t.yaml:1: provders: unknown field (did you mean \"providers\"?)"},
    {"server:\n  timeouts:\n    idle: 5\n" MIN_TAIL,
     "t.yaml:3: server.timeouts.idle: unknown field"},
    {"providers:\n  - name: openai\n    api: openai\n    bse_url: http://x\n",
     "t.yaml:4: providers[0].bse_url: unknown field (did you mean \"base_url\"?)"},
    {"server:\n  workers: 1\nserver:\n  workers: 2\n" MIN_TAIL,
     "t.yaml:3: server: duplicate key (first at line 1)"},
    /* hashes */
    {"providers:\n  - name: o\n    api: openai\nkeys:\n  - name: k\n    sha256: abc\n"
     "    tenant: t\n",
     "t.yaml:6: keys[0].sha256: must be exactly 64 hex characters"},
    {"providers:\n  - name: o\n    api: openai\nkeys:\n  - name: k\n    sha256: "
     "\"zz2f4e5df8ff29f2b75936a2d98a4766055ee029c4ae35d5a23521589772138e\"\n    tenant: t\n",
     "t.yaml:6: keys[0].sha256: must be exactly 64 hex characters"},
    {"admin:\n  key_sha256: \"" TEST_KEY_HEX "0\"\n" MIN_TAIL,
     "t.yaml:2: admin.key_sha256: must be exactly 64 hex characters"},
    {"admin:\n  key_sha256: \"" TEST_KEY_HEX "\"\n" MIN_TAIL,
     "t.yaml:8: keys[0].sha256: equals admin.key_sha256"},
    /* duplicates across entries */
    {"providers:\n  - name: openai\n    api: openai\n  - name: openai\n    api: anthropic\n"
     "keys: []\n",
     "t.yaml:4: providers[1].name: duplicate name \"openai\" (same as providers[0] at line 2)"},
    {MIN_TAIL "  - name: k\n    sha256: \"" OTHER_KEY_HEX "\"\n    tenant: t\n",
     "t.yaml:8: keys[1].name: duplicate name \"k\" (same as keys[0] at line 5)"},
    {MIN_TAIL "  - name: k2\n    sha256: \"" TEST_KEY_HEX "\"\n    tenant: t\n",
     "t.yaml:9: keys[1].sha256: duplicate sha256 (same as keys[0] at line 6)"},
    /* prices */
    {"pricing:\n  models:\n    my-model:\n      input: \"1.2.3\"\n      output: 1\n" MIN_TAIL,
     "t.yaml:4: pricing.models.my-model.input: must be a non-negative decimal USD amount"},
    {"pricing:\n  models:\n    my-model:\n      input: 1\n      output: "
     "\"0.0000000001\"\n" MIN_TAIL,
     "t.yaml:5: pricing.models.my-model.output: must be a non-negative decimal USD amount per 1M "
     "tokens with at most 9 decimals (got \"0.0000000001\")"},
    {"pricing:\n  models:\n    my-model:\n      input: -1\n      output: 1\n" MIN_TAIL,
     "t.yaml:4: pricing.models.my-model.input: must be a non-negative"},
    {"pricing:\n  models:\n    my-model:\n      input: 1\n" MIN_TAIL,
     "t.yaml:4: pricing.models.my-model.output: is required"},
    {"pricing:\n  models:\n    my-model:\n      kind: image\n      input: 1\n" MIN_TAIL,
     "t.yaml:4: pricing.models.my-model.kind: must be one of chat|embedding"},
    {"pricing:\n  unknown_model: maybe\n" MIN_TAIL,
     "t.yaml:2: pricing.unknown_model: must be one of reject|allow"},
    {"pricing:\n  models:\n    m:\n      input: 1\n      output: 1\n      outptu: 2\n" MIN_TAIL,
     "t.yaml:6: pricing.models.m.outptu: unknown field (did you mean \"output\"?)"},
    /* required fields: reported at the parent mapping's line */
    {"server:\n  workers: 1\nkeys:\n  - name: k\n    sha256: \"" TEST_KEY_HEX "\"\n    tenant: t\n",
     "t.yaml:1: providers: is required"},
    {"providers:\n  - name: o\n    api: openai\nkeys:\n  - name: k\n    sha256: \"" TEST_KEY_HEX
     "\"\n    user: u\n",
     "t.yaml:5: keys[0].tenant: is required"},
    {"providers:\n  - name: o\n    api: openai\nkeys:\n  - name: k\n    sha256: \"" TEST_KEY_HEX
     "\"\n    tenant: \"\"\n",
     "t.yaml:7: keys[0].tenant: must not be empty"},
    {"providers:\n  - name: openai\n    api: openai\n", "t.yaml:1: keys: is required"},
    {"providers:\n  - api: openai\nkeys: []\n", "t.yaml:2: providers[0].name: is required"},
    {"providers: []\n", "t.yaml:1: providers: must list at least one entry"},
    {"", "t.yaml:1: providers: is required"},
    /* providers */
    {"providers:\n  - name: azure\n    api: azure\nkeys: []\n",
     "t.yaml:3: providers[0].api: must be one of openai|anthropic (got \"azure\")"},
    {"providers:\n  - name: o\n    api: openai\n  - name: a\n    api: anthropic\n"
     "    base_url: ftp://x\n",
     "t.yaml:6: providers[1].base_url: must start with http:// or https://"},
    {"providers:\n  - name: o\n    api: openai\n    base_url: https://user:pw@x.example\n",
     "t.yaml:4: providers[0].base_url: must not contain credentials"},
    {"providers:\n  - name: o\n    api: openai\n    base_url: \"https:///v1\"\n",
     "t.yaml:4: providers[0].base_url: has no host"},
    {"providers:\n  - name: o\n    api: openai\n    base_url: \"http://x:99999\"\n",
     "t.yaml:4: providers[0].base_url: has a bad port"},
    {"providers:\n  - name: o\n    api: openai\n    models: [\"gpt-*-mini\"]\n",
     "t.yaml:4: providers[0].models[0]: must be a model name, or a prefix ending"},
    {"providers:\n  - name: o\n    api: openai\n    api_key_env: \"OPENAI KEY\"\n",
     "t.yaml:4: providers[0].api_key_env: must be an environment variable name"},
    {"providers:\n  - name: \"my provider\"\n    api: openai\n",
     "t.yaml:2: providers[0].name: may only contain letters, digits"},
    {"providers:\n  - name: "
     "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij\n"
     "    api: openai\n",
     "t.yaml:2: providers[0].name: too long (70 bytes, max 63)"},
    {MIN_TAIL "    allow_attribution: maybe\n",
     "t.yaml:8: keys[0].allow_attribution: must be true or false (got \"maybe\")"},
    /* YAML syntax */
    {"providers:\n  - name: openai\n    api: [openai\nkeys: x\n",
     "t.yaml:4: yaml: did not find expected ',' or ']'"},
    {"server:\n  listen: \"a\"\n bad: 1\n" MIN_TAIL, "t.yaml:3: yaml: did not find expected key"},
    {MIN_TAIL "---\nserver: {}\n", "t.yaml:9: yaml: only one YAML document is allowed"},
    {"- a\n- b\n", "t.yaml:1: (root): expected a mapping, got a sequence"},
};

static void test_invalid_configs(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        expect_err(BAD[i].yaml, BAD[i].prefix);
    }
}

static void test_file_errors(void **state) {
    (void)state;
    cg_config *c = (cg_config *)0x1;
    char err[512];
    assert_int_equal(cg_config_load("/nonexistent/cg.yaml", &c, err, sizeof err), -1);
    assert_null(c);
    assert_string_equal(err, "/nonexistent/cg.yaml: cannot open: No such file or directory");

    char path[] = "/tmp/cg-config-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs("server:\n  workers: 100\n" MIN_TAIL, f);
    fclose(f);
    assert_int_equal(cg_config_load(path, &c, err, sizeof err), -1);
    char want[256];
    snprintf(want, sizeof want, "%s:2: server.workers: must be an integer in 0..64", path);
    assert_memory_equal(err, want, strlen(want));
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(FULL, f);
    fclose(f);
    assert_int_equal(cg_config_load(path, &c, err, sizeof err), 0);
    assert_string_equal(c->path, path);
    assert_int_equal(c->n_keys, 2);
    cg_config_free(c);
    unlink(path);
}

static void test_provider_for(void **state) {
    (void)state;
    cg_config *c = load_ok(FULL);
    const cg_provider_cfg *openai = &c->providers[0], *local = &c->providers[1],
                          *anthropic = &c->providers[2];
    assert_ptr_equal(cg_config_provider_for(c, CG_API_OPENAI, "gpt-4o"), openai);
    assert_ptr_equal(cg_config_provider_for(c, CG_API_OPENAI, "gpt-"), openai);
    assert_ptr_equal(cg_config_provider_for(c, CG_API_OPENAI, "o1"), openai);
    assert_ptr_equal(cg_config_provider_for(c, CG_API_OPENAI, "o1-mini"), openai);
    assert_ptr_equal(cg_config_provider_for(c, CG_API_OPENAI, "text-embedding-3-small"), openai);
    /* exact entries do not prefix-match; the catch-all provider takes the rest */
    assert_ptr_equal(cg_config_provider_for(c, CG_API_OPENAI, "text-embedding-3-smallx"), local);
    assert_ptr_equal(cg_config_provider_for(c, CG_API_OPENAI, "llama3"), local);
    assert_ptr_equal(cg_config_provider_for(c, CG_API_OPENAI, "claude-3-haiku"), local);
    assert_ptr_equal(cg_config_provider_for(c, CG_API_ANTHROPIC, "claude-sonnet-4-5"), anthropic);
    assert_null(cg_config_provider_for(c, CG_API_ANTHROPIC, "gpt-4o"));
    assert_null(cg_config_provider_for(c, CG_API_ANTHROPIC, "Claude-3"));
    assert_null(cg_config_provider_for(c, CG_API_OPENAI, NULL));
    cg_config_free(c);

    c = load_ok(MIN_TAIL);
    assert_ptr_equal(cg_config_provider_for(c, CG_API_OPENAI, "anything"), &c->providers[0]);
    assert_null(cg_config_provider_for(c, CG_API_ANTHROPIC, "claude-3"));
    cg_config_free(c);
}

static void test_key_lookup(void **state) {
    (void)state;
    cg_config *c = load_ok(FULL);
    const cg_key_cfg *k = cg_config_key_lookup(c, "cg-test-key", strlen("cg-test-key"));
    assert_non_null(k);
    assert_string_equal(k->name, "test");
    assert_string_equal(k->tenant, "acme");
    k = cg_config_key_lookup(c, "cg-other-key", strlen("cg-other-key"));
    assert_non_null(k);
    assert_string_equal(k->name, "other");
    assert_null(cg_config_key_lookup(c, "cg-test-key", 10));
    assert_null(cg_config_key_lookup(c, "cg-test-keyx", 12));
    assert_null(cg_config_key_lookup(c, "CG-TEST-KEY", 11));
    assert_null(cg_config_key_lookup(c, "", 0));
    assert_null(cg_config_key_lookup(c, "cg-admin-test-key", 17)); /* admin key is not a key */
    assert_null(cg_config_key_lookup(c, TEST_KEY_HEX, 64));        /* the hash is not the key */
    /* Matched keys are memoized per thread: repeated and interleaved
     * lookups keep answering right, and near misses of a memoized key
     * (one byte changed, longer, shorter) still fail. */
    for (int i = 0; i < 20; i++) {
        k = cg_config_key_lookup(c, i % 3 ? "cg-test-key" : "cg-other-key", i % 3 ? 11 : 12);
        assert_non_null(k);
        assert_string_equal(k->name, i % 3 ? "test" : "other");
        assert_null(cg_config_key_lookup(c, "cg-test-kez", 11));
        assert_null(cg_config_key_lookup(c, "dg-test-key", 11));
        assert_null(cg_config_key_lookup(c, "cg-test-keyx", 12));
        assert_null(cg_config_key_lookup(c, "cg-test-ke", 10));
    }
    cg_config_free(c);
    /* A memo entry belongs to the config that made it: the next config
     * (often at the same address) maps the same key to its own entry. */
    c = load_ok(MIN_TAIL);
    k = cg_config_key_lookup(c, "cg-test-key", 11);
    assert_non_null(k);
    assert_string_equal(k->name, "k");
    assert_string_equal(k->tenant, "t");
    assert_null(cg_config_key_lookup(c, "cg-other-key", 12)); /* memoized for FULL only */
    cg_config_free(c);
}

static void test_example_config(void **state) {
    (void)state;
    const char *src = getenv("CG_SOURCE_DIR");
    char path[1024], err[1024] = "";
    cg_config *c = NULL;
    if (!src)
        skip();
    unsetenv("COSTGATE_PORT");
    unsetenv("COSTGATE_ADMIN_PORT");
    unsetenv("COSTGATE_OPENAI_BASE_URL");
    unsetenv("COSTGATE_ANTHROPIC_BASE_URL");
    snprintf(path, sizeof path, "%s/config/example.yaml", src);
    if (cg_config_load(path, &c, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_string_equal(c->listen_host, "127.0.0.1");
    assert_int_equal(c->listen_port, 8080);
    assert_string_equal(c->admin_listen_host, "127.0.0.1");
    assert_int_equal(c->admin_listen_port, 8081);
    assert_string_equal(c->ledger_path, "var/ledger.db");
    assert_int_equal(c->n_providers, 2);
    assert_string_equal(c->providers[0].base_url, "https://api.openai.com");
    assert_string_equal(c->providers[0].api_key_env, "OPENAI_API_KEY");
    assert_string_equal(c->providers[1].base_url, "https://api.anthropic.com");
    assert_string_equal(c->providers[1].api_key_env, "ANTHROPIC_API_KEY");
    const cg_key_cfg *k = cg_config_key_lookup(c, "cg-demo-key", strlen("cg-demo-key"));
    assert_non_null(k);
    assert_string_equal(k->name, "demo");
    assert_string_equal(k->tenant, "demo");
    assert_string_equal(k->user, "demo-user");
    assert_string_equal(k->segment, "default");
    assert_int_equal(k->allow_attribution, 1);
    uint8_t h[32];
    cg_sha256("cg-admin-demo-key", strlen("cg-admin-demo-key"), h);
    assert_int_equal(c->has_admin_key, 1);
    assert_memory_equal(c->admin_key_sha256, h, 32);
    cg_config_free(c);

    /* The ports and upstreams follow the environment. */
    setenv("COSTGATE_PORT", "18080", 1);
    setenv("COSTGATE_ADMIN_PORT", "18081", 1);
    setenv("COSTGATE_OPENAI_BASE_URL", "http://127.0.0.1:19000/", 1);
    if (cg_config_load(path, &c, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(c->listen_port, 18080);
    assert_int_equal(c->admin_listen_port, 18081);
    assert_string_equal(c->providers[0].base_url, "http://127.0.0.1:19000");
    cg_config_free(c);
    unsetenv("COSTGATE_PORT");
    unsetenv("COSTGATE_ADMIN_PORT");
    unsetenv("COSTGATE_OPENAI_BASE_URL");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_roundtrip),    cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_env_interpolation), cmocka_unit_test(test_invalid_configs),
        cmocka_unit_test(test_file_errors),       cmocka_unit_test(test_provider_for),
        cmocka_unit_test(test_key_lookup),        cmocka_unit_test(test_example_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
