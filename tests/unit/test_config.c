/*
 * test_config.c - sales.ini parsing, ${NAME} from the environment and
 * .env, typed getters with defaults and ranges, unknown-key reports.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config.h"
#include "unit.h"

static struct core_config *
load(const char *text, const char *envfile)
{
	char *dir = unit_tmpdir(), path[4096], err[256];
	struct core_config *cfg;

	if (envfile)
		unit_write_file(dir, ".env", envfile);
	snprintf(path, sizeof(path), "%s", unit_write_file(dir, "sales.ini", text));
	cfg = core_config_load(path, err, sizeof(err));
	if (cfg == NULL)
		fprintf(stderr, "load: %s\n", err);
	return cfg;
}

static void
test_values_and_defaults(void **state)
{
	struct core_config *cfg;
	long long n;
	double d;
	int b;

	(void)state;
	cfg = load("[server]\nport = 3100\nhost = 0.0.0.0 ; comment\n"
	    "[analytics]\nratio = 0.5\nlive = yes\n", NULL);
	assert_non_null(cfg);
	assert_string_equal(core_config_str(cfg, "server", "host", "x"),
	    "0.0.0.0");
	assert_string_equal(core_config_str(cfg, "server", "nope", "dflt"),
	    "dflt");
	assert_int_equal(core_config_int(cfg, "server", "port", 1, 0, 65535,
	    &n), 0);
	assert_int_equal(n, 3100);
	assert_int_equal(core_config_int(cfg, "server", "absent", 42, 0, 100,
	    &n), 0);
	assert_int_equal(n, 42);
	assert_int_equal(core_config_double(cfg, "analytics", "ratio", 1, 0, 1,
	    &d), 0);
	assert_true(d == 0.5);
	assert_int_equal(core_config_bool(cfg, "analytics", "live", 0, &b), 0);
	assert_int_equal(b, 1);
	core_config_free(cfg);
}

static void
test_bad_values(void **state)
{
	struct core_config *cfg;
	long long n = 7;
	double d;
	int b;

	(void)state;
	cfg = load("[s]\nport = 70000\nword = 12abc\nflag = maybe\nf = inf\n",
	    NULL);
	assert_non_null(cfg);
	unit_capture_begin();
	assert_int_equal(core_config_int(cfg, "s", "port", 1, 0, 65535, &n), -1);
	assert_int_equal(core_config_int(cfg, "s", "word", 1, 0, 100, &n), -1);
	assert_int_equal(core_config_bool(cfg, "s", "flag", 0, &b), -1);
	assert_int_equal(core_config_double(cfg, "s", "f", 0, 0, 1, &d), -1);
	assert_non_null(strstr(unit_capture_end(), "[s] port: 70000 is out of range"));
	assert_int_equal(n, 7);		/* untouched on error */
	core_config_free(cfg);
}

static void
test_url(void **state)
{
	struct core_config *cfg;
	const char *u;

	(void)state;
	cfg = load("[m]\na = http://127.0.0.1:8080/v1//\nb = ftp://x\n"
	    "c = https://\nd = http://a b\n", NULL);
	assert_non_null(cfg);
	assert_int_equal(core_config_url(cfg, "m", "a", NULL, &u), 0);
	assert_string_equal(u, "http://127.0.0.1:8080/v1");
	assert_int_equal(core_config_url(cfg, "m", "absent", "https://x.org",
	    &u), 0);
	assert_string_equal(u, "https://x.org");
	unit_capture_begin();
	assert_int_equal(core_config_url(cfg, "m", "b", NULL, &u), -1);
	assert_int_equal(core_config_url(cfg, "m", "c", NULL, &u), -1);
	assert_int_equal(core_config_url(cfg, "m", "d", NULL, &u), -1);
	assert_non_null(strstr(unit_capture_end(),
	    "[m] b: \"ftp://x\" is not an http:// or https:// URL"));
	core_config_free(cfg);
}

/* Plain http to another host sends API keys in clear: say so. */
static void
test_url_plain_http_warns(void **state)
{
	static const char *loopback[] = { "http://127.0.0.1:9/v1",
	    "http://localhost/v1", "http://[::1]:8080", "http://LOCALHOST",
	    "https://api.example.com/v1", "http://u:p@127.0.0.2/x" };
	static const char *remote[] = { "http://api.example.com/v1",
	    "http://127.0.0.1.example.com/", "http://10.0.0.5:8080",
	    "http://localhost.evil.net/", "http://127.0.0.1@evil.net/" };
	struct core_config *cfg;
	const char *u;
	char ini[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++) {
		snprintf(ini, sizeof(ini), "[m]\nu = %s\n", loopback[i]);
		assert_non_null(cfg = load(ini, NULL));
		unit_capture_begin();
		assert_int_equal(core_config_url(cfg, "m", "u", NULL, &u), 0);
		assert_null(strstr(unit_capture_end(), "unencrypted"));
		core_config_free(cfg);
	}
	for (i = 0; i < sizeof(remote) / sizeof(remote[0]); i++) {
		snprintf(ini, sizeof(ini), "[m]\nu = %s\n", remote[i]);
		assert_non_null(cfg = load(ini, NULL));
		unit_capture_begin();
		assert_int_equal(core_config_url(cfg, "m", "u", NULL, &u), 0);
		assert_non_null(strstr(unit_capture_end(), "[m] u: \"http://"));
		core_config_free(cfg);
	}
}

static void
test_env_expansion(void **state)
{
	struct core_config *cfg;

	(void)state;
	setenv("SALES_UNIT_KEY", "from-env", 1);
	unsetenv("SALES_UNIT_DOTENV");
	unsetenv("SALES_UNIT_UNSET");
	cfg = load("[w]\na = ${SALES_UNIT_KEY}\nb = x-${SALES_UNIT_DOTENV}-y\n"
	    "c = ${SALES_UNIT_UNSET}\n",
	    "# comment\nexport SALES_UNIT_DOTENV=\"dot env\"\n"
	    "SALES_UNIT_KEY=loses-to-env\n");
	assert_non_null(cfg);
	assert_string_equal(core_config_str(cfg, "w", "a", NULL), "from-env");
	assert_string_equal(core_config_str(cfg, "w", "b", NULL), "x-dot env-y");
	assert_string_equal(core_config_str(cfg, "w", "c", NULL), "");
	core_config_free(cfg);
	assert_null(load("[w]\na = ${BROKEN\n", NULL));
}

static void
test_syntax_error_and_missing_file(void **state)
{
	char err[256];

	(void)state;
	assert_null(load("[server\nport = 1\n", NULL));
	assert_null(core_config_load("/nonexistent/sales.ini", err, sizeof(err)));
	assert_non_null(strstr(err, "cannot open config"));
}

static void
each_cb(const char *key, const char *value, void *arg)
{
	char *out = arg;

	strcat(out, key);
	strcat(out, "=");
	strcat(out, value);
	strcat(out, ";");
}

static void
test_unknown_keys(void **state)
{
	const char *used[] = { "server", "weather" };
	struct core_config *cfg;
	char seen[256] = "";
	char *log;
	long long n;

	(void)state;
	cfg = load("[server]\nport = 1\nprot = 2\n[weather]\nrule.a = x\n"
	    "rule.b = y\n[unused]\nk = v\n", NULL);
	assert_non_null(cfg);
	core_config_int(cfg, "server", "port", 0, 0, 10, &n);
	core_config_each(cfg, "weather", each_cb, seen);
	assert_string_equal(seen, "rule.a=x;rule.b=y;");
	unit_capture_begin();
	assert_int_equal(core_config_report_unknown(cfg, used, 2), 1);
	log = unit_capture_end();
	assert_non_null(strstr(log, "unknown key \"prot\" in [server]"));
	assert_non_null(strstr(log, "section [unused] is not used"));
	core_config_free(cfg);
}

/* What a reload compares: keys set, removed or changed, last one wins. */
static void
test_changes(void **state)
{
	const char *used[] = { "server", "weather" };
	struct core_config *a, *b;

	(void)state;
	a = load("[server]\nport = 1\nlog_level = info\nport = 2\n"
	    "[weather]\nrule.a = x\nrule.b = y\n", NULL);
	b = load("[server]\nport = 2\nlog_level = debug\n"
	    "[weather]\nrule.b = y\nrule.c = z\n", NULL);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(core_config_changed(a, b, "server", "port"), 0);
	assert_int_equal(core_config_changed(a, b, "server", "log_level"), 1);
	assert_int_equal(core_config_changed(a, b, "weather", "rule.a"), 1);
	assert_int_equal(core_config_changed(a, b, "weather", "nope"), 0);
	assert_int_equal(core_config_changes(a, b, NULL), 3);
	assert_int_equal(core_config_changes(a, b, "weather"), 2);
	assert_int_equal(core_config_changes(a, a, NULL), 0);
	/* Comparing marks nothing read. */
	unit_capture_begin();
	assert_int_equal(core_config_report_unknown(b, used, 2), 4);
	(void)unit_capture_end();
	core_config_free(a);
	core_config_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values_and_defaults),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_url_plain_http_warns),
		cmocka_unit_test(test_env_expansion),
		cmocka_unit_test(test_syntax_error_and_missing_file),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_changes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
