/*
 * hello - an out-of-tree salesd module: the template to start from.  It
 * includes only <sales/module.h>, reads its [hello] section, counts the
 * orders the bus announces and answers GET /hello with the count:
 *
 *	{"greeting":"hello","orders":2,"quantity":5}
 *
 * It stores nothing and knows nothing of the orders module: it hears
 * "order.created" whoever publishes it, so the counts start at zero on
 * every start.
 */
#include <string.h>

#include <sales/module.h>

SALES_MODULE_MAGIC("hello", "1.0");	/* the name is the file's: hello.so */

static const struct sales_core	*core;
static const char		*greeting;	/* [hello] greeting */
static long long		 orders, quantity;

/* On the loop thread, once per committed order, in commit order. */
static void
hello_on_order(const char *topic, const void *payload, size_t len, void *arg)
{
	const struct sales_order_v1 *o = payload;

	(void)topic;
	(void)arg;
	if (len < sizeof(*o))
		return;		/* a shape this build does not know */
	orders++;
	quantity += o->quantity;
}

static void
hello_get(struct sales_request *req, void *arg)
{
	struct sales_buf b = {0};

	(void)arg;
	if (core->buf_printf(&b, "{\"greeting\":") == -1 ||
	    core->buf_json_string(&b, greeting, strlen(greeting)) == -1 ||
	    core->buf_printf(&b, ",\"orders\":%lld,\"quantity\":%lld}",
	    orders, quantity) == -1)
		core->http_error(req, 503, "no_memory", "out of memory", NULL);
	else
		core->http_respond(req, 200, NULL, b.data, b.len);
	core->buf_free(&b);
}

SALES_MODULE_INIT(c, self)
{
	core = c;
	greeting = core->config_str(self, "greeting", "hello");
	if (strlen(greeting) == 0 || strlen(greeting) > 64) {
		core->log(self, SALES_LOG_ERROR,
		    "[hello] greeting: must be 1 to 64 bytes");
		return -1;
	}
	if (core->http_route(self, "GET", "/hello", hello_get, NULL) == -1 ||
	    core->bus_subscribe(self, SALES_TOPIC_ORDER_CREATED,
	    hello_on_order, NULL) == -1)
		return -1;
	return 0;
}
