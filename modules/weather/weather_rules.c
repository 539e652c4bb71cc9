/*
 * weather_rules.c - promotion rules as data: parsing a rule.NAME value
 * from sales.ini and deciding whether it applies to a reading.  It does
 * not fetch weather or format JSON; weather.c does.
 *
 * A rule is four fields separated by '|':
 *
 *	CONDITION | CATEGORY | DISCOUNT | MESSAGE
 *
 * CONDITION is "always" (or "*"), or clauses joined by '&', each one of
 *	hot | cold			temp > hot_above_c, temp < cold_below_c
 *	temp OP NUMBER			OP one of < <= > >=
 *	condition = NAME[,NAME...]	OpenWeather's main group, lowercase
 * CATEGORY is [a-z0-9_-]{1,64}, DISCOUNT an integer 0..100, MESSAGE free
 * text (1..160 bytes).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weather.h"

const char *const weather_default_rules[][2] = {
	{ "rule.hot", "hot | cold_drinks | 15 | "
	    "Hot day: 15% off cold drinks" },
	{ "rule.cold", "cold | hot_drinks | 15 | "
	    "Cold day: 15% off hot drinks" },
	{ "rule.rain", "condition = rain,drizzle,thunderstorm | umbrellas | "
	    "10 | Rainy day: 10% off umbrellas" },
	{ "rule.rain_delivery", "condition = rain,drizzle,thunderstorm,snow "
	    "| delivery | 20 | Stay dry: 20% off delivery" },
	{ NULL, NULL }
};

/* Copies [s, e) without surrounding blanks into out; its length. */
static size_t
rule_trim(const char *s, const char *e, char *out, size_t outlen)
{
	size_t n;

	while (s < e && isspace((unsigned char)*s))
		s++;
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	n = (size_t)(e - s);
	if (n >= outlen)
		return (size_t)-1;
	memcpy(out, s, n);
	out[n] = '\0';
	return n;
}

static int
rule_name_ok(const char *s, size_t max)
{
	size_t n;

	for (n = 0; s[n]; n++)
		if (!islower((unsigned char)s[n]) &&
		    !isdigit((unsigned char)s[n]) && s[n] != '_' &&
		    s[n] != '-')
			return 0;
	return n > 0 && n <= max;
}

static int
rule_clause(const char *text, double hot, double cold,
    struct weather_clause *c, char *err, size_t errlen)
{
	const char *p, *q;
	char name[WEATHER_COND_LEN + 8];
	char *end;
	size_t n;

	memset(c, 0, sizeof(*c));
	if (strcmp(text, "hot") == 0) {
		c->kind = WEATHER_CLAUSE_TEMP;
		c->op = WEATHER_OP_GT;
		c->value = hot;
		return 0;
	}
	if (strcmp(text, "cold") == 0) {
		c->kind = WEATHER_CLAUSE_TEMP;
		c->op = WEATHER_OP_LT;
		c->value = cold;
		return 0;
	}
	if (strncmp(text, "temp", 4) == 0) {
		c->kind = WEATHER_CLAUSE_TEMP;
		p = text + 4;
		while (isspace((unsigned char)*p))
			p++;
		if (p[0] == '<' && p[1] == '=')
			c->op = WEATHER_OP_LE, p += 2;
		else if (p[0] == '>' && p[1] == '=')
			c->op = WEATHER_OP_GE, p += 2;
		else if (p[0] == '<')
			c->op = WEATHER_OP_LT, p++;
		else if (p[0] == '>')
			c->op = WEATHER_OP_GT, p++;
		else {
			snprintf(err, errlen, "\"%s\": expected one of < <= > "
			    ">= after \"temp\"", text);
			return -1;
		}
		errno = 0;
		c->value = strtod(p, &end);
		while (isspace((unsigned char)*end))
			end++;
		if (end == p || *end != '\0' || errno != 0 ||
		    !isfinite(c->value) || c->value < -100 || c->value > 100) {
			snprintf(err, errlen, "\"%s\": expected a temperature "
			    "in degrees Celsius (-100..100)", text);
			return -1;
		}
		return 0;
	}
	if (strncmp(text, "condition", 9) == 0) {
		c->kind = WEATHER_CLAUSE_CONDITION;
		p = text + 9;
		while (isspace((unsigned char)*p))
			p++;
		if (*p++ != '=') {
			snprintf(err, errlen, "\"%s\": expected \"condition = "
			    "NAME[,NAME...]\"", text);
			return -1;
		}
		for (;;) {
			if ((q = strchr(p, ',')) == NULL)
				q = p + strlen(p);
			n = rule_trim(p, q, name, sizeof(name));
			if (n == (size_t)-1 || !rule_name_ok(name,
			    WEATHER_COND_LEN - 1)) {
				snprintf(err, errlen, "\"%s\": condition names "
				    "are lowercase words such as rain, snow, "
				    "clear, clouds", text);
				return -1;
			}
			if (c->nconds == WEATHER_MAX_CONDS) {
				snprintf(err, errlen, "\"%s\": at most %d "
				    "conditions", text, WEATHER_MAX_CONDS);
				return -1;
			}
			memcpy(c->conds[c->nconds++], name, n + 1);
			if (*q == '\0')
				break;
			p = q + 1;
		}
		return 0;
	}
	snprintf(err, errlen, "\"%s\": unknown condition (expected always, "
	    "hot, cold, \"temp OP N\" or \"condition = NAME\")", text);
	return -1;
}

int
weather_rule_parse(const char *key, const char *value, double hot,
    double cold, struct weather_rule *r, char *err, size_t errlen)
{
	const char *f[4], *fe[4], *p, *q, *amp;
	char cond[200], clause[200], num[16], *end;
	long d;
	int i;

	memset(r, 0, sizeof(*r));
	snprintf(r->key, sizeof(r->key), "%s", key);
	/* The message may itself contain '|': only the first three split. */
	p = value;
	for (i = 0; i < 3; i++) {
		if ((q = strchr(p, '|')) == NULL) {
			snprintf(err, errlen, "expected \"CONDITION | CATEGORY "
			    "| DISCOUNT | MESSAGE\"");
			return -1;
		}
		f[i] = p;
		fe[i] = q;
		p = q + 1;
	}
	f[3] = p;
	fe[3] = p + strlen(p);

	if (rule_trim(f[0], fe[0], cond, sizeof(cond)) == (size_t)-1) {
		snprintf(err, errlen, "condition too long");
		return -1;
	}
	if (strcmp(cond, "always") != 0 && strcmp(cond, "*") != 0) {
		for (p = cond; ; p = amp + 1) {
			if ((amp = strchr(p, '&')) == NULL)
				amp = p + strlen(p);
			rule_trim(p, amp, clause, sizeof(clause));
			if (r->nclauses == WEATHER_MAX_CLAUSES) {
				snprintf(err, errlen, "at most %d clauses "
				    "joined by '&'", WEATHER_MAX_CLAUSES);
				return -1;
			}
			if (rule_clause(clause, hot, cold,
			    &r->clauses[r->nclauses++], err, errlen) == -1)
				return -1;
			if (*amp == '\0')
				break;
		}
	}

	if (rule_trim(f[1], fe[1], r->category, sizeof(r->category)) ==
	    (size_t)-1 || !rule_name_ok(r->category, WEATHER_CATEGORY_LEN)) {
		snprintf(err, errlen, "category must be 1-%d characters of "
		    "a-z, 0-9, '_' and '-'", WEATHER_CATEGORY_LEN);
		return -1;
	}

	if (rule_trim(f[2], fe[2], num, sizeof(num)) == (size_t)-1)
		num[0] = 'x', num[1] = '\0';
	errno = 0;
	d = strtol(num, &end, 10);
	if (num[0] == '\0' || *end != '\0' || errno != 0 || d < 0 || d > 100) {
		snprintf(err, errlen, "discount \"%s\" is not an integer "
		    "percentage 0..100", num);
		return -1;
	}
	r->discount = (int)d;

	if (rule_trim(f[3], fe[3], r->message, sizeof(r->message)) ==
	    (size_t)-1) {
		snprintf(err, errlen, "message longer than %d bytes",
		    WEATHER_MESSAGE_LEN);
		return -1;
	}
	if (r->message[0] == '\0') {
		snprintf(err, errlen, "message is empty");
		return -1;
	}
	for (p = r->message; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			snprintf(err, errlen, "message has a control "
			    "character");
			return -1;
		}
	return 0;
}

int
weather_rule_match(const struct weather_rule *r, int have_temp,
    double temp, const char *cond)
{
	const struct weather_clause *c;
	int i, j, ok;

	for (i = 0; i < r->nclauses; i++) {
		c = &r->clauses[i];
		if (c->kind == WEATHER_CLAUSE_TEMP) {
			if (!have_temp)
				return 0;
			switch (c->op) {
			case WEATHER_OP_LT:
				ok = temp < c->value;
				break;
			case WEATHER_OP_LE:
				ok = temp <= c->value;
				break;
			case WEATHER_OP_GT:
				ok = temp > c->value;
				break;
			default:
				ok = temp >= c->value;
				break;
			}
			if (!ok)
				return 0;
			continue;
		}
		if (cond == NULL || *cond == '\0')
			return 0;
		for (ok = 0, j = 0; j < c->nconds && !ok; j++)
			ok = strcmp(c->conds[j], cond) == 0;
		if (!ok)
			return 0;
	}
	return 1;
}
