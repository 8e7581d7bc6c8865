/* slo_runner: SLO evaluation thread, log/metric/webhook actions (see
 * slo_runner.h). */
#include "budget/slo_runner.h"
#include "core/clock.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

struct cg_slo_runner {
    cg_slos *slos;
    int interval_ms;
    char webhook[512];
    int64_t (*clock)(void *);
    void *clock_arg;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    atomic_uint_fast64_t events[5]; /* by cg_slo_event_kind */
    atomic_uint_fast64_t webhook_ok, webhook_fail;
    pthread_mutex_t tick_mu; /* one evaluation at a time */
};

static const char *const EVENT_NAMES[5] = {"", "alert_fired", "alert_cleared", "fallback_on",
                                           "fallback_off"};

static int64_t real_ms(void *arg) {
    (void)arg;
    return cg_wall_ms();
}

static size_t discard(char *p, size_t s, size_t n, void *arg) {
    (void)p;
    (void)arg;
    return s * n;
}

static void post_webhook(cg_slo_runner *r, const char *body, size_t len) {
    CURL *e = curl_easy_init();
    if (!e) {
        atomic_fetch_add(&r->webhook_fail, 1);
        return;
    }
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(e, CURLOPT_URL, r->webhook);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_OK && status >= 200 && status < 300) {
        atomic_fetch_add(&r->webhook_ok, 1);
    } else {
        atomic_fetch_add(&r->webhook_fail, 1);
        CG_WARN("slo: webhook POST failed: %s (HTTP %ld)", curl_easy_strerror(rc), status);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
}

static void on_event(void *arg, const cg_slo_event *ev) {
    cg_slo_runner *r = arg;
    atomic_fetch_add(&r->events[ev->kind], 1);
    CG_WARN("slo %s%s%s: %s%s%s (burn long %lld.%03lldx, short %lld.%03lldx, factor %lld.%03lldx)",
            ev->slo, ev->segment[0] ? " segment=" : "", ev->segment, EVENT_NAMES[ev->kind],
            ev->pair[0] ? " pair=" : "", ev->pair, (long long)(ev->burn_long_milli / 1000),
            (long long)(ev->burn_long_milli % 1000), (long long)(ev->burn_short_milli / 1000),
            (long long)(ev->burn_short_milli % 1000), (long long)(ev->factor_milli / 1000),
            (long long)(ev->factor_milli % 1000));
    if (!r->webhook[0])
        return;
    cg_buf b;
    cg_buf_init(&b, 4096);
    cg_buf_puts(&b, "{\"source\":\"costgate\",\"event\":");
    cg_buf_json_str(&b, EVENT_NAMES[ev->kind], strlen(EVENT_NAMES[ev->kind]));
    cg_buf_puts(&b, ",\"slo\":");
    cg_buf_json_str(&b, ev->slo, strlen(ev->slo));
    cg_buf_puts(&b, ",\"segment\":");
    cg_buf_json_str(&b, ev->segment, strlen(ev->segment));
    cg_buf_puts(&b, ",\"pair\":");
    cg_buf_json_str(&b, ev->pair, strlen(ev->pair));
    cg_buf_printf(&b,
                  ",\"burn_rate_long_milli\":%lld,\"burn_rate_short_milli\":%lld,"
                  "\"factor_milli\":%lld,\"at_ms\":%lld}",
                  (long long)ev->burn_long_milli, (long long)ev->burn_short_milli,
                  (long long)ev->factor_milli, (long long)ev->at_ms);
    post_webhook(r, b.data, b.len);
    cg_buf_free(&b);
}

void cg_slo_runner_tick(cg_slo_runner *r) {
    pthread_mutex_lock(&r->tick_mu);
    cg_slos_evaluate(r->slos, r->clock(r->clock_arg), on_event, r);
    pthread_mutex_unlock(&r->tick_mu);
}

static void *runner_main(void *arg) {
    cg_slo_runner *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += r->interval_ms / 1000;
        until.tv_nsec += (long)(r->interval_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        int rc = 0;
        while (!r->stop && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&r->cv, &r->mu, &until);
        if (r->stop)
            break;
        pthread_mutex_unlock(&r->mu);
        cg_slo_runner_tick(r);
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

cg_slo_runner *cg_slo_runner_start(cg_slos *slos, int interval_ms, const char *webhook,
                                   int64_t (*clock)(void *), void *clock_arg) {
    cg_slo_runner *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->slos = slos;
    r->interval_ms = interval_ms > 0 ? interval_ms : 10000;
    snprintf(r->webhook, sizeof r->webhook, "%s", webhook ? webhook : "");
    r->clock = clock ? clock : real_ms;
    r->clock_arg = clock_arg;
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->tick_mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (cg_slos_count(slos) > 0) {
        if (pthread_create(&r->thread, NULL, runner_main, r) != 0) {
            cg_slo_runner_stop(r);
            return NULL;
        }
        r->started = 1;
    }
    return r;
}

void cg_slo_runner_stop(cg_slo_runner *r) {
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (r->started)
        pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->tick_mu);
    free(r);
}

void cg_slo_runner_metrics(cg_slo_runner *r, cg_buf *out) {
    size_t n = cg_slos_count(r->slos);
    if (n == 0)
        return;
    cg_buf_puts(out, "# HELP costgate_slo_burn_rate Cost burn rate per SLO and window "
                     "(1 = on target).\n# TYPE costgate_slo_burn_rate gauge\n");
    for (size_t i = 0; i < n; i++) {
        cg_slo_status st;
        cg_slos_status(r->slos, i, &st);
        const char *w[4] = {"fast_long", "fast_short", "slow_long", "slow_short"};
        int64_t v[4] = {st.burn_fast_long, st.burn_fast_short, st.burn_slow_long,
                        st.burn_slow_short};
        for (int k = 0; k < 4; k++)
            cg_buf_printf(out,
                          "costgate_slo_burn_rate{slo=\"%s\",segment=\"%s\",window=\"%s\"} "
                          "%lld.%03lld\n",
                          st.name, st.segment, w[k], (long long)(v[k] / 1000),
                          (long long)(v[k] % 1000));
    }
    cg_buf_puts(out, "# HELP costgate_slo_alert 1 while an SLO window pair alerts.\n# TYPE "
                     "costgate_slo_alert gauge\n");
    for (size_t i = 0; i < n; i++) {
        cg_slo_status st;
        cg_slos_status(r->slos, i, &st);
        cg_buf_printf(out, "costgate_slo_alert{slo=\"%s\",segment=\"%s\",pair=\"fast\"} %d\n",
                      st.name, st.segment, st.fast_alert);
        cg_buf_printf(out, "costgate_slo_alert{slo=\"%s\",segment=\"%s\",pair=\"slow\"} %d\n",
                      st.name, st.segment, st.slow_alert);
    }
    cg_buf_puts(out, "# HELP costgate_slo_fallback 1 while the SLO forces the cheapest model.\n"
                     "# TYPE costgate_slo_fallback gauge\n");
    for (size_t i = 0; i < n; i++) {
        cg_slo_status st;
        cg_slos_status(r->slos, i, &st);
        cg_buf_printf(out, "costgate_slo_fallback{slo=\"%s\",segment=\"%s\"} %d\n", st.name,
                      st.segment, st.fallback);
    }
    cg_buf_puts(out, "# HELP costgate_slo_events_total SLO state changes.\n# TYPE "
                     "costgate_slo_events_total counter\n");
    for (int k = 1; k < 5; k++)
        cg_buf_printf(out, "costgate_slo_events_total{event=\"%s\"} %llu\n", EVENT_NAMES[k],
                      (unsigned long long)atomic_load(&r->events[k]));
    cg_buf_printf(out,
                  "# HELP costgate_slo_webhook_total Webhook deliveries by result.\n# TYPE "
                  "costgate_slo_webhook_total counter\n"
                  "costgate_slo_webhook_total{result=\"ok\"} %llu\n"
                  "costgate_slo_webhook_total{result=\"failed\"} %llu\n",
                  (unsigned long long)atomic_load(&r->webhook_ok),
                  (unsigned long long)atomic_load(&r->webhook_fail));
}
