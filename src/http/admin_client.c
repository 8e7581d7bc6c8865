/* admin_client: see admin_client.h. */
#include "http/admin_client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

static size_t collect(char *p, size_t sz, size_t n, void *arg) {
    return cg_buf_append(arg, p, sz * n) == 0 ? sz * n : 0;
}

int cg_admin_call(const char *who, const char *url, const char *key, const char *method,
                  const char *body, cg_buf *out, long *status) {
    CURL *e = curl_easy_init();
    if (!e)
        return -1;
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    char auth[600];
    if (key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        h = curl_slist_append(h, auth);
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    CURLcode rc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    if (rc != CURLE_OK)
        fprintf(stderr, "%s: %s: %s\n", who, url, curl_easy_strerror(rc));
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    memset(auth, 0, sizeof auth);
    return rc == CURLE_OK ? 0 : -1;
}
