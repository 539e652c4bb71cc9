/*
 * orders - POST /orders: validate, store durably, answer 201 only after
 * the group commit that holds the orders, then tell everyone through
 * the feed (orders_feed.c): the "newOrder" WebSocket message (the very
 * bytes of the response's order) and one "order.created" bus event per
 * order, in commit order, on every instance of a cluster.
 *
 * Ids are given by the database in the INSERT (max(id) + 1, inside a
 * write transaction that commits alone across the cluster), returned by
 * it, and the 201 is written from them after the commit.  The
 * Idempotency-Key row goes into the same write unit as the orders, so
 * either both are stored or neither; it records the first id (in
 * location) and the count, and a replay writes the answer again from
 * those orders, byte for byte (rows written before ids came from the
 * database hold the answer itself, replayed as it is).
 *
 * Idempotency-Key: a key whose first request is still in flight answers
 * 409; a stored key answers its stored response if the request is the
 * same (hash of method, path and body), 422 if not.  Keys are kept for
 * [orders] idempotency_ttl_s (default 24 h), then deleted by a timer.
 * The key row is a plain INSERT (an expired row of the key deleted just
 * before it), so when another process sharing the database - another
 * instance of a cluster - stored the key first, or races with us for
 * it, the UNIQUE constraint rolls our unit back whole, orders included,
 * and we answer as a retry: the first answer, or 422.
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
	char			 shape[16];	/* idempotency: "@o", "@a<n>" */
	int			 conflict;	/* key taken: looked up again */
	struct post		*next;		/* in-flight chain */
	/* A single order (the usual POST) needs no allocations of its own. */
	struct order		 order1;
	size_t			 span1[2];
};

static int64_t			 last_received;
static long long		 ttl_s;
static struct sales_timer	*expire_timer;
static struct post		*inflight[ORDERS_INFLIGHT_BUCKETS];
static struct sales_metric	*m_created, *m_rejected, *m_replayed;
static int64_t			 warned_ms;	/* last "cannot store" line */
static unsigned long		 unwarned;	/* failures since, not logged */

/* The id: one above the highest, read inside the write transaction. */
static const char sql_insert[] =
    "INSERT INTO orders(id, product_id, quantity, price, date, "
    "price_micros, received_at) VALUES ((SELECT COALESCE(MAX(id), 0) + 1 "
    "FROM orders), ?1, ?2, ?3, ?4, ?5, ?6) RETURNING id";
/*
 * First in the unit, before its orders: the first of them will have
 * the id one above the highest.  response (?4): "@o" for one order
 * object, "@a<n>" for an array of n.
 */
static const char sql_idem_expire[] =
    "DELETE FROM idempotency WHERE key = ?1 AND created_at < ?2";
static const char sql_idem_insert[] =
    "INSERT INTO idempotency(key, request_hash, status, "
    "response, location, created_at) VALUES (?1, ?2, ?3, ?4, "
    "'/orders/' || (SELECT COALESCE(MAX(id), 0) + 1 FROM orders), ?5)";
static const char sql_replay[] =
    "SELECT id, product_id, quantity, price_micros, date, received_at "
    "FROM orders_v1 WHERE id >= ?1 AND id < ?2 ORDER BY id";
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
	return orders_feed_watermark() + 1;
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

/* "/orders/ID" without printf (ids are positive). */
static void orders_location(char *out, size_t outlen, int64_t id);

static void
write_cb(int status, int constraint, const char *err,
    const struct sales_store_result *const *rows, size_t nrows, void *arg)
{
	const struct sales_core *core = orders_core;
	struct post *p = arg;
	const struct sales_value *v;
	int64_t now;
	int i, nkey = 2 * (p->key != NULL);	/* the key's statements first */

	if (status != 0 && constraint && p->key != NULL && !p->conflict) {
		/*
		 * The key, perhaps: another instance stored it since our
		 * look-up, or won a race for it.  Look again and answer
		 * as a retry (lookup_cb); no row: back here, the 503 below.
		 */
		p->conflict = 1;
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
		core->http_error(p->req, 503, "storage_error",
		    "the orders could not be stored; nothing was stored, "
		    "retry later", NULL);
		goto done;
	}
	for (i = 0; i < p->n; i++) {
		v = (size_t)(nkey + i) < nrows ?
		    core->store_value(rows[nkey + i], 0, 0) : NULL;
		if (v == NULL || v->type != SALES_VALUE_INT) {
			core->log(orders_self, SALES_LOG_ERROR, "the database "
			    "returned no id for a stored order");
			core->http_error(p->req, 500, "internal_error", "the "
			    "orders were stored but their ids are unknown; "
			    "see GET /orders", NULL);
			goto done;
		}
		p->orders[i].id = v->i;
	}
	if (orders_append_body(&p->body, p->orders, p->n, p->is_array,
	    p->span) == -1) {
		core->http_error(p->req, 500, "no_memory", "the orders were "
		    "stored but the answer ran out of memory; see GET /orders",
		    NULL);
		goto done;
	}
	orders_location(p->location, sizeof(p->location), p->orders[0].id);
	core->http_add_header(p->req, "Location", p->location);
	core->http_respond(p->req, 201, "application/json", p->body.data,
	    p->body.len);
	core->metric_add(m_created, p->n);
	orders_feed_committed(p->orders, p->n, p->body.data, p->span);
done:
	post_free(p);
}

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

/* Sets receive times, submits one write unit; ids come back with it. */
static void
submit(struct post *p)
{
	const struct sales_core *core = orders_core;
	struct sales_store_stmt *stmts = NULL, stmts1[3];
	struct sales_value *vals = NULL, *v, vals1[6 + 7];
	struct order *o;
	int64_t now;
	int i, nstmt, nkey;

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
		vals = calloc((size_t)p->n * 6 + 7, sizeof(*vals));
		p->span = calloc((size_t)p->n * 2, sizeof(*p->span));
		if (stmts == NULL || vals == NULL || p->span == NULL)
			goto nomem;
	}
	for (i = 0; i < p->n; i++) {
		o = &p->orders[i];
		o->received_at = now;
		if (!o->has_date) {
			o->date_ms = now;
			orders_format_time(now, o->date, sizeof(o->date));
		}
		v = &vals[i * 6];
		v[0].type = SALES_VALUE_TEXT;
		v[0].s = o->product_id;
		v[0].len = strlen(o->product_id);
		v[1].type = SALES_VALUE_INT;
		v[1].i = o->quantity;
		v[2].type = SALES_VALUE_REAL;
		v[2].d = (double)o->price_micros / 1e6;
		v[3].type = SALES_VALUE_TEXT;
		v[3].s = o->date;
		v[3].len = strlen(o->date);
		v[4].type = SALES_VALUE_INT;
		v[4].i = o->price_micros;
		v[5].type = SALES_VALUE_INT;
		v[5].i = o->received_at;
		stmts[nkey + i].sql = sql_insert;
		stmts[nkey + i].params = v;
		stmts[nkey + i].nparams = 6;
	}
	if (p->key != NULL) {
		if (p->is_array)
			snprintf(p->shape, sizeof(p->shape), "@a%d", p->n);
		else
			snprintf(p->shape, sizeof(p->shape), "@o");
		v = &vals[p->n * 6];
		v[0].type = SALES_VALUE_TEXT;
		v[0].s = p->key;
		v[0].len = strlen(p->key);
		v[1].type = SALES_VALUE_TEXT;
		v[1].s = p->hash;
		v[1].len = strlen(p->hash);
		v[2].type = SALES_VALUE_INT;
		v[2].i = 201;
		v[3].type = SALES_VALUE_TEXT;
		v[3].s = p->shape;
		v[3].len = strlen(p->shape);
		v[4].type = SALES_VALUE_INT;
		v[4].i = now;
		/*
		 * First: the key decides before any order is written.  An
		 * expired row of the key gives way; a live one fails us.
		 */
		v[5] = v[0];
		v[6].type = SALES_VALUE_INT;
		v[6].i = now - ttl_s * 1000;
		stmts[0].sql = sql_idem_expire;
		stmts[0].params = &v[5];
		stmts[0].nparams = 2;
		stmts[1].sql = sql_idem_insert;
		stmts[1].params = v;
		stmts[1].nparams = 5;
	}
	if (core->store_write_rows(stmts, (size_t)nstmt, write_cb, p) == -1) {
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

/* A stored answer written again from its orders (see sql_idem_insert). */
static void
replay_cb(const struct sales_store_result *res, const char *err, void *arg)
{
	const struct sales_core *core = orders_core;
	struct post *p = arg;
	struct order *o = NULL;
	size_t r, rows;

	if (res == NULL || (rows = core->store_rows(res)) != (size_t)p->n) {
		if (res == NULL)
			core->log(orders_self, SALES_LOG_WARN, "cannot read the "
			    "orders of an idempotency key: %s", err);
		core->http_error(p->req, 503, "storage_error", res == NULL ?
		    "cannot read the stored answer; retry later" :
		    "the orders of this Idempotency-Key are no longer stored",
		    NULL);
		goto done;
	}
	if ((o = calloc(rows, sizeof(*o))) == NULL)
		goto nomem;
	for (r = 0; r < rows; r++)
		orders_feed_row(res, r, &o[r]);
	if (orders_append_body(&p->body, o, p->n, p->is_array, NULL) == -1)
		goto nomem;
	core->http_add_header(p->req, "Location", p->location);
	core->http_add_header(p->req, "Idempotent-Replayed", "true");
	core->metric_add(m_replayed, 1);
	core->http_respond(p->req, 201, "application/json", p->body.data,
	    p->body.len);
	goto done;
nomem:
	core->http_error(p->req, 503, "no_memory", "out of memory", NULL);
done:
	free(o);
	post_free(p);
}

/*
 * Replays a stored answer: status, Location, response as the row holds
 * them.  Returns 1 when it answered (or will, from a read), 0 when the
 * row is not a stored answer it can replay.  p is freed when it
 * answered.
 */
static int
replay_stored(struct post *p, const struct sales_value *status,
    const struct sales_value *loc, const struct sales_value *resp)
{
	const struct sales_core *core = orders_core;
	struct sales_value params[2];
	char l[64], *end;
	long long first, n;

	if (loc->type == SALES_VALUE_TEXT)
		snprintf(l, sizeof(l), "%.*s", (int)loc->len, loc->s);
	else
		l[0] = '\0';
	if (resp->type != SALES_VALUE_TEXT || resp->len < 2 ||
	    resp->s[0] != '@') {
		/* An answer stored whole (before ids came from the database). */
		if (l[0] != '\0')
			core->http_add_header(p->req, "Location", l);
		core->http_add_header(p->req, "Idempotent-Replayed", "true");
		core->metric_add(m_replayed, 1);
		core->http_respond(p->req, (int)status->i, "application/json",
		    resp->s ? resp->s : "", resp->len);
		post_free(p);
		return 1;
	}
	n = 1;
	if (resp->s[1] == 'a')
		n = strtoll(resp->s + 2, &end, 10);
	if (strncmp(l, "/orders/", 8) != 0 ||
	    (first = strtoll(l + 8, &end, 10)) < 1 || *end != '\0' ||
	    (resp->s[1] != 'a' && resp->s[1] != 'o') || n < 1 ||
	    n > ORDERS_MAX_BATCH)
		return 0;
	/* The retry's body is the same request: same count and shape. */
	p->is_array = resp->s[1] == 'a';
	orders_location(p->location, sizeof(p->location), first);
	memset(params, 0, sizeof(params));
	params[0].type = SALES_VALUE_INT;
	params[0].i = first;
	params[1].type = SALES_VALUE_INT;
	params[1].i = first + n;
	if (n != p->n || core->store_query(sql_replay, params, 2, replay_cb,
	    p) == -1) {
		core->http_error(p->req, 503, "storage_error",
		    "cannot read the stored answer; retry later", NULL);
		post_free(p);
	}
	return 1;
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
		if (p->conflict)	/* not the key: the orders' own */
			write_cb(-1, 1, "a constraint failed, not the "
			    "Idempotency-Key's", NULL, 0, p);
		else
			submit(p);
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
	} else if (replay_stored(p, status, loc, resp))
		return;
	else
		core->http_error(p->req, 500, "internal_error", "the stored "
		    "answer of this Idempotency-Key cannot be read", NULL);
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
	/* Published from here on: what is stored was told before. */
	orders_feed_start(v != NULL && v->type == SALES_VALUE_INT ? v->i : 0);
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
	    NULL) == -1 || c->ws_event(m, "newOrder") == -1 ||
	    c->store_watch(m, orders_feed_watch, NULL) == -1)
		return -1;
	if ((expire_timer = c->timer_add(ORDERS_EXPIRE_MS, 1, expire_keys,
	    NULL)) == NULL)
		return -1;
	c->log(m, SALES_LOG_INFO, "ready, publishing orders above id %lld",
	    (long long)orders_feed_watermark());
	return 0;
}

SALES_MODULE_FINI()
{
	if (expire_timer != NULL)
		orders_core->timer_del(expire_timer);
	expire_timer = NULL;
	orders_feed_stop();
}
