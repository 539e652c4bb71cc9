/*
 * httpc.h - asynchronous HTTP client: libcurl multi driven by the loop
 * (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION).
 */
#ifndef CORE_HTTPC_H
#define CORE_HTTPC_H

#include <sales/httpc.h>

int	core_httpc_init(void);
/* Fails every request in flight with "shutdown" and frees libcurl. */
void	core_httpc_shutdown(void);
/*
 * owner names the caller in salesd_upstream_duration_seconds: a
 * module's name; NULL (core_httpc_request) is "unknown".
 */
int	core_httpc_call(const char *owner,
	    const struct sales_httpc_request *req, sales_httpc_cb cb,
	    void *arg);
int	core_httpc_request(const struct sales_httpc_request *req,
	    sales_httpc_cb cb, void *arg);
uint64_t core_httpc_requests(void);	/* started so far */
uint64_t core_httpc_failures(void);	/* ended without a response */
uint64_t core_httpc_latency_ms(void);	/* sum of request durations */
/* Appends the duration histograms, by owner and outcome, for /metrics. */
void	core_httpc_metrics(struct sales_buf *b);

#endif /* CORE_HTTPC_H */
