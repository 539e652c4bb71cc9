/*
 * test_hello - hello's unit test, on the salesd test kit (sales/testkit.h):
 * no server, no socket, no sleep.  The kit loads hello.so as salesd
 * would and plays the core: the test sets the config, publishes orders
 * on the bus and calls GET /hello.  `make check` builds and runs it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sales/testkit.h>

static void
check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "test_hello: FAILED: %s\n", what);
		exit(1);
	}
}

static void
test_counts_orders(void)
{
	struct sales_kit *kit = sales_kit_new();
	struct sales_order_v1 order;
	const struct sales_kit_reply *r;

	check(kit != NULL, "a kit");
	sales_kit_config(kit, "hello", "greeting", "hi");
	check(sales_kit_load(kit, "./hello.so") == 0, "hello.so loads");

	r = sales_kit_request(kit, "GET", "/hello", NULL, NULL, 0);
	check(r->status == 200, "GET /hello answers 200");
	check(strcmp(r->body, "{\"greeting\":\"hi\",\"orders\":0,"
	    "\"quantity\":0}") == 0, "nothing counted yet");

	memset(&order, 0, sizeof(order));
	order.id = 1;
	order.quantity = 2;
	snprintf(order.product_id, sizeof(order.product_id), "101");
	sales_kit_publish(kit, SALES_TOPIC_ORDER_CREATED, &order,
	    sizeof(order));
	sales_kit_run(kit);	/* the bus delivers on the loop */
	r = sales_kit_request(kit, "GET", "/hello", NULL, NULL, 0);
	check(strcmp(r->body, "{\"greeting\":\"hi\",\"orders\":1,"
	    "\"quantity\":2}") == 0, "one order of 2 counted");

	r = sales_kit_request(kit, "POST", "/hello", NULL, "{}", 2);
	check(r->status == 405, "only GET is routed");
	sales_kit_free(kit);	/* runs fini, unloads hello.so */
}

static void
test_bad_greeting_stops_init(void)
{
	struct sales_kit *kit = sales_kit_new();

	check(kit != NULL, "a kit");
	sales_kit_config(kit, "hello", "greeting", "");
	check(sales_kit_load(kit, "./hello.so") == -1, "init refuses");
	check(sales_kit_logged(kit, "hello: error: [hello] greeting: "
	    "must be 1 to 64 bytes") == 1, "init says why");
	sales_kit_free(kit);
}

int
main(void)
{
	test_counts_orders();
	test_bad_greeting_stops_init();
	printf("test_hello: ok\n");
	return 0;
}
