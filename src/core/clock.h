/* clock: the process's two clocks.
 *
 * Owns: monotonic microseconds (durations: latency, time to first byte) and
 * wall-clock epoch milliseconds (ledger timestamps, budget periods). Budgets
 * and SLOs read wall time through cg_gateway_now_ms so tests can set it.
 */
#ifndef CG_CORE_CLOCK_H
#define CG_CORE_CLOCK_H

#include <stdint.h>

int64_t cg_mono_us(void);
int64_t cg_wall_ms(void);

#endif
