/*
 * echo - the test module: a small probe of every SDK service, driven over
 * HTTP by the end-to-end tests and used as the worked example in
 * docs/MODULES.md.  It holds no sales logic.
 *
 *	GET  /echo			{"method","path","q","header","greeting"}
 *	POST /echo			the body back, same Content-Type
 *	GET  /echo/{id}/items/{item}	{"id","item"}
 *	GET  /echo/slow?ms=N		answered N ms later (pipelining order)
 *	POST /echo/broadcast?type=T	body broadcast as WebSocket type T
 *	POST /echo/publish		body published on "echo.event"
 *	GET  /echo/events		what the bus delivered, in order
 *	WS   {"type":"echo","data":D}	answered {"type":"echo","data":D}
 */
#include <stdlib.h>
#include <string.h>

#include <sales/module.h>

SALES_MODULE_MAGIC("echo", "1.0");

static const struct sales_core	*core;
static struct sales_module	*self;
static const char		*greeting;
static struct sales_buf		 events;	/* JSON array body, no brackets */
static int			 nevents;

struct slow {
	struct sales_request	*req;
	struct sales_timer	*timer;
	long long		 ms;
};

static void
echo_get(struct sales_request *req, void *arg)
{
	struct sales_buf b = {0};
	const char *q = core->http_query(req, "q");
	const char *h = core->http_header(req, "X-Test");

	(void)arg;
	core->buf_printf(&b, "{\"method\":");
	core->buf_json_string(&b, core->http_method(req), strlen(core->http_method(req)));
	core->buf_printf(&b, ",\"path\":");
	core->buf_json_string(&b, core->http_path(req), strlen(core->http_path(req)));
	core->buf_printf(&b, ",\"q\":");
	if (q)
		core->buf_json_string(&b, q, strlen(q));
	else
		core->buf_printf(&b, "null");
	core->buf_printf(&b, ",\"header\":");
	if (h)
		core->buf_json_string(&b, h, strlen(h));
	else
		core->buf_printf(&b, "null");
	core->buf_printf(&b, ",\"greeting\":");
	core->buf_json_string(&b, greeting, strlen(greeting));
	core->buf_printf(&b, "}");
	core->http_respond(req, 200, NULL, b.data, b.len);
	core->buf_free(&b);
}

static void
echo_post(struct sales_request *req, void *arg)
{
	size_t len;
	const char *body = core->http_body(req, &len);
	const char *ct = core->http_header(req, "Content-Type");

	(void)arg;
	core->http_respond(req, 200, ct ? ct : "application/octet-stream",
	    body, len);
}

static void
echo_params(struct sales_request *req, void *arg)
{
	struct sales_buf b = {0};
	const char *id = core->http_param(req, "id");
	const char *item = core->http_param(req, "item");

	(void)arg;
	core->buf_printf(&b, "{\"id\":");
	core->buf_json_string(&b, id, strlen(id));
	core->buf_printf(&b, ",\"item\":");
	core->buf_json_string(&b, item, strlen(item));
	core->buf_printf(&b, "}");
	core->http_respond(req, 200, NULL, b.data, b.len);
	core->buf_free(&b);
}

static void
echo_slow_done(void *arg)
{
	struct slow *s = arg;
	struct sales_buf b = {0};

	core->buf_printf(&b, "{\"slept\":%lld}", s->ms);
	core->http_respond(s->req, 200, NULL, b.data, b.len);
	core->buf_free(&b);
	core->timer_del(s->timer);
	free(s);
}

static void
echo_slow(struct sales_request *req, void *arg)
{
	const char *ms = core->http_query(req, "ms");
	struct slow *s;

	(void)arg;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		core->http_error(req, 503, "no_memory", "out of memory", NULL);
		return;
	}
	s->req = req;
	s->ms = ms ? atoll(ms) : 100;
	if (s->ms < 0 || s->ms > 60000) {
		free(s);
		core->http_error(req, 400, "invalid_ms", "ms must be 0..60000", "ms");
		return;
	}
	s->timer = core->timer_add((long)s->ms, 0, echo_slow_done, s);
}

static void
echo_broadcast(struct sales_request *req, void *arg)
{
	size_t len;
	const char *body = core->http_body(req, &len);
	const char *type = core->http_query(req, "type");
	struct sales_buf b = {0};

	(void)arg;
	core->ws_broadcast(type ? type : "echo", len ? body : "null",
	    len ? len : 4);
	core->buf_printf(&b, "{\"clients\":%zu}", core->ws_clients());
	core->http_respond(req, 202, NULL, b.data, b.len);
	core->buf_free(&b);
}

static void
echo_publish(struct sales_request *req, void *arg)
{
	size_t len;
	const char *body = core->http_body(req, &len);

	(void)arg;
	core->bus_publish("echo.event", body, len);
	core->http_respond(req, 202, NULL, "{}", 2);
}

static void
echo_on_event(const char *topic, const void *payload, size_t len, void *arg)
{
	(void)arg;
	if (nevents++)
		core->buf_append(&events, ",", 1);
	core->buf_printf(&events, "{\"topic\":");
	core->buf_json_string(&events, topic, strlen(topic));
	core->buf_printf(&events, ",\"payload\":");
	core->buf_json_string(&events, payload, len);
	core->buf_printf(&events, "}");
	/* An event published from a handler is queued, not nested. */
	if (len == 5 && memcmp(payload, "chain", 5) == 0)
		core->bus_publish("echo.event", "chained", 7);
}

static void
echo_events(struct sales_request *req, void *arg)
{
	struct sales_buf b = {0};

	(void)arg;
	core->buf_printf(&b, "[%s]", events.len ? events.data : "");
	core->http_respond(req, 200, NULL, b.data, b.len);
	core->buf_free(&b);
}

static void
echo_ws(uint64_t client, const char *data, size_t len, void *arg)
{
	(void)arg;
	core->ws_send(client, "echo", data, len);
}

SALES_MODULE_INIT(c, m)
{
	core = c;
	self = m;
	greeting = core->config_str(self, "greeting", "hello");
	if (core->http_route(self, "GET", "/echo", echo_get, NULL) == -1 ||
	    core->http_route(self, "POST", "/echo", echo_post, NULL) == -1 ||
	    core->http_route(self, "GET", "/echo/{id}/items/{item}",
	    echo_params, NULL) == -1 ||
	    core->http_route(self, "GET", "/echo/slow", echo_slow, NULL) == -1 ||
	    core->http_route(self, "POST", "/echo/broadcast", echo_broadcast,
	    NULL) == -1 ||
	    core->http_route(self, "POST", "/echo/publish", echo_publish,
	    NULL) == -1 ||
	    core->http_route(self, "GET", "/echo/events", echo_events,
	    NULL) == -1 ||
	    core->ws_on_message(self, "echo", echo_ws, NULL) == -1 ||
	    /* POST /echo/broadcast?type= sends whatever it is told. */
	    core->ws_event(self, "*") == -1 ||
	    core->bus_subscribe(self, "echo.event", echo_on_event, NULL) == -1)
		return -1;
	core->log(self, SALES_LOG_INFO, "ready, greeting \"%s\"", greeting);
	return 0;
}

SALES_MODULE_FINI()
{
	core->buf_free(&events);
	core->log(self, SALES_LOG_INFO, "finalised");
}
