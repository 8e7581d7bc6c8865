/* meter: usage x price -> cost on the five axes (see meter.h).
 *
 * Owns: the pricing arithmetic. Every token class contributes the exact
 * product tokens x price in femto-USD (1e-15); each axis sums its products
 * and is rounded once to nano-USD, half away from zero. No float anywhere.
 *  - input axis: uncached input, cache read, cache write 5 min and 1 h at
 *    their effective prices (cg_price_effective); batch prices only the
 *    uncached input at batch_input, cache rates are unchanged.
 *  - output axis: output (reasoning is part of it, never added again).
 *  - embedding axis: embedding tokens at the input (batch: batch_input)
 *    price; for an embedding model every input-side token goes here.
 *  - external API axis: web_searches x web_search_per_1k / 1000.
 *  - storage/compute: 0 here (filled from ingested bills elsewhere).
 * An UNSET or negative price, or a negative token count, contributes 0:
 * callers refuse or flag unpriced models before metering. Amounts saturate
 * at INT64_MAX instead of overflowing.
 */
#include "cost/meter.h"

#include <string.h>

#include "core/money.h"

#define FEMTO_PER_NANO 1000000
/* Largest femto amount whose rounding still fits int64 nano-USD. */
#define FEMTO_CAP ((__int128)INT64_MAX * FEMTO_PER_NANO)

static __int128 femto(int64_t tokens, int64_t price_per_mtok) {
    if (tokens <= 0 || price_per_mtok <= 0)
        return 0;
    __int128 f = cg_money_tok_femto(tokens, price_per_mtok); /* < 2^126: no overflow */
    return f > FEMTO_CAP ? FEMTO_CAP : f;
}

/* The one rounding step of an axis (each term is <= FEMTO_CAP, so a sum of
 * a handful of terms cannot overflow __int128). */
static int64_t axis_nano(__int128 sum) {
    return cg_money_femto_to_nano(sum > FEMTO_CAP ? FEMTO_CAP : sum);
}

static int64_t sat_add(int64_t a, int64_t b) {
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

void cg_cost_compute(const cg_price *p, const cg_usage *u, int batch, cg_cost *out) {
    cg_price e;
    memset(out, 0, sizeof *out);
    if (!p || !u)
        return;
    cg_price_effective(p, &e);
    int64_t in_price = batch ? e.batch_input : e.input;
    int64_t out_price = batch ? e.batch_output : e.output;

    __int128 input = 0, embed = femto(u->embedding, in_price);
    if (p->kind == CG_MODEL_EMBEDDING) {
        /* Embedding models have one input price and no prompt cache. */
        embed += femto(u->input, in_price) + femto(u->cached_read, in_price) +
                 femto(u->cache_write_5m, in_price) + femto(u->cache_write_1h, in_price);
    } else {
        input = femto(u->input, in_price) + femto(u->cached_read, e.cached_input) +
                femto(u->cache_write_5m, e.cache_write_5m) +
                femto(u->cache_write_1h, e.cache_write_1h);
    }
    /* Per search: web_search_per_1k / 1000 nano = web_search_per_1k * 1000 femto. */
    __int128 ext = femto(u->web_searches, e.web_search_per_1k);
    ext = ext > FEMTO_CAP / 1000 ? FEMTO_CAP : ext * 1000;

    out->input = axis_nano(input);
    out->output = axis_nano(femto(u->output, out_price));
    out->embedding = axis_nano(embed);
    out->external_api = axis_nano(ext);
    out->storage_compute = 0;
    out->total = sat_add(sat_add(sat_add(out->input, out->output), out->embedding),
                         sat_add(out->external_api, out->storage_compute));
}
