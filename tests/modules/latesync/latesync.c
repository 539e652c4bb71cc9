/*
 * latesync - a test module that calls the init-only services from a
 * request handler, where each must be refused (-1 or NULL) with one log
 * line naming the module and the service; store_query_sync also runs in
 * init, where it is allowed.  GET /latesync answers
 * {"init":N,"late":"refused"|"ran","others":{service: 0 | -1}}, N being
 * the value the init-time query read, -1 a refusal.
 */
#include <sales/module.h>

SALES_MODULE_MAGIC("latesync", "1.0");

static const struct sales_core	*core;
static struct sales_module	*self;
static long long		 init_value = -1;

static void
latesync_noop_http(struct sales_request *req, void *arg)
{
	(void)req;
	(void)arg;
}

static void
latesync_noop_ws(uint64_t client, const char *data, size_t len, void *arg)
{
	(void)client;
	(void)data;
	(void)len;
	(void)arg;
}

static void
latesync_noop_bus(const char *topic, const void *payload, size_t len,
    void *arg)
{
	(void)topic;
	(void)payload;
	(void)len;
	(void)arg;
}

static void
latesync_get(struct sales_request *req, void *arg)
{
	struct sales_store_result *res;
	struct sales_buf b = {0};

	(void)arg;
	res = core->store_query_sync("SELECT 7", NULL, 0);
	core->buf_printf(&b, "{\"init\":%lld,\"late\":\"%s\"", init_value,
	    res == NULL ? "refused" : "ran");
	core->store_result_free(res);
	core->buf_printf(&b, ",\"others\":{\"http_route\":%d,"
	    "\"ws_on_message\":%d,\"ws_event\":%d,\"bus_subscribe\":%d,"
	    "\"metric_counter\":%d,\"metric_gauge\":%d}}",
	    core->http_route(self, "GET", "/late", latesync_noop_http, NULL),
	    core->ws_on_message(self, "late", latesync_noop_ws, NULL),
	    core->ws_event(self, "late"),
	    core->bus_subscribe(self, "late.happened", latesync_noop_bus,
	    NULL),
	    core->metric_counter(self, "late_total", "x") ? 0 : -1,
	    core->metric_gauge(self, "late", "x") ? 0 : -1);
	core->http_respond(req, 200, "application/json", b.data, b.len);
	core->buf_free(&b);
}

SALES_MODULE_INIT(c, m)
{
	struct sales_store_result *res;
	const struct sales_value *v;

	core = c;
	self = m;
	if ((res = c->store_query_sync("SELECT 42", NULL, 0)) == NULL)
		return -1;
	v = c->store_value(res, 0, 0);
	if (v != NULL && v->type == SALES_VALUE_INT)
		init_value = v->i;
	c->store_result_free(res);
	return c->http_route(m, "GET", "/latesync", latesync_get, NULL);
}
