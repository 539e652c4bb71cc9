/*
 * ops.c - GET /health and GET /metrics, the core's only routes.  They
 * report on the server itself (modules, storage, connections), never on
 * sales: figures a module wants shown it registers as metrics.
 */
#include <string.h>

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

static int64_t	started_ms;

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

static void
ops_metric(struct sales_buf *b, const char *name, const char *type,
    const char *help, double v)
{
	core_buf_printf(b, "# HELP salesd_%s %s\n# TYPE salesd_%s %s\n"
	    "salesd_%s %.17g\n", name, help, name, type, name, v);
}

static void
ops_metrics(struct sales_request *req, void *arg)
{
	struct sales_buf b = {0};
	int i;

	(void)arg;
	ops_metric(&b, "uptime_seconds", "gauge", "seconds since start",
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
	ops_metric(&b, "upstream_latency_ms_total", "counter",
	    "sum of upstream request durations in ms",
	    (double)core_httpc_latency_ms());
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
	if (core_router_add("core", "GET", "/health", ops_health, NULL) == -1 ||
	    core_router_add("core", "GET", "/metrics", ops_metrics, NULL) == -1)
		return -1;
	return 0;
}
