/*
 * metrics.c - the registry behind GET /metrics.  Modules register
 * counters and gauges at init; the core renders them with its own
 * figures (core/ops.c).  Loop thread only.  Also the histogram helper
 * the core's own histograms share, and the WebSocket message counters,
 * kept here so that core/ws.c only says what happened to a message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "metrics.h"

struct sales_metric {
	char	owner[72];
	char	name[96];
	char	help[160];
	int	gauge;
	double	value;
};

static struct sales_metric	**metrics;
static size_t			  nmetrics;

/*
 * Index 0 is "other", then the core's own types (shown from the start),
 * then the modules' in order of first use.
 */
struct ws_type {
	char		name[65];
	uint64_t	sent;
	uint64_t	dropped;
};

static struct ws_type	ws_types[CORE_WS_TYPES + 1] = {
	{ "other", 0, 0 }, { "subscribed", 0, 0 }, { "error", 0, 0 },
	{ "newOrders", 0, 0 }
};
static size_t		nws_types = 4;

static void	ws_render(struct sales_buf *);

struct sales_metric *
core_metric_new(const char *owner, const char *name, const char *help,
    int gauge)
{
	struct sales_metric *m, **p;
	size_t i;

	/* "salesd_" + name must fit, whole: a cut name could clash. */
	if (name == NULL || *name == '\0' ||
	    strlen(name) >= sizeof(((struct sales_metric *)0)->name) - 7) {
		core_log(owner, SALES_LOG_ERROR, "metric \"%s\": a name of 1 to "
		    "%zu characters", name ? name : "(null)",
		    sizeof(((struct sales_metric *)0)->name) - 8);
		return NULL;
	}
	for (i = 0; name[i]; i++) {
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '_')) {
			core_log(owner, SALES_LOG_ERROR, "metric \"%s\": use "
			    "lower-case letters, digits and _", name);
			return NULL;
		}
	}
	for (i = 0; i < nmetrics; i++) {
		if (strcmp(metrics[i]->name + 7, name) == 0) {
			core_log(owner, SALES_LOG_ERROR, "metric \"%s\" is "
			    "already registered", name);
			return NULL;
		}
	}
	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (p = realloc(metrics, (nmetrics + 1) * sizeof(*p))) == NULL) {
		free(m);
		return NULL;
	}
	metrics = p;
	snprintf(m->owner, sizeof(m->owner), "%s", owner);
	snprintf(m->name, sizeof(m->name), "salesd_%s", name);
	snprintf(m->help, sizeof(m->help), "%s", help ? help : name);
	m->gauge = gauge;
	metrics[nmetrics++] = m;
	return m;
}

void
core_metric_add(struct sales_metric *m, double v)
{
	if (m)
		m->value += v;
}

void
core_metric_set(struct sales_metric *m, double v)
{
	if (m)
		m->value = v;
}

void
core_metrics_render(struct sales_buf *b)
{
	size_t i;

	ws_render(b);
	for (i = 0; i < nmetrics; i++)
		core_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n",
		    metrics[i]->name, metrics[i]->help, metrics[i]->name,
		    metrics[i]->gauge ? "gauge" : "counter", metrics[i]->name,
		    metrics[i]->value);
}

void
core_metrics_free(void)
{
	size_t i;

	for (i = 0; i < nmetrics; i++)
		free(metrics[i]);
	free(metrics);
	metrics = NULL;
	nmetrics = 0;
}

void
core_metrics_forget(const char *owner)
{
	size_t i, k;

	for (i = k = 0; i < nmetrics; i++) {
		if (strcmp(metrics[i]->owner, owner) == 0)
			free(metrics[i]);
		else
			metrics[k++] = metrics[i];
	}
	nmetrics = k;
}

const double	core_hist_seconds[] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
const size_t	core_hist_nseconds = sizeof(core_hist_seconds) /
		    sizeof(core_hist_seconds[0]);

void
core_hist_observe(struct core_hist *h, const double *bounds, size_t nbounds,
    double v)
{
	size_t i;

	for (i = 0; i < nbounds && v > bounds[i]; i++)
		;
	h->counts[i]++;
	h->count++;
	h->sum += v;
}

void
core_hist_render(struct sales_buf *b, const char *name, const char *labels,
    const double *bounds, size_t nbounds, const struct core_hist *h)
{
	const char *sep = labels[0] != '\0' ? "," : "";
	uint64_t cum = 0;
	size_t i;

	for (i = 0; i < nbounds; i++) {
		cum += h->counts[i];
		core_buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name,
		    labels, sep, bounds[i], (unsigned long long)cum);
	}
	core_buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels,
	    sep, (unsigned long long)h->count);
	if (labels[0] != '\0')
		core_buf_printf(b, "%s_sum{%s} %.9g\n%s_count{%s} %llu\n", name,
		    labels, h->sum, name, labels, (unsigned long long)h->count);
	else
		core_buf_printf(b, "%s_sum %.9g\n%s_count %llu\n", name, h->sum,
		    name, (unsigned long long)h->count);
}

int
core_metrics_ws_type(const char *type)
{
	size_t i, len = strlen(type);

	for (i = 1; i < nws_types; i++)
		if (strcmp(ws_types[i].name, type) == 0)
			return (int)i;
	/* Types are the modules' words, not the clients': few and fixed. */
	if (nws_types > CORE_WS_TYPES || len >= sizeof(ws_types[0].name))
		return 0;
	memcpy(ws_types[nws_types].name, type, len + 1);
	return (int)nws_types++;
}

void
core_metrics_ws_sent(int type)
{
	if (type >= 0 && (size_t)type < nws_types)
		ws_types[type].sent++;
}

void
core_metrics_ws_dropped(int type, uint64_t n)
{
	if (type >= 0 && (size_t)type < nws_types)
		ws_types[type].dropped += n;
}

/* A label value: \\, \" and the newline escaped, as the format wants. */
static void
label_value(struct sales_buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			core_buf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			core_buf_printf(b, "\\n");
		else
			core_buf_append(b, s, 1);
	}
}

/*
 * A fan-out slice: what an HTTP request may wait behind, and what tells
 * a stall of the server's loop from one of the machine (a slow delivery
 * with no slow slice).  Slices aim at about 1 ms.
 */
static const double	ws_slice_bounds[] = {
	0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1, 1
};
#define WS_SLICE_NBOUNDS \
	(sizeof(ws_slice_bounds) / sizeof(ws_slice_bounds[0]))
static struct core_hist	ws_slices;

void
core_metrics_ws_slice(double seconds)
{
	core_hist_observe(&ws_slices, ws_slice_bounds, WS_SLICE_NBOUNDS,
	    seconds);
}

static void
ws_render(struct sales_buf *b)
{
	static const char *const what[2][2] = {
		{ "sent", "messages written whole to a client's socket, by "
		    "type (one per client for a broadcast)" },
		{ "dropped", "messages for a client that never reached it: "
		    "over ws_max_buffered, cut by max_output_memory, or queued "
		    "when the connection ended" }
	};
	size_t i, k;

	for (k = 0; k < 2; k++) {
		core_buf_printf(b, "# HELP salesd_websocket_messages_%s_total "
		    "%s\n# TYPE salesd_websocket_messages_%s_total counter\n",
		    what[k][0], what[k][1], what[k][0]);
		for (i = 0; i < nws_types; i++) {
			core_buf_printf(b, "salesd_websocket_messages_%s_total"
			    "{type=\"", what[k][0]);
			label_value(b, ws_types[i].name);
			core_buf_printf(b, "\"} %llu\n", (unsigned long long)
			    (k ? ws_types[i].dropped : ws_types[i].sent));
		}
	}
	core_buf_printf(b, "# HELP salesd_websocket_write_slice_seconds "
	    "time the loop spent writing one slice of a fan-out\n"
	    "# TYPE salesd_websocket_write_slice_seconds histogram\n");
	core_hist_render(b, "salesd_websocket_write_slice_seconds", "",
	    ws_slice_bounds, WS_SLICE_NBOUNDS, &ws_slices);
}
