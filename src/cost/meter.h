/* meter: usage x price -> cost on the five axes, in integer nano-USD.
 *
 * Owns: the pricing arithmetic. Each axis is the exact sum of its token
 * classes times their prices, rounded once to the nearest nano-USD (half away
 * from zero). Axes: input (uncached + cache read + cache writes), output
 * (incl. reasoning), embedding, external API (e.g. server-side web search, or
 * ingested bills) and storage/compute (ingested). total = sum of the axes.
 */
#ifndef CG_COST_METER_H
#define CG_COST_METER_H

#include "cost/prices.h"
#include "cost/usage.h"

typedef struct cg_cost {
    int64_t input;
    int64_t output;
    int64_t embedding;
    int64_t external_api;
    int64_t storage_compute;
    int64_t total;
} cg_cost;

/* batch != 0 prices input and output at the batch rates. */
void cg_cost_compute(const cg_price *p, const cg_usage *u, int batch, cg_cost *out);

#endif
