/*
 * test_metrics.c - the metrics registry's names: what a module may
 * register, and that no two series can end up with one name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "metrics.h"

static void
test_names(void **state)
{
	char longest[89], over[90];

	(void)state;
	memset(longest, 'a', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = '\0';
	memset(over, 'a', sizeof(over) - 1);
	over[sizeof(over) - 1] = '\0';

	assert_non_null(core_metric_new("t", "good_total", NULL, 0));
	assert_null(core_metric_new("t", "good_total", NULL, 0));
	assert_null(core_metric_new("t", "", NULL, 0));
	assert_null(core_metric_new("t", NULL, NULL, 0));
	assert_null(core_metric_new("t", "Bad", NULL, 0));
	assert_null(core_metric_new("t", "a-b", NULL, 0));
	assert_non_null(core_metric_new("t", longest, NULL, 1));
	/* One more would be cut to the same series: refused. */
	assert_null(core_metric_new("t", over, NULL, 1));
	core_metrics_free();
}

static void
test_render(void **state)
{
	struct sales_buf b = {0};
	struct sales_metric *m;

	(void)state;
	m = core_metric_new("t", "things_total", "things seen", 0);
	core_metric_add(m, 2);
	core_metric_add(NULL, 1);
	core_metrics_render(&b);
	assert_non_null(strstr(b.data, "# HELP salesd_things_total things "
	    "seen\n# TYPE salesd_things_total counter\n"
	    "salesd_things_total 2\n"));
	core_buf_free(&b);
	core_metrics_free();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_render),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
