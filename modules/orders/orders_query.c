/*
 * orders_query.c - the read routes of the orders module:
 *
 *	GET /orders?limit=&before_id=&product_id=	newest first, one page
 *	GET /orders/{id}				one order or 404
 *
 * Both run as core->store_query() off the loop and answer from the
 * callback.  Pages are keyed by id (before_id), never by offset, so a
 * page costs the same however deep it is.  The order objects are the
 * same bytes POST /orders answered (orders_append_json).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orders.h"

#define ORDERS_PAGE_DEFAULT	50
#define ORDERS_PAGE_MAX		1000
/* Ids one product-filtered page looks through, at most (see below). */
#define ORDERS_SCAN_IDS		100000

#define ORDERS_COLUMNS							\
	"SELECT id, product_id, quantity, COALESCE(price_micros, "	\
	"CAST(round(price * 1000000.0) AS INTEGER)), date, received_at "	\
	"FROM orders"

struct page {
	struct sales_request	*req;
	long long		 limit;
	long long		 floor;		/* lowest id scanned; 0: all */
	char			 sql[512];
	struct sales_value	 params[4];
	size_t			 nparams;
	int			 nconds;
	char			 product[ORDERS_MAX_PRODUCT + 1];
};

/* A decimal integer without sign, 0 to 10^18 - 1; -1 if not. */
static long long
parse_id(const char *s)
{
	long long v = 0;
	size_t i, n = strlen(s);

	if (n < 1 || n > 18)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static int
append_row(struct sales_buf *b, const struct sales_store_result *res,
    size_t r)
{
	const struct sales_core *core = orders_core;
	const struct sales_value *id, *pid, *q, *pm, *date, *ra;
	char num[32];
	const char *ps;
	size_t plen;

	id = core->store_value(res, r, 0);
	pid = core->store_value(res, r, 1);
	q = core->store_value(res, r, 2);
	pm = core->store_value(res, r, 3);
	date = core->store_value(res, r, 4);
	ra = core->store_value(res, r, 5);
	if (pid->type == SALES_VALUE_TEXT) {
		ps = pid->s;
		plen = pid->len;
	} else {
		/* Written by another tool as a number: show it as text. */
		snprintf(num, sizeof(num), "%lld", (long long)pid->i);
		ps = num;
		plen = strlen(num);
	}
	return orders_append_json(b, id->i, ps, plen, q->i, pm->i,
	    date->type == SALES_VALUE_TEXT ? date->s : NULL,
	    date->type == SALES_VALUE_TEXT ? date->len : 0, ra->i);
}

static void
list_cb(const struct sales_store_result *res, const char *err, void *arg)
{
	const struct sales_core *core = orders_core;
	struct page *pg = arg;
	struct sales_buf b = {0};
	size_t r, n, shown;
	int rc = 0;

	if (res == NULL) {
		core->log(orders_self, SALES_LOG_WARN, "cannot list orders: %s",
		    err);
		core->http_error(pg->req, 503, "storage_error",
		    "cannot read the orders; retry later", NULL);
		goto done;
	}
	n = core->store_rows(res);
	shown = n > (size_t)pg->limit ? (size_t)pg->limit : n;
	rc |= core->buf_printf(&b, "{\"orders\":[");
	for (r = 0; r < shown; r++) {
		if (r > 0)
			rc |= core->buf_append(&b, ",", 1);
		rc |= append_row(&b, res, r);
	}
	if (n > shown)
		rc |= core->buf_printf(&b, "],\"next_before_id\":%lld}",
		    (long long)core->store_value(res, shown - 1, 0)->i);
	else if (pg->floor > 1)
		rc |= core->buf_printf(&b, "],\"next_before_id\":%lld}",
		    pg->floor);
	else
		rc |= core->buf_printf(&b, "],\"next_before_id\":null}");
	if (rc != 0)
		core->http_error(pg->req, 503, "no_memory", "out of memory",
		    NULL);
	else
		core->http_respond(pg->req, 200, "application/json", b.data,
		    b.len);
done:
	core->buf_free(&b);
	free(pg);
}

static void
page_run(struct page *pg)
{
	if (orders_core->store_query(pg->sql, pg->params, pg->nparams, list_cb,
	    pg) == -1) {
		orders_core->http_error(pg->req, 503, "shutting_down",
		    "the server is shutting down", NULL);
		free(pg);
	}
}

/* A product never sold needs no scan at all. */
static void
sold_cb(const struct sales_store_result *res, const char *err, void *arg)
{
	const struct sales_core *core = orders_core;
	struct page *pg = arg;
	static const char none[] = "{\"orders\":[],\"next_before_id\":null}";

	if (res == NULL) {
		core->log(orders_self, SALES_LOG_WARN, "cannot list orders: %s",
		    err);
		core->http_error(pg->req, 503, "storage_error",
		    "cannot read the orders; retry later", NULL);
		free(pg);
	} else if (core->store_rows(res) == 0) {
		core->http_respond(pg->req, 200, "application/json", none,
		    sizeof(none) - 1);
		free(pg);
	} else
		page_run(pg);
}

/*
 * Appends "<clause> ?N" to the page's SQL with v as parameter N; a
 * clause given as a condition ("id <") gets WHERE or AND before it.
 */
static void
page_add(struct page *pg, const char *clause, int cond,
    const struct sales_value *v)
{
	size_t used = strlen(pg->sql);

	pg->params[pg->nparams++] = *v;
	snprintf(pg->sql + used, sizeof(pg->sql) - used, "%s%s ?%zu",
	    !cond ? " " : pg->nconds++ ? " AND " : " WHERE ", clause,
	    pg->nparams);
}

static void
page_add_int(struct page *pg, const char *clause, int cond, long long i)
{
	struct sales_value v = { .type = SALES_VALUE_INT, .i = i };

	page_add(pg, clause, cond, &v);
}

void
orders_get_list(struct sales_request *req, void *arg)
{
	const struct sales_core *core = orders_core;
	const char *limit, *before, *product;
	struct sales_value sold;
	struct page *pg;
	long long lim = ORDERS_PAGE_DEFAULT, bid = 0, floor;
	size_t plen = 0;

	(void)arg;
	limit = core->http_query(req, "limit");
	before = core->http_query(req, "before_id");
	product = core->http_query(req, "product_id");
	if (limit != NULL && ((lim = parse_id(limit)) < 1 ||
	    lim > ORDERS_PAGE_MAX)) {
		core->http_error(req, 400, "invalid_parameter",
		    "\"limit\" must be an integer from 1 to 1000", "limit");
		return;
	}
	if (before != NULL && (bid = parse_id(before)) < 1) {
		core->http_error(req, 400, "invalid_parameter",
		    "\"before_id\" must be a positive integer", "before_id");
		return;
	}
	if (product != NULL && ((plen = strlen(product)) < 1 ||
	    plen > ORDERS_MAX_PRODUCT)) {
		core->http_error(req, 400, "invalid_parameter",
		    "\"product_id\" must be 1 to 64 bytes", "product_id");
		return;
	}
	if ((pg = calloc(1, sizeof(*pg))) == NULL) {
		core->http_error(req, 503, "no_memory", "out of memory", NULL);
		return;
	}
	pg->req = req;
	pg->limit = lim;
	snprintf(pg->sql, sizeof(pg->sql), "%s", ORDERS_COLUMNS);
	if (before != NULL)
		page_add_int(pg, "id <", 1, bid);
	if (product == NULL) {
		/* One more than the page tells whether another follows. */
		page_add_int(pg, "ORDER BY id DESC LIMIT", 0, lim + 1);
		page_run(pg);
		return;
	}
	/*
	 * There is no index on product_id (sql/002: it cost the writer a
	 * page per product per commit), so this walks ids newest first.  So
	 * that a rare product cannot make one request read the whole table,
	 * a page looks at no more than ORDERS_SCAN_IDS ids: when it ends
	 * short there, the page may hold fewer than limit orders and
	 * next_before_id says where to go on.
	 */
	memcpy(pg->product, product, plen + 1);
	floor = (before != NULL ? bid : orders_next_id()) - ORDERS_SCAN_IDS;
	if (floor > 1) {
		pg->floor = floor;
		page_add_int(pg, "id >=", 1, floor);
	}
	memset(&sold, 0, sizeof(sold));
	sold.type = SALES_VALUE_TEXT;
	sold.s = pg->product;
	sold.len = plen;
	page_add(pg, "product_id =", 1, &sold);
	page_add_int(pg, "ORDER BY id DESC LIMIT", 0, lim + 1);
	if (core->store_query("SELECT 1 FROM product_totals WHERE "
	    "product_id = ?1", &sold, 1, sold_cb, pg) == -1) {
		core->http_error(req, 503, "shutting_down",
		    "the server is shutting down", NULL);
		free(pg);
	}
}

static void
one_cb(const struct sales_store_result *res, const char *err, void *arg)
{
	const struct sales_core *core = orders_core;
	struct sales_request *req = arg;
	struct sales_buf b = {0};

	if (res == NULL) {
		core->log(orders_self, SALES_LOG_WARN, "cannot read an order: %s",
		    err);
		core->http_error(req, 503, "storage_error",
		    "cannot read the order; retry later", NULL);
		return;
	}
	if (core->store_rows(res) == 0) {
		core->http_error(req, 404, "not_found", "no order has this id",
		    "id");
		return;
	}
	if (append_row(&b, res, 0) == -1)
		core->http_error(req, 503, "no_memory", "out of memory", NULL);
	else
		core->http_respond(req, 200, "application/json", b.data, b.len);
	core->buf_free(&b);
}

void
orders_get_one(struct sales_request *req, void *arg)
{
	const struct sales_core *core = orders_core;
	struct sales_value param;
	long long id;

	(void)arg;
	if ((id = parse_id(core->http_param(req, "id"))) < 0) {
		core->http_error(req, 400, "invalid_parameter",
		    "the order id must be a positive integer", "id");
		return;
	}
	memset(&param, 0, sizeof(param));
	param.type = SALES_VALUE_INT;
	param.i = id;
	if (core->store_query(ORDERS_COLUMNS " WHERE id = ?1", &param, 1,
	    one_cb, req) == -1)
		core->http_error(req, 503, "shutting_down",
		    "the server is shutting down", NULL);
}
