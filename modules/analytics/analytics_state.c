/*
 * analytics_state.c - the analytics figures, in memory, updated one
 * order at a time and read by GET /analytics without touching storage.
 *
 * - Totals and per-product figures: a hash table of products (their
 *   number is what a request costs, never the number of orders).  Top
 *   products are picked per request by a bounded insertion (top <= 100).
 * - Last and previous minute: an ordered queue of per-millisecond buckets
 *   of receive time, at most 2 x window_ms of them, with running sums for
 *   each window; moving time forward moves buckets from "last" to
 *   "previous" and drops them after, each bucket once, so a read is
 *   amortised O(1).
 * - Last hour (for "analytics.updated"): 60 per-minute buckets.
 *
 * Loop thread only.  Knows nothing of HTTP, storage or the bus.
 */
#include <stdlib.h>
#include <string.h>

#include "analytics.h"

struct product {
	an_money	revenue;
	int64_t		orders;
	int64_t		quantity;
	uint8_t		len;
	char		id[SALES_PRODUCT_ID_MAX];	/* no NUL */
};

struct bucket {
	an_money	revenue;
	int64_t		ms;
	int64_t		count;
};

struct minute {
	an_money	revenue;
	int64_t		minute;
	int64_t		count;
};

static struct product	*products;
static size_t		 nproducts, capproducts;
static int32_t		*index_;	/* hash -> products[], -1 empty */
static size_t		 capindex;	/* power of two */

static an_money		 total_revenue;
static int64_t		 total_orders, total_quantity;

static struct bucket	*buckets;	/* [head, end) in receive order */
static size_t		 head, end, capbuckets, nprev;
static an_money		 last_rev, prev_rev;
static int64_t		 last_cnt, prev_cnt;
static int64_t		 window, clock_ms;

static struct minute	 hour[60];
static uint64_t		 version;

int
an_state_init(int64_t window_ms)
{
	window = window_ms;
	clock_ms = 0;
	memset(hour, 0, sizeof(hour));
	return 0;
}

void
an_state_free(void)
{
	free(products);
	free(index_);
	free(buckets);
	products = NULL;
	index_ = NULL;
	buckets = NULL;
	nproducts = capproducts = capindex = 0;
	head = end = capbuckets = nprev = 0;
}

static uint32_t
hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static int
index_grow(void)
{
	size_t ncap = capindex ? capindex * 2 : 64, i, j;
	int32_t *ni;

	if ((ni = malloc(ncap * sizeof(*ni))) == NULL)
		return -1;
	for (i = 0; i < ncap; i++)
		ni[i] = -1;
	for (i = 0; i < nproducts; i++) {
		j = hash(products[i].id, products[i].len) & (ncap - 1);
		while (ni[j] != -1)
			j = (j + 1) & (ncap - 1);
		ni[j] = (int32_t)i;
	}
	free(index_);
	index_ = ni;
	capindex = ncap;
	return 0;
}

static struct product *
product_get(const char *pid, size_t len)
{
	struct product *p;
	size_t j, ncap;

	if (len == 0 || len > SALES_PRODUCT_ID_MAX)
		return NULL;
	if (capindex) {
		j = hash(pid, len) & (capindex - 1);
		for (; index_[j] != -1; j = (j + 1) & (capindex - 1)) {
			p = &products[index_[j]];
			if (p->len == len && memcmp(p->id, pid, len) == 0)
				return p;
		}
	}
	/* New product: keep the index at most half full. */
	if ((nproducts + 1) * 2 > capindex && index_grow() == -1)
		return NULL;
	if (nproducts == capproducts) {
		ncap = capproducts ? capproducts * 2 : 64;
		if ((p = realloc(products, ncap * sizeof(*p))) == NULL)
			return NULL;
		products = p;
		capproducts = ncap;
	}
	p = &products[nproducts];
	memset(p, 0, sizeof(*p));
	memcpy(p->id, pid, len);
	p->len = (uint8_t)len;
	j = hash(pid, len) & (capindex - 1);
	while (index_[j] != -1)
		j = (j + 1) & (capindex - 1);
	index_[j] = (int32_t)nproducts++;
	return p;
}

uint64_t
an_version(void)
{
	return version;
}

int
an_add_totals(const char *pid, size_t len, int64_t orders, int64_t quantity,
    an_money revenue)
{
	struct product *p;

	version++;
	if ((p = product_get(pid, len)) == NULL)
		return -1;
	p->orders += orders;
	p->quantity += quantity;
	p->revenue += revenue;
	total_orders += orders;
	total_quantity += quantity;
	total_revenue += revenue;
	return 0;
}

/* Moves the windows to now: last = (now - W, now], previous = (now - 2W, now - W]. */
static void
advance(int64_t now)
{
	struct bucket *b;

	if (now < clock_ms)
		now = clock_ms;		/* the wall clock stepped back */
	clock_ms = now;
	while (head < end && buckets[head].ms <= now - 2 * window) {
		b = &buckets[head++];
		if (nprev > 0) {
			prev_rev -= b->revenue;
			prev_cnt -= b->count;
			nprev--;
		} else {
			last_rev -= b->revenue;
			last_cnt -= b->count;
		}
	}
	while (head + nprev < end && buckets[head + nprev].ms <= now - window) {
		b = &buckets[head + nprev++];
		last_rev -= b->revenue;
		last_cnt -= b->count;
		prev_rev += b->revenue;
		prev_cnt += b->count;
	}
	if (head == end)
		head = end = nprev = 0;
}

int
an_add_window(int64_t ms, int64_t count, an_money revenue)
{
	struct bucket *b;
	size_t pos, ncap;

	version++;
	if (clock_ms == 0)
		clock_ms = an_core->now_ms();
	advance(clock_ms);
	if (ms <= clock_ms - 2 * window)
		return 0;	/* older than both windows */
	/* Usually the newest: search back from the end for its place. */
	for (pos = end; pos > head && buckets[pos - 1].ms > ms; pos--)
		;
	if (pos > head && buckets[pos - 1].ms == ms) {
		b = &buckets[pos - 1];
	} else {
		if (end == capbuckets) {
			if (head > 0) {
				memmove(buckets, buckets + head,
				    (end - head) * sizeof(*buckets));
				end -= head;
				pos -= head;
				head = 0;
			}
			if (end == capbuckets) {
				ncap = capbuckets ? capbuckets * 2 : 1024;
				if ((b = realloc(buckets,
				    ncap * sizeof(*b))) == NULL)
					return -1;
				buckets = b;
				capbuckets = ncap;
			}
		}
		memmove(buckets + pos + 1, buckets + pos,
		    (end - pos) * sizeof(*buckets));
		end++;
		b = &buckets[pos];
		b->ms = ms;
		b->count = 0;
		b->revenue = 0;
		if (ms <= clock_ms - window)
			nprev++;	/* sorted: it lands in the previous part */
	}
	b->count += count;
	b->revenue += revenue;
	if (ms <= clock_ms - window) {
		prev_cnt += count;
		prev_rev += revenue;
	} else {
		last_cnt += count;
		last_rev += revenue;
	}
	return 0;
}

void
an_add_hour(int64_t minute, int64_t count, an_money revenue)
{
	struct minute *m = &hour[((minute % 60) + 60) % 60];

	if (m->minute != minute) {
		if (m->minute > minute && m->count)
			return;		/* an hour old already */
		m->minute = minute;
		m->count = 0;
		m->revenue = 0;
	}
	m->count += count;
	m->revenue += revenue;
}

int
an_add_order(const char *pid, size_t len, int64_t quantity,
    int64_t price_micros, int64_t received_at)
{
	an_money rev = (an_money)quantity * price_micros;

	if (an_add_totals(pid, len, 1, quantity, rev) == -1)
		return -1;
	an_add_hour(received_at >= 0 ? received_at / 60000 : 0, 1, rev);
	return an_add_window(received_at, 1, rev);
}

static int64_t
clamp64(an_money m)
{
	if (m > INT64_MAX)
		return INT64_MAX;
	if (m < INT64_MIN)
		return INT64_MIN;
	return (int64_t)m;
}

/* Exact while the units fit an int64_t (9.2e18), clamped past that. */
static struct sales_money
money(an_money m)
{
	struct sales_money out;

	out.units = clamp64(m / 1000000);
	out.micros = (int64_t)(m % 1000000);
	return out;
}

/* Printed by the SDK, so every figure reads as newOrder's prices do. */
static int
put_money(struct sales_buf *b, an_money m)
{
	struct sales_money out = money(m);

	return an_core->buf_money(b, &out);
}

/* Revenue descending, then product id ascending, so ties are stable. */
static int
better(const struct product *a, const struct product *b)
{
	int c;

	if (a->revenue != b->revenue)
		return a->revenue > b->revenue;
	c = memcmp(a->id, b->id, a->len < b->len ? a->len : b->len);
	return c != 0 ? c < 0 : a->len < b->len;
}

/* The top best sellers into best[], best first; returns how many. */
static int
pick_top(struct product **best, int top)
{
	size_t i;
	int n = 0, j;

	if (top > SALES_TOP_PRODUCTS_MAX)
		top = SALES_TOP_PRODUCTS_MAX;
	for (i = 0; i < nproducts; i++) {
		if (n == top && !better(&products[i], best[n - 1]))
			continue;
		j = n < top ? n++ : n - 1;
		for (; j > 0 && better(&products[i], best[j - 1]); j--)
			best[j] = best[j - 1];
		best[j] = &products[i];
	}
	return n;
}

int
an_json(struct sales_buf *b, int top, int64_t now)
{
	const struct sales_core *core = an_core;
	struct product *best[SALES_TOP_PRODUCTS_MAX];
	int n, j, rc = 0;

	advance(now);
	n = pick_top(best, top);
	rc |= core->buf_printf(b, "{\"totalRevenue\":");
	rc |= put_money(b, total_revenue);
	rc |= core->buf_printf(b, ",\"totalOrders\":%lld,\"totalQuantity\":%lld"
	    ",\"topProducts\":[", (long long)total_orders,
	    (long long)total_quantity);
	for (j = 0; j < n; j++) {
		rc |= core->buf_printf(b, "%s{\"product_id\":", j ? "," : "");
		rc |= core->buf_json_string(b, best[j]->id, best[j]->len);
		rc |= core->buf_printf(b, ",\"revenue\":");
		rc |= put_money(b, best[j]->revenue);
		rc |= core->buf_printf(b, ",\"quantity\":%lld,\"orders\":%lld}",
		    (long long)best[j]->quantity, (long long)best[j]->orders);
	}
	rc |= core->buf_printf(b, "],\"revenueLastMinute\":");
	rc |= put_money(b, last_rev);
	rc |= core->buf_printf(b, ",\"orderCountLastMinute\":%lld"
	    ",\"revenuePreviousMinute\":", (long long)last_cnt);
	rc |= put_money(b, prev_rev);
	rc |= core->buf_printf(b, ",\"orderCountPreviousMinute\":%lld"
	    ",\"revenueChangeLastMinute\":", (long long)prev_cnt);
	rc |= put_money(b, last_rev - prev_rev);
	rc |= core->buf_printf(b, ",\"asOf\":\"");
	rc |= core->buf_time(b, clock_ms);
	rc |= core->buf_printf(b, "\"}");
	return rc ? -1 : 0;
}


static an_money
hour_revenue(int64_t *count)
{
	an_money rev = 0;
	int64_t cur = clock_ms / 60000;
	int i;

	*count = 0;
	for (i = 0; i < 60; i++) {
		if (hour[i].minute > cur - 60 && hour[i].minute <= cur) {
			rev += hour[i].revenue;
			*count += hour[i].count;
		}
	}
	return rev;
}

void
an_snapshot(struct sales_analytics_v1 *ev, int64_t now)
{
	int64_t n;

	advance(now);
	ev->total_orders = total_orders;
	ev->total_quantity = total_quantity;
	ev->revenue_last_minute_micros = clamp64(last_rev);
	ev->orders_last_minute = last_cnt;
	ev->revenue_previous_minute_micros = clamp64(prev_rev);
	ev->revenue_last_hour_micros = clamp64(hour_revenue(&n));
	ev->as_of_ms = clock_ms;
}


void
an_snapshot_v2(struct sales_analytics_v2 *ev, int top, int64_t now)
{
	struct product *best[SALES_TOP_PRODUCTS_MAX];
	int i, n;

	advance(now);
	ev->as_of_ms = clock_ms;
	ev->total_orders = total_orders;
	ev->total_quantity = total_quantity;
	ev->total_revenue = money(total_revenue);
	ev->orders_last_minute = last_cnt;
	ev->revenue_last_minute = money(last_rev);
	ev->orders_previous_minute = prev_cnt;
	ev->revenue_previous_minute = money(prev_rev);
	ev->revenue_last_hour = money(hour_revenue(&ev->orders_last_hour));
	n = pick_top(best, top);
	for (i = 0; i < n; i++) {
		ev->top[i].quantity = best[i]->quantity;
		ev->top[i].orders = best[i]->orders;
		ev->top[i].revenue = money(best[i]->revenue);
		memcpy(ev->top[i].product_id, best[i]->id, best[i]->len);
		ev->top[i].product_id[best[i]->len] = '\0';
	}
	ev->ntop = (uint32_t)n;
}
