#ifndef CCURL_SHIM_H
#define CCURL_SHIM_H
// libcurl for the HTTPClient module only. curl_easy_setopt and curl_easy_getinfo are variadic
// (unavailable in Swift): each use is wrapped here with a fixed type. The callbacks that run
// inside libcurl (the socket veto, the capped body sink) are C, so no Swift runs on curl's stack.
#include <curl/curl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define CCURL_MAX_PINNED 16

/// The addresses a request may connect to (inet_ntop text), checked before the request; the
/// socket callback refuses any other (and records that it did).
typedef struct {
    int count;
    char addresses[CCURL_MAX_PINNED][INET6_ADDRSTRLEN];
    int refused;
    char refusedAddress[INET6_ADDRSTRLEN];
} ccurl_pin;

/// The first `capacity` bytes of the response body; `overflowed` once more arrived (the
/// transfer is then stopped).
typedef struct {
    unsigned char *bytes;
    size_t capacity;
    size_t length;
    int overflowed;
} ccurl_sink;

static curl_socket_t ccurl_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address) {
    (void)purpose;
    ccurl_pin *pin = (ccurl_pin *)clientp;
    char text[INET6_ADDRSTRLEN];
    memset(text, 0, sizeof text);
    if (address->family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&address->addr)->sin_addr, text, sizeof text);
    } else if (address->family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&address->addr)->sin6_addr, text, sizeof text);
    } else {
        pin->refused = 1;
        return CURL_SOCKET_BAD;
    }
    for (int i = 0; i < pin->count && i < CCURL_MAX_PINNED; i++) {
        if (strcmp(pin->addresses[i], text) == 0) {
            return socket(address->family, address->socktype, address->protocol);
        }
    }
    pin->refused = 1;
    memcpy(pin->refusedAddress, text, sizeof text);
    return CURL_SOCKET_BAD;
}

static size_t ccurl_write(char *data, size_t size, size_t count, void *userdata) {
    ccurl_sink *sink = (ccurl_sink *)userdata;
    size_t total = size * count;
    size_t room = sink->capacity - sink->length;
    size_t take = total < room ? total : room;
    if (take > 0) {
        memcpy(sink->bytes + sink->length, data, take);
        sink->length += take;
    }
    if (take < total) {
        sink->overflowed = 1;
        return 0;  // stops the transfer (CURLE_WRITE_ERROR)
    }
    return total;
}

static inline CURLcode ccurl_setopt_long(CURL *curl, CURLoption option, long value) {
    return curl_easy_setopt(curl, option, value);
}

static inline CURLcode ccurl_setopt_string(CURL *curl, CURLoption option, const char *value) {
    return curl_easy_setopt(curl, option, value);
}

static inline CURLcode ccurl_setopt_list(CURL *curl, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(curl, option, value);
}

static inline CURLcode ccurl_setopt_body(CURL *curl, const unsigned char *bytes, long length) {
    CURLcode rc = curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, length);
    if (rc != CURLE_OK) return rc;
    return curl_easy_setopt(curl, CURLOPT_POSTFIELDS, (const char *)bytes);
}

/// Installs the socket veto and the body sink for the next transfer.
static inline CURLcode ccurl_install(CURL *curl, ccurl_pin *pin, ccurl_sink *sink) {
    CURLcode rc = curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, ccurl_open_socket);
    if (rc == CURLE_OK) rc = curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, (void *)pin);
    if (rc == CURLE_OK) rc = curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, ccurl_write);
    if (rc == CURLE_OK) rc = curl_easy_setopt(curl, CURLOPT_WRITEDATA, (void *)sink);
    return rc;
}

static inline long ccurl_response_code(CURL *curl) {
    long code = 0;
    if (curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK) return 0;
    return code;
}

/// The address the last transfer was connected to (inet_ntop text), or NULL.
static inline const char *ccurl_primary_ip(CURL *curl) {
    char *ip = NULL;
    if (curl_easy_getinfo(curl, CURLINFO_PRIMARY_IP, &ip) != CURLE_OK) return NULL;
    return ip;
}

/// How many new connections the last transfer opened (0 when it reused one).
static inline long ccurl_new_connections(CURL *curl) {
    long count = 0;
    if (curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &count) != CURLE_OK) return 0;
    return count;
}

/// The value of the last response header `name`, or NULL.
static inline const char *ccurl_header(CURL *curl, const char *name) {
    struct curl_header *header = NULL;
    if (curl_easy_header(curl, name, 0, CURLH_HEADER, -1, &header) != CURLHE_OK || header == NULL) return NULL;
    return header->value;
}
#endif
