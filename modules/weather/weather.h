/*
 * weather.h - what the weather module's files share: the promotion rules
 * (parsed from [weather] rule.NAME keys) and their evaluation.  Private
 * to modules/weather/; nothing here touches the network or the core.
 */
#ifndef WEATHER_H
#define WEATHER_H

#include <stddef.h>

#include <sales/types.h>

/* What fits the "weather.updated.v2" payload (<sales/events.h>). */
#define WEATHER_MAX_CLAUSES	4	/* "a & b & c & d" */
#define WEATHER_MAX_CONDS	8	/* "condition = rain,drizzle,..." */
#define WEATHER_COND_LEN	SALES_CONDITION_SIZE
#define WEATHER_CATEGORY_LEN	SALES_CATEGORY_MAX
#define WEATHER_MESSAGE_LEN	SALES_MESSAGE_MAX
#define WEATHER_MAX_RULES	SALES_PROMOTIONS_MAX

enum weather_clause_kind {
	WEATHER_CLAUSE_TEMP,		/* temperature compared with a value */
	WEATHER_CLAUSE_CONDITION	/* condition is one of a list */
};

enum weather_op {
	WEATHER_OP_LT,
	WEATHER_OP_LE,
	WEATHER_OP_GT,
	WEATHER_OP_GE
};

struct weather_clause {
	enum weather_clause_kind kind;
	enum weather_op		 op;
	double			 value;
	int			 nconds;
	char			 conds[WEATHER_MAX_CONDS][WEATHER_COND_LEN];
};

/* One rule; nclauses == 0 means "always": it needs no weather at all. */
struct weather_rule {
	char			 key[64];	/* "rule.hot", for messages */
	int			 nclauses;
	struct weather_clause	 clauses[WEATHER_MAX_CLAUSES];
	char			 category[WEATHER_CATEGORY_LEN + 1];
	int			 discount;	/* percent, 0..100 */
	char			 message[WEATHER_MESSAGE_LEN + 1];
};

/*
 * Parses "CONDITION | CATEGORY | DISCOUNT | MESSAGE" into r.  hot and
 * cold are the thresholds the "hot"/"cold" shorthands stand for.
 * Returns 0, or -1 with err saying what is wrong (without the key).
 */
int	weather_rule_parse(const char *key, const char *value, double hot,
	    double cold, struct weather_rule *r, char *err, size_t errlen);

/*
 * Whether the rule applies.  have_temp/have_cond say whether the
 * temperature and condition are known: a clause on an unknown value
 * never matches, so with no weather only "always" rules apply.
 */
int	weather_rule_match(const struct weather_rule *r, int have_temp,
	    double temp, const char *cond);

/* Built-in rules used when [weather] has no rule.* key. */
extern const char *const weather_default_rules[][2];

#endif /* WEATHER_H */
