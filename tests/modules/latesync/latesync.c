/*
 * latesync - a test module that calls store_query_sync, an init-only
 * service, both in init (allowed) and from a request handler (refused
 * with -1/NULL and one log line naming the module and the service).
 * GET /latesync answers {"init":N,"late":"refused"|"ran"}, N being the
 * value the init-time query read.
 */
#include <sales/module.h>

SALES_MODULE_MAGIC("latesync", "1.0");

static const struct sales_core	*core;
static long long		 init_value = -1;

static void
latesync_get(struct sales_request *req, void *arg)
{
	struct sales_store_result *res;
	struct sales_buf b = {0};

	(void)arg;
	res = core->store_query_sync("SELECT 7", NULL, 0);
	core->buf_printf(&b, "{\"init\":%lld,\"late\":\"%s\"}", init_value,
	    res == NULL ? "refused" : "ran");
	core->store_result_free(res);
	core->http_respond(req, 200, "application/json", b.data, b.len);
	core->buf_free(&b);
}

SALES_MODULE_INIT(c, m)
{
	struct sales_store_result *res;
	const struct sales_value *v;

	core = c;
	if ((res = c->store_query_sync("SELECT 42", NULL, 0)) == NULL)
		return -1;
	v = c->store_value(res, 0, 0);
	if (v != NULL && v->type == SALES_VALUE_INT)
		init_value = v->i;
	c->store_result_free(res);
	return c->http_route(m, "GET", "/latesync", latesync_get, NULL);
}
