/*
 * sales/types.h - the plain types shared by every part of the SDK.
 *
 * Everything here is data: the core's services that use these types are
 * the function pointers of struct sales_core in <sales/module.h>.
 * Nothing here exposes the core's internals.
 */
#ifndef SALES_TYPES_H
#define SALES_TYPES_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Opaque handles.  Their layout is the core's business. */
struct sales_module;		/* a loaded module: name + its sales.ini section */
struct sales_request;		/* one HTTP request awaiting its response */
struct sales_timer;		/* a one-shot or repeating timer on the loop */
struct sales_json;		/* a parsed JSON document */
struct sales_store_result;	/* rows returned by a storage query */

/*
 * Sizes shared by the bus payloads (<sales/events.h>) and the modules
 * that fill or read them.  A _MAX is the most bytes of text, without the
 * NUL; a _SIZE is the buffer a payload gives it, NUL included.  Released
 * payload structs are sized by these, so they never change: a longer
 * limit needs new constants and a new payload version.
 */
#define SALES_PRODUCT_ID_MAX	64	/* product_id: 1 to 64 bytes */
#define SALES_PRODUCT_ID_SIZE	68	/* NUL, padded to 4 bytes */
#define SALES_CITY_SIZE		96	/* weather: the configured city */
#define SALES_CONDITION_SIZE	32	/* "clear", "rain", "snow", ... */
#define SALES_SOURCE_SIZE	64	/* "openweather", "no api key", ... */
#define SALES_CATEGORY_MAX	64	/* promotion category, [a-z0-9_-] */
#define SALES_MESSAGE_MAX	160	/* promotion message, UTF-8 bytes */
#define SALES_TOP_PRODUCTS_MAX	100	/* top products an event carries */
#define SALES_PROMOTIONS_MAX	64	/* promotions an event carries */

/*
 * An exact amount of money: units + micros / 1e6 of the currency, both
 * with the amount's sign (-0.25 is {0, -250000}), |micros| < 1000000.
 * Sums of many orders outgrow an int64_t of micro-units; this does not
 * (up to 9.2e18 units).
 */
struct sales_money {
	int64_t	units;
	int64_t	micros;
};

/* Log levels, most severe first; the core drops what is below its level. */
enum sales_log_level {
	SALES_LOG_ERROR = 0,
	SALES_LOG_WARN,
	SALES_LOG_INFO,
	SALES_LOG_DEBUG
};

/*
 * A growable byte buffer, used to build response bodies and messages.
 * Zero-initialise it ({0}); the core's buf_* services grow it; release
 * it with core->buf_free().  data is always NUL-terminated after any
 * append, so it can be used as a C string when it holds text.
 */
struct sales_buf {
	char	*data;
	size_t	 len;
	size_t	 cap;
};

#endif /* SALES_TYPES_H */
