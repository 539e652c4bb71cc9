/*
 * badabi - a broken test module: its magic block claims ABI 99.0, as a
 * module built against a future SDK would.  The loader must refuse it
 * naming both versions, before init runs.
 */
#include <stdlib.h>

#include <sales/module.h>

SALES_EXPORT extern const struct sales_module_magic sales_module_magic;
const struct sales_module_magic sales_module_magic = {
	SALES_MODULE_MAGIC_VALUE, (uint32_t)sizeof(struct sales_module_magic),
	99, 0, (uint32_t)sizeof(struct sales_core), SALES_BUILD_FLAGS,
	"badabi", "1.0", NULL
};

SALES_MODULE_INIT(core, self)
{
	(void)core;
	(void)self;
	abort();	/* never reached: the loader refuses the magic */
}
