/*
 * test_dashboard_abi.c - modules/dashboard on a fake core table: on a
 * core whose table ends before http_route_open (an older 1.x) its init
 * fails with a clear log line instead of calling past the table; on a
 * full table it registers its page routes as open routes, and nothing
 * else.  The module is dlopen()ed, no server runs.
 */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <sales/module.h>

#define DASHBOARD_SO	SALES_TEST_MODULE_DIR "/../modules/dashboard.so"

typedef int (*init_fn)(const struct sales_core *, struct sales_module *);

static char	logged[1024];
static char	routes[1024];

static void
fake_log(struct sales_module *self, enum sales_log_level level,
    const char *fmt, ...)
{
	va_list ap;
	size_t n = strlen(logged);

	(void)self;
	(void)level;
	va_start(ap, fmt);
	vsnprintf(logged + n, sizeof(logged) - n, fmt, ap);
	va_end(ap);
}

static int
fake_route(struct sales_module *self, const char *method,
    const char *pattern, sales_http_handler handler, void *arg)
{
	size_t n = strlen(routes);

	(void)self;
	(void)handler;
	(void)arg;
	snprintf(routes + n, sizeof(routes) - n, "%s %s\n", method, pattern);
	return 0;
}

static int
fake_route_open(struct sales_module *self, const char *pattern,
    sales_http_handler handler, void *arg)
{
	size_t n = strlen(routes);

	(void)self;
	(void)handler;
	assert_non_null(arg);
	snprintf(routes + n, sizeof(routes) - n, "open %s\n", pattern);
	return 0;
}

static init_fn
load(void **handle)
{
	init_fn init;

	*handle = dlopen(DASHBOARD_SO, RTLD_NOW | RTLD_LOCAL);
	assert_non_null(*handle);
	init = (init_fn)dlsym(*handle, "sales_module_init");
	assert_non_null(init);
	return init;
}

static void
test_old_core(void **state)
{
	struct sales_core core;
	void *h;
	init_fn init = load(&h);

	(void)state;
	memset(&core, 0, sizeof(core));
	core.size = offsetof(struct sales_core, http_route_open);
	core.log = fake_log;
	core.http_route = fake_route;
	/* Beyond size: a module that looked would crash here. */
	core.http_route_open = NULL;
	logged[0] = routes[0] = '\0';
	assert_int_equal(init(&core, (struct sales_module *)&core), -1);
	assert_non_null(strstr(logged, "http_route_open"));
	assert_string_equal(routes, "");
	dlclose(h);
}

static void
test_full_core(void **state)
{
	struct sales_core core;
	void *h;
	init_fn init = load(&h);

	(void)state;
	memset(&core, 0, sizeof(core));
	core.size = sizeof(core);
	core.log = fake_log;
	core.http_route = fake_route;
	core.http_route_open = fake_route_open;
	logged[0] = routes[0] = '\0';
	assert_int_equal(init(&core, (struct sales_module *)&core), 0);
	assert_string_equal(routes, "open /\nopen /dashboard/app.js\n"
	    "open /dashboard/style.css\nopen /dashboard/icon.svg\n");
	assert_string_equal(logged, "");
	dlclose(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_old_core),
		cmocka_unit_test(test_full_core),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
