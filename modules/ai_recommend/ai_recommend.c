/*
 * ai_recommend - GET /recommendations: product recommendations from any
 * OpenAI-compatible chat-completions server (OpenAI, llama.cpp, Ollama,
 * chosen by base_url and model), with a local rule-based fallback.
 *
 * What it knows comes from the bus only: "order.created" feeds its own
 * per-product tally (ai_tally.c), "analytics.updated.v2" adds the
 * analytics module's figures when that module is loaded,
 * "weather.updated.v2" the weather; all typed, nothing parsed.  A
 * request builds a prompt from them, POSTs it once for every request
 * waiting (single flight), validates the answer (JSON, known fields,
 * only products that were sold) and caches the result for
 * cache_ttl_ms: the core's upstream service (<sales/upstream.h>) does
 * the caching and the single flight, its value being the answer's
 * body.  No api_key, no sales yet, an upstream error, a timeout or a
 * malformed answer: the fallback (ai_fallback.c) answers instead, with
 * source "fallback" and the reason.  It never fails a request because
 * the upstream did, and never blocks the loop.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sales/module.h>

#include "ai_recommend.h"

SALES_MODULE_MAGIC("ai_recommend", "1.0");

/* Failed answers are cached this long at most, to retry soon. */
#define AI_ERROR_TTL_MS		10000
#define AI_MAX_TTL_MS		86400000LL	/* a day */
#define AI_MAX_RECS		20
#define AI_MAX_ACTION		64
#define AI_MAX_REASON		1000
#define AI_MAX_SUMMARY		2000
#define AI_MAX_KNOWN		SALES_TOP_PRODUCTS_MAX	/* analytics top kept */

static const struct sales_core	*core;
static struct sales_module	*self;

struct ai_cfg {
	const char	*api_key;
	const char	*model;
	const char	*base_url;	/* no trailing '/' */
	long long	 timeout_ms;
	long long	 cache_ttl_ms;
	long long	 max_products;
	long long	 max_recommendations;
	double		 temperature;
};

static struct ai_cfg		 cfg, pending;	/* pending: reload CHECK */

static struct ai_tally		 tally;
static struct ai_weather	 weather;
static struct sales_analytics_v2 *analytics;	/* last one received */
static char			 known[AI_MAX_KNOWN][SALES_PRODUCT_ID_SIZE];
static size_t			 nknown;

static struct {
	struct sales_upstream	*up;		/* value: a struct sales_buf */
	const char		*local;		/* why the fetch sent nothing */
	int			 no_sales;	/* cached before any sale */
	char			 logged[128];
} st;

static struct sales_metric	*m_calls, *m_fallbacks;

static void
ai_copy(char *dst, size_t dstlen, const char *src, size_t n)
{
	if (n >= dstlen)
		n = dstlen - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void
ai_str(struct sales_buf *b, const char *s)
{
	core->buf_json_string(b, s, strlen(s));
}

static void
ai_num(struct sales_buf *b, double v)
{
	if (isfinite(v))
		core->buf_printf(b, "%.10g", v);
	else
		core->buf_printf(b, "null");
}

static void
ai_weather_json(struct sales_buf *b)
{
	if (!weather.have) {
		core->buf_printf(b, "null");
		return;
	}
	core->buf_printf(b, "{\"city\":");
	ai_str(b, weather.city);
	core->buf_printf(b, ",\"temperatureC\":");
	ai_num(b, weather.have_temp ? weather.temp : NAN);
	core->buf_printf(b, ",\"condition\":");
	ai_str(b, weather.condition);
	core->buf_printf(b, ",\"source\":");
	ai_str(b, weather.source);
	core->buf_printf(b, "}");
}

/* Was the product sold?  Our tally, or the analytics top list. */
static int
ai_sold(const char *id)
{
	size_t i;

	if (ai_tally_find(&tally, id) != NULL)
		return 1;
	for (i = 0; i < nknown; i++)
		if (strcmp(known[i], id) == 0)
			return 1;
	return 0;
}

/* -- bus ---------------------------------------------------------------- */

static void
ai_on_order(const char *topic, const void *payload, size_t len, void *arg)
{
	(void)topic;
	(void)arg;
	if (len < sizeof(struct sales_order_v1))
		return;
	if (ai_tally_add(&tally, payload) == -1 && !tally.full_logged) {
		tally.full_logged = 1;
		core->log(self, SALES_LOG_WARN, "more than %d products: new "
		    "ones count in totals only", AI_MAX_PRODUCTS);
	}
}

static void
ai_on_weather(const char *topic, const void *payload, size_t len,
    void *arg)
{
	const struct sales_weather_v2 *w = payload;

	(void)topic;
	(void)arg;
	if (len < sizeof(*w))
		return;
	weather.have = 1;
	weather.have_temp = isfinite(w->temperature_c);
	weather.temp = w->temperature_c;
	ai_copy(weather.city, sizeof(weather.city), w->city,
	    strnlen(w->city, sizeof(w->city)));
	ai_copy(weather.condition, sizeof(weather.condition), w->condition,
	    strnlen(w->condition, sizeof(w->condition)));
	ai_copy(weather.source, sizeof(weather.source), w->source,
	    strnlen(w->source, sizeof(w->source)));
}

/* Remembers the analytics figures and the product ids they name. */
static void
ai_on_analytics(const char *topic, const void *payload, size_t len,
    void *arg)
{
	const struct sales_analytics_v2 *a = payload;
	uint32_t i, n;

	(void)topic;
	(void)arg;
	if (len < sizeof(*a))
		return;
	if (analytics == NULL &&
	    (analytics = malloc(sizeof(*analytics))) == NULL)
		return;
	memcpy(analytics, a, sizeof(*a));
	n = a->ntop < SALES_TOP_PRODUCTS_MAX ? a->ntop : SALES_TOP_PRODUCTS_MAX;
	if (n > 0)
		nknown = 0;
	for (i = 0; i < n && nknown < AI_MAX_KNOWN; i++) {
		if (a->top[i].product_id[0] == '\0')
			continue;
		ai_copy(known[nknown++], sizeof(known[0]), a->top[i].product_id,
		    strnlen(a->top[i].product_id,
		    sizeof(a->top[i].product_id)));
	}
}

/* -- answers ------------------------------------------------------------ */

static void
ai_respond(struct sales_request *req, const struct sales_buf *body)
{
	core->http_respond(req, 200, "application/json", body->data,
	    body->len);
}

static void
ai_answer_free(void *value)
{
	core->buf_free(value);
	free(value);
}

/* b (taken over) as an upstream value; NULL when memory runs out. */
static struct sales_buf *
ai_answer(struct sales_buf *b)
{
	struct sales_buf *v;

	if (b->data == NULL || (v = malloc(sizeof(*v))) == NULL) {
		core->buf_free(b);
		return NULL;
	}
	*v = *b;
	memset(b, 0, sizeof(*b));
	return v;
}

static void
ai_head(struct sales_buf *b, const char *source, const char *model)
{
	core->buf_printf(b, "{\"source\":\"%s\",\"model\":", source);
	ai_str(b, model);
}

static void
ai_tail(struct sales_buf *b, const char *reason)
{
	core->buf_printf(b, ",\"weather\":");
	ai_weather_json(b);
	core->buf_printf(b, ",\"generatedAt\":");
	core->buf_append(b, "\"", 1);
	core->buf_time(b, core->now_ms());
	core->buf_append(b, "\"", 1);
	core->buf_printf(b, ",\"reason\":");
	if (reason != NULL)
		ai_str(b, reason);
	else
		core->buf_printf(b, "null");
	core->buf_printf(b, "}");
}

/* The rule-based recommender's answer, into b. */
static void
ai_fallback_body(struct sales_buf *b, const char *reason, int log_it)
{
	struct ai_view *v = NULL;
	size_t n;

	if (log_it && strcmp(st.logged, reason) != 0) {
		core->log(self, SALES_LOG_WARN, "%s; answering with the "
		    "rule-based fallback (further failures of this kind are "
		    "not logged)", reason);
		ai_copy(st.logged, sizeof(st.logged), reason, strlen(reason));
	}
	core->metric_add(m_fallbacks, 1);
	n = ai_tally_views(&tally, core->now_ms(), (size_t)cfg.max_products,
	    &v);
	ai_head(b, "fallback", "local-rules");
	if (ai_fallback(core, b, v, n, &tally, &weather,
	    (size_t)cfg.max_recommendations, reason) == -1)
		core->log(self, SALES_LOG_ERROR, "out of memory building the "
		    "fallback answer");
	ai_tail(b, reason);
	free(v);
}

/* -- the upstream call -------------------------------------------------- */

static const char ai_system_prompt[] =
    "You are a retail sales analyst for a small shop. You get the shop's "
    "live sales figures and the local weather as JSON. Recommend concrete "
    "actions (for example promote, restock, discount, bundle, feature) for "
    "the products most worth acting on now, considering revenue, momentum "
    "(recent share of revenue minus overall share) and how the weather "
    "affects demand. Use only product_id values that appear in the data. "
    "Answer with one JSON object and nothing else, exactly of the form "
    "{\"recommendations\":[{\"product_id\":\"...\",\"action\":\"...\","
    "\"reason\":\"...\"}],\"summary\":\"...\"}, with at most %lld "
    "recommendations and short reasons.";

/* The user message: the figures the model should reason about. */
static int
ai_prompt(struct sales_buf *p)
{
	struct ai_view *v = NULL;
	int64_t now = core->now_ms();
	size_t n, i;
	int use_analytics;

	/*
	 * The analytics figures are exact and survive restarts, but they
	 * are coalesced and may lag the orders we have already counted:
	 * use them unless they are behind.
	 */
	use_analytics = analytics != NULL &&
	    analytics->total_orders >= tally.orders;
	n = ai_tally_views(&tally, now, (size_t)cfg.max_products, &v);
	core->buf_printf(p, "Sales data and weather, as JSON:\n{\"weather\":");
	ai_weather_json(p);
	core->buf_printf(p, ",\"sales\":{");
	if (use_analytics) {
		core->buf_printf(p, "\"totalOrders\":%lld,\"totalQuantity\":"
		    "%lld,\"revenueLastMinute\":",
		    (long long)analytics->total_orders,
		    (long long)analytics->total_quantity);
		core->buf_money(p, &analytics->revenue_last_minute);
		core->buf_printf(p, ",\"revenuePreviousMinute\":");
		core->buf_money(p, &analytics->revenue_previous_minute);
		core->buf_printf(p, ",\"revenueLastHour\":");
		core->buf_money(p, &analytics->revenue_last_hour);
	} else {
		core->buf_printf(p, "\"totalOrders\":%lld,\"totalQuantity\":"
		    "%lld,\"revenueLastMinute\":", (long long)tally.orders,
		    (long long)tally.quantity);
		ai_num(p, ai_tally_last_minute(&tally, now));
		core->buf_printf(p, ",\"revenueLastHour\":");
		ai_num(p, ai_tally_last_hour(&tally, now));
	}
	core->buf_printf(p, ",\"totalRevenue\":");
	if (use_analytics)
		core->buf_money(p, &analytics->total_revenue);
	else
		ai_num(p, tally.revenue);
	core->buf_printf(p, "},\"products\":[");
	for (i = 0; i < n; i++) {
		core->buf_printf(p, "%s{\"product_id\":", i ? "," : "");
		ai_str(p, v[i].p->id);
		core->buf_printf(p, ",\"revenue\":");
		ai_num(p, round(v[i].p->revenue * 100) / 100);
		core->buf_printf(p, ",\"quantity\":%lld,\"orders\":%lld,"
		    "\"revenueShare\":%.3f,\"momentum\":%.3f}",
		    (long long)v[i].p->quantity, (long long)v[i].p->orders,
		    v[i].share, v[i].momentum);
	}
	/* Products only the analytics module knows (e.g. after a restart). */
	for (i = 0; i < nknown; i++) {
		if (ai_tally_find(&tally, known[i]) != NULL)
			continue;
		core->buf_printf(p, "%s{\"product_id\":", n || i ? "," : "");
		ai_str(p, known[i]);
		core->buf_printf(p, "}");
		n++;
	}
	free(v);
	return core->buf_printf(p, "]}");
}

/* Checks and copies one string member into out; -1 when not usable. */
static int
ai_member(const struct sales_json *j, int obj, const char *key,
    size_t max, struct sales_buf *out)
{
	int t;

	out->len = 0;
	if ((t = core->json_get(j, obj, key)) == -1 ||
	    core->json_type(j, t) != SALES_JSON_STRING ||
	    core->json_string(j, t, out) == -1 || out->len == 0 ||
	    out->len > max)
		return -1;
	return 0;
}

/*
 * Validates the model's content and builds the answer in b.  Returns
 * the number of recommendations kept, or -1 with why filled.
 */
static int
ai_validate(const char *text, size_t len, struct sales_buf *b, char *why,
    size_t whylen)
{
	struct sales_json *j;
	struct sales_buf id = {0}, action = {0}, reason = {0}, sum = {0};
	int recs, r, t, i, n, kept = 0, dropped = 0;
	long long num;

	/* Local models like to wrap JSON in a Markdown fence. */
	while (len > 0 && isspace((unsigned char)*text))
		text++, len--;
	if (len >= 3 && memcmp(text, "```", 3) == 0) {
		while (len > 0 && *text != '\n')
			text++, len--;
		while (len > 0 && (isspace((unsigned char)text[len - 1]) ||
		    text[len - 1] == '`'))
			len--;
	}
	if ((j = core->json_parse(text, len)) == NULL) {
		snprintf(why, whylen, "malformed answer (content is not "
		    "JSON)");
		return -1;
	}
	if ((recs = core->json_get(j, 0, "recommendations")) == -1 ||
	    core->json_type(j, recs) != SALES_JSON_ARRAY) {
		snprintf(why, whylen, "malformed answer (no recommendations "
		    "array)");
		goto fail;
	}
	if ((t = core->json_get(j, 0, "summary")) != -1 &&
	    core->json_type(j, t) == SALES_JSON_STRING)
		ai_member(j, 0, "summary", AI_MAX_SUMMARY, &sum);

	ai_head(b, "openai", cfg.model);
	core->buf_printf(b, ",\"recommendations\":[");
	n = core->json_len(j, recs);
	for (i = 0; i < n; i++) {
		r = core->json_at(j, recs, i);
		id.len = 0;
		if ((t = core->json_get(j, r, "product_id")) != -1 &&
		    core->json_type(j, t) == SALES_JSON_NUMBER &&
		    core->json_int(j, t, &num) == 0)
			core->buf_printf(&id, "%lld", num);
		else if (ai_member(j, r, "product_id", SALES_PRODUCT_ID_MAX,
		    &id) == -1)
			id.len = 0;
		if (id.len == 0 || !ai_sold(id.data) ||
		    ai_member(j, r, "action", AI_MAX_ACTION, &action) == -1 ||
		    ai_member(j, r, "reason", AI_MAX_REASON, &reason) == -1 ||
		    kept == cfg.max_recommendations) {
			dropped++;
			continue;
		}
		core->buf_printf(b, "%s{\"product_id\":", kept ? "," : "");
		core->buf_json_string(b, id.data, id.len);
		core->buf_printf(b, ",\"action\":");
		core->buf_json_string(b, action.data, action.len);
		core->buf_printf(b, ",\"reason\":");
		core->buf_json_string(b, reason.data, reason.len);
		core->buf_printf(b, "}");
		kept++;
	}
	core->buf_printf(b, "],\"summary\":");
	core->buf_json_string(b, sum.len ? sum.data : "", sum.len);
	if (kept == 0 && n > 0) {
		snprintf(why, whylen, "malformed answer (all %d "
		    "recommendations named unsold products or lacked fields)",
		    n);
		kept = -1;
	} else if (dropped > 0)
		core->log(self, SALES_LOG_INFO, "dropped %d of %d "
		    "recommendations (unsold product or missing fields)",
		    dropped, n);
	core->buf_free(&id);
	core->buf_free(&action);
	core->buf_free(&reason);
	core->buf_free(&sum);
	core->json_free(j);
	return kept;
fail:
	core->json_free(j);
	return -1;
}

/*
 * The model's answer as our body, in b; -1 with why filled when there
 * is none to use.
 */
static int
ai_model_answer(long status, const char *body, size_t len, const char *err,
    struct sales_buf *b, char *why, size_t whylen)
{
	struct sales_json *j = NULL;
	struct sales_buf content = {0};
	int t, rc = -1;

	if (status == 0) {
		snprintf(why, whylen, "%s", err ? err : "no response");
		return -1;
	}
	if (status != 200) {
		snprintf(why, whylen, "HTTP %ld%s", status,
		    status == 401 ? " unauthorized (check api_key)" :
		    status == 404 ? " not found (check base_url and model)" :
		    status == 429 ? " rate limited" :
		    status >= 500 ? " server error" : "");
		return -1;
	}
	if ((j = core->json_parse(body, len)) == NULL ||
	    (t = core->json_get(j, 0, "choices")) == -1 ||
	    (t = core->json_at(j, t, 0)) == -1 ||
	    (t = core->json_get(j, t, "message")) == -1 ||
	    (t = core->json_get(j, t, "content")) == -1 ||
	    core->json_type(j, t) != SALES_JSON_STRING ||
	    core->json_string(j, t, &content) == -1)
		snprintf(why, whylen, "malformed answer (no "
		    "choices[0].message.content)");
	else if (ai_validate(content.data ? content.data : "", content.len,
	    b, why, whylen) != -1) {
		ai_tail(b, NULL);
		rc = 0;
	}
	core->json_free(j);
	core->buf_free(&content);
	return rc;
}

/*
 * The upstream's parse: the model's answer, or the fallback, as the
 * body to serve.  A fetch that sent nothing (no key, no sales) answers
 * locally, and that is as good as an offline answer gets: cached fully.
 * A failure gives the fallback as a stand-in, kept for the error TTL.
 */
static int
ai_parse(long status, const char *body, size_t len, const char *err,
    void **value, struct sales_buf *why, void *arg)
{
	struct sales_buf b = {0};
	char reason[160], full[200];
	int rc = 0;

	(void)arg;
	if (st.local != NULL) {
		ai_fallback_body(&b, st.local, 0);
		st.local = NULL;
	} else if (ai_model_answer(status, body, len, err, &b, reason,
	    sizeof(reason)) == 0) {
		if (st.logged[0] != '\0') {
			core->log(self, SALES_LOG_INFO, "the model answers "
			    "again");
			st.logged[0] = '\0';
		}
	} else {
		core->buf_free(&b);
		snprintf(full, sizeof(full), "openai error: %s", reason);
		core->buf_printf(why, "%s", full);
		ai_fallback_body(&b, full, 1);
		rc = -1;
	}
	st.no_sales = tally.orders == 0 && nknown == 0;
	if ((*value = ai_answer(&b)) == NULL && rc == 0)
		core->buf_printf(why, "out of memory");
	return *value != NULL ? rc : -1;
}

/* The upstream's request: the prompt, or nothing to send. */
static int
ai_request(struct sales_httpc_request *r, struct sales_buf *url,
    struct sales_buf *body, void *arg)
{
	static const char *headers[3];
	static char auth[300];
	struct sales_buf prompt = {0}, system = {0};

	(void)arg;
	/* Nothing to send, or nowhere to send it: answer locally. */
	st.local = NULL;
	if (cfg.api_key[0] == '\0')
		st.local = "no api key";
	else if (tally.orders == 0 && nknown == 0)
		st.local = "no sales yet";
	if (st.local != NULL)
		return -1;
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", cfg.api_key);
	headers[0] = "Content-Type: application/json";
	headers[1] = auth;
	headers[2] = NULL;
	core->buf_printf(url, "%s/chat/completions", cfg.base_url);
	ai_prompt(&prompt);
	core->buf_printf(body, "{\"model\":");
	ai_str(body, cfg.model);
	core->buf_printf(body, ",\"messages\":[{\"role\":\"system\","
	    "\"content\":");
	core->buf_printf(&system, ai_system_prompt, cfg.max_recommendations);
	core->buf_json_string(body, system.data, system.len);
	core->buf_printf(body, "},{\"role\":\"user\",\"content\":");
	core->buf_json_string(body, prompt.data ? prompt.data : "",
	    prompt.len);
	core->buf_printf(body, "}],\"response_format\":{\"type\":"
	    "\"json_object\"},\"temperature\":%.2f}", cfg.temperature);
	core->buf_free(&prompt);
	core->buf_free(&system);

	r->method = "POST";
	r->url = url->data;
	r->headers = headers;
	r->body = body->data;
	r->body_len = body->len;
	r->max_response = 1024 * 1024;
	core->metric_add(m_calls, 1);
	return url->data != NULL && body->data != NULL ? 0 : -1;
}

static void
ai_done(const struct sales_upstream_result *res, void *arg)
{
	struct sales_buf b = {0};

	/* At shutdown nobody needs to hear about it. */
	if (res->shutdown || res->value == NULL) {
		ai_fallback_body(&b, res->shutdown ? "openai error: shutdown" :
		    "out of memory", 0);
		ai_respond(arg, &b);
		core->buf_free(&b);
		return;
	}
	ai_respond(arg, res->value);
}

static void
ai_get(struct sales_request *req, void *arg)
{
	struct sales_upstream_result res;

	(void)arg;
	/* An answer made before any sale is stale at the first one. */
	if (st.no_sales && (tally.orders > 0 || nknown > 0)) {
		core->upstream_invalidate(st.up);
		st.no_sales = 0;
	}
	if (core->upstream_get(st.up, ai_done, req) == 0)
		return;
	if (core->upstream_peek(st.up, &res) == 0 && res.value != NULL)
		ai_respond(req, res.value);
	else
		core->http_error(req, 503, "busy", "too many requests waiting "
		    "for recommendations", NULL);
}

/* The cache follows cfg: at init and on every reload. */
static void
ai_upstream_opts(struct sales_upstream_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->name = "openai";
	o->ttl_ms = (long)cfg.cache_ttl_ms;
	o->error_ttl_ms = cfg.cache_ttl_ms < AI_ERROR_TTL_MS ?
	    (long)cfg.cache_ttl_ms : AI_ERROR_TTL_MS;
	o->timeout_ms = (long)cfg.timeout_ms;
	o->request = ai_request;
	o->parse = ai_parse;
	o->free_value = ai_answer_free;
}

/* -- init --------------------------------------------------------------- */

/* cache_ttl_ms, or its older spelling in seconds; not both. */
static int
ai_ttl(void)
{
	const char *ms = core->config_str(self, "cache_ttl_ms", NULL);
	long long sec;

	if (core->config_str(self, "cache_ttl_s", NULL) == NULL)
		return core->config_int(self, "cache_ttl_ms", 60000, 0,
		    AI_MAX_TTL_MS, &cfg.cache_ttl_ms);
	if (ms != NULL) {
		core->log(self, SALES_LOG_ERROR, "\"cache_ttl_ms\" and "
		    "\"cache_ttl_s\" are both set: keep one (\"cache_ttl_s\" "
		    "is the older spelling, in seconds)");
		return -1;
	}
	if (core->config_int(self, "cache_ttl_s", 60, 0, AI_MAX_TTL_MS / 1000,
	    &sec) == -1)
		return -1;
	cfg.cache_ttl_ms = sec * 1000;
	return 0;
}

static int
ai_config(void)
{
	cfg.api_key = core->config_str(self, "api_key", "");
	cfg.model = core->config_str(self, "model", "gpt-4o-mini");
	if (core->config_url(self, "base_url", "https://api.openai.com/v1",
	    &cfg.base_url) == -1)
		return -1;
	if (core->config_int(self, "timeout_ms", 15000, 100, 300000,
	    &cfg.timeout_ms) == -1 ||
	    ai_ttl() == -1 ||
	    core->config_int(self, "max_products", 20, 1, 200,
	    &cfg.max_products) == -1 ||
	    core->config_int(self, "max_recommendations", 5, 1, AI_MAX_RECS,
	    &cfg.max_recommendations) == -1 ||
	    core->config_double(self, "temperature", 0.2, 0, 2,
	    &cfg.temperature) == -1)
		return -1;
	if (cfg.model[0] == '\0' || strlen(cfg.model) > 200) {
		core->log(self, SALES_LOG_ERROR, "\"model\" must be 1-200 "
		    "characters");
		return -1;
	}
	if (strlen(cfg.api_key) > 256 || strpbrk(cfg.api_key, "\r\n")) {
		core->log(self, SALES_LOG_ERROR, "\"api_key\" must be one line "
		    "of at most 256 characters");
		return -1;
	}
	return 0;
}

SALES_MODULE_INIT(c, m)
{
	struct sales_upstream_opts o;

	core = c;
	self = m;
	memset(&st, 0, sizeof(st));
	memset(&weather, 0, sizeof(weather));
	nknown = 0;
	if (ai_config() == -1)
		return -1;
	ai_upstream_opts(&o);
	if ((st.up = core->upstream_new(self, &o)) == NULL)
		return -1;
	m_calls = core->metric_counter(self,
	    "ai_recommend_upstream_requests_total",
	    "chat-completions requests started");
	m_fallbacks = core->metric_counter(self,
	    "ai_recommend_fallbacks_total",
	    "answers from the rule-based fallback");
	if (core->http_route(self, "GET", "/recommendations", ai_get,
	    NULL) == -1 ||
	    core->bus_subscribe(self, SALES_TOPIC_ORDER_CREATED, ai_on_order,
	    NULL) == -1 ||
	    core->bus_subscribe(self, SALES_TOPIC_WEATHER_UPDATED_V2,
	    ai_on_weather, NULL) == -1 ||
	    core->bus_subscribe(self, SALES_TOPIC_ANALYTICS_UPDATED_V2,
	    ai_on_analytics, NULL) == -1) {
		core->upstream_free(st.up);
		st.up = NULL;
		return -1;
	}
	core->log(self, SALES_LOG_INFO, "model \"%s\" at \"%s\", %s",
	    cfg.model, cfg.base_url, cfg.api_key[0] ? "online" :
	    "offline (no api key): rule-based fallback only");
	return 0;
}

/*
 * Every key changes live.  CHECK reads with the code init uses, keeps
 * the result aside and puts the running settings back; COMMIT drops the
 * cached answer, made with the old model or key.  A call in flight ends
 * as it began.
 */
SALES_MODULE_RELOAD(m, step)
{
	struct sales_upstream_opts o;
	struct ai_cfg old = cfg;
	int rc;

	(void)m;
	switch (step) {
	case SALES_RELOAD_CHECK:
		rc = ai_config();
		pending = cfg;
		cfg = old;
		return rc;
	case SALES_RELOAD_COMMIT:
		cfg = pending;
		ai_upstream_opts(&o);
		core->upstream_configure(st.up, &o);	/* o was checked */
		core->upstream_invalidate(st.up);
		core->log(self, SALES_LOG_INFO, "model \"%s\" at \"%s\", %s",
		    cfg.model, cfg.base_url, cfg.api_key[0] ? "online" :
		    "offline (no api key): rule-based fallback only");
		return 0;
	case SALES_RELOAD_ABORT:
		memset(&pending, 0, sizeof(pending));
		return 0;
	}
	return -1;
}

SALES_MODULE_FINI()
{
	core->upstream_free(st.up);
	st.up = NULL;
	ai_tally_free(&tally);
	free(analytics);
	analytics = NULL;
}
