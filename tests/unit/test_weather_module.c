/*
 * test_weather_module.c - the weather module on the test kit
 * (<sales/testkit.h>), with the upstream answered by the test: no api
 * key (offline promotions, nothing sent upstream); a reading turned
 * into promotions and "weather.updated.v2" (checked field by field);
 * upstream errors and timeouts falling back with the source saying why,
 * retried with backoff on the fake clock; the cache expiring when the
 * clock passes cache_ttl_s, and not before.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <sales/testkit.h>

#define MODULE		SALES_MODULE_DIR "/weather.so"
#define T0		SALES_KIT_EPOCH_MS
#define URL		"http://127.0.0.1:9/owm/weather?q=Paris&units=metric" \
			"&appid=k3y"
#define HOT_RAIN	"{\"main\":{\"temp\":30.5},\"weather\":[{\"main\":" \
			"\"Rain\"}]}"

static struct sales_kit	*kit;

static int
setup(void **state)
{
	(void)state;
	if ((kit = sales_kit_new()) == NULL)
		return -1;
	/* Rules in file order: one needs no weather, two need a reading. */
	return sales_kit_config(kit, "weather", "rule.loyalty",
	    "always | members | 5 | Members always save 5%") |
	    sales_kit_config(kit, "weather", "rule.hot",
	    "hot | cold_drinks | 15 | Hot day: 15% off cold drinks") |
	    sales_kit_config(kit, "weather", "rule.rain",
	    "condition = rain,drizzle | umbrellas | 10 | Rainy day");
}

static int
teardown(void **state)
{
	(void)state;
	sales_kit_free(kit);
	kit = NULL;
	return 0;
}

static void
online(const char *more_key, const char *more_value)
{
	assert_int_equal(sales_kit_config(kit, "weather", "api_key", "k3y"),
	    0);
	assert_int_equal(sales_kit_config(kit, "weather", "city", "Paris"), 0);
	assert_int_equal(sales_kit_config(kit, "weather", "base_url",
	    "http://127.0.0.1:9/owm/"), 0);
	if (more_key != NULL)
		assert_int_equal(sales_kit_config(kit, "weather", more_key,
		    more_value), 0);
	assert_int_equal(sales_kit_load(kit, MODULE), 0);
}

/* The value at path in the reply's JSON, which must be there. */
static const char *
at(const struct sales_kit_reply *r, const char *path)
{
	const char *v = sales_kit_json(kit, r->body, path);

	assert_non_null(v);
	return v;
}

/* The categories of GET /promotions' answer, comma separated. */
static const char *
categories(const struct sales_kit_reply *r)
{
	static char text[256];
	const char *c;
	char path[64];
	size_t n = 0;
	int i;

	text[0] = '\0';
	for (i = 0; i < 64; i++) {
		snprintf(path, sizeof(path), "promotions.%d.category", i);
		if ((c = sales_kit_json(kit, r->body, path)) == NULL)
			break;
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%s",
		    i ? "," : "", c);
		assert_true(n < sizeof(text));
	}
	return text;
}

/* Promotion i of a "weather.updated.v2" payload. */
static void
assert_promotion(const struct sales_weather_v2 *w, int i, int percent,
    const char *category, const char *message)
{
	assert_true((uint32_t)i < w->npromotions);
	assert_int_equal(w->promotions[i].discount_percent, percent);
	assert_string_equal(w->promotions[i].category, category);
	assert_string_equal(w->promotions[i].message, message);
}

static const struct sales_kit_reply *
get_promotions(void)
{
	return sales_kit_request(kit, "GET", "/promotions", NULL, NULL, 0);
}

static const struct sales_weather_v2 *
last_event(void)
{
	const struct sales_kit_event *ev;

	ev = sales_kit_event(kit, SALES_TOPIC_WEATHER_UPDATED_V2, -1);
	assert_non_null(ev);
	assert_int_equal(ev->len, sizeof(struct sales_weather_v2));
	return ev->payload;
}

static void
test_no_api_key_is_offline(void **state)
{
	const struct sales_weather_v2 *w;
	const struct sales_kit_reply *r;

	(void)state;
	assert_int_equal(sales_kit_load(kit, MODULE), 0);
	assert_int_equal(sales_kit_logged(kit, "offline (no api key)"), 1);
	r = get_promotions();
	assert_int_equal(r->status, 200);
	assert_string_equal(at(r, "weather.source"), "no api key");
	assert_string_equal(at(r, "weather.city"), "London");
	assert_string_equal(at(r, "weather.temperatureC"), "null");
	assert_string_equal(at(r, "weather.condition"), "unknown");
	assert_string_equal(at(r, "weather.fetchedAt"), "null");
	assert_string_equal(categories(r), "members");

	/* The first loop turn tells the bus and the clients. */
	assert_int_equal(sales_kit_events(kit, SALES_TOPIC_WEATHER_UPDATED_V2),
	    0);
	sales_kit_run(kit);
	w = last_event();
	assert_true(isnan(w->temperature_c));
	assert_int_equal(w->fetched_at_ms, 0);
	assert_string_equal(w->city, "London");
	assert_string_equal(w->condition, "unknown");
	assert_string_equal(w->source, "no api key");
	assert_int_equal(w->npromotions, 1);
	assert_promotion(w, 0, 5, "members", "Members always save 5%");
	assert_int_equal(sales_kit_frames(kit, "updatePromotions"), 1);
	assert_string_equal(sales_kit_frame(kit, "updatePromotions",
	    -1)->data, get_promotions()->body);

	/* Nothing ever goes upstream, however long it runs. */
	assert_int_equal(sales_kit_advance(kit, 86400000), 0);
	assert_int_equal(sales_kit_calls(kit), 0);
	assert_int_equal(sales_kit_events(kit, SALES_TOPIC_WEATHER_UPDATED_V2),
	    1);
}

static void
test_upstream_reading_gives_promotions(void **state)
{
	const struct sales_kit_reply *waiting, *r;
	const struct sales_kit_call *call;
	const struct sales_weather_v2 *w;

	(void)state;
	online(NULL, NULL);
	sales_kit_run(kit);		/* the first fetch starts */
	assert_int_equal(sales_kit_calls(kit), 1);
	call = sales_kit_call(kit, 0);
	assert_string_equal(call->module, "weather");
	assert_string_equal(call->method, "GET");
	assert_string_equal(call->url, URL);
	assert_int_equal(call->timeout_ms, 3000);

	/* A request meanwhile waits for that fetch: no second call. */
	waiting = get_promotions();
	assert_int_equal(waiting->status, 0);
	assert_int_equal(sales_kit_calls(kit), 1);
	assert_int_equal(sales_kit_answer(kit, call, 200, HOT_RAIN), 0);
	assert_int_equal(waiting->status, 200);
	assert_string_equal(at(waiting, "weather.source"),
	    "openweather");
	assert_string_equal(at(waiting, "weather.temperatureC"), "30.5");
	assert_string_equal(at(waiting, "weather.condition"), "rain");
	assert_string_equal(at(waiting, "weather.fetchedAt"),
	    "2026-01-01T00:00:00.000Z");
	assert_string_equal(categories(waiting),
	    "members,cold_drinks,umbrellas");

	sales_kit_run(kit);
	w = last_event();
	assert_true(w->temperature_c == 30.5);
	assert_int_equal(w->fetched_at_ms, T0);
	assert_string_equal(w->city, "Paris");
	assert_string_equal(w->condition, "rain");
	assert_string_equal(w->source, "openweather");
	assert_int_equal(w->npromotions, 3);
	assert_promotion(w, 0, 5, "members", "Members always save 5%");
	assert_promotion(w, 1, 15, "cold_drinks",
	    "Hot day: 15% off cold drinks");
	assert_promotion(w, 2, 10, "umbrellas", "Rainy day");
	assert_string_equal(w->promotions[3].category, "");	/* zeroed */

	/* Fresh: answered at once from the cache. */
	r = get_promotions();
	assert_int_equal(r->status, 200);
	assert_string_equal(r->body, waiting->body);
	assert_int_equal(sales_kit_calls(kit), 0);
	assert_int_equal(sales_kit_metric(kit,
	    "weather_upstream_requests_total"), 1);
	assert_int_equal(sales_kit_metric(kit,
	    "weather_upstream_errors_total"), 0);
}

static void
test_upstream_error_falls_back(void **state)
{
	const struct sales_kit_reply *r;
	const struct sales_weather_v2 *w;

	(void)state;
	online("retries", "0");
	sales_kit_run(kit);
	r = get_promotions();
	assert_int_equal(sales_kit_answer(kit, sales_kit_call(kit, 0), 500,
	    "oops"), 0);
	assert_int_equal(r->status, 200);
	assert_string_equal(at(r, "weather.source"),
	    "openweather error: HTTP 500 server error");
	assert_string_equal(at(r, "weather.temperatureC"), "null");
	assert_string_equal(categories(r), "members");
	sales_kit_run(kit);
	w = last_event();
	assert_string_equal(w->source, "openweather error: HTTP 500 server "
	    "error");
	assert_true(isnan(w->temperature_c));
	assert_int_equal(w->npromotions, 1);
	assert_int_equal(sales_kit_calls(kit), 0);	/* retries = 0 */
	assert_int_equal(sales_kit_metric(kit,
	    "weather_upstream_errors_total"), 1);
}

static void
test_timeout_retries_with_backoff(void **state)
{
	const struct sales_kit_reply *r;

	(void)state;
	online(NULL, NULL);		/* retries = 2, backoff_ms = 1000 */
	sales_kit_run(kit);
	r = get_promotions();
	assert_int_equal(sales_kit_advance(kit, 2999), 0);
	assert_int_equal(r->status, 0);
	assert_int_equal(sales_kit_advance(kit, 1), 0);	/* timeout_ms */
	assert_int_equal(r->status, 200);
	assert_string_equal(at(r, "weather.source"),
	    "openweather error: timeout");
	assert_string_equal(categories(r), "members");
	assert_string_equal(last_event()->source,
	    "openweather error: timeout");
	assert_int_equal(sales_kit_logged(kit, "city \"Paris\": openweather "
	    "error: timeout (retrying with backoff"), 1);

	/* Retried after 1 s, then 2 s; the same error is not logged again. */
	assert_int_equal(sales_kit_calls(kit), 0);
	assert_int_equal(sales_kit_advance(kit, 1000), 0);
	assert_int_equal(sales_kit_calls(kit), 1);
	assert_int_equal(sales_kit_advance(kit, 3000), 0);
	assert_int_equal(sales_kit_calls(kit), 0);
	assert_int_equal(sales_kit_logged(kit, "error: timeout"), 1);
	assert_int_equal(sales_kit_advance(kit, 2000), 0);
	assert_int_equal(sales_kit_calls(kit), 1);
	assert_int_equal(sales_kit_fail(kit, sales_kit_call(kit, 0),
	    "connection refused"), 0);
	sales_kit_run(kit);
	assert_string_equal(last_event()->source,
	    "openweather error: connection refused");
	assert_int_equal(sales_kit_metric(kit,
	    "weather_upstream_requests_total"), 3);
	assert_int_equal(sales_kit_metric(kit,
	    "weather_upstream_errors_total"), 3);
}

static void
test_cache_expires_with_the_clock(void **state)
{
	const struct sales_kit_reply *r;

	(void)state;
	assert_int_equal(sales_kit_config(kit, "weather", "refresh_interval_s",
	    "0"), 0);
	online("cache_ttl_s", "60");
	sales_kit_run(kit);
	assert_int_equal(sales_kit_answer(kit, sales_kit_call(kit, 0), 200,
	    HOT_RAIN), 0);
	sales_kit_run(kit);
	assert_int_equal(sales_kit_events(kit, SALES_TOPIC_WEATHER_UPDATED_V2),
	    1);

	assert_int_equal(sales_kit_advance(kit, 59999), 0);
	assert_int_equal(get_promotions()->status, 200);
	assert_int_equal(sales_kit_calls(kit), 0);

	assert_int_equal(sales_kit_advance(kit, 1), 0);	/* 60 s: stale */
	r = get_promotions();
	assert_int_equal(r->status, 0);
	assert_int_equal(sales_kit_calls(kit), 1);
	assert_int_equal(sales_kit_answer(kit, sales_kit_call(kit, 0), 200,
	    "{\"main\":{\"temp\":-2},\"weather\":[{\"main\":\"Snow\"}]}"), 0);
	assert_int_equal(r->status, 200);
	assert_string_equal(at(r, "weather.temperatureC"), "-2");
	assert_string_equal(at(r, "weather.fetchedAt"),
	    "2026-01-01T00:01:00.000Z");
	assert_string_equal(categories(r), "members");
	sales_kit_run(kit);
	assert_int_equal(sales_kit_events(kit, SALES_TOPIC_WEATHER_UPDATED_V2),
	    2);
	assert_string_equal(last_event()->condition, "snow");
	assert_int_equal(last_event()->fetched_at_ms, T0 + 60000);
}

static void
test_bad_rule_stops_init(void **state)
{
	(void)state;
	assert_int_equal(sales_kit_config(kit, "weather", "rule.bad",
	    "sometimes | x | 5 | y"), 0);
	assert_int_equal(sales_kit_load(kit, MODULE), -1);
	assert_int_equal(sales_kit_logged(kit, "weather: error: rule "
	    "\"rule.bad\""), 1);
	assert_int_equal(get_promotions()->status, 404);
	assert_int_equal(sales_kit_run(kit), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_api_key_is_offline,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_upstream_reading_gives_promotions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upstream_error_falls_back,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_timeout_retries_with_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_cache_expires_with_the_clock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_rule_stops_init,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
