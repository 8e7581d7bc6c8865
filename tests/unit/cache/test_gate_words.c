/* test_gate_words: unit tests of the second gate's words, swap, deixis and
 * person rules (src/cache/gate.c, gate_extract.c, gate_words.c).
 *
 * Owns: for each of the three rules, pairs it must reject and pairs it must
 * let through, both directions (the gate is symmetric): a content word only
 * one text has (plural and possessive endings, function words, contractions,
 * numbers and negation do not count; ALL-CAPS words are names), two shared
 * words in reversed roles around the same relation word (and the
 * reorderings that are not role swaps), a pointer at something outside the
 * text (and time expressions, or pointers followed by what they point at);
 * the detail text; the default rule set on the integration tests'
 * paraphrases; the content-word cap. Also the swap rule's exchanged words
 * ("Poles dislike Russians" / "Russians dislike Poles") and the person rule
 * (the asker vs someone else), with the reorderings and mentions they must
 * let through. British and American spellings as one word for the words
 * rule (and the short words the folds leave alone), and the mentions rule
 * (a shared word moved from one role to another, and the ellipses,
 * repetitions and reorderings it must let through).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cache/gate.h"

#define DEF CG_GATE_DEFAULT_RULES
#define ONLY(r) CG_GATE_RULE(r)

/* The verdict for (a, b) under rules, checked to be the same for (b, a). */
static cg_gate_reason verdict(const char *a, const char *b, unsigned rules) {
    cg_gate_result r1, r2;
    cg_gate_reason x = cg_gate_check(a, strlen(a), b, strlen(b), rules, &r1);
    cg_gate_reason y = cg_gate_check(b, strlen(b), a, strlen(a), rules, &r2);
    if (x != y)
        fail_msg("not symmetric: '%s' / '%s': %s vs %s", a, b, cg_gate_reason_name(x),
                 cg_gate_reason_name(y));
    return x;
}

#define REJECTS(rule, a, b) assert_int_equal(verdict(a, b, ONLY(rule)), rule)
#define PASSES(rule, a, b) assert_int_equal(verdict(a, b, ONLY(rule)), CG_GATE_PASS)

static void test_words(void **st) {
    (void)st;
    const int W = CG_GATE_WORDS;
    /* a content word only one text has */
    REJECTS(W, "What are the best restaurants in downtown Vancouver?",
            "What are the best restaurants in Vancouver?");
    REJECTS(W, "How do I reactivate voicemail on my Android phone?",
            "How do I reactivate voicemail on my phone?");
    REJECTS(W, "What are some good tips for self study?",
            "What are the smart tips for self study?");
    REJECTS(W, "What is the capital of Canada?", "What is the population of Canada?");
    REJECTS(W, "Which is the best way to learn Java?", "Which is the best course to learn Java?");
    /* the word is only in one text even if the other has a longer word */
    REJECTS(W, "how to bank online", "how to banking online");
    /* ALL-CAPS words are names, not the pronoun / function word */
    REJECTS(W, "Are elevators safe in the US?", "Are elevators safe?");
    REJECTS(W, "What are the top IT job sites?", "What are the top job sites?");
    /* non-Latin words are compared too */
    REJECTS(W, "What does 심하잖아 mean?", "What does 任せてほしい mean?");
    /* function words, auxiliaries, pronouns, question words: not compared */
    PASSES(W, "How do I reset my password?", "How can I reset my password?");
    PASSES(W, "What is the capital of France?", "What's the capital of France?");
    PASSES(W, "How do you get rid of a double chin?", "How can I get rid of double chin?");
    PASSES(W, "I'm scared of death. What do I do?", "I am scared of death. What should I do?");
    /* light stemming: plurals and possessives */
    PASSES(W, "What are the best exercises for sciatica?",
           "What's the best exercise for sciatica?");
    PASSES(W, "best cities for families", "best city for family");
    PASSES(W, "How to fix watches and boxes", "How to fix watch and box");
    PASSES(W, "What is Madonna's best album?", "What is the best album of Madonna?");
    /* numbers and negation have their own rules */
    PASSES(W, "How can I make money as a 13 year old?",
           "How can I make money as a thirteen year old?");
    PASSES(W, "Why can't I sleep?", "Why can I not sleep?");
    /* case and punctuation */
    PASSES(W, "What is the purpose of life ?", "what is the purpose of life?");
    PASSES(W, "short-term investment plans", "short term investment plans");
}

/* Words rule: British and American spellings of a word are one word; the
 * folds leave short words alone, so that they are not merged with other
 * words. */
static void test_words_spelling(void **st) {
    (void)st;
    const int W = CG_GATE_WORDS;
    PASSES(W, "What is your favourite colour?", "What is your favorite color?");
    PASSES(W, "What are your favourite colours?", "What is your favorite color?");
    PASSES(W, "Does counselling really work?", "Does counseling really work?");
    PASSES(W, "How do I organise my neighbourhood's behaviour?",
           "How do I organize my neighborhood's behavior?");
    PASSES(W, "How should I analyse this?", "How should I analyze this?");
    PASSES(W, "best IAS coaching centre near Salt Lake", "best IAS coaching center near Salt Lake");
    PASSES(W, "Which theatres are open?", "Which theaters are open?");
    PASSES(W, "financial modelling courses", "financial modeling courses");
    PASSES(W, "Who travelled the most?", "Who traveled the most?");
    PASSES(W, "product catalogue", "product catalog");
    PASSES(W, "driving licence in India", "driving license in India");
    PASSES(W, "How can I realise my dreams?", "How can I realize my dreams?");
    /* the words still have to be there */
    REJECTS(W, "What is your favourite colour?", "What is your favorite movie?");
    /* short words are not folded: tour / tor, flour / flor, rise / rize, fence / fense */
    REJECTS(W, "How do I use Tor?", "How do I use tour?");
    REJECTS(W, "bread flour", "bread flor");
    REJECTS(W, "Why do prices rise?", "Why do prices rize?");
    REJECTS(W, "How tall is the fence?", "How tall is the fense?");
    /* a fold is a spelling, not a stem: comparatives and other forms stay apart */
    REJECTS(W, "Who is the seller?", "Who is the seler?");
    REJECTS(W, "What is a rogue?", "What is a rog?");
}

static void test_mentions(void **st) {
    (void)st;
    const int M = CG_GATE_MENTIONS;
    /* the same words, one mention moved from one role to another */
    REJECTS(M,
            "If there were a war between the Muggles and Wizards, what strategies can the "
            "Wizards use to win?",
            "If there were a war between the Muggles and Wizards, what strategies can the "
            "Muggles use to win?");
    REJECTS(M, "What is the difference between a neutrino and an electron neutrino?",
            "What is the difference between an electron and an electron neutrino?");
    REJECTS(M, "Should a cat owner adopt a dog or a cat?",
            "Should a dog owner adopt a dog or a cat?");
    /* one text repeats a word and the other does not: not a move */
    PASSES(M, "Should a cat owner adopt a dog?", "Should a dog owner adopt a dog or a cat?");
    /* plural endings and case do not hide it */
    REJECTS(M, "Do Wizards fear wizards more than Muggles?",
            "Do muggles fear Muggles more than wizard?");
    /* only one text repeats a word: an ellipsis or a repetition, not a move */
    PASSES(M, "What is the difference between Chinese culture and Western culture?",
           "What is the difference between Chinese and Western culture?");
    PASSES(M, "Why is Kim Kardashian famous for being famous?", "Why is Kim Kardashian famous?");
    PASSES(M, "Why do people kill people?", "Why do people kill?");
    /* the same counts, in any order */
    PASSES(M, "What is the difference between a neutrino and an electron neutrino?",
           "What is the difference between an electron neutrino and a neutrino?");
    PASSES(M, "war between Muggles and Wizards", "war between Wizards and Muggles");
    /* words only one text has are the words rule's, not this one's */
    PASSES(M, "Do cats chase cats or dogs?", "Do dogs chase dogs or mice?");
    /* function words are not counted */
    PASSES(M, "How do I do it and how do I know it?", "How do I know it and do it?");
    /* identical texts */
    PASSES(M, "a b a b c", "a b a b c");
}

static void test_swap(void **st) {
    (void)st;
    const int S = CG_GATE_SWAP;
    REJECTS(S, "Do you believe there is life after death?",
            "Do you believe there is death after life?");
    REJECTS(S, "Can data science graduates apply for psychology?",
            "Can psychology graduates apply for data science?");
    REJECTS(S, "How do you convert current source to voltage source?",
            "How do you convert voltage source to current source?");
    REJECTS(S, "What are the most profitable products to import from Canada and sell in India?",
            "What are the most profitable products to import from India and sell in Canada?");
    REJECTS(S, "What do Croats think of Turks?", "What do Turks think of Croats?");
    REJECTS(S, "Is Python faster than Java?", "Is Java faster than Python?");
    /* reordered without a role change: no shared relation word between */
    PASSES(S, "convert csv to parquet with python", "python convert csv to parquet");
    PASSES(S, "Recipe for pesto (nut-free)", "nut-free pesto recipe");
    PASSES(S, "restaurants in Paris", "Paris restaurants");
    PASSES(S, "How do I move to Canada from India?", "How do I move from India to Canada?");
    /* symmetric relations are not relation words */
    PASSES(S, "apache vs nginx for static files", "nginx vs apache for static files");
    PASSES(S, "difference between cats and dogs", "difference between dogs and cats");
    /* the same order */
    PASSES(S, "life after death", "Is there life after death?");
}

/* Swap rule, exchanged words: "x FRAME y" / "y FRAME x" with the same
 * 1-4 words between (a content word among them, no symmetric word). */
static void test_swap_exchanged(void **st) {
    (void)st;
    const int S = CG_GATE_SWAP;
    REJECTS(S, "Why do Poles dislike Russians?", "Why do Russians dislike Poles?");
    REJECTS(S, "Do guys like introvert girls?", "Do girls like introvert guys?");
    REJECTS(S, "Do Indian women find Pakistani men attractive?",
            "Do Pakistani women find Indian men attractive?");
    REJECTS(S, "What are some good Android game ideas (no apps)?",
            "What are some good Android app ideas (no games)?");
    REJECTS(S, "Why do children deceive their parents?", "How do parents deceive their children?");
    /* plural endings do not hide the exchange */
    REJECTS(S, "Do cats chase dogs?", "Do dog chase cat?");
    /* a frame without a content word is a relation word's job (or none) */
    PASSES(S, "restaurants in Paris", "Paris restaurants");
    PASSES(S, "Is it x or y?", "Is it y or x?");
    /* symmetric words in the frame: coordination, not roles */
    PASSES(S, "What is the difference between real gas and ideal gas?",
           "What is the difference between an ideal gas and a real gas?");
    PASSES(S, "similarities between British English and American English",
           "similarities between American English and British English");
    PASSES(S, "What are the differences between the Chinese culture or Western culture?",
           "What are the differences between the Western culture or Chinese culture?");
    /* the frame changed: a reordering, not an exchange */
    PASSES(S, "Recipe for pesto (nut-free)", "nut-free pesto recipe");
    PASSES(S, "What are the best email finding free tools?",
           "What is the best free tools for finding email?");
    PASSES(S, "How was education during the Japanese occupation like in Singapore?",
           "How was education in Singapore like during the Japanese occupation?");
    /* more than four words between */
    PASSES(S, "cats really truly deeply madly love dogs",
           "dogs really truly deeply madly love cats");
    /* the same order, or one word only */
    PASSES(S, "Why do Poles dislike Russians?", "Why do Poles really dislike Russians?");
    PASSES(S, "Do guys like guys?", "Do guys like guys?");
    /* a text with both orders matches itself, and a text with one of them */
    PASSES(S, "Does supply create demand or does demand create supply?",
           "Does supply create demand or does demand create supply?");
    PASSES(S, "Does supply create demand or does demand create supply?",
           "Why does supply create demand?");
}

static void test_person(void **st) {
    (void)st;
    const int P = CG_GATE_PERSON;
    REJECTS(P, "How can I motivate someone to lose weight?",
            "How do I motivate myself to lose weight?");
    REJECTS(P, "What is the best way to spank someone?", "What is the best way to spank myself?");
    REJECTS(P, "Do you recommend me to study Computer Science in Russia?",
            "Do you recommend someone to study Computer Science in Russia?");
    REJECTS(P, "Can someone read my palm?", "Can you read my palm for me?");
    /* one side has both kinds, or neither text has the other kind */
    PASSES(P, "How can I see if someone blocked me?", "How can I see who has blocked me?");
    PASSES(P, "Can you help me find a dance academy?", "Can anyone help me find a dance academy?");
    PASSES(P, "What's the best morning routine?", "What's the best morning routine for me?");
    PASSES(P, "How do I stop myself from getting suicidal thoughts?",
           "How do I stop having suicidal thoughts?");
    PASSES(P, "How do you motivate someone?", "How can I motivate somebody?");
    /* a word in capitals is a name: ME is Maine */
    PASSES(P, "best lobster in ME", "best lobster for someone");
    /* words that merely contain the pronouns */
    PASSES(P, "What is a meme?", "What is someones meme?");
}

static void test_deixis(void **st) {
    (void)st;
    const int D = CG_GATE_DEIXIS;
    /* points at something the text does not contain: either text */
    REJECTS(D, "What is the equivalent resistance of this circuit?",
            "What is the equivalent resistance of this circuit?");
    REJECTS(D, "What kind of spider is this?", "What kind of spider is it?");
    REJECTS(D, "What will be the output of the following program?",
            "What is the output of the program?");
    REJECTS(D, "What do these symbols mean?", "What do the symbols mean?");
    REJECTS(D, "Which of those is right?", "Which one is right?");
    /* time expressions are not pointers */
    PASSES(D, "What is the weather this week?", "What is the weather this week?");
    PASSES(D, "Best movies this year", "Best movies this summer");
    PASSES(D, "What should I do this morning?", "What should I do this time?");
    /* the text contains what it points at: a colon, new line, quote or code after it */
    PASSES(D, "Translate this: good morning", "Translate this: good morning");
    PASSES(D, "What does this code do?\nprint(1)", "What does this code do?\nprint(1)");
    PASSES(D, "What does this mean: \"carpe diem\"", "What does \"carpe diem\" mean?");
    PASSES(D, "What is the output of the following: `1 + 1`", "What is `1 + 1`?");
    /* "that" is a conjunction more often than a pointer: not checked */
    PASSES(D, "Should I tell her that I like her?", "Should I tell her I like her?");
}

static void test_detail(void **st) {
    (void)st;
    cg_gate_result r;
    const char *a = "What are the best restaurants in downtown Vancouver?";
    const char *b = "What are the best restaurants in Vancouver?";
    assert_int_equal(cg_gate_check(a, strlen(a), b, strlen(b), DEF, &r), CG_GATE_WORDS);
    assert_string_equal(r.detail, "word \"downtown\" only in the new query");
    assert_int_equal(cg_gate_check(b, strlen(b), a, strlen(a), DEF, &r), CG_GATE_WORDS);
    assert_string_equal(r.detail, "word \"downtown\" only in the cached query");
    a = "What do Croats think of Turks?";
    b = "What do Turks think of Croats?";
    assert_int_equal(cg_gate_check(a, strlen(a), b, strlen(b), DEF, &r), CG_GATE_SWAP);
    assert_string_equal(r.detail, "swap: \"croats\" and \"turks\" in reversed roles");
    a = "What kind of spider is this?";
    assert_int_equal(cg_gate_check(a, strlen(a), a, strlen(a), DEF, &r), CG_GATE_DEIXIS);
    assert_string_equal(r.detail, "points outside the text: \"this\" only in the new query");
    assert_string_equal(cg_gate_reason_name(CG_GATE_WORDS), "words");
    assert_string_equal(cg_gate_reason_name(CG_GATE_SWAP), "swap");
    assert_string_equal(cg_gate_reason_name(CG_GATE_DEIXIS), "deixis");
    unsigned m = 0;
    assert_int_equal(cg_gate_rules_parse("words,swap,deixis", &m), 0);
    assert_int_equal(m, ONLY(CG_GATE_WORDS) | ONLY(CG_GATE_SWAP) | ONLY(CG_GATE_DEIXIS));
    assert_true(DEF & ONLY(CG_GATE_WORDS));
    assert_true(DEF & ONLY(CG_GATE_SWAP));
    assert_true(DEF & ONLY(CG_GATE_DEIXIS));
    assert_true(DEF & ONLY(CG_GATE_PERSON));
    assert_string_equal(cg_gate_reason_name(CG_GATE_PERSON), "person");
    assert_int_equal(cg_gate_rules_parse("person", &m), 0);
    assert_int_equal(m, ONLY(CG_GATE_PERSON));
    const char *p1 = "How do I motivate myself?", *p2 = "How do I motivate someone?";
    assert_int_equal(cg_gate_check(p1, strlen(p1), p2, strlen(p2), DEF, &r), CG_GATE_PERSON);
    assert_string_equal(r.detail, "person: the asker, \"myself\" only in the new query");
    assert_int_equal(cg_gate_check(p2, strlen(p2), p1, strlen(p1), DEF, &r), CG_GATE_PERSON);
    assert_string_equal(r.detail, "person: someone else, \"someone\" only in the new query");
    const char *e1 = "Why do Poles dislike Russians?", *e2 = "Why do Russians dislike Poles?";
    assert_int_equal(cg_gate_check(e1, strlen(e1), e2, strlen(e2), DEF, &r), CG_GATE_SWAP);
    assert_string_equal(r.detail, "swap: \"poles\" and \"russians\" in reversed roles");
    const char *m1 = "a neutrino and an electron neutrino",
               *m2 = "an electron and electron neutrino";
    assert_int_equal(cg_gate_check(m1, strlen(m1), m2, strlen(m2), DEF, &r), CG_GATE_MENTIONS);
    assert_string_equal(
        r.detail, "mentions: \"neutrino\" more in the new query, \"electron\" more in the cached");
    assert_string_equal(cg_gate_reason_name(CG_GATE_MENTIONS), "mentions");
    assert_int_equal(cg_gate_rules_parse("mentions", &m), 0);
    assert_int_equal(m, ONLY(CG_GATE_MENTIONS));
    assert_true(DEF & ONLY(CG_GATE_MENTIONS));
}

/* The paraphrases the integration tests serve must still pass the whole
 * default set; the near misses they refuse must still be refused. */
static void test_default_set(void **st) {
    (void)st;
    assert_int_equal(verdict("How do I reset my password?", "How can I reset my password?", DEF),
                     CG_GATE_PASS);
    assert_int_equal(verdict("How do I reset my password?", "how can I reset my password?", DEF),
                     CG_GATE_PASS);
    assert_int_equal(
        verdict("What is the capital of France?", "What's the capital of France?", DEF),
        CG_GATE_PASS);
    assert_int_equal(verdict("Partition probe 7: how do I rotate the credentials of service 7?",
                             "Partition probe 7: how do I rotate the credentials of service 7? ",
                             DEF),
                     CG_GATE_PASS);
    assert_int_equal(verdict("How do I set up 2 VPNs?", "How do I set up 3 VPNs?", DEF),
                     CG_GATE_NUMBERS);
    assert_int_equal(verdict("Is it safe to drink coffee while pregnant?",
                             "Is it not safe to drink coffee while pregnant?", DEF),
                     CG_GATE_NEGATION);
}

/* More distinct content words than the gate keeps: it cannot compare the
 * texts, and refuses even identical ones. */
static void test_cap(void **st) {
    (void)st;
    static char text[CG_GATE_SCAN_MAX];
    size_t o = 0;
    for (int k = 0; k < 400 && o + 16 < sizeof text; k++) {
        /* words of letters only: digits are left to the numbers rule */
        char w[8];
        int v = k;
        for (int d = 0; d < 4; d++, v /= 26)
            w[d] = (char)('a' + v % 26);
        w[4] = '\0';
        o += (size_t)snprintf(text + o, sizeof text - o, "zq%s ", w);
    }
    cg_gate_result r;
    assert_int_equal(cg_gate_check(text, o, text, o, ONLY(CG_GATE_WORDS), &r), CG_GATE_WORDS);
    assert_string_equal(r.detail, "words: too many to compare");
    /* 200 distinct words: compared */
    const char *cut = text;
    size_t n = 0, words = 0;
    while (n < o && words < 200)
        words += cut[n++] == ' ';
    assert_int_equal(cg_gate_check(text, n, text, n, ONLY(CG_GATE_WORDS), NULL), CG_GATE_PASS);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_words),          cmocka_unit_test(test_words_spelling),
        cmocka_unit_test(test_mentions),       cmocka_unit_test(test_swap),
        cmocka_unit_test(test_swap_exchanged), cmocka_unit_test(test_person),
        cmocka_unit_test(test_deixis),         cmocka_unit_test(test_detail),
        cmocka_unit_test(test_default_set),    cmocka_unit_test(test_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
