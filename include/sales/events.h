/*
 * sales/events.h - payloads of the bus topics that ship with salesd.
 *
 * These are the contract between modules that never see each other.
 * Each struct is flat (no pointers, no JSON text), so the bus can copy it
 * and a reader needs no parser.  A struct never changes once released: a
 * new shape is a new struct with the next version suffix, published on a
 * topic of its own (the first name plus ".v2", ".v3", ...).  A subscriber
 * thus only ever gets the shape it subscribed for; it still checks
 * len >= sizeof before reading, and ignores a shorter payload.  (Sharing
 * a topic between versions cannot work: a v1 reader's len check lets a
 * longer v2 through and reads it as v1.)
 *
 * Older versions stay published for as long as ABI major 1 lasts, so a
 * module built against an older SDK keeps its events; the bus drops an
 * event nobody subscribed to before copying it, so an unread version
 * costs its publisher one struct per event.  New modules use the newest
 * version.
 *
 * Money is in micro-units (1 = 0.000001 of the currency) or struct
 * sales_money, so that sums stay exact; times are milliseconds since the
 * Unix epoch, UTC.  Strings are NUL-terminated UTF-8 within their
 * buffer; sizes are the constants of <sales/types.h>.  A publisher zeroes
 * the struct first, so unused entries and padding read as 0.
 */
#ifndef SALES_EVENTS_H
#define SALES_EVENTS_H

#include <stdint.h>

#include <sales/types.h>

/* "order.created": one per committed order, in commit order. */
#define SALES_TOPIC_ORDER_CREATED	"order.created"

struct sales_order_v1 {
	int64_t	id;
	int64_t	quantity;
	int64_t	price_micros;		/* unit price */
	int64_t	date_ms;		/* the order's own date */
	int64_t	received_at_ms;		/* when the server received it */
	char	product_id[SALES_PRODUCT_ID_SIZE];
};

/*
 * "analytics.updated.v2": the analytics figures after a change, at most
 * one per broadcast interval, and one when the module starts.  They are
 * the figures of GET /analytics at as_of_ms, with the [analytics] top
 * best sellers (at most SALES_TOP_PRODUCTS_MAX).
 */
#define SALES_TOPIC_ANALYTICS_UPDATED_V2 "analytics.updated.v2"

struct sales_analytics_v2_product {
	int64_t			quantity;
	int64_t			orders;
	struct sales_money	revenue;
	char			product_id[SALES_PRODUCT_ID_SIZE];
};

struct sales_analytics_v2 {
	int64_t			as_of_ms;
	int64_t			total_orders;
	int64_t			total_quantity;
	struct sales_money	total_revenue;
	/* The last window_ms (a minute by default) and the one before. */
	int64_t			orders_last_minute;
	struct sales_money	revenue_last_minute;
	int64_t			orders_previous_minute;
	struct sales_money	revenue_previous_minute;
	/* Orders received in the 60 calendar minutes up to as_of_ms. */
	int64_t			orders_last_hour;
	struct sales_money	revenue_last_hour;
	/* Revenue descending, then product_id ascending. */
	uint32_t		ntop;
	uint32_t		reserved;	/* 0 */
	struct sales_analytics_v2_product top[SALES_TOP_PRODUCTS_MAX];
};

/*
 * "analytics.updated" (deprecated: use analytics.updated.v2): published
 * with every v2 event.  Money is clamped to int64_t; json holds the
 * GET /analytics object when it fits (json_len <= sizeof json: read
 * json_len bytes, as a full buffer has no NUL), else json_len is 0.
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

/*
 * "weather.updated.v2": the weather changed (or its source did), with the
 * promotions the [weather] rules now give, in rule order, one per
 * category: the figures of GET /promotions.
 */
#define SALES_TOPIC_WEATHER_UPDATED_V2	"weather.updated.v2"

struct sales_weather_v2_promotion {
	int32_t	discount_percent;	/* 0 to 100 */
	char	category[SALES_CATEGORY_MAX + 1];
	char	message[SALES_MESSAGE_MAX + 1];
};

struct sales_weather_v2 {
	double	temperature_c;		/* NaN when unknown */
	int64_t	fetched_at_ms;		/* 0 when never fetched */
	char	city[SALES_CITY_SIZE];
	char	condition[SALES_CONDITION_SIZE]; /* "unknown" when unknown */
	char	source[SALES_SOURCE_SIZE];	/* cut short to fit */
	uint32_t npromotions;
	struct sales_weather_v2_promotion promotions[SALES_PROMOTIONS_MAX];
};

/*
 * "weather.updated" (deprecated: use weather.updated.v2): published with
 * every v2 event.  promotions_json holds the GET /promotions object when
 * it fits (promotions_len < sizeof promotions_json), else
 * promotions_len is 0.
 */
#define SALES_TOPIC_WEATHER_UPDATED	"weather.updated"

struct sales_weather_v1 {
	double	temperature_c;		/* NaN when unknown */
	int64_t	fetched_at_ms;		/* 0 when never fetched */
	char	city[SALES_CITY_SIZE];
	char	condition[SALES_CONDITION_SIZE];
	char	source[SALES_SOURCE_SIZE];
	uint32_t promotions_len;
	char	promotions_json[4096];
};

#endif /* SALES_EVENTS_H */
