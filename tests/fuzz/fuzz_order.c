/*
 * fuzz_order.c - libFuzzer harness for the orders module's validators
 * (modules/orders/orders_parse.c, compiled in): the input is a POST
 * /orders body, parsed by the real core/json.c and checked order by
 * order as the module does, with the real service table.  An order
 * that passes is written back and must read back the same: the
 * writers and the validators agree.  The input's raw bytes also go
 * to the price and date parsers, whose output must round-trip too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "core.h"
#include "json.h"
#include "orders.h"

/* The module's globals (modules/orders/orders.c is not linked in). */
const struct sales_core	*orders_core = &core_api;
struct sales_module	*orders_self;

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Micro-units as the SDK prints them (core->buf_money). */
static int
append_money(struct sales_buf *b, int64_t micros)
{
	struct sales_money m = { micros / 1000000, micros % 1000000 };

	return core_buf_money(b, &m);
}

static int
parse_one(const char *text, size_t len, struct order *o)
{
	struct sales_json *j;
	const char *code;
	char field[80], msg[200];
	int rc;

	if ((j = core_json_parse(text, len)) == NULL)
		return -1;
	rc = orders_parse_order(j, 0, o, field, sizeof(field), &code, msg,
	    sizeof(msg));
	core_json_free(j);
	return rc;
}

/* Writes o as a body with its four fields; it must parse to o again. */
static void
round_trip(const struct order *o)
{
	struct sales_buf b = {0};
	struct sales_json *j;
	struct order back;

	if (core_buf_append(&b, "{\"product_id\":", 14) == -1 ||
	    core_buf_json_string(&b, o->product_id,
	    strlen(o->product_id)) == -1 ||
	    core_buf_printf(&b, ",\"quantity\":%lld,\"price\":",
	    (long long)o->quantity) == -1 ||
	    append_money(&b, o->price_micros) == -1 ||
	    core_buf_printf(&b, ",\"date\":") == -1 ||
	    (o->has_date ? core_buf_json_string(&b, o->date,
	    strlen(o->date)) : core_buf_append(&b, "null", 4)) == -1 ||
	    core_buf_append(&b, "}", 1) == -1)
		abort();
	if (parse_one(b.data, b.len, &back) == -1 ||
	    strcmp(back.product_id, o->product_id) != 0 ||
	    back.quantity != o->quantity ||
	    back.price_micros != o->price_micros ||
	    back.has_date != o->has_date ||
	    (o->has_date && (back.date_ms != o->date_ms ||
	    strcmp(back.date, o->date) != 0)))
		abort();
	/* And the stored form is JSON. */
	b.len = 0;
	if (orders_append_json(&b, 1, o->product_id, strlen(o->product_id),
	    o->quantity, o->price_micros, o->has_date ? o->date : NULL,
	    o->has_date ? strlen(o->date) : 0, o->date_ms) == -1)
		abort();
	if ((j = core_json_parse(b.data, b.len)) == NULL)
		abort();
	core_json_free(j);
	core_buf_free(&b);
}

static void
raw_parsers(const char *s, size_t len)
{
	struct sales_buf b = {0};
	const char *code;
	char msg[200], norm[ORDERS_DATE_MAX], norm2[ORDERS_DATE_MAX];
	int64_t v, w;

	if (orders_parse_price(s, len, &v, &code, msg, sizeof(msg)) == 0) {
		if (v < 0 || v > ORDERS_MAX_PRICE * 1000000 ||
		    append_money(&b, v) == -1 ||
		    orders_parse_price(b.data, b.len, &w, &code, msg,
		    sizeof(msg)) == -1 || w != v)
			abort();
	}
	if (orders_parse_date(s, len, &v, norm, sizeof(norm)) == 0) {
		if (orders_parse_date(norm, strlen(norm), &w, norm2,
		    sizeof(norm2)) == -1 || w != v || strcmp(norm, norm2) != 0)
			abort();
	}
	core_buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct sales_json *j;
	struct order *o;
	const char *code;
	char field[80], msg[200];
	int n, i, tok;

	raw_parsers(text, size);
	if ((j = core_json_parse(text, size)) == NULL)
		return 0;
	n = core_json_type(j, 0) == SALES_JSON_ARRAY ? core_json_len(j, 0) : 1;
	if (n > ORDERS_MAX_BATCH || (o = calloc(1, sizeof(*o))) == NULL) {
		core_json_free(j);
		return 0;
	}
	for (i = 0; i < n; i++) {
		tok = core_json_type(j, 0) == SALES_JSON_ARRAY ?
		    core_json_at(j, 0, i) : 0;
		if (orders_parse_order(j, tok, o, field, sizeof(field), &code,
		    msg, sizeof(msg)) == -1) {
			if (code == NULL || msg[0] == '\0' ||
			    strlen(field) >= sizeof(field))
				abort();
			break;
		}
		round_trip(o);
	}
	free(o);
	core_json_free(j);
	return 0;
}
