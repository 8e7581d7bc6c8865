/* test_cli: `costgate tokens` (cg_tokens_main) end to end in-process.
 *
 * Owns: the command's options and outputs (help, text count, ids, JSON,
 * request bodies for both APIs, base64 line mode, errors). Run with
 * arguments ("test_cli tokens ARGS..."), the binary is the command itself,
 * which the node parity test uses until costgate's main wires it.
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

#include "tokenize/cli.h"

static char out_path[] = "/tmp/cg_test_cli_out_XXXXXX";
static char in_path[] = "/tmp/cg_test_cli_in_XXXXXX";

/* Runs the command with stdin from `input`, returns its exit code and
 * leaves stdout in *out (malloc'd). */
static int run(const char *input, char **out, int argc, char **argv) {
    FILE *f = fopen(in_path, "w");
    fputs(input, f);
    fclose(f);
    fflush(stdout);
    int saved_out = dup(1), saved_in = dup(0);
    int fo = open(out_path, O_WRONLY | O_TRUNC | O_CREAT, 0600), fi = open(in_path, O_RDONLY);
    dup2(fo, 1);
    dup2(fi, 0);
    close(fo);
    close(fi);
    clearerr(stdin);
    int rc = cg_tokens_main(argc, argv);
    fflush(stdout);
    dup2(saved_out, 1);
    dup2(saved_in, 0);
    close(saved_out);
    close(saved_in);
    clearerr(stdin);
    f = fopen(out_path, "r");
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    *out = buf;
    return rc;
}

#define RUN(input, out, ...)                                                                       \
    run(input, out, (int)(sizeof((char *[]){"tokens", __VA_ARGS__}) / sizeof(char *)),             \
        (char *[]){"tokens", __VA_ARGS__})

static void test_help_and_usage(void **state) {
    (void)state;
    char *o;
    assert_int_equal(RUN("", &o, "--help"), 0);
    assert_non_null(strstr(o, "usage: costgate tokens"));
    free(o);
    assert_int_equal(RUN("", &o, "--encoding", "r50k_base"), 2);
    free(o);
    assert_int_equal(RUN("", &o, "--bogus"), 2);
    free(o);
}

static void test_text(void **state) {
    (void)state;
    char *o;
    assert_int_equal(RUN("hello world", &o, "--json", "--ids", "-m", "gpt-4o"), 0);
    assert_non_null(strstr(o, "\"tokens\":2"));
    assert_non_null(strstr(o, "\"ids\":[24912,2375]"));
    assert_non_null(strstr(o, "\"encoding\":\"o200k_base\""));
    /* 2 x $2.50/1M = 5000 nano; + 16384 x $10/1M */
    assert_non_null(strstr(o, "\"cost_low_nano\":5000"));
    assert_non_null(strstr(o, "\"cost_high_nano\":163845000"));
    free(o);
    assert_int_equal(RUN("hello world", &o, "-m", "gpt-4", "--max-tokens", "10"), 0);
    assert_non_null(strstr(o, "cl100k_base"));
    assert_non_null(strstr(o, "output bound:   10"));
    free(o);
    assert_int_equal(RUN("hello world", &o, "--json", "-m", "claude-haiku-4-5"), 0);
    assert_non_null(strstr(o, "claude-estimate"));
    free(o);
    assert_int_equal(RUN("x<|endoftext|>", &o, "--json", "--special", "--ids", "-e", "o200k_base"),
                     0);
    assert_non_null(strstr(o, "\"ids\":[87,199999]"));
    free(o);
}

static void test_request(void **state) {
    (void)state;
    char *o;
    const char *chat = "{\"model\":\"gpt-4o-mini\",\"max_tokens\":5,\"messages\":[{\"role\":"
                       "\"user\",\"content\":\"hello world\"}]}";
    assert_int_equal(RUN(chat, &o, "--request", "--json"), 0);
    assert_non_null(strstr(o, "\"input_tokens\":9"));
    assert_non_null(strstr(o, "\"output_tokens_max\":5"));
    assert_non_null(strstr(o, "\"api\":\"openai-chat\""));
    free(o);
    const char *msg = "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":100,\"messages\":[{\"role\":"
                      "\"user\",\"content\":\"hello world\"}]}";
    assert_int_equal(RUN(msg, &o, "-r", "--json"), 0);
    assert_non_null(strstr(o, "\"api\":\"anthropic-messages\""));
    free(o);
    assert_int_equal(RUN("{not json", &o, "-r"), 1);
    free(o);
}

static void test_b64_lines(void **state) {
    (void)state;
    char *o;
    /* "hello world", "", invalid byte 0xff */
    assert_int_equal(RUN("aGVsbG8gd29ybGQ=\n\n/w==\n", &o, "--b64-lines", "-e", "o200k_base"), 0);
    assert_string_equal(o, "24912,2375\n\n3251\n"); /* U+FFFD */
    free(o);
}

static int setup(void **state) {
    (void)state;
    int a = mkstemp(out_path), b = mkstemp(in_path);
    if (a < 0 || b < 0)
        return -1;
    close(a);
    close(b);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    remove(out_path);
    remove(in_path);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "tokens") == 0)
        return cg_tokens_main(argc - 1, argv + 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_usage),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_request),
        cmocka_unit_test(test_b64_lines),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
