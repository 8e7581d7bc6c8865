/* uclass: expands the generated Unicode class runs into a flat table.
 *
 * Owns: the one process-wide class table (1.1 MB, built once under
 * pthread_once, never freed).
 */
#include "tokenize/uclass.h"

#include <pthread.h>
#include <stdlib.h>

static uint8_t *g_table;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void build(void) {
    uint8_t *t = malloc((size_t)CG_UC_MAX_CP + 1);
    if (!t)
        return;
    for (size_t i = 0; i < cg_uclass_nruns; i++) {
        uint32_t start = cg_uclass_runs[i] >> 4;
        uint32_t end = i + 1 < cg_uclass_nruns ? cg_uclass_runs[i + 1] >> 4 : CG_UC_MAX_CP + 1;
        uint8_t cls = (uint8_t)(cg_uclass_runs[i] & 15u);
        for (uint32_t cp = start; cp < end && cp <= CG_UC_MAX_CP; cp++)
            t[cp] = cls;
    }
    g_table = t;
}

const uint8_t *cg_uclass_table(void) {
    pthread_once(&g_once, build);
    return g_table;
}
