/*
 * sales/json.h - JSON reading, as the core offers it to modules.
 *
 * core->json_parse() checks that the text is one complete JSON value
 * (RFC 8259, UTF-8) and returns a document whose values are named by
 * token indices: 0 is the root.  Accessors take a token and return -1
 * (or SALES_JSON_INVALID) for anything out of place, so a module can
 * chain lookups and check once.
 *
 * Writing JSON is core->buf_json_string() plus core->buf_printf(), with
 * core->buf_money() for amounts and core->buf_time() (quoted) for times.
 */
#ifndef SALES_JSON_H
#define SALES_JSON_H

#include <sales/types.h>

enum sales_json_type {
	SALES_JSON_INVALID = 0,
	SALES_JSON_OBJECT,
	SALES_JSON_ARRAY,
	SALES_JSON_STRING,
	SALES_JSON_NUMBER,
	SALES_JSON_BOOL,
	SALES_JSON_NULL
};

#endif /* SALES_JSON_H */
