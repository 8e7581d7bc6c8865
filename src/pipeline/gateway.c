/* gateway: the clock budgets and SLOs read (see gateway.h). */
#include "pipeline/gateway.h"

#include <stdatomic.h>
#include <time.h>

long long cg_gateway_now_ms(void *arg) {
    cg_gateway *gw = arg;
    long long t = gw ? atomic_load(&gw->test_now_ms) : 0;
    if (t > 0)
        return t;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
