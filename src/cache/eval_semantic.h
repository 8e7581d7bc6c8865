/* eval_semantic: the `costgate eval semantic` command.
 *
 * Owns: the entry point main.c dispatches to. The command measures the
 * semantic cache's checks on public data (STS-B, GPTCache's QQP pairs and
 * paraphrases, Redis LangCache near misses, MeanCache follow-ups): the
 * built-in embedder's cosine similarity, the second gate (gate.h) and the
 * learned verifier (verifier.h), which it can also train
 * (--train-verifier); it picks the static threshold and the verifier's
 * operating point. docs/semantic-cache.md describes
 * the protocol and the results.
 */
#ifndef CG_CACHE_EVAL_SEMANTIC_H
#define CG_CACHE_EVAL_SEMANTIC_H

/* argv[0] is "semantic". Returns the process exit code: 0, 1 on a failure
 * (missing data or model, out of memory), 2 on a usage error. */
int cg_eval_semantic_main(int argc, char **argv);

#endif
