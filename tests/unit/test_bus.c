/*
 * test_bus.c - bus delivery: subscription order, publish order, payload
 * copied at publish time, no re-entrant delivery.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <event2/event.h>

#include "bus.h"
#include "core.h"

static char	trace[512];
static int	depth, max_depth;

static void
on_event(const char *topic, const void *payload, size_t len, void *arg)
{
	depth++;
	if (depth > max_depth)
		max_depth = depth;
	strcat(trace, arg);
	strcat(trace, ":");
	strcat(trace, topic);
	strcat(trace, "=");
	strncat(trace, payload, len);
	strcat(trace, " ");
	if (len == 5 && memcmp(payload, "first", 5) == 0 && *(char *)arg == 'A')
		core_bus_publish("t.one", "nested", 6);
	depth--;
}

static void
test_order_and_copy(void **state)
{
	char payload[16];

	(void)state;
	core_base = event_base_new();
	assert_int_equal(core_bus_init(), 0);
	assert_int_equal(core_bus_subscribe("a", "t.one", on_event, "A"), 0);
	assert_int_equal(core_bus_subscribe("b", "t.one", on_event, "B"), 0);
	assert_int_equal(core_bus_subscribe("b", "t.two", on_event, "B"), 0);
	assert_int_equal(core_bus_subscribe("b", "", on_event, "B"), -1);
	strcpy(payload, "first");
	core_bus_publish("t.one", payload, 5);
	strcpy(payload, "XXXXX");		/* the bus kept its own copy */
	core_bus_publish("t.two", "second", 6);
	core_bus_publish("t.none", "nobody", 6);
	assert_string_equal(trace, "");		/* nothing until the loop runs */
	event_base_loop(core_base, EVLOOP_NONBLOCK);
	event_base_loop(core_base, EVLOOP_NONBLOCK);
	assert_string_equal(trace, "A:t.one=first B:t.one=first B:t.two=second "
	    "A:t.one=nested B:t.one=nested ");
	assert_int_equal(max_depth, 1);
	core_bus_free();
	event_base_free(core_base);
	core_base = NULL;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_copy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
