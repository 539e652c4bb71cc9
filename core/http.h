/*
 * http.h - the HTTP/1.1 server: connections on bufferevents, requests
 * parsed by libhttp-parser, answered in order (pipelining), handed to
 * core/ws.c on a WebSocket upgrade.
 */
#ifndef CORE_HTTP_H
#define CORE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <sales/module.h>

struct core_http_config {
	const char	*host;
	int		 port;			/* 0: pick a free one */
	size_t		 max_body;		/* 413 past it */
	size_t		 max_header;		/* 431 past it (all header bytes) */
	long		 header_timeout_ms;	/* request head must arrive within */
	long		 body_timeout_ms;	/* a body must arrive within */
	long		 idle_timeout_ms;	/* keep-alive idle */
	int		 max_pipeline;		/* queued requests per connection */
	size_t		 max_conn_output;	/* bytes held: no new request past */
	int		 max_connections;
	int		 listen_backlog;	/* accept queue, capped by somaxconn */
	int		 access_log;		/* a log line per answer */
};

int	core_http_start(const struct core_http_config *cfg);
/*
 * Takes new limits (everything but host and port, which need a restart)
 * for what comes next: connections already open keep the buffer marks
 * they were given.
 */
void	core_http_configure(const struct core_http_config *cfg);
/* Appends the request duration histograms for GET /metrics. */
void	core_http_metrics(struct sales_buf *b);
int	core_http_port(void);		/* the bound port */
/*
 * Serves HTTP on fd, a connected non-blocking stream socket: what the
 * listener does with each accepted one (the connection limit aside),
 * and how tests/fuzz/fuzz_http.c feeds a socketpair.  Needs
 * core_http_start() first.  -1 when memory runs out; fd is closed.
 */
int	core_http_adopt(int fd);
void	core_http_stop_accepting(void);
/* Closes idle connections; busy ones close after their last response. */
void	core_http_shutdown(void);
size_t	core_http_connections(void);
uint64_t core_http_requests_total(void);	/* requests parsed so far */
uint64_t core_http_responses(int status_class);	/* 1..5: 1xx..5xx sent */

/* Service-table implementations (see struct sales_core). */
const char *core_http_method(struct sales_request *req);
const char *core_http_path(struct sales_request *req);
const char *core_http_param(struct sales_request *req, const char *name);
const char *core_http_query(struct sales_request *req, const char *name);
const char *core_http_header(struct sales_request *req, const char *name);
const char *core_http_body(struct sales_request *req, size_t *len);
int	core_http_add_header(struct sales_request *req, const char *name,
	    const char *value);
void	core_http_respond(struct sales_request *req, int status,
	    const char *content_type, const char *body, size_t len);
void	core_http_error(struct sales_request *req, int status,
	    const char *code, const char *message, const char *field);

#endif /* CORE_HTTP_H */
