/*
 * router.h - (method, pattern) -> handler.  Routes are added during
 * start-up only; matching is read-only afterwards.
 */
#ifndef CORE_ROUTER_H
#define CORE_ROUTER_H

#include <sales/http.h>

enum core_route_result {
	CORE_ROUTE_FOUND = 0,
	CORE_ROUTE_NOT_FOUND,
	CORE_ROUTE_BAD_METHOD		/* path known, method not: see allow */
};

struct core_route_match {
	sales_http_handler	 handler;
	void			*arg;
	const char		*pattern;	/* of the route found: a label */
	int			 open;		/* core_router_add_open's */
	int			 nparams;
	/* names point into the route table; values are percent-decoded, owned by the match */
	const char		*names[SALES_HTTP_MAX_PARAMS];
	char			*values[SALES_HTTP_MAX_PARAMS];
	/* "GET, HEAD, POST, OPTIONS" on BAD_METHOD */
	char			 allow[128];
};

/* owner names the module in errors ("core" for the core's own routes).
 * -1 on a malformed pattern or a duplicate (method, pattern), logged. */
int	core_router_add(const char *owner, const char *method,
	    const char *pattern, sales_http_handler handler, void *arg);
/*
 * A GET route (HEAD follows it) that core/guard.c lets through without
 * a token: a page that must load before its user can give one.  The
 * Host check, CORS and the limits still apply.  Same errors as above.
 */
int	core_router_add_open(const char *owner, const char *pattern,
	    sales_http_handler handler, void *arg);
/* 1 when method and path reach an open route (as matching would). */
int	core_router_is_open(const char *method, const char *path);
/* path excludes the query string.  HEAD matches GET routes. */
enum core_route_result core_router_match(const char *method, const char *path,
	    struct core_route_match *m);
void	core_route_match_free(struct core_route_match *m);
void	core_router_free(void);
/* Drops every route of owner: undoes a module's init. */
void	core_router_forget(const char *owner);

#endif /* CORE_ROUTER_H */
