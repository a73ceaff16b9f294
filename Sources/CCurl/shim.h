#pragma once
#include <curl/curl.h>

// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: typed wrappers.
typedef size_t (*ftb_curl_data_fn)(char *, size_t, size_t, void *);

static inline CURLcode ftb_curl_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode ftb_curl_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode ftb_curl_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode ftb_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode ftb_curl_setopt_data_fn(CURL *handle, CURLoption option, ftb_curl_data_fn value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode ftb_curl_setopt_off(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}
static inline long ftb_curl_response_code(CURL *handle) {
    long code = 0;
    curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &code);
    return code;
}
/* New connections the last transfer opened: 1 on a handle whose kept-alive connection was in use means curl
   found it dead, possibly after sending the request on it (curl then resends on a fresh one by itself). */
static inline long ftb_curl_num_connects(CURL *handle) {
    long count = 0;
    curl_easy_getinfo(handle, CURLINFO_NUM_CONNECTS, &count);
    return count;
}
