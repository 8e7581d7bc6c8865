/* predict: how good the pre-call input-token predictions are, per model.
 *
 * Owns: the `costgate report --predictions` view over the ledger. For every
 * settled call with reported usage, the prediction made before the call
 * (tok_input_predicted) is compared with what the provider reported (all
 * input classes: uncached + cache read + cache writes). Errors are shown as
 * signed relative errors in basis points: median, p95 of the absolute error,
 * worst under- and over-prediction, and the share predicted exactly.
 */
#ifndef CG_OBS_PREDICT_H
#define CG_OBS_PREDICT_H

#include <stddef.h>
#include <stdio.h>

int cg_report_predictions(const char *db_path, int json, FILE *out, char *err, size_t errlen);

#endif
