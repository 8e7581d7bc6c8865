/* test_gate: unit tests of src/cache/gate.c, the semantic cache's second
 * gate.
 *
 * Owns: each rule's verdicts on pairs it must reject and pairs it must let
 * through (English and Korean, both directions: the gate is symmetric), the
 * normalisations (1,000 = 1000, 2.50 = 2.5, 3rd = 3, five = 5, 60k = 60000,
 * curly apostrophes, full-width digits), the Hangul false positives the
 * Korean negation list avoids (안녕, 안전, 제안, 주말, 가지마다), the rule mask
 * and its parser, the detail text, the scan bound (CG_GATE_LENGTH), and
 * adversarial input: NULL and empty texts, invalid UTF-8, unterminated and
 * nested quotes, long digit runs, many quotes, concurrent calls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/gate.h"

#define DEF CG_GATE_DEFAULT_RULES
#define ONLY(r) CG_GATE_RULE(r)

/* The verdict for (asked, cached) and, checked here, the same verdict for
 * the swapped pair. */
static cg_gate_reason verdict(const char *asked, const char *cached, unsigned rules) {
    cg_gate_result r1, r2;
    cg_gate_reason a = cg_gate_check(asked, strlen(asked), cached, strlen(cached), rules, &r1);
    cg_gate_reason b = cg_gate_check(cached, strlen(cached), asked, strlen(asked), rules, &r2);
    if (a != b)
        fail_msg("not symmetric: '%s' / '%s': %s vs %s", asked, cached, cg_gate_reason_name(a),
                 cg_gate_reason_name(b));
    assert_int_equal(r1.reason, a);
    if (a == CG_GATE_PASS)
        assert_string_equal(r1.detail, "");
    else
        assert_true(r1.detail[0] != '\0');
    return a;
}

#define REJECT(r, a, b, rules)                                                                     \
    do {                                                                                           \
        cg_gate_reason got_ = verdict(a, b, rules);                                                \
        if (got_ != (r))                                                                           \
            fail_msg("'%s' / '%s': got %s, want %s", a, b, cg_gate_reason_name(got_),              \
                     cg_gate_reason_name(r));                                                      \
    } while (0)
#define PASS(a, b, rules) REJECT(CG_GATE_PASS, a, b, rules)

static void test_numbers(void **state) {
    (void)state;
    const unsigned R = ONLY(CG_GATE_NUMBERS);
    REJECT(CG_GATE_NUMBERS, "How do I convert 10 USD to EUR?", "How do I convert 100 USD to EUR?",
           R);
    REJECT(CG_GATE_NUMBERS, "population of Berlin in 2020", "population of Berlin in 2021", R);
    REJECT(CG_GATE_NUMBERS, "download Python 3.11", "download Python 3.12", R);
    REJECT(CG_GATE_NUMBERS, "GDP of Japan in 2020", "Japan GDP latest", R);
    REJECT(CG_GATE_NUMBERS, "add 2 and 2", "add 2", R); /* a multiset */
    REJECT(CG_GATE_NUMBERS, "mp3 converter", "mp4 converter", R);
    REJECT(CG_GATE_NUMBERS, "top 3 results", "ten results", R);
    REJECT(CG_GATE_NUMBERS, "best five books", "best 6 books", R);
    REJECT(CG_GATE_NUMBERS, "0.5 mg dose", "5 mg dose", R);
    REJECT(CG_GATE_NUMBERS, "1,2,3", "123", R); /* a list, not a thousands separator */
    PASS("1,000 apples", "1000 apples", R);
    PASS("1,000,000 users", "1000000 users", R);
    PASS("costs 2.50 dollars", "costs 2.5 dollars", R);
    PASS("version 2.0", "version 2", R);
    PASS("agent 007", "agent 7", R);
    PASS("the 3rd season", "season 3", R);
    PASS("add 2 and 3", "add 3 and 2", R);
    PASS("top 5 coffee shops in Seattle", "best five coffee shops in Seattle", R);
    PASS("twenty-five cats", "25 cats", R);
    PASS("forty two", "42", R);
    PASS("laptop under 60k", "laptop under 60000", R);
    PASS("convert 5km to miles", "5 kilometers in miles", R);
    PASS("apple stock price as of 2024-12-31", "AAPL price on 2024-12-31", R);
    PASS("full-width \xef\xbc\x91\xef\xbc\x90 items", "10 items", R); /* １０ */
    /* "one" and ordinals stand in for a digit but are never required */
    PASS("which one is better", "which is better", R);
    PASS("book 1 of the series", "the first book of the series", R);
    PASS("define photosynthesis in one sentence", "one-sentence definition of photosynthesis", R);
    PASS("no numbers here", "none here either", R);
    /* digits only (a variant): number words ignored */
    PASS("best five books", "best six books", R | CG_GATE_V_DIGITS_ONLY);
    REJECT(CG_GATE_NUMBERS, "best five books", "best six books", R);
    REJECT(CG_GATE_NUMBERS, "best 5 books", "best 6 books", R | CG_GATE_V_DIGITS_ONLY);
}

static void test_negation_english(void **state) {
    (void)state;
    const unsigned R = ONLY(CG_GATE_NEGATION);
    REJECT(CG_GATE_NEGATION, "Is it safe to drink coffee while pregnant?",
           "Is it not safe to drink coffee while pregnant?", R);
    REJECT(CG_GATE_NEGATION, "Why does my code compile?", "Why doesn't my code compile?", R);
    REJECT(CG_GATE_NEGATION, "Why does my code compile?", "Why doesn\xe2\x80\x99t my code compile?",
           R); /* curly apostrophe */
    REJECT(CG_GATE_NEGATION, "why does it work", "why doesnt it work", R);
    REJECT(CG_GATE_NEGATION, "Can I take ibuprofen with alcohol?",
           "Can I take ibuprofen without alcohol?", R);
    REJECT(CG_GATE_NEGATION, "Which foods contain gluten?", "Which foods contain no gluten?", R);
    REJECT(CG_GATE_NEGATION, "Should I ever reboot during a backup?",
           "Should I never reboot during a backup?", R);
    REJECT(CG_GATE_NEGATION, "I can do it", "I cannot do it", R);
    REJECT(CG_GATE_NEGATION, "somebody knows", "nobody knows", R);
    PASS("Why can't I sleep?", "Why am I not able to sleep?", R);
    PASS("Is it safe?", "Is it safe to use?", R);
    /* not negations */
    PASS("Was Einstein an atheist? Why or why not?", "Was Einstein an atheist?", R);
    PASS("whether or not a girl likes me", "if a girl likes me", R);
    PASS("yes or no questions", "yes-or-no questions", R);
    PASS("rational no. 5 and fractions", "rational number 5 and fractions", R);
    PASS("a note on nothingness", "a note on nothingness", R);
    PASS("Notion vs Nobel", "notion vs nobel", R); /* words that start like a negation */
}

static void test_negation_korean(void **state) {
    (void)state;
    const unsigned R = ONLY(CG_GATE_NEGATION);
    REJECT(CG_GATE_NEGATION, "서울에 가고 싶어요", "서울에 가고 싶지 않아요", R);        /* 않 */
    REJECT(CG_GATE_NEGATION, "주문을 취소할 수 있어요?", "주문을 취소할 수 없어요?", R); /* 없 */
    REJECT(CG_GATE_NEGATION, "이 약을 먹어도 돼요?", "이 약을 먹으면 안 돼요?", R);      /* 안 */
    REJECT(CG_GATE_NEGATION, "이거 돼요?", "이거 안돼요?", R);                /* 안돼 */
    REJECT(CG_GATE_NEGATION, "오늘 갈 수 있어", "오늘 못 가", R);             /* 못 */
    REJECT(CG_GATE_NEGATION, "수영을 해요", "수영을 못해요", R);              /* 못해 */
    REJECT(CG_GATE_NEGATION, "이것은 사과다", "이것은 사과가 아니다", R);     /* 아니 */
    REJECT(CG_GATE_NEGATION, "서울 날씨 알려줘", "서울 날씨 알려주지 마", R); /* -지 마 */
    REJECT(CG_GATE_NEGATION, "거기 가요", "거기 가지마", R);
    REJECT(CG_GATE_NEGATION, "그거 만져", "그거 만지지 마세요", R);
    REJECT(CG_GATE_NEGATION, "전화해", "전화하지 말고 문자해", R);
    /* Hangul that only looks like a negation */
    PASS("안녕하세요 반갑습니다", "반갑습니다", R);                 /* 안녕: hello */
    PASS("안전한 비밀번호 만드는 법", "비밀번호 만드는 법", R);     /* 안전: safety */
    PASS("제안서 작성 방법", "작성 방법", R);                       /* 제안: proposal */
    PASS("주말 여행 추천", "여행 추천", R);                         /* 주말: weekend */
    PASS("나무 가지마다 열매가 열려요", "나무에 열매가 열려요", R); /* 가지마다 */
    PASS("영어로 말하는 법", "영어 회화 방법", R);                  /* 말하다: to speak */
    PASS("안내 데스크 위치", "데스크 위치", R);                     /* 안내: guide */
    PASS("아버지 생신 선물", "생신 선물", R);
    PASS("집 안에 있어요", "집 안에 있어요", R);
    PASS("서울에 가고 싶지 않아요", "서울 가기 싫지 않아요", R); /* both negated */
}

static void test_quotes(void **state) {
    (void)state;
    const unsigned R = ONLY(CG_GATE_QUOTES);
    REJECT(CG_GATE_QUOTES, "What does 'carpe diem' mean?", "What does 'memento mori' mean?", R);
    REJECT(CG_GATE_QUOTES, "search exact phrase \"null reference\"",
           "search exact phrase \"null pointer\"", R);
    REJECT(CG_GATE_QUOTES, "what does `git reset --hard` do", "what does `git reset --soft` do", R);
    REJECT(CG_GATE_QUOTES, "explain ```x = 1```", "explain ```x = 2```", R);
    REJECT(CG_GATE_QUOTES, "meaning of “free lunch”", "meaning of “free speech”", R);
    REJECT(CG_GATE_QUOTES, "「사랑」의 뜻", "「우정」의 뜻", R);
    REJECT(CG_GATE_QUOTES, "『토지』 줄거리", "『태백산맥』 줄거리", R);
    REJECT(CG_GATE_QUOTES, "sens de «bonjour»", "sens de «bonsoir»", R);
    REJECT(CG_GATE_QUOTES, "SQL: count orders where status='shipped'",
           "SQL: count orders where status='pending'", R);
    /* the quoted text occurs in the other query, quoted or not, in any case */
    PASS("search exact phrase \"null reference\"", "\"null reference\" exact phrase search", R);
    PASS("translate to Spanish: 'Good morning'", "traducir a español: 'good morning'", R);
    PASS("What does 'carpe diem' mean?", "meaning of carpe diem", R);
    PASS("translate \xe2\x80\x98thank you\xe2\x80\x99 into Japanese", "'thank you' in Japanese", R);
    /* apostrophes are not quotes */
    PASS("John's car isn't red", "the students' books", R);
    PASS("rock 'n' roll", "rock and roll", R);
    /* unterminated: no quote */
    PASS("he said \"hello", "he said goodbye", R);
    PASS("a ` lone backtick", "no backtick", R);
}

static void test_other_rules(void **state) {
    (void)state;
    REJECT(CG_GATE_ENTITIES, "weather in Berlin today", "weather in Paris today",
           ONLY(CG_GATE_ENTITIES));
    REJECT(CG_GATE_ENTITIES, "translate to Japanese: thank you", "translate to Chinese: thank you",
           ONLY(CG_GATE_ENTITIES));
    PASS("Why do Americans love guns?", "Why does America love guns?", ONLY(CG_GATE_ENTITIES));
    PASS("Who is Donald Trump?", "who is Trump?", ONLY(CG_GATE_ENTITIES)); /* one-sided */
    PASS("weather in berlin", "weather in Berlin", ONLY(CG_GATE_ENTITIES));
    PASS("How Do I Learn Python Fast", "What Is The Best Way To Learn Java",
         ONLY(CG_GATE_ENTITIES)); /* Title Case says nothing */
    REJECT(CG_GATE_ENTITIES, "Who is Donald Trump?", "who is Trump?",
           ONLY(CG_GATE_ENTITIES) | CG_GATE_V_ENTITIES_STRICT);

    REJECT(CG_GATE_DIRECTION, "Sort array ascending in JavaScript",
           "sort an array descending in JavaScript", ONLY(CG_GATE_DIRECTION));
    REJECT(CG_GATE_DIRECTION, "when to buy stocks", "when to sell stocks", ONLY(CG_GATE_DIRECTION));
    REJECT(CG_GATE_DIRECTION, "how to gain weight", "how to lose weight", ONLY(CG_GATE_DIRECTION));
    PASS("buy or sell stocks", "when to sell stocks", ONLY(CG_GATE_DIRECTION)); /* both poles */

    REJECT(CG_GATE_QWORD, "Why did Rome fall?", "When did Rome fall?", ONLY(CG_GATE_QWORD));
    PASS("What is Rome?", "Why is Rome famous?", ONLY(CG_GATE_QWORD));

    REJECT(CG_GATE_TIME, "weather in Sydney tomorrow", "Sydney weather today", ONLY(CG_GATE_TIME));
    REJECT(CG_GATE_TIME, "weather in Berlin today", "weather in Berlin next week",
           ONLY(CG_GATE_TIME));
    REJECT(CG_GATE_TIME, "USD/JPY rate now", "USD/JPY rate yesterday", ONLY(CG_GATE_TIME));
    REJECT(CG_GATE_TIME, "flights in June", "flights in December", ONLY(CG_GATE_TIME));
    PASS("news about Tesla this week", "latest Tesla news", ONLY(CG_GATE_TIME));
    PASS("ear piercing I got 6 weeks ago", "ear piercing", ONLY(CG_GATE_TIME)); /* one side */
    PASS("restaurants open now", "restaurants open", ONLY(CG_GATE_TIME));
    PASS("how to march in a band", "band in April", ONLY(CG_GATE_TIME)); /* march: a verb */

    REJECT(CG_GATE_UNITS,
           "restaurants under \xe2\x82\xac"
           "30",
           "restaurants under $30", ONLY(CG_GATE_UNITS));
    REJECT(CG_GATE_UNITS, "lose weight in 2 weeks", "lose weight in 2 days", ONLY(CG_GATE_UNITS));
    REJECT(CG_GATE_UNITS, "20 °C in kelvin", "20 °F in kelvin", ONLY(CG_GATE_UNITS));
    PASS("convert 5km to miles", "5 kilometers in miles", ONLY(CG_GATE_UNITS));
    PASS("10 USD in euros", "convert 10 dollars to EUR", ONLY(CG_GATE_UNITS));

    REJECT(CG_GATE_CODE, "pandas merge site:wikipedia.org", "pandas merge site:docs.python.org",
           ONLY(CG_GATE_CODE));
    REJECT(CG_GATE_CODE, "what does os.path.join do", "what does os.path.split do",
           ONLY(CG_GATE_CODE));
    REJECT(CG_GATE_CODE, "rename my_var", "rename myVar2", ONLY(CG_GATE_CODE));
    PASS("'vector search' on github.com", "site:github.com 'vector search'", ONLY(CG_GATE_CODE));
    PASS("download Node.js", "download Node.js LTS.", ONLY(CG_GATE_CODE));
    PASS("e.g. an example", "for example", ONLY(CG_GATE_CODE));
    PASS("params of datasets.AudioClassification", "params of AudioClassification",
         ONLY(CG_GATE_CODE)); /* a dotted component counts */

    REJECT(CG_GATE_ORDER, "How do I convert Celsius to Fahrenheit?",
           "How do I convert Fahrenheit to Celsius?", ONLY(CG_GATE_ORDER));
    REJECT(CG_GATE_ORDER, "convert 10 USD to EUR", "convert 10 EUR to USD", ONLY(CG_GATE_ORDER));
    REJECT(CG_GATE_ORDER, "Is Python better than Java?", "Is Java better than Python?",
           ONLY(CG_GATE_ORDER));
    REJECT(CG_GATE_ORDER, "JPEG → PNG converter", "PNG -> JPEG converter", ONLY(CG_GATE_ORDER));
    PASS("Python vs Java", "Java vs Python", ONLY(CG_GATE_ORDER)); /* no direction */
    PASS("Flights from London to Tokyo in June", "June flights London→Tokyo", ONLY(CG_GATE_ORDER));
    /* far apart: a paraphrase, not a reversal */
    PASS("Serialized datasets can be saved to cloud storage using save_to_disk",
         "save_to_disk can be used to store serialized datasets in cloud storage",
         ONLY(CG_GATE_ORDER));

    /* qword is off by default */
    PASS("Why did Rome fall?", "When did Rome fall?", DEF);
}

static void test_rules_mask(void **state) {
    (void)state;
    /* a rule that is off does not reject */
    PASS("convert 10 USD", "convert 100 USD", ONLY(CG_GATE_NEGATION));
    PASS("convert 10 USD", "convert 100 USD not", 0);
    /* order: the first failing rule in enum order is reported */
    REJECT(CG_GATE_NUMBERS, "is 10 safe", "is 100 not safe", DEF);
    REJECT(CG_GATE_NEGATION, "is 10 safe", "is 100 not safe", DEF & ~ONLY(CG_GATE_NUMBERS));
    /* the default set */
    assert_true(DEF & ONLY(CG_GATE_NUMBERS));
    assert_true(DEF & ONLY(CG_GATE_NEGATION));
    assert_true(DEF & ONLY(CG_GATE_QUOTES));
    assert_true(DEF & ONLY(CG_GATE_LENGTH));
    assert_false(DEF & ONLY(CG_GATE_QWORD));

    unsigned m = 123;
    assert_int_equal(cg_gate_rules_parse("default", &m), 0);
    assert_int_equal(m, DEF);
    assert_int_equal(cg_gate_rules_parse("none", &m), 0);
    assert_int_equal(m, 0);
    assert_int_equal(cg_gate_rules_parse("", &m), 0);
    assert_int_equal(m, 0);
    assert_int_equal(cg_gate_rules_parse("all", &m), 0);
    assert_int_equal(m, CG_GATE_ALL_RULES);
    assert_int_equal(cg_gate_rules_parse("numbers,time,code", &m), 0);
    assert_int_equal(m, ONLY(CG_GATE_NUMBERS) | ONLY(CG_GATE_TIME) | ONLY(CG_GATE_CODE));
    assert_int_equal(cg_gate_rules_parse("default,entities", &m), 0);
    assert_int_equal(m, DEF | ONLY(CG_GATE_ENTITIES));
    m = 77;
    assert_int_equal(cg_gate_rules_parse("numbers,bogus", &m), -1);
    assert_int_equal(m, 77);
    assert_int_equal(cg_gate_rules_parse("pass", &m), -1);

    for (int r = 0; r < CG_GATE_N; r++)
        assert_string_not_equal(cg_gate_reason_name((cg_gate_reason)r), "?");
    assert_string_equal(cg_gate_reason_name(CG_GATE_PASS), "pass");
    assert_string_equal(cg_gate_reason_name(CG_GATE_N), "?");
    assert_string_equal(cg_gate_reason_name((cg_gate_reason)-1), "?");
}

static void test_detail(void **state) {
    (void)state;
    cg_gate_result r;
    const char *a = "convert 100 USD to EUR", *c = "convert 10 USD to EUR";
    assert_int_equal(cg_gate_check(a, strlen(a), c, strlen(c), DEF, &r), CG_GATE_NUMBERS);
    assert_int_equal(r.reason, CG_GATE_NUMBERS);
    assert_non_null(strstr(r.detail, "number \"10"));
    assert_non_null(strstr(r.detail, " query"));
    a = "is it safe", c = "is it not safe";
    assert_int_equal(cg_gate_check(a, strlen(a), c, strlen(c), DEF, &r), CG_GATE_NEGATION);
    assert_non_null(strstr(r.detail, "\"not\""));
    assert_non_null(strstr(r.detail, "cached query"));
    /* NULL result pointer is fine */
    assert_int_equal(cg_gate_check(a, strlen(a), c, strlen(c), DEF, NULL), CG_GATE_NEGATION);
    /* a long token is cut in the detail, which stays a C string */
    char big[300];
    memset(big, '7', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(cg_gate_check(big, strlen(big), "7", 1, DEF, &r), CG_GATE_NUMBERS);
    assert_true(strlen(r.detail) < sizeof r.detail);
}

static void test_length_bound(void **state) {
    (void)state;
    static char a[CG_GATE_SCAN_MAX + 100], b[CG_GATE_SCAN_MAX + 100];
    memset(a, 'x', sizeof a);
    memset(b, 'x', sizeof b);
    a[0] = b[0] = ' ';
    /* exactly the bound: read whole, passes */
    assert_int_equal(cg_gate_check(a, CG_GATE_SCAN_MAX, b, CG_GATE_SCAN_MAX, DEF, NULL),
                     CG_GATE_PASS);
    /* a difference past the bound is invisible: the rule refuses the pair */
    cg_gate_result r;
    memcpy(a + CG_GATE_SCAN_MAX + 10, " not 5 ", 7);
    assert_int_equal(cg_gate_check(a, sizeof a, b, CG_GATE_SCAN_MAX, DEF, &r), CG_GATE_LENGTH);
    assert_non_null(strstr(r.detail, "new query"));
    assert_int_equal(cg_gate_check(b, 10, a, sizeof a, DEF, &r), CG_GATE_LENGTH);
    assert_non_null(strstr(r.detail, "cached query"));
    /* without the rule, only the first CG_GATE_SCAN_MAX bytes count */
    assert_int_equal(cg_gate_check(a, sizeof a, b, sizeof b, DEF & ~ONLY(CG_GATE_LENGTH), NULL),
                     CG_GATE_PASS);
    /* the cut lands on a UTF-8 boundary: a Hangul syllable straddling it
     * is dropped whole, never read as bytes */
    static char k[CG_GATE_SCAN_MAX + 8];
    memset(k, ' ', sizeof k);
    memcpy(k + CG_GATE_SCAN_MAX - 1, "\xec\x95\x8a", 3); /* 않 across the bound */
    assert_int_equal(cg_gate_check(k, sizeof k, " ", 1, ONLY(CG_GATE_NEGATION), NULL),
                     CG_GATE_PASS);
}

static void test_adversarial_input(void **state) {
    (void)state;
    assert_int_equal(cg_gate_check(NULL, 0, NULL, 0, CG_GATE_ALL_RULES, NULL), CG_GATE_PASS);
    assert_int_equal(cg_gate_check("", 0, "not", 3, DEF, NULL), CG_GATE_NEGATION);
    assert_int_equal(cg_gate_check(NULL, 0, "5", 1, DEF, NULL), CG_GATE_NUMBERS);
    /* invalid UTF-8 never matches a pattern: a truncated 않, a lone
     * continuation byte, an overlong quote, a surrogate */
    PASS("\xec\x95 x", "x", CG_GATE_ALL_RULES);
    PASS("\x8a\x8a\x8a", "", CG_GATE_ALL_RULES);
    PASS("\xc0\xa2hi\xc0\xa2", "hi", CG_GATE_ALL_RULES);
    PASS("\xed\xa0\x80 ok", "ok", CG_GATE_ALL_RULES);
    PASS("\xff\xfe\xfd", "\xfd\xfe\xff", CG_GATE_ALL_RULES);
    /* invalid bytes separate words: "n\xffot" is not "not" */
    PASS("n\xffot", "x", ONLY(CG_GATE_NEGATION));
    /* embedded NUL is a byte like any other */
    assert_int_equal(cg_gate_check("a\0 not", 6, "a", 1, DEF, NULL), CG_GATE_NEGATION);
    /* unterminated and crossing quotes, odd backtick runs, many quotes */
    PASS("\"a 'b\" c'", "\"a 'b\" c'", CG_GATE_ALL_RULES);
    PASS("`` ` ``` ` ``", "`` ` ``` ` ``", CG_GATE_ALL_RULES);
    static char q[CG_GATE_SCAN_MAX];
    for (size_t i = 0; i + 3 < sizeof q; i += 3)
        memcpy(q + i, "'a ", 3);
    q[sizeof q - 1] = '\0';
    PASS(q, q, CG_GATE_ALL_RULES);
    for (size_t i = 0; i + 4 < sizeof q; i += 4)
        memcpy(q + i, "\"x\" ", 4);
    q[sizeof q - 1] = '\0';
    PASS(q, q, CG_GATE_ALL_RULES);
    /* more numbers than the gate keeps: equal texts still pass */
    for (size_t i = 0; i + 3 < sizeof q; i += 3)
        memcpy(q + i, "12 ", 3);
    q[sizeof q - 1] = '\0';
    PASS(q, q, CG_GATE_ALL_RULES);
    /* a digit run longer than any buffer */
    memset(q, '9', sizeof q - 1);
    PASS(q, q, CG_GATE_ALL_RULES);
    q[100] = '8';
    assert_int_equal(cg_gate_check(q, strlen(q), "9", 1, DEF, NULL), CG_GATE_NUMBERS);
    /* every byte value */
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    PASS(all, all, CG_GATE_ALL_RULES);
}

/* Pseudo-random bytes and UTF-8 fragments: no crash (ASan), symmetric. */
static void test_random(void **state) {
    (void)state;
    static const char *frag[] = {"not ",  "5",  ",000",    ".5",   "'",         "\"", "`",
                                 "안 ",   "않", "지 마",   "\xec", "\x95",      "»",  "«",
                                 "「",    "」", "Berlin",  " ",    "-",         "k",  "n't",
                                 "today", "km", "os.path", "_",    "camelCase", "\n", "\xff"};
    uint32_t x = 12345;
    char a[512], b[512];
    for (int it = 0; it < 3000; it++) {
        size_t na = 0, nb = 0;
        for (int k = 0; k < 20; k++) {
            x = x * 1103515245u + 12345u;
            const char *f = frag[(x >> 8) % (sizeof frag / sizeof *frag)];
            size_t l = strlen(f);
            if ((x >> 4) & 1) {
                if (na + l < sizeof a)
                    memcpy(a + na, f, l), na += l;
            } else if (nb + l < sizeof b) {
                memcpy(b + nb, f, l), nb += l;
            }
        }
        cg_gate_reason r1 = cg_gate_check(a, na, b, nb, CG_GATE_ALL_RULES, NULL);
        cg_gate_reason r2 = cg_gate_check(b, nb, a, na, CG_GATE_ALL_RULES, NULL);
        assert_int_equal(r1, r2);
        assert_int_equal(cg_gate_check(a, na, a, na, CG_GATE_ALL_RULES, NULL), CG_GATE_PASS);
    }
}

typedef struct {
    int bad;
} thr_arg;

static void *hammer(void *p) {
    thr_arg *t = p;
    for (int i = 0; i < 2000; i++) {
        if (cg_gate_check("convert 10 USD", 14, "convert 100 USD", 15, DEF, NULL) !=
                CG_GATE_NUMBERS ||
            cg_gate_check("가지 마", 10, "가", 3, DEF, NULL) != CG_GATE_NEGATION ||
            cg_gate_check("same", 4, "same", 4, DEF, NULL) != CG_GATE_PASS)
            t->bad++;
    }
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    pthread_t th[4];
    thr_arg args[4] = {{0}, {0}, {0}, {0}};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &args[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].bad, 0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_negation_english),
        cmocka_unit_test(test_negation_korean),
        cmocka_unit_test(test_quotes),
        cmocka_unit_test(test_other_rules),
        cmocka_unit_test(test_rules_mask),
        cmocka_unit_test(test_detail),
        cmocka_unit_test(test_length_bound),
        cmocka_unit_test(test_adversarial_input),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
