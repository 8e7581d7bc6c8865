/* money: integer nano-USD amounts (see money.h). */
#include "core/money.h"

#include <stdio.h>
#include <string.h>

int cg_money_parse_usd(const char *s, int64_t *nano_out) {
    if (!s || !*s)
        return -1;
    int64_t whole = 0, frac = 0;
    int frac_digits = 0, seen_digit = 0;
    const char *p = s;
    while (*p >= '0' && *p <= '9') {
        if (whole > (INT64_MAX / CG_NANO_PER_USD - 9) / 10)
            return -1;
        whole = whole * 10 + (*p - '0');
        p++;
        seen_digit = 1;
    }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (frac_digits == 9) {
                if (*p != '0')
                    return -1; /* finer than one nano-dollar */
            } else {
                frac = frac * 10 + (*p - '0');
                frac_digits++;
            }
            p++;
            seen_digit = 1;
        }
    }
    if (*p != '\0' || !seen_digit)
        return -1;
    while (frac_digits < 9) {
        frac *= 10;
        frac_digits++;
    }
    *nano_out = whole * CG_NANO_PER_USD + frac;
    return 0;
}

char *cg_money_fmt(int64_t nano, char *buf, size_t len) {
    /* "[-]whole.nnnnnnnnn" by hand, straight into buf: it runs for every
     * response header (formatting into a scratch array and copying it out
     * cost a store-forwarding stall per call: 2% of a cache hit in perf) */
    if (len == 0)
        return buf;
    uint64_t a = nano < 0 ? (uint64_t)(-(nano + 1)) + 1 : (uint64_t)nano;
    uint64_t frac = a % (uint64_t)CG_NANO_PER_USD, whole = a / (uint64_t)CG_NANO_PER_USD;
    size_t digits = 1;
    for (uint64_t w = whole; w >= 10; w /= 10)
        digits++;
    size_t n = (nano < 0) + digits + 10;
    if (n > len - 1) { /* truncated: the leading len - 1 characters */
        char t[32];
        cg_money_fmt(nano, t, sizeof t);
        memcpy(buf, t, len - 1);
        buf[len - 1] = '\0';
        return buf;
    }
    char *p = buf + n;
    *p = '\0';
    for (int i = 0; i < 9; i++, frac /= 10)
        *--p = (char)('0' + frac % 10);
    *--p = '.';
    do {
        *--p = (char)('0' + whole % 10);
        whole /= 10;
    } while (whole);
    if (nano < 0)
        *--p = '-';
    return buf;
}

__int128 cg_money_tok_femto(int64_t tokens, int64_t price_per_mtok) {
    /* nano per 1e6 tokens -> per token = nano * 1e-6 = femto * 1e0 */
    return (__int128)tokens * (__int128)price_per_mtok;
}

int64_t cg_money_femto_to_nano(__int128 femto) {
    const __int128 m = 1000000;
    if (femto >= 0)
        return (int64_t)((femto + m / 2) / m);
    return -(int64_t)((-femto + m / 2) / m);
}
