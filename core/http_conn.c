/*
 * http_conn.c - the listener and the connections.
 *
 * Connections are accepted with an evconnlistener and owned as
 * bufferevents on core_base; each holds a queue of complete requests,
 * answered in request order by core/http_response.c.  At most
 * max_pipeline requests are queued, and a new request is taken only
 * while the bytes the connection holds for its client (answers queued
 * and unsent, counted as memory allocated, plus a guess for answers
 * still to come) are under max_conn_output; past either, reading
 * pauses.  Every connection also reports what it holds to the
 * server-wide budget of core/outmem.c, which may cut it.
 *
 * Each request head is checked whole by core/http_head.c (strict RFC
 * 9112 framing) before the parser sees a byte of it; the parser's
 * callbacks are in core/http_parse.c.  The parser is paused after
 * every complete message, so that exactly the bytes of one request are
 * consumed from the input.  That is what makes the WebSocket hand-over
 * clean: after a valid upgrade request the bytes that follow stay in
 * the bufferevent for core/ws.c.
 *
 * Limits, each answered with the JSON error shape and then a close:
 * header bytes (431), body size (413), malformed or ambiguously framed
 * requests and bad percent-escapes (400), transfer codings other than
 * chunked (501), a head not complete within header_timeout_ms of its
 * first byte or a body not complete within body_timeout_ms of its head
 * (408).  A keep-alive connection idle for idle_timeout_ms is closed
 * silently.  Past max_connections a new connection gets a short 503
 * and is closed.
 *
 * Not here: what a complete request leads to (core/http.c), how an
 * answer is written (core/http_response.c).
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "core.h"
#include "guard.h"
#include "http_int.h"
#include "log.h"
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

struct core_http_config		 core_http_cfg;
int				 core_http_shutting_down;

static struct evconnlistener	*listener;
static struct event		*accept_retry;
static LIST_HEAD(, http_conn)	 conns = LIST_HEAD_INITIALIZER(conns);
static size_t			 nconns;
static int			 bound_port;
static uint64_t			 requests_total;
static int64_t			 accept_logged;	/* when, in core_mono_ms() */
static uint64_t			 accept_failures;	/* not yet logged */

static void	conn_process(struct http_conn *);
static void	conn_free(struct http_conn *);
static void	conn_update(struct http_conn *);

/* -- bytes held ---------------------------------------------------------- */

/* The memory libevent allocates to hold len bytes in one chain. */
size_t
core_http_chain_cost(size_t len)
{
	size_t a;

	for (a = HTTP_CHAIN_MIN; a < len + HTTP_CHAIN_HDR; )
		a <<= 1;
	return a;
}

/* An estimate of the memory behind an evbuffer's payload. */
size_t
core_http_evbuf_cost(struct evbuffer *b)
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
		cost += core_http_chain_cost(v[i].iov_len);
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

	held = HTTP_CONN_COST +
	    core_http_evbuf_cost(bufferevent_get_output(c->bev));
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

	if (c->no_more || c->nqueue >= core_http_cfg.max_pipeline)
		return 0;
	if (c->rstate != RS_IDLE || (TAILQ_EMPTY(&c->queue) &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0))
		return 1;
	held = conn_held(c, &busy);
	return held + busy * c->answer_est < core_http_cfg.max_conn_output;
}

/*
 * Tells the server-wide budget what c holds, unread input and the
 * request being read included.  -1 when that cut c: it is closing.
 */
int
core_http_conn_account(struct http_conn *c)
{
	size_t held, busy;

	if (c->bev == NULL || c->cut)
		return -1;
	held = conn_held(c, &busy) +
	    core_http_evbuf_cost(bufferevent_get_input(c->bev));
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
	core_http_conn_schedule(c);
}

/* Runs conn_process() from the loop, outside whatever module code calls us. */
void
core_http_conn_schedule(struct http_conn *c)
{
	event_active(c->process, EV_TIMEOUT, 1);
}

uint64_t
core_http_requests_total(void)
{
	return requests_total;
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
	if ((r = core_http_req_new(c)) == NULL) {
		core_http_req_free(c->cur);
		c->cur = NULL;
		core_http_conn_schedule(c);
		return;
	}
	if (c->cur != NULL && c->cur->head_done)
		core_guard_cors(r, core_http_header(c->cur, "Origin"));
	core_http_req_free(c->cur);
	c->cur = NULL;
	r->keep_alive = 0;
	TAILQ_INSERT_TAIL(&c->queue, r, entry);
	c->nqueue++;
	requests_total++;
	core_http_error(r, status, code, msg, NULL);
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
	if (len > core_http_cfg.max_header + 1)
		len = core_http_cfg.max_header + 1;
	if ((p = (const char *)evbuffer_pullup(in, (ssize_t)len)) == NULL) {
		conn_error(c, 503, "no_memory", "out of memory");
		return -1;
	}
	rc = core_http_head_check(&c->head, p, len);
	if ((rc == CORE_HTTP_HEAD_MORE && len > core_http_cfg.max_header) ||
	    c->head.end > core_http_cfg.max_header) {
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
		n = http_parser_execute(&c->parser,
		    &core_http_parser_settings, v.iov_base, v.iov_len);
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
			core_http_dispatch(c, r);
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
	core_http_by_class[1]++;
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
	if (c->eof || core_http_shutting_down) {
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
		core_http_req_free(c->cur);
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

	if (core_http_conn_account(c) == -1)
		return;
	want = !c->eof && conn_room(c);
	if (want)
		bufferevent_enable(c->bev, EV_READ);
	else
		bufferevent_disable(c->bev, EV_READ);
	if (want && c->rstate == RS_HEAD)
		deadline = c->head_start + core_http_cfg.header_timeout_ms;
	else if (want && c->rstate == RS_BODY)
		/* A total, as for the head: trickling bytes buys no time. */
		deadline = c->body_start + core_http_cfg.body_timeout_ms;
	else if (want && TAILQ_EMPTY(&c->queue) &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		/* A connection that never sent a byte gets the head's time. */
		deadline = c->idle_since + (c->served ||
		    core_http_cfg.header_timeout_ms >
		    core_http_cfg.idle_timeout_ms ?
		    core_http_cfg.idle_timeout_ms :
		    core_http_cfg.header_timeout_ms);
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
			core_http_req_free(r);
	}
	core_http_req_free(c->cur);
	/* Last: the frees above may have made one. */
	core_http_req_destroy(c->spare);
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
	if (nconns >= (size_t)core_http_cfg.max_connections ||
	    core_http_shutting_down) {
		/* A fresh socket's send buffer is empty: this never blocks. */
		n = snprintf(busy, sizeof(busy), "HTTP/1.1 503 Service "
		    "Unavailable\r\nServer: salesd\r\nRetry-After: 1\r\n"
		    "Content-Type: application/json\r\nContent-Length: %zu\r\n"
		    "Connection: close\r\n\r\n%s", sizeof(body) - 1, body);
		(void)!send(fd, busy, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
		core_http_by_class[5]++;
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
	c->answer_est = core_http_cfg.max_conn_output / 4;
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
	wtv.tv_sec = core_http_cfg.idle_timeout_ms / 1000;
	wtv.tv_usec = (core_http_cfg.idle_timeout_ms % 1000) * 1000;
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb,
	    c);
	bufferevent_set_timeouts(c->bev, NULL, &wtv);
	/* Told when the output falls to half the limit: reading resumes. */
	bufferevent_setwatermark(c->bev, EV_WRITE,
	    core_http_cfg.max_conn_output / 2, 0);
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
	const char *host = core_http_cfg.host;
	int port = core_http_cfg.port;

	core_http_cfg = *c;
	if (listener != NULL) {
		/* Bound already: a new address waits for a restart. */
		core_http_cfg.host = host;
		core_http_cfg.port = port;
	}
	if (core_http_cfg.max_pipeline < 1)
		core_http_cfg.max_pipeline = 1;
	if (core_http_cfg.max_connections < 1)
		core_http_cfg.max_connections = 1;
	if (core_http_cfg.max_header < 256)
		core_http_cfg.max_header = 256;
	if (core_http_cfg.max_conn_output < 4096)
		core_http_cfg.max_conn_output = 4096;
	/* Our count gives the precise 431; this guards what it cannot see. */
	http_parser_set_max_header_size((uint32_t)(core_http_cfg.max_header +
	    4096 > UINT32_MAX ? UINT32_MAX : core_http_cfg.max_header + 4096));
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

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", core_http_cfg.port);
	if ((rc = getaddrinfo(core_http_cfg.host, port, &hints, &ai)) != 0) {
		log_error("[server] host \"%s\": %s", core_http_cfg.host ?
		    core_http_cfg.host : "", gai_strerror(rc));
		return -1;
	}
	/*
	 * libevent's default backlog is 128: a burst of connects while the
	 * loop is busy overflows it, and the kernel drops or resets them.
	 * 511 is nginx's and Redis's default; somaxconn caps it.
	 */
	listener = evconnlistener_new_bind(core_base, http_accept_cb, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    core_http_cfg.listen_backlog > 0 ? core_http_cfg.listen_backlog :
	    511, ai->ai_addr, (int)ai->ai_addrlen);
	if (listener == NULL) {
		log_error("cannot listen on \"%s\" port %d: %s; is another "
		    "server running there?", core_http_cfg.host ?
		    core_http_cfg.host : "", core_http_cfg.port,
		    strerror(errno));
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

	core_http_shutting_down = 1;
	for (c = LIST_FIRST(&conns); c != NULL; c = next) {
		next = LIST_NEXT(c, entry);
		if (c->lingering || (TAILQ_EMPTY(&c->queue) &&
		    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)) {
			conn_free(c);
			continue;
		}
		/* Busy: finish the queued answers, read nothing more. */
		c->no_more = 1;
		core_http_req_free(c->cur);
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
