/* prices: the model price table.
 *
 * Owns: the built-in prices of current OpenAI and Anthropic models, overrides
 * from config, the importer for LiteLLM's model_prices_and_context_window.json
 * and model-name lookup (exact name, then the name without a dated snapshot
 * suffix, then without a "provider/" prefix). All prices are integer nano-USD
 * per one million tokens; 0 means "free", CG_PRICE_UNSET means "not known".
 */
#ifndef CG_COST_PRICES_H
#define CG_COST_PRICES_H

#include <stddef.h>
#include <stdint.h>

#define CG_PRICE_UNSET INT64_C(-1)

typedef enum { CG_MODEL_CHAT = 0, CG_MODEL_EMBEDDING = 1 } cg_model_kind;

typedef struct cg_price {
    char model[128];
    char provider[32]; /* "openai" | "anthropic" | other LiteLLM provider */
    cg_model_kind kind;
    int64_t input;        /* nano-USD per 1M input tokens (embedding price for embedding models) */
    int64_t cached_input; /* cache read; UNSET -> input price */
    int64_t cache_write_5m; /* UNSET -> input price */
    int64_t cache_write_1h; /* UNSET -> input price */
    int64_t output;
    int64_t batch_input;       /* UNSET -> input / 2 */
    int64_t batch_output;      /* UNSET -> output / 2 */
    int64_t max_output_tokens; /* 0 = unknown */
    int64_t context_window;    /* 0 = unknown */
    int64_t web_search_per_1k; /* nano-USD per 1000 server-side web searches; UNSET = not offered */
} cg_price;

typedef struct cg_price_table cg_price_table;

cg_price_table *cg_prices_new(void);     /* empty */
cg_price_table *cg_prices_builtin(void); /* built-in OpenAI + Anthropic table */
void cg_prices_free(cg_price_table *t);
/* Inserts or replaces by model name. 0 / -1 (out of memory). */
int cg_prices_set(cg_price_table *t, const cg_price *p);
/* Imports every chat/embedding entry of a LiteLLM JSON file; entries already
 * in the table are replaced only if replace != 0. Returns the number imported,
 * or -1 with a message in err. Prices are converted from the file's per-token
 * USD floats to exact nano-USD per 1M tokens by decimal text, not float math. */
int cg_prices_load_litellm(cg_price_table *t, const char *path, int replace, char *err,
                           size_t errlen);
const cg_price *cg_prices_find(const cg_price_table *t, const char *model);
size_t cg_prices_count(const cg_price_table *t);
const cg_price *cg_prices_at(const cg_price_table *t, size_t i);
/* Fills defaults (UNSET cached/cache-write/batch) as described above. */
void cg_price_effective(const cg_price *in, cg_price *out);

#endif
