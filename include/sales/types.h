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
