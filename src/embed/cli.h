/* cli: the `costgate embed` command.
 *
 * Owns: the entry point main.c dispatches to; the command itself is in cli.c.
 */
#ifndef CG_EMBED_CLI_H
#define CG_EMBED_CLI_H

/* argv[0] is "embed". Returns the process exit code. */
int cg_embed_main(int argc, char **argv);

#endif
