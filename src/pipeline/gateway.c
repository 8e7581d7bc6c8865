/* gateway: the clock budgets and SLOs read (see gateway.h). */
#include "pipeline/gateway.h"
#include "core/clock.h"

#include <stdatomic.h>
#include <time.h>

long long cg_gateway_now_ms(void *arg) {
    cg_gateway *gw = arg;
    long long t = gw ? atomic_load(&gw->test_now_ms) : 0;
    if (t > 0)
        return t;
    return (long long)cg_wall_ms();
}
