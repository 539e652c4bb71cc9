/*
 * oldabi - a module as built against ABI 1.3: its magic block says so,
 * and its service table ends before ws_event, so it cannot declare the
 * WebSocket types it sends.  POST /oldabi broadcasts "legacyTick"; a
 * client must still be able to subscribe to it.
 */
#include <stddef.h>

#include <sales/module.h>

static const struct sales_core *core;

SALES_EXPORT extern const struct sales_module_magic sales_module_magic;
const struct sales_module_magic sales_module_magic = {
	/* The block as it was then too: it ended before requirements. */
	SALES_MODULE_MAGIC_VALUE,
	(uint32_t)offsetof(struct sales_module_magic, requirements),
	SALES_ABI_MAJOR, 3, (uint32_t)offsetof(struct sales_core, ws_event),
	SALES_BUILD_FLAGS, "oldabi", "1.0", NULL
};

static void
oldabi_post(struct sales_request *req, void *arg)
{
	(void)arg;
	core->ws_broadcast("legacyTick", "1", 1);
	core->http_respond(req, 202, NULL, "{}", 2);
}

SALES_MODULE_INIT(c, self)
{
	core = c;
	return core->http_route(self, "POST", "/oldabi", oldabi_post, NULL);
}
