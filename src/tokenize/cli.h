/* cli: the `costgate tokens` command.
 *
 * Owns: argument parsing and output of token counts and cost ranges for
 * stdin, a file, or a request JSON (see `costgate tokens --help`).
 */
#ifndef CG_TOKENIZE_CLI_H
#define CG_TOKENIZE_CLI_H

/* argv[0] is "tokens" (or the program name). Returns the exit code:
 * 0 ok, 1 error, 2 usage. */
int cg_tokens_main(int argc, char **argv);

#endif
