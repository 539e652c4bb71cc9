/*
 * test_analytics_module.c - the analytics module on the test kit
 * (<sales/testkit.h>): analytics.so loaded as the server loads it, on
 * an in-memory database that holds the orders module's tables (its own
 * migrations, sql/orders/).  Start-up figures rebuilt from stored
 * orders; "order.created" events turning into new figures and one
 * coalesced "analytics.updated.v2" (checked field by field) with its
 * "updateAnalytics" frame; the start-up snapshot's watermark, so an
 * order is counted once; the minute windows moving with the clock;
 * bad config and a broken disk stopping init with a clear line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <sales/testkit.h>

#define MODULE		SALES_MODULE_DIR "/analytics.so"
#define MIGRATIONS	SALES_SOURCE_DIR "/sql/orders"
#define T0		SALES_KIT_EPOCH_MS

static struct sales_kit	*kit;

static int
setup(void **state)
{
	(void)state;
	if ((kit = sales_kit_new()) == NULL)
		return -1;
	return sales_kit_migrate(kit, MIGRATIONS);
}

static int
teardown(void **state)
{
	(void)state;
	sales_kit_free(kit);
	kit = NULL;
	return 0;
}

/* An order as the orders module stores it, received at ms. */
static void
store_order(const char *pid, int quantity, const char *price, int64_t ms)
{
	char sql[512];

	snprintf(sql, sizeof(sql), "INSERT INTO orders(product_id, quantity, "
	    "price, price_micros, received_at) VALUES ('%s', %d, %s, "
	    "CAST(round(%s * 1000000) AS INTEGER), %lld)", pid, quantity,
	    price, price, (long long)ms);
	assert_int_equal(sales_kit_sql(kit, sql), 0);
}

/* "order.created", as the orders module publishes it after a commit. */
static void
publish_order(int64_t id, const char *pid, int64_t quantity,
    int64_t price_micros, int64_t ms)
{
	struct sales_order_v1 o;

	memset(&o, 0, sizeof(o));
	o.id = id;
	o.quantity = quantity;
	o.price_micros = price_micros;
	o.date_ms = ms;
	o.received_at_ms = ms;
	snprintf(o.product_id, sizeof(o.product_id), "%s", pid);
	sales_kit_publish(kit, SALES_TOPIC_ORDER_CREATED, &o, sizeof(o));
}

/* GET target: 200 with a JSON body, which it returns. */
static const char *
get(const char *target)
{
	const struct sales_kit_reply *r;

	r = sales_kit_request(kit, "GET", target, NULL, NULL, 0);
	assert_non_null(r);
	assert_int_equal(r->status, 200);
	assert_string_equal(sales_kit_reply_header(r, "Content-Type"),
	    "application/json");
	return r->body;
}

/* The value at path in body (sales_kit_json), which must be there. */
static const char *
at(const char *body, const char *path)
{
	const char *v = sales_kit_json(kit, body, path);

	assert_non_null(v);
	return v;
}

static void
assert_money(struct sales_money m, int64_t units, int64_t micros)
{
	assert_int_equal(m.units, units);
	assert_int_equal(m.micros, micros);
}

static void
test_start_up_figures_from_storage(void **state)
{
	const struct sales_kit_reply *r;
	const char *body;

	(void)state;
	store_order("101", 2, "25.5", T0 - 10000);	/* last minute */
	store_order("102", 1, "10", T0 - 70000);	/* the one before */
	store_order("101", 1, "0.1", T0 - 7200000);	/* two hours ago */
	assert_int_equal(sales_kit_load(kit, MODULE), 0);

	body = get("/analytics");
	assert_string_equal(at(body, "totalRevenue"), "61.1");
	assert_string_equal(at(body, "totalOrders"), "3");
	assert_string_equal(at(body, "totalQuantity"), "4");
	assert_string_equal(at(body, "revenueLastMinute"), "51");
	assert_string_equal(at(body, "orderCountLastMinute"), "1");
	assert_string_equal(at(body, "revenuePreviousMinute"), "10");
	assert_string_equal(at(body, "revenueChangeLastMinute"), "41");
	assert_string_equal(at(body, "asOf"), "2026-01-01T00:00:00.000Z");
	assert_string_equal(at(body, "topProducts.0.product_id"), "101");
	assert_string_equal(at(body, "topProducts.0.revenue"), "51.1");
	assert_string_equal(at(body, "topProducts.0.quantity"), "3");
	assert_string_equal(at(body, "topProducts.0.orders"), "2");
	assert_string_equal(at(body, "topProducts.1.product_id"), "102");
	assert_null(sales_kit_json(kit, body, "topProducts.2"));

	body = get("/analytics?top=1");
	assert_non_null(sales_kit_json(kit, body, "topProducts.0"));
	assert_null(sales_kit_json(kit, body, "topProducts.1"));

	r = sales_kit_request(kit, "GET", "/analytics?top=0", NULL, NULL, 0);
	assert_int_equal(r->status, 400);
	assert_string_equal(at(r->body, "error.field"), "top");
	r = sales_kit_request(kit, "POST", "/analytics", NULL, "{}", 2);
	assert_int_equal(r->status, 405);
	assert_non_null(strstr(sales_kit_reply_header(r, "Allow"), "GET"));
}

static void
test_orders_on_the_bus(void **state)
{
	const struct sales_kit_event *ev;
	const struct sales_analytics_v2 *a;
	const struct sales_kit_frame *f;
	const struct sales_kit_reply *r;

	(void)state;
	assert_int_equal(sales_kit_load(kit, MODULE), 0);
	/* One update right after start-up, with nothing in it. */
	assert_int_equal(sales_kit_events(kit,
	    SALES_TOPIC_ANALYTICS_UPDATED_V2), 0);
	assert_true(sales_kit_run(kit) > 0);
	assert_int_equal(sales_kit_events(kit,
	    SALES_TOPIC_ANALYTICS_UPDATED_V2), 1);
	ev = sales_kit_event(kit, SALES_TOPIC_ANALYTICS_UPDATED_V2, -1);
	assert_int_equal(ev->len, sizeof(*a));
	a = ev->payload;
	assert_int_equal(a->total_orders, 0);
	assert_int_equal(a->ntop, 0);
	assert_int_equal(a->as_of_ms, T0);

	/* Two orders: one update, after broadcast_interval_ms (100). */
	publish_order(1, "101", 2, 25500000, T0);
	publish_order(2, "202", 3, 1000000, T0);
	sales_kit_run(kit);
	assert_int_equal(sales_kit_events(kit,
	    SALES_TOPIC_ANALYTICS_UPDATED_V2), 1);
	assert_int_equal(sales_kit_advance(kit, 99), 0);
	assert_int_equal(sales_kit_events(kit,
	    SALES_TOPIC_ANALYTICS_UPDATED_V2), 1);
	assert_int_equal(sales_kit_advance(kit, 1), 0);
	assert_int_equal(sales_kit_events(kit,
	    SALES_TOPIC_ANALYTICS_UPDATED_V2), 2);

	ev = sales_kit_event(kit, SALES_TOPIC_ANALYTICS_UPDATED_V2, -1);
	assert_int_equal(ev->len, sizeof(*a));
	a = ev->payload;
	assert_int_equal(a->as_of_ms, T0 + 100);
	assert_int_equal(a->total_orders, 2);
	assert_int_equal(a->total_quantity, 5);
	assert_money(a->total_revenue, 54, 0);
	assert_int_equal(a->orders_last_minute, 2);
	assert_money(a->revenue_last_minute, 54, 0);
	assert_int_equal(a->orders_previous_minute, 0);
	assert_money(a->revenue_previous_minute, 0, 0);
	assert_int_equal(a->orders_last_hour, 2);
	assert_money(a->revenue_last_hour, 54, 0);
	assert_int_equal(a->ntop, 2);
	assert_int_equal(a->reserved, 0);
	assert_string_equal(a->top[0].product_id, "101");
	assert_int_equal(a->top[0].quantity, 2);
	assert_int_equal(a->top[0].orders, 1);
	assert_money(a->top[0].revenue, 51, 0);
	assert_string_equal(a->top[1].product_id, "202");
	assert_int_equal(a->top[1].quantity, 3);
	assert_money(a->top[1].revenue, 3, 0);
	assert_string_equal(a->top[2].product_id, "");	/* zeroed */
	/* The deprecated v1 goes with it. */
	assert_int_equal(sales_kit_events(kit,
	    SALES_TOPIC_ANALYTICS_UPDATED), 2);

	/* Clients get the same figures GET /analytics gives. */
	assert_int_equal(sales_kit_frames(kit, "updateAnalytics"), 2);
	f = sales_kit_frame(kit, "updateAnalytics", -1);
	assert_int_equal(f->client, 0);
	r = sales_kit_request(kit, "GET", "/analytics", NULL, NULL, 0);
	assert_string_equal(f->data, r->body);
	assert_int_equal(sales_kit_metric(kit, "analytics_updates_total"), 2);

	/* A client may ask for one now. */
	assert_int_equal(sales_kit_ws_message(kit, sales_kit_ws_connect(kit),
	    "getAnalytics", NULL), 0);
	f = sales_kit_frame(kit, "updateAnalytics", -1);
	assert_int_equal(f->client, 1);
	assert_string_equal(f->data, r->body);
}

static void
test_minute_windows_follow_the_clock(void **state)
{
	const struct sales_analytics_v2 *a;
	const char *body;

	(void)state;
	assert_int_equal(sales_kit_load(kit, MODULE), 0);
	publish_order(1, "101", 2, 25500000, T0);
	assert_int_equal(sales_kit_advance(kit, 30000), 0);
	body = get("/analytics");
	assert_string_equal(at(body, "revenueLastMinute"), "51");
	assert_string_equal(at(body, "revenuePreviousMinute"), "0");
	assert_string_equal(at(body, "asOf"), "2026-01-01T00:00:30.000Z");

	assert_int_equal(sales_kit_advance(kit, 40000), 0);	/* T0 + 70 s */
	body = get("/analytics");
	assert_string_equal(at(body, "revenueLastMinute"), "0");
	assert_string_equal(at(body, "orderCountLastMinute"), "0");
	assert_string_equal(at(body, "revenuePreviousMinute"), "51");
	assert_string_equal(at(body, "revenueChangeLastMinute"), "-51");
	assert_string_equal(at(body, "totalRevenue"), "51");

	/* The next event says the same: the window moved, not the totals. */
	publish_order(2, "102", 1, 500000, T0 + 70000);
	assert_int_equal(sales_kit_advance(kit, 100), 0);
	a = sales_kit_event(kit, SALES_TOPIC_ANALYTICS_UPDATED_V2,
	    -1)->payload;
	assert_int_equal(a->orders_last_minute, 1);
	assert_money(a->revenue_last_minute, 0, 500000);
	assert_int_equal(a->orders_previous_minute, 1);
	assert_money(a->revenue_previous_minute, 51, 0);
	assert_money(a->total_revenue, 51, 500000);

	assert_int_equal(sales_kit_advance(kit, 120000), 0);	/* + 190 s */
	body = get("/analytics");
	assert_string_equal(at(body, "revenueLastMinute"), "0");
	assert_string_equal(at(body, "revenuePreviousMinute"), "0");
	assert_string_equal(at(body, "totalOrders"), "2");
}

/*
 * In a cluster, orders committed by other instances during start-up
 * reach us both in the stored figures and on the feed: the figures and
 * the highest id come from one snapshot, and events up to that id are
 * not counted again.
 */
static void
test_start_up_snapshot_and_feed_count_once(void **state)
{
	const char *body;

	(void)state;
	store_order("101", 2, "25.5", T0 - 10000);	/* id 1 */
	store_order("102", 1, "10", T0 - 5000);		/* id 2 */
	assert_int_equal(sales_kit_sql_int(kit, "SELECT MAX(id) FROM orders"),
	    2);
	assert_int_equal(sales_kit_load(kit, MODULE), 0);
	/* The feed replays what the snapshot held, then a new order. */
	publish_order(1, "101", 2, 25500000, T0 - 10000);
	publish_order(2, "102", 1, 10000000, T0 - 5000);
	publish_order(3, "103", 4, 500000, T0);
	sales_kit_run(kit);

	body = get("/analytics?top=10");
	assert_string_equal(at(body, "totalOrders"), "3");
	assert_string_equal(at(body, "totalQuantity"), "7");
	assert_string_equal(at(body, "totalRevenue"), "63");
	assert_string_equal(at(body, "orderCountLastMinute"), "3");
	assert_string_equal(at(body, "revenueLastMinute"), "63");
	assert_string_equal(at(body, "topProducts.0.product_id"), "101");
	assert_string_equal(at(body, "topProducts.0.orders"), "1");
	assert_string_equal(at(body, "topProducts.2.product_id"), "103");
	assert_string_equal(at(body, "topProducts.2.revenue"), "2");

	/* Stored after the snapshot: only the feed counts it. */
	store_order("104", 1, "1", T0);			/* id 4 */
	publish_order(4, "104", 1, 1000000, T0);
	sales_kit_run(kit);
	body = get("/analytics");
	assert_string_equal(at(body, "totalOrders"), "4");
	assert_string_equal(at(body, "totalRevenue"), "64");
}

static void
test_bad_config_and_storage_stop_init(void **state)
{
	(void)state;
	assert_int_equal(sales_kit_config(kit, "analytics", "top", "0"), 0);
	assert_int_equal(sales_kit_load(kit, MODULE), -1);
	assert_int_equal(sales_kit_logged(kit,
	    "[analytics] top: 0 is out of range (1 to 100)"), 1);
	assert_int_equal(sales_kit_logged(kit,
	    "module \"analytics\": init failed"), 1);
	/* Nothing of it stays registered. */
	assert_int_equal(sales_kit_request(kit, "GET", "/analytics", NULL,
	    NULL, 0)->status, 404);
}

static void
test_broken_disk_stops_init(void **state)
{
	(void)state;
	sales_kit_store_fail(kit, 1, "disk I/O error");
	assert_int_equal(sales_kit_load(kit, MODULE), -1);
	assert_int_equal(sales_kit_logged(kit, "disk I/O error"), 1);
	assert_int_equal(sales_kit_logged(kit, "analytics: error: cannot "
	    "read the orders to rebuild analytics"), 1);
	assert_int_equal(sales_kit_run(kit), 0);	/* no timer left */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_start_up_figures_from_storage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_orders_on_the_bus, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_minute_windows_follow_the_clock, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_start_up_snapshot_and_feed_count_once, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_bad_config_and_storage_stop_init, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken_disk_stops_init,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
