/*
 * failtimer - a broken test module: its init registers a route, a bus
 * subscription, a WebSocket message type and two timers (one repeating),
 * then fails.  The loader must undo all of it: no timer ever fires (each
 * would log "failtimer: timer fired") and nothing leaks.
 */
#include <sales/module.h>

SALES_MODULE_MAGIC("failtimer", "1.0");

static const struct sales_core	*core;
static struct sales_module	*self;

static void
failtimer_fire(void *arg)
{
	(void)arg;
	core->log(self, SALES_LOG_ERROR, "failtimer: timer fired");
}

static void
failtimer_get(struct sales_request *req, void *arg)
{
	(void)arg;
	core->http_respond(req, 200, "application/json", "{}", 2);
}

static void
failtimer_on_order(const char *topic, const void *payload, size_t len,
    void *arg)
{
	(void)topic;
	(void)payload;
	(void)len;
	(void)arg;
	core->log(self, SALES_LOG_ERROR, "failtimer: event delivered");
}

SALES_MODULE_INIT(c, m)
{
	core = c;
	self = m;
	if (c->http_route(m, "GET", "/failtimer", failtimer_get, NULL) == -1 ||
	    c->bus_subscribe(m, SALES_TOPIC_ORDER_CREATED, failtimer_on_order,
	    NULL) == -1 ||
	    c->ws_event(m, "failtimerTick") == -1 ||
	    c->timer_add(0, 0, failtimer_fire, NULL) == NULL ||
	    c->timer_add(1, 1, failtimer_fire, NULL) == NULL)
		return -1;
	c->log(m, SALES_LOG_ERROR, "failing on purpose after registering");
	return -1;
}
