/* fuzz_classify: libFuzzer target for the classifier's text scan.
 *
 * Owns: running arbitrary bytes through the 64-byte block scan and the
 * portable byte scan (cg_classify_scan_selfcheck) at two alignments and with
 * and without a line start at byte 0, and through cg_classify with the head
 * and tail windows forced small, from an exact-size heap copy (so ASan sees
 * any read past the end). Invariants (abort() on violation):
 *  - the two scans agree on every feature and keyword count;
 *  - cg_classify returns 0 and a tier and score in range.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/classify.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_classify: invariant failed: %s (line %d)\n", #c, __LINE__);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static cg_classifier *C, *small;

static void init(void) {
    char err[256];
    C = cg_classifier_new(NULL, err, sizeof err);
    cg_classify_cfg cfg;
    cg_classify_cfg_default(&cfg);
    cfg.scan_max_bytes = 96; /* head and tail windows on most inputs */
    small = cg_classifier_new(&cfg, err, sizeof err);
    CHECK(C && small);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!C)
        init();
    char err[128];
    for (size_t off = 0; off < 2 && off <= size; off++) {
        size_t n = size - off;
        char *buf = malloc(n ? n : 1);
        CHECK(buf);
        memcpy(buf, data + off, n);
        for (int line0 = 0; line0 < 2; line0++) {
            if (cg_classify_scan_selfcheck(C, buf, n, line0, err, sizeof err) != 0) {
                fprintf(stderr, "fuzz_classify: %s\n", err);
                abort();
            }
        }
        cg_class_input in = {.user = buf, .user_len = n, .turns = 1};
        cg_class_result r;
        CHECK(cg_classify(small, &in, &r) == 0);
        CHECK(r.tier >= 0 && r.tier < CG_TIER_COUNT);
        CHECK(r.score >= 0.0 && r.score <= 1.0);
        free(buf);
    }
    return 0;
}
