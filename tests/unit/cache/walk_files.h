/* walk_files: the file walk shared by the cache reference tests
 * (test_key_ref, test_policy_ref): fn(path) for every regular file under
 * dir, at most 8 levels down, smaller than max_bytes, skipping dot entries
 * and node_modules; and the JSON texts of one such file. */
#ifndef CG_TEST_WALK_FILES_H
#define CG_TEST_WALK_FILES_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/buf.h"

static inline void walk_files(const char *dir, int depth, off_t max_bytes,
                              void (*fn)(const char *path)) {
    DIR *d = depth <= 8 ? opendir(dir) : NULL;
    struct dirent *de;
    if (!d)
        return;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, "node_modules") == 0)
            continue;
        char path[4096];
        struct stat st;
        int k = snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (k < 0 || (size_t)k >= sizeof path || stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            walk_files(path, depth + 1, max_bytes, fn);
        else if (S_ISREG(st.st_mode) && st.st_size < max_bytes)
            fn(path);
    }
    closedir(d);
}

/* The JSON texts of the file at path: a .json file whole (whole = 1), a
 * .jsonl file line by line (whole = 0); other files are skipped. */
static inline void json_texts_of(const char *path, void (*fn)(const char *p, size_t n, int whole)) {
    size_t n = strlen(path);
    int jsonl = n > 6 && strcmp(path + n - 6, ".jsonl") == 0;
    if (!jsonl && !(n > 5 && strcmp(path + n - 5, ".json") == 0))
        return;
    cg_buf b;
    cg_buf_init(&b, 64u << 20);
    if (cg_buf_read_file(&b, path) == 0 && b.len) {
        if (!jsonl) {
            fn(b.data, b.len, 1);
        } else {
            char *p = b.data;
            while (p && *p) {
                char *e = strchr(p, '\n');
                fn(p, e ? (size_t)(e - p) : strlen(p), 0);
                p = e ? e + 1 : NULL;
            }
        }
    }
    cg_buf_free(&b);
}

#endif
