/* bandit: which tier suits which kind of query, learned from outcomes.
 *
 * Owns: one Beta(alpha, beta) posterior per (intent, tier) arm with its
 * running cost, Thompson sampling over a set of candidate tiers with the
 * reward "answer was good" minus lambda x cost, the cap on exploration, the
 * map from recent request ids to the arm that served them (so feedback can
 * find its arm), and persistence of the arms in the ledger database.
 *
 * Rewards are fractional Bernoulli updates: alpha += r, beta += 1 - r, with r
 * in [0, 1] after subtracting lambda x cost (USD):
 *   - an answer that was not escalated and not (yet) rated: implicit_reward
 *   - the first attempt of a cascade that escalated, or an error: 0
 *   - thumbs up replaces the implicit reward with 1, thumbs down with 0.
 * Thread-safe. Deciding and recording take no lock in the usual case (each
 * thread has its own ring of outcomes and its own view of the arms, merged
 * and refreshed under one mutex: see bandit.c); snapshots, ratings and
 * flushes see every outcome recorded before them.
 */
#ifndef CG_ROUTE_BANDIT_H
#define CG_ROUTE_BANDIT_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

struct cg_ledger;
typedef struct cg_bandit cg_bandit;

typedef struct cg_bandit_arm {
    char intent[64];
    char tier[32];
    double alpha, beta;
    int64_t n;         /* outcomes recorded */
    int64_t cost_nano; /* their total cost */
    int64_t thumbs_up, thumbs_down;
} cg_bandit_arm;

/* t: the tiering config (tier names, lambda, explore_max, implicit_reward);
 * must outlive the bandit. seed 0 = from the clock. */
cg_bandit *cg_bandit_new(const cg_tiering_cfg *t, uint64_t seed);
void cg_bandit_free(cg_bandit *b);
/* Arms are written to table bandit_arms through the ledger's writer thread
 * (NULL: not persisted): changed arms at most once a second while outcomes
 * arrive, a rating at once, and everything left on cg_bandit_flush. */
void cg_bandit_set_ledger(cg_bandit *b, struct cg_ledger *l);
/* Writes every changed arm now (graceful stop: call before the ledger closes). */
void cg_bandit_flush(cg_bandit *b);
/* Loads arms saved by an earlier run from the ledger database file (before
 * serving: this blocks). A missing table is not an error. 0 / -1. */
int cg_bandit_load(cg_bandit *b, const char *db_path, char *err, size_t errlen);

/* Picks one of cand[0..n) (tier indexes; cand[0] is the rules' choice) for
 * `intent` by Thompson sampling. Sets *explored when the pick is not
 * cand[0]. Exploration is capped: once more than explore_max of this
 * intent's decisions went away from the rules, cand[0] is taken. */
int cg_bandit_choose(cg_bandit *b, const char *intent, const int *cand, int n, int *explored);
/* Records the outcome of a served attempt: good (0..1 before the cost
 * penalty) and its cost. Remembers request_id -> arm for feedback when
 * remember is set (the answer the client got). */
void cg_bandit_record(cg_bandit *b, const char *request_id, const char *intent, int tier,
                      double good, int64_t cost_nano, int remember);
/* A rating for an earlier request (+1 up, -1 down). 0, or -1 when the
 * request is not a remembered routed answer. */
int cg_bandit_feedback(cg_bandit *b, const char *request_id, int rating);
/* Copies up to cap arms into out; returns how many exist. */
size_t cg_bandit_snapshot(cg_bandit *b, cg_bandit_arm *out, size_t cap);

#endif
