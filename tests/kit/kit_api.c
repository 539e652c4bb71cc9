/*
 * kit_api.c - the fake core's service table, the one a module under test
 * gets in sales_module_init.
 *
 * One line per member, in the order of struct sales_core, so a service
 * appended to the SDK is one line here (and its fake, or the core's own
 * code when it stands alone, its file added to the kit's sources in
 * CMakeLists.txt).  A member left out is NULL, and test_testkit fails
 * naming its offset, before any module test crashes on it.
 */
#include "buf.h"
#include "json.h"
#include "kit.h"
#include "metrics.h"
#include "upstream.h"

/* The core's own upstream service, on the kit's httpc and clocks. */
static struct sales_upstream *
kit_upstream_new(struct sales_module *self,
    const struct sales_upstream_opts *opts)
{
	return core_upstream_new(&kit_api, self, opts);
}

const struct sales_core kit_api = {
	.size = sizeof(struct sales_core),
	.version = "testkit",
	.log = kit_log,
	.config_str = kit_config_str,
	.config_int = kit_config_int,
	.config_double = kit_config_double,
	.config_bool = kit_config_bool,
	.config_each = kit_config_each,
	.module_name = kit_module_name,
	.http_route = kit_http_route,
	.http_method = kit_http_method,
	.http_path = kit_http_path,
	.http_param = kit_http_param,
	.http_query = kit_http_query,
	.http_header = kit_http_header,
	.http_body = kit_http_body,
	.http_add_header = kit_http_add_header,
	.http_respond = kit_http_respond,
	.http_error = kit_http_error,
	.ws_on_message = kit_ws_on_message,
	.ws_send = kit_ws_send,
	.ws_broadcast = kit_ws_broadcast,
	.ws_clients = kit_ws_clients,
	.bus_subscribe = kit_bus_subscribe,
	.bus_publish = kit_bus_publish,
	.store_write = kit_store_write,
	.store_query = kit_store_query,
	.store_query_sync = kit_store_query_sync,
	.store_result_free = kit_store_result_free,
	.store_rows = kit_store_rows,
	.store_cols = kit_store_cols,
	.store_value = kit_store_value,
	.httpc_request = kit_httpc_request,
	.timer_add = kit_timer_add,
	.timer_del = kit_timer_del,
	.now_ms = kit_now_ms,
	.json_parse = core_json_parse,
	.json_free = core_json_free,
	.json_type = core_json_type,
	.json_get = core_json_get,
	.json_len = core_json_len,
	.json_at = core_json_at,
	.json_member = core_json_member,
	.json_raw = core_json_raw,
	.json_string = core_json_string,
	.json_int = core_json_int,
	.json_double = core_json_double,
	.json_bool = core_json_bool,
	.buf_append = core_buf_append,
	.buf_printf = core_buf_printf,
	.buf_json_string = core_buf_json_string,
	.buf_free = core_buf_free,
	.metric_counter = kit_metric_counter,
	.metric_gauge = kit_metric_gauge,
	.metric_add = core_metric_add,
	.metric_set = core_metric_set,
	.mono_ms = kit_mono_ms,
	.buf_time = core_buf_time,
	.config_url = kit_config_url,
	.ws_event = kit_ws_event,
	.httpc_call = kit_httpc_call,
	.http_route_open = kit_http_route_open,
	.upstream_new = kit_upstream_new,
	.upstream_configure = core_upstream_configure,
	.upstream_get = core_upstream_get,
	.upstream_refresh = core_upstream_refresh,
	.upstream_invalidate = core_upstream_invalidate,
	.upstream_peek = core_upstream_peek,
	.upstream_free = core_upstream_free,
	.buf_money = core_buf_money,
	.store_write_rows = kit_store_write_rows,
	.store_watch = kit_store_watch,
};
