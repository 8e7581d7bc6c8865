/* ledger_schema: the SQLite schema of the cost ledger, shared by the writer
 * (store/ledger.c) and the readers (obs/report.c, tests).
 *
 * One row per (request_id, attempt). Token counts are integers; every cost
 * column is integer nano-USD (1e-9 USD). baseline_cost is what the request
 * would have cost with no optimisation (equal to cost_total until a saving
 * feature applies). estimated = 1 when usage was not reported by the provider
 * and the cost was estimated; unpriced = 1 when the model had no price and
 * config allowed it.
 */
#ifndef CG_STORE_LEDGER_SCHEMA_H
#define CG_STORE_LEDGER_SCHEMA_H

#define CG_LEDGER_SCHEMA_VERSION 5

#define CG_LEDGER_SCHEMA_SQL                                                                       \
    "CREATE TABLE IF NOT EXISTS ledger ("                                                          \
    " request_id TEXT NOT NULL,"                                                                   \
    " attempt INTEGER NOT NULL,"                                                                   \
    " ts_ms INTEGER NOT NULL," /* request start, unix epoch ms */                                  \
    " day TEXT NOT NULL,"      /* YYYY-MM-DD (UTC) of ts_ms */                                     \
    " kind TEXT NOT NULL,"     /* chat|messages|embeddings|external */                             \
    " api TEXT NOT NULL,"      /* openai|anthropic|admin */                                        \
    " tenant TEXT NOT NULL DEFAULT '',"                                                            \
    " user TEXT NOT NULL DEFAULT '',"                                                              \
    " segment TEXT NOT NULL DEFAULT '',"                                                           \
    " feature TEXT NOT NULL DEFAULT '',"                                                           \
    " intent TEXT NOT NULL DEFAULT '',"                                                            \
    " key_name TEXT NOT NULL DEFAULT '',"                                                          \
    " provider TEXT NOT NULL DEFAULT '',"                                                          \
    " model_requested TEXT NOT NULL DEFAULT '',"                                                   \
    " model_served TEXT NOT NULL DEFAULT '',"                                                      \
    " tier TEXT NOT NULL DEFAULT '',"                                                              \
    " stream INTEGER NOT NULL DEFAULT 0,"                                                          \
    " status TEXT NOT NULL," /* ok|upstream_error|client_disconnected|timeout|cut */               \
    " http_status INTEGER NOT NULL DEFAULT 0," /* status sent to the client */                     \
    " upstream_status INTEGER NOT NULL DEFAULT 0,"                                                 \
    " tok_input_predicted INTEGER NOT NULL DEFAULT 0," /* pre-call, all input classes */           \
    " tok_input INTEGER NOT NULL DEFAULT 0,"                                                       \
    " tok_cached_read INTEGER NOT NULL DEFAULT 0,"                                                 \
    " tok_cache_write_5m INTEGER NOT NULL DEFAULT 0,"                                              \
    " tok_cache_write_1h INTEGER NOT NULL DEFAULT 0,"                                              \
    " tok_output INTEGER NOT NULL DEFAULT 0,"                                                      \
    " tok_reasoning INTEGER NOT NULL DEFAULT 0,"                                                   \
    " tok_embedding INTEGER NOT NULL DEFAULT 0,"                                                   \
    " web_searches INTEGER NOT NULL DEFAULT 0,"                                                    \
    " cost_input INTEGER NOT NULL DEFAULT 0,"                                                      \
    " cost_output INTEGER NOT NULL DEFAULT 0,"                                                     \
    " cost_embedding INTEGER NOT NULL DEFAULT 0,"                                                  \
    " cost_external_api INTEGER NOT NULL DEFAULT 0,"                                               \
    " cost_storage_compute INTEGER NOT NULL DEFAULT 0,"                                            \
    " cost_total INTEGER NOT NULL DEFAULT 0,"                                                      \
    " baseline_cost INTEGER NOT NULL DEFAULT 0,"                                                   \
    " estimated INTEGER NOT NULL DEFAULT 0,"                                                       \
    " unpriced INTEGER NOT NULL DEFAULT 0,"                                                        \
    " cache TEXT NOT NULL DEFAULT 'miss',"                                                         \
    " cache_key TEXT NOT NULL DEFAULT '',"   /* v3: exact cache key looked up (hex) */             \
    " cache_src TEXT NOT NULL DEFAULT '',"   /* v3: a hit: request that wrote the entry */         \
    " cache_similarity REAL,"                /* v4: semantic lookup: the cosine (NULL = none) */   \
    " cache_match TEXT NOT NULL DEFAULT ''," /* v4: semantic hit: the entry served (hex key) */    \
    " latency_us INTEGER NOT NULL DEFAULT 0,"                                                      \
    " ttfb_us INTEGER NOT NULL DEFAULT 0,"                                                         \
    " error TEXT NOT NULL DEFAULT '',"                                                             \
    " note TEXT NOT NULL DEFAULT '',"                                                              \
    " PRIMARY KEY (request_id, attempt)"                                                           \
    ") WITHOUT ROWID;" /* v5: no index on day (report reads a day range through the time-ordered   \
                        * primary key); ledgers of v4 and before lose theirs at open */            \
    "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);"                       \
    "CREATE TABLE IF NOT EXISTS budget_limits (" /* run-time limit changes (admin API) */          \
    " scope TEXT NOT NULL, name TEXT NOT NULL, field TEXT NOT NULL,"                               \
    " limit_nano INTEGER," /* NULL = no limit */                                                   \
    " action INTEGER NOT NULL DEFAULT -1, updated_ms INTEGER NOT NULL,"                            \
    " PRIMARY KEY (scope, name, field));" CG_LEDGER_CACHE_SCHEMA_SQL

/* v3: the exact response cache's entries (src/cache/exact.c), its
 * invalidations (for `costgate cache audit`), and client feedback
 * (POST /v1/feedback). */
#define CG_LEDGER_CACHE_SCHEMA_SQL                                                                 \
    "CREATE TABLE IF NOT EXISTS cache_entries ("                                                   \
    " key TEXT PRIMARY KEY," /* SHA-256 of the canonical key material, hex */                      \
    " api INTEGER NOT NULL," /* 0 openai, 1 anthropic */                                           \
    " tenant TEXT NOT NULL DEFAULT '', share_group TEXT NOT NULL DEFAULT '',"                      \
    " model TEXT NOT NULL DEFAULT '', intent TEXT NOT NULL DEFAULT '',"                            \
    " prompt_version TEXT NOT NULL DEFAULT '', writer_id TEXT NOT NULL DEFAULT '',"                \
    " tags TEXT NOT NULL DEFAULT '[]'," /* JSON array */                                           \
    " body BLOB NOT NULL,"              /* the complete non-stream response */                     \
    " tok_input INTEGER NOT NULL DEFAULT 0, tok_cached_read INTEGER NOT NULL DEFAULT 0,"           \
    " tok_cache_write_5m INTEGER NOT NULL DEFAULT 0,"                                              \
    " tok_cache_write_1h INTEGER NOT NULL DEFAULT 0,"                                              \
    " tok_output INTEGER NOT NULL DEFAULT 0, tok_reasoning INTEGER NOT NULL DEFAULT 0,"            \
    " tok_embedding INTEGER NOT NULL DEFAULT 0, web_searches INTEGER NOT NULL DEFAULT 0,"          \
    " usage_have INTEGER NOT NULL DEFAULT 0,"                                                      \
    " created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL,"                                   \
    " hits INTEGER NOT NULL DEFAULT 0, saved_nano INTEGER NOT NULL DEFAULT 0,"                     \
    " bytes INTEGER NOT NULL DEFAULT 0);"                                                          \
    "CREATE TABLE IF NOT EXISTS cache_invalidations ("                                             \
    " ts_ms INTEGER NOT NULL,"                                                                     \
    " cause TEXT NOT NULL," /* key|tag|tenant|prompt_version|feedback|all */                       \
    " detail TEXT NOT NULL DEFAULT '', removed INTEGER NOT NULL DEFAULT 0);"                       \
    "CREATE TABLE IF NOT EXISTS feedback ("                                                        \
    " request_id TEXT NOT NULL, key_name TEXT NOT NULL, ts_ms INTEGER NOT NULL,"                   \
    " rating INTEGER NOT NULL," /* +1 up, -1 down */                                               \
    " tenant TEXT NOT NULL DEFAULT '', comment TEXT NOT NULL DEFAULT '',"                          \
    " PRIMARY KEY (request_id, key_name));" CG_LEDGER_SEMANTIC_SCHEMA_SQL

/* v4: the semantic cache's served hits, for `costgate cache audit --semantic`:
 * both queries side by side (the last user turn's text, at most
 * CG_LEDGER_SEMHIT_TEXT_MAX bytes each; never headers or keys). */
#define CG_LEDGER_SEMHIT_TEXT_MAX 512
#define CG_LEDGER_SEMANTIC_SCHEMA_SQL                                                              \
    "CREATE TABLE IF NOT EXISTS semantic_hits ("                                                   \
    " request_id TEXT PRIMARY KEY, ts_ms INTEGER NOT NULL,"                                        \
    " tenant TEXT NOT NULL DEFAULT '', segment TEXT NOT NULL DEFAULT '',"                          \
    " model TEXT NOT NULL DEFAULT '',"                                                             \
    " similarity REAL NOT NULL,"                                                                   \
    " threshold REAL NOT NULL,"                                                                    \
    " match_key TEXT NOT NULL,"            /* the exact entry served */                            \
    " match_src TEXT NOT NULL DEFAULT ''," /* the request that wrote it */                         \
    " asked TEXT NOT NULL DEFAULT '', cached TEXT NOT NULL DEFAULT '');"                           \
    "CREATE INDEX IF NOT EXISTS semantic_hits_ts ON semantic_hits(ts_ms);"

#endif
