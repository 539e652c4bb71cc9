/*
 * metrics.c - the registry behind GET /metrics.  Modules register
 * counters and gauges at init; the core renders them with its own
 * figures (core/ops.c).  Loop thread only.
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

struct sales_metric *
core_metric_new(const char *owner, const char *name, const char *help,
    int gauge)
{
	struct sales_metric *m, **p;
	size_t i;

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
