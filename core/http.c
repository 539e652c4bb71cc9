/*
 * http.c - the HTTP/1.1 server.
 *
 * Connections are accepted with an evconnlistener and owned as
 * bufferevents on core_base; requests are parsed by libhttp-parser and
 * answered strictly in request order, even when handlers answer later
 * and out of order (pipelining).  A connection holds a queue of complete
 * requests: an answer to the request at the head goes straight into the
 * bufferevent's output; an answer to a later one waits in its own
 * evbuffer until everything before it has gone out.  At most
 * max_pipeline requests are queued, and a new request is taken only
 * while the bytes the connection holds for its client (answers queued
 * and unsent, counted as memory allocated, plus a guess for answers
 * still to come) are under max_conn_output; past either, reading
 * pauses.  Every connection also reports what it holds to the
 * server-wide budget of core/outmem.c, which may cut it.
 *
 * Each request head is checked whole by core/http_head.c (strict RFC
 * 9112 framing) before the parser sees a byte of it.
 *
 * The parser is paused after every complete message, so that exactly
 * the bytes of one request are consumed from the input.  That is what
 * makes the WebSocket hand-over clean: after a valid upgrade request the
 * bytes that follow stay in the bufferevent for core/ws.c.
 *
 * Limits, each answered with the JSON error shape and then a close:
 * header bytes (431), body size (413, Content-Length up front, chunked
 * while it arrives), malformed or ambiguously framed requests and bad
 * percent-escapes (400), transfer codings other than chunked (501), a
 * head not complete within header_timeout_ms of its first byte or a
 * body not complete within body_timeout_ms of its head (408).  A keep-alive connection idle for
 * idle_timeout_ms is closed silently.  Past max_connections a new
 * connection gets a short 503 and is closed.
 *
 * core_http_path() is the path as received, still percent-encoded;
 * "{name}" parameters and query values are decoded.
 *
 * A request stays valid until its module answers, even if the client
 * has gone meanwhile (its answer is then dropped).  A handler that never
 * answers leaks its request: that is a module bug, and the module's
 * business.
 *
 * Routing policy for the WebSocket paths "/" and "/ws": a GET carrying
 * "Upgrade: websocket" is always a WebSocket handshake (checked here,
 * completed by core/ws.c).  Without the Upgrade header the request is
 * routed normally, so a module may serve a page at "/"; if no module
 * did, a GET is answered 426 (upgrade required) and other methods 405.
 *
 * OPTIONS on a path some route has, when no module took OPTIONS itself,
 * is answered here: 204 with Allow (RFC 9110 9.3.7), and for a CORS
 * preflight what core/guard.c adds.  Every answer made here for a
 * request whose head was read carries the CORS headers the guard gives
 * its origin, so that a listed page can read a 413 or a 408 too.
 *
 * Not here: WebSocket framing (core/ws.c), routes (core/router.c),
 * anything that knows what a request means.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <http_parser.h>

#include "buf.h"
#include "core.h"
#include "guard.h"
#include "http.h"
#include "http_head.h"
#include "log.h"
#include "metrics.h"
#include "outmem.h"
#include "router.h"
#include "uri.h"
#include "utf8.h"
#include "ws.h"

/*
 * What a connection holds is counted in bytes allocated, not payload:
 * libevent puts data in chains of a power of two, at least this big,
 * with a header in front; a connection itself costs its struct, a
 * bufferevent with two evbuffers, two events and a parser.  Estimates,
 * on the high side, so that many small answers are not undercounted.
 */
#define HTTP_CHAIN_MIN		1024
#define HTTP_CHAIN_HDR		64
#define HTTP_EVBUF_COST		128
#define HTTP_CONN_COST		(sizeof(struct http_conn) + 1024)
/* Chains looked at one by one; past these, payload counts double. */
#define HTTP_COST_CHAINS	16
/* At most one accept failure logged per this many ms. */
#define HTTP_ACCEPT_LOG_MS	10000
/* How long a closing connection keeps reading (and dropping) input. */
#define HTTP_LINGER_MS		1000
/* Headers a module may add to one response. */
#define HTTP_MAX_EXTRA		(16 * 1024)
/*
 * Under AddressSanitizer a finished request is freed, not kept as the
 * connection's spare, so that a module using a request after answering
 * it is caught as a use-after-free instead of reading a recycled one.
 */
#ifdef __SANITIZE_ADDRESS__
#define HTTP_NO_SPARE		1
#else
#define HTTP_NO_SPARE		0
#endif
/* Body bytes reserved up front from Content-Length, at most. */
#define HTTP_BODY_PREALLOC	(64 * 1024)
/*
 * What a connection's spare request keeps for the next one: header
 * slots, and string buffers up to these sizes.  Bigger ones are freed,
 * so an idle keep-alive connection holds a few KiB at most.
 */
#define HTTP_KEEP_HEADERS	16
#define HTTP_KEEP_STR		256
#define HTTP_KEEP_BODY		4096

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

static struct core_http_config	 cfg;

/*
 * salesd_http_request_duration_seconds, one series per route pattern
 * (never the raw path: the label set stays bounded), method and status
 * class.  Unmatched requests share the route "other".
 */
struct http_series {
	char			 route[96];
	const char		*method;	/* static */
	int			 cls;
	struct core_hist	 h;
};

static struct http_series	*series;
static size_t			 nseries;
static struct evconnlistener	*listener;
static struct event		*accept_retry;
static LIST_HEAD(, http_conn)	 conns = LIST_HEAD_INITIALIZER(conns);
static size_t			 nconns;
static int			 shutting_down;
static int			 bound_port;
static uint64_t			 requests_total;
static uint64_t			 responses_by_class[6];
static int64_t			 accept_logged;	/* when, in core_mono_ms() */
static uint64_t			 accept_failures;	/* not yet logged */
static http_parser_settings	 settings;

static void	conn_process(struct http_conn *);
static void	conn_free(struct http_conn *);
static void	conn_update(struct http_conn *);
static int	conn_account(struct http_conn *);
static void	conn_schedule(struct http_conn *);

/* -- small helpers ------------------------------------------------------ */

static int
hstr_add(struct hstr *s, const char *data, size_t len)
{
	size_t ncap;
	char *np;

	if (s->len + len + 1 > s->cap) {
		ncap = s->cap ? s->cap : 32;
		while (ncap < s->len + len + 1)
			ncap *= 2;
		if ((np = realloc(s->p, ncap)) == NULL)
			return -1;
		s->p = np;
		s->cap = ncap;
	}
	memcpy(s->p + s->len, data, len);
	s->len += len;
	s->p[s->len] = '\0';
	return 0;
}

static void
hstr_free(struct hstr *s)
{
	free(s->p);
	memset(s, 0, sizeof(*s));
}

/* Empties s for reuse; a buffer bigger than keep is freed instead. */
static void
hstr_reset(struct hstr *s, size_t keep)
{
	if (s->cap > keep)
		hstr_free(s);
	else if (s->p != NULL) {
		s->len = 0;
		s->p[0] = '\0';
	}
}

/*
 * A path or query is taken only if its escapes are valid and what they
 * decode to is UTF-8: modules echo parameters into JSON, and may rely on
 * both.
 */
static int
uri_check(const char *s, int plus_space)
{
	size_t len = strlen(s);
	char small[256], *out = small;
	int rc = -1;

	if (len >= sizeof(small) && (out = malloc(len + 1)) == NULL)
		return -1;
	if (core_uri_decode(s, len, out, plus_space) == 0 &&
	    core_utf8_valid((const unsigned char *)out, strlen(out)))
		rc = 0;
	if (out != small)
		free(out);
	return rc;
}

/* Query-string decoding ('+' is a space); s was checked at parse time. */
static char *
query_decode(const char *s, size_t len)
{
	char *out;

	if ((out = malloc(len + 1)) == NULL)
		return NULL;
	if (core_uri_decode(s, len, out, 1) == -1) {
		free(out);
		return NULL;
	}
	return out;
}

static int
token_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-.^_`|~",
	    c) != NULL);
}

static int
field_value_ok(const char *s)
{
	for (; *s; s++)
		if (*s == '\r' || *s == '\n')
			return 0;
	return 1;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT", recomputed once a second. */
static const char *
http_date(void)
{
	static char date[64];
	static time_t last;
	time_t now = time(NULL);
	struct tm tm;

	if (now != last) {
		gmtime_r(&now, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		last = now;
	}
	return date;
}

/* -- requests ----------------------------------------------------------- */

/*
 * A new request, made from the connection's spare when it has one: a
 * keep-alive client then costs no allocation per request for its URL,
 * headers and body.
 */
static struct sales_request *
req_new(struct http_conn *c)
{
	struct sales_request *r;

	if ((r = c->spare) != NULL)
		c->spare = NULL;
	else if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->conn = c;
	r->method = "GET";
	r->keep_alive = 1;
	return r;
}

static void
req_destroy(struct sales_request *r)
{
	size_t i;

	if (r == NULL)
		return;
	hstr_free(&r->url);
	hstr_free(&r->pq);
	for (i = 0; i < r->capheaders; i++) {
		hstr_free(&r->headers[i].name);
		hstr_free(&r->headers[i].value);
	}
	free(r->headers);
	hstr_free(&r->body);
	core_route_match_free(&r->match);
	for (i = 0; i < r->nqparams; i++) {
		free(r->qparams[i].name);
		free(r->qparams[i].value);
	}
	free(r->qparams);
	hstr_free(&r->extra);
	if (r->resp)
		evbuffer_free(r->resp);
	free(r);
}

/*
 * Done with r: it becomes its connection's spare, emptied but with its
 * (small) buffers kept, or is freed if the connection is gone or has a
 * spare already.  Nothing of the old request survives into the next:
 * every field is reset as calloc would leave it, only buffers stay.
 */
static void
req_free(struct sales_request *r)
{
	struct http_conn *c;
	struct sales_request keep;
	size_t i, nh;

	if (r == NULL)
		return;
	if ((c = r->conn) == NULL || c->spare != NULL || HTTP_NO_SPARE) {
		req_destroy(r);
		return;
	}
	core_route_match_free(&r->match);
	for (i = 0; i < r->nqparams; i++) {
		free(r->qparams[i].name);
		free(r->qparams[i].value);
	}
	free(r->qparams);
	if (r->resp)
		evbuffer_free(r->resp);
	nh = r->capheaders;
	if (nh > HTTP_KEEP_HEADERS) {
		for (i = 0; i < nh; i++) {
			hstr_free(&r->headers[i].name);
			hstr_free(&r->headers[i].value);
		}
		free(r->headers);
		r->headers = NULL;
		nh = 0;
	}
	for (i = 0; i < nh; i++) {
		hstr_reset(&r->headers[i].name, HTTP_KEEP_STR);
		hstr_reset(&r->headers[i].value, HTTP_KEEP_STR);
	}
	keep.url = r->url;
	keep.pq = r->pq;
	keep.body = r->body;
	keep.extra = r->extra;
	keep.headers = r->headers;
	memset(r, 0, sizeof(*r));
	r->url = keep.url;
	r->pq = keep.pq;
	r->body = keep.body;
	r->extra = keep.extra;
	r->headers = keep.headers;
	r->capheaders = nh;
	hstr_reset(&r->url, HTTP_KEEP_STR);
	hstr_reset(&r->pq, HTTP_KEEP_STR);
	hstr_reset(&r->body, HTTP_KEEP_BODY);
	hstr_reset(&r->extra, HTTP_KEEP_STR);
	c->spare = r;
}

/* -- bytes held ---------------------------------------------------------- */

/* The memory libevent allocates to hold len bytes in one chain. */
static size_t
chain_cost(size_t len)
{
	size_t a;

	for (a = HTTP_CHAIN_MIN; a < len + HTTP_CHAIN_HDR; )
		a <<= 1;
	return a;
}

/* An estimate of the memory behind an evbuffer's payload. */
static size_t
evbuf_cost(struct evbuffer *b)
{
	struct evbuffer_iovec v[HTTP_COST_CHAINS];
	size_t len, seen = 0, cost = HTTP_EVBUF_COST;
	int i, n;

	if (b == NULL)
		return 0;
	if ((len = evbuffer_get_length(b)) == 0)
		return cost;
	n = evbuffer_peek(b, -1, NULL, v, HTTP_COST_CHAINS);
	for (i = 0; i < n && i < HTTP_COST_CHAINS; i++) {
		cost += chain_cost(v[i].iov_len);
		seen += v[i].iov_len;
	}
	if (n > HTTP_COST_CHAINS)
		cost += 2 * (len - seen) + (size_t)(n - HTTP_COST_CHAINS) *
		    HTTP_CHAIN_MIN;
	return cost;
}

/* What a request's own buffers hold (its answer is counted apart). */
static size_t
req_cost(struct sales_request *r)
{
	size_t i, cost;

	cost = sizeof(*r) + r->url.cap + r->pq.cap + r->body.cap +
	    r->extra.cap + r->capheaders * sizeof(*r->headers);
	for (i = 0; i < r->capheaders; i++)
		cost += r->headers[i].name.cap + r->headers[i].value.cap;
	return cost;
}

/*
 * Bytes a connection holds for its client's answers: queued requests
 * and their answers, and output not yet sent.  *busy is the number of
 * requests whose handlers have not answered yet.
 */
static size_t
conn_held(struct http_conn *c, size_t *busy)
{
	struct sales_request *r;
	size_t held;

	held = HTTP_CONN_COST + evbuf_cost(bufferevent_get_output(c->bev));
	*busy = 0;
	TAILQ_FOREACH(r, &c->queue, entry) {
		held += r->cost;
		if (!r->answered)
			(*busy)++;
	}
	return held;
}

/*
 * True when a connection may take its next request: a request already
 * begun is always finished, a new one only while what the connection
 * holds, plus a guess for each answer still to come, is under
 * max_conn_output.  The guess is the biggest answer seen on this
 * connection, and at least a quarter of the limit: a client that asks
 * for big answers and never reads has at most four of them in flight.
 * A module that answers at once has none in flight: pipelining of
 * small answers is not slowed.  With nothing queued and nothing to
 * send, there is always room: else nothing would wake the connection.
 */
static int
conn_room(struct http_conn *c)
{
	size_t held, busy;

	if (c->no_more || c->nqueue >= cfg.max_pipeline)
		return 0;
	if (c->rstate != RS_IDLE || (TAILQ_EMPTY(&c->queue) &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0))
		return 1;
	held = conn_held(c, &busy);
	return held + busy * c->answer_est < cfg.max_conn_output;
}

/*
 * Tells the server-wide budget what c holds, unread input and the
 * request being read included.  -1 when that cut c: it is closing.
 */
static int
conn_account(struct http_conn *c)
{
	size_t held, busy;

	if (c->bev == NULL || c->cut)
		return -1;
	held = conn_held(c, &busy) +
	    evbuf_cost(bufferevent_get_input(c->bev));
	if (c->cur != NULL)
		held += req_cost(c->cur);
	return core_outmem_set(&c->om, held);
}

/*
 * The budget cut c, from inside some connection's core_outmem_set():
 * what it holds for the client goes now, the close comes from the loop.
 */
static void
conn_cut(struct core_outmem *e)
{
	struct http_conn *c;
	struct sales_request *r;
	struct evbuffer *out;

	c = (struct http_conn *)(void *)((char *)e -
	    offsetof(struct http_conn, om));
	c->cut = 1;
	c->no_more = 1;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	out = bufferevent_get_output(c->bev);
	evbuffer_drain(out, evbuffer_get_length(out));
	TAILQ_FOREACH(r, &c->queue, entry)
		if (r->resp != NULL) {
			evbuffer_free(r->resp);
			r->resp = NULL;
			r->cost = req_cost(r);
		}
	conn_schedule(c);
}

/* True when a header named name lists token (comma-separated, any case). */
static int
req_has_token(struct sales_request *r, const char *name, const char *token)
{
	const char *p, *e;
	size_t i, tlen = strlen(token), n;

	for (i = 0; i < r->nheaders; i++) {
		if (strcasecmp(r->headers[i].name.p, name) != 0 ||
		    r->headers[i].value.p == NULL)
			continue;
		for (p = r->headers[i].value.p; *p; p = *e ? e + 1 : e) {
			while (*p == ' ' || *p == '\t')
				p++;
			if ((e = strchr(p, ',')) == NULL)
				e = p + strlen(p);
			n = (size_t)(e - p);
			while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
				n--;
			if (n == tlen && strncasecmp(p, token, n) == 0)
				return 1;
		}
	}
	return 0;
}

/* -- the module-facing services ------------------------------------------ */

const char *
core_http_method(struct sales_request *req)
{
	return req->method;
}

const char *
core_http_path(struct sales_request *req)
{
	return req->path ? req->path : "/";
}

const char *
core_http_param(struct sales_request *req, const char *name)
{
	int i;

	for (i = 0; i < req->match.nparams; i++)
		if (strcmp(req->match.names[i], name) == 0)
			return req->match.values[i];
	return NULL;
}

/* Splits the query once, on first use; a repeated name: the first wins. */
static int
req_parse_query(struct sales_request *r)
{
	const char *p, *amp, *eq;
	struct qparam *np;
	size_t n = 1, len;

	r->qparsed = 1;
	if (r->query == NULL || r->query[0] == '\0')
		return 0;
	for (p = r->query; *p; p++)
		if (*p == '&')
			n++;
	if ((r->qparams = calloc(n, sizeof(*r->qparams))) == NULL)
		return -1;
	for (p = r->query; ; p = amp + 1) {
		if ((amp = strchr(p, '&')) == NULL)
			amp = p + strlen(p);
		len = (size_t)(amp - p);
		if (len > 0) {
			np = &r->qparams[r->nqparams];
			eq = memchr(p, '=', len);
			np->name = query_decode(p, eq ? (size_t)(eq - p) : len);
			np->value = eq ? query_decode(eq + 1,
			    (size_t)(amp - eq - 1)) : strdup("");
			if (np->name == NULL || np->value == NULL) {
				free(np->name);
				free(np->value);
				return -1;
			}
			r->nqparams++;
		}
		if (*amp == '\0')
			break;
	}
	return 0;
}

const char *
core_http_query(struct sales_request *req, const char *name)
{
	size_t i;

	if (!req->qparsed && req_parse_query(req) == -1)
		log_error("query of \"%s\": out of memory", req->path);
	for (i = 0; i < req->nqparams; i++)
		if (strcmp(req->qparams[i].name, name) == 0)
			return req->qparams[i].value;
	return NULL;
}

const char *
core_http_header(struct sales_request *req, const char *name)
{
	size_t i;

	for (i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name.p, name) == 0)
			return req->headers[i].value.p ?
			    req->headers[i].value.p : "";
	return NULL;
}

const char *
core_http_body(struct sales_request *req, size_t *len)
{
	if (len)
		*len = req->body.len;
	return req->body.p ? req->body.p : "";
}

/* Appends a response header the core itself chose. */
static int
req_add_header(struct sales_request *req, const char *name,
    const char *value)
{
	if (req->extra.len + strlen(name) + strlen(value) + 4 > HTTP_MAX_EXTRA)
		return -1;
	if (hstr_add(&req->extra, name, strlen(name)) == -1 ||
	    hstr_add(&req->extra, ": ", 2) == -1 ||
	    hstr_add(&req->extra, value, strlen(value)) == -1 ||
	    hstr_add(&req->extra, "\r\n", 2) == -1)
		return -1;
	return 0;
}

int
core_http_add_header(struct sales_request *req, const char *name,
    const char *value)
{
	/* These the core writes itself; a second copy would break framing. */
	static const char *reserved[] = { "content-length", "content-type",
	    "transfer-encoding", "connection", "server", "date", "upgrade" };
	size_t i;
	const char *p;

	if (req->answered || name == NULL || value == NULL || *name == '\0')
		goto bad;
	for (p = name; *p; p++)
		if (!token_char((unsigned char)*p))
			goto bad;
	if (!field_value_ok(value))
		goto bad;
	for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strcasecmp(name, reserved[i]) == 0)
			goto bad;
	if (req_add_header(req, name, value) == -1)
		goto bad;
	return 0;
bad:
	log_warn("http_add_header \"%s\": refused (invalid, reserved or too "
	    "long)", name ? name : "(null)");
	return -1;
}

/* Moves every answered response at the head of the queue to the output. */
static void
conn_flush(struct http_conn *c)
{
	struct sales_request *r;
	struct evbuffer *out = bufferevent_get_output(c->bev);

	while ((r = TAILQ_FIRST(&c->queue)) != NULL && r->answered) {
		if (r->resp)
			evbuffer_add_buffer(out, r->resp);
		TAILQ_REMOVE(&c->queue, r, entry);
		c->nqueue--;
		req_free(r);
	}
}

/* Runs conn_process() from the loop, outside whatever module code calls us. */
static void
conn_schedule(struct http_conn *c)
{
	event_active(c->process, EV_TIMEOUT, 1);
}

/* Header building without printf: this runs for every response. */
#define PUT_LIT(p, lit)	put_str((p), (lit), sizeof(lit) - 1)

static char *
put_str(char *p, const char *s, size_t n)
{
	if (n > 0)
		memcpy(p, s, n);
	return p + n;
}

static char *
put_uint(char *p, uint64_t v)
{
	char tmp[20];
	int n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

/*
 * Writes an answer straight to the socket when nothing else waits to
 * go out: the usual case, and it spares the bufferevent a write event
 * to arm and disarm (two epoll_ctl calls) per response.  Returns the
 * bytes written; the caller queues the rest, and the bufferevent then
 * reports any error the socket has.
 */
static size_t
conn_send_now(struct http_conn *c, const char *hdr, size_t hlen,
    const char *body, size_t blen)
{
	struct iovec iov[2];
	struct msghdr msg;
	ssize_t n;

	iov[0].iov_base = (void *)hdr;
	iov[0].iov_len = hlen;
	iov[1].iov_base = (void *)body;
	iov[1].iov_len = blen;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = iov;
	msg.msg_iovlen = blen > 0 ? 2 : 1;
	do
		n = sendmsg(bufferevent_getfd(c->bev), &msg,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	return n > 0 ? (size_t)n : 0;
}

static int64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* After the answer is decided: its duration series and access log line. */
static void
req_answered(struct sales_request *req, const char *peer, int status,
    size_t bytes)
{
	const char *route;
	struct http_series *sr, *p;
	double ms;
	size_t i;

	ms = req->start_us > 0 ? (double)(mono_us() - req->start_us) / 1000 :
	    0;
	route = req->dispatched && req->match.pattern ? req->match.pattern :
	    "other";
	for (i = 0, sr = NULL; i < nseries && sr == NULL; i++)
		if (series[i].method == req->method &&
		    series[i].cls == status / 100 &&
		    strcmp(series[i].route, route) == 0)
			sr = &series[i];
	if (sr == NULL &&
	    (p = realloc(series, (nseries + 1) * sizeof(*p))) != NULL) {
		series = p;
		sr = &series[nseries++];
		memset(sr, 0, sizeof(*sr));
		snprintf(sr->route, sizeof(sr->route), "%s", route);
		sr->method = req->method;
		sr->cls = status / 100;
	}
	if (sr != NULL)
		core_hist_observe(&sr->h, core_hist_seconds,
		    core_hist_nseconds, ms / 1000);
	if (!cfg.access_log)
		return;
	/* The path only: a query may carry ?token=. */
	core_log_access(req->method, req->path ? req->path : "-", status,
	    bytes, ms, peer);
}

void
core_http_respond(struct sales_request *req, int status,
    const char *content_type, const char *body, size_t len)
{
	struct http_conn *c = req->conn;
	struct evbuffer *out;
	const char *reason, *date;
	char small[1024], *hdr = small, *p;
	size_t need, hlen, sent;
	int close, head, sendbody;

	if (req->answered) {
		log_error("request \"%s %s\" answered twice; the second answer "
		    "is dropped", req->method, core_http_path(req));
		return;
	}
	if (status < 200 || status > 599) {
		log_error("request \"%s %s\": invalid status %d, sent 500",
		    req->method, core_http_path(req), status);
		status = 500;
	}
	if (content_type == NULL || !field_value_ok(content_type))
		content_type = "application/json";
	if (body == NULL)
		len = 0;
	responses_by_class[status / 100]++;
	if (c == NULL) {
		/* The client went away; nobody to tell. */
		req_answered(req, "-", status, 0);
		req_free(req);
		return;
	}
	if (c->cut) {
		/* Closing: the connection frees it. */
		req_answered(req, c->peer, status, 0);
		req->answered = 1;
		return;
	}
	req_answered(req, c->peer, status, len);

	c->idle_since = core_mono_ms();
	head = req == TAILQ_FIRST(&c->queue);
	if (head)
		out = bufferevent_get_output(c->bev);
	else if ((out = req->resp = evbuffer_new()) == NULL) {
		log_error("response to \"%s\": out of memory, connection "
		    "closed", core_http_path(req));
		c->no_more = 1;
		req->answered = 1;
		conn_schedule(c);
		return;
	}
	close = !req->keep_alive || shutting_down ||
	    (c->no_more && req == TAILQ_LAST(&c->queue, req_queue));
	sendbody = !req->is_head && status != 204 && status != 304 && len > 0;
	reason = http_status_str((enum http_status)status);
	need = 256 + strlen(reason) + strlen(content_type) + req->extra.len;
	if (need > sizeof(small) && (hdr = malloc(need)) == NULL) {
		log_error("response to \"%s\": out of memory, connection "
		    "closed", core_http_path(req));
		c->no_more = 1;
		req->answered = 1;
		conn_schedule(c);
		return;
	}
	p = PUT_LIT(hdr, "HTTP/1.1 ");
	p = put_uint(p, (uint64_t)status);
	*p++ = ' ';
	p = put_str(p, reason, strlen(reason));
	p = PUT_LIT(p, "\r\nServer: salesd\r\nDate: ");
	date = http_date();
	p = put_str(p, date, strlen(date));
	p = PUT_LIT(p, "\r\n");
	if (status != 204 && status != 304) {
		p = PUT_LIT(p, "Content-Type: ");
		p = put_str(p, content_type, strlen(content_type));
		p = PUT_LIT(p, "\r\nContent-Length: ");
		p = put_uint(p, len);
		p = PUT_LIT(p, "\r\n");
	}
	if (close)
		p = PUT_LIT(p, "Connection: close\r\n");
	else if (req->http10)
		p = PUT_LIT(p, "Connection: keep-alive\r\n");
	p = put_str(p, req->extra.p, req->extra.len);
	p = PUT_LIT(p, "\r\n");
	hlen = (size_t)(p - hdr);
	if (chain_cost(hlen + len) > c->answer_est)
		c->answer_est = chain_cost(hlen + len);
	sent = 0;
	if (head && evbuffer_get_length(out) == 0)
		sent = conn_send_now(c, hdr, hlen, body, sendbody ? len : 0);
	if (sent < hlen)
		evbuffer_add(out, hdr + sent, hlen - sent);
	if (sendbody && sent < hlen + len) {
		sent = sent > hlen ? sent - hlen : 0;
		evbuffer_add(out, body + sent, len - sent);
	}
	if (hdr != small)
		free(hdr);
	req->answered = 1;
	if (close)
		c->no_more = 1;
	if (head) {
		TAILQ_REMOVE(&c->queue, req, entry);
		c->nqueue--;
		req_free(req);
		conn_flush(c);
	} else
		req->cost += evbuf_cost(req->resp);
	/* Now, not from the loop: a module may answer many at once. */
	(void)conn_account(c);
	conn_schedule(c);
}

void
core_http_error(struct sales_request *req, int status, const char *code,
    const char *message, const char *field)
{
	static const char fallback[] =
	    "{\"error\":{\"code\":\"error\",\"message\":\"out of memory\"}}";
	struct sales_buf b = {0};

	if (code == NULL)
		code = "error";
	if (message == NULL)
		message = code;
	if (core_buf_printf(&b, "{\"error\":{\"code\":") == -1 ||
	    core_buf_json_string(&b, code, strlen(code)) == -1 ||
	    core_buf_printf(&b, ",\"message\":") == -1 ||
	    core_buf_json_string(&b, message, strlen(message)) == -1 ||
	    (field != NULL && (core_buf_printf(&b, ",\"field\":") == -1 ||
	    core_buf_json_string(&b, field, strlen(field)) == -1)) ||
	    core_buf_printf(&b, "}}") == -1) {
		core_buf_free(&b);
		core_http_respond(req, status, NULL, fallback,
		    sizeof(fallback) - 1);
		return;
	}
	core_http_respond(req, status, NULL, b.data, b.len);
	core_buf_free(&b);
}

void
core_http_metrics(struct sales_buf *b)
{
	char labels[192];
	size_t i;

	core_buf_printf(b, "# HELP salesd_http_request_duration_seconds time "
	    "from a request's first byte to its answer, by route pattern, "
	    "method and status class\n"
	    "# TYPE salesd_http_request_duration_seconds histogram\n");
	for (i = 0; i < nseries; i++) {
		snprintf(labels, sizeof(labels), "route=\"%s\",method=\"%s\","
		    "status=\"%dxx\"", series[i].route, series[i].method,
		    series[i].cls);
		core_hist_render(b, "salesd_http_request_duration_seconds",
		    labels, core_hist_seconds, core_hist_nseconds,
		    &series[i].h);
	}
}

uint64_t
core_http_requests_total(void)
{
	return requests_total;
}

uint64_t
core_http_responses(int status_class)
{
	if (status_class < 1 || status_class > 5)
		return 0;
	return responses_by_class[status_class];
}

/* -- connections -------------------------------------------------------- */

/*
 * An error of the connection's own (no complete request to blame);
 * reads stop.  The request being read, if any, is dropped: its Origin,
 * once its head is whole, still decides the CORS headers.
 */
static void
conn_error(struct http_conn *c, int status, const char *code,
    const char *msg)
{
	struct sales_request *r;

	c->no_more = 1;
	if ((r = req_new(c)) == NULL) {
		req_free(c->cur);
		c->cur = NULL;
		conn_schedule(c);
		return;
	}
	if (c->cur != NULL && c->cur->head_done)
		core_guard_cors(r, core_http_header(c->cur, "Origin"));
	req_free(c->cur);
	c->cur = NULL;
	r->keep_alive = 0;
	TAILQ_INSERT_TAIL(&c->queue, r, entry);
	c->nqueue++;
	requests_total++;
	core_http_error(r, status, code, msg, NULL);
}

/* What "/" and "/ws" answer when no module routes them. */
#define WS_ALLOW	"GET, HEAD, OPTIONS"

static int
ws_path(const char *path)
{
	return strcmp(path, "/") == 0 || strcmp(path, "/ws") == 0;
}

/* Checks a request that asked for "Upgrade: websocket"; 0 when valid. */
static int
ws_check(struct http_conn *c, struct sales_request *r)
{
	const char *key, *ver;
	char accept[29];

	if (strcmp(r->method, "GET") != 0 || r->http10) {
		core_http_error(r, 400, "bad_upgrade", "a WebSocket handshake "
		    "is an HTTP/1.1 GET", NULL);
		return -1;
	}
	if (!req_has_token(r, "Connection", "upgrade")) {
		core_http_error(r, 400, "bad_upgrade", "a WebSocket handshake "
		    "needs \"Connection: Upgrade\"", "Connection");
		return -1;
	}
	ver = core_http_header(r, "Sec-WebSocket-Version");
	if (ver == NULL || strcmp(ver, "13") != 0) {
		req_add_header(r, "Sec-WebSocket-Version", "13");
		core_http_error(r, 426, "unsupported_websocket_version",
		    "only WebSocket version 13 is supported",
		    "Sec-WebSocket-Version");
		return -1;
	}
	/* Checked here, where a clear 400 can still be sent. */
	key = core_http_header(r, "Sec-WebSocket-Key");
	if (key == NULL || core_ws_accept_key(key, accept) == -1) {
		core_http_error(r, 400, "bad_upgrade", "\"Sec-WebSocket-Key\" "
		    "must be the base64 of 16 bytes", "Sec-WebSocket-Key");
		return -1;
	}
	if (r->body.len > 0 || (c->parser.flags & F_CHUNKED)) {
		core_http_error(r, 400, "bad_upgrade", "a WebSocket handshake "
		    "has no body", NULL);
		return -1;
	}
	return 0;
}

/*
 * OPTIONS on a path whose methods are allow (OPTIONS among them): 204
 * with Allow, and for a CORS preflight the guard's headers.
 */
static void
conn_options(struct sales_request *r, const char *allow)
{
	core_guard_preflight(r, allow);
	req_add_header(r, "Allow", allow);
	core_http_respond(r, 204, NULL, NULL, 0);
}

/* A complete request: route it (it is already queued). */
static void
conn_dispatch(struct http_conn *c, struct sales_request *r)
{
	enum core_route_result res;
	char msg[160];
	int upgrade;

	upgrade = ws_path(r->path) &&
	    req_has_token(r, "Upgrade", "websocket");
	/* Who may do what (core/guard.c); a refused request is answered. */
	if (core_guard_check(r, r->http10, upgrade) == -1) {
		if (upgrade)
			c->no_more = 1;		/* the rest was for ws.c */
		return;
	}
	if (upgrade) {
		/* Nothing past this head is parsed: the rest is ws.c's. */
		c->no_more = 1;
		if (ws_check(c, r) == 0)
			r->ws = 1;
		return;
	}
	res = core_router_match(r->method, r->path, &r->match);
	switch (res) {
	case CORE_ROUTE_FOUND:
		r->dispatched = 1;
		r->match.handler(r, r->match.arg);
		/* r may be gone now. */
		return;
	case CORE_ROUTE_BAD_METHOD:
		if (strcmp(r->method, "OPTIONS") == 0) {
			conn_options(r, r->match.allow);
			return;
		}
		req_add_header(r, "Allow", r->match.allow);
		snprintf(msg, sizeof(msg), "method \"%s\" not allowed here; "
		    "use %s", r->method, r->match.allow);
		core_http_error(r, 405, "method_not_allowed", msg, NULL);
		return;
	case CORE_ROUTE_NOT_FOUND:
		break;
	}
	if (ws_path(r->path) && (strcmp(r->method, "GET") == 0 ||
	    strcmp(r->method, "HEAD") == 0)) {
		req_add_header(r, "Upgrade", "websocket");
		core_http_error(r, 426, "upgrade_required", "this path speaks "
		    "WebSocket only: send a WebSocket handshake", NULL);
	} else if (ws_path(r->path) && strcmp(r->method, "OPTIONS") == 0) {
		conn_options(r, WS_ALLOW);
	} else if (ws_path(r->path)) {
		req_add_header(r, "Allow", WS_ALLOW);
		core_http_error(r, 405, "method_not_allowed", "this path "
		    "speaks WebSocket only (GET with \"Upgrade: websocket\")",
		    NULL);
	} else
		core_http_error(r, 404, "not_found", "no such resource", NULL);
}

/* The parser stopped on an error: answer it and stop reading. */
static void
conn_parse_error(struct http_conn *c, enum http_errno err)
{
	char msg[160];

	log_debug("http: request refused: %s", c->err_status ? c->err_msg :
	    http_errno_description(err));
	c->rstate = RS_IDLE;		/* conn_error() drops c->cur */
	if (c->err_status) {
		conn_error(c, c->err_status, c->err_code, c->err_msg);
		return;
	}
	if (err == HPE_HEADER_OVERFLOW) {
		conn_error(c, 431, "headers_too_large", "request headers are "
		    "too large");
		return;
	}
	snprintf(msg, sizeof(msg), "malformed request: %s",
	    http_errno_description(err));
	conn_error(c, 400, "bad_request", msg);
}

/*
 * Holds a head back from the parser until the strict check passed it
 * whole: 0 when it did, -1 to wait for more or after refusing it.
 */
static int
conn_check_head(struct http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t len;
	const char *p;
	int rc;

	len = evbuffer_get_length(in);
	if (len > cfg.max_header + 1)
		len = cfg.max_header + 1;
	if ((p = (const char *)evbuffer_pullup(in, (ssize_t)len)) == NULL) {
		conn_error(c, 503, "no_memory", "out of memory");
		return -1;
	}
	rc = core_http_head_check(&c->head, p, len);
	if ((rc == CORE_HTTP_HEAD_MORE && len > cfg.max_header) ||
	    c->head.end > cfg.max_header) {
		c->rstate = RS_IDLE;
		conn_error(c, 431, "headers_too_large", "request headers are "
		    "too large");
		return -1;
	}
	if (rc == CORE_HTTP_HEAD_MORE)
		return -1;
	if (rc == CORE_HTTP_HEAD_BAD) {
		log_debug("http: request refused: %s", c->head.msg);
		c->rstate = RS_IDLE;
		conn_error(c, c->head.status, c->head.status == 501 ?
		    "not_implemented" : "bad_request", c->head.msg);
		return -1;
	}
	c->head_ok = 1;
	return 0;
}

/* Feeds buffered input to the parser, one message at a time. */
static void
conn_parse(struct http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_iovec v;
	struct sales_request *r;
	enum http_errno err;
	size_t n;

	while (conn_room(c) && evbuffer_get_length(in) > 0) {
		if (c->rstate == RS_IDLE) {
			c->rstate = RS_HEAD;
			c->head_start = core_mono_ms();
			c->head_ok = 0;
			core_http_head_init(&c->head);
		}
		if (!c->head_ok && conn_check_head(c) == -1)
			break;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			break;
		c->complete = 0;
		http_parser_pause(&c->parser, 0);
		n = http_parser_execute(&c->parser, &settings, v.iov_base,
		    v.iov_len);
		evbuffer_drain(in, n);
		err = HTTP_PARSER_ERRNO(&c->parser);
		if (c->complete) {
			r = c->cur;
			c->cur = NULL;
			c->rstate = RS_IDLE;
			c->head_ok = 0;
			r->cost = req_cost(r);
			c->idle_since = core_mono_ms();
			c->served = 1;
			TAILQ_INSERT_TAIL(&c->queue, r, entry);
			c->nqueue++;
			requests_total++;
			if (!r->keep_alive)
				c->no_more = 1;
			conn_dispatch(c, r);
			continue;
		}
		if (err != HPE_OK) {
			conn_parse_error(c, err);
			break;
		}
		if (n != v.iov_len) {
			conn_parse_error(c, HPE_UNKNOWN);
			break;
		}
	}
}

/* Hands the connection to core/ws.c; c is freed. */
static void
conn_upgrade(struct http_conn *c, struct sales_request *r)
{
	struct bufferevent *bev = c->bev;
	char *key;

	key = strdup(core_http_header(r, "Sec-WebSocket-Key"));
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	bufferevent_set_timeouts(bev, NULL, NULL);
	c->bev = NULL;
	conn_free(c);
	responses_by_class[1]++;
	if (key == NULL) {
		log_error("websocket upgrade: out of memory");
		bufferevent_free(bev);
		return;
	}
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	/* On failure ws.c has freed bev and said why. */
	(void)core_ws_accept(bev, key);
	free(key);
}

/* Closes after the last answer went out: keep reading a little, then close. */
static void
conn_close(struct http_conn *c)
{
	struct timeval tv = { HTTP_LINGER_MS / 1000,
	    (HTTP_LINGER_MS % 1000) * 1000 };

	/*
	 * Closing with unread input makes the kernel send a reset, which
	 * can destroy the answer (a 413, say) before the client reads it.
	 */
	if (c->eof || shutting_down) {
		conn_free(c);
		return;
	}
	c->lingering = 1;
	shutdown(bufferevent_getfd(c->bev), SHUT_WR);
	evbuffer_drain(bufferevent_get_input(c->bev),
	    evbuffer_get_length(bufferevent_get_input(c->bev)));
	bufferevent_enable(c->bev, EV_READ);
	evtimer_add(c->timer, &tv);
}

static void
conn_process(struct http_conn *c)
{
	struct sales_request *r;

	if (c->cut) {
		conn_free(c);
		return;
	}
	if (c->lingering)
		return;
	if ((r = TAILQ_FIRST(&c->queue)) != NULL && r->ws) {
		if (c->eof)
			conn_free(c);
		else
			conn_upgrade(c, r);
		return;
	}
	conn_parse(c);
	if (c->cut) {
		conn_free(c);
		return;
	}
	/*
	 * Nothing more will come: a partial request is dropped, be it a
	 * body the parser took in part or a head still held back for the
	 * strict check (which would otherwise wait forever, untimed).
	 */
	if (c->eof && !c->no_more && (evbuffer_get_length(
	    bufferevent_get_input(c->bev)) == 0 || (conn_room(c) &&
	    c->rstate == RS_HEAD && !c->head_ok))) {
		evbuffer_drain(bufferevent_get_input(c->bev),
		    evbuffer_get_length(bufferevent_get_input(c->bev)));
		c->no_more = 1;
		req_free(c->cur);
		c->cur = NULL;
		c->rstate = RS_IDLE;
	}
	if ((r = TAILQ_FIRST(&c->queue)) != NULL && r->ws) {
		conn_upgrade(c, r);
		return;
	}
	if (c->no_more && TAILQ_EMPTY(&c->queue) &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		conn_close(c);
		return;
	}
	conn_update(c);
}

/* Read interest and the one timer, from the connection's state. */
static void
conn_update(struct http_conn *c)
{
	struct timeval tv;
	int64_t deadline = -1, now;
	int want;

	if (conn_account(c) == -1)
		return;
	want = !c->eof && conn_room(c);
	if (want)
		bufferevent_enable(c->bev, EV_READ);
	else
		bufferevent_disable(c->bev, EV_READ);
	if (want && c->rstate == RS_HEAD)
		deadline = c->head_start + cfg.header_timeout_ms;
	else if (want && c->rstate == RS_BODY)
		/* A total, as for the head: trickling bytes buys no time. */
		deadline = c->body_start + cfg.body_timeout_ms;
	else if (want && TAILQ_EMPTY(&c->queue) &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		/* A connection that never sent a byte gets the head's time. */
		deadline = c->idle_since + (c->served ||
		    cfg.header_timeout_ms > cfg.idle_timeout_ms ?
		    cfg.idle_timeout_ms : cfg.header_timeout_ms);
	if (deadline < 0) {
		evtimer_del(c->timer);
		return;
	}
	now = core_mono_ms();
	if (deadline < now)
		deadline = now;
	tv.tv_sec = (deadline - now) / 1000;
	tv.tv_usec = ((deadline - now) % 1000) * 1000;
	evtimer_add(c->timer, &tv);
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;

	(void)fd;
	(void)what;
	if (c->lingering || c->cut || c->rstate == RS_IDLE) {
		conn_free(c);
		return;
	}
	if (c->rstate == RS_HEAD)
		conn_error(c, 408, "request_timeout", "the request head did "
		    "not arrive in time");
	else
		conn_error(c, 408, "request_timeout", "the request body did "
		    "not arrive in time");
	c->rstate = RS_IDLE;
	conn_process(c);
}

static void
conn_process_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_process(arg);
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct http_conn *c = arg;

	if (c->lingering) {
		evbuffer_drain(bufferevent_get_input(bev),
		    evbuffer_get_length(bufferevent_get_input(bev)));
		return;
	}
	conn_process(c);
}

/* The output has drained. */
static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_process(arg);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct http_conn *c = arg;

	(void)bev;
	if (c->lingering || (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))) {
		conn_free(c);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* Half-closed: answer what was asked, then close. */
		c->eof = 1;
		conn_process(c);
	}
}

static void
conn_free(struct http_conn *c)
{
	struct sales_request *r;

	while ((r = TAILQ_FIRST(&c->queue)) != NULL) {
		TAILQ_REMOVE(&c->queue, r, entry);
		if (r->dispatched && !r->answered)
			r->conn = NULL;	/* freed when its module answers */
		else
			req_free(r);
	}
	req_free(c->cur);
	/* Last: the frees above may have made one. */
	req_destroy(c->spare);
	if (c->timer)
		event_free(c->timer);
	if (c->process)
		event_free(c->process);
	if (c->bev)
		bufferevent_free(c->bev);
	core_outmem_del(&c->om);
	LIST_REMOVE(c, entry);
	nconns--;
	free(c);
}

/* -- parser callbacks --------------------------------------------------- */

static int
conn_fail(struct http_conn *c, int status, const char *code, const char *msg)
{
	c->err_status = status;
	c->err_code = code;
	c->err_msg = msg;
	return -1;
}

static int
head_grow(struct http_conn *c, size_t len)
{
	c->head_bytes += len;
	if (c->head_bytes > cfg.max_header)
		return conn_fail(c, 431, "headers_too_large", "request headers "
		    "are too large");
	return 0;
}

static int
on_message_begin(http_parser *p)
{
	struct http_conn *c = p->data;

	/* rstate and head_start were set when the head's first byte came. */
	if ((c->cur = req_new(c)) == NULL)
		return conn_fail(c, 503, "no_memory", "out of memory");
	c->cur->start_us = mono_us();
	c->head_bytes = 0;
	return 0;
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;

	if (head_grow(c, len) == -1)
		return -1;
	if (hstr_add(&c->cur->url, at, len) == -1)
		return conn_fail(c, 503, "no_memory", "out of memory");
	return 0;
}

static int
on_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;
	struct sales_request *r = c->cur;
	struct header *nh;
	size_t ncap;

	/* Name, ": " and CRLF count too, so many tiny headers add up. */
	if (head_grow(c, len + (r->in_value || r->nheaders == 0 ? 4 : 0)) == -1)
		return -1;
	if (r->in_value || r->nheaders == 0) {
		if (r->nheaders == r->capheaders) {
			ncap = r->capheaders ? r->capheaders * 2 : 16;
			if ((nh = realloc(r->headers, ncap * sizeof(*nh))) ==
			    NULL)
				return conn_fail(c, 503, "no_memory",
				    "out of memory");
			/* Slots are kept zeroed: a spare reuses their buffers. */
			memset(nh + r->capheaders, 0, (ncap - r->capheaders) *
			    sizeof(*nh));
			r->headers = nh;
			r->capheaders = ncap;
		}
		r->nheaders++;
		r->in_value = 0;
	}
	if (hstr_add(&r->headers[r->nheaders - 1].name, at, len) == -1)
		return conn_fail(c, 503, "no_memory", "out of memory");
	return 0;
}

static int
on_header_value(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;
	struct sales_request *r = c->cur;

	if (head_grow(c, len) == -1)
		return -1;
	if (memchr(at, '\0', len) != NULL)
		return conn_fail(c, 400, "bad_request", "NUL in a header "
		    "value");
	if (r->nheaders == 0)
		return conn_fail(c, 400, "bad_request", "header value without "
		    "a name");
	r->in_value = 1;
	if (hstr_add(&r->headers[r->nheaders - 1].value, at, len) == -1)
		return conn_fail(c, 503, "no_memory", "out of memory");
	return 0;
}

/* Splits the request target into path and query, and checks both. */
static int
req_split_url(struct sales_request *r)
{
	struct http_parser_url u;
	const char *s = r->url.p, *pp = s, *q = NULL, *h;
	size_t plen, qlen = 0, len = r->url.len;

	if (len == 0)
		return -1;
	if (s[0] != '/') {
		/* absolute-form ("http://host/path?q"), from proxies */
		http_parser_url_init(&u);
		if (http_parser_parse_url(s, len, 0, &u) != 0 ||
		    !(u.field_set & (1 << UF_PATH)))
			return -1;
		pp = s + u.field_data[UF_PATH].off;
		plen = u.field_data[UF_PATH].len;
		if (u.field_set & (1 << UF_QUERY)) {
			q = s + u.field_data[UF_QUERY].off;
			qlen = u.field_data[UF_QUERY].len;
		}
	} else {
		if ((h = memchr(s, '#', len)) != NULL)
			len = (size_t)(h - s);
		q = memchr(s, '?', len);
		plen = q ? (size_t)(q - s) : len;
		if (q) {
			q++;
			qlen = len - plen - 1;
		}
	}
	/* Both in one buffer, each cut at its first NUL as strndup would. */
	r->pq.len = 0;
	if (hstr_add(&r->pq, pp, plen) == -1 || hstr_add(&r->pq, "", 1) == -1 ||
	    (q != NULL && hstr_add(&r->pq, q, qlen) == -1))
		return -1;
	r->path = r->pq.p;
	r->query = q != NULL ? r->pq.p + plen + 1 : NULL;
	if (r->path[0] != '/')
		return -1;
	if (uri_check(r->path, 0) == -1 ||
	    (r->query && uri_check(r->query, 1) == -1))
		return -1;
	return 0;
}

static int
on_headers_complete(http_parser *p)
{
	struct http_conn *c = p->data;
	struct sales_request *r = c->cur;
	struct header *h;
	const char *expect;
	size_t i;

	for (i = 0; i < r->nheaders; i++) {
		h = &r->headers[i];
		if (h->value.len == 0 && hstr_add(&h->value, "", 0) == -1)
			return conn_fail(c, 503, "no_memory", "out of memory");
		while (h->value.len > 0 &&
		    (h->value.p[h->value.len - 1] == ' ' ||
		    h->value.p[h->value.len - 1] == '\t'))
			h->value.p[--h->value.len] = '\0';
	}
	r->head_done = 1;
	r->method = http_method_str((enum http_method)p->method);
	r->is_head = p->method == HTTP_HEAD;
	r->http10 = p->http_major == 1 && p->http_minor == 0;
	r->keep_alive = http_should_keep_alive(p) && !shutting_down;
	if (p->http_major != 1)
		return conn_fail(c, 505, "http_version_not_supported",
		    "only HTTP/1.0 and HTTP/1.1 are spoken here");
	if (p->method == HTTP_CONNECT)
		return conn_fail(c, 400, "bad_request", "CONNECT is not "
		    "supported");
	if (req_split_url(r) == -1)
		return conn_fail(c, 400, "bad_request", "invalid request "
		    "target (a path starting with '/', valid percent-escapes "
		    "of UTF-8, no %00)");
	if ((p->flags & F_CONTENTLENGTH) && p->content_length > cfg.max_body)
		return conn_fail(c, 413, "payload_too_large", "request body "
		    "is larger than the limit");
	/*
	 * Size the body buffer from Content-Length, but only up to what
	 * small bodies need: a declared megabyte must not be reserved by a
	 * client that then sends nothing (hstr_add grows it as bytes come).
	 */
	if ((p->flags & F_CONTENTLENGTH) && p->content_length > 0) {
		i = p->content_length + 1 < HTTP_BODY_PREALLOC ?
		    p->content_length + 1 : HTTP_BODY_PREALLOC;
		if (r->body.cap < i) {
			free(r->body.p);
			r->body.p = NULL;
			r->body.cap = 0;
			if ((r->body.p = malloc(i)) != NULL) {
				r->body.cap = i;
				r->body.p[0] = '\0';
			}
		}
	}
	/* Say "go on" only if nothing else is on the wire before it. */
	expect = core_http_header(r, "Expect");
	if (expect && strcasecmp(expect, "100-continue") == 0 &&
	    !r->http10 && c->nqueue == 0 &&
	    ((p->flags & F_CHUNKED) || p->content_length > 0))
		evbuffer_add(bufferevent_get_output(c->bev),
		    "HTTP/1.1 100 Continue\r\n\r\n", 25);
	c->rstate = RS_BODY;
	c->body_start = core_mono_ms();
	return 0;
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;
	struct sales_request *r = c->cur;

	if (r->body.len + len > cfg.max_body)
		return conn_fail(c, 413, "payload_too_large", "request body "
		    "is larger than the limit");
	if (hstr_add(&r->body, at, len) == -1)
		return conn_fail(c, 503, "no_memory", "out of memory");
	return 0;
}

static int
on_message_complete(http_parser *p)
{
	struct http_conn *c = p->data;

	c->complete = 1;
	/* One message per execute: its bytes, and only those, are consumed. */
	http_parser_pause(p, 1);
	return 0;
}

/* -- listener ----------------------------------------------------------- */

static void
http_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int socklen, void *arg)
{
	static const char body[] =
	    "{\"error\":{\"code\":\"too_many_connections\","
	    "\"message\":\"server is at its connection limit, retry later\"}}";
	char busy[512];
	int n;

	(void)l;
	(void)sa;
	(void)socklen;
	(void)arg;
	if (nconns >= (size_t)cfg.max_connections || shutting_down) {
		/* A fresh socket's send buffer is empty: this never blocks. */
		n = snprintf(busy, sizeof(busy), "HTTP/1.1 503 Service "
		    "Unavailable\r\nServer: salesd\r\nContent-Type: "
		    "application/json\r\nContent-Length: %zu\r\nConnection: "
		    "close\r\n\r\n%s", sizeof(body) - 1, body);
		(void)!send(fd, busy, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
		responses_by_class[5]++;
		evutil_closesocket(fd);
		return;
	}
	(void)core_http_adopt(fd);
}

static void
conn_peer(struct http_conn *c, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	const void *a = NULL;

	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET)
			a = &((struct sockaddr_in *)&ss)->sin_addr;
		else if (ss.ss_family == AF_INET6)
			a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
	}
	if (a == NULL || inet_ntop(ss.ss_family, a, c->peer,
	    sizeof(c->peer)) == NULL)
		snprintf(c->peer, sizeof(c->peer), "-");
}

int
core_http_adopt(int fd)
{
	struct http_conn *c = NULL;
	struct timeval wtv;
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto fail;
	conn_peer(c, fd);
	TAILQ_INIT(&c->queue);
	c->answer_est = cfg.max_conn_output / 4;
	core_outmem_add(&c->om, conn_cut);
	LIST_INSERT_HEAD(&conns, c, entry);
	nconns++;
	if ((c->timer = evtimer_new(core_base, conn_timer_cb, c)) == NULL ||
	    (c->process = event_new(core_base, -1, 0, conn_process_cb,
	    c)) == NULL ||
	    (c->bev = bufferevent_socket_new(core_base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL)
		goto fail;
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	c->idle_since = core_mono_ms();
	/* A client that stops reading its answers is dropped after this. */
	wtv.tv_sec = cfg.idle_timeout_ms / 1000;
	wtv.tv_usec = (cfg.idle_timeout_ms % 1000) * 1000;
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb,
	    c);
	bufferevent_set_timeouts(c->bev, NULL, &wtv);
	/* Told when the output falls to half the limit: reading resumes. */
	bufferevent_setwatermark(c->bev, EV_WRITE, cfg.max_conn_output / 2,
	    0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	conn_update(c);
	return 0;
fail:
	log_error("accept: out of memory, connection dropped");
	if (c == NULL || c->bev == NULL)
		evutil_closesocket(fd);
	if (c != NULL)
		conn_free(c);
	return -1;
}

static void
http_accept_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (listener)
		evconnlistener_enable(listener);
}

static void
http_accept_error(struct evconnlistener *l, void *arg)
{
	struct timeval tv = { 0, 100 * 1000 };
	int err = EVUTIL_SOCKET_ERROR();
	int64_t now = core_mono_ms();

	(void)arg;
	/*
	 * Out of descriptors this repeats every backoff, for as long as it
	 * lasts: one line, then one every HTTP_ACCEPT_LOG_MS with a count.
	 */
	accept_failures++;
	if (accept_logged == 0 || now - accept_logged >= HTTP_ACCEPT_LOG_MS) {
		if (accept_failures > 1)
			log_warn("accept failed: %s (%llu times since the last "
			    "report); raise the descriptor limit (ulimit -n) "
			    "or lower max_connections",
			    evutil_socket_error_to_string(err),
			    (unsigned long long)accept_failures);
		else
			log_warn("accept failed: %s; raise the descriptor "
			    "limit (ulimit -n) or lower max_connections",
			    evutil_socket_error_to_string(err));
		accept_logged = now;
		accept_failures = 0;
	}
	/* Back off instead of spinning on the listener. */
	evconnlistener_disable(l);
	if (accept_retry)
		evtimer_add(accept_retry, &tv);
}

void
core_http_configure(const struct core_http_config *c)
{
	const char *host = cfg.host;
	int port = cfg.port;

	cfg = *c;
	if (listener != NULL) {
		/* Bound already: a new address waits for a restart. */
		cfg.host = host;
		cfg.port = port;
	}
	if (cfg.max_pipeline < 1)
		cfg.max_pipeline = 1;
	if (cfg.max_connections < 1)
		cfg.max_connections = 1;
	if (cfg.max_header < 256)
		cfg.max_header = 256;
	if (cfg.max_conn_output < 4096)
		cfg.max_conn_output = 4096;
	/* Our count gives the precise 431; this guards what it cannot see. */
	http_parser_set_max_header_size((uint32_t)(cfg.max_header + 4096 >
	    UINT32_MAX ? UINT32_MAX : cfg.max_header + 4096));
}

int
core_http_start(const struct core_http_config *c)
{
	struct addrinfo hints, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char port[16];
	int rc;

	core_http_configure(c);
	http_parser_settings_init(&settings);
	settings.on_message_begin = on_message_begin;
	settings.on_url = on_url;
	settings.on_header_field = on_header_field;
	settings.on_header_value = on_header_value;
	settings.on_headers_complete = on_headers_complete;
	settings.on_body = on_body;
	settings.on_message_complete = on_message_complete;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", cfg.port);
	if ((rc = getaddrinfo(cfg.host, port, &hints, &ai)) != 0) {
		log_error("[server] host \"%s\": %s", cfg.host ? cfg.host : "",
		    gai_strerror(rc));
		return -1;
	}
	/*
	 * libevent's default backlog is 128: a burst of connects while the
	 * loop is busy overflows it, and the kernel drops or resets them.
	 * 511 is nginx's and Redis's default; somaxconn caps it.
	 */
	listener = evconnlistener_new_bind(core_base, http_accept_cb, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    cfg.listen_backlog > 0 ? cfg.listen_backlog : 511, ai->ai_addr,
	    (int)ai->ai_addrlen);
	if (listener == NULL) {
		log_error("cannot listen on \"%s\" port %d: %s; is another "
		    "server running there?", cfg.host ? cfg.host : "",
		    cfg.port, strerror(errno));
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	evconnlistener_set_error_cb(listener, http_accept_error);
	if ((accept_retry = evtimer_new(core_base, http_accept_retry,
	    NULL)) == NULL) {
		core_http_stop_accepting();
		return -1;
	}
	if (getsockname(evconnlistener_get_fd(listener),
	    (struct sockaddr *)&ss, &sslen) == 0) {
		if (ss.ss_family == AF_INET)
			bound_port = ntohs(((struct sockaddr_in *)&ss)->
			    sin_port);
		else if (ss.ss_family == AF_INET6)
			bound_port = ntohs(((struct sockaddr_in6 *)&ss)->
			    sin6_port);
	}
	return 0;
}

int
core_http_port(void)
{
	return bound_port;
}

void
core_http_stop_accepting(void)
{
	if (listener) {
		evconnlistener_free(listener);
		listener = NULL;
	}
	if (accept_retry) {
		event_free(accept_retry);
		accept_retry = NULL;
	}
}

void
core_http_shutdown(void)
{
	struct http_conn *c, *next;

	shutting_down = 1;
	for (c = LIST_FIRST(&conns); c != NULL; c = next) {
		next = LIST_NEXT(c, entry);
		if (c->lingering || (TAILQ_EMPTY(&c->queue) &&
		    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)) {
			conn_free(c);
			continue;
		}
		/* Busy: finish the queued answers, read nothing more. */
		c->no_more = 1;
		req_free(c->cur);
		c->cur = NULL;
		c->rstate = RS_IDLE;
		conn_update(c);
	}
}

size_t
core_http_connections(void)
{
	return nconns;
}
