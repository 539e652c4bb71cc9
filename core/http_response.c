/*
 * http_response.c - answers: the status line, the headers (Server,
 * Date, Content-Type and -Length, Connection, and those the guard or a
 * module added), the body; the JSON error shape; the answer counts,
 * duration histograms and access log lines.
 *
 * Answers go out strictly in request order, even when handlers answer
 * later and out of order (pipelining): an answer to the request at the
 * head of its connection's queue goes straight out, written to the
 * socket at once when nothing else waits; an answer to a later one
 * waits in its own evbuffer until everything before it has gone out.
 * The head is built without printf: this runs for every response.
 *
 * Not here: when a connection reads or closes (core/http_conn.c); what
 * a request asked for (core/http_request.c).
 */
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "buf.h"
#include "core.h"
#include "http_head.h"
#include "http_int.h"
#include "log.h"
#include "metrics.h"

/* Headers a module may add to one response. */
#define HTTP_MAX_EXTRA		(16 * 1024)

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
uint64_t			 core_http_by_class[6];

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

/* Appends a response header the core itself chose. */
int
core_http_req_add_header(struct sales_request *req, const char *name,
    const char *value)
{
	if (req->extra.len + strlen(name) + strlen(value) + 4 > HTTP_MAX_EXTRA)
		return -1;
	if (core_http_hstr_add(&req->extra, name, strlen(name)) == -1 ||
	    core_http_hstr_add(&req->extra, ": ", 2) == -1 ||
	    core_http_hstr_add(&req->extra, value, strlen(value)) == -1 ||
	    core_http_hstr_add(&req->extra, "\r\n", 2) == -1)
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
		if (!core_http_tchar((unsigned char)*p))
			goto bad;
	if (!field_value_ok(value))
		goto bad;
	for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strcasecmp(name, reserved[i]) == 0)
			goto bad;
	if (core_http_req_add_header(req, name, value) == -1)
		goto bad;
	return 0;
bad:
	log_warn("http_add_header \"%s\": refused (invalid, reserved or too "
	    "long)", name ? name : "(null)");
	return -1;
}

/* Whether a module added its own Retry-After. */
static int
has_retry_after(const struct sales_request *req)
{
	const char *p = req->extra.p, *end = p + req->extra.len;
	static const char name[] = "retry-after:";

	while (p != NULL && (size_t)(end - p) >= sizeof(name) - 1) {
		if (strncasecmp(p, name, sizeof(name) - 1) == 0)
			return 1;
		if ((p = memchr(p, '\n', (size_t)(end - p))) != NULL)
			p++;
	}
	return 0;
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
		core_http_req_free(r);
	}
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

/* After the answer is decided: its duration series and access log line. */
static void
req_answered(struct sales_request *req, const char *peer, int status,
    size_t bytes)
{
	const char *route;
	struct http_series *sr, *p;
	double ms;
	size_t i;

	ms = req->start_us > 0 ? (double)(core_mono_us() -
	    req->start_us) / 1000 : 0;
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
	if (!core_http_cfg.access_log)
		return;
	/* The path only: a query may carry ?token=. */
	core_log_access(req->method, req->path ? req->path : "-", status,
	    bytes, ms, peer);
}

/* No memory for an answer: the connection ends after what went before. */
static void
respond_oom(struct http_conn *c, struct sales_request *req)
{
	log_error("response to \"%s\": out of memory, connection closed",
	    core_http_path(req));
	c->no_more = 1;
	req->answered = 1;
	core_http_conn_schedule(c);
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
	core_http_by_class[status / 100]++;
	if (c == NULL) {
		/* The client went away; nobody to tell. */
		req_answered(req, "-", status, 0);
		core_http_req_free(req);
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
		respond_oom(c, req);
		return;
	}
	close = !req->keep_alive || core_http_shutting_down ||
	    (c->no_more && req == TAILQ_LAST(&c->queue, req_queue));
	sendbody = !req->is_head && status != 204 && status != 304 && len > 0;
	reason = http_status_str((enum http_status)status);
	need = 280 + strlen(reason) + strlen(content_type) + req->extra.len;
	if (need > sizeof(small) && (hdr = malloc(need)) == NULL) {
		respond_oom(c, req);
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
	/* A 503 is always "try again": say when, unless a module did. */
	if (status == 503 && !has_retry_after(req))
		p = PUT_LIT(p, "Retry-After: 1\r\n");
	p = PUT_LIT(p, "\r\n");
	hlen = (size_t)(p - hdr);
	if (core_http_chain_cost(hlen + len) > c->answer_est)
		c->answer_est = core_http_chain_cost(hlen + len);
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
		core_http_req_free(req);
		conn_flush(c);
	} else
		req->cost += core_http_evbuf_cost(req->resp);
	/* Now, not from the loop: a module may answer many at once. */
	(void)core_http_conn_account(c);
	core_http_conn_schedule(c);
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
core_http_responses(int status_class)
{
	if (status_class < 1 || status_class > 5)
		return 0;
	return core_http_by_class[status_class];
}
