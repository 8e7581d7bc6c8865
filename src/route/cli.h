/* cli: the `costgate tier-train` and `costgate tier-eval` commands.
 *
 * Owns: their options, the training of learned-router model files from the
 * replay data (eval.h), the replay of every routing policy (all-weak,
 * all-strong, random, the rule-based classifier, the learned router, the
 * oracle as a bound) on held-out prompts, the printed cost-quality tables
 * and CPT/APGR metrics, the optional CSV/JSON outputs and the classifier
 * speed benchmark (tier-eval --bench). See docs/tiering.md.
 */
#ifndef CG_ROUTE_CLI_H
#define CG_ROUTE_CLI_H

/* argv[0] is the command name. Exit codes: 0 ok, 1 error, 2 usage. */
int cg_tier_train_main(int argc, char **argv);
int cg_tier_eval_main(int argc, char **argv);

#endif
