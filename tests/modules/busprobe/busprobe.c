/*
 * busprobe - a test module that subscribes to every shipped topic: it
 * keeps the last payload of each analytics and weather topic, both
 * versions, and the last BUSPROBE_ORDERS "order.created" payloads in
 * the order they came, and shows them field by field at GET /busprobe,
 * so a test can hold the typed payloads against the REST bodies and
 * check the deprecated v1 still comes.  Money is shown as
 * {"units":U,"micros":M}; v1's JSON text as a string.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sales/module.h>

SALES_MODULE_MAGIC("busprobe", "1.0");

static const struct sales_core	*core;
static struct sales_analytics_v2 *an2;
static struct sales_analytics_v1 *an1;
static struct sales_weather_v2	*we2;
static struct sales_weather_v1	*we1;
static long long		 n_an2, n_an1, n_we2, n_we1, n_orders;

#define BUSPROBE_ORDERS	64
static struct sales_order_v1	 orders[BUSPROBE_ORDERS];	/* a ring */

/* Keeps a copy of a payload at least size bytes long in *slot. */
static void
keep(void **slot, const void *payload, size_t len, size_t size,
    long long *count)
{
	if (len < size)
		return;
	if (*slot == NULL && (*slot = malloc(size)) == NULL)
		return;
	memcpy(*slot, payload, size);
	(*count)++;
}

static void
on_order(const char *t, const void *p, size_t len, void *arg)
{
	(void)t;
	(void)arg;
	if (len < sizeof(orders[0]))
		return;
	memcpy(&orders[n_orders % BUSPROBE_ORDERS], p, sizeof(orders[0]));
	n_orders++;
}

static void
on_an2(const char *t, const void *p, size_t len, void *arg)
{
	(void)t;
	(void)arg;
	keep((void **)&an2, p, len, sizeof(*an2), &n_an2);
}

static void
on_an1(const char *t, const void *p, size_t len, void *arg)
{
	(void)t;
	(void)arg;
	keep((void **)&an1, p, len, sizeof(*an1), &n_an1);
}

static void
on_we2(const char *t, const void *p, size_t len, void *arg)
{
	(void)t;
	(void)arg;
	keep((void **)&we2, p, len, sizeof(*we2), &n_we2);
}

static void
on_we1(const char *t, const void *p, size_t len, void *arg)
{
	(void)t;
	(void)arg;
	keep((void **)&we1, p, len, sizeof(*we1), &n_we1);
}

static void
money(struct sales_buf *b, const char *name, const struct sales_money *m)
{
	core->buf_printf(b, ",\"%s\":{\"units\":%lld,\"micros\":%lld}", name,
	    (long long)m->units, (long long)m->micros);
}

static void
str(struct sales_buf *b, const char *name, const char *s, size_t size)
{
	core->buf_printf(b, ",\"%s\":", name);
	core->buf_json_string(b, s, strnlen(s, size));
}

static void
analytics_v2(struct sales_buf *b)
{
	const struct sales_analytics_v2 *a = an2;
	uint32_t i;

	core->buf_printf(b, "{\"as_of_ms\":%lld,\"total_orders\":%lld,"
	    "\"total_quantity\":%lld", (long long)a->as_of_ms,
	    (long long)a->total_orders, (long long)a->total_quantity);
	money(b, "total_revenue", &a->total_revenue);
	core->buf_printf(b, ",\"orders_last_minute\":%lld",
	    (long long)a->orders_last_minute);
	money(b, "revenue_last_minute", &a->revenue_last_minute);
	core->buf_printf(b, ",\"orders_previous_minute\":%lld",
	    (long long)a->orders_previous_minute);
	money(b, "revenue_previous_minute", &a->revenue_previous_minute);
	core->buf_printf(b, ",\"orders_last_hour\":%lld",
	    (long long)a->orders_last_hour);
	money(b, "revenue_last_hour", &a->revenue_last_hour);
	core->buf_printf(b, ",\"ntop\":%u,\"reserved\":%u,\"top\":[",
	    a->ntop, a->reserved);
	for (i = 0; i < a->ntop && i < SALES_TOP_PRODUCTS_MAX; i++) {
		core->buf_printf(b, "%s{\"quantity\":%lld,\"orders\":%lld",
		    i ? "," : "", (long long)a->top[i].quantity,
		    (long long)a->top[i].orders);
		money(b, "revenue", &a->top[i].revenue);
		str(b, "product_id", a->top[i].product_id,
		    sizeof(a->top[i].product_id));
		core->buf_printf(b, "}");
	}
	core->buf_printf(b, "]}");
}

static void
weather_v2(struct sales_buf *b)
{
	const struct sales_weather_v2 *w = we2;
	uint32_t i;

	if (isfinite(w->temperature_c))
		core->buf_printf(b, "{\"temperature_c\":%.10g",
		    w->temperature_c);
	else
		core->buf_printf(b, "{\"temperature_c\":null");
	core->buf_printf(b, ",\"fetched_at_ms\":%lld",
	    (long long)w->fetched_at_ms);
	str(b, "city", w->city, sizeof(w->city));
	str(b, "condition", w->condition, sizeof(w->condition));
	str(b, "source", w->source, sizeof(w->source));
	core->buf_printf(b, ",\"npromotions\":%u,\"promotions\":[",
	    w->npromotions);
	for (i = 0; i < w->npromotions && i < SALES_PROMOTIONS_MAX; i++) {
		core->buf_printf(b, "%s{\"discount_percent\":%d", i ? "," : "",
		    (int)w->promotions[i].discount_percent);
		str(b, "category", w->promotions[i].category,
		    sizeof(w->promotions[i].category));
		str(b, "message", w->promotions[i].message,
		    sizeof(w->promotions[i].message));
		core->buf_printf(b, "}");
	}
	core->buf_printf(b, "]}");
}

/* The orders kept, oldest first. */
static void
order_list(struct sales_buf *b)
{
	const struct sales_order_v1 *o;
	long long first, i;

	core->buf_printf(b, ",\"orders\":[");
	first = n_orders > BUSPROBE_ORDERS ? n_orders - BUSPROBE_ORDERS : 0;
	for (i = first; i < n_orders; i++) {
		o = &orders[i % BUSPROBE_ORDERS];
		core->buf_printf(b, "%s{\"id\":%lld,\"quantity\":%lld,"
		    "\"price_micros\":%lld,\"date_ms\":%lld,"
		    "\"received_at_ms\":%lld", i == first ? "" : ",",
		    (long long)o->id, (long long)o->quantity,
		    (long long)o->price_micros, (long long)o->date_ms,
		    (long long)o->received_at_ms);
		str(b, "product_id", o->product_id, sizeof(o->product_id));
		core->buf_printf(b, "}");
	}
	core->buf_printf(b, "]");
}

static void
busprobe_get(struct sales_request *req, void *arg)
{
	struct sales_buf b = {0};

	(void)arg;
	core->buf_printf(&b, "{\"counts\":{\"order_created\":%lld,"
	    "\"analytics_v2\":%lld,\"analytics_v1\":%lld,"
	    "\"weather_v2\":%lld,\"weather_v1\":%lld}",
	    n_orders, n_an2, n_an1, n_we2, n_we1);
	order_list(&b);
	core->buf_printf(&b, ",\"analytics_v2\":");
	if (an2 != NULL)
		analytics_v2(&b);
	else
		core->buf_printf(&b, "null");
	core->buf_printf(&b, ",\"analytics_v1\":");
	if (an1 != NULL) {
		core->buf_printf(&b, "{\"total_orders\":%lld,\"json\":",
		    (long long)an1->total_orders);
		core->buf_json_string(&b, an1->json, an1->json_len <=
		    sizeof(an1->json) ? an1->json_len : 0);
		core->buf_printf(&b, "}");
	} else
		core->buf_printf(&b, "null");
	core->buf_printf(&b, ",\"weather_v2\":");
	if (we2 != NULL)
		weather_v2(&b);
	else
		core->buf_printf(&b, "null");
	core->buf_printf(&b, ",\"weather_v1\":");
	if (we1 != NULL) {
		core->buf_printf(&b, "{\"source\":");
		core->buf_json_string(&b, we1->source,
		    strnlen(we1->source, sizeof(we1->source)));
		str(&b, "city", we1->city, sizeof(we1->city));
		core->buf_printf(&b, ",\"promotions_json\":");
		core->buf_json_string(&b, we1->promotions_json,
		    we1->promotions_len < sizeof(we1->promotions_json) ?
		    we1->promotions_len : 0);
		core->buf_printf(&b, "}");
	} else
		core->buf_printf(&b, "null");
	core->buf_printf(&b, "}");
	core->http_respond(req, 200, "application/json", b.data, b.len);
	core->buf_free(&b);
}

SALES_MODULE_INIT(c, m)
{
	core = c;
	if (c->bus_subscribe(m, SALES_TOPIC_ORDER_CREATED, on_order,
	    NULL) == -1 ||
	    c->bus_subscribe(m, SALES_TOPIC_ANALYTICS_UPDATED_V2, on_an2,
	    NULL) == -1 ||
	    c->bus_subscribe(m, SALES_TOPIC_ANALYTICS_UPDATED, on_an1,
	    NULL) == -1 ||
	    c->bus_subscribe(m, SALES_TOPIC_WEATHER_UPDATED_V2, on_we2,
	    NULL) == -1 ||
	    c->bus_subscribe(m, SALES_TOPIC_WEATHER_UPDATED, on_we1,
	    NULL) == -1)
		return -1;
	return c->http_route(m, "GET", "/busprobe", busprobe_get, NULL);
}

SALES_MODULE_FINI()
{
	free(an2);
	free(an1);
	free(we2);
	free(we1);
}
