/*
 * orders - POST /orders: validate, store durably, answer 201 only after
 * the group commit that holds the orders, then tell everyone: the
 * "newOrder" WebSocket message (the very bytes of the response's order)
 * and one "order.created" bus event per order, in commit order.
 *
 * Ids are assigned here (max(id) + 1 at start-up, then a counter), so
 * the whole response is known before the write and the Idempotency-Key
 * row holding it goes into the same write unit as the orders: either
 * both are stored or neither.  A failed unit leaves a gap in the ids.
 *
 * Idempotency-Key: a key whose first request is still in flight answers
 * 409; a stored key answers its stored response if the request is the
 * same (hash of method, path and body), 422 if not.  Keys are kept for
 * [orders] idempotency_ttl_s (default 24 h), then deleted by a timer.
 * The key row is a plain INSERT, first in the unit (an expired row of
 * the key deleted just before it), so when another process sharing the
 * database - another instance of a cluster - stored the key first, or
 * races with us for it, the UNIQUE constraint rolls our unit back whole,
 * orders included, and we answer as a retry: the first answer, or 422.
 * A unit with a key that fails on the orders' ids instead is submitted
 * once more with fresh ids: the key was still free.
 *
 * The read routes are in orders_query.c, validation in orders_parse.c.
 * This module never sees analytics: it only publishes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orders.h"

SALES_MODULE_MAGIC("orders", "1.0");

#define ORDERS_KEY_MAX		255
#define ORDERS_INFLIGHT_BUCKETS	256
#define ORDERS_EXPIRE_MS	60000
#define ORDERS_WARN_MS		10000	/* between "cannot store" lines */

const struct sales_core		*orders_core;
struct sales_module		*orders_self;

struct post {
	struct sales_request	*req;
	struct order		*orders;
	int			 n;
	int			 is_array;
	char			*key;		/* Idempotency-Key or NULL */
	char			 hash[64];
	struct sales_buf	 body;		/* the 201 body */
	size_t			*span;		/* offset, length of each order */
	char			 location[48];
	int			 conflicts;	/* failed units looked into */
	struct post		*next;		/* in-flight chain */
	/* A single order (the usual POST) needs no allocations of its own. */
	struct order		 order1;
	size_t			 span1[2];
};

static int64_t			 next_id;
static int64_t			 last_received;
static long long		 ttl_s;
static struct sales_timer	*expire_timer;
static struct post		*inflight[ORDERS_INFLIGHT_BUCKETS];
static struct sales_metric	*m_created, *m_rejected, *m_replayed;
static int64_t			 warned_ms;	/* last "cannot store" line */
static unsigned long		 unwarned;	/* failures since, not logged */

static const char sql_insert[] =
    "INSERT INTO orders(id, product_id, quantity, price, date, "
    "price_micros, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char sql_idem_expire[] =
    "DELETE FROM idempotency WHERE key = ?1 AND created_at < ?2";
static const char sql_idem_insert[] =
    "INSERT INTO idempotency(key, request_hash, status, "
    "response, location, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char sql_idem_lookup[] =
    "SELECT request_hash, status, response, location FROM idempotency "
    "WHERE key = ?1 AND created_at >= ?2";

static int	key_lookup(struct post *);

static unsigned
key_bucket(const char *key)
{
	unsigned h = 2166136261u;

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	return h % ORDERS_INFLIGHT_BUCKETS;
}

static struct post *
inflight_find(const char *key)
{
	struct post *p;

	for (p = inflight[key_bucket(key)]; p != NULL; p = p->next)
		if (strcmp(p->key, key) == 0)
			return p;
	return NULL;
}

static void
inflight_remove(struct post *p)
{
	struct post **pp;

	for (pp = &inflight[key_bucket(p->key)]; *pp != NULL;
	    pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			return;
		}
}

int64_t
orders_next_id(void)
{
	return next_id;
}

static void
post_free(struct post *p)
{
	if (p->key != NULL) {
		inflight_remove(p);
		free(p->key);
	}
	orders_core->buf_free(&p->body);
	if (p->span != p->span1)
		free(p->span);
	if (p->orders != &p->order1)
		free(p->orders);
	free(p);
}

/*
 * Two independent 64-bit hashes of the request: a retry must match
 * both, and the lengths, to be taken for the same request.
 */
static void
request_hash(const char *body, size_t len, char *out, size_t outlen)
{
	static const char prefix[] = "POST /orders\n";
	uint64_t h1 = 14695981039346656037ULL, h2 = 0x9e3779b97f4a7c15ULL;
	unsigned char c;
	size_t i, n = sizeof(prefix) - 1 + len;

	for (i = 0; i < n; i++) {
		c = i < sizeof(prefix) - 1 ? (unsigned char)prefix[i] :
		    (unsigned char)body[i - (sizeof(prefix) - 1)];
		h1 = (h1 ^ c) * 1099511628211ULL;
		h2 = ((h2 << 7) | (h2 >> 57)) ^ c;
		h2 *= 0xff51afd7ed558ccdULL;
	}
	snprintf(out, outlen, "%016llx%016llx:%zu", (unsigned long long)h1,
	    (unsigned long long)h2, len);
}

static void
resync_cb(const struct sales_store_result *res, const char *err, void *arg)
{
	const struct sales_value *v;

	(void)arg;
	if (res == NULL) {
		orders_core->log(orders_self, SALES_LOG_WARN,
		    "cannot read the highest order id: %s", err);
		return;
	}
	v = orders_core->store_value(res, 0, 0);
	if (v != NULL && v->type == SALES_VALUE_INT && v->i >= next_id)
		next_id = v->i + 1;
}

static void
write_cb(int status, int constraint, const char *err, void *arg)
{
	const struct sales_core *core = orders_core;
	struct post *p = arg;
	struct sales_order_v1 ev;
	int64_t now;
	size_t len;
	int i;

	if (status != 0 && constraint && p->key != NULL &&
	    p->conflicts < 2) {
		/*
		 * The key, perhaps: another instance stored it since our
		 * look-up, or won a race for it.  Look again and answer
		 * as a retry (lookup_cb); no row: retry_cb, once, then
		 * back here, the 503 below.
		 */
		p->conflicts++;
		if (key_lookup(p) == 0)
			return;
	}
	if (status != 0) {
		/*
		 * While storage is down every POST fails, and the store
		 * logs the fault once: a line per request would bury it.
		 */
		now = core->now_ms();
		if (warned_ms != 0 && now - warned_ms < ORDERS_WARN_MS)
			unwarned++;
		else {
			core->log(orders_self, SALES_LOG_WARN,
			    "cannot store %d order(s): %s (%lu more failed "
			    "since the last such line)", p->n, err ? err : "?",
			    unwarned);
			warned_ms = now;
			unwarned = 0;
		}
		if (constraint) {
			/* Someone else wrote ids: move past them. */
			core->store_query("SELECT MAX(id) FROM orders", NULL, 0,
			    resync_cb, NULL);
		}
		core->http_error(p->req, 503, "storage_error",
		    "the orders could not be stored; nothing was stored, "
		    "retry later", NULL);
		goto done;
	}
	core->http_add_header(p->req, "Location", p->location);
	core->http_respond(p->req, 201, "application/json", p->body.data,
	    p->body.len);
	core->metric_add(m_created, p->n);
	for (i = 0; i < p->n; i++) {
		core->ws_broadcast("newOrder", p->body.data + p->span[2 * i],
		    p->span[2 * i + 1]);
		memset(&ev, 0, sizeof(ev));
		ev.id = p->orders[i].id;
		ev.quantity = p->orders[i].quantity;
		ev.price_micros = p->orders[i].price_micros;
		ev.date_ms = p->orders[i].date_ms;
		ev.received_at_ms = p->orders[i].received_at;
		len = strnlen(p->orders[i].product_id,
		    sizeof(ev.product_id) - 1);
		memcpy(ev.product_id, p->orders[i].product_id, len);
		ev.product_id[len] = '\0';
		core->bus_publish(SALES_TOPIC_ORDER_CREATED, &ev, sizeof(ev));
	}
done:
	post_free(p);
}

/* "/orders/ID" without printf (ids are positive). */
static void
orders_location(char *out, size_t outlen, int64_t id)
{
	char tmp[20];
	size_t n = 0, o = 8;

	memcpy(out, "/orders/", 8);
	do
		tmp[n++] = (char)('0' + id % 10);
	while ((id /= 10) > 0 && n < sizeof(tmp));
	while (n > 0 && o + 1 < outlen)
		out[o++] = tmp[--n];
	out[o] = '\0';
}

/* Assigns ids and times, writes the response, submits one write unit. */
static void
submit(struct post *p)
{
	const struct sales_core *core = orders_core;
	struct sales_store_stmt *stmts = NULL, stmts1[3];
	struct sales_value *vals = NULL, *v, vals1[7 + 8];
	struct order *o;
	int64_t now;
	size_t start;
	int i, rc = 0, nstmt, nkey;

	now = core->now_ms();
	if (now < last_received)
		now = last_received;	/* receive times never go back */
	last_received = now;
	nkey = 2 * (p->key != NULL);	/* the key's statements */
	nstmt = p->n + nkey;
	if (p->n == 1) {
		/* store_write copies what it needs: the stack will do. */
		memset(stmts1, 0, sizeof(stmts1));
		memset(vals1, 0, sizeof(vals1));
		stmts = stmts1;
		vals = vals1;
		p->span = p->span1;
	} else {
		stmts = calloc((size_t)nstmt, sizeof(*stmts));
		vals = calloc((size_t)p->n * 7 + 8, sizeof(*vals));
		p->span = calloc((size_t)p->n * 2, sizeof(*p->span));
		if (stmts == NULL || vals == NULL || p->span == NULL)
			goto nomem;
	}
	if (p->is_array)
		rc |= core->buf_printf(&p->body, "{\"orders\":[");
	for (i = 0; i < p->n; i++) {
		o = &p->orders[i];
		o->id = next_id++;
		o->received_at = now;
		if (!o->has_date) {
			o->date_ms = now;
			orders_format_time(now, o->date, sizeof(o->date));
		}
		if (i > 0)
			rc |= core->buf_append(&p->body, ",", 1);
		start = p->body.len;
		rc |= orders_append_json(&p->body, o->id, o->product_id,
		    strlen(o->product_id), o->quantity, o->price_micros,
		    o->date, strlen(o->date), o->received_at);
		p->span[2 * i] = start;
		p->span[2 * i + 1] = p->body.len - start;

		v = &vals[i * 7];
		v[0].type = SALES_VALUE_INT;
		v[0].i = o->id;
		v[1].type = SALES_VALUE_TEXT;
		v[1].s = o->product_id;
		v[1].len = strlen(o->product_id);
		v[2].type = SALES_VALUE_INT;
		v[2].i = o->quantity;
		v[3].type = SALES_VALUE_REAL;
		v[3].d = (double)o->price_micros / 1e6;
		v[4].type = SALES_VALUE_TEXT;
		v[4].s = o->date;
		v[4].len = strlen(o->date);
		v[5].type = SALES_VALUE_INT;
		v[5].i = o->price_micros;
		v[6].type = SALES_VALUE_INT;
		v[6].i = o->received_at;
		stmts[nkey + i].sql = sql_insert;
		stmts[nkey + i].params = v;
		stmts[nkey + i].nparams = 7;
	}
	if (p->is_array)
		rc |= core->buf_printf(&p->body, "]}");
	if (rc != 0)
		goto nomem;
	orders_location(p->location, sizeof(p->location), p->orders[0].id);
	if (p->key != NULL) {
		v = &vals[p->n * 7];
		v[0].type = SALES_VALUE_TEXT;
		v[0].s = p->key;
		v[0].len = strlen(p->key);
		v[1].type = SALES_VALUE_TEXT;
		v[1].s = p->hash;
		v[1].len = strlen(p->hash);
		v[2].type = SALES_VALUE_INT;
		v[2].i = 201;
		v[3].type = SALES_VALUE_TEXT;
		v[3].s = p->body.data;
		v[3].len = p->body.len;
		v[4].type = SALES_VALUE_TEXT;
		v[4].s = p->location;
		v[4].len = strlen(p->location);
		v[5].type = SALES_VALUE_INT;
		v[5].i = now;
		/*
		 * The key goes first: it decides a race with another
		 * instance (PostgreSQL makes us wait for the other's
		 * commit, then fails us) before any order is written.  An
		 * expired row of the key gives way; a live one fails us.
		 */
		v[6] = v[0];
		v[7].type = SALES_VALUE_INT;
		v[7].i = now - ttl_s * 1000;
		stmts[0].sql = sql_idem_expire;
		stmts[0].params = &v[6];
		stmts[0].nparams = 2;
		stmts[1].sql = sql_idem_insert;
		stmts[1].params = v;
		stmts[1].nparams = 6;
	}
	if (core->store_write(stmts, (size_t)nstmt, write_cb, p) == -1) {
		core->http_error(p->req, 503, "shutting_down",
		    "the server is shutting down; nothing was stored", NULL);
		post_free(p);
	}
	if (stmts != stmts1) {
		free(stmts);
		free(vals);
	}
	return;
nomem:
	if (stmts != stmts1) {
		free(stmts);
		free(vals);
	}
	core->http_error(p->req, 503, "no_memory", "out of memory", NULL);
	post_free(p);
}

/*
 * Our unit lost on the orders' ids, not on the key, which is still free:
 * move past the ids another instance took and submit once more, as the
 * client's own retry with the key would.  A second loss answers 503.
 */
static void
retry_cb(const struct sales_store_result *res, const char *err, void *arg)
{
	struct post *p = arg;

	resync_cb(res, err, NULL);
	p->body.len = 0;
	if (p->span != p->span1)
		free(p->span);
	p->span = NULL;
	submit(p);
}

static void
lookup_cb(const struct sales_store_result *res, const char *err, void *arg)
{
	const struct sales_core *core = orders_core;
	struct post *p = arg;
	const struct sales_value *hash, *status, *resp, *loc;

	if (res == NULL) {
		core->log(orders_self, SALES_LOG_WARN,
		    "cannot look up an idempotency key: %s", err);
		core->http_error(p->req, 503, "storage_error",
		    "cannot check the Idempotency-Key; retry later", NULL);
		post_free(p);
		return;
	}
	if (core->store_rows(res) == 0) {
		if (p->conflicts == 0)
			submit(p);
		else if (p->conflicts > 1 || core->store_query("SELECT "
		    "MAX(id) FROM orders", NULL, 0, retry_cb, p) == -1)
			write_cb(-1, 1, "a constraint failed, not the "
			    "Idempotency-Key's", p);
		return;
	}
	hash = core->store_value(res, 0, 0);
	status = core->store_value(res, 0, 1);
	resp = core->store_value(res, 0, 2);
	loc = core->store_value(res, 0, 3);
	if (hash->type != SALES_VALUE_TEXT || hash->len != strlen(p->hash) ||
	    memcmp(hash->s, p->hash, hash->len) != 0) {
		core->http_error(p->req, 422, "idempotency_key_reused",
		    "this Idempotency-Key was used for a different request",
		    "Idempotency-Key");
	} else {
		if (loc->type == SALES_VALUE_TEXT) {
			char l[64];

			snprintf(l, sizeof(l), "%.*s", (int)loc->len, loc->s);
			core->http_add_header(p->req, "Location", l);
		}
		core->http_add_header(p->req, "Idempotent-Replayed", "true");
		core->metric_add(m_replayed, 1);
		core->http_respond(p->req, (int)status->i, "application/json",
		    resp->s ? resp->s : "", resp->len);
	}
	post_free(p);
}

/* The stored answer of p's key, if still kept: to lookup_cb. */
static int
key_lookup(struct post *p)
{
	struct sales_value params[2];

	memset(params, 0, sizeof(params));
	params[0].type = SALES_VALUE_TEXT;
	params[0].s = p->key;
	params[0].len = strlen(p->key);
	params[1].type = SALES_VALUE_INT;
	params[1].i = orders_core->now_ms() - ttl_s * 1000;
	return orders_core->store_query(sql_idem_lookup, params, 2, lookup_cb,
	    p);
}

static int
key_ok(const char *key)
{
	size_t i, n = strlen(key);

	if (n < 1 || n > ORDERS_KEY_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (key[i] < 0x20 || key[i] > 0x7e)
			return 0;
	return 1;
}

static void
reject(struct sales_request *req, const char *code, const char *msg,
    const char *field)
{
	orders_core->metric_add(m_rejected, 1);
	orders_core->http_error(req, 400, code, msg, field);
}

static void
orders_post(struct sales_request *req, void *arg)
{
	const struct sales_core *core = orders_core;
	struct sales_json *json = NULL;
	struct post *p = NULL;
	const char *body, *key, *code;
	char field[128], sub[80], msg[200];
	size_t len;
	int i, el, n;

	(void)arg;
	body = core->http_body(req, &len);
	key = core->http_header(req, "Idempotency-Key");
	if (key != NULL && !key_ok(key)) {
		reject(req, "invalid_header", "\"Idempotency-Key\" must be 1 to "
		    "255 printable ASCII characters", "Idempotency-Key");
		return;
	}
	if (len == 0 || (json = core->json_parse(body, len)) == NULL) {
		reject(req, "invalid_json", len == 0 ? "the body is empty" :
		    "the body is not valid JSON", NULL);
		return;
	}
	switch (core->json_type(json, 0)) {
	case SALES_JSON_OBJECT:
		n = 1;
		break;
	case SALES_JSON_ARRAY:
		n = core->json_len(json, 0);
		if (n < 1 || n > ORDERS_MAX_BATCH) {
			snprintf(msg, sizeof(msg), "an array must hold 1 to %d "
			    "orders", ORDERS_MAX_BATCH);
			reject(req, n < 1 ? "empty_array" : "too_many_orders",
			    msg, NULL);
			goto done;
		}
		break;
	default:
		reject(req, "invalid_body", "the body must be an order object "
		    "or an array of orders", NULL);
		goto done;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		goto nomem;
	if (n == 1)
		p->orders = &p->order1;
	else if ((p->orders = calloc((size_t)n, sizeof(*p->orders))) == NULL)
		goto nomem;
	p->req = req;
	p->n = n;
	p->is_array = core->json_type(json, 0) == SALES_JSON_ARRAY;
	for (i = 0; i < n; i++) {
		el = p->is_array ? core->json_at(json, 0, i) : 0;
		if (orders_parse_order(json, el, &p->orders[i], sub,
		    sizeof(sub), &code, msg, sizeof(msg)) == -1) {
			if (!p->is_array)
				snprintf(field, sizeof(field), "%s", sub);
			else if (sub[0] != '\0')
				snprintf(field, sizeof(field), "orders[%d].%s",
				    i, sub);
			else
				snprintf(field, sizeof(field), "orders[%d]", i);
			reject(req, code, msg, field[0] ? field : NULL);
			goto done;
		}
	}
	core->json_free(json);
	json = NULL;
	if (key == NULL) {
		submit(p);
		return;
	}
	if (inflight_find(key) != NULL) {
		core->http_error(req, 409, "idempotency_in_progress",
		    "a request with this Idempotency-Key is still in progress; "
		    "retry later", "Idempotency-Key");
		goto done;
	}
	if ((p->key = strdup(key)) == NULL)
		goto nomem;
	request_hash(body, len, p->hash, sizeof(p->hash));
	p->next = inflight[key_bucket(key)];
	inflight[key_bucket(key)] = p;
	if (key_lookup(p) == -1) {
		core->http_error(req, 503, "shutting_down",
		    "the server is shutting down; nothing was stored", NULL);
		post_free(p);
	}
	return;
nomem:
	core->http_error(req, 503, "no_memory", "out of memory", NULL);
done:
	if (json != NULL)
		core->json_free(json);
	if (p != NULL)
		post_free(p);
}

static void
expire_write_cb(int status, int constraint, const char *err, void *arg)
{
	(void)constraint;
	(void)arg;
	if (status != 0)
		orders_core->log(orders_self, SALES_LOG_WARN,
		    "cannot expire idempotency keys: %s", err ? err : "?");
}

/* Deletes keys older than the TTL: one small write unit a minute. */
static void
expire_keys(void *arg)
{
	struct sales_store_stmt st;
	struct sales_value v;

	(void)arg;
	memset(&v, 0, sizeof(v));
	v.type = SALES_VALUE_INT;
	v.i = orders_core->now_ms() - ttl_s * 1000;
	st.sql = "DELETE FROM idempotency WHERE created_at < ?1";
	st.params = &v;
	st.nparams = 1;
	orders_core->store_write(&st, 1, expire_write_cb, NULL);
}

SALES_MODULE_INIT(c, m)
{
	struct sales_store_result *res;
	const struct sales_value *v;

	orders_core = c;
	orders_self = m;
	if (c->config_int(m, "idempotency_ttl_s", 86400, 60, 30LL * 86400,
	    &ttl_s) == -1)
		return -1;
	res = c->store_query_sync("SELECT MAX(id) FROM orders", NULL, 0);
	if (res == NULL) {
		c->log(m, SALES_LOG_ERROR, "cannot read table \"orders\" "
		    "(the storage error above says why)");
		return -1;
	}
	v = c->store_rows(res) ? c->store_value(res, 0, 0) : NULL;
	next_id = v != NULL && v->type == SALES_VALUE_INT ? v->i + 1 : 1;
	c->store_result_free(res);
	m_created = c->metric_counter(m, "orders_created_total",
	    "orders durably stored");
	m_rejected = c->metric_counter(m, "orders_rejected_total",
	    "POST /orders requests refused as invalid");
	m_replayed = c->metric_counter(m, "orders_idempotent_replays_total",
	    "POST /orders answered from a stored Idempotency-Key");
	if (m_created == NULL || m_rejected == NULL || m_replayed == NULL)
		return -1;
	if (c->http_route(m, "POST", "/orders", orders_post, NULL) == -1 ||
	    c->http_route(m, "GET", "/orders", orders_get_list, NULL) == -1 ||
	    c->http_route(m, "GET", "/orders/{id}", orders_get_one,
	    NULL) == -1 || c->ws_event(m, "newOrder") == -1)
		return -1;
	if ((expire_timer = c->timer_add(ORDERS_EXPIRE_MS, 1, expire_keys,
	    NULL)) == NULL)
		return -1;
	c->log(m, SALES_LOG_INFO, "ready, next order id %lld",
	    (long long)next_id);
	return 0;
}

SALES_MODULE_FINI()
{
	if (expire_timer != NULL)
		orders_core->timer_del(expire_timer);
	expire_timer = NULL;
}
