/* stages_semantic: the semantic cache's runtime on the request path.
 *
 * Owns: the process-wide parts the `semantic` stage uses (stages in
 * engine.h): the embedder (built-in USE lite, or an OpenAI-compatible
 * /v1/embeddings endpoint called through the upstream client), the worker
 * pool that embeds and searches off the event loops, the index
 * (cache/semantic.h) with its snapshot under cache.semantic.index_dir, the
 * exact cache's remove hook (an entry that goes takes its vector with it)
 * and the thumbs-down feedback hook for semantic hits.
 */
#ifndef CG_PIPELINE_STAGES_SEMANTIC_H
#define CG_PIPELINE_STAGES_SEMANTIC_H

#include <jansson.h>
#include <stddef.h>

#include "pipeline/gateway.h"

/* Starts the semantic cache of gw (cache.semantic.enabled; gw->cache,
 * gw->prices and gw->ledger are set): loads the embedder and the saved
 * index, drops vectors whose exact entries are gone, registers the hooks.
 * Call before the server starts. 0, or -1 with a message. */
int cg_semrt_start(cg_gateway *gw, char *err, size_t errlen);
/* Drains the pool, saves the index (when it was started) and frees it all.
 * Call after the server stopped and before the exact cache is freed. */
void cg_semrt_stop(cg_gateway *gw);
/* Counters for GET /admin/cache/stats: {"enabled": false} when off, else
 * the embedder, threshold, cached queries, partitions, lookups, hits,
 * misses, gate refusals, skipped (queue full), embedding failures,
 * indexed, pending pool jobs, and lookup_us: how long lookups held their
 * request (count, p50, p90, p99 in 50 µs buckets). A new reference. */
json_t *cg_semrt_stats_json(cg_gateway *gw);

#endif
