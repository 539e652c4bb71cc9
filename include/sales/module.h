/*
 * sales/module.h - the salesd module SDK.  A module includes this header
 * and nothing of the core's.
 *
 * A module is a shared object that exports these symbols and no others
 * (build with -fvisibility=hidden; the macros below export them):
 *
 *	SALES_MODULE_MAGIC("name", "1.0");
 *	SALES_MODULE_INIT(core, self) { ... register ...; return 0; }
 *	SALES_MODULE_FINI() { ... }			(optional)
 *	SALES_MODULE_RELOAD(self, step) { ... }		(optional, ABI 1.3)
 *
 * The loader reads the magic block before any module code runs and
 * refuses a module built for another ABI, naming what differs.  It then
 * checks the block's requirements, applies the module's migrations
 * (<sales/store.h>) and calls init with the core's service table and the
 * module's handle (its name and its sales.ini section [name]), which
 * both live until the process exits.  Routes, WebSocket message types,
 * bus subscriptions and metrics may be registered only inside init, so
 * that a failed init is undone exactly: those and the module's timers
 * are cancelled before the loader goes on.  The init-only services say
 * so below; called later they fail (-1 or NULL) and log one line naming
 * the module and the service.  init returns 0, or -1 after logging why;
 * -1 stops start-up.  fini runs at shutdown, modules in reverse load
 * order, after the last commit and upstream call.
 *
 * Threads: every service is loop-thread only, and every callback a
 * module gets runs on the loop thread.  Never block in one.
 *
 * Each member's contract (ownership, return values) is said once: here,
 * beside the member, or, for the members of one area, in the header
 * that the comment names.  Strings and structs a module passes in are
 * copied by the core before the call returns, unless a member says
 * otherwise.
 *
 * The table is append-only: new services go at the end and bump
 * SALES_ABI_MINOR.  A module built against an older minor version runs on
 * a newer core; to use a newer member at run time, check
 * offsetof(struct sales_core, member) < core->size first.
 */
#ifndef SALES_MODULE_H
#define SALES_MODULE_H

#include <sales/types.h>
#include <sales/http.h>
#include <sales/ws.h>
#include <sales/bus.h>
#include <sales/events.h>
#include <sales/store.h>
#include <sales/httpc.h>
#include <sales/json.h>
#include <sales/upstream.h>

#define SALES_ABI_MAJOR		1
#define SALES_ABI_MINOR		6
#define SALES_MODULE_MAGIC_VALUE 0x53414c45u	/* "SALE" */

#define SALES_PRINTF(f, a)	__attribute__((format(printf, f, a)))

struct sales_metric;

struct sales_core {
	size_t		 size;		/* sizeof(struct sales_core) of the core */
	const char	*version;	/* the server's version; static */

	/* One line to the server log, prefixed with the module's name. */
	void	(*log)(struct sales_module *self, enum sales_log_level level,
		    const char *fmt, ...) SALES_PRINTF(3, 4);

	/*
	 * Configuration: keys of the module's own section.  A key that no
	 * module reads is reported at start-up as unknown.  Typed getters
	 * store def when the key is absent and return 0; a value that does
	 * not parse or is out of [min, max] is logged (section, key, why)
	 * and returns -1.  Returned strings live until shutdown.
	 * config_str returns the value, or def (which may be NULL).
	 */
	const char *(*config_str)(struct sales_module *self, const char *key,
		    const char *def);
	int	(*config_int)(struct sales_module *self, const char *key,
		    long long def, long long min, long long max, long long *out);
	int	(*config_double)(struct sales_module *self, const char *key,
		    double def, double min, double max, double *out);
	int	(*config_bool)(struct sales_module *self, const char *key,
		    int def, int *out);
	/*
	 * Calls cb for every key of the section in file order, and counts
	 * them all as read; key and value live until shutdown.
	 */
	void	(*config_each)(struct sales_module *self,
		    void (*cb)(const char *key, const char *value, void *arg),
		    void *arg);
	/* The module's name, as loaded; lives until shutdown. */
	const char *(*module_name)(struct sales_module *self);

	/*
	 * HTTP server: see <sales/http.h> for patterns and the request's
	 * lifetime.  http_route is init only: 0, or -1 (logged) for a bad
	 * method or pattern, a route another module has, or outside init.
	 * The accessors' strings belong to the request and live until it
	 * is answered.
	 */
	int	(*http_route)(struct sales_module *self, const char *method,
		    const char *pattern, sales_http_handler handler, void *arg);
	const char *(*http_method)(struct sales_request *req);
	const char *(*http_path)(struct sales_request *req);
	/* "{name}" segment of the matched pattern, percent-decoded; NULL
	 * when the pattern has none of that name. */
	const char *(*http_param)(struct sales_request *req, const char *name);
	/* Query parameter, percent-decoded; NULL when absent; the first
	 * when repeated; "" for "?name" without "=". */
	const char *(*http_query)(struct sales_request *req, const char *name);
	/* Request header, case-insensitive; NULL when absent. */
	const char *(*http_header)(struct sales_request *req, const char *name);
	/*
	 * The whole decoded body (Content-Length or chunked), NUL-
	 * terminated; "" when none.  len may be NULL.
	 */
	const char *(*http_body)(struct sales_request *req, size_t *len);
	/*
	 * Adds a response header before the answer (both strings copied).
	 * 0; -1, logged, after the answer, for a name that is not an HTTP
	 * token, a value holding CR or LF, a header the core writes itself
	 * (Content-Length, Content-Type, Transfer-Encoding, Connection,
	 * Server, Date, Upgrade), or past 16 KiB in all.
	 */
	int	(*http_add_header)(struct sales_request *req, const char *name,
		    const char *value);
	/*
	 * Answers the request, once: a second answer is logged and
	 * dropped.  The core copies body (NULL: none).  content_type NULL
	 * means application/json; a status outside 200..599 is logged and
	 * sent as 500.  A 503 gets "Retry-After: 1" unless the module added
	 * its own; a HEAD gets the headers only.
	 */
	void	(*http_respond)(struct sales_request *req, int status,
		    const char *content_type, const char *body, size_t len);
	/*
	 * Answers, as http_respond, with {"error":{"code","message",
	 * "field"}}: field NULL leaves it out, message NULL repeats code.
	 */
	void	(*http_error)(struct sales_request *req, int status,
		    const char *code, const char *message, const char *field);

	/*
	 * WebSocket: see <sales/ws.h>.  ws_on_message is init only: 0, or
	 * -1 (logged) for a type not of 1 to 64 bytes, "subscribe" or
	 * "error" (the core's), a type another module has, or outside
	 * init.  ws_send and ws_broadcast take the type and the JSON text
	 * of "data", both copied (framed and queued at once).  ws_send: 0
	 * when queued, -1 when the client is gone, closing, or cut by this
	 * message as too slow.  ws_broadcast: to every open client
	 * subscribed to type.  ws_clients: open now.
	 */
	int	(*ws_on_message)(struct sales_module *self, const char *type,
		    sales_ws_handler handler, void *arg);
	int	(*ws_send)(uint64_t client, const char *type, const char *data,
		    size_t len);
	void	(*ws_broadcast)(const char *type, const char *data, size_t len);
	size_t	(*ws_clients)(void);

	/* Event bus: see <sales/bus.h> for both members. */
	int	(*bus_subscribe)(struct sales_module *self, const char *topic,
		    sales_bus_handler handler, void *arg);
	void	(*bus_publish)(const char *topic, const void *payload,
		    size_t len);

	/*
	 * Storage: see <sales/store.h>.  store_write and store_query: 0
	 * when queued (the callback then runs exactly once, on the loop,
	 * never inside the call), -1 at once when the queue is full,
	 * storage is closing, there is nothing to run or memory runs out
	 * (the callback never runs).
	 */
	int	(*store_write)(const struct sales_store_stmt *stmts, size_t n,
		    sales_store_write_cb cb, void *arg);
	int	(*store_query)(const char *sql, const struct sales_value *params,
		    size_t nparams, sales_store_query_cb cb, void *arg);
	/*
	 * Init only: blocks.  NULL on error (logged).  Called outside init
	 * it runs nothing and returns NULL, logging one line that names
	 * the calling module.
	 */
	struct sales_store_result *(*store_query_sync)(const char *sql,
		    const struct sales_value *params, size_t nparams);
	/* Frees a store_query_sync result; NULL is ignored. */
	void	(*store_result_free)(struct sales_store_result *res);
	/*
	 * Rows and values of a result; values live as long as it does.
	 * store_value is NULL for a row or column out of range.
	 */
	size_t	(*store_rows)(const struct sales_store_result *res);
	size_t	(*store_cols)(const struct sales_store_result *res);
	const struct sales_value *(*store_value)(
		    const struct sales_store_result *res, size_t row, size_t col);

	/*
	 * Upstream HTTP: see <sales/httpc.h>.  req and all it points to
	 * are copied.  0 when started: cb then runs exactly once, on the
	 * loop, never inside the call.  -1 at once (cb never runs) when
	 * the server is stopping, url is NULL, the method is not GET or
	 * POST or a header line is bad (both logged), or memory runs out.
	 * Prefer httpc_call (ABI 1.4).
	 */
	int	(*httpc_request)(const struct sales_httpc_request *req,
		    sales_httpc_cb cb, void *arg);

	/*
	 * Timers on the loop; ms >= 0.  NULL when ms < 0, cb is NULL or
	 * memory runs out.  A timer belongs to the module that adds it:
	 * cancelled and freed if its init fails, freed after its fini at
	 * shutdown.  A one-shot timer stays allocated after it fires;
	 * timer_del cancels and frees either kind (NULL is ignored).
	 */
	struct sales_timer *(*timer_add)(long ms, int repeat,
		    void (*cb)(void *arg), void *arg);
	void	(*timer_del)(struct sales_timer *timer);
	/* Wall clock, ms since the epoch (UTC). */
	int64_t	(*now_ms)(void);

	/*
	 * JSON reading: see <sales/json.h>.  Tokens are ints, 0 = root.
	 * json_parse copies text and returns the caller's document, freed
	 * with json_free (NULL is ignored); NULL when text is not one
	 * valid JSON value in UTF-8, nests deeper than 64, or memory runs
	 * out.  Other accessors: -1 (json_type: SALES_JSON_INVALID) for a
	 * wrong token or type.
	 */
	struct sales_json *(*json_parse)(const char *text, size_t len);
	void	(*json_free)(struct sales_json *json);
	enum sales_json_type (*json_type)(const struct sales_json *json,
		    int tok);
	/* Value of member key of object obj, or -1. */
	int	(*json_get)(const struct sales_json *json, int obj,
		    const char *key);
	/* Number of elements of an array or members of an object, or -1. */
	int	(*json_len)(const struct sales_json *json, int tok);
	/* i-th element of an array, or -1. */
	int	(*json_at)(const struct sales_json *json, int arr, int i);
	/*
	 * i-th member of an object: returns the key token and sets *value
	 * (value may be NULL) to the value's, or -1.
	 */
	int	(*json_member)(const struct sales_json *json, int obj, int i,
		    int *value);
	/*
	 * Source text of a token (strings without quotes, still escaped),
	 * inside the document: not NUL-terminated, valid until json_free.
	 */
	const char *(*json_raw)(const struct sales_json *json, int tok,
		    size_t *len);
	/* Appends the unescaped UTF-8 of a string token to out; 0 or -1. */
	int	(*json_string)(const struct sales_json *json, int tok,
		    struct sales_buf *out);
	/*
	 * Number and bool tokens into *out: 0 or -1; json_int fails on
	 * fractions, exponents or overflow.
	 */
	int	(*json_int)(const struct sales_json *json, int tok,
		    long long *out);
	int	(*json_double)(const struct sales_json *json, int tok,
		    double *out);
	int	(*json_bool)(const struct sales_json *json, int tok, int *out);

	/*
	 * Buffers: see struct sales_buf in <sales/types.h>.  Every buf_*
	 * that appends returns 0, or -1 only when memory runs out (the
	 * buffer may then hold part of the text: discard it).
	 */
	int	(*buf_append)(struct sales_buf *buf, const void *data,
		    size_t len);
	int	(*buf_printf)(struct sales_buf *buf, const char *fmt, ...)
		    SALES_PRINTF(2, 3);
	/*
	 * Appends len bytes of s as a quoted, escaped JSON string.  s must
	 * be UTF-8: bytes from 0x80 up pass through unchecked.  (Paths,
	 * query values and json_string's output are.)
	 */
	int	(*buf_json_string)(struct sales_buf *buf, const char *s,
		    size_t len);
	/* Frees the data; the buffer is empty ({0}) and reusable. */
	void	(*buf_free)(struct sales_buf *buf);

	/*
	 * Metrics for GET /metrics (Prometheus text).  Registration is
	 * init only; names are 1 to 88 of [a-z0-9_] and get the "salesd_"
	 * prefix; help NULL repeats the name.  The core owns a metric
	 * until shutdown; NULL (logged) for a bad or taken name or outside
	 * init, and metric_add/metric_set ignore NULL.
	 */
	struct sales_metric *(*metric_counter)(struct sales_module *self,
		    const char *name, const char *help);
	struct sales_metric *(*metric_gauge)(struct sales_module *self,
		    const char *name, const char *help);
	void	(*metric_add)(struct sales_metric *metric, double v);
	void	(*metric_set)(struct sales_metric *metric, double v);

	/* ABI 1.1 */
	/* Monotonic clock in ms, for ages and timeouts (never jumps). */
	int64_t	(*mono_ms)(void);
	/* Appends ms as RFC 3339 UTC with milliseconds, unquoted:
	 * 2026-11-25T10:00:00.123Z, the one way times are printed. */
	int	(*buf_time)(struct sales_buf *buf, int64_t ms);

	/* ABI 1.2 */
	/*
	 * An http:// or https:// URL (at most 1024 bytes, no spaces or
	 * control characters), trailing '/' removed from the configured
	 * value (def is used as given), so that modules can append
	 * "/path".  Plain http:// to a host other than this machine is
	 * warned about.  Same return rules as the other getters; *out is
	 * NULL when the key is absent and def is NULL.
	 */
	int	(*config_url)(struct sales_module *self, const char *key,
		    const char *def, const char **out);

	/* ABI 1.4 */
	/*
	 * Init only: declares a message type this module sends to
	 * WebSocket clients (ws_send, ws_broadcast), so that a client may
	 * subscribe to it; a "subscribe" naming a type nobody declared is
	 * refused.  "*": any type (a relay of types it cannot name).  A
	 * module built against an older ABI counts as having declared "*".
	 * 0 (declaring a type twice is harmless), or -1 (logged) for a
	 * type not of 1 to 64 bytes, outside init, or out of memory.
	 */
	int	(*ws_event)(struct sales_module *self, const char *type);

	/*
	 * httpc_request made by self: /metrics shows the call's duration
	 * under the module's name (salesd_upstream_duration_seconds), where
	 * httpc_request's calls are "unknown".  Use it over httpc_request;
	 * returns and ownership as httpc_request.
	 */
	int	(*httpc_call)(struct sales_module *self,
		    const struct sales_httpc_request *req, sales_httpc_cb cb,
		    void *arg);

	/*
	 * Init only: http_route for a GET (HEAD follows) that needs no
	 * [auth] token, for a page that must load before its user can
	 * give one (the dashboard).  Only the requests this route serves
	 * are open: every other route, and a WebSocket handshake on the
	 * same path, still need their token; the Host check, CORS and the
	 * limits apply as ever.  Serve nothing secret from it.  Returns as
	 * http_route.
	 */
	int	(*http_route_open)(struct sales_module *self,
		    const char *pattern, sales_http_handler handler, void *arg);

	/* ABI 1.5 */
	/*
	 * A cached, single-flight, timeout-bounded upstream call: see
	 * <sales/upstream.h> for what each member does and returns.
	 */
	struct sales_upstream *(*upstream_new)(struct sales_module *self,
		    const struct sales_upstream_opts *opts);
	int	(*upstream_configure)(struct sales_upstream *up,
		    const struct sales_upstream_opts *opts);
	int	(*upstream_get)(struct sales_upstream *up,
		    sales_upstream_done_cb done, void *arg);
	void	(*upstream_refresh)(struct sales_upstream *up);
	void	(*upstream_invalidate)(struct sales_upstream *up);
	int	(*upstream_peek)(const struct sales_upstream *up,
		    struct sales_upstream_result *result);
	void	(*upstream_free)(struct sales_upstream *up);

	/*
	 * Appends the exact amount as a JSON number, the one way money is
	 * printed (orders, analytics, REST and WebSocket alike): 51, 25.5,
	 * 0.000001, -0.25; no exponent, no trailing zeros, no rounding.
	 * A pair whose micros are out of range or of the other sign is
	 * read as units * 1e6 + micros.  -1 only when memory runs out.
	 */
	int	(*buf_money)(struct sales_buf *buf,
		    const struct sales_money *m);

	/* ABI 1.6 */
	/*
	 * store_write whose callback also gets the rows each statement
	 * returned (<sales/store.h>, sales_store_rows_cb): 0, or -1 at
	 * once (queue full, shutting down, bad arguments).
	 */
	int	(*store_write_rows)(const struct sales_store_stmt *stmts,
		    size_t n, sales_store_rows_cb cb, void *arg);
	/*
	 * Init only: cb(others, arg) on the loop after commits to the
	 * shared database by this instance or another, once after
	 * start-up and after every reconnect (<sales/store.h>).  0 or -1.
	 */
	int	(*store_watch)(struct sales_module *self,
		    sales_store_watch_cb cb, void *arg);
};

/*
 * The magic block.  Its first fields never move, so that any loader can
 * read them: magic, the block's size, ABI major/minor, the size of the
 * core table the module was built against, build flags; then identity.
 * Fields are only ever appended, and the loader reads one only when the
 * block's size covers it: a module built before one existed gets its
 * default (no requires: it needs nothing).
 */
struct sales_module_magic {
	uint32_t	 magic;
	uint32_t	 size;
	uint16_t	 abi_major;
	uint16_t	 abi_minor;
	uint32_t	 core_size;
	uint32_t	 build_flags;
	const char	*name;		/* must equal the name it is loaded as */
	const char	*version;
	/*
	 * The modules this one needs loaded before it, space separated
	 * ("orders"), or NULL: those whose tables or published interface
	 * it uses.  The loader refuses a start where one is missing or
	 * listed after this module in [modules] load, naming it and the fix.
	 */
	const char	*requirements;
};

/* What must agree between core and module beyond the ABI version. */
#define SALES_BUILD_FLAGS						\
	((uint32_t)sizeof(void *) | ((uint32_t)sizeof(long) << 8) |	\
	 ((uint32_t)sizeof(size_t) << 16))

#define SALES_EXPORT	__attribute__((visibility("default")))

#define SALES_MODULE_MAGIC(name, version)				\
	SALES_MODULE_MAGIC_REQUIRES(name, version, NULL)

/* The same, for a module that needs others: ("analytics", "1.0", "orders"). */
#define SALES_MODULE_MAGIC_REQUIRES(name, version, reqs)		\
	SALES_EXPORT extern const struct sales_module_magic		\
	    sales_module_magic;						\
	const struct sales_module_magic sales_module_magic = {		\
		SALES_MODULE_MAGIC_VALUE,				\
		(uint32_t)sizeof(struct sales_module_magic),		\
		SALES_ABI_MAJOR, SALES_ABI_MINOR,			\
		(uint32_t)sizeof(struct sales_core),			\
		SALES_BUILD_FLAGS, (name), (version), (reqs)		\
	}

#define SALES_MODULE_INIT(core, self)					\
	SALES_EXPORT int sales_module_init(const struct sales_core *core, \
	    struct sales_module *self);					\
	int sales_module_init(const struct sales_core *core,		\
	    struct sales_module *self)

#define SALES_MODULE_FINI()						\
	SALES_EXPORT void sales_module_fini(void);			\
	void sales_module_fini(void)

/*
 * Reload (ABI 1.3).  On SIGHUP the core re-reads sales.ini; a module
 * that exports reload gets its new section in two steps, so that
 * either every part of the server takes the new file or none does:
 *
 *	SALES_RELOAD_CHECK	the config getters now read the new section.
 *				Read and check all of it into a pending
 *				state and change nothing in force (no
 *				timers, no output).  0, or -1 after logging
 *				why: the reload is refused everywhere.
 *	SALES_RELOAD_COMMIT	every module and the core accepted: put the
 *				pending state in force.  Cannot fail.
 *	SALES_RELOAD_ABORT	another part refused: drop the pending
 *				state; the getters read the old section again.
 *
 * Either COMMIT or ABORT follows every CHECK that returned 0; nothing
 * follows a CHECK that returned -1, so CHECK frees its pending state
 * on failure.  Strings from the getters of either file live until shutdown.
 * Routes, subscriptions and metrics stay as init registered them; timers
 * may be changed in COMMIT.  A module without reload keeps the section
 * it read at start-up until a restart.  Loop thread, between events.
 */
enum sales_reload_step {
	SALES_RELOAD_CHECK,
	SALES_RELOAD_COMMIT,
	SALES_RELOAD_ABORT
};

#define SALES_MODULE_RELOAD(self, step)					\
	SALES_EXPORT int sales_module_reload(struct sales_module *self,	\
	    enum sales_reload_step step);				\
	int sales_module_reload(struct sales_module *self,		\
	    enum sales_reload_step step)

#endif /* SALES_MODULE_H */
