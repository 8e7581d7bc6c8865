/* cli: `costgate budget`, the command-line client of the admin budget API.
 *
 * Owns: listing spend, reservations and remaining per scope, and changing a
 * limit at run time, against a running gateway's admin listener.
 */
#ifndef CG_BUDGET_CLI_H
#define CG_BUDGET_CLI_H

int cg_budget_main(int argc, char **argv);

#endif
