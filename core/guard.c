/*
 * guard.c - request policy: who may do what.  core/http.c asks it about
 * every complete request before routing; the checks, in order:
 *
 *   Host	must name this server, so that a page whose name an attacker
 *		points at our address (DNS rebinding) is refused: 421.  IP
 *		literals and "localhost" always pass: no DNS answer makes a
 *		browser send them for a foreign page.  Names must be listed
 *		in [server] allowed_hosts (default: the listen address when
 *		it is a name, this machine's name when listening on all).
 *   Origin	a WebSocket handshake or a CORS preflight from a browser
 *		page must come from the origin the Host names, or one in
 *		[server] cors_origins: 403.  A browser lets any page open a
 *		WebSocket anywhere; no Origin means no browser, and passes.
 *		A listed origin gets CORS headers on every answer, refusals
 *		included (even a 421: its page should see why).
 *   token	with [auth] tokens set, "Authorization: Bearer": 401 when
 *		missing or wrong, 403 when the token may not do this (RFC
 *		6750).  A browser cannot give a WebSocket headers, so the
 *		handshake may carry the token as ?token= instead.  A GET or
 *		HEAD that reaches an open route (core_router_add_open: a
 *		page that asks its user for the token) needs none; the
 *		handshake never counts as one.
 *   media	POST, PUT and PATCH say "Content-Type: application/json"
 *		(UTF-8): text/plain, a form or no type at all is what any
 *		page can make a browser send without asking first: 415.
 *
 * Nothing here knows what a path means beyond the core's own /health,
 * /health/live, /health/ready and /metrics: the methods a preflight is
 * told come from core/router.c, through core/http.c.  Tokens are kept
 * and compared as SHA-256 digests, in constant time, and never logged.
 * Loop thread only.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "buf.h"
#include "config.h"
#include "guard.h"
#include "http.h"
#include "log.h"
#include "router.h"
#include "uri.h"

#define GUARD_MIN_TOKEN	16
#define GUARD_MAX_NAME	256
#define HOST_WHAT	"a host name or address"
#define ORIGIN_WHAT	"an origin (http:// or https://, a host, an " \
			"optional port, no path)"

/*
 * What a page of a listed origin may send, beyond what CORS always lets
 * through, and read of our answers: the headers salesd sends that a
 * client acts on.  No credentials: tokens travel in Authorization, which
 * needs none, and salesd sets no cookies.
 */
#define CORS_ALLOW_HEADERS	"Content-Type, Idempotency-Key, Authorization"
#define CORS_EXPOSE_HEADERS	"Location, Idempotent-Replayed, " \
				"WWW-Authenticate, Allow, Accept-Post, " \
				"Accept-Patch"
/* Seconds a browser may reuse a preflight: a reload shows within. */
#define CORS_MAX_AGE		"600"

enum guard_reason { R_HOST, R_ORIGIN, R_AUTH, R_MEDIA, R_MAX };

/* Whose token: bits in the masks below. */
enum { T_READ, T_WRITE, T_OPS, T_MAX };

struct guard_list {
	char	**v;		/* normalised entries */
	size_t	  n;
	int	  any;		/* "*" */
};

static const char *const	 reason_names[R_MAX] = {
	"host", "origin", "auth", "media_type"
};
/* The policy in force, and one read by core_guard_prepare. */
struct guard_conf {
	struct guard_list	 hosts, origins;
	unsigned char		 digests[T_MAX][SHA256_DIGEST_LENGTH];
	int			 have[T_MAX];
};

static struct guard_conf	 conf, next;
static uint64_t			 refused[R_MAX];

/*
 * Splits an authority ("name", "name:port", "[v6]:port") into a lower-case
 * host without brackets or a final dot, and the port (-1 when absent).
 */
static int
authority_split(const char *s, char *host, size_t hostlen, int *port,
    int *v6)
{
	const char *end, *p;
	size_t i, n;
	long pv = 0;
	int ch;

	*port = -1;
	*v6 = 0;
	host[0] = '\0';
	if (*s == '[') {
		if ((end = strchr(s, ']')) == NULL)
			return -1;
		s++;
		n = (size_t)(end - s);
		p = end + 1;
		*v6 = 1;
	} else {
		n = strcspn(s, ":");
		p = s + n;
	}
	if (*p == ':') {
		if (*++p == '\0' || strlen(p) > 5)
			return -1;
		for (; *p; p++) {
			if (!isdigit((unsigned char)*p))
				return -1;
			pv = pv * 10 + (*p - '0');
		}
		if (pv > 65535)
			return -1;
		*port = (int)pv;
	} else if (*p != '\0')
		return -1;
	if (n > 0 && !*v6 && s[n - 1] == '.')
		n--;
	if (n == 0 || n >= hostlen)
		return -1;
	for (i = 0; i < n; i++) {
		ch = tolower((unsigned char)s[i]);
		if (*v6 ? !isxdigit(ch) && ch != ':' && ch != '.' :
		    !isalnum(ch) && ch != '-' && ch != '.' && ch != '_')
			return -1;
		host[i] = (char)ch;
	}
	host[n] = '\0';
	return 0;
}

/* "http(s)://host[:port]" into host and port (the scheme's by default). */
static int
origin_split(const char *s, char *host, size_t hostlen, int *port,
    int *https)
{
	int v6;

	if (strncasecmp(s, "http://", 7) == 0) {
		*https = 0;
		s += 7;
	} else if (strncasecmp(s, "https://", 8) == 0) {
		*https = 1;
		s += 8;
	} else
		return -1;
	if (authority_split(s, host, hostlen, port, &v6) == -1)
		return -1;
	if (*port == -1)
		*port = *https ? 443 : 80;
	return 0;
}

static int
list_add(struct guard_list *l, const char *s)
{
	char **nv;

	if ((nv = realloc(l->v, (l->n + 1) * sizeof(*nv))) == NULL)
		return -1;
	l->v = nv;
	if ((l->v[l->n] = strdup(s)) == NULL)
		return -1;
	l->n++;
	return 0;
}

static void
list_free(struct guard_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/*
 * Fills l from a list separated by spaces or commas; each entry through
 * norm (which writes the normalised form), "*" sets any.  A bad entry is
 * an error when strict, else skipped (defaults we made up ourselves).
 */
static int
list_parse(struct guard_list *l, const char *key, const char *value,
    int strict, int (*norm)(const char *, char *, size_t), const char *what)
{
	char entry[GUARD_MAX_NAME], out[GUARD_MAX_NAME + 16];
	const char *p = value;
	size_t n;

	while (*(p += strspn(p, " \t,")) != '\0') {
		n = strcspn(p, " \t,");
		if (n >= sizeof(entry)) {
			log_error("[server] %s: an entry is too long", key);
			return -1;
		}
		memcpy(entry, p, n);
		entry[n] = '\0';
		p += n;
		if (strcmp(entry, "*") == 0) {
			l->any = 1;
			continue;
		}
		if (norm(entry, out, sizeof(out)) == -1) {
			if (!strict)
				continue;
			log_error("[server] %s: \"%s\" is not %s", key, entry,
			    what);
			return -1;
		}
		if (list_add(l, out) == -1) {
			log_error("[server] %s: out of memory", key);
			return -1;
		}
	}
	return 0;
}

static int
norm_host(const char *s, char *out, size_t outlen)
{
	int port, v6;

	return authority_split(s, out, outlen, &port, &v6);
}

static int
norm_origin(const char *s, char *out, size_t outlen)
{
	char host[GUARD_MAX_NAME], tmp[GUARD_MAX_NAME];
	size_t n;
	int port, https;

	/* "https://dash.example.com/" is how people copy an origin. */
	n = strlen(s);
	if (n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n + 1);
	if (n > 0 && tmp[n - 1] == '/')
		tmp[n - 1] = '\0';
	if (origin_split(tmp, host, sizeof(host), &port, &https) == -1)
		return -1;
	snprintf(out, outlen, "%s://%s:%d", https ? "https" : "http", host,
	    port);
	return 0;
}

static int
addr_literal(const char *host, int v6)
{
	struct in6_addr a6;
	struct in_addr a4;

	return v6 ? inet_pton(AF_INET6, host, &a6) == 1 :
	    inet_pton(AF_INET, host, &a4) == 1;
}

static int
is_loopback(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (host == NULL)
		return 0;
	if (strcasecmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return 0;
}

static int
is_wildcard(const char *host)
{
	return host == NULL || *host == '\0' || strcmp(host, "*") == 0 ||
	    strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

static int
token_read(struct guard_conf *g, struct core_config *cfg, const char *key,
    int which)
{
	const char *v = core_config_str(cfg, "auth", key, "");
	size_t i, n = strlen(v);

	/* Empty, as an unset ${NAME} leaves it: no token, like no key. */
	if (n == 0)
		return 0;
	if (n < GUARD_MIN_TOKEN) {
		log_error("[auth] %s: too short (%zu characters); use at least "
		    "%d, e.g. from \"openssl rand -hex 32\"", key, n,
		    GUARD_MIN_TOKEN);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if ((unsigned char)v[i] <= ' ' || (unsigned char)v[i] >= 0x7f) {
			log_error("[auth] %s: use printable ASCII without "
			    "spaces (it travels in a header)", key);
			return -1;
		}
	}
	SHA256((const unsigned char *)v, n, g->digests[which]);
	g->have[which] = 1;
	return 0;
}

static void
conf_free(struct guard_conf *g)
{
	list_free(&g->hosts);
	list_free(&g->origins);
	OPENSSL_cleanse(g->digests, sizeof(g->digests));
	memset(g->have, 0, sizeof(g->have));
}

int
core_guard_prepare(struct core_config *cfg, const char *host)
{
	struct guard_conf *g = &next;
	char name[GUARD_MAX_NAME];
	const char *v;

	conf_free(g);
	v = core_config_str(cfg, "server", "allowed_hosts", NULL);
	if (v != NULL) {
		if (list_parse(&g->hosts, "allowed_hosts", v, 1, norm_host,
		    HOST_WHAT) == -1)
			goto fail;
	} else if (!is_wildcard(host)) {
		if (list_parse(&g->hosts, "allowed_hosts", host, 0,
		    norm_host, HOST_WHAT) == -1)
			goto fail;
	} else if (gethostname(name, sizeof(name)) == 0) {
		/* Listening on all: reachable by this machine's name. */
		name[sizeof(name) - 1] = '\0';
		if (list_parse(&g->hosts, "allowed_hosts", name, 0,
		    norm_host, HOST_WHAT) == -1)
			goto fail;
	}
	if (list_parse(&g->origins, "cors_origins", core_config_str(cfg,
	    "server", "cors_origins", ""), 1, norm_origin, ORIGIN_WHAT) == -1)
		goto fail;
	if (token_read(g, cfg, "read_token", T_READ) == -1 ||
	    token_read(g, cfg, "write_token", T_WRITE) == -1 ||
	    token_read(g, cfg, "ops_token", T_OPS) == -1)
		goto fail;
	if (!g->have[T_WRITE] && !is_loopback(host))
		log_warn("WARNING: [server] host \"%s\" is not a loopback "
		    "address and [auth] write_token is not set: anyone who can "
		    "reach this port can write; set write_token (README.md, "
		    "\"Deploying safely\")", host ? host : "");
	return 0;
fail:
	conf_free(g);
	return -1;
}

void
core_guard_commit(void)
{
	conf_free(&conf);
	conf = next;
	memset(&next, 0, sizeof(next));
}

void
core_guard_abort(void)
{
	conf_free(&next);
}

int
core_guard_configure(struct core_config *cfg, const char *host)
{
	if (core_guard_prepare(cfg, host) == -1)
		return -1;
	core_guard_commit();
	return 0;
}

void
core_guard_free(void)
{
	conf_free(&conf);
	conf_free(&next);
}

static int
refuse(struct sales_request *req, enum guard_reason why, int status,
    const char *code, const char *msg, const char *field)
{
	refused[why]++;
	/* The path only: a query may hold a token. */
	log_debug("guard: \"%s %s\" refused: %s", core_http_method(req),
	    core_http_path(req), code);
	core_http_error(req, status, code, msg, field);
	return -1;
}

/* 1 when the Host value names us; name and port get what it says. */
static int
host_allowed(const char *value, char *name, size_t namelen, int *port)
{
	size_t i;
	int v6;

	if (authority_split(value, name, namelen, port, &v6) == -1) {
		name[0] = '\0';
		return conf.hosts.any;
	}
	if (conf.hosts.any || strcmp(name, "localhost") == 0 ||
	    addr_literal(name, v6))
		return 1;
	for (i = 0; i < conf.hosts.n; i++)
		if (strcmp(conf.hosts.v[i], name) == 0)
			return 1;
	return 0;
}

/* 1 when origin is in cors_origins (or that is "*"). */
static int
origin_listed(const char *origin)
{
	char key[GUARD_MAX_NAME + 16];
	size_t i;

	if (origin == NULL)
		return 0;
	if (conf.origins.any)
		return 1;
	if (conf.origins.n == 0 || norm_origin(origin, key, sizeof(key)) == -1)
		return 0;			/* "null", say */
	for (i = 0; i < conf.origins.n; i++)
		if (strcmp(conf.origins.v[i], key) == 0)
			return 1;
	return 0;
}

/*
 * 1 when origin is the one the Host names (the page came from us).  The
 * scheme is not compared: behind a TLS proxy the page is https, we are
 * http.
 */
static int
origin_same(const char *origin, const char *hname, int hport)
{
	char oh[GUARD_MAX_NAME];
	int oport, https;

	if (origin_split(origin, oh, sizeof(oh), &oport, &https) == -1)
		return 0;
	return hname[0] != '\0' && strcmp(oh, hname) == 0 &&
	    oport == (hport != -1 ? hport : https ? 443 : 80);
}

/*
 * The headers every answer to a page of a listed origin carries, so
 * that it can read the answer, errors included.  Vary whenever answers
 * differ by origin, so that no cache hands one origin's to another.
 */
void
core_guard_cors(struct sales_request *req, const char *origin)
{
	if (conf.origins.n > 0)
		core_http_add_header(req, "Vary", "Origin");
	if (!origin_listed(origin))
		return;
	core_http_add_header(req, "Access-Control-Allow-Origin",
	    conf.origins.any ? "*" : origin);
	core_http_add_header(req, "Access-Control-Expose-Headers",
	    CORS_EXPOSE_HEADERS);
}

/* A CORS preflight: what a browser asks before a request it may not send. */
static int
is_preflight(struct sales_request *req)
{
	return strcmp(core_http_method(req), "OPTIONS") == 0 &&
	    core_http_header(req, "Origin") != NULL &&
	    core_http_header(req, "Access-Control-Request-Method") != NULL;
}

void
core_guard_preflight(struct sales_request *req, const char *allow)
{
	const char *pna;

	/* core_guard_check() refused preflights of origins not listed. */
	if (!is_preflight(req) || !origin_listed(core_http_header(req,
	    "Origin")))
		return;
	core_http_add_header(req, "Access-Control-Allow-Methods", allow);
	core_http_add_header(req, "Access-Control-Allow-Headers",
	    CORS_ALLOW_HEADERS);
	core_http_add_header(req, "Access-Control-Max-Age", CORS_MAX_AGE);
	/* Chromium asks before a public page may reach a private address. */
	pna = core_http_header(req, "Access-Control-Request-Private-Network");
	if (pna != NULL && strcasecmp(pna, "true") == 0)
		core_http_add_header(req,
		    "Access-Control-Allow-Private-Network", "true");
}

/* Which configured tokens the request's bearer token is: a bit per T_. */
static int
token_match(struct sales_request *req, int upgrade, int *given)
{
	unsigned char d[SHA256_DIGEST_LENGTH];
	const char *t = core_http_header(req, "Authorization");
	int i, m = 0;

	if (t != NULL && strncasecmp(t, "Bearer ", 7) == 0)
		t += 7 + strspn(t + 7, " ");
	else if (upgrade)
		t = core_http_query(req, "token");
	else
		t = NULL;
	*given = t != NULL && *t != '\0';
	if (!*given)
		return 0;
	SHA256((const unsigned char *)t, strlen(t), d);
	for (i = 0; i < T_MAX; i++)
		if (conf.have[i] && CRYPTO_memcmp(d, conf.digests[i],
		    sizeof(d)) == 0)
			m |= 1 << i;
	OPENSSL_cleanse(d, sizeof(d));
	return m;
}

/*
 * Reads (GET, HEAD, the WebSocket handshake) need the read or the write
 * token when read_token is set; /health and /metrics need the ops or the
 * write token when ops_token is set; anything else but OPTIONS (a CORS
 * preflight never carries credentials) needs the write token.  Open
 * routes need nothing.
 */
/*
 * True for the core's /health and /metrics, compared decoded as the
 * router compares them: "/%68ealth" is /health too.
 */
static int
ops_path(const char *path)
{
	char dec[32];
	size_t n = strlen(path);

	if (n >= sizeof(dec) || core_uri_decode(path, n, dec, 0) == -1)
		return 0;
	return strcmp(dec, "/health") == 0 || strcmp(dec, "/metrics") == 0 ||
	    strcmp(dec, "/health/live") == 0 ||
	    strcmp(dec, "/health/ready") == 0;
}

static int
auth_check(struct sales_request *req, const char *method, int upgrade)
{
	int need = 0, m, given;

	if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
		if (!upgrade && core_router_is_open(method,
		    core_http_path(req)))
			return 0;
		if (ops_path(core_http_path(req))) {
			if (conf.have[T_OPS])
				need = 1 << T_OPS | 1 << T_WRITE;
		} else if (conf.have[T_READ])
			need = 1 << T_READ | 1 << T_WRITE;
	} else if (strcmp(method, "OPTIONS") != 0 && conf.have[T_WRITE])
		need = 1 << T_WRITE;
	if (need == 0)
		return 0;
	m = token_match(req, upgrade, &given);
	if (m & need)
		return 0;
	if (!given) {
		core_http_add_header(req, "WWW-Authenticate",
		    "Bearer realm=\"salesd\"");
		return refuse(req, R_AUTH, 401, "unauthorized", upgrade ?
		    "this needs a token: \"Authorization: Bearer <token>\", "
		    "or ?token=<token> on a WebSocket handshake" :
		    "this needs a token: \"Authorization: Bearer <token>\"",
		    "Authorization");
	}
	if (m == 0) {
		core_http_add_header(req, "WWW-Authenticate",
		    "Bearer realm=\"salesd\", error=\"invalid_token\"");
		return refuse(req, R_AUTH, 401, "invalid_token", "the token "
		    "is not valid", "Authorization");
	}
	core_http_add_header(req, "WWW-Authenticate",
	    "Bearer realm=\"salesd\", error=\"insufficient_scope\"");
	return refuse(req, R_AUTH, 403, "insufficient_scope", "this token "
	    "may not do this", "Authorization");
}

/*
 * "application/json" in any case, with parameters; a charset, if given,
 * must be UTF-8 (RFC 8259 JSON is UTF-8, and the core checks only that).
 */
static int
media_json(const char *ct)
{
	const char *p = ct, *name, *val, *e;
	size_t n, vlen;

	if (p == NULL)
		return 0;
	p += strspn(p, " \t");
	if (strncasecmp(p, "application/json", 16) != 0)
		return 0;
	for (p += 16; ; ) {
		p += strspn(p, " \t");
		if (*p == '\0')
			return 1;
		if (*p++ != ';')
			return 0;
		p += strspn(p, " \t");
		if (*p == '\0' || *p == ';')
			continue;
		name = p;
		n = strcspn(p, "= \t;");
		p += n;
		if (n == 0 || *p++ != '=')
			return 0;
		if (*p == '"') {
			val = ++p;
			if ((e = strchr(p, '"')) == NULL)
				return 0;
			vlen = (size_t)(e - p);
			p = e + 1;
		} else {
			val = p;
			vlen = strcspn(p, " \t;");
			p += vlen;
		}
		if (n == 7 && strncasecmp(name, "charset", 7) == 0 &&
		    !(vlen == 5 && strncasecmp(val, "utf-8", 5) == 0))
			return 0;
	}
}

int
core_guard_check(struct sales_request *req, int http10, int upgrade)
{
	const char *method = core_http_method(req);
	const char *host = core_http_header(req, "Host");
	const char *origin = core_http_header(req, "Origin");
	char hname[GUARD_MAX_NAME];
	int hport = -1, preflight;

	hname[0] = '\0';
	preflight = !upgrade && is_preflight(req);
	/* First: a listed origin's page may read every refusal below. */
	if (!upgrade)
		core_guard_cors(req, origin);
	if (host == NULL && !http10)
		return refuse(req, R_HOST, 400, "bad_request", "an HTTP/1.1 "
		    "request needs a \"Host\" header", "Host");
	if (host != NULL && !host_allowed(host, hname, sizeof(hname), &hport))
		return refuse(req, R_HOST, 421, "host_not_allowed", "this "
		    "server does not answer to that name: the \"Host\" must "
		    "be listed in [server] allowed_hosts", "Host");
	/*
	 * A preflight is refused plainly, not answered without CORS
	 * headers: the page's developer then sees why in the network tab.
	 */
	if (origin != NULL && (upgrade || preflight) &&
	    !origin_listed(origin) && !origin_same(origin, hname, hport))
		return refuse(req, R_ORIGIN, 403, "origin_not_allowed",
		    upgrade ? "a WebSocket from this origin is not allowed: "
		    "it must be listed in [server] cors_origins" :
		    "a cross-origin request from this origin is not allowed: "
		    "it must be listed in [server] cors_origins", "Origin");
	if (auth_check(req, method, upgrade) == -1)
		return -1;
	if ((strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
	    strcmp(method, "PATCH") == 0) &&
	    !media_json(core_http_header(req, "Content-Type"))) {
		if (strcmp(method, "PUT") != 0)
			core_http_add_header(req, method[1] == 'A' ?
			    "Accept-Patch" : "Accept-Post", "application/json");
		return refuse(req, R_MEDIA, 415, "unsupported_media_type",
		    "the body must be JSON, sent with \"Content-Type: "
		    "application/json\" (UTF-8)", "Content-Type");
	}
	return 0;
}

void
core_guard_metrics(struct sales_buf *b)
{
	int i;

	core_buf_printf(b, "# HELP salesd_http_refused_total requests refused "
	    "by policy (Host, Origin, token, media type)\n"
	    "# TYPE salesd_http_refused_total counter\n");
	for (i = 0; i < R_MAX; i++)
		core_buf_printf(b, "salesd_http_refused_total{reason=\"%s\"} "
		    "%llu\n", reason_names[i], (unsigned long long)refused[i]);
}
