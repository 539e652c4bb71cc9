/*
 * weather - current weather for the configured city from OpenWeather,
 * and the promotions the [weather] rules derive from it: GET /promotions,
 * the "weather.updated.v2" bus topic (and the deprecated
 * "weather.updated") and the "updatePromotions" WebSocket message.
 *
 * The reading is fetched through the core's upstream service
 * (<sales/upstream.h>): cached for cache_ttl_ms, refreshed on a timer
 * (refresh_interval_ms) and on demand, one fetch at a time.  Requests
 * that find the cache stale wait for the fetch under way (single
 * flight) and are answered when it ends, success or not; retries with
 * exponential backoff then go on in the background.  An upstream failure
 * is logged once per distinct error, shown in weather.source, and never
 * turns into an error status of ours.  With no api_key nothing touches
 * the network.  Rule parsing and matching live in weather_rules.c; this
 * file knows nothing of orders or analytics.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sales/module.h>

#include "weather.h"

SALES_MODULE_MAGIC("weather", "1.0");

/* A failed fetch is retried on demand after at most this long. */
#define WEATHER_ERROR_TTL_MS	60000
#define WEATHER_MAX_BACKOFF_MS	60000
#define WEATHER_MAX_MS		86400000LL	/* a day */

static const struct sales_core	*core;
static struct sales_module	*self;

struct weather_cfg {
	const char	*api_key;
	const char	*city;
	const char	*base_url;	/* no trailing '/' */
	long long	 timeout_ms;
	long long	 cache_ttl_ms;
	long long	 refresh_interval_ms;
	long long	 retries;
	long long	 backoff_ms;
	double		 hot_above_c;
	double		 cold_below_c;
};

static struct weather_cfg	 cfg;
static struct weather_rule	*rules;
static size_t			 nrules;
static int			 rules_failed;
static int			 rules_seen;

/* A reload's new settings, between CHECK and COMMIT. */
static struct {
	struct weather_cfg	 cfg;
	struct weather_rule	*rules;
	size_t			 nrules;
	int			 rules_seen;
} pending;

/* What the upstream's parse makes of a good answer. */
struct weather_reading {
	double		 temp;
	char		 condition[WEATHER_COND_LEN];
	int64_t		 fetched_at_ms;	/* wall clock */
};

/* The reading in force and the retries; loop thread only. */
static struct {
	int		 have;		/* a reading was ever received */
	double		 temp;
	char		 condition[WEATHER_COND_LEN];
	int64_t		 fetched_at_ms;	/* wall clock of the reading */
	char		 source[128];

	struct sales_upstream *up;	/* cache + single flight */
	int		 retryable;	/* the last failure may pass */
	int		 attempt;	/* retries so far of this failure */
	struct sales_timer *retry_timer;
	struct sales_timer *start_timer;
	struct sales_timer *refresh_timer;
	char		 logged[128];	/* last error logged, to log it once */

	int		 published;
	int		 pub_have;
	double		 pub_temp;
	char		 pub_condition[WEATHER_COND_LEN];
	char		 pub_source[128];
} st;

static struct sales_metric	*m_calls, *m_errors;

/*
 * Copies src into dst, cutting it short to fit, before a whole UTF-8
 * character, so that what a payload carries stays valid UTF-8.
 */
static void
weather_copy(char *dst, size_t dstlen, const char *src)
{
	size_t n = strlen(src);

	if (n >= dstlen) {
		n = dstlen - 1;
		while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void
weather_str(struct sales_buf *b, const char *s)
{
	core->buf_json_string(b, s, strlen(s));
}

/*
 * The promotions in force: in file order, the first matching rule of a
 * category wins.  Fills out[] (WEATHER_MAX_RULES), returns how many.
 */
static size_t
weather_active(const struct weather_rule **out)
{
	const struct weather_rule *r;
	size_t i, j, n = 0;

	for (i = 0; i < nrules; i++) {
		r = &rules[i];
		if (!weather_rule_match(r, st.have && isfinite(st.temp),
		    st.temp, st.have ? st.condition : NULL))
			continue;
		for (j = 0; j < n; j++)
			if (strcmp(out[j]->category, r->category) == 0)
				break;
		if (j == n)
			out[n++] = r;
	}
	return n;
}

/* The GET /promotions object. */
static int
weather_json(struct sales_buf *b)
{
	const struct weather_rule *act[WEATHER_MAX_RULES];
	size_t i, n;

	core->buf_printf(b, "{\"weather\":{\"city\":");
	weather_str(b, cfg.city);
	if (st.have && isfinite(st.temp))
		core->buf_printf(b, ",\"temperatureC\":%.10g", st.temp);
	else
		core->buf_printf(b, ",\"temperatureC\":null");
	core->buf_printf(b, ",\"condition\":");
	weather_str(b, st.have ? st.condition : "unknown");
	core->buf_printf(b, ",\"source\":");
	weather_str(b, st.source);
	core->buf_printf(b, ",\"fetchedAt\":");
	if (st.have) {
		core->buf_append(b, "\"", 1);
		core->buf_time(b, st.fetched_at_ms);
		core->buf_append(b, "\"", 1);
	} else
		core->buf_printf(b, "null");
	core->buf_printf(b, "},\"promotions\":[");
	n = weather_active(act);
	for (i = 0; i < n; i++) {
		core->buf_printf(b, "%s{\"category\":", i ? "," : "");
		weather_str(b, act[i]->category);
		core->buf_printf(b, ",\"message\":");
		weather_str(b, act[i]->message);
		core->buf_printf(b, ",\"discountPercent\":%d}",
		    act[i]->discount);
	}
	return core->buf_printf(b, "]}");
}

/* The "weather.updated.v2" payload: what weather_json says, typed. */
static void
weather_event(struct sales_weather_v2 *w)
{
	const struct weather_rule *act[WEATHER_MAX_RULES];
	size_t i, n;

	w->temperature_c = st.have ? st.temp : NAN;
	w->fetched_at_ms = st.have ? st.fetched_at_ms : 0;
	weather_copy(w->city, sizeof(w->city), cfg.city);
	weather_copy(w->condition, sizeof(w->condition),
	    st.have ? st.condition : "unknown");
	weather_copy(w->source, sizeof(w->source), st.source);
	n = weather_active(act);
	for (i = 0; i < n && i < SALES_PROMOTIONS_MAX; i++) {
		w->promotions[i].discount_percent = act[i]->discount;
		weather_copy(w->promotions[i].category,
		    sizeof(w->promotions[i].category), act[i]->category);
		weather_copy(w->promotions[i].message,
		    sizeof(w->promotions[i].message), act[i]->message);
	}
	w->npromotions = (uint32_t)i;
}

/* Tells the bus and WebSocket clients when the reading or source changed. */
static void
weather_publish(void)
{
	struct sales_weather_v1 *w;
	struct sales_weather_v2 *w2;
	struct sales_buf b = {0};

	if (st.published && st.pub_have == st.have &&
	    (!st.have || st.pub_temp == st.temp ||
	    (isnan(st.pub_temp) && isnan(st.temp))) &&
	    strcmp(st.pub_condition, st.condition) == 0 &&
	    strcmp(st.pub_source, st.source) == 0)
		return;
	st.published = 1;
	st.pub_have = st.have;
	st.pub_temp = st.temp;
	memcpy(st.pub_condition, st.condition, sizeof(st.pub_condition));
	memcpy(st.pub_source, st.source, sizeof(st.pub_source));

	w = calloc(1, sizeof(*w));
	w2 = calloc(1, sizeof(*w2));
	if (w == NULL || w2 == NULL) {
		core->log(self, SALES_LOG_ERROR, "out of memory publishing "
		    "\"%s\"", SALES_TOPIC_WEATHER_UPDATED_V2);
		goto done;
	}
	if (weather_json(&b) == -1) {
		core->log(self, SALES_LOG_ERROR, "out of memory building "
		    "promotions");
		goto done;
	}
	weather_event(w2);
	core->bus_publish(SALES_TOPIC_WEATHER_UPDATED_V2, w2, sizeof(*w2));
	/* The deprecated v1, for modules built before v2 (<sales/events.h>). */
	w->temperature_c = w2->temperature_c;
	w->fetched_at_ms = w2->fetched_at_ms;
	memcpy(w->city, w2->city, sizeof(w->city));
	memcpy(w->condition, w2->condition, sizeof(w->condition));
	memcpy(w->source, w2->source, sizeof(w->source));
	if (b.len < sizeof(w->promotions_json)) {
		memcpy(w->promotions_json, b.data, b.len);
		w->promotions_len = (uint32_t)b.len;
	}
	core->bus_publish(SALES_TOPIC_WEATHER_UPDATED, w, sizeof(*w));
	core->ws_broadcast("updatePromotions", b.data, b.len);
done:
	core->buf_free(&b);
	free(w);
	free(w2);
}

static void
weather_respond(struct sales_request *req)
{
	struct sales_buf b = {0};

	if (weather_json(&b) == -1) {
		core->buf_free(&b);
		core->http_error(req, 503, "no_memory", "out of memory", NULL);
		return;
	}
	core->http_respond(req, 200, "application/json", b.data, b.len);
	core->buf_free(&b);
}

static void
weather_retry(void *arg)
{
	(void)arg;
	core->timer_del(st.retry_timer);
	st.retry_timer = NULL;
	st.attempt++;
	core->upstream_refresh(st.up);
}

/* A fetch failed: report it, maybe retry in the background. */
static void
weather_failed(const char *why)
{
	long long delay;

	core->metric_add(m_errors, 1);
	snprintf(st.source, sizeof(st.source), "openweather error: %s", why);
	if (strcmp(st.logged, st.source) != 0) {
		core->log(self, SALES_LOG_WARN, "city \"%s\": %s%s", cfg.city,
		    st.source, st.retryable && cfg.retries > 0 ?
		    " (retrying with backoff; further failures of this kind "
		    "are not logged)" : "");
		weather_copy(st.logged, sizeof(st.logged), st.source);
	}
	core->timer_del(st.retry_timer);
	st.retry_timer = NULL;
	if (st.retryable && st.attempt < cfg.retries) {
		delay = cfg.backoff_ms << (st.attempt < 20 ? st.attempt : 20);
		if (delay > WEATHER_MAX_BACKOFF_MS)
			delay = WEATHER_MAX_BACKOFF_MS;
		st.retry_timer = core->timer_add((long)delay, 0, weather_retry,
		    NULL);
	}
	if (st.retry_timer == NULL)
		st.attempt = 0;
}

static void
weather_lower(char *dst, size_t dstlen, const char *src, size_t len)
{
	size_t i;

	for (i = 0; i < len && i + 1 < dstlen; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[i] = '\0';
}

/* Parses an OpenWeather answer; -1 with why filled when it is not one. */
static int
weather_parse(const char *body, size_t len, struct weather_reading *r,
    struct sales_buf *why)
{
	struct sales_json *j;
	const char *raw;
	size_t rawlen;
	int t, w, m;

	if ((j = core->json_parse(body, len)) == NULL) {
		core->buf_printf(why, "bad response (not JSON)");
		return -1;
	}
	if ((m = core->json_get(j, 0, "main")) == -1 ||
	    (t = core->json_get(j, m, "temp")) == -1 ||
	    core->json_double(j, t, &r->temp) == -1 || !isfinite(r->temp) ||
	    r->temp < -150 || r->temp > 150) {
		core->buf_printf(why, "bad response (no main.temp)");
		goto fail;
	}
	if ((w = core->json_get(j, 0, "weather")) == -1 ||
	    (w = core->json_at(j, w, 0)) == -1 ||
	    (m = core->json_get(j, w, "main")) == -1 ||
	    core->json_type(j, m) != SALES_JSON_STRING ||
	    (raw = core->json_raw(j, m, &rawlen)) == NULL || rawlen == 0) {
		core->buf_printf(why, "bad response (no weather[0].main)");
		goto fail;
	}
	weather_lower(r->condition, sizeof(r->condition), raw, rawlen);
	core->json_free(j);
	return 0;
fail:
	core->json_free(j);
	return -1;
}

/* The upstream's parse: an answer into a reading, or why not. */
static int
weather_answer(long status, const char *body, size_t len, const char *err,
    void **value, struct sales_buf *why, void *arg)
{
	struct weather_reading *r;

	(void)arg;
	st.retryable = 1;
	switch (status) {
	case 0:
		core->buf_printf(why, "%s", err ? err : "no response");
		return -1;
	case 200:
		break;
	case 401:
		st.retryable = 0;
		core->buf_printf(why, "401 unauthorized (check api_key)");
		return -1;
	case 404:
		st.retryable = 0;
		core->buf_printf(why, "404 city not found (check city)");
		return -1;
	case 429:
		core->buf_printf(why, "429 rate limited");
		return -1;
	default:
		st.retryable = status >= 500;
		core->buf_printf(why, "HTTP %ld%s", status,
		    status >= 500 ? " server error" : "");
		return -1;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		core->buf_printf(why, "out of memory");
		return -1;
	}
	if (weather_parse(body, len, r, why) == -1) {
		free(r);
		return -1;
	}
	r->fetched_at_ms = core->now_ms();
	*value = r;
	return 0;
}

/* Every fetch's outcome, before its waiters hear it: the new state. */
static void
weather_update(const struct sales_upstream_result *res, void *arg)
{
	const struct weather_reading *r = res->value;

	(void)arg;
	if (res->error != NULL) {
		weather_failed(res->error);
		weather_publish();
		return;
	}
	if (st.logged[0] != '\0') {
		core->log(self, SALES_LOG_INFO, "city \"%s\": openweather "
		    "answers again", cfg.city);
		st.logged[0] = '\0';
	}
	st.attempt = 0;
	st.have = 1;
	st.temp = r->temp;
	memcpy(st.condition, r->condition, sizeof(st.condition));
	st.fetched_at_ms = r->fetched_at_ms;
	snprintf(st.source, sizeof(st.source), "openweather");
	weather_publish();
}

static void
weather_urlencode(struct sales_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char c;

	for (; *s; s++) {
		c = (unsigned char)*s;
		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
			core->buf_append(b, s, 1);
		else
			core->buf_printf(b, "%%%c%c", hex[c >> 4], hex[c & 15]);
	}
}

/* The upstream's request: GET the current weather of the city. */
static int
weather_request(struct sales_httpc_request *r, struct sales_buf *url,
    struct sales_buf *body, void *arg)
{
	(void)body;
	(void)arg;
	core->buf_printf(url, "%s/weather?q=", cfg.base_url);
	weather_urlencode(url, cfg.city);
	core->buf_printf(url, "&units=metric&appid=");
	weather_urlencode(url, cfg.api_key);
	r->method = "GET";
	r->url = url->data;
	r->max_response = 256 * 1024;
	core->metric_add(m_calls, 1);
	return url->data != NULL ? 0 : -1;
}

static void
weather_done(const struct sales_upstream_result *res, void *arg)
{
	(void)res;
	weather_respond(arg);
}

static void
weather_get(struct sales_request *req, void *arg)
{
	(void)arg;
	/*
	 * Answer now with no key, or while retries of a failure go on in
	 * the background; else from the cache, or when the fetch under way
	 * ends (reading or error), with every other request waiting on it.
	 */
	if (cfg.api_key[0] == '\0' || st.retry_timer != NULL ||
	    core->upstream_get(st.up, weather_done, req) == -1)
		weather_respond(req);
}

static void
weather_refresh(void *arg)
{
	(void)arg;
	if (st.retry_timer == NULL)
		core->upstream_refresh(st.up);
}

/* First tick of the loop: the initial fetch, or the offline state. */
static void
weather_first(void *arg)
{
	(void)arg;
	core->timer_del(st.start_timer);
	st.start_timer = NULL;
	if (cfg.api_key[0] == '\0')
		weather_publish();
	else
		core->upstream_refresh(st.up);
}

/* The cache follows cfg: at init and on every reload. */
static void
weather_upstream_opts(struct sales_upstream_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->name = "openweather";
	o->ttl_ms = (long)cfg.cache_ttl_ms;
	o->error_ttl_ms = cfg.cache_ttl_ms < WEATHER_ERROR_TTL_MS ?
	    (long)cfg.cache_ttl_ms : WEATHER_ERROR_TTL_MS;
	o->timeout_ms = (long)cfg.timeout_ms;
	o->request = weather_request;
	o->parse = weather_answer;
	o->update = weather_update;
}

static const char *const weather_keys[] = {
	"api_key", "city", "base_url", "timeout_ms", "cache_ttl_ms",
	"cache_ttl_s", "refresh_interval_ms", "refresh_interval_s", "retries",
	"backoff_ms", "hot_above_c", "cold_below_c", NULL
};

static int
weather_add_rule(const char *key, const char *value)
{
	char err[256];

	if (nrules == WEATHER_MAX_RULES) {
		core->log(self, SALES_LOG_ERROR, "rule \"%s\": more than %d "
		    "rules", key, WEATHER_MAX_RULES);
		return -1;
	}
	if (strlen(key) >= sizeof(rules[0].key) || strlen(key) <= 5) {
		core->log(self, SALES_LOG_ERROR, "rule \"%s\": name must be "
		    "\"rule.NAME\", at most %zu characters", key,
		    sizeof(rules[0].key) - 1);
		return -1;
	}
	if (weather_rule_parse(key, value, cfg.hot_above_c, cfg.cold_below_c,
	    &rules[nrules], err, sizeof(err)) == -1) {
		core->log(self, SALES_LOG_ERROR, "rule \"%s\": %s; the format "
		    "is \"CONDITION | CATEGORY | DISCOUNT | MESSAGE\" (see "
		    "docs/INTEGRATIONS.md)", key, err);
		return -1;
	}
	nrules++;
	return 0;
}

static void
weather_on_key(const char *key, const char *value, void *arg)
{
	size_t i;

	(void)arg;
	if (strncmp(key, "rule.", 5) == 0) {
		rules_seen = 1;
		if (weather_add_rule(key, value) == -1)
			rules_failed = 1;
		return;
	}
	for (i = 0; weather_keys[i] != NULL; i++)
		if (strcmp(weather_keys[i], key) == 0)
			return;
	/*
	 * config_each marks every key read, so the core cannot catch a
	 * typo here: refuse it ourselves, as --check would elsewhere.
	 */
	core->log(self, SALES_LOG_ERROR, "unknown key \"%s\" in [weather] "
	    "(rules are named \"rule.NAME\")", key);
	rules_failed = 1;
}

/*
 * A duration given in ms (key_ms) or, the older spelling, in whole
 * seconds (key_s), within [min_ms, max_ms]; both at once is an error.
 */
static int
weather_ms(const char *key_ms, const char *key_s, long long def_ms,
    long long min_ms, long long max_ms, long long *out)
{
	long long sec;

	if (core->config_str(self, key_s, NULL) == NULL)
		return core->config_int(self, key_ms, def_ms, min_ms, max_ms,
		    out);
	if (core->config_str(self, key_ms, NULL) != NULL) {
		core->log(self, SALES_LOG_ERROR, "\"%s\" and \"%s\" are both "
		    "set: keep one (\"%s\" is the older spelling, in "
		    "seconds)", key_ms, key_s, key_s);
		return -1;
	}
	if (core->config_int(self, key_s, 0, (min_ms + 999) / 1000,
	    max_ms / 1000, &sec) == -1)
		return -1;
	*out = sec * 1000;
	return 0;
}

static int
weather_config(void)
{
	cfg.api_key = core->config_str(self, "api_key", "");
	cfg.city = core->config_str(self, "city", "London");
	if (core->config_url(self, "base_url",
	    "https://api.openweathermap.org/data/2.5", &cfg.base_url) == -1)
		return -1;
	if (core->config_int(self, "timeout_ms", 3000, 100, 120000,
	    &cfg.timeout_ms) == -1 ||
	    weather_ms("cache_ttl_ms", "cache_ttl_s", 600000, 1,
	    WEATHER_MAX_MS, &cfg.cache_ttl_ms) == -1 ||
	    weather_ms("refresh_interval_ms", "refresh_interval_s",
	    cfg.cache_ttl_ms, 0, WEATHER_MAX_MS,
	    &cfg.refresh_interval_ms) == -1 ||
	    core->config_int(self, "retries", 2, 0, 10, &cfg.retries) == -1 ||
	    core->config_int(self, "backoff_ms", 1000, 0, 60000,
	    &cfg.backoff_ms) == -1 ||
	    core->config_double(self, "hot_above_c", 25, -100, 100,
	    &cfg.hot_above_c) == -1 ||
	    core->config_double(self, "cold_below_c", 10, -100, 100,
	    &cfg.cold_below_c) == -1)
		return -1;
	if (cfg.cold_below_c > cfg.hot_above_c) {
		core->log(self, SALES_LOG_ERROR, "\"cold_below_c\" (%g) is "
		    "above \"hot_above_c\" (%g)", cfg.cold_below_c,
		    cfg.hot_above_c);
		return -1;
	}
	if (cfg.city[0] == '\0' || strlen(cfg.city) >= 96) {
		core->log(self, SALES_LOG_ERROR, "\"city\" must be 1-95 "
		    "characters");
		return -1;
	}
	if (strlen(cfg.api_key) > 256) {
		core->log(self, SALES_LOG_ERROR, "\"api_key\" is longer than "
		    "256 characters");
		return -1;
	}
	return 0;
}

/* The section into cfg and rules; on failure rules is NULL. */
static int
weather_read(void)
{
	size_t i;

	rules = NULL;
	nrules = 0;
	if (weather_config() == -1)
		return -1;
	if ((rules = calloc(WEATHER_MAX_RULES, sizeof(*rules))) == NULL) {
		core->log(self, SALES_LOG_ERROR, "out of memory");
		return -1;
	}
	rules_seen = rules_failed = 0;
	core->config_each(self, weather_on_key, NULL);
	if (rules_failed)
		goto fail;
	if (!rules_seen)
		for (i = 0; weather_default_rules[i][0] != NULL; i++)
			if (weather_add_rule(weather_default_rules[i][0],
			    weather_default_rules[i][1]) == -1)
				goto fail;
	return 0;
fail:
	free(rules);
	rules = NULL;
	return -1;
}

SALES_MODULE_INIT(c, m)
{
	struct sales_upstream_opts o;

	core = c;
	self = m;
	memset(&st, 0, sizeof(st));
	st.temp = NAN;
	if (weather_read() == -1)
		return -1;
	weather_upstream_opts(&o);
	if ((st.up = core->upstream_new(self, &o)) == NULL)
		goto fail;

	snprintf(st.source, sizeof(st.source), "%s",
	    cfg.api_key[0] ? "not fetched yet" : "no api key");
	m_calls = core->metric_counter(self, "weather_upstream_requests_total",
	    "OpenWeather requests started");
	m_errors = core->metric_counter(self, "weather_upstream_errors_total",
	    "OpenWeather requests that failed");
	if (core->http_route(self, "GET", "/promotions", weather_get,
	    NULL) == -1 || core->ws_event(self, "updatePromotions") == -1)
		goto fail;
	if ((st.start_timer = core->timer_add(0, 0, weather_first,
	    NULL)) == NULL)
		goto fail;
	if (cfg.api_key[0] != '\0' && cfg.refresh_interval_ms > 0 &&
	    (st.refresh_timer = core->timer_add(
	    (long)cfg.refresh_interval_ms, 1, weather_refresh,
	    NULL)) == NULL)
		goto fail;
	core->log(self, SALES_LOG_INFO, "city \"%s\", %zu promotion rules%s, "
	    "%s", cfg.city, nrules, rules_seen ? "" : " (built-in)",
	    cfg.api_key[0] ? "online" : "offline (no api key)");
	return 0;
fail:
	if (st.start_timer != NULL)
		core->timer_del(st.start_timer);
	st.start_timer = NULL;
	core->upstream_free(st.up);
	st.up = NULL;
	free(rules);
	rules = NULL;
	return -1;
}

/*
 * CHECK reads the new section with the same code as init, into the
 * statics, then moves it aside to pending and puts the running settings
 * back.  COMMIT swaps them in; a new city, key or URL forgets the
 * reading, which belonged to the old ones, and fetches again.
 */
SALES_MODULE_RELOAD(m, step)
{
	struct weather_cfg old_cfg = cfg;
	struct weather_rule *old_rules = rules;
	struct sales_upstream_opts o;
	size_t old_nrules = nrules;
	int old_seen = rules_seen, ok, moved;

	(void)m;
	switch (step) {
	case SALES_RELOAD_CHECK:
		ok = weather_read() == 0;
		pending.cfg = cfg;
		pending.rules = rules;
		pending.nrules = nrules;
		pending.rules_seen = rules_seen;
		cfg = old_cfg;
		rules = old_rules;
		nrules = old_nrules;
		rules_seen = old_seen;
		if (!ok) {
			memset(&pending, 0, sizeof(pending));
			return -1;
		}
		return 0;
	case SALES_RELOAD_COMMIT:
		moved = strcmp(cfg.city, pending.cfg.city) != 0 ||
		    strcmp(cfg.api_key, pending.cfg.api_key) != 0 ||
		    strcmp(cfg.base_url, pending.cfg.base_url) != 0;
		free(rules);
		cfg = pending.cfg;
		rules = pending.rules;
		nrules = pending.nrules;
		rules_seen = pending.rules_seen;
		memset(&pending, 0, sizeof(pending));
		weather_upstream_opts(&o);
		core->upstream_configure(st.up, &o);	/* o was checked */
		if (st.refresh_timer != NULL)
			core->timer_del(st.refresh_timer);
		st.refresh_timer = NULL;
		if (cfg.api_key[0] != '\0' && cfg.refresh_interval_ms > 0)
			st.refresh_timer = core->timer_add(
			    (long)cfg.refresh_interval_ms, 1,
			    weather_refresh, NULL);
		if (moved && st.start_timer == NULL) {
			/* Retries of the old place's failure stop too. */
			core->timer_del(st.retry_timer);
			st.retry_timer = NULL;
			st.attempt = 0;
			st.have = 0;
			st.temp = NAN;
			core->upstream_invalidate(st.up);
			snprintf(st.source, sizeof(st.source), "%s",
			    cfg.api_key[0] ? "not fetched yet" : "no api key");
			if (cfg.api_key[0] == '\0')
				weather_publish();
			else
				core->upstream_refresh(st.up);
		}
		core->log(self, SALES_LOG_INFO, "city \"%s\", %zu promotion "
		    "rules%s, %s", cfg.city, nrules, rules_seen ? "" :
		    " (built-in)", cfg.api_key[0] ? "online" :
		    "offline (no api key)");
		return 0;
	case SALES_RELOAD_ABORT:
		free(pending.rules);
		memset(&pending, 0, sizeof(pending));
		return 0;
	}
	return -1;
}

SALES_MODULE_FINI()
{
	if (st.start_timer != NULL)
		core->timer_del(st.start_timer);
	if (st.retry_timer != NULL)
		core->timer_del(st.retry_timer);
	if (st.refresh_timer != NULL)
		core->timer_del(st.refresh_timer);
	st.start_timer = st.retry_timer = st.refresh_timer = NULL;
	/* Requests still waiting are the core's to drop at shutdown. */
	core->upstream_free(st.up);
	st.up = NULL;
	free(rules);
	rules = NULL;
	nrules = 0;
}
