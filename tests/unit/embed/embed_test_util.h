/* embed_test_util: helpers shared by the embedder's unit tests.
 *
 * Owns: finding the converted model file (var/models/use-lite.bin under
 * $CG_SOURCE_DIR, which ctest sets, else the current directory) and loading
 * it once per test binary.
 */
#ifndef CG_TEST_EMBED_UTIL_H
#define CG_TEST_EMBED_UTIL_H

#include <stdio.h>
#include <stdlib.h>

#include "embed/embed.h"

static inline const char *model_path(void) {
    static char path[4096];
    const char *src = getenv("CG_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/var/models/use-lite.bin", src && *src ? src : ".");
    return path;
}

/* Loads the model (NULL with the loader's message on stderr). */
static inline cg_embedder *open_model_opts(cg_embed_isa isa, int fp32) {
    char err[512];
    cg_embed_opts o = {.isa = isa, .fp32_weights = fp32};
    cg_embedder *e = cg_embed_open_opts(model_path(), &o, err, sizeof err);
    if (!e)
        fprintf(stderr, "cannot load %s: %s (run scripts/setup.sh)\n", model_path(), err);
    return e;
}

static inline cg_embedder *open_model(cg_embed_isa isa) {
    return open_model_opts(isa, 0);
}

static inline double cosine(const float *a, const float *b, int n) {
    double d = 0, na = 0, nb = 0;
    for (int i = 0; i < n; i++) {
        d += (double)a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += (double)b[i] * b[i];
    }
    return d / __builtin_sqrt(na * nb);
}

#endif
