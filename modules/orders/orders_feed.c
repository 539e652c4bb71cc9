/*
 * orders_feed.c - telling everyone of every committed order, once each
 * and in id order, whichever instance of the cluster stored it: the
 * "newOrder" WebSocket message and the "order.created" bus event.
 *
 * Ids are given by the database inside the write transaction, and write
 * transactions commit one at a time across the cluster, so id order is
 * commit order and an id is visible only once every smaller one is.
 * The feed keeps a watermark, the highest id it has published.  After
 * this instance's own commit whose first id is watermark + 1 it
 * publishes from memory at once (the one-instance case: no read at
 * all).  Otherwise, and whenever the core says another instance
 * committed or commits may have gone unseen (start-up, a reconnect of
 * its listener), it reads orders_v1 above the watermark in id order, a
 * batch at a time, until it is caught up.  Whatever the timing, an id
 * at or below the watermark is never published again and none above it
 * is skipped.
 *
 * It does not store, answer requests, or know the idempotency rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orders.h"

#define FEED_BATCH	1000	/* rows per catch-up read */
#define FEED_RETRY_MS	1000	/* a failed read is tried again */

static int64_t	wm;		/* highest id published */
static int	reading;	/* a catch-up read is in flight */
static int	again;		/* something may be new since it started */
static int	failing;	/* reads fail: logged once, retried */
static struct sales_timer *retry;

static const char sql_feed[] =
    "SELECT id, product_id, quantity, price_micros, date, received_at "
    "FROM orders_v1 WHERE id > ?1 ORDER BY id LIMIT ?2";

static void	feed_read(void);

void
orders_feed_start(int64_t max_id)
{
	wm = max_id;
	reading = again = failing = 0;
	retry = NULL;
}

void
orders_feed_stop(void)
{
	if (retry != NULL)
		orders_core->timer_del(retry);
	retry = NULL;
}

static void
feed_retry(void *arg)
{
	(void)arg;
	retry = NULL;
	feed_read();
}

/*
 * A read that failed (the database restarting, a reader connection
 * found dead) is tried again by itself: no later commit may come to
 * start one, and what is above the watermark must still be published.
 */
static void
feed_failed(void)
{
	if (retry == NULL)
		retry = orders_core->timer_add(FEED_RETRY_MS, 0, feed_retry,
		    NULL);
}

int64_t
orders_feed_watermark(void)
{
	return wm;
}

/* The WebSocket message (json: the order as the API shows it), the event. */
static void
publish(const struct order *o, const char *json, size_t len)
{
	const struct sales_core *core = orders_core;
	struct sales_order_v1 ev;
	size_t n;

	core->ws_broadcast("newOrder", json, len);
	memset(&ev, 0, sizeof(ev));
	ev.id = o->id;
	ev.quantity = o->quantity;
	ev.price_micros = o->price_micros;
	ev.date_ms = o->date_ms;
	ev.received_at_ms = o->received_at;
	n = strnlen(o->product_id, sizeof(ev.product_id) - 1);
	memcpy(ev.product_id, o->product_id, n);
	ev.product_id[n] = '\0';
	core->bus_publish(SALES_TOPIC_ORDER_CREATED, &ev, sizeof(ev));
	wm = o->id;
}

void
orders_feed_committed(const struct order *orders, int n, const char *body,
    const size_t *span)
{
	int i;

	for (i = 0; i < n; i++)
		if (orders[i].id != wm + 1 + i)
			break;
	if (i < n) {
		/* Another instance's orders came first: read them in order. */
		orders_feed_poke();
		return;
	}
	for (i = 0; i < n; i++)
		publish(&orders[i], body + span[2 * i], span[2 * i + 1]);
}

int
orders_append_body(struct sales_buf *b, const struct order *o, int n,
    int is_array, size_t *span)
{
	const struct sales_core *core = orders_core;
	size_t start;
	int i, rc = 0;

	if (is_array)
		rc |= core->buf_append(b, "{\"orders\":[", 11);
	for (i = 0; i < n; i++) {
		if (i > 0)
			rc |= core->buf_append(b, ",", 1);
		start = b->len;
		rc |= orders_append_json(b, o[i].id, o[i].product_id,
		    strlen(o[i].product_id), o[i].quantity, o[i].price_micros,
		    o[i].date[0] != '\0' ? o[i].date : NULL, strlen(o[i].date),
		    o[i].received_at);
		if (span != NULL) {
			span[2 * i] = start;
			span[2 * i + 1] = b->len - start;
		}
	}
	if (is_array)
		rc |= core->buf_append(b, "]}", 2);
	return rc ? -1 : 0;
}

/* An order from a row of sql_feed (or ORDERS_COLUMNS' shape). */
int
orders_feed_row(const struct sales_store_result *res, size_t r,
    struct order *o)
{
	const struct sales_core *core = orders_core;
	const struct sales_value *pid, *date;
	char norm[ORDERS_DATE_MAX];
	size_t n;

	memset(o, 0, sizeof(*o));
	o->id = core->store_value(res, r, 0)->i;
	pid = core->store_value(res, r, 1);
	o->quantity = core->store_value(res, r, 2)->i;
	o->price_micros = core->store_value(res, r, 3)->i;
	date = core->store_value(res, r, 4);
	o->received_at = core->store_value(res, r, 5)->i;
	if (pid->type == SALES_VALUE_TEXT) {
		n = pid->len < sizeof(o->product_id) - 1 ? pid->len :
		    sizeof(o->product_id) - 1;
		memcpy(o->product_id, pid->s, n);
		o->product_id[n] = '\0';
	} else
		snprintf(o->product_id, sizeof(o->product_id), "%lld",
		    (long long)pid->i);
	o->date_ms = o->received_at;
	if (date->type == SALES_VALUE_TEXT) {
		o->has_date = 1;
		n = date->len < sizeof(o->date) - 1 ? date->len :
		    sizeof(o->date) - 1;
		memcpy(o->date, date->s, n);
		o->date[n] = '\0';
		(void)orders_parse_date(date->s, date->len, &o->date_ms, norm,
		    sizeof(norm));
	}
	return 0;
}

static void
feed_cb(const struct sales_store_result *res, const char *err, void *arg)
{
	const struct sales_core *core = orders_core;
	struct sales_buf b = {0};
	struct order o;
	size_t r, rows;

	(void)arg;
	reading = 0;
	if (res == NULL) {
		if (!failing)
			core->log(orders_self, SALES_LOG_WARN, "cannot read "
			    "new orders above id %lld: %s; trying again every "
			    "%d s", (long long)wm, err, FEED_RETRY_MS / 1000);
		failing = 1;
		feed_failed();
		return;
	}
	if (failing)
		core->log(orders_self, SALES_LOG_INFO, "reading new orders "
		    "again");
	failing = 0;
	rows = core->store_rows(res);
	for (r = 0; r < rows; r++) {
		orders_feed_row(res, r, &o);
		if (o.id <= wm)
			continue;	/* published meanwhile, from memory */
		b.len = 0;
		if (orders_append_body(&b, &o, 1, 0, NULL) == -1) {
			core->log(orders_self, SALES_LOG_WARN, "out of memory "
			    "publishing order %lld", (long long)o.id);
			again = 1;
			break;
		}
		publish(&o, b.data, b.len);
	}
	core->buf_free(&b);
	if (rows == FEED_BATCH || again)
		feed_read();
}

static void
feed_read(void)
{
	const struct sales_core *core = orders_core;
	struct sales_value p[2];

	if (reading) {
		again = 1;
		return;
	}
	memset(p, 0, sizeof(p));
	p[0].type = SALES_VALUE_INT;
	p[0].i = wm;
	p[1].type = SALES_VALUE_INT;
	p[1].i = FEED_BATCH;
	again = 0;
	if (core->store_query(sql_feed, p, 2, feed_cb, NULL) == 0)
		reading = 1;
	else
		feed_failed();	/* a full queue */
}

void
orders_feed_poke(void)
{
	feed_read();
}

/* store_watch: only this instance's commits, already published. */
void
orders_feed_watch(int others, void *arg)
{
	(void)arg;
	if (others)
		feed_read();
}
