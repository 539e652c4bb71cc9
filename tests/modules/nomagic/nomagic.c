/*
 * nomagic - a broken test module: it has an init but no magic block, so
 * the loader must refuse it before running any of its code.
 */
#include <sales/module.h>

SALES_MODULE_INIT(core, self)
{
	(void)core;
	(void)self;
	return 0;
}
