/*
 * failinit - a broken test module: its init registers a route and then
 * fails, as a module with a bad configuration value does.  Start-up must
 * stop with a line naming it.
 */
#include <sales/module.h>

SALES_MODULE_MAGIC("failinit", "1.0");

static void
failinit_get(struct sales_request *req, void *arg)
{
	(void)arg;
	(void)req;
}

SALES_MODULE_INIT(core, self)
{
	long long n;

	core->http_route(self, "GET", "/failinit", failinit_get, NULL);
	/* A required key: [failinit] must_be_positive = -1 makes init fail. */
	if (core->config_int(self, "must_be_positive", -1, 1, 10, &n) == -1)
		return -1;
	if (n < 1) {
		core->log(self, SALES_LOG_ERROR, "\"must_be_positive\" is not set");
		return -1;
	}
	return 0;
}
