/*
 * api.c - the service table handed to every module.
 *
 * Most members point straight at the subsystem that implements them;
 * the wrappers here only turn a module handle into the name and config
 * section it stands for, and refuse registrations outside init, so a
 * module can never add a route while requests are being served.
 */
#include <stdarg.h>
#include <stddef.h>

#include "buf.h"
#include "bus.h"
#include "config.h"
#include "core.h"
#include "http.h"
#include "httpc.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "module.h"
#include "router.h"
#include "store.h"
#include "timer.h"
#include "upstream.h"
#include "ws.h"
#include "ws_events.h"

static void
api_log(struct sales_module *self, enum sales_log_level level,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	core_logv(core_module_name(self), level, fmt, ap);
	va_end(ap);
}

static const char *
api_config_str(struct sales_module *self, const char *key, const char *def)
{
	return core_config_str(core_module_config(self),
	    core_module_name(self), key, def);
}

static int
api_config_int(struct sales_module *self, const char *key, long long def,
    long long min, long long max, long long *out)
{
	return core_config_int(core_module_config(self),
	    core_module_name(self), key, def, min, max, out);
}

static int
api_config_double(struct sales_module *self, const char *key, double def,
    double min, double max, double *out)
{
	return core_config_double(core_module_config(self),
	    core_module_name(self), key, def, min, max, out);
}

static int
api_config_bool(struct sales_module *self, const char *key, int def, int *out)
{
	return core_config_bool(core_module_config(self),
	    core_module_name(self), key, def, out);
}

static int
api_config_url(struct sales_module *self, const char *key, const char *def,
    const char **out)
{
	return core_config_url(core_module_config(self), core_module_name(self),
	    key, def, out);
}

static void
api_config_each(struct sales_module *self,
    void (*cb)(const char *, const char *, void *), void *arg)
{
	core_config_each(core_module_config(self), core_module_name(self),
	    cb, arg);
}

/* Registration outside init is a programming error, reported, refused. */
static int
api_in_init(struct sales_module *self, const char *what)
{
	if (core_module_in_init(self))
		return 1;
	core_log(core_module_name(self), SALES_LOG_ERROR, "%s outside "
	    "sales_module_init is not allowed", what);
	return 0;
}

static int
api_http_route(struct sales_module *self, const char *method,
    const char *pattern, sales_http_handler handler, void *arg)
{
	if (!api_in_init(self, "http_route"))
		return -1;
	return core_router_add(core_module_name(self), method, pattern,
	    handler, arg);
}

static int
api_http_route_open(struct sales_module *self, const char *pattern,
    sales_http_handler handler, void *arg)
{
	if (!api_in_init(self, "http_route_open"))
		return -1;
	return core_router_add_open(core_module_name(self), pattern, handler,
	    arg);
}

static int
api_ws_on_message(struct sales_module *self, const char *type,
    sales_ws_handler handler, void *arg)
{
	if (!api_in_init(self, "ws_on_message"))
		return -1;
	return core_ws_on_message(core_module_name(self), type, handler, arg);
}

static int
api_ws_event(struct sales_module *self, const char *type)
{
	if (!api_in_init(self, "ws_event"))
		return -1;
	return core_ws_event_declare(core_module_name(self), type);
}

static int
api_bus_subscribe(struct sales_module *self, const char *topic,
    sales_bus_handler handler, void *arg)
{
	if (!api_in_init(self, "bus_subscribe"))
		return -1;
	return core_bus_subscribe(core_module_name(self), topic, handler, arg);
}

static struct sales_metric *
api_metric_counter(struct sales_module *self, const char *name,
    const char *help)
{
	if (!api_in_init(self, "metric_counter"))
		return NULL;
	return core_metric_new(core_module_name(self), name, help, 0);
}

static struct sales_metric *
api_metric_gauge(struct sales_module *self, const char *name, const char *help)
{
	if (!api_in_init(self, "metric_gauge"))
		return NULL;
	return core_metric_new(core_module_name(self), name, help, 1);
}

/*
 * Init only: it blocks the loop.  There is no self argument, so a call
 * outside init is told apart by the module being initialised, and the
 * refusal names the caller by the code it returns to.
 */
static struct sales_store_result *
api_store_query_sync(const char *sql, const struct sales_value *params,
    size_t nparams)
{
	struct sales_module *who;

	if (core_module_initialising() != NULL)
		return core_store_query_sync(sql, params, nparams);
	who = core_module_at(__builtin_return_address(0));
	core_log(who ? core_module_name(who) : "module", SALES_LOG_ERROR,
	    "store_query_sync outside sales_module_init is not allowed (it "
	    "blocks the loop); use store_query");
	return NULL;
}

/*
 * A timer belongs to the module that asked for it (the one in init, or
 * the one whose code called), so that a failed init's timers are
 * cancelled with the rest of what it registered.
 */
static struct sales_timer *
api_timer_add(long ms, int repeat, void (*cb)(void *), void *arg)
{
	struct sales_module *who;

	if ((who = core_module_initialising()) == NULL)
		who = core_module_at(__builtin_return_address(0));
	return core_timer_add_owned(who ? core_module_name(who) : NULL, ms,
	    repeat, cb, arg);
}

static int
api_httpc_call(struct sales_module *self,
    const struct sales_httpc_request *req, sales_httpc_cb cb, void *arg)
{
	return core_httpc_call(core_module_name(self), req, cb, arg);
}

static int
api_store_watch(struct sales_module *self, sales_store_watch_cb cb,
    void *arg)
{
	if (!api_in_init(self, "store_watch"))
		return -1;
	return core_store_watch(core_module_name(self), cb, arg);
}

/* The upstream service runs on this very table (core/upstream.c). */
static struct sales_upstream *
api_upstream_new(struct sales_module *self,
    const struct sales_upstream_opts *opts)
{
	return core_upstream_new(&core_api, self, opts);
}

const struct sales_core core_api = {
	.size = sizeof(struct sales_core),
	.version = CORE_VERSION,
	.log = api_log,
	.config_str = api_config_str,
	.config_int = api_config_int,
	.config_double = api_config_double,
	.config_bool = api_config_bool,
	.config_each = api_config_each,
	.module_name = core_module_name,
	.http_route = api_http_route,
	.http_method = core_http_method,
	.http_path = core_http_path,
	.http_param = core_http_param,
	.http_query = core_http_query,
	.http_header = core_http_header,
	.http_body = core_http_body,
	.http_add_header = core_http_add_header,
	.http_respond = core_http_respond,
	.http_error = core_http_error,
	.ws_on_message = api_ws_on_message,
	.ws_send = core_ws_send,
	.ws_broadcast = core_ws_broadcast,
	.ws_clients = core_ws_clients,
	.bus_subscribe = api_bus_subscribe,
	.bus_publish = core_bus_publish,
	.store_write = core_store_write,
	.store_query = core_store_query,
	.store_query_sync = api_store_query_sync,
	.store_result_free = core_store_result_free,
	.store_rows = core_store_rows,
	.store_cols = core_store_cols,
	.store_value = core_store_value,
	.httpc_request = core_httpc_request,
	.timer_add = api_timer_add,
	.timer_del = core_timer_del,
	.now_ms = core_now_ms,
	.json_parse = core_json_parse,
	.json_free = core_json_free,
	.json_type = core_json_type,
	.json_get = core_json_get,
	.json_len = core_json_len,
	.json_at = core_json_at,
	.json_member = core_json_member,
	.json_raw = core_json_raw,
	.json_string = core_json_string,
	.json_int = core_json_int,
	.json_double = core_json_double,
	.json_bool = core_json_bool,
	.buf_append = core_buf_append,
	.buf_printf = core_buf_printf,
	.buf_json_string = core_buf_json_string,
	.buf_free = core_buf_free,
	.metric_counter = api_metric_counter,
	.metric_gauge = api_metric_gauge,
	.metric_add = core_metric_add,
	.metric_set = core_metric_set,
	.mono_ms = core_mono_ms,
	.buf_time = core_buf_time,
	.config_url = api_config_url,
	.ws_event = api_ws_event,
	.httpc_call = api_httpc_call,
	.http_route_open = api_http_route_open,
	/* ABI 1.5 */
	.upstream_new = api_upstream_new,
	.upstream_configure = core_upstream_configure,
	.upstream_get = core_upstream_get,
	.upstream_refresh = core_upstream_refresh,
	.upstream_invalidate = core_upstream_invalidate,
	.upstream_peek = core_upstream_peek,
	.upstream_free = core_upstream_free,
	.buf_money = core_buf_money,
	/* ABI 1.6 */
	.store_write_rows = core_store_write_rows,
	.store_watch = api_store_watch,
};
