/*
 * ai_tally.c - ai_recommend's own per-product sales figures, kept from
 * "order.created" events: revenue, quantity, orders and "recent" revenue
 * (exponentially decayed, half-life ten minutes), plus a per-minute ring
 * of total revenue for the last hour.  O(1) per order; snapshots sort
 * only when a recommendation is computed.  The figures are for ranking
 * and prompting, not accounting: money is a double here, while exact
 * totals are the analytics module's job.  Nothing here is persisted; the
 * tally starts empty at start-up.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ai_recommend.h"

static uint64_t
tally_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct ai_product *
tally_slot(struct ai_product *slots, size_t cap, const char *id)
{
	size_t i = (size_t)tally_hash(id) & (cap - 1);

	while (slots[i].id[0] != '\0' && strcmp(slots[i].id, id) != 0)
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

static int
tally_grow(struct ai_tally *t)
{
	struct ai_product *ns, *d;
	size_t ncap = t->cap ? t->cap * 2 : 64, i;

	if ((ns = calloc(ncap, sizeof(*ns))) == NULL)
		return -1;
	for (i = 0; i < t->cap; i++) {
		if (t->slots[i].id[0] == '\0')
			continue;
		d = tally_slot(ns, ncap, t->slots[i].id);
		*d = t->slots[i];
	}
	free(t->slots);
	t->slots = ns;
	t->cap = ncap;
	return 0;
}

/* value, decayed from time from_ms to to_ms (either order). */
static double
tally_decay(double value, int64_t from_ms, int64_t to_ms)
{
	return value * exp2(-(double)(to_ms - from_ms) / AI_HALF_LIFE_MS);
}

/* Adds amount at time at to a decayed sum kept as of *as_of. */
static void
tally_recent(double *sum, int64_t *as_of, double amount, int64_t at)
{
	if (*as_of == 0 || at >= *as_of) {
		*sum = tally_decay(*sum, *as_of, at) + amount;
		*as_of = at;
	} else
		*sum += tally_decay(amount, at, *as_of);
}

int
ai_tally_add(struct ai_tally *t, const struct sales_order_v1 *o)
{
	struct ai_product *p;
	double rev = (double)o->price_micros / 1e6 * (double)o->quantity;
	int64_t at = o->received_at_ms, minute = at / 60000;
	size_t slot = (size_t)(minute % AI_MINUTES);

	t->revenue += rev;
	t->orders++;
	t->quantity += o->quantity;
	tally_recent(&t->recent, &t->recent_ms, rev, at);
	if (t->minute_no[slot] != minute) {
		if (t->minute_no[slot] > minute)
			goto product;	/* older than the ring */
		t->minute_no[slot] = minute;
		t->minute_rev[slot] = 0;
	}
	t->minute_rev[slot] += rev;
product:
	if (o->product_id[0] == '\0' ||
	    memchr(o->product_id, '\0', sizeof(o->product_id)) == NULL)
		return 0;
	if ((t->cap == 0 || (t->n + 1) * 10 > t->cap * 7) &&
	    t->n < AI_MAX_PRODUCTS && tally_grow(t) == -1 && t->cap == 0)
		return -1;
	p = tally_slot(t->slots, t->cap, o->product_id);
	if (p->id[0] == '\0') {
		/* Full (or could not grow): count totals, not the product. */
		if (t->n >= AI_MAX_PRODUCTS || (t->n + 1) * 10 > t->cap * 9)
			return -1;
		memcpy(p->id, o->product_id, sizeof(p->id));
		t->n++;
	}
	p->revenue += rev;
	p->quantity += o->quantity;
	p->orders++;
	tally_recent(&p->recent, &p->recent_ms, rev, at);
	return 0;
}

const struct ai_product *
ai_tally_find(const struct ai_tally *t, const char *id)
{
	const struct ai_product *p;

	if (t->cap == 0 || *id == '\0' || strlen(id) >= sizeof(p->id))
		return NULL;
	p = tally_slot(t->slots, t->cap, id);
	return p->id[0] != '\0' ? p : NULL;
}

static double
tally_window(const struct ai_tally *t, int64_t now_ms, int minutes)
{
	int64_t now = now_ms / 60000;
	double sum = 0;
	int i;

	for (i = 0; i < AI_MINUTES; i++)
		if (t->minute_no[i] > now - minutes && t->minute_no[i] <= now)
			sum += t->minute_rev[i];
	return sum;
}

double
ai_tally_last_hour(const struct ai_tally *t, int64_t now_ms)
{
	return tally_window(t, now_ms, AI_MINUTES);
}

double
ai_tally_last_minute(const struct ai_tally *t, int64_t now_ms)
{
	return tally_window(t, now_ms, 1);
}

static int
view_by_revenue(const void *a, const void *b)
{
	const struct ai_view *x = a, *y = b;

	if (x->p->revenue != y->p->revenue)
		return x->p->revenue < y->p->revenue ? 1 : -1;
	return strcmp(x->p->id, y->p->id);
}

static int
view_by_momentum(const void *a, const void *b)
{
	const struct ai_view *x = a, *y = b;

	if (x->momentum != y->momentum)
		return x->momentum < y->momentum ? 1 : -1;
	return strcmp(x->p->id, y->p->id);
}

size_t
ai_tally_views(const struct ai_tally *t, int64_t now_ms, size_t max,
    struct ai_view **out)
{
	struct ai_view *all, tmp;
	double recent_total;
	size_t i, n = 0, k, j, rise;

	*out = NULL;
	if (t->n == 0 || max == 0)
		return 0;
	if ((all = calloc(t->n, sizeof(*all))) == NULL)
		return 0;
	recent_total = tally_decay(t->recent, t->recent_ms, now_ms);
	for (i = 0; i < t->cap; i++) {
		if (t->slots[i].id[0] == '\0')
			continue;
		all[n].p = &t->slots[i];
		all[n].share = t->revenue > 0 ?
		    t->slots[i].revenue / t->revenue : 0;
		all[n].recent_share = recent_total > 0 ?
		    tally_decay(t->slots[i].recent, t->slots[i].recent_ms,
		    now_ms) / recent_total : 0;
		all[n].momentum = all[n].recent_share - all[n].share;
		n++;
	}
	qsort(all, n, sizeof(*all), view_by_revenue);
	if (n <= max) {
		*out = all;
		return n;
	}
	/* Keep about a quarter of the places for risers outside the top. */
	k = max - max / 4;
	qsort(all + k, n - k, sizeof(*all), view_by_momentum);
	for (rise = k, j = k; j < n && rise < max; j++) {
		if (all[j].momentum <= 0)
			break;
		tmp = all[rise];
		all[rise++] = all[j];
		all[j] = tmp;
	}
	/* Fill what risers left with the next best sellers. */
	if (rise < max) {
		qsort(all + rise, n - rise, sizeof(*all), view_by_revenue);
		rise = max;
	}
	*out = all;
	return max;
}

void
ai_tally_free(struct ai_tally *t)
{
	free(t->slots);
	memset(t, 0, sizeof(*t));
}
