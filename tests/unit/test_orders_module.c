/*
 * test_orders_module.c - the orders module's feed on the test kit
 * (<sales/testkit.h>): ids chosen by the database come back in the 201,
 * each "newOrder" frame carries the 201's bytes and each
 * "order.created" event its order, in id order; an order another
 * instance committed (a row written behind the module's back) is
 * published before this instance's next one, once; the start-up call
 * of store_watch publishes nothing already stored; an Idempotency-Key
 * retry answers the same bytes, written again from the stored orders.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sales/events.h>
#include <sales/testkit.h>

#define MODULE		SALES_MODULE_DIR "/orders.so"
#define MIGRATIONS	SALES_SOURCE_DIR "/sql/orders"

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

static const struct sales_kit_reply *
post(const char *body, const char *key)
{
	const struct sales_kit_reply *r;
	char hdr[128];
	const char *headers[3] = { "Content-Type: application/json", NULL,
	    NULL };

	if (key != NULL) {
		snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s", key);
		headers[1] = hdr;
	}
	r = sales_kit_request(kit, "POST", "/orders", headers, body,
	    strlen(body));
	assert_non_null(r);
	assert_true(sales_kit_run(kit) >= 0);
	return r;
}

static long long
frame_id(long i)
{
	const struct sales_kit_frame *f = sales_kit_frame(kit, "newOrder", i);

	assert_non_null(f);
	return atoll(sales_kit_json(kit, f->data, "id"));
}

static long long
event_id(long i)
{
	const struct sales_kit_event *e = sales_kit_event(kit,
	    SALES_TOPIC_ORDER_CREATED, i);
	struct sales_order_v1 o;

	assert_non_null(e);
	assert_int_equal(e->len, sizeof(o));
	memcpy(&o, e->payload, sizeof(o));
	return o.id;
}

static void
test_feed_in_id_order(void **state)
{
	const struct sales_kit_reply *r;
	const struct sales_kit_frame *f;
	char body[600];

	(void)state;
	/* Stored before start: not published again. */
	assert_int_equal(sales_kit_sql(kit, "INSERT INTO orders(id, "
	    "product_id, quantity, price, price_micros, received_at) VALUES "
	    "(1, 'old', 1, 1, 1000000, 1)"), 0);
	assert_int_equal(sales_kit_load(kit, MODULE), 0);
	assert_true(sales_kit_run(kit) >= 0);
	assert_int_equal(sales_kit_frames(kit, "newOrder"), 0);

	r = post("{\"product_id\":\"a\",\"quantity\":2,\"price\":25.5}",
	    NULL);
	assert_int_equal(r->status, 201);
	assert_string_equal(sales_kit_json(kit, r->body, "id"), "2");
	assert_string_equal(sales_kit_reply_header(r, "Location"),
	    "/orders/2");
	assert_int_equal(sales_kit_frames(kit, "newOrder"), 1);
	f = sales_kit_frame(kit, "newOrder", 0);
	assert_int_equal(f->len, r->len);
	assert_memory_equal(f->data, r->body, r->len);

	/* Another instance commits id 3: published before our id 4. */
	assert_int_equal(sales_kit_sql(kit, "INSERT INTO orders(id, "
	    "product_id, quantity, price, date, price_micros, received_at) "
	    "VALUES (3, 'other', 1, 0.5, '2026-01-01T00:00:00.000Z', "
	    "500000, 1767225600000)"), 0);
	r = post("[{\"product_id\":\"b\",\"quantity\":1,\"price\":1},"
	    "{\"product_id\":\"c\",\"quantity\":1,\"price\":2}]", NULL);
	assert_int_equal(r->status, 201);
	assert_string_equal(sales_kit_json(kit, r->body, "orders.0.id"), "4");
	assert_string_equal(sales_kit_json(kit, r->body, "orders.1.id"), "5");
	assert_true(sales_kit_run(kit) >= 0);
	assert_int_equal(sales_kit_frames(kit, "newOrder"), 4);
	assert_int_equal(frame_id(0), 2);
	assert_int_equal(frame_id(1), 3);
	assert_int_equal(frame_id(2), 4);
	assert_int_equal(frame_id(3), 5);
	assert_string_equal(sales_kit_json(kit,
	    sales_kit_frame(kit, "newOrder", 1)->data, "product_id"), "other");
	/* The frame of a read row: the very bytes a 201 would have had. */
	snprintf(body, sizeof(body), "%s", sales_kit_json(kit, r->body,
	    "orders.1"));
	f = sales_kit_frame(kit, "newOrder", 3);
	assert_int_equal(f->len, strlen(body));
	assert_memory_equal(f->data, body, f->len);
	assert_int_equal(sales_kit_events(kit, SALES_TOPIC_ORDER_CREATED), 4);
	assert_int_equal(event_id(0), 2);
	assert_int_equal(event_id(1), 3);
	assert_int_equal(event_id(3), 5);
	assert_true(sales_kit_run(kit) >= 0);
	assert_int_equal(sales_kit_frames(kit, "newOrder"), 4);
}

static void
test_idempotent_replay(void **state)
{
	const struct sales_kit_reply *r1, *r2;
	const char *body = "[{\"product_id\":\"k\",\"quantity\":1,"
	    "\"price\":0.1},{\"product_id\":\"k\",\"quantity\":3,"
	    "\"price\":0.2}]";
	char first[1024];

	(void)state;
	assert_int_equal(sales_kit_load(kit, MODULE), 0);
	assert_true(sales_kit_run(kit) >= 0);
	r1 = post(body, "key-1");
	assert_int_equal(r1->status, 201);
	snprintf(first, sizeof(first), "%s", r1->body);
	r2 = post(body, "key-1");
	assert_true(sales_kit_run(kit) >= 0);
	assert_int_equal(r2->status, 201);
	assert_string_equal(r2->body, first);
	assert_string_equal(sales_kit_reply_header(r2, "Location"),
	    "/orders/1");
	assert_string_equal(sales_kit_reply_header(r2,
	    "Idempotent-Replayed"), "true");
	assert_int_equal(sales_kit_sql_int(kit, "SELECT count(*) FROM orders"),
	    2);
	assert_int_equal(sales_kit_frames(kit, "newOrder"), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_feed_in_id_order, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_idempotent_replay, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
