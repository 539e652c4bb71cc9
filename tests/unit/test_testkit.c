/*
 * test_testkit.c - the test kit (<sales/testkit.h>) keeps the promises
 * of the core it fakes: the loader's refusals and undo; HTTP through the
 * real router (params, decoded queries, headers, 404/405/400, answers
 * that come later); bus delivery on the loop, in order, never nested;
 * WebSocket frames; storage units and queries that run and call back
 * only when the loop runs, a failing unit rolled back alone; upstream
 * calls answered, failed, timed out by the clock, or ended by
 * "shutdown"; timers in due order, repeating, deleted while firing;
 * and no member of the table left NULL.
 * The echo test module (tests/modules/echo) plays the module; where no
 * module uses a service, the test calls the kit's table itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <sales/testkit.h>

#define ECHO		SALES_TEST_MODULE_DIR "/echo.so"

static struct sales_kit		*kit;
static const struct sales_core	*core;

static int
setup(void **state)
{
	(void)state;
	if ((kit = sales_kit_new()) == NULL)
		return -1;
	core = sales_kit_core(kit);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	sales_kit_free(kit);
	kit = NULL;
	return 0;
}

static void
test_loader(void **state)
{
	(void)state;
	assert_null(sales_kit_new());		/* one at a time */
	assert_int_equal(sales_kit_load(kit, SALES_TEST_MODULE_DIR
	    "/nomagic.so"), -1);
	assert_int_equal(sales_kit_logged(kit, "\"nomagic\": no magic "
	    "block"), 1);
	assert_int_equal(sales_kit_load(kit, SALES_TEST_MODULE_DIR
	    "/badabi.so"), -1);
	assert_int_equal(sales_kit_logged(kit, "\"badabi\": ABI mismatch"),
	    1);
	assert_int_equal(sales_kit_load(kit, "/nonexistent/x.so"), -1);
	assert_int_equal(sales_kit_logged(kit, "cannot load"), 1);
	assert_int_equal(sales_kit_load(kit, "/tmp/Bad-Name.so"), -1);
	/* A failed init's route is gone. */
	assert_int_equal(sales_kit_config(kit, "failinit",
	    "must_be_positive", "-5"), 0);
	assert_int_equal(sales_kit_load(kit, SALES_TEST_MODULE_DIR
	    "/failinit.so"), -1);
	assert_int_equal(sales_kit_request(kit, "GET", "/failinit", NULL,
	    NULL, 0)->status, 404);
	/* Registration outside init is refused, as by the core. */
	assert_int_equal(sales_kit_config(kit, "echo", "greeting", "hi"), 0);
	assert_int_equal(sales_kit_config(kit, "echo", "bad\nkey", "x"), -1);
	assert_int_equal(sales_kit_config(kit, "echo", "greting", "typo"), 0);
	assert_int_equal(sales_kit_load(kit, ECHO), 0);
	assert_int_equal(sales_kit_logged(kit, "unknown key \"greting\" in "
	    "[echo]"), 1);
	assert_int_equal(sales_kit_logged(kit, "unknown key"), 1);
	assert_int_equal(sales_kit_load(kit, ECHO), -1);
	assert_int_equal(sales_kit_logged(kit, "\"echo\": loaded twice"), 1);
	assert_null(core->store_query_sync("SELECT 1", NULL, 0));
	assert_int_equal(sales_kit_logged(kit, "store_query_sync outside "
	    "sales_module_init"), 1);
}

static void
test_http(void **state)
{
	const char *h[] = { "X-Test: yes", "Content-Type: text/plain", NULL };
	const struct sales_kit_reply *r;

	(void)state;
	assert_int_equal(sales_kit_config(kit, "echo", "greeting", "hi"), 0);
	assert_int_equal(sales_kit_load(kit, ECHO), 0);
	r = sales_kit_request(kit, "GET", "/echo?q=a%20b+c&x", h, NULL, 0);
	assert_int_equal(r->status, 200);
	assert_string_equal(sales_kit_json(kit, r->body, "q"), "a b c");
	assert_string_equal(sales_kit_json(kit, r->body, "header"), "yes");
	assert_string_equal(sales_kit_json(kit, r->body, "greeting"), "hi");
	assert_string_equal(sales_kit_json(kit, r->body, "path"), "/echo");
	assert_null(sales_kit_json(kit, r->body, "nothing"));

	r = sales_kit_request(kit, "GET", "/echo/7/items/a%2Fb", NULL, NULL,
	    0);
	assert_string_equal(r->body, "{\"id\":\"7\",\"item\":\"a/b\"}");
	r = sales_kit_request(kit, "POST", "/echo", h, "raw", 3);
	assert_string_equal(r->body, "raw");
	assert_string_equal(sales_kit_reply_header(r, "content-type"),
	    "text/plain");
	r = sales_kit_request(kit, "HEAD", "/echo", NULL, NULL, 0);
	assert_int_equal(r->status, 200);
	assert_int_equal(r->len, 0);

	assert_int_equal(sales_kit_request(kit, "GET", "/nope", NULL, NULL,
	    0)->status, 404);
	r = sales_kit_request(kit, "DELETE", "/echo", NULL, NULL, 0);
	assert_int_equal(r->status, 405);
	assert_string_equal(sales_kit_json(kit, r->body, "error.code"),
	    "method_not_allowed");
	assert_int_equal(sales_kit_request(kit, "GET", "/echo?q=%zz", NULL,
	    NULL, 0)->status, 400);
	assert_null(sales_kit_request(kit, "GET", "echo", NULL, NULL, 0));

	/* Answered by a timer: status 0 until the clock gets there. */
	r = sales_kit_request(kit, "GET", "/echo/slow?ms=250", NULL, NULL, 0);
	assert_int_equal(r->status, 0);
	assert_string_equal(r->body, "");
	assert_int_equal(sales_kit_advance(kit, 249), 0);
	assert_int_equal(r->status, 0);
	assert_int_equal(sales_kit_advance(kit, 1), 0);
	assert_int_equal(r->status, 200);
	assert_string_equal(r->body, "{\"slept\":250}");
	assert_int_equal(core->now_ms(), SALES_KIT_EPOCH_MS + 250);
	assert_int_equal(core->mono_ms(), SALES_KIT_MONO_MS + 250);
}

static void
test_bus_and_ws(void **state)
{
	const struct sales_kit_frame *f;
	const struct sales_kit_reply *r;
	uint64_t c;

	(void)state;
	assert_int_equal(sales_kit_load(kit, ECHO), 0);
	sales_kit_publish(kit, "echo.event", "chain", 5);
	sales_kit_publish(kit, "echo.event", "two", 3);
	r = sales_kit_request(kit, "GET", "/echo/events", NULL, NULL, 0);
	assert_string_equal(r->body, "[]");	/* not before the loop */
	assert_int_equal(sales_kit_run(kit), 3);
	r = sales_kit_request(kit, "GET", "/echo/events", NULL, NULL, 0);
	/* Published from a handler: queued after what was already there. */
	assert_string_equal(sales_kit_json(kit, r->body, "0.payload"),
	    "chain");
	assert_string_equal(sales_kit_json(kit, r->body, "1.payload"), "two");
	assert_string_equal(sales_kit_json(kit, r->body, "2.payload"),
	    "chained");
	assert_int_equal(sales_kit_events(kit, "echo.event"), 3);
	assert_int_equal(sales_kit_events(kit, NULL), 3);
	assert_memory_equal(sales_kit_event(kit, "echo.event", -1)->payload,
	    "chained", 7);
	assert_null(sales_kit_event(kit, "echo.event", 3));

	c = sales_kit_ws_connect(kit);
	assert_int_equal(sales_kit_ws_message(kit, c, "echo", "[1]"), 0);
	assert_int_equal(sales_kit_ws_message(kit, c, "other", NULL), -1);
	f = sales_kit_frame(kit, "echo", 0);
	assert_int_equal(f->client, c);
	assert_string_equal(f->data, "[1]");
	assert_int_equal(core->ws_send(c + 1, "echo", "1", 1), -1);
	r = sales_kit_request(kit, "POST", "/echo/broadcast?type=echo", NULL,
	    "{\"a\":1}", 7);
	assert_string_equal(r->body, "{\"clients\":1}");
	f = sales_kit_frame(kit, NULL, -1);
	assert_int_equal(f->client, 0);
	assert_string_equal(f->data, "{\"a\":1}");
	assert_int_equal(sales_kit_frames(kit, "echo"), 2);
}

static int	calls;
static char	last[256];

static void
on_write(int status, int constraint, const char *err, void *arg)
{
	(void)arg;
	calls++;
	snprintf(last, sizeof(last), "%d %d %s", status, constraint,
	    err ? err : "-");
}

static void
on_query(const struct sales_store_result *res, const char *err, void *arg)
{
	const struct sales_value *v;

	(void)arg;
	calls++;
	if (res == NULL) {
		snprintf(last, sizeof(last), "error %s", err);
		return;
	}
	v = core->store_value(res, 0, 1);
	snprintf(last, sizeof(last), "%zu rows, %zu cols, %s",
	    core->store_rows(res), core->store_cols(res),
	    v && v->type == SALES_VALUE_TEXT ? v->s : "?");
	assert_null(core->store_value(res, 0, 2));
}

static void
test_store(void **state)
{
	struct sales_value p[2];
	struct sales_store_stmt st[2];

	(void)state;
	calls = 0;
	assert_int_equal(sales_kit_sql(kit, "CREATE TABLE t(id INTEGER "
	    "PRIMARY KEY, s TEXT)"), 0);
	memset(p, 0, sizeof(p));
	p[0].type = SALES_VALUE_INT;
	p[0].i = 1;
	p[1].type = SALES_VALUE_TEXT;
	p[1].s = "one";		/* len 0: a C string */
	st[0].sql = "INSERT INTO t VALUES (?1, ?2)";
	st[0].params = p;
	st[0].nparams = 2;
	assert_int_equal(core->store_write(st, 1, on_write, NULL), 0);
	assert_int_equal(calls, 0);
	assert_int_equal(sales_kit_sql_int(kit, "SELECT COUNT(*) FROM t"), 0);
	assert_int_equal(sales_kit_run(kit), 1);
	assert_string_equal(last, "0 0 -");
	assert_int_equal(sales_kit_sql_int(kit, "SELECT COUNT(*) FROM t"), 1);

	/* A unit whose second statement fails leaves nothing of the first. */
	p[0].i = 2;
	st[1] = st[0];
	assert_int_equal(core->store_write(st, 2, on_write, NULL), 0);
	sales_kit_run(kit);
	assert_int_equal(strncmp(last, "-1 1 ", 5), 0);
	assert_int_equal(sales_kit_sql_int(kit, "SELECT COUNT(*) FROM t"), 1);

	assert_int_equal(core->store_query("SELECT id, s FROM t WHERE id = "
	    "?1", p, 1, on_query, NULL), 0);
	sales_kit_run(kit);
	assert_string_equal(last, "0 rows, 2 cols, ?");
	p[0].i = 1;
	core->store_query("SELECT id, s FROM t WHERE id = ?1", p, 1,
	    on_query, NULL);
	sales_kit_run(kit);
	assert_string_equal(last, "1 rows, 2 cols, one");
	core->store_query("SELECT nope", NULL, 0, on_query, NULL);
	sales_kit_run(kit);
	assert_string_equal(last, "error no such column: nope");

	sales_kit_store_fail(kit, 1, "disk full");
	core->store_write(st, 1, on_write, NULL);
	sales_kit_run(kit);
	assert_string_equal(last, "-1 0 disk full");
	assert_int_equal(calls, 6);
	assert_int_equal(sales_kit_migrate(kit, "/nonexistent"), -1);
}

static long	got_status;
static char	got[128];

static void
on_upstream(long status, const char *body, size_t len, const char *err,
    void *arg)
{
	(void)arg;
	(void)len;
	got_status = status;
	snprintf(got, sizeof(got), "%s", err ? err : body);
}

static void
test_upstream(void **state)
{
	const char *h[] = { "Authorization: Bearer t", NULL };
	struct sales_httpc_request req;
	const struct sales_kit_call *c;

	(void)state;
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.url = "https://api.example/v1";
	req.headers = h;
	req.body = "{}";
	req.body_len = 2;
	req.max_response = 8;
	assert_int_equal(core->httpc_request(&req, on_upstream, NULL), 0);
	c = sales_kit_call(kit, 0);
	assert_null(c->module);
	assert_string_equal(c->method, "POST");
	assert_string_equal(c->body, "{}");
	assert_int_equal(c->timeout_ms, 10000);
	assert_string_equal(sales_kit_call_header(c, "authorization"),
	    "Bearer t");
	assert_int_equal(sales_kit_answer(kit, c, 200, "123456789"), 0);
	assert_int_equal(got_status, 0);
	assert_string_equal(got, "response too large");
	assert_int_equal(sales_kit_answer(kit, c, 200, "x"), -1); /* gone */

	req.url = "ftp://nope";
	assert_int_equal(core->httpc_request(&req, on_upstream, NULL), -1);
	req.url = "http://127.0.0.1:9/";
	req.timeout_ms = 500;
	core->httpc_request(&req, on_upstream, NULL);
	assert_int_equal(sales_kit_advance(kit, 499), 0);
	assert_int_equal(sales_kit_calls(kit), 1);
	assert_int_equal(sales_kit_advance(kit, 1), 0);
	assert_int_equal(sales_kit_calls(kit), 0);
	assert_string_equal(got, "timeout");
	/* One still pending when the kit goes: "shutdown". */
	core->httpc_request(&req, on_upstream, NULL);
	sales_kit_free(kit);
	kit = NULL;
	assert_string_equal(got, "shutdown");
}

static char		order[64];
static struct sales_timer *self_del;

static void
tick(void *arg)
{
	size_t n = strlen(order);

	snprintf(order + n, sizeof(order) - n, "%s", (const char *)arg);
	if (strcmp(arg, "d") == 0)
		core->timer_del(self_del);	/* inside its own callback */
}

static void
test_timers(void **state)
{
	struct sales_timer *rep;

	(void)state;
	order[0] = '\0';
	assert_null(core->timer_add(-1, 0, tick, "x"));
	core->timer_add(20, 0, tick, "b");
	core->timer_add(10, 0, tick, "a");
	core->timer_add(20, 0, tick, "c");	/* ties: in add order */
	self_del = core->timer_add(30, 1, tick, "d");
	rep = core->timer_add(15, 1, tick, "r");
	assert_int_equal(sales_kit_run(kit), 0);
	assert_int_equal(sales_kit_advance(kit, 45), 0);
	assert_string_equal(order, "arbcdrr");
	core->timer_del(rep);
	assert_int_equal(sales_kit_advance(kit, 1000), 0);
	assert_string_equal(order, "arbcdrr");
	sales_kit_set_time(kit, 0);
	assert_int_equal(core->now_ms(), 0);
	assert_int_equal(core->mono_ms(), SALES_KIT_MONO_MS + 1045);
}

/*
 * Every service of the table is there: a member appended to struct
 * sales_core fails this test until tests/kit/kit_api.c fills it (one
 * line), rather than crashing the first module test that calls it.
 */
static void
test_table_complete(void **state)
{
	void (*const *fn)(void);
	size_t off;

	(void)state;
	assert_int_equal(core->size, sizeof(struct sales_core));
	for (off = offsetof(struct sales_core, log); off < core->size;
	    off += sizeof(*fn)) {
		fn = (void (*const *)(void))((const char *)core + off);
		if (*fn == NULL)
			fail_msg("struct sales_core: the member at offset %zu "
			    "is NULL in the kit; add it to tests/kit/kit_api.c",
			    off);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_table_complete, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_loader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_http, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bus_and_ws, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upstream, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_timers, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
