/*
 * ai_fallback.c - the local, rule-based recommender that answers when no
 * model can: no api key, an upstream error or timeout, or a malformed
 * answer.  It ranks the sold products by
 *
 *	score = revenue share + 2 x max(momentum, 0) + 0.15 x weather fit
 *
 * where momentum is the product's share of recent (ten-minute half-life)
 * revenue minus its share of all revenue, and weather fit is 1 when the
 * product id names something the current weather sells (cold drinks on a
 * hot day, umbrellas in rain, ...; wet and temperature both count: hot at
 * 25 C and above, cold at 10 C and below).  Each pick gets one action:
 * "promote" (weather fit), "restock" (rising), "discount" (cooling), or
 * "feature" (steady seller).  It never calls the network and never
 * names a product that was not sold.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ai_recommend.h"

#define AI_MOMENTUM_STEP	0.05

/* Words in a product id that suit a kind of weather. */
static const char *const fit_hot[] = { "cold", "ice", "iced", "cool",
	"drink", "water", "juice", "soda", "lemonade", "beer", "sorbet",
	"gelato", "smoothie", "fan", "sunscreen", "sunglass", "hat", NULL };
static const char *const fit_cold[] = { "hot", "coffee", "tea", "cocoa",
	"chocolate", "soup", "warm", "scarf", "glove", "coat", "heater",
	"blanket", "wool", NULL };
static const char *const fit_rain[] = { "umbrella", "rain", "poncho",
	"boot", "coat", "jacket", "delivery", NULL };

struct pick {
	const struct ai_view	*v;
	double			 score;
	const char		*fit;		/* phrase of the fitting weather */
};

static int
fit_any(const char *id, const char *const *words)
{
	char low[SALES_PRODUCT_ID_SIZE];
	size_t i;

	for (i = 0; id[i] && i + 1 < sizeof(low); i++)
		low[i] = (id[i] >= 'A' && id[i] <= 'Z') ? id[i] + 32 : id[i];
	low[i] = '\0';
	for (; *words; words++)
		if (strstr(low, *words) != NULL)
			return 1;
	return 0;
}

/* Which lists suit the weather now (wet, then temperature), with phrases. */
static void
fit_lists(const struct ai_weather *w, const char *const *lists[2],
    const char *phrases[2])
{
	lists[0] = lists[1] = NULL;
	phrases[0] = phrases[1] = NULL;
	if (!w->have)
		return;
	if (strcmp(w->condition, "rain") == 0 ||
	    strcmp(w->condition, "drizzle") == 0 ||
	    strcmp(w->condition, "thunderstorm") == 0 ||
	    strcmp(w->condition, "snow") == 0) {
		lists[0] = fit_rain;
		phrases[0] = w->condition;
	}
	if (w->have_temp && w->temp >= 25) {
		lists[1] = fit_hot;
		phrases[1] = "hot weather";
	} else if (w->have_temp && w->temp <= 10) {
		lists[1] = fit_cold;
		phrases[1] = "cold weather";
	}
}

/* The phrase of the first list that fits id, or NULL. */
static const char *
fit_phrase(const char *id, const char *const *lists[2],
    const char *phrases[2])
{
	int i;

	for (i = 0; i < 2; i++)
		if (lists[i] != NULL && fit_any(id, lists[i]))
			return phrases[i];
	return NULL;
}

static int
pick_cmp(const void *a, const void *b)
{
	const struct pick *x = a, *y = b;

	if (x->score != y->score)
		return x->score < y->score ? 1 : -1;
	return strcmp(x->v->p->id, y->v->p->id);
}

int
ai_fallback(const struct sales_core *core, struct sales_buf *b,
    const struct ai_view *v, size_t n, const struct ai_tally *t,
    const struct ai_weather *w, size_t max_recs, const char *reason)
{
	const char *const *lists[2];
	const char *phrases[2], *action;
	struct pick *picks = NULL;
	struct sales_buf why = {0}, sum = {0};
	size_t i, k;
	int rc = -1;

	if (n > 0 && (picks = calloc(n, sizeof(*picks))) == NULL)
		return -1;
	fit_lists(w, lists, phrases);
	for (i = 0; i < n; i++) {
		picks[i].v = &v[i];
		picks[i].fit = fit_phrase(v[i].p->id, lists, phrases);
		picks[i].score = v[i].share + 2 * fmax(v[i].momentum, 0) +
		    (picks[i].fit != NULL ? 0.15 : 0);
	}
	if (n > 0)
		qsort(picks, n, sizeof(*picks), pick_cmp);
	k = n < max_recs ? n : max_recs;

	core->buf_printf(b, ",\"recommendations\":[");
	for (i = 0; i < k; i++) {
		const struct ai_view *x = picks[i].v;

		why.len = 0;
		if (picks[i].fit != NULL) {
			action = "promote";
			core->buf_printf(&why, "Suits the %s", picks[i].fit);
			if (w->have_temp)
				core->buf_printf(&why, " (%.1f C in %s)",
				    w->temp, w->city);
			core->buf_printf(&why, "; %.0f%% of revenue so far",
			    100 * x->share);
		} else if (x->momentum >= AI_MOMENTUM_STEP) {
			action = "restock";
			core->buf_printf(&why, "Selling faster than usual: "
			    "%.0f%% of recent revenue against %.0f%% overall",
			    100 * x->recent_share, 100 * x->share);
		} else if (x->momentum <= -AI_MOMENTUM_STEP) {
			action = "discount";
			core->buf_printf(&why, "Slowing down: %.0f%% of recent "
			    "revenue against %.0f%% overall",
			    100 * x->recent_share, 100 * x->share);
		} else {
			action = "feature";
			core->buf_printf(&why, "Steady seller: %.0f%% of "
			    "revenue, %lld sold in %lld order%s",
			    100 * x->share, (long long)x->p->quantity,
			    (long long)x->p->orders, x->p->orders == 1 ? "" :
			    "s");
		}
		core->buf_printf(b, "%s{\"product_id\":", i ? "," : "");
		core->buf_json_string(b, x->p->id, strlen(x->p->id));
		core->buf_printf(b, ",\"action\":\"%s\",\"reason\":", action);
		core->buf_json_string(b, why.data ? why.data : "", why.len);
		core->buf_printf(b, "}");
	}
	core->buf_printf(b, "],\"summary\":");

	core->buf_printf(&sum, "Rule-based recommendations (%s). ", reason);
	if (t->orders == 0)
		core->buf_printf(&sum, "No sales yet, so nothing to "
		    "recommend.");
	else {
		core->buf_printf(&sum, "%lld orders, revenue %.2f",
		    (long long)t->orders, t->revenue);
		if (n > 0)
			core->buf_printf(&sum, "; top seller %s with %.0f%% "
			    "of revenue", v[0].p->id, 100 * v[0].share);
		core->buf_printf(&sum, ".");
	}
	if (phrases[0] != NULL || phrases[1] != NULL)
		core->buf_printf(&sum, " Weather in %s: %s%s%s, favouring "
		    "products that suit it.", w->city,
		    phrases[0] ? phrases[0] : "",
		    phrases[0] && phrases[1] ? " and " : "",
		    phrases[1] ? phrases[1] : "");
	rc = core->buf_json_string(b, sum.data, sum.len);
	core->buf_free(&why);
	core->buf_free(&sum);
	free(picks);
	return rc;
}
