/* cli: `costgate cache audit|invalidate|stats`.
 *
 * Owns: the cache audit over the ledger file (as the seeds' cache_audit.py:
 * hit rate by intent, tenant and model; the bytes held; the entries that
 * saved the most; invalidations by cause), the semantic cache's audit
 * (recent hits, both queries side by side), and the command-line client of
 * the admin cache API (invalidate, stats) of a running gateway.
 */
#ifndef CG_CACHE_CLI_H
#define CG_CACHE_CLI_H

#include <stdio.h>

int cg_cache_main(int argc, char **argv);

/* The audit of a ledger file, as a table or JSON. 0, or -1 with err. */
int cg_cache_audit(const char *db_path, int json, int limit, FILE *out, char *err, size_t errlen);
/* `cache audit --semantic`: totals of the semantic cache (requests looked
 * up, hits, savings, embedding cost) and its `limit` most recent hits with
 * both queries side by side (table semantic_hits). 0, or -1 with err. */
int cg_cache_audit_semantic(const char *db_path, int json, int limit, FILE *out, char *err,
                            size_t errlen);

#endif
