/*
 * sales/events.h - payloads of the bus topics that ship with salesd.
 *
 * These are the contract between modules that never see each other.
 * Each struct is flat (no pointers), so the bus can copy it.  A struct is
 * never changed once released: a new shape is a new struct with the next
 * version suffix, published on the same topic with a different length, so
 * subscribers check len before reading.
 *
 * Money is in micro-units (1 = 0.000001 of the currency) so that sums
 * stay exact; times are milliseconds since the Unix epoch, UTC.
 */
#ifndef SALES_EVENTS_H
#define SALES_EVENTS_H

#include <stdint.h>

/* "order.created": one per committed order, in commit order. */
#define SALES_TOPIC_ORDER_CREATED	"order.created"

struct sales_order_v1 {
	int64_t	id;
	int64_t	quantity;
	int64_t	price_micros;		/* unit price */
	int64_t	date_ms;		/* the order's own date */
	int64_t	received_at_ms;		/* when the server received it */
	char	product_id[68];		/* NUL-terminated, at most 64 bytes */
};

/*
 * "analytics.updated": the analytics figures after a change, at most one
 * per broadcast interval.  json holds the GET /analytics object when it
 * fits (json_len <= sizeof json), else json_len is 0.
 */
#define SALES_TOPIC_ANALYTICS_UPDATED	"analytics.updated"

struct sales_analytics_v1 {
	int64_t	total_orders;
	int64_t	total_quantity;
	int64_t	revenue_last_minute_micros;
	int64_t	orders_last_minute;
	int64_t	revenue_previous_minute_micros;
	int64_t	revenue_last_hour_micros;
	int64_t	as_of_ms;
	uint32_t json_len;
	char	json[8192];
};

/* "weather.updated": the weather changed (or its source did). */
#define SALES_TOPIC_WEATHER_UPDATED	"weather.updated"

struct sales_weather_v1 {
	double	temperature_c;		/* NaN when unknown */
	int64_t	fetched_at_ms;		/* 0 when never fetched */
	char	city[96];
	char	condition[32];		/* "clear", "rain", "snow", ... */
	char	source[64];		/* "openweather", "no api key", ... */
	uint32_t promotions_len;	/* GET /promotions JSON when it fits */
	char	promotions_json[4096];
};

#endif /* SALES_EVENTS_H */
