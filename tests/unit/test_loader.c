/*
 * test_loader.c - the module loader's refusals, each naming the module:
 * missing file, bad name, no magic, wrong ABI, failing init, duplicates;
 * the magic checks one by one; a good module loading and finalising,
 * by name and by path; and a failed init's timers and subscriptions
 * undone, so that none of them ever runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>

#include "bus.h"
#include "config.h"
#include "core.h"
#include "metrics.h"
#include "module.h"
#include "router.h"
#include "timer.h"
#include "ws.h"
#include "unit.h"

static struct core_config *cfg;

static int
setup(void **state)
{
	char *dir = unit_tmpdir(), err[256];

	(void)state;
	core_base = event_base_new();
	core_bus_init();
	cfg = core_config_load(unit_write_file(dir, "sales.ini",
	    "[failinit]\nmust_be_positive = -5\n"), err, sizeof(err));
	return cfg ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	core_ws_shutdown();
	core_bus_free();
	core_router_free();
	core_metrics_free();
	core_config_free(cfg);
	event_base_free(core_base);
	return 0;
}

/* Loads list and returns what was logged; the load must fail. */
static char *
load_fails(const char *list)
{
	int rc;

	unit_capture_begin();
	rc = core_modules_load(cfg, SALES_TEST_MODULE_DIR, list);
	assert_int_equal(rc, -1);
	assert_int_equal(core_modules_count(), 0);
	return unit_capture_end();
}

static void
test_refusals(void **state)
{
	struct core_route_match m;

	(void)state;
	assert_non_null(strstr(load_fails("missing"),
	    "module \"missing\": cannot load"));
	/* A path: relative to the config's directory, named by its file. */
	assert_non_null(strstr(load_fails("../echo"),
	    "module \"echo\": cannot load \"/"));
	assert_non_null(strstr(load_fails("/x/Bad-Name.so"),
	    "module \"Bad-Name\": invalid name"));
	assert_non_null(strstr(load_fails("x/.so"), "invalid name"));
	assert_non_null(strstr(load_fails("Echo"), "invalid name"));
	assert_non_null(strstr(load_fails("nomagic"),
	    "module \"nomagic\": no magic block"));
	assert_non_null(strstr(load_fails("badabi"),
	    "module \"badabi\": ABI mismatch (server 1.6, module 99.0)"));
	assert_non_null(strstr(load_fails("failinit"),
	    "module \"failinit\": init failed"));
	/* What the failed init registered was undone. */
	assert_int_equal(core_router_match("GET", "/failinit", &m),
	    CORE_ROUTE_NOT_FOUND);
	assert_non_null(strstr(load_fails("echo echo"),
	    "module \"echo\": listed twice"));
}

static void
test_magic_checks(void **state)
{
	struct sales_module_magic mg = {
		SALES_MODULE_MAGIC_VALUE, sizeof(mg), SALES_ABI_MAJOR,
		SALES_ABI_MINOR, sizeof(struct sales_core), SALES_BUILD_FLAGS,
		"x", "1", NULL
	};
	char why[256];

	(void)state;
	assert_int_equal(core_module_check_magic("x", &mg, why, sizeof(why)), 0);
	mg.name = "y";
	assert_int_equal(core_module_check_magic("x", &mg, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "calls itself \"y\""));
	mg.name = "x";
	mg.core_size += 8;
	assert_int_equal(core_module_check_magic("x", &mg, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "newer core"));
	mg.core_size -= 16;		/* an older, smaller table is fine */
	assert_int_equal(core_module_check_magic("x", &mg, why, sizeof(why)), 0);
	mg.build_flags ^= 1;
	assert_int_equal(core_module_check_magic("x", &mg, why, sizeof(why)), -1);
	mg.build_flags ^= 1;
	mg.abi_minor = SALES_ABI_MINOR + 1;
	assert_int_equal(core_module_check_magic("x", &mg, why, sizeof(why)), -1);
	mg.abi_minor = SALES_ABI_MINOR;
	/* A block from before requirements was appended is fine. */
	mg.size = offsetof(struct sales_module_magic, requirements);
	assert_int_equal(core_module_check_magic("x", &mg, why, sizeof(why)),
	    0);
	mg.size -= 1;
	assert_int_equal(core_module_check_magic("x", &mg, why, sizeof(why)),
	    -1);
	mg.size = sizeof(mg);
	mg.magic ^= 1;
	assert_int_equal(core_module_check_magic("x", &mg, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "bad magic"));
}

static void
test_good_module(void **state)
{
	struct core_route_match m;
	char *log;

	(void)state;
	unit_capture_begin();
	assert_int_equal(core_modules_load(cfg, SALES_TEST_MODULE_DIR,
	    " echo, "), 0);
	assert_int_equal(core_modules_count(), 1);
	assert_string_equal(core_modules_name(0), "echo");
	assert_string_equal(core_modules_version(0), "1.0");
	assert_int_equal(core_router_match("GET", "/echo", &m), CORE_ROUTE_FOUND);
	core_route_match_free(&m);
	core_modules_fini();
	log = unit_capture_end();
	assert_non_null(strstr(log, "module \"echo\" 1.0 loaded"));
	assert_non_null(strstr(log, "echo: finalised"));
	assert_int_equal(core_modules_count(), 0);

	/* The same module by path, as load = /opt/acme/echo.so would. */
	assert_int_equal(core_modules_load(cfg, "/nonexistent",
	    SALES_TEST_MODULE_DIR "/echo.so"), 0);
	assert_string_equal(core_modules_name(0), "echo");
	core_modules_fini();
}

static void
control_fire(void *arg)
{
	(*(int *)arg)++;
}

static void
test_failed_init_undone(void **state)
{
	struct core_route_match m;
	struct sales_order_v1 o;
	struct sales_timer *t;
	char *log;
	int i, fired = 0;

	(void)state;
	assert_non_null(strstr(load_fails("failtimer"),
	    "module \"failtimer\": init failed"));
	assert_int_equal(core_router_match("GET", "/failtimer", &m),
	    CORE_ROUTE_NOT_FOUND);
	assert_int_equal(core_timer_forget("failtimer"), 0);
	/*
	 * Run the loop past its timers (0 ms, and 1 ms repeating), with a
	 * timer of our own to show the loop does run them, and an event
	 * it had subscribed to.
	 */
	memset(&o, 0, sizeof(o));
	t = core_timer_add(0, 0, control_fire, &fired);
	assert_non_null(t);
	unit_capture_begin();
	core_bus_publish(SALES_TOPIC_ORDER_CREATED, &o, sizeof(o));
	for (i = 0; i < 5; i++) {
		usleep(2000);
		event_base_loop(core_base, EVLOOP_NONBLOCK);
	}
	log = unit_capture_end();
	core_timer_del(t);
	assert_int_equal(fired, 1);
	assert_null(strstr(log, "timer fired"));
	assert_null(strstr(log, "event delivered"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_magic_checks),
		cmocka_unit_test(test_good_module),
		cmocka_unit_test(test_failed_init_undone),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
