/*
 * test_events.c - the released bus payloads keep their layout: a struct
 * of <sales/events.h> never changes once released, so its size and the
 * offsets of its fields are pinned here (as on LP64, where they were
 * released).  A change that moves them fails this test; a new shape is
 * a new struct and a new topic instead.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sales/events.h>

static void
test_v1_layouts(void **state)
{
	(void)state;
	assert_int_equal(SALES_PRODUCT_ID_SIZE, 68);
	assert_true(SALES_PRODUCT_ID_SIZE > SALES_PRODUCT_ID_MAX);
#if defined(__LP64__)
	assert_int_equal(sizeof(struct sales_order_v1), 112);
	assert_int_equal(offsetof(struct sales_order_v1, product_id), 40);
	assert_int_equal(sizeof(struct sales_analytics_v1), 8256);
	assert_int_equal(offsetof(struct sales_analytics_v1, json), 60);
	assert_int_equal(sizeof(struct sales_weather_v1), 4312);
	assert_int_equal(offsetof(struct sales_weather_v1, source), 144);
	assert_int_equal(offsetof(struct sales_weather_v1, promotions_json),
	    212);
#endif
}

static void
test_v2_layouts(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct sales_money), 16);
#if defined(__LP64__)
	assert_int_equal(sizeof(struct sales_analytics_v2_product), 104);
	assert_int_equal(offsetof(struct sales_analytics_v2, ntop), 112);
	assert_int_equal(offsetof(struct sales_analytics_v2, top), 120);
	assert_int_equal(sizeof(struct sales_analytics_v2), 10520);
	assert_int_equal(sizeof(struct sales_weather_v2_promotion), 232);
	assert_int_equal(offsetof(struct sales_weather_v2, npromotions), 208);
	assert_int_equal(sizeof(struct sales_weather_v2), 15064);
#endif
	/* Room for what the publishers' own limits allow. */
	assert_int_equal(SALES_TOP_PRODUCTS_MAX, 100);
	assert_int_equal(SALES_PROMOTIONS_MAX, 64);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_layouts),
		cmocka_unit_test(test_v2_layouts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
