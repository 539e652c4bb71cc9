/*
 * guard.h - request policy: who may do what.  Host and Origin checks,
 * the JSON-only rule for request bodies, bearer tokens.
 */
#ifndef CORE_GUARD_H
#define CORE_GUARD_H

#include <sales/module.h>

struct core_config;

/*
 * Reads [server] allowed_hosts and cors_origins and the [auth] tokens;
 * host is the listen address.  -1, after saying why, on a bad value.
 */
int	core_guard_configure(struct core_config *cfg, const char *host);
/*
 * The same in two steps, for a reload: prepare reads and checks into a
 * pending policy and changes nothing in force; commit puts it in force,
 * abort drops it.
 */
int	core_guard_prepare(struct core_config *cfg, const char *host);
void	core_guard_commit(void);
void	core_guard_abort(void);
void	core_guard_free(void);

/*
 * Called by core/http.c for every complete request, before routing and
 * before a WebSocket handshake is checked.  0: go on (with the CORS
 * headers of core_guard_cors() added).  -1: refused, and already
 * answered (4xx, JSON error shape).  http10 for an HTTP/1.0
 * request (which may lack Host), upgrade for a WebSocket handshake.
 */
int	core_guard_check(struct sales_request *req, int http10, int upgrade);

/*
 * Adds the CORS headers of an answer to a request whose Origin was
 * origin (NULL: none): Vary when cors_origins is set, and for a listed
 * origin Access-Control-Allow-Origin and -Expose-Headers.  core_guard_check()
 * does it for every request it passes or refuses; core/http.c for the
 * answers it makes without one (413, 408... once the head was read).
 */
void	core_guard_cors(struct sales_request *req, const char *origin);

/*
 * For an OPTIONS request that no module route takes, before core/http.c
 * answers it 204 with Allow: if it is a CORS preflight of a listed
 * origin, adds the methods (allow, those the path has) and headers it
 * may use.  Preflights of other origins were refused by
 * core_guard_check().
 */
void	core_guard_preflight(struct sales_request *req, const char *allow);

/* Appends salesd_http_refused_total{reason=...} for GET /metrics. */
void	core_guard_metrics(struct sales_buf *b);

#endif /* CORE_GUARD_H */
