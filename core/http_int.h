/*
 * http_int.h - what the pieces of the HTTP/1.1 server (core/http*.c,
 * listed in core/http.c) share, private to them: the request and
 * connection structs, the limits in force, and the few functions one
 * piece calls in another.  The rest of the core sees only core/http.h.
 *
 * Loop thread only, all of it.
 */
#ifndef CORE_HTTP_INT_H
#define CORE_HTTP_INT_H

#include <sys/queue.h>

#include <netinet/in.h>

#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

#include "http.h"
#include "http_head.h"
#include "outmem.h"
#include "router.h"

struct bufferevent;
struct evbuffer;
struct event;

struct hstr {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

struct header {
	struct hstr	 name;
	struct hstr	 value;
};

struct qparam {
	char	*name;
	char	*value;
};

struct http_conn;

struct sales_request {
	TAILQ_ENTRY(sales_request) entry;
	struct http_conn	*conn;		/* NULL: the client is gone */
	const char		*method;	/* static string */
	struct hstr		 url;
	struct hstr		 pq;		/* path NUL query NUL */
	char			*path;		/* in pq: as received, no query */
	char			*query;		/* in pq: raw, NULL when none */
	struct header		*headers;	/* capheaders slots, zeroed */
	size_t			 nheaders;
	size_t			 capheaders;
	int			 in_value;	/* last piece was a value */
	struct hstr		 body;
	struct core_route_match	 match;
	struct qparam		*qparams;
	size_t			 nqparams;
	int			 qparsed;
	struct hstr		 extra;		/* from add_header */
	struct evbuffer		*resp;		/* answer awaiting its turn */
	size_t			 cost;		/* bytes held, once queued */
	int64_t			 start_us;	/* monotonic, head began */
	unsigned		 answered:1;
	unsigned		 dispatched:1;	/* its handler owns it */
	unsigned		 keep_alive:1;
	unsigned		 is_head:1;
	unsigned		 http10:1;
	unsigned		 ws:1;		/* valid upgrade, waiting */
	unsigned		 head_done:1;	/* its headers are all read */
};

TAILQ_HEAD(req_queue, sales_request);

enum read_state {
	RS_IDLE = 0,		/* between requests */
	RS_HEAD,		/* inside a request head */
	RS_BODY			/* inside a request body */
};

struct http_conn {
	LIST_ENTRY(http_conn)	 entry;
	struct bufferevent	*bev;
	http_parser		 parser;
	struct sales_request	*cur;		/* being parsed */
	struct sales_request	*spare;		/* buffers for the next one */
	struct req_queue	 queue;		/* complete, in arrival order */
	struct core_http_head	 head;		/* strict check of the next head */
	struct core_outmem	 om;		/* bytes held, server-wide */
	int			 nqueue;
	size_t			 answer_est;	/* cost of an answer, guessed */
	enum read_state		 rstate;
	size_t			 head_bytes;
	int64_t			 head_start;
	int64_t			 body_start;
	int64_t			 idle_since;
	struct event		*timer;
	struct event		*process;	/* deferred conn_process() */
	/* Set by a parser callback that fails the request. */
	int			 err_status;
	const char		*err_code;
	const char		*err_msg;
	unsigned		 complete:1;	/* paused on a message end */
	unsigned		 no_more:1;	/* parse no further requests */
	unsigned		 eof:1;		/* the client closed its side */
	unsigned		 lingering:1;	/* draining before close */
	unsigned		 served:1;	/* a request has completed */
	unsigned		 head_ok:1;	/* head passed the strict check */
	unsigned		 cut:1;		/* by the output budget: closing */
	char			 peer[INET6_ADDRSTRLEN];	/* or "-" */
};

/* The limits in force (core_http_configure()); host and port as bound. */
extern struct core_http_config		 core_http_cfg;
/* Set by core_http_shutdown(): no keep-alive, no new connections. */
extern int				 core_http_shutting_down;
/* Answers sent, by status class (1..5; 0 unused). */
extern uint64_t				 core_http_by_class[6];
/* http_parse.c: the callbacks, for every connection's parser. */
extern const http_parser_settings	 core_http_parser_settings;

/* http.c: a complete request, already queued, to its answer. */
void	core_http_dispatch(struct http_conn *c, struct sales_request *r);

/*
 * http_conn.c: what the bytes held in libevent's buffers cost in
 * memory; a connection's report to the server-wide budget (-1 when it
 * was cut: it is closing); conn_process() run from the loop, outside
 * whatever module code calls.
 */
size_t	core_http_chain_cost(size_t len);
size_t	core_http_evbuf_cost(struct evbuffer *b);
int	core_http_conn_account(struct http_conn *c);
void	core_http_conn_schedule(struct http_conn *c);

/*
 * http_request.c: s grows to take data, NUL-terminated (-1: no
 * memory); a request for c, from its spare if it has one; a request
 * freed for good, or kept as its connection's spare; whether header
 * name lists token.
 */
int	core_http_hstr_add(struct hstr *s, const char *data, size_t len);
struct sales_request *core_http_req_new(struct http_conn *c);
void	core_http_req_destroy(struct sales_request *r);
void	core_http_req_free(struct sales_request *r);
int	core_http_req_has_token(struct sales_request *r, const char *name,
	    const char *token);

/*
 * http_response.c: a response header the core itself chose (no
 * checks but the size: -1 past it); the monotonic clock in
 * microseconds that request durations are measured in.
 */
int	core_http_req_add_header(struct sales_request *req, const char *name,
	    const char *value);

#endif /* CORE_HTTP_INT_H */
