/*
 * http_head.c - the strict framing check of a request head (RFC 9112).
 *
 * libhttp-parser in its default (non-strict) build tolerates what
 * proxies disagree on: bare LF line ends, a space before the colon,
 * obs-fold continuation lines.  A request that one hop frames one way
 * and the next another is how requests are smuggled, so every such
 * head is refused here with 400, before the parser sees it, as nginx
 * does:
 *
 *	- every line ends in CRLF, and no CR appears anywhere else;
 *	- request line: token SP target SP "HTTP/" DIGIT "." DIGIT, single
 *	  spaces, no control characters in the target;
 *	- field lines: a token, the colon right after it, a value of
 *	  visible characters, SP, HTAB or obs-text (no NUL, no CTL); no
 *	  line starts with SP or HTAB (obs-fold);
 *	- HTTP/1.1: exactly one Host; HTTP/1.0: at most one;
 *	- at most one Content-Length, 1*DIGIT; never with Transfer-Encoding;
 *	- Transfer-Encoding: only "chunked", once, and only in HTTP/1.1;
 *	  other codings are 501 (not implemented), a list whose last coding
 *	  is not chunked is 400 (the length cannot be known).
 *
 * What a request means (the path, its escapes, header sizes, the
 * version beyond its syntax) is left to core/http.c and the parser.
 */
#include <string.h>
#include <strings.h>

#include "http_head.h"

/* Content-Length digits accepted: more is past any body limit anyway. */
#define HEAD_MAX_CL_DIGITS	18

int
core_http_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' &&
	    strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* field-vchar, SP or HTAB: no NUL, CR, LF, other CTLs or DEL. */
static int
vchar(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int
head_bad(struct core_http_head *h, int status, const char *msg)
{
	h->status = status;
	h->msg = msg;
	return CORE_HTTP_HEAD_BAD;
}

static int
name_is(const char *p, size_t n, const char *name)
{
	return strlen(name) == n && strncasecmp(p, name, n) == 0;
}

/* method SP request-target SP HTTP-version, nothing else. */
static int
check_request_line(struct core_http_head *h, const char *p, size_t n)
{
	size_t i = 0, t;

	while (i < n && core_http_tchar((unsigned char)p[i]))
		i++;
	if (i == 0 || i == n || p[i] != ' ')
		return -1;
	t = ++i;
	while (i < n && (unsigned char)p[i] > 0x20 && p[i] != 0x7f)
		i++;
	if (i == t || i == n || p[i] != ' ')
		return -1;
	i++;
	if (n - i != 8 || memcmp(p + i, "HTTP/", 5) != 0 ||
	    p[i + 5] < '0' || p[i + 5] > '9' || p[i + 6] != '.' ||
	    p[i + 7] < '0' || p[i + 7] > '9')
		return -1;
	h->v1 = p[i + 5] == '1';
	h->v11 = h->v1 && p[i + 7] >= '1';
	return 0;
}

/* A Transfer-Encoding value: a comma list of codings (with parameters). */
static int
check_te(struct core_http_head *h, const char *v, size_t n)
{
	const char *e, *last = NULL;
	size_t lastn = 0, k, ncodings = 0;

	while (n > 0) {
		e = memchr(v, ',', n);
		k = e ? (size_t)(e - v) : n;
		while (k > 0 && (v[k - 1] == ' ' || v[k - 1] == '\t'))
			k--;
		if (k > 0) {
			last = v;
			lastn = k;
			ncodings++;
		}
		if (e == NULL)
			break;
		n -= (size_t)(e - v) + 1;
		v = e + 1;
		while (n > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			n--;
		}
	}
	if (last == NULL)
		return -1;
	h->te_final_chunked = name_is(last, lastn, "chunked");
	h->te_only_chunked = h->te_final_chunked && ncodings == 1;
	return 0;
}

static int
check_field_line(struct core_http_head *h, const char *p, size_t n)
{
	const char *v;
	size_t i = 0, name, vn;

	if (p[0] == ' ' || p[0] == '\t')
		return head_bad(h, 400, "obsolete line folding (a header line "
		    "starting with a space or tab) is not accepted");
	while (i < n && core_http_tchar((unsigned char)p[i]))
		i++;
	if (i == 0 || i == n || p[i] != ':')
		return head_bad(h, 400, "invalid header line (a token, then "
		    "the colon, no space before it)");
	name = i++;
	for (; i < n; i++)
		if (!vchar((unsigned char)p[i]))
			return head_bad(h, 400, "control character in a header "
			    "value");
	/* The value without its surrounding whitespace. */
	v = p + name + 1;
	vn = n - name - 1;
	while (vn > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vn--;
	}
	while (vn > 0 && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
		vn--;
	if (name_is(p, name, "host"))
		h->nhost++;
	else if (name_is(p, name, "content-length")) {
		h->ncl++;
		if (vn == 0 || vn > HEAD_MAX_CL_DIGITS)
			return head_bad(h, 400, "invalid Content-Length");
		for (i = 0; i < vn; i++)
			if (v[i] < '0' || v[i] > '9')
				return head_bad(h, 400, "invalid "
				    "Content-Length");
	} else if (name_is(p, name, "transfer-encoding")) {
		h->nte++;
		if (check_te(h, v, vn) == -1)
			return head_bad(h, 400, "empty Transfer-Encoding");
	}
	return 0;
}

/* The head is complete: the rules that need all of it. */
static int
check_fields(struct core_http_head *h)
{
	if (!h->v1)
		return CORE_HTTP_HEAD_OK;	/* the parser answers 505 */
	if (h->nhost > 1 || (h->v11 && h->nhost == 0))
		return head_bad(h, 400, "an HTTP/1.1 request needs exactly one "
		    "Host header");
	if (h->ncl > 1)
		return head_bad(h, 400, "more than one Content-Length");
	if (h->nte > 0 && h->ncl > 0)
		return head_bad(h, 400, "Content-Length together with "
		    "Transfer-Encoding");
	if (h->nte > 1)
		return head_bad(h, 400, "more than one Transfer-Encoding");
	if (h->nte > 0 && !h->v11)
		return head_bad(h, 400, "Transfer-Encoding in an HTTP/1.0 "
		    "request");
	if (h->nte > 0 && !h->te_final_chunked)
		return head_bad(h, 400, "Transfer-Encoding whose last coding "
		    "is not chunked");
	if (h->nte > 0 && !h->te_only_chunked)
		return head_bad(h, 501, "only the chunked transfer coding is "
		    "implemented");
	return CORE_HTTP_HEAD_OK;
}

void
core_http_head_init(struct core_http_head *h)
{
	memset(h, 0, sizeof(*h));
}

int
core_http_head_check(struct core_http_head *h, const char *p, size_t len)
{
	const char *line, *lf, *cr;
	size_t n, from;

	if (h->status != 0)
		return CORE_HTTP_HEAD_BAD;
	if (h->end != 0)
		return CORE_HTTP_HEAD_OK;
	while (h->pos < len) {
		line = p + h->pos;
		/* A line dribbled a byte at a time is scanned only once. */
		from = h->scan > h->pos ? h->scan : h->pos;
		if ((lf = memchr(p + from, '\n', len - from)) == NULL) {
			/* A CR must be followed by LF: no need to wait. */
			cr = memchr(p + from, '\r', len - from);
			if (cr != NULL && cr != p + len - 1)
				return head_bad(h, 400, "bare CR in the "
				    "request head");
			h->scan = cr != NULL ? len - 1 : len;
			return CORE_HTTP_HEAD_MORE;
		}
		n = (size_t)(lf - line);
		if (n == 0 || line[n - 1] != '\r')
			return head_bad(h, 400, "a line of the request head "
			    "ends in a bare LF (CRLF is required)");
		n--;
		if (p + from < line + n && memchr(p + from, '\r',
		    (size_t)(line + n - (p + from))) != NULL)
			return head_bad(h, 400, "bare CR in the request head");
		h->pos += n + 2;
		if (h->lines == 0 && n == 0)
			continue;	/* empty lines before a request */
		if (h->lines++ == 0) {
			if (check_request_line(h, line, n) == -1)
				return head_bad(h, 400, "invalid request line");
			continue;
		}
		if (n == 0) {
			h->end = h->pos;
			return check_fields(h);
		}
		if (check_field_line(h, line, n) == -1)
			return CORE_HTTP_HEAD_BAD;
	}
	return CORE_HTTP_HEAD_MORE;
}
