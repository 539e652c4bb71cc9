/*
 * sales/testkit.h - runs a module in a unit test, without a server.
 *
 * The kit is a fake core: a struct sales_core whose services work fully
 * in memory and move only when the test says so.  The test loads the
 * module's .so by path, as the loader does (magic block checked, then
 * sales_module_init with the kit's table), then drives it:
 *
 *	kit = sales_kit_new();
 *	sales_kit_config(kit, "hello", "greeting", "hi");
 *	if (sales_kit_load(kit, "./hello.so") == -1) ...
 *	r = sales_kit_request(kit, "GET", "/hello", NULL, NULL, 0);
 *	assert(r->status == 200);
 *	sales_kit_free(kit);		(fini, dlclose, everything freed)
 *
 * Link with libsales_testkit.a: pkg-config --cflags --libs salesd-testkit.
 *
 * What the fake core does with each service:
 *   config	key/value pairs set by sales_kit_config(), parsed and
 *		checked by the server's own code, with its messages; a
 *		key the module did not read is warned about after init.
 *   log	captured (sales_kit_logged()) and echoed to stderr.
 *   http	routes matched by the server's router; sales_kit_request()
 *		calls the handler and the reply records what it answered,
 *		now or later.  Unknown paths 404, other methods 405.
 *   ws		ws_send/ws_broadcast recorded as frames; client messages
 *		sent with sales_kit_ws_message().
 *   bus	bus_publish recorded with a copy of the payload, and
 *		delivered to subscribers by the loop, in publish order;
 *		sales_kit_publish() publishes as another module would.
 *   store	a private in-memory SQLite database; sales_kit_migrate()
 *		applies a folder of migrations.  store_write/store_query
 *		run, and call back, when the loop runs.
 *   httpc	calls are held until the test answers or fails them;
 *		advancing the clock past a call's timeout fails it with
 *		"timeout", as the core's client does.
 *   timers	fire only when the clock is advanced (or, at 0 ms, when
 *		the loop runs).
 *   clocks	now_ms starts at 2026-01-01T00:00:00Z, mono_ms at 1e6;
 *		both move only by sales_kit_advance() (and now_ms by
 *		sales_kit_set_time()).
 *   metrics	kept by the server's own code: sales_kit_metric().
 *   upstream_*	the server's own, on the kit's httpc and clocks.
 *   json_*, buf_* (buf_time, buf_money): the server's own.
 *
 * Init-only services called outside init fail and log as in the server.
 *
 * The loop: sales_kit_run() delivers everything that is ready (bus
 * events, storage results, timers due now) until nothing is, like one
 * turn of the server's event loop.  The kit never runs it by itself,
 * except sales_kit_advance(), which runs it at every timer it passes.
 *
 * One kit at a time per process (the table's services take no handle).
 * Everything the kit returns is owned by the kit and lives until
 * sales_kit_free(), unless said otherwise.  A module's requirements
 * (SALES_MODULE_MAGIC_REQUIRES) are not checked, nor its migrations
 * applied: the test loads and migrates what it needs.
 */
#ifndef SALES_TESTKIT_H
#define SALES_TESTKIT_H

#include <sales/module.h>

struct sales_kit;

/* Where the clocks start. */
#define SALES_KIT_EPOCH_MS	1767225600000LL	/* 2026-01-01T00:00:00Z */
#define SALES_KIT_MONO_MS	1000000LL

/* NULL when another kit exists or memory runs out. */
struct sales_kit *sales_kit_new(void);
/*
 * As at the server's shutdown: pending upstream calls end with
 * "shutdown" and queued storage work runs, then each module's fini (last
 * loaded first); then the modules are unloaded and everything is freed.
 */
void	sales_kit_free(struct sales_kit *kit);
/* The fake core's table, for the test's own json_* and buf_* calls. */
const struct sales_core *sales_kit_core(struct sales_kit *kit);

/*
 * Sets [section] key = value, as a line of sales.ini would (${NAME}
 * expanded from the environment).  For modules loaded afterwards.
 * value may be empty.  -1 (logged) when section or key is empty, a
 * string holds a line break, section a ']' or key a '='.
 */
int	sales_kit_config(struct sales_kit *kit, const char *section,
	    const char *key, const char *value);
/*
 * Loads the module at path (its name is the file's, without ".so") and
 * runs its init.  0; -1 when it cannot be loaded, its magic block does
 * not match, it is loaded already, or its init fails (then what it
 * registered is undone, as the loader does).  Why is logged.
 */
int	sales_kit_load(struct sales_kit *kit, const char *path);

/* Storage.  -1 on an SQL error (logged). */
/* Applies every *.sql file of dir, in name order (sql/orders/). */
int	sales_kit_migrate(struct sales_kit *kit, const char *dir);
/* Runs SQL on the database now: fixtures, or reading what was written. */
int	sales_kit_sql(struct sales_kit *kit, const char *sql);
/* The first column of the first row of sql as an integer (-1: none). */
long long sales_kit_sql_int(struct sales_kit *kit, const char *sql);
/* The next n writes and queries fail with err (a broken disk). */
void	sales_kit_store_fail(struct sales_kit *kit, int n, const char *err);

/* The loop and the clocks. */
/* Runs whatever is ready; the number of callbacks run, -1 if endless. */
int	sales_kit_run(struct sales_kit *kit);
/*
 * Moves both clocks ms forward, firing timers and timeouts on the way
 * and running the loop at each.  0, or -1 as sales_kit_run.
 */
int	sales_kit_advance(struct sales_kit *kit, int64_t ms);
/* Steps the wall clock (now_ms) to ms; mono_ms does not move. */
void	sales_kit_set_time(struct sales_kit *kit, int64_t ms);

/* HTTP. */
struct sales_kit_reply {
	int		 status;	/* 0 until answered */
	const char	*body;		/* NUL-terminated; "" until answered */
	size_t		 len;
};

/*
 * Calls the route for method and target ("/path?query", percent-
 * encoded as on the wire).  headers: "Name: value" strings, NULL-
 * terminated, or NULL.  A handler may answer later (after a storage
 * callback, an upstream answer): status stays 0 until then.  NULL only
 * on a malformed target or out of memory.
 */
const struct sales_kit_reply *sales_kit_request(struct sales_kit *kit,
	    const char *method, const char *target,
	    const char *const *headers, const char *body, size_t len);
/* A header of the answer ("Content-Type" included), or NULL. */
const char *sales_kit_reply_header(const struct sales_kit_reply *reply,
	    const char *name);

/*
 * The value at path in JSON text (a reply's body, a frame's data):
 * members by name, array elements by index, joined by '.' -
 * "totalOrders", "weather.source", "topProducts.0.revenue".  Strings
 * come unquoted and unescaped, anything else as its source text ("51",
 * "null", "[...]").  NULL when the text is not JSON or nothing is
 * there.  Valid until the next call.
 */
const char *sales_kit_json(struct sales_kit *kit, const char *text,
	    const char *path);

/* WebSocket. */
struct sales_kit_frame {
	uint64_t	 client;	/* 0 for ws_broadcast */
	const char	*type;
	const char	*data;		/* NUL-terminated JSON text */
	size_t		 len;
};

/* A new connected client's id (ws_send to others returns -1). */
uint64_t sales_kit_ws_connect(struct sales_kit *kit);
/* Calls the handler of type with data (NULL: "null").  -1: no handler. */
int	sales_kit_ws_message(struct sales_kit *kit, uint64_t client,
	    const char *type, const char *data);
/* Frames sent so far of type (NULL: all); i < 0 counts from the end. */
size_t	sales_kit_frames(struct sales_kit *kit, const char *type);
const struct sales_kit_frame *sales_kit_frame(struct sales_kit *kit,
	    const char *type, long i);

/* The bus. */
struct sales_kit_event {
	const char	*topic;
	const void	*payload;	/* a copy, aligned for any struct */
	size_t		 len;
};

/* Publishes as another module would: delivered when the loop runs. */
void	sales_kit_publish(struct sales_kit *kit, const char *topic,
	    const void *payload, size_t len);
/* Events published so far on topic (NULL: all), the test's included. */
size_t	sales_kit_events(struct sales_kit *kit, const char *topic);
const struct sales_kit_event *sales_kit_event(struct sales_kit *kit,
	    const char *topic, long i);

/* Upstream calls (httpc_call, httpc_request), pending, oldest first. */
struct sales_kit_call {
	const char	*module;	/* NULL for httpc_request */
	const char	*method;	/* "GET" or "POST" */
	const char	*url;
	const char	*body;		/* "" when none */
	size_t		 body_len;
	long		 timeout_ms;	/* 0 already made 10000 */
	size_t		 max_response;	/* 0 already made 1 MiB */
};

size_t	sales_kit_calls(struct sales_kit *kit);
/* The pending call i (i < 0 from the end), or NULL. */
const struct sales_kit_call *sales_kit_call(struct sales_kit *kit, long i);
/* A header the call sent ("Authorization"), or NULL. */
const char *sales_kit_call_header(const struct sales_kit_call *call,
	    const char *name);
/*
 * Answers the call: its callback runs now and the call is gone.  A body
 * (NULL: "") over max_response fails it with "response too large"
 * instead.  0, or -1 when call is not pending.
 */
int	sales_kit_answer(struct sales_kit *kit,
	    const struct sales_kit_call *call, long status, const char *body);
/*
 * Fails it: status 0, err ("timeout", ...; NULL: "connection refused").
 * 0, or -1 when call is not pending.
 */
int	sales_kit_fail(struct sales_kit *kit,
	    const struct sales_kit_call *call, const char *err);

/* Metrics and the log. */
/* A metric's value by its name without "salesd_"; NAN when unknown. */
double	sales_kit_metric(struct sales_kit *kit, const char *name);
/* Lines logged so far ("module: level: text") that contain text. */
size_t	sales_kit_logged(struct sales_kit *kit, const char *text);

#endif /* SALES_TESTKIT_H */
