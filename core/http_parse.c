/*
 * http_parse.c - libhttp-parser's callbacks: the bytes of one request
 * made into the request being read (c->cur), and refused as soon as a
 * limit is passed.
 *
 * core/http_conn.c feeds the parser only a head that core/http_head.c
 * passed whole (strict RFC 9112 framing).  Here: header bytes counted
 * as they come (431), the body against max_body (413, Content-Length
 * up front, chunked while it arrives), the version (505), CONNECT and
 * a request target that is not a path with valid percent-escapes of
 * UTF-8 (400), and "Expect: 100-continue".  A failing callback leaves
 * its status and message in the connection for core/http_conn.c to
 * answer.
 *
 * The parser is paused after every complete message, so that exactly
 * the bytes of one request are consumed from the input: what makes the
 * WebSocket hand-over clean.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "core.h"
#include "http_int.h"
#include "uri.h"
#include "utf8.h"

/* Body bytes reserved up front from Content-Length, at most. */
#define HTTP_BODY_PREALLOC	(64 * 1024)

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
	if (c->head_bytes > core_http_cfg.max_header)
		return conn_fail(c, 431, "headers_too_large", "request headers "
		    "are too large");
	return 0;
}

static int
on_message_begin(http_parser *p)
{
	struct http_conn *c = p->data;

	/* rstate and head_start were set when the head's first byte came. */
	if ((c->cur = core_http_req_new(c)) == NULL)
		return conn_fail(c, 503, "no_memory", "out of memory");
	c->cur->start_us = core_mono_us();
	c->head_bytes = 0;
	return 0;
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = p->data;

	if (head_grow(c, len) == -1)
		return -1;
	if (core_http_hstr_add(&c->cur->url, at, len) == -1)
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
	if (core_http_hstr_add(&r->headers[r->nheaders - 1].name, at,
	    len) == -1)
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
	if (core_http_hstr_add(&r->headers[r->nheaders - 1].value, at,
	    len) == -1)
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
	if (core_http_hstr_add(&r->pq, pp, plen) == -1 ||
	    core_http_hstr_add(&r->pq, "", 1) == -1 ||
	    (q != NULL && core_http_hstr_add(&r->pq, q, qlen) == -1))
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
		if (h->value.len == 0 &&
		    core_http_hstr_add(&h->value, "", 0) == -1)
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
	r->keep_alive = http_should_keep_alive(p) && !core_http_shutting_down;
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
	if ((p->flags & F_CONTENTLENGTH) &&
	    p->content_length > core_http_cfg.max_body)
		return conn_fail(c, 413, "payload_too_large", "request body "
		    "is larger than the limit");
	/*
	 * Size the body buffer from Content-Length, but only up to what
	 * small bodies need: a declared megabyte must not be reserved by a
	 * client that then sends nothing (core_http_hstr_add grows it as
	 * bytes come).
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

	if (r->body.len + len > core_http_cfg.max_body)
		return conn_fail(c, 413, "payload_too_large", "request body "
		    "is larger than the limit");
	if (core_http_hstr_add(&r->body, at, len) == -1)
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

const http_parser_settings core_http_parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};
