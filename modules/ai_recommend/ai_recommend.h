/*
 * ai_recommend.h - what the ai_recommend module's files share: its own
 * per-product sales tally (fed by "order.created", so the module works
 * without the analytics module) and the rule-based fallback recommender.
 * Private to modules/ai_recommend/.
 */
#ifndef AI_RECOMMEND_H
#define AI_RECOMMEND_H

#include <stddef.h>
#include <stdint.h>

#include <sales/module.h>

#define AI_MAX_PRODUCTS		100000	/* tracked; later ones are ignored */
#define AI_HALF_LIFE_MS		(10 * 60 * 1000)	/* of "recent" revenue */
#define AI_MINUTES		60	/* per-minute revenue ring */

struct ai_product {
	char	 id[SALES_PRODUCT_ID_SIZE];
	double	 revenue;	/* currency units, price x quantity */
	int64_t	 quantity;
	int64_t	 orders;
	double	 recent;	/* revenue decayed with AI_HALF_LIFE_MS ... */
	int64_t	 recent_ms;	/* ... as of this time */
};

struct ai_tally {
	struct ai_product	*slots;		/* open addressing */
	size_t			 cap;
	size_t			 n;
	int			 full_logged;
	double			 revenue;
	int64_t			 orders;
	int64_t			 quantity;
	double			 recent;	/* sum of every recent */
	int64_t			 recent_ms;
	double			 minute_rev[AI_MINUTES];
	int64_t			 minute_no[AI_MINUTES];
};

/* A product as the prompt and the fallback see it, decayed to now. */
struct ai_view {
	const struct ai_product	*p;
	double			 share;		/* of all revenue, 0..1 */
	double			 recent_share;	/* of recent revenue, 0..1 */
	double			 momentum;	/* recent_share - share */
};

/* -1 when the product table is full (the order is still counted in totals). */
int	ai_tally_add(struct ai_tally *t, const struct sales_order_v1 *o);
const struct ai_product *ai_tally_find(const struct ai_tally *t,
	    const char *id);
/* Revenue received in the AI_MINUTES minutes before now. */
double	ai_tally_last_hour(const struct ai_tally *t, int64_t now_ms);
double	ai_tally_last_minute(const struct ai_tally *t, int64_t now_ms);
/*
 * Fills out with up to max products worth talking about: the best
 * sellers by revenue, then the fastest risers not already among them.
 * Returns how many; *out is malloc'ed (free it), NULL when none.
 */
size_t	ai_tally_views(const struct ai_tally *t, int64_t now_ms, size_t max,
	    struct ai_view **out);
void	ai_tally_free(struct ai_tally *t);

/* The weather as last published on the bus. */
struct ai_weather {
	int	 have;		/* a weather.updated was received */
	int	 have_temp;
	double	 temp;
	char	 city[SALES_CITY_SIZE];
	char	 condition[SALES_CONDITION_SIZE];
	char	 source[SALES_SOURCE_SIZE];
};

/*
 * Appends the "recommendations" array and "summary" members (without
 * braces, starting with ',"recommendations":') of a fallback answer.
 */
int	ai_fallback(const struct sales_core *core, struct sales_buf *b,
	    const struct ai_view *v, size_t n, const struct ai_tally *t,
	    const struct ai_weather *w, size_t max_recs, const char *reason);

#endif /* AI_RECOMMEND_H */
