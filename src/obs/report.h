/* report: the `costgate report` engine over the SQLite cost ledger.
 *
 * Owns: turning ledger rows (store/ledger_schema.h) into a per-group cost
 * report in three formats (aligned table, JSON, RFC 4180 CSV): the whitelist
 * of group-by fields and their ledger columns, the aggregate SQL (built from
 * that whitelist only; every filter is a bound parameter), the TOTAL row, the
 * five-axis shares of the grand total and savings against the baseline.
 *
 * All money stays integer nano-USD from SQLite's exact integer SUM() to the
 * output; shares are integer basis points (1 bp = 0.01 %). The ledger is
 * opened read-only, so a report can run while the gateway writes (WAL).
 */
#ifndef CG_OBS_REPORT_H
#define CG_OBS_REPORT_H

#include <stddef.h>
#include <stdio.h>

typedef enum { CG_REPORT_TABLE, CG_REPORT_JSON, CG_REPORT_CSV } cg_report_format;

typedef struct cg_report_opts {
    const char *db_path;
    /* Comma list of: day,tenant,user,segment,feature,intent,model,provider,
     * key,status,requested,action (model = model_served, key = key_name,
     * requested = model_requested, action = the budget/SLO action note). NULL or "" = "day". */
    const char *group_by;
    const char *since;  /* YYYY-MM-DD inclusive (ledger `day`, UTC), or NULL */
    const char *until;  /* YYYY-MM-DD inclusive, or NULL */
    const char *tenant; /* exact tenant filter, or NULL */
    cg_report_format format;
    int limit; /* max groups shown, 0 = all; ordered by total cost desc, then key.
                * The TOTAL row and the shares always cover every group. */
} cg_report_opts;

/* Most groups a report keeps in memory; more without a limit is an error. */
#define CG_REPORT_MAX_GROUPS 200000

/* Writes the report to out. Returns 0, or -1 with a message in err (e.g.
 * "cannot open ledger X: ...", "unknown group-by field 'foo' ...").
 * An existing ledger file that is empty or has no ledger table gives an empty
 * report (not an error); a missing file is an error. */
int cg_report_run(const cg_report_opts *o, FILE *out, char *err, size_t errlen);

/* Parses a format name ("table", "json", "csv"); 0, or -1 if unknown. */
int cg_report_format_parse(const char *s, cg_report_format *out);

#endif
