/* config_internal: YAML-walking helpers shared by config.c and config_parse.c.
 *
 * Owns: the parse context (file name, libyaml document, error buffer), dotted
 * field paths, mapping checks (unknown / duplicate keys), ${VAR} interpolation
 * and the typed scalar readers (string, integer, byte size, bool, enum, price,
 * hash, host:port). Every reader reports "FILE:LINE: FIELD: PROBLEM" through
 * cfg_fail and returns -1; nothing here echoes secret-bearing values.
 */
#ifndef CG_CONFIG_CONFIG_INTERNAL_H
#define CG_CONFIG_CONFIG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "config/config.h"
#include "core/buf.h"

#define CFG_PATH_MAX 512                /* longest dotted field path kept for messages */
#define CFG_SCALAR_MAX 65536            /* longest scalar value after interpolation */
#define CFG_FILE_MAX (16u << 20)        /* largest config file read */
#define CFG_SIZE_MAX (INT64_C(1) << 30) /* 1 GiB: ceiling of byte-size fields */

typedef struct cfg_ctx {
    const char *name; /* file name used in messages */
    yaml_document_t *doc;
    char *err;
    size_t errlen;
} cfg_ctx;

/* One field of a mapping. v is NULL when the key is absent or its value is a
 * YAML null (empty, ~, null); line is the value's line, or the parent
 * mapping's line when the key is absent. */
typedef struct cfg_field {
    const yaml_node_t *v;
    int line;
    char path[CFG_PATH_MAX];
} cfg_field;

int cfg_line(const yaml_node_t *n);
const yaml_node_t *cfg_node(const cfg_ctx *x, int id);
/* Writes "NAME:LINE: PATH: PROBLEM" into the error buffer; returns -1. */
int cfg_fail(cfg_ctx *x, int line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* parent + "." + key (or key alone at the root); control bytes become '?'. */
void cfg_path(char *out, size_t cap, const char *parent, const char *key, size_t keylen);
void cfg_path_idx(char *out, size_t cap, const char *parent, size_t i);
/* "a mapping", "a sequence", "a scalar". */
const char *cfg_kind(const yaml_node_t *n);
int cfg_is_null(const yaml_node_t *n);
/* Number of key/value pairs of a mapping node. */
size_t cfg_map_size(const yaml_node_t *n);

/* Checks n is a mapping whose keys are scalars, unique and (unless allowed
 * is NULL) listed in the NULL-terminated allowed set. 0 / -1. */
int cfg_check_map(cfg_ctx *x, const yaml_node_t *n, const char *path, const char *const *allowed);
/* Fails unless n is a sequence. */
int cfg_check_seq(cfg_ctx *x, const yaml_node_t *n, const char *path);
/* Looks key up in map (already checked); returns 1 when present and not null. */
int cfg_field_get(const cfg_ctx *x, const yaml_node_t *map, const char *parent, const char *key,
                  cfg_field *f);
/* Fails with "is required". */
int cfg_required(cfg_ctx *x, const cfg_field *f);

/* ${VAR} / ${VAR:-default} / $${ expansion of in[0..n) appended to out. */
int cfg_interp(cfg_ctx *x, int line, const char *path, const char *in, size_t n, cg_buf *out);

/* Readers for a present field (f->v != NULL). All interpolate first. */
int cfg_text(cfg_ctx *x, const cfg_field *f, cg_buf *out); /* caller inits and frees out */
int cfg_str(cfg_ctx *x, const cfg_field *f, char *out, size_t cap);
int cfg_int(cfg_ctx *x, const cfg_field *f, int64_t min, int64_t max, int64_t *out);
int cfg_size(cfg_ctx *x, const cfg_field *f, int64_t min, int64_t max, int64_t *out);
int cfg_bool(cfg_ctx *x, const cfg_field *f, int *out);
/* names is NULL-terminated; *out is the index of the matching name. */
int cfg_enum(cfg_ctx *x, const cfg_field *f, const char *const *names, int *out);
int cfg_price(cfg_ctx *x, const cfg_field *f, int64_t *out);
/* A plain USD amount (limits), same exact parsing as cfg_price. */
int cfg_usd(cfg_ctx *x, const cfg_field *f, int64_t *out);
int cfg_hash(cfg_ctx *x, const cfg_field *f, uint8_t out[32]);
/* "host:port" or "[v6]:port"; port 0..65535. */
int cfg_listen(cfg_ctx *x, const cfg_field *f, char *host, size_t hostcap, int *port);

/* Index (>= 1) of the first entry that repeats an earlier one among n byte
 * strings, with *first set to the earlier index; 0 when all are distinct;
 * -1 on out of memory. */
long cfg_find_dup(const void *const *keys, const size_t *lens, size_t n, size_t *first);

/* The `budgets` section (config_budget.c). */
int cfg_parse_budgets(cfg_ctx *x, const yaml_node_t *root, cg_config *c);
void cfg_free_budgets(cg_budgets_cfg *b);
/* The `slos`, `slo_webhook`, `slo_eval_interval_ms`, `fallback_models` keys. */
int cfg_parse_slos(cfg_ctx *x, const yaml_node_t *root, cg_config *c);
/* The `tiering` section (config_tiering.c). */
int cfg_parse_tiering(cfg_ctx *x, const yaml_node_t *root, cg_config *c);
void cfg_free_tiering(cg_tiering_cfg *t);
/* The `cache` section (config_cache.c). */
int cfg_parse_cache(cfg_ctx *x, const yaml_node_t *root, cg_config *c);
void cfg_free_cache(cg_cache_cfg *k);

#endif
