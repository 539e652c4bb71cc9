/*
 * needsecho - a test module that declares it needs the echo test
 * module: the loader must refuse it when echo is missing or listed
 * after it in [modules] load, and load it otherwise.
 */
#include <sales/module.h>

SALES_MODULE_MAGIC_REQUIRES("needsecho", "1.0", "echo");

SALES_MODULE_INIT(core, self)
{
	core->log(self, SALES_LOG_INFO, "echo is there");
	return 0;
}
