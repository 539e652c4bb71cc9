/*
 * test_buf.c - buf_money, the one way money is printed: exact decimals
 * as JSON numbers, at the edges of sign, micros and the int64_t range,
 * and reached through the table modules get.
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
#include "core.h"

static const char *
money(struct sales_buf *b, int64_t units, int64_t micros)
{
	struct sales_money m = { units, micros };

	b->len = 0;
	assert_int_equal(core_buf_money(b, &m), 0);
	assert_int_equal(strlen(b->data), b->len);
	return b->data;
}

static void
test_money_exact(void **state)
{
	struct sales_buf b = {0};

	(void)state;
	assert_string_equal(money(&b, 0, 0), "0");
	assert_string_equal(money(&b, 51, 0), "51");
	assert_string_equal(money(&b, 25, 500000), "25.5");
	assert_string_equal(money(&b, 0, 1), "0.000001");
	assert_string_equal(money(&b, 0, 999999), "0.999999");
	assert_string_equal(money(&b, 7, 999999), "7.999999");
	assert_string_equal(money(&b, 0, 100000), "0.1");
	assert_string_equal(money(&b, 100000, 0), "100000");
	assert_string_equal(money(&b, 1000000000, 10), "1000000000.00001");
	core_buf_free(&b);
}

static void
test_money_negative(void **state)
{
	struct sales_buf b = {0};

	(void)state;
	assert_string_equal(money(&b, 0, -250000), "-0.25");
	assert_string_equal(money(&b, -3, 0), "-3");
	assert_string_equal(money(&b, -3, -1), "-3.000001");
	assert_string_equal(money(&b, 0, -999999), "-0.999999");
	/* Signs that disagree, or micros past a unit, are carried. */
	assert_string_equal(money(&b, 1, -250000), "0.75");
	assert_string_equal(money(&b, -1, 250000), "-0.75");
	assert_string_equal(money(&b, 2, 1500000), "3.5");
	assert_string_equal(money(&b, 0, -0), "0");
	core_buf_free(&b);
}

static void
test_money_huge(void **state)
{
	struct sales_buf b = {0};

	(void)state;
	assert_string_equal(money(&b, INT64_MAX, 999999),
	    "9223372036854775807.999999");
	assert_string_equal(money(&b, INT64_MIN, -999999),
	    "-9223372036854775808.999999");
	assert_string_equal(money(&b, INT64_MIN, INT64_MIN),
	    "-9223381260226812662.775808");
	assert_string_equal(money(&b, 0, INT64_MAX),
	    "9223372036854.775807");
	assert_string_equal(money(&b, 1000000000000000LL, 0),
	    "1000000000000000");
	core_buf_free(&b);
}

static void
test_money_appends(void **state)
{
	struct sales_buf b = {0};
	struct sales_money m = { 51, 0 }, n = { 0, 1 };
	int i;

	(void)state;
	assert_int_equal(core_buf_append(&b, "{\"price\":", 9), 0);
	assert_int_equal(core_buf_money(&b, &m), 0);
	assert_int_equal(core_buf_append(&b, "}", 1), 0);
	assert_string_equal(b.data, "{\"price\":51}");
	/* Growth past the first allocation keeps every figure intact. */
	b.len = 0;
	for (i = 0; i < 100; i++)
		assert_int_equal(core_buf_money(&b, &n), 0);
	assert_int_equal(b.len, 800);
	assert_memory_equal(b.data + 792, "0.000001", 8);
	core_buf_free(&b);
}

/* Modules reach it as core->buf_money (ABI 1.5), inside core->size. */
static void
test_money_in_table(void **state)
{
	struct sales_buf b = {0};
	struct sales_money m = { -12, -340000 };

	(void)state;
	assert_true(offsetof(struct sales_core, buf_money) < core_api.size);
	assert_non_null(core_api.buf_money);
	assert_int_equal(core_api.buf_money(&b, &m), 0);
	assert_string_equal(b.data, "-12.34");
	core_api.buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_money_exact),
		cmocka_unit_test(test_money_negative),
		cmocka_unit_test(test_money_huge),
		cmocka_unit_test(test_money_appends),
		cmocka_unit_test(test_money_in_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
