/*
 * router.c - maps (method, path) to a module's handler.
 *
 * A pattern is "/" or a sequence of "/segment" parts, each either a
 * literal or a "{name}" parameter that matches one non-empty path
 * component.  Routes are added at start-up only and kept in a flat
 * array, scanned linearly at match time: there are a few dozen routes at
 * most, so a scan over pre-split segments beats anything cleverer.
 *
 * Matching compares literal segments against the percent-decoded path
 * component, so "/a%62c" matches "/abc" and an encoded slash stays
 * inside one component.  When several patterns match, the most specific
 * one wins: the one whose first differing segment is a literal.  HEAD
 * matches GET routes (an explicit HEAD route is preferred).  A path that
 * matches only routes of other methods is BAD_METHOD, with the methods
 * that would have matched listed in match->allow, and OPTIONS, which
 * core/http.c answers for every path a route has.
 *
 * A route may be open (core_router_add_open): the guard then asks for no
 * token on the requests that match it, and only on those, so an open
 * "/" does not open "/{x}" or the WebSocket handshake on "/".
 *
 * Not here: parsing the request, the query string, answering 404/405
 * (core/http.c does that).
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "router.h"
#include "uri.h"

#define ROUTER_MAX_SEGS	32	/* the specificity mask is 32 bits wide */
#define ROUTER_MAX_METHOD 16

struct route {
	char			*owner;
	char			 method[ROUTER_MAX_METHOD];
	char			*pattern;
	int			 nsegs;
	char			*segs[ROUTER_MAX_SEGS]; /* literal or name */
	uint32_t		 literal;	/* bit 31-i: segs[i] literal */
	int			 nparams;
	sales_http_handler	 handler;
	void			*arg;
	int			 open;
};

static struct route	*routes;
static size_t		 nroutes, caproutes;

static int
valid_method(const char *m)
{
	size_t i;

	for (i = 0; m[i] != '\0'; i++)
		if (!isupper((unsigned char)m[i]))
			return 0;
	return i > 0 && i < ROUTER_MAX_METHOD;
}

/* Characters a literal pattern segment may hold (RFC 3986 pchar, no '%'). */
static int
literal_char(int c)
{
	return isalnum(c) || strchr("-._~!$&'()*+,;=:@", c) != NULL;
}

static void
route_clear(struct route *r)
{
	int i;

	for (i = 0; i < r->nsegs; i++)
		free(r->segs[i]);
	free(r->owner);
	free(r->pattern);
	memset(r, 0, sizeof(*r));
}

/* Splits and checks pattern into r; -1 with *why set when malformed. */
static int
route_parse(struct route *r, const char *pattern, const char **why)
{
	const char *p, *end;
	size_t len, i;
	int j, param;

	if (pattern[0] != '/') {
		*why = "must start with '/'";
		return -1;
	}
	if (strcmp(pattern, "/") == 0)
		return 0;
	p = pattern + 1;
	for (;;) {
		end = strchr(p, '/');
		len = end ? (size_t)(end - p) : strlen(p);
		if (len == 0) {
			*why = "empty segment";
			return -1;
		}
		if (r->nsegs == ROUTER_MAX_SEGS) {
			*why = "too many segments";
			return -1;
		}
		param = p[0] == '{';
		if (param) {
			if (len < 3 || p[len - 1] != '}') {
				*why = "a parameter segment must be \"{name}\"";
				return -1;
			}
			for (i = 1; i < len - 1; i++) {
				if (!isalnum((unsigned char)p[i]) &&
				    p[i] != '_') {
					*why = "parameter names are "
					    "[A-Za-z0-9_]+";
					return -1;
				}
			}
			if (r->nparams == SALES_HTTP_MAX_PARAMS) {
				*why = "too many parameters";
				return -1;
			}
		} else {
			for (i = 0; i < len; i++) {
				if (!literal_char((unsigned char)p[i])) {
					*why = "invalid character in a "
					    "literal segment";
					return -1;
				}
			}
		}
		if (param)
			r->segs[r->nsegs] = strndup(p + 1, len - 2);
		else
			r->segs[r->nsegs] = strndup(p, len);
		if (r->segs[r->nsegs] == NULL) {
			*why = "out of memory";
			return -1;
		}
		if (param) {
			for (j = 0; j < r->nsegs; j++) {
				if (!(r->literal & (1u << (31 - j))) &&
				    strcmp(r->segs[j],
				    r->segs[r->nsegs]) == 0) {
					free(r->segs[r->nsegs]);
					r->segs[r->nsegs] = NULL;
					*why = "duplicate parameter name";
					return -1;
				}
			}
			r->nparams++;
		} else
			r->literal |= 1u << (31 - r->nsegs);
		r->nsegs++;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return 0;
}

/* Same method and same shape: the two could never be told apart. */
static int
route_same(const struct route *a, const struct route *b)
{
	int i;

	if (strcmp(a->method, b->method) != 0 || a->nsegs != b->nsegs ||
	    a->literal != b->literal)
		return 0;
	for (i = 0; i < a->nsegs; i++)
		if ((a->literal & (1u << (31 - i))) &&
		    strcmp(a->segs[i], b->segs[i]) != 0)
			return 0;
	return 1;
}

static int
router_add(const char *owner, const char *method, const char *pattern,
    sales_http_handler handler, void *arg, int open)
{
	struct route r, *nr;
	const char *why = NULL;
	size_t i, ncap;

	memset(&r, 0, sizeof(r));
	if (owner == NULL)
		owner = "core";
	if (method == NULL || pattern == NULL || handler == NULL) {
		log_error("route of \"%s\": method, pattern and handler are "
		    "required", owner);
		return -1;
	}
	if (!valid_method(method)) {
		log_error("route \"%s %s\" of \"%s\": invalid method, use an "
		    "upper-case token such as GET", method, pattern, owner);
		return -1;
	}
	if (route_parse(&r, pattern, &why) == -1) {
		log_error("route \"%s %s\" of \"%s\": malformed pattern: %s",
		    method, pattern, owner, why);
		goto fail;
	}
	strcpy(r.method, method);
	for (i = 0; i < nroutes; i++) {
		if (route_same(&routes[i], &r)) {
			log_error("route \"%s %s\" of \"%s\": already "
			    "registered by \"%s\" as \"%s\"", method, pattern,
			    owner, routes[i].owner, routes[i].pattern);
			goto fail;
		}
	}
	if ((r.owner = strdup(owner)) == NULL ||
	    (r.pattern = strdup(pattern)) == NULL)
		goto nomem;
	if (nroutes == caproutes) {
		ncap = caproutes ? caproutes * 2 : 16;
		if ((nr = realloc(routes, ncap * sizeof(*nr))) == NULL)
			goto nomem;
		routes = nr;
		caproutes = ncap;
	}
	r.handler = handler;
	r.arg = arg;
	r.open = open;
	routes[nroutes++] = r;
	return 0;
nomem:
	log_error("route \"%s %s\" of \"%s\": out of memory", method, pattern,
	    owner);
fail:
	route_clear(&r);
	return -1;
}

int
core_router_add(const char *owner, const char *method, const char *pattern,
    sales_http_handler handler, void *arg)
{
	return router_add(owner, method, pattern, handler, arg, 0);
}

int
core_router_add_open(const char *owner, const char *pattern,
    sales_http_handler handler, void *arg)
{
	return router_add(owner, "GET", pattern, handler, arg, 1);
}

/* Adds method to the comma-separated allow list unless already there. */
static void
allow_add(char *allow, size_t size, const char *method)
{
	size_t len = strlen(allow), mlen = strlen(method);
	const char *p = allow;

	while ((p = strstr(p, method)) != NULL) {
		if ((p == allow || p[-1] == ' ') &&
		    (p[mlen] == ',' || p[mlen] == '\0'))
			return;
		p += mlen;
	}
	if (len + mlen + 3 > size)
		return;
	if (len > 0) {
		memcpy(allow + len, ", ", 2);
		len += 2;
	}
	memcpy(allow + len, method, mlen + 1);
}

enum core_route_result
core_router_match(const char *method, const char *path,
    struct core_route_match *m)
{
	/* Path components, decoded in place into one copy of the path. */
	char *segs[ROUTER_MAX_SEGS], *copy = NULL, *p, *end;
	const struct route *r, *best = NULL, *any = NULL;
	size_t i, len;
	uint32_t bestmask = 0;
	int nsegs = 0, j, exact, bestexact = 0, k;
	enum core_route_result res = CORE_ROUTE_NOT_FOUND;

	memset(m, 0, sizeof(*m));
	if (path == NULL || path[0] != '/' || method == NULL)
		return CORE_ROUTE_NOT_FOUND;
	len = strlen(path);
	if ((copy = malloc(len + 1)) == NULL)
		return CORE_ROUTE_NOT_FOUND;
	if (len > 1) {
		p = (char *)memcpy(copy, path, len + 1) + 1;
		for (;;) {
			if (nsegs == ROUTER_MAX_SEGS)
				goto done;	/* deeper than any pattern */
			end = strchr(p, '/');
			if (end != NULL)
				*end = '\0';
			/* Decoding shrinks, so it can run in place (uri.c allows it). */
			if (core_uri_decode(p, strlen(p), p, 0) == -1)
				goto done;
			segs[nsegs++] = p;
			if (end == NULL)
				break;
			p = end + 1;
		}
	}

	for (i = 0; i < nroutes; i++) {
		r = &routes[i];
		if (r->nsegs != nsegs)
			continue;
		for (j = 0; j < nsegs; j++) {
			if (r->literal & (1u << (31 - j))) {
				if (strcmp(r->segs[j], segs[j]) != 0)
					break;
			} else if (segs[j][0] == '\0')
				break;
		}
		if (j < nsegs)
			continue;
		/* The path is known; does the method fit? */
		any = r;
		allow_add(m->allow, sizeof(m->allow), r->method);
		if (strcmp(r->method, "GET") == 0)
			allow_add(m->allow, sizeof(m->allow), "HEAD");
		exact = strcmp(r->method, method) == 0;
		if (!exact && !(strcmp(method, "HEAD") == 0 &&
		    strcmp(r->method, "GET") == 0))
			continue;
		if (best == NULL || r->literal > bestmask ||
		    (r->literal == bestmask && exact && !bestexact)) {
			best = r;
			bestmask = r->literal;
			bestexact = exact;
		}
	}
	if (best != NULL) {
		m->handler = best->handler;
		m->pattern = best->pattern;
		m->arg = best->arg;
		m->open = best->open;
		for (j = 0, k = 0; j < nsegs; j++) {
			if (best->literal & (1u << (31 - j)))
				continue;
			m->names[k] = best->segs[j];
			if ((m->values[k] = strdup(segs[j])) == NULL) {
				core_route_match_free(m);
				goto done;
			}
			m->nparams = ++k;
		}
		m->allow[0] = '\0';
		res = CORE_ROUTE_FOUND;
	} else if (any != NULL) {
		allow_add(m->allow, sizeof(m->allow), "OPTIONS");
		res = CORE_ROUTE_BAD_METHOD;
	}
done:
	if (res == CORE_ROUTE_NOT_FOUND)
		m->allow[0] = '\0';
	free(copy);
	return res;
}

int
core_router_is_open(const char *method, const char *path)
{
	struct core_route_match m;
	int open;

	open = core_router_match(method, path, &m) == CORE_ROUTE_FOUND &&
	    m.open;
	core_route_match_free(&m);
	return open;
}

void
core_route_match_free(struct core_route_match *m)
{
	int i;

	for (i = 0; i < m->nparams; i++) {
		free(m->values[i]);
		m->values[i] = NULL;
	}
	m->nparams = 0;
}

void
core_router_free(void)
{
	size_t i;

	for (i = 0; i < nroutes; i++)
		route_clear(&routes[i]);
	free(routes);
	routes = NULL;
	nroutes = caproutes = 0;
}

void
core_router_forget(const char *owner)
{
	size_t i, k;

	for (i = k = 0; i < nroutes; i++) {
		if (strcmp(routes[i].owner, owner) == 0)
			route_clear(&routes[i]);
		else
			routes[k++] = routes[i];
	}
	nroutes = k;
}
