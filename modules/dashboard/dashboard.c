/*
 * dashboard.c - the live dashboard: serves one self-contained page at
 * "/" (without an Upgrade header; the core keeps "/" and "/ws" for
 * WebSocket handshakes) and its script, style and icon under
 * "/dashboard/".  The page itself reads the REST API and the WebSocket
 * like any other client, with the token its user gives it.
 *
 * The files are compiled in (embed.cmake), each with a strong ETag, so
 * a browser revalidates cheaply (304).  The routes are open
 * (http_route_open): the page must load before it can ask for a token,
 * and it holds nothing secret; every figure it shows still needs the
 * read token when the server has one.
 *
 * Not here: any figure, order or business rule.  No configuration.
 */
#include <stddef.h>
#include <string.h>

#include <sales/module.h>

#include "dashboard.h"

SALES_MODULE_MAGIC("dashboard", "1.0");

/*
 * Scripts and styles only from the page's own files (none inline),
 * requests only to this server, the WebSocket included: CSP 3 lets
 * 'self' match ws: and wss: on the same host.  No frames, no forms
 * posting elsewhere, no <base>.
 */
#define DASHBOARD_CSP	"default-src 'none'; script-src 'self'; " \
			"style-src 'self'; img-src 'self'; " \
			"connect-src 'self'; base-uri 'none'; " \
			"form-action 'none'; frame-ancestors 'none'"

static const struct sales_core	*core;

/*
 * 1 when If-None-Match (a list of entity tags, or "*") names etag.  The
 * weak comparison applies (RFC 9110 13.1.2): W/"x" matches "x".
 */
static int
etag_matches(const char *inm, const char *etag)
{
	const char *p = inm, *end;
	size_t elen = strlen(etag);

	while (*p != '\0') {
		p += strspn(p, " \t,");
		if (*p == '*')
			return 1;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (*p != '"')
			return 0;		/* malformed: send the file */
		if ((end = strchr(p + 1, '"')) == NULL)
			return 0;
		if ((size_t)(end + 1 - p) == elen && memcmp(p, etag, elen) == 0)
			return 1;
		p = end + 1;
	}
	return 0;
}

static void
dashboard_serve(struct sales_request *req, void *arg)
{
	const struct dashboard_asset *a = arg;
	const char *inm;

	core->http_add_header(req, "ETag", a->etag);
	/* Revalidate every time: the URLs carry no version. */
	core->http_add_header(req, "Cache-Control", "no-cache");
	core->http_add_header(req, "X-Content-Type-Options", "nosniff");
	core->http_add_header(req, "Content-Security-Policy", DASHBOARD_CSP);
	/* The token lives in the fragment, never sent; say nothing anyway. */
	core->http_add_header(req, "Referrer-Policy", "no-referrer");
	inm = core->http_header(req, "If-None-Match");
	if (inm != NULL && etag_matches(inm, a->etag)) {
		core->http_respond(req, 304, NULL, NULL, 0);
		return;
	}
	core->http_respond(req, 200, a->type, (const char *)a->data, a->len);
}

SALES_MODULE_INIT(c, self)
{
	const struct dashboard_asset *a;

	core = c;
	if (offsetof(struct sales_core, http_route_open) >= c->size) {
		c->log(self, SALES_LOG_ERROR, "this salesd has no open routes "
		    "(http_route_open, ABI 1.4), so the page could not load "
		    "without a token; use a salesd as new as this module, or "
		    "remove \"dashboard\" from [modules] load");
		return -1;
	}
	for (a = dashboard_assets; a->url != NULL; a++)
		if (c->http_route_open(self, a->url, dashboard_serve,
		    (void *)a) == -1)
			return -1;
	return 0;
}
