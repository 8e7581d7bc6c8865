/* money: integer nano-USD amounts, exact decimal parsing and formatting.
 *
 * Owns: the only conversions between text and money. No float is ever used:
 * "2.50" parses to 2500000000 nano-USD exactly; formatting prints all nine
 * decimals so a value round-trips.
 */
#ifndef CG_CORE_MONEY_H
#define CG_CORE_MONEY_H

#include <stddef.h>
#include <stdint.h>

#define CG_NANO_PER_USD INT64_C(1000000000)

/* Parses a non-negative decimal USD amount ("2.5", "0.000000001", "15") with
 * at most 9 decimals after scaling by 10^scale_exp (scale_exp 0: USD; use
 * e.g. 0 for per-1M prices given in USD). Returns 0, or -1 on syntax error,
 * more than 9 significant decimals, or overflow. */
int cg_money_parse_usd(const char *s, int64_t *nano_out);
/* Writes "-1.234567890" style text; returns buf. Needs at least 32 bytes. */
char *cg_money_fmt(int64_t nano, char *buf, size_t len);
/* Exact cost of `tokens` at `price_per_mtok` nano-USD per million tokens,
 * in units of 1e-15 USD (femto-USD) so products can be summed before the one
 * rounding step. */
__int128 cg_money_tok_femto(int64_t tokens, int64_t price_per_mtok);
/* Rounds femto-USD to nano-USD, half away from zero. */
int64_t cg_money_femto_to_nano(__int128 femto);

#endif
