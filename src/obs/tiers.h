/* tiers: the `costgate report --tiers` view: what model tiering did.
 *
 * Owns: per tier, over the ledger's routed requests: how many answers each
 * tier served (a request's last attempt) and their share (the tier mix),
 * their cost and baseline (routing savings), how many attempts were escalated
 * away from the tier and what those attempts cost, and the clients' ratings
 * of the tier's answers from the feedback table (thumbs-up rate: the signal
 * the seeds use to catch tier mismatch). Money stays integer nano-USD.
 */
#ifndef CG_OBS_TIERS_H
#define CG_OBS_TIERS_H

#include <stddef.h>
#include <stdio.h>

int cg_report_tiers(const char *db_path, int json, FILE *out, char *err, size_t errlen);

#endif
