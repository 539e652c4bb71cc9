/*
 * ops.c - GET /health, /health/live, /health/ready and /metrics, the
 * core's only routes.  They
 * report on the server itself (modules, storage, connections), never on
 * sales: figures a module wants shown it registers as metrics.
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "core.h"
#include "guard.h"
#include "http.h"
#include "httpc.h"
#include "metrics.h"
#include "module.h"
#include "outmem.h"
#include "router.h"
#include "store.h"
#include "ws.h"

static int64_t	started_ms;	/* monotonic */
static int64_t	started_wall_ms;

static void
ops_health(struct sales_request *req, void *arg)
{
	struct sales_buf b = {0};
	int writable = core_store_writable();
	char fault[1024];
	size_t i, flen;

	(void)arg;
	core_buf_printf(&b, "{\"status\":\"%s\",\"version\":\"%s\","
	    "\"uptimeSeconds\":%lld,\"modules\":[",
	    writable ? "ok" : "degraded", CORE_VERSION,
	    (long long)((core_mono_ms() - started_ms) / 1000));
	for (i = 0; i < core_modules_count(); i++) {
		core_buf_printf(&b, "%s{\"name\":", i ? "," : "");
		core_buf_json_string(&b, core_modules_name(i),
		    strlen(core_modules_name(i)));
		core_buf_printf(&b, ",\"version\":");
		core_buf_json_string(&b, core_modules_version(i),
		    strlen(core_modules_version(i)));
		core_buf_printf(&b, "}");
	}
	core_buf_printf(&b, "],\"storage\":{\"driver\":\"%s\",\"writable\":%s,"
	    "\"pending\":%zu,\"commits\":%llu,\"units\":%llu,\"fault\":",
	    core_store_driver_name(), writable ? "true" : "false",
	    core_store_pending(), (unsigned long long)core_store_commits(),
	    (unsigned long long)core_store_units());
	/* What is wrong while degraded, null while not. */
	if ((flen = core_store_fault(fault, sizeof(fault))) > 0)
		core_buf_json_string(&b, fault, flen);
	else
		core_buf_printf(&b, "null");
	core_buf_printf(&b, "},\"websocketClients\":%zu,"
	    "\"httpConnections\":%zu}", core_ws_clients(),
	    core_http_connections());
	core_http_respond(req, writable ? 200 : 503, NULL, b.data, b.len);
	core_buf_free(&b);
}

/* Liveness: answering at all proves the loop runs. */
static void
ops_live(struct sales_request *req, void *arg)
{
	static const char body[] = "{\"status\":\"live\"}";

	(void)arg;
	core_http_respond(req, 200, NULL, body, sizeof(body) - 1);
}

/*
 * Readiness: storage takes writes, by the same truthful state /health
 * reports (core/store.c); 503 with the fault while it does not, so an
 * orchestrator sends no traffic that would only be refused.
 */
static void
ops_ready(struct sales_request *req, void *arg)
{
	struct sales_buf b = {0};
	char fault[1024];
	size_t flen;
	int writable = core_store_writable();

	(void)arg;
	core_buf_printf(&b, "{\"status\":\"%s\"", writable ? "ready" :
	    "not_ready");
	if (!writable) {
		core_buf_printf(&b, ",\"fault\":");
		if ((flen = core_store_fault(fault, sizeof(fault))) > 0)
			core_buf_json_string(&b, fault, flen);
		else
			core_buf_printf(&b, "null");
	}
	core_buf_printf(&b, "}");
	if (b.data == NULL)
		core_http_error(req, 503, "no_memory", "out of memory", NULL);
	else
		core_http_respond(req, writable ? 200 : 503, NULL, b.data,
		    b.len);
	core_buf_free(&b);
}

static void
ops_metric(struct sales_buf *b, const char *name, const char *type,
    const char *help, double v)
{
	core_buf_printf(b, "# HELP salesd_%s %s\n# TYPE salesd_%s %s\n"
	    "salesd_%s %.17g\n", name, help, name, type, name, v);
}

/* From /proc; -1 where there is none. */
static double
resident_bytes(void)
{
	unsigned long long size, rss;
	FILE *f;
	int n;

	if ((f = fopen("/proc/self/statm", "r")) == NULL)
		return -1;
	n = fscanf(f, "%llu %llu", &size, &rss);
	fclose(f);
	return n == 2 ? (double)rss * (double)sysconf(_SC_PAGESIZE) : -1;
}

static double
open_fds(void)
{
	struct dirent *de;
	DIR *d;
	double n = 0;

	if ((d = opendir("/proc/self/fd")) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;		/* not the one opendir holds */
}

/* The standard process_* families of the Prometheus client libraries. */
static void
ops_process(struct sales_buf *b)
{
	double v;

	core_buf_printf(b, "# HELP process_start_time_seconds start time of "
	    "the process since the epoch in seconds\n"
	    "# TYPE process_start_time_seconds gauge\n"
	    "process_start_time_seconds %.3f\n",
	    (double)started_wall_ms / 1000.0);
	if ((v = resident_bytes()) >= 0)
		core_buf_printf(b, "# HELP process_resident_memory_bytes "
		    "resident memory size in bytes\n"
		    "# TYPE process_resident_memory_bytes gauge\n"
		    "process_resident_memory_bytes %.0f\n", v);
	if ((v = open_fds()) >= 0)
		core_buf_printf(b, "# HELP process_open_fds number of open "
		    "file descriptors\n# TYPE process_open_fds gauge\n"
		    "process_open_fds %.0f\n", v);
	core_buf_printf(b, "# HELP salesd_build_info the running version, "
	    "always 1\n# TYPE salesd_build_info gauge\n"
	    "salesd_build_info{version=\"%s\",abi=\"%d.%d\"} 1\n",
	    CORE_VERSION, SALES_ABI_MAJOR, SALES_ABI_MINOR);
}

static void
ops_metrics(struct sales_request *req, void *arg)
{
	struct sales_buf b = {0};
	int i;

	(void)arg;
	ops_process(&b);
	/* Milliseconds are what the clock has: no float noise past them. */
	core_buf_printf(&b, "# HELP salesd_uptime_seconds seconds since "
	    "start\n# TYPE salesd_uptime_seconds gauge\n"
	    "salesd_uptime_seconds %.3f\n",
	    (double)(core_mono_ms() - started_ms) / 1000.0);
	ops_metric(&b, "http_requests_total", "counter",
	    "HTTP requests received", (double)core_http_requests_total());
	core_buf_printf(&b, "# HELP salesd_http_responses_total HTTP "
	    "responses by status class\n"
	    "# TYPE salesd_http_responses_total counter\n");
	for (i = 1; i <= 5; i++)
		core_buf_printf(&b, "salesd_http_responses_total{class=\"%dxx\"} "
		    "%llu\n", i, (unsigned long long)core_http_responses(i));
	ops_metric(&b, "http_connections", "gauge", "open HTTP connections",
	    (double)core_http_connections());
	ops_metric(&b, "websocket_clients", "gauge",
	    "connected WebSocket clients", (double)core_ws_clients());
	ops_metric(&b, "websocket_slow_cuts_total", "counter",
	    "WebSocket clients closed 1008 for holding more than "
	    "ws_max_buffered", (double)core_ws_slow_cuts());
	ops_metric(&b, "storage_commits_total", "counter",
	    "storage transactions committed", (double)core_store_commits());
	ops_metric(&b, "storage_units_total", "counter",
	    "storage write units committed", (double)core_store_units());
	ops_metric(&b, "storage_pending", "gauge",
	    "storage work queued or running", (double)core_store_pending());
	ops_metric(&b, "upstream_requests_total", "counter",
	    "upstream HTTP requests started", (double)core_httpc_requests());
	ops_metric(&b, "upstream_failures_total", "counter",
	    "upstream HTTP requests that got no response",
	    (double)core_httpc_failures());
	core_buf_printf(&b, "# HELP salesd_upstream_latency_seconds_total sum "
	    "of upstream request durations in seconds\n"
	    "# TYPE salesd_upstream_latency_seconds_total counter\n"
	    "salesd_upstream_latency_seconds_total %.3f\n",
	    (double)core_httpc_latency_ms() / 1000.0);
	core_http_metrics(&b);
	core_store_metrics(&b);
	core_httpc_metrics(&b);
	ops_metric(&b, "output_memory_bytes", "gauge",
	    "bytes held for clients (HTTP answers, WebSocket frames)",
	    (double)core_outmem_total());
	ops_metric(&b, "output_memory_budget_bytes", "gauge",
	    "max_output_memory (0: no budget)", (double)core_outmem_budget());
	ops_metric(&b, "output_memory_cuts_total", "counter",
	    "connections cut because clients together held more than "
	    "max_output_memory", (double)core_outmem_cuts());
	core_guard_metrics(&b);
	core_metrics_render(&b);
	core_http_respond(req, 200, "text/plain; version=0.0.4", b.data, b.len);
	core_buf_free(&b);
}

int
core_ops_register(void)
{
	started_ms = core_mono_ms();
	started_wall_ms = core_now_ms();
	if (core_router_add("core", "GET", "/health", ops_health, NULL) == -1 ||
	    core_router_add("core", "GET", "/health/live", ops_live,
	    NULL) == -1 ||
	    core_router_add("core", "GET", "/health/ready", ops_ready,
	    NULL) == -1 ||
	    core_router_add("core", "GET", "/metrics", ops_metrics, NULL) == -1)
		return -1;
	return 0;
}
