/* test_cli: `costgate embed` (cg_embed_main) in-process.
 *
 * Owns: the command's options and outputs: help and usage errors, a
 * missing model, token ids, JSON and binary vectors, base64 lines, CRLF
 * input, the STS-B CSV reader (quoted fields, "" escapes, commas inside
 * quotes, CRLF, malformed records) with its Spearman output, and --bench.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "embed/cli.h"
#include "embed_test_util.h"

static char out_path[] = "/tmp/cg_embed_cli_out_XXXXXX";
static char in_path[] = "/tmp/cg_embed_cli_in_XXXXXX";
static char csv_path[] = "/tmp/cg_embed_cli_csv_XXXXXX";

static int setup(void **state) {
    (void)state;
    int a = mkstemp(out_path), b = mkstemp(in_path), c = mkstemp(csv_path);
    if (a < 0 || b < 0 || c < 0)
        return -1;
    close(a);
    close(b);
    close(c);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    unlink(out_path);
    unlink(in_path);
    unlink(csv_path);
    return 0;
}

static void write_file(const char *path, const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* Runs `embed ARGS...` with stdin from input; stdout into *out (malloc'd,
 * *out_len bytes). Returns the exit code. */
static int run(const char *input, size_t in_len, char **out, size_t *out_len, ...) {
    char *argv[16] = {"embed"};
    int argc = 1;
    va_list ap;
    va_start(ap, out_len);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && argc < 15)
        argv[argc++] = (char *)a;
    va_end(ap);
    write_file(in_path, input, in_len);
    fflush(stdout);
    int saved_out = dup(1), saved_in = dup(0);
    int fo = open(out_path, O_WRONLY | O_TRUNC | O_CREAT, 0600), fi = open(in_path, O_RDONLY);
    dup2(fo, 1);
    dup2(fi, 0);
    close(fo);
    close(fi);
    clearerr(stdin);
    int rc = cg_embed_main(argc, argv);
    fflush(stdout);
    dup2(saved_out, 1);
    dup2(saved_in, 0);
    close(saved_out);
    close(saved_in);
    clearerr(stdin);
    FILE *f = fopen(out_path, "rb");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    *out = buf;
    if (out_len)
        *out_len = n;
    return rc;
}

static void test_help_and_errors(void **state) {
    (void)state;
    char *out;
    assert_int_equal(run("", 0, &out, NULL, "--help", NULL), 0);
    assert_non_null(strstr(out, "usage: costgate embed"));
    free(out);
    assert_int_equal(run("", 0, &out, NULL, "--bogus", NULL), 2);
    free(out);
    assert_int_equal(run("", 0, &out, NULL, "--format", "xml", NULL), 2);
    free(out);
    assert_int_equal(run("", 0, &out, NULL, "a", "b", NULL), 2);
    free(out);
    assert_int_equal(run("x\n", 2, &out, NULL, "--model", "/nonexistent.bin", NULL), 1);
    free(out);
}

static void test_tokens_and_lines(void **state) {
    (void)state;
    char *out;
    static const char in[] = "Hello world, this is a test.\r\n\nx";
    assert_int_equal(run(in, sizeof in - 1, &out, NULL, "--model", model_path(), "--tokens", NULL),
                     0);
    assert_string_equal(out, "[341,4125,311,8,43,18,11,748,6]\n[]\n[649]\n");
    free(out);
    /* base64: "Hello" and the invalid byte 0xff */
    assert_int_equal(run("SGVsbG8=\n/w==\n", 14, &out, NULL, "--model", model_path(), "--tokens",
                         "--b64-lines", NULL),
                     0);
    assert_int_equal(strncmp(out, "[", 1), 0);
    assert_non_null(strstr(out, "\n[30,0]\n"));
    free(out);
    assert_int_equal(run("@@@\n", 4, &out, NULL, "--model", model_path(), "--b64-lines", NULL), 1);
    free(out);
}

static void test_vectors(void **state) {
    (void)state;
    char *out;
    size_t n;
    assert_int_equal(run("a cat\nanother line\n", 19, &out, &n, "--model", model_path(), NULL), 0);
    int lines = 0, commas = 0;
    for (size_t i = 0; i < n; i++) {
        lines += out[i] == '\n';
        commas += out[i] == ',';
    }
    assert_int_equal(lines, 2);
    assert_int_equal(commas, 2 * 511);
    assert_int_equal(out[0], '[');
    free(out);
    assert_int_equal(
        run("a cat\nanother line\n", 19, &out, &n, "--model", model_path(), "-f", "bin", NULL), 0);
    assert_int_equal(n, 2 * 512 * sizeof(float));
    float v[512];
    memcpy(v, out, sizeof v);
    double s = 0;
    for (int i = 0; i < 512; i++)
        s += (double)v[i] * v[i];
    assert_true(s > 0.9999 && s < 1.0001);
    free(out);
}

static void test_stsb(void **state) {
    (void)state;
    static const char csv[] = "A man is playing a guitar.,A man plays the guitar.,4.8\r\n"
                              "\"A man, a plan, a canal.\",\"He said \"\"hello\"\" twice.\",0.5\r\n"
                              "A woman slices an onion.,A woman is cutting an onion.,4.2\r\n"
                              "\r\n"
                              "A dog runs.,\"The stock market fell, sharply.\",0.0\r\n";
    write_file(csv_path, csv, sizeof csv - 1);
    char *out;
    assert_int_equal(run("", 0, &out, NULL, "--model", model_path(), "--stsb", csv_path, NULL), 0);
    assert_non_null(strstr(out, "\"pairs\":4,"));
    char *sp = strstr(out, "\"spearman\":");
    assert_non_null(sp);
    double rho = strtod(sp + 11, NULL);
    assert_true(rho > 0.5 && rho <= 1.0); /* the paraphrases score highest */
    free(out);

    static const char bad[] = "one,two\n";
    write_file(csv_path, bad, sizeof bad - 1);
    assert_int_equal(run("", 0, &out, NULL, "--model", model_path(), "--stsb", csv_path, NULL), 1);
    free(out);
    static const char badnum[] = "a,b,high\nc,d,1\n";
    write_file(csv_path, badnum, sizeof badnum - 1);
    assert_int_equal(run("", 0, &out, NULL, "--model", model_path(), "--stsb", csv_path, NULL), 1);
    free(out);
}

static void test_bench(void **state) {
    (void)state;
    char *out;
    assert_int_equal(run("one\ntwo words\nthree words here\n", 31, &out, NULL, "--model",
                         model_path(), "--bench", "--repeat", "2", NULL),
                     0);
    assert_non_null(strstr(out, "\"sentences\":6,"));
    assert_non_null(strstr(out, "\"p99_ms\":"));
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_errors), cmocka_unit_test(test_tokens_and_lines),
        cmocka_unit_test(test_vectors),         cmocka_unit_test(test_stsb),
        cmocka_unit_test(test_bench),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
