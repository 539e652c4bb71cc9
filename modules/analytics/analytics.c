/*
 * analytics - live sales figures: GET /analytics, the "updateAnalytics"
 * WebSocket message and the "analytics.updated.v2" bus event (and the
 * deprecated "analytics.updated"), all from the state in
 * analytics_state.c, fed by "order.created".
 *
 * Start-up rebuilds the state without reading every order: the totals
 * per product come from product_totals_v1 (kept in the same transaction
 * as each insert), the minute windows from the orders_v1 of the last
 * 2 x window_ms and the hour from per-minute sums of the last hour, both
 * through the received_at index.  So start-up costs what the number of
 * products and recent orders cost, not the number of orders.  All of it
 * and the highest order id come from one statement, one snapshot, and
 * "order.created" events of ids up to that one are ignored: in a cluster
 * an order another instance commits during start-up is counted once.  Those two
 * views are the orders module's public interface (docs/MODULES.md): the
 * only SQL names of orders' this module may use, never its tables.
 *
 * Updates are coalesced: after an order, one "updateAnalytics" follows
 * at most every broadcast_interval_ms (0: a zero timer, so one update
 * follows a whole commit group).  It never calls the orders module.
 *
 * [analytics] top = 5, broadcast_interval_ms = 100, window_ms = 60000.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics.h"

SALES_MODULE_MAGIC_REQUIRES("analytics", "1.0", "orders");

const struct sales_core		*an_core;
static struct sales_module	*self;
static long long		 top_default, interval_ms, window_ms;
static long long		 new_top, new_interval, new_window; /* reload */
static struct sales_timer	*timer;
static int64_t			 last_sent = -1;
static struct sales_metric	*m_updates;
static struct sales_buf		 cache;		/* last GET /analytics body */
static int64_t			 watermark;	/* highest id rebuilt from */

/* Revenue of stored sums split as (tera-units, units mod 1e6, micros). */
#define AN_REVENUE_SUMS							\
	"SUM(quantity * (pm / 1000000000000)), "				\
	"SUM(quantity * ((pm / 1000000) % 1000000)), "			\
	"SUM(quantity * (pm % 1000000))"
#define AN_RECENT							\
	"(SELECT received_at, quantity, price_micros AS pm "		\
	"FROM orders_v1 WHERE received_at > ?1)"
#define AN_RECENT2							\
	"(SELECT received_at, quantity, price_micros AS pm "		\
	"FROM orders_v1 WHERE received_at > ?2)"

static an_money
value_money(const struct sales_value *v)
{
	if (v == NULL)
		return 0;
	if (v->type == SALES_VALUE_INT)
		return v->i;
	if (v->type == SALES_VALUE_REAL)
		return (an_money)v->d;	/* only past 9.2e18: already inexact */
	return 0;
}

static int64_t
value_int(const struct sales_value *v)
{
	return v != NULL && v->type == SALES_VALUE_INT ? v->i : 0;
}

static an_money
row_revenue(const struct sales_store_result *res, size_t r, size_t c)
{
	const struct sales_core *core = an_core;

	return value_money(core->store_value(res, r, c)) * 1000000000000LL +
	    value_money(core->store_value(res, r, c + 1)) * 1000000 +
	    value_money(core->store_value(res, r, c + 2));
}

/*
 * Everything start-up needs in one statement, so one snapshot: the
 * totals per product (kind 0), the orders of the minute windows per
 * millisecond (1), those of the last hour per minute (2) and the highest
 * order id (3).  In a cluster other instances commit while we read; an
 * order is either in the snapshot (id <= the highest) or comes later on
 * the feed, never both.  Columns: kind, product_id, then a to e.
 */
static const char sql_rebuild[] =
    "SELECT 0, product_id, orders, quantity, revenue_units, "
    "revenue_micros, NULL FROM product_totals_v1 "
    "UNION ALL SELECT 1, NULL, received_at, COUNT(*), " AN_REVENUE_SUMS
    " FROM " AN_RECENT " GROUP BY received_at "
    "UNION ALL SELECT 2, NULL, received_at / 60000, COUNT(*), "
    AN_REVENUE_SUMS " FROM " AN_RECENT2 " GROUP BY received_at / 60000 "
    "UNION ALL SELECT 3, NULL, "
    "(SELECT id FROM orders_v1 ORDER BY id DESC LIMIT 1), "
    "NULL, NULL, NULL, NULL "
    "ORDER BY 1, 3";

static int
rebuild(void)
{
	const struct sales_core *core = an_core;
	struct sales_store_result *res;
	struct sales_value since[2];
	const struct sales_value *pid;
	int64_t now = core->now_ms();
	size_t r, n;
	int rc = 0;

	memset(since, 0, sizeof(since));
	since[0].type = SALES_VALUE_INT;
	since[0].i = now - 2 * window_ms;
	since[1].type = SALES_VALUE_INT;
	since[1].i = (now / 60000 - 59) * 60000 - 1;
	res = core->store_query_sync(sql_rebuild, since, 2);
	if (res == NULL) {
		core->log(self, SALES_LOG_ERROR, "cannot read the orders to "
		    "rebuild analytics (the storage error above says why)");
		return -1;
	}
	n = core->store_rows(res);
	for (r = 0; r < n && rc == 0; r++) {
		switch (value_int(core->store_value(res, r, 0))) {
		case 0:
			pid = core->store_value(res, r, 1);
			if (pid->type != SALES_VALUE_TEXT)
				break;
			rc = an_add_totals(pid->s, pid->len,
			    value_int(core->store_value(res, r, 2)),
			    value_int(core->store_value(res, r, 3)),
			    value_money(core->store_value(res, r, 4)) *
			    1000000 +
			    value_money(core->store_value(res, r, 5)));
			break;
		case 1:
			rc = an_add_window(value_int(core->store_value(res, r,
			    2)), value_int(core->store_value(res, r, 3)),
			    row_revenue(res, r, 4));
			break;
		case 2:
			an_add_hour(value_int(core->store_value(res, r, 2)),
			    value_int(core->store_value(res, r, 3)),
			    row_revenue(res, r, 4));
			break;
		case 3:
			watermark = value_int(core->store_value(res, r, 2));
			break;
		}
	}
	core->store_result_free(res);
	if (rc != 0) {
		core->log(self, SALES_LOG_ERROR, "out of memory rebuilding "
		    "analytics");
		return -1;
	}
	return 0;
}

static void
broadcast(void *arg)
{
	const struct sales_core *core = an_core;
	struct sales_analytics_v1 *ev;
	struct sales_analytics_v2 *ev2;
	struct sales_buf b = {0};
	int64_t now = core->now_ms();

	(void)arg;
	if (timer != NULL)
		core->timer_del(timer);
	timer = NULL;
	last_sent = now;
	if (an_json(&b, (int)top_default, now) == -1) {
		core->log(self, SALES_LOG_WARN, "out of memory for an update");
		goto done;
	}
	core->ws_broadcast("updateAnalytics", b.data, b.len);
	core->metric_add(m_updates, 1);
	if ((ev2 = calloc(1, sizeof(*ev2))) == NULL)
		goto nomem;
	an_snapshot_v2(ev2, (int)top_default, now);
	core->bus_publish(SALES_TOPIC_ANALYTICS_UPDATED_V2, ev2, sizeof(*ev2));
	free(ev2);
	/* The deprecated v1, for modules built before v2 (<sales/events.h>). */
	if ((ev = calloc(1, sizeof(*ev))) == NULL)
		goto nomem;
	an_snapshot(ev, now);
	if (b.len <= sizeof(ev->json)) {
		memcpy(ev->json, b.data, b.len);
		ev->json_len = (uint32_t)b.len;
	}
	core->bus_publish(SALES_TOPIC_ANALYTICS_UPDATED, ev, sizeof(*ev));
	free(ev);
	goto done;
nomem:
	core->log(self, SALES_LOG_WARN, "out of memory for an \"%s\" event",
	    SALES_TOPIC_ANALYTICS_UPDATED);
done:
	core->buf_free(&b);
}

/* At most one update per interval: the first change arms a timer. */
static void
schedule(void)
{
	int64_t delay = 0, now;

	if (timer != NULL)
		return;
	now = an_core->now_ms();
	if (last_sent >= 0 && interval_ms > 0) {
		delay = last_sent + interval_ms - now;
		if (delay < 0 || delay > interval_ms)
			delay = 0;	/* overdue, or the clock stepped */
	}
	if ((timer = an_core->timer_add((long)delay, 0, broadcast,
	    NULL)) == NULL)
		an_core->log(self, SALES_LOG_WARN, "cannot arm the update timer");
}

static void
on_order(const char *topic, const void *payload, size_t len, void *arg)
{
	struct sales_order_v1 o;

	(void)topic;
	(void)arg;
	if (len < sizeof(o))
		return;
	memcpy(&o, payload, sizeof(o));
	if (o.id <= watermark)
		return;		/* counted by rebuild() already */
	o.product_id[sizeof(o.product_id) - 1] = '\0';
	if (an_add_order(o.product_id, strlen(o.product_id), o.quantity,
	    o.price_micros, o.received_at_ms) == -1)
		an_core->log(self, SALES_LOG_WARN, "out of memory; order %lld "
		    "is missing from the analytics", (long long)o.id);
	schedule();
}

/*
 * The object only changes with the state or the millisecond of asOf, so
 * under a read load most requests reuse the last rendering.
 */
static int
render(struct sales_buf **out, long long top)
{
	static long long cache_top = -1;
	static int64_t cache_ms = -1;
	static uint64_t cache_ver;
	int64_t now = an_core->now_ms();

	if (top != cache_top || now != cache_ms || an_version() != cache_ver) {
		cache.len = 0;
		cache_top = -1;
		if (an_json(&cache, (int)top, now) == -1)
			return -1;
		cache_top = top;
		cache_ms = now;
		cache_ver = an_version();
	}
	*out = &cache;
	return 0;
}

static void
get_analytics(struct sales_request *req, void *arg)
{
	const struct sales_core *core = an_core;
	struct sales_buf *b;
	const char *q = core->http_query(req, "top");
	long long top = top_default;
	char *end;

	(void)arg;
	if (q != NULL) {
		top = strtoll(q, &end, 10);
		if (*q < '0' || *q > '9' || *end != '\0' || top < 1 ||
		    top > 100) {
			core->http_error(req, 400, "invalid_parameter",
			    "\"top\" must be an integer from 1 to 100", "top");
			return;
		}
	}
	if (render(&b, top) == -1)
		core->http_error(req, 503, "no_memory", "out of memory", NULL);
	else
		core->http_respond(req, 200, "application/json", b->data, b->len);
}

static void
ws_get_analytics(uint64_t client, const char *data, size_t len, void *arg)
{
	struct sales_buf b = {0};

	(void)data;
	(void)len;
	(void)arg;
	if (an_json(&b, (int)top_default, an_core->now_ms()) == 0)
		an_core->ws_send(client, "updateAnalytics", b.data, b.len);
	an_core->buf_free(&b);
}

SALES_MODULE_INIT(c, m)
{
	an_core = c;
	self = m;
	if (c->config_int(m, "top", 5, 1, 100, &top_default) == -1 ||
	    c->config_int(m, "broadcast_interval_ms", 100, 0, 3600000,
	    &interval_ms) == -1 ||
	    c->config_int(m, "window_ms", 60000, 100, 3600000,
	    &window_ms) == -1)
		return -1;
	if (an_state_init(window_ms) == -1 || rebuild() == -1)
		return -1;
	if ((m_updates = c->metric_counter(m, "analytics_updates_total",
	    "updateAnalytics broadcasts")) == NULL)
		return -1;
	if (c->http_route(m, "GET", "/analytics", get_analytics, NULL) == -1 ||
	    c->ws_on_message(m, "getAnalytics", ws_get_analytics, NULL) == -1 ||
	    c->ws_event(m, "updateAnalytics") == -1 ||
	    c->bus_subscribe(m, SALES_TOPIC_ORDER_CREATED, on_order,
	    NULL) == -1)
		return -1;
	/* One "analytics.updated" right away, for whoever needs figures. */
	schedule();
	return 0;
}

/*
 * top and broadcast_interval_ms change live; window_ms shapes the state
 * rebuilt at start-up, so a new one waits for a restart.  A pending
 * broadcast is armed again by the new interval: lowering an hour to
 * 100 ms must not wait out the hour.
 */
SALES_MODULE_RELOAD(m, step)
{
	switch (step) {
	case SALES_RELOAD_CHECK:
		if (an_core->config_int(m, "top", 5, 1, 100, &new_top) == -1 ||
		    an_core->config_int(m, "broadcast_interval_ms", 100, 0,
		    3600000, &new_interval) == -1 ||
		    an_core->config_int(m, "window_ms", 60000, 100, 3600000,
		    &new_window) == -1)
			return -1;
		return 0;
	case SALES_RELOAD_COMMIT:
		top_default = new_top;
		if (new_interval != interval_ms && timer != NULL) {
			an_core->timer_del(timer);
			timer = NULL;
			interval_ms = new_interval;
			schedule();
		}
		interval_ms = new_interval;
		if (new_window != window_ms)
			an_core->log(self, SALES_LOG_WARN, "\"window_ms\": "
			    "changed; that needs a restart, %lld stays",
			    window_ms);
		return 0;
	case SALES_RELOAD_ABORT:
		return 0;
	}
	return -1;
}

SALES_MODULE_FINI()
{
	if (timer != NULL)
		an_core->timer_del(timer);
	timer = NULL;
	an_core->buf_free(&cache);
	an_state_free();
}
