/*
 * sales/httpc.h - the asynchronous HTTP client (libcurl multi on the
 * loop), for modules that talk to upstream services.
 *
 * A request never blocks the loop; its outcome comes back as one call of
 * the callback, on the loop, after success, failure or timeout.
 */
#ifndef SALES_HTTPC_H
#define SALES_HTTPC_H

#include <sales/types.h>

struct sales_httpc_request {
	const char	 *method;	/* "GET" or "POST"; NULL means GET */
	const char	 *url;
	const char *const *headers;	/* "Name: value", NULL-terminated; may be NULL */
	const char	 *body;		/* POST body, copied; may be NULL */
	size_t		  body_len;
	long		  timeout_ms;	/* whole request; 0 means 10000 */
	size_t		  max_response;	/* bytes; 0 means 1 MiB */
};

/*
 * status is the HTTP status (any, 4xx and 5xx included: err is then
 * NULL), or 0 when no whole response arrived.  err then says why, in
 * one of a few fixed words, safe to show a client: "timeout", "response
 * too large", "could not resolve host", "could not connect", "TLS
 * failure", "connection failed", "transfer failed", "request failed",
 * or "shutdown" when the server stops first (curl's own text, which
 * names hosts, goes to the log only).  body is NUL-terminated and valid
 * for the call only.  No redirect is followed.
 */
typedef void (*sales_httpc_cb)(long status, const char *body, size_t len,
    const char *err, void *arg);

#endif /* SALES_HTTPC_H */
