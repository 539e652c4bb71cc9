/*
 * main.c - salesd: reads sales.ini, opens storage, loads the modules,
 * serves until SIGINT/SIGTERM, then shuts down in the order that loses
 * nothing: stop accepting, end upstream calls (so whoever waits on one
 * gets its fallback), let the commits in flight finish and their clients
 * get answered, finalise modules.
 *
 * SIGHUP re-reads the same sales.ini and applies what can change live
 * (see reload()): all of it or, when any part refuses, none of it; one
 * that comes during start-up is held until the server is up.
 * SIGUSR1 is ignored: logs go to stderr, so there is no file to reopen.
 *
 * Where things are: relative paths in sales.ini are relative to its
 * directory (config.c).  With no [modules] dir or [storage] migrations,
 * salesd uses what came with the binary, found from /proc/self/exe: run
 * from its build directory, the build's modules and the source tree's
 * sql/; anywhere else, the installed layout relative to the binary
 * (<prefix>/bin/salesd: <prefix>/lib/salesd/modules and
 * <prefix>/share/salesd/sql), so an installed tree can be moved.
 */
#include <sys/resource.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "bus.h"
#include "config.h"
#include "core.h"
#include "guard.h"
#include "http.h"
#include "httpc.h"
#include "log.h"
#include "metrics.h"
#include "module.h"
#include "ops.h"
#include "outmem.h"
#include "router.h"
#include "store.h"
#include "timer.h"
#include "ws.h"
#include "ws_io.h"
#include "ws_ring.h"

#define SHUTDOWN_GRACE_MS	10000
#define SPARE_FDS		64	/* listener, storage, logs, upstreams */

static struct sales_timer	*drain_timer;
static int64_t			 drain_deadline;

/*
 * The configuration in force, and the ones it replaced: those stay until
 * shutdown, because strings read from them (the listen address, what
 * modules without reload kept) live until then, as the SDK promises.
 */
static const char		*cfg_path;
static struct core_config	*cfg_live;
static struct core_config	**cfg_old;
static size_t			 ncfg_old;
static const char		*guard_host;

/* Set by CMake; the fallbacks only keep a hand build compiling. */
#ifndef SALES_BUILD_DIR
#define SALES_BUILD_DIR		""
#define SALES_SOURCE_DIR	""
#endif
#ifndef SALES_REL_MODULEDIR
#define SALES_REL_MODULEDIR	"../lib/salesd/modules"
#define SALES_REL_SQLDIR	"../share/salesd/sql"
#endif
#ifndef SALES_REL_DRIVERDIR
#define SALES_REL_DRIVERDIR	"../lib/salesd/drivers"
#endif

static char	default_moddir[PATH_MAX + 64];
static char	default_sqldir[PATH_MAX + 64];
static char	default_drvdir[PATH_MAX + 64];	/* storage drivers */

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: salesd [-t] [-c FILE] [-H HOST] [-p PORT] [-v] [-h]\n"
	    "       salesd [-c FILE] migrate-data DBFILE\n"
	    "  -c, --config FILE  configuration (default sales.ini)\n"
	    "  -t, --check        validate the configuration, the modules and "
	    "the schema,\n"
	    "                     say what starting would do, change nothing\n"
	    "  -H, --host HOST    listen address (overrides SALESD_HOST and "
	    "[server] host)\n"
	    "  -p, --port PORT    listen port (overrides SALESD_PORT and "
	    "[server] port)\n"
	    "  -v, -V, --version  print the version and exit\n"
	    "  -h, --help         print this help and exit\n"
	    "  migrate-data DBFILE\n"
	    "                     copy the database file DBFILE into the "
	    "(empty) one\n"
	    "                     [storage] names, verify it, and exit\n");
}

/* The modules and migrations that came with this binary (see above). */
static void
default_dirs(void)
{
	char exe[PATH_MAX], build[PATH_MAX], *slash;
	ssize_t n;

	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) <= 0) {
		/* No /proc: the conventional installed place. */
		snprintf(default_moddir, sizeof(default_moddir),
		    "/usr/local/lib/salesd/modules");
		snprintf(default_sqldir, sizeof(default_sqldir),
		    "/usr/local/share/salesd/sql");
		snprintf(default_drvdir, sizeof(default_drvdir),
		    "/usr/local/lib/salesd/drivers");
		return;
	}
	exe[n] = '\0';
	if ((slash = strrchr(exe, '/')) != NULL)
		*slash = '\0';
	if (SALES_BUILD_DIR[0] != '\0' &&
	    realpath(SALES_BUILD_DIR, build) != NULL &&
	    strcmp(build, exe) == 0) {
		snprintf(default_moddir, sizeof(default_moddir), "%s/modules",
		    exe);
		snprintf(default_sqldir, sizeof(default_sqldir), "%s/sql",
		    SALES_SOURCE_DIR);
		snprintf(default_drvdir, sizeof(default_drvdir), "%s/drivers",
		    exe);
		return;
	}
	snprintf(default_moddir, sizeof(default_moddir), "%s/%s", exe,
	    SALES_REL_MODULEDIR);
	snprintf(default_sqldir, sizeof(default_sqldir), "%s/%s", exe,
	    SALES_REL_SQLDIR);
	snprintf(default_drvdir, sizeof(default_drvdir), "%s/%s", exe,
	    SALES_REL_DRIVERDIR);
	/* Without the "bin/..", for the messages that name them. */
	if (realpath(default_moddir, build) != NULL)
		snprintf(default_moddir, sizeof(default_moddir), "%s", build);
	if (realpath(default_sqldir, build) != NULL)
		snprintf(default_sqldir, sizeof(default_sqldir), "%s", build);
	if (realpath(default_drvdir, build) != NULL)
		snprintf(default_drvdir, sizeof(default_drvdir), "%s", build);
}

/*
 * Raises the soft limit on open files to what max_connections needs
 * (each connection is one descriptor, plus a few of our own), up to the
 * hard limit: the default soft limit (often 1024) would make accept()
 * fail long before max_connections.  Only warns when it cannot: the
 * server still works, with fewer clients.
 */
static void
raise_nofile(int max_connections)
{
	struct rlimit rl;
	rlim_t want;

	want = (rlim_t)max_connections + SPARE_FDS;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur >= want)
		return;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
		core_log("core", SALES_LOG_WARN, "[server] max_connections %d "
		    "needs %llu open files, the hard limit is %llu: at most "
		    "about %llu connections", max_connections,
		    (unsigned long long)want, (unsigned long long)rl.rlim_max,
		    rl.rlim_max > SPARE_FDS ? (unsigned long long)(rl.rlim_max -
		    SPARE_FDS) : 0ULL);
		want = rl.rlim_max;
	}
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		core_log("core", SALES_LOG_WARN, "cannot raise the open file "
		    "limit to %llu: %s", (unsigned long long)want,
		    strerror(errno));
}

/* "-p 8080" or SALESD_PORT=8080: 0..65535, or -1 (logged). */
static int
parse_port(const char *what, const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0 || v > 65535) {
		log_error("%s: \"%s\" is not a port (0 to 65535)", what, s);
		return -1;
	}
	return (int)v;
}

/* Reads [server] into the HTTP and WebSocket settings. */
static int
read_server_config(struct core_config *cfg, struct core_http_config *http,
    struct core_ws_config *ws, size_t *max_output_memory, int *io_threads,
    int *io_uring)
{
	long long port, max_body, max_header, hto, bto, ito, pipe, conns;
	long long backlog;
	long long wsmsg, wsbuf, wsping, outmem, connout, iot;
	int access;

	http->host = core_config_str(cfg, "server", "host", "127.0.0.1");
	if (core_config_int(cfg, "server", "port", 3000, 0, 65535, &port) ||
	    core_config_int(cfg, "server", "max_body", 1048576, 1024,
	    1LL << 30, &max_body) ||
	    core_config_int(cfg, "server", "max_header", 16384, 1024,
	    1048576, &max_header) ||
	    core_config_int(cfg, "server", "header_timeout_ms", 10000, 10,
	    3600000, &hto) ||
	    core_config_int(cfg, "server", "body_timeout_ms", 30000, 10,
	    3600000, &bto) ||
	    core_config_int(cfg, "server", "idle_timeout_ms", 60000, 10,
	    3600000, &ito) ||
	    core_config_int(cfg, "server", "max_pipeline", 32, 1, 1024, &pipe) ||
	    core_config_int(cfg, "server", "max_connections", 10000, 1,
	    1000000, &conns) ||
	    core_config_int(cfg, "server", "listen_backlog", 511, 1, 65535,
	    &backlog) ||
	    core_config_int(cfg, "server", "ws_max_message", 65536, 125,
	    1LL << 30, &wsmsg) ||
	    core_config_int(cfg, "server", "ws_max_buffered", 4194304, 4096,
	    1LL << 32, &wsbuf) ||
	    core_config_int(cfg, "server", "ws_ping_interval_ms", 30000, 0,
	    3600000, &wsping) ||
	    core_config_int(cfg, "server", "io_threads", 0, 0,
	    CORE_WS_IO_MAX, &iot) ||
	    core_config_int(cfg, "server", "max_output_memory", 256LL << 20,
	    0, 1LL << 40, &outmem) ||
	    core_config_int(cfg, "server", "max_conn_output", 256LL << 10,
	    4096, 1LL << 30, &connout) ||
	    core_config_bool(cfg, "server", "access_log", 0, &access) ||
	    core_config_bool(cfg, "server", "io_uring", 1, io_uring))
		return -1;
	*max_output_memory = (size_t)outmem;
	http->port = (int)port;
	http->max_body = (size_t)max_body;
	http->max_header = (size_t)max_header;
	http->header_timeout_ms = (long)hto;
	http->body_timeout_ms = (long)bto;
	http->idle_timeout_ms = (long)ito;
	http->max_pipeline = (int)pipe;
	http->max_conn_output = (size_t)connout;
	http->max_connections = (int)conns;
	http->listen_backlog = (int)backlog;
	http->access_log = access;
	ws->max_message = (size_t)wsmsg;
	ws->max_buffered = (size_t)wsbuf;
	ws->idle_ping_ms = (long)wsping;
	*io_threads = (int)iot;
	return 0;
}

/* [server] log_level and log_format, checked, not applied. */
static int
read_log_config(struct core_config *cfg, const char **level, int *json)
{
	*level = core_config_str(cfg, "server", "log_level", "info");
	if (core_log_level_parse(*level) == -1) {
		log_error("[server] log_level: use error, warn, info or debug");
		return -1;
	}
	if ((*json = core_log_format_parse(core_config_str(cfg, "server",
	    "log_format", "text"))) == -1) {
		log_error("[server] log_format: use text or json");
		return -1;
	}
	return 0;
}

static int
read_storage_config(struct core_config *cfg, struct core_store_config *st)
{
	char err[1024];
	long long group;

	memset(st, 0, sizeof(*st));
	st->driver = core_config_str(cfg, "storage", "driver",
	    core_store_default_driver());
	st->driver_dir = core_config_path(cfg, "storage", "driver_dir",
	    default_drvdir);
	st->path = core_config_path(cfg, "storage", "path",
	    "database/sales.db");
	st->url = core_config_str(cfg, "storage", "url", NULL);
	if (st->url != NULL && *st->url == '\0')
		st->url = NULL;		/* ${DATABASE_URL} unset */
	st->migrations = core_config_path(cfg, "storage", "migrations",
	    default_sqldir);
	if (st->path == NULL || st->migrations == NULL ||
	    st->driver_dir == NULL)
		return -1;
	if (core_config_int(cfg, "storage", "max_group", 1024, 1, 100000,
	    &group))
		return -1;
	st->max_group = (int)group;
	/* Loaded here, so that a driver that is not there stops start-up. */
	if (core_store_driver_load(st, err, sizeof(err)) == NULL) {
		log_error("[storage] driver: %s", err);
		return -1;
	}
	return 0;
}

/*
 * salesd migrate-data DBFILE: the database file of the embedded driver
 * into the one [storage] names, with the schema of the plainly named
 * modules of [modules] load.
 */
static int
migrate_data(struct core_config *cfg, const struct core_store_config *st,
    const char *from)
{
	const char *mods[64];
	char list[2048], *p, *save = NULL;
	size_t n = 0;

	snprintf(list, sizeof(list), "%s", core_config_str(cfg, "modules",
	    "load", ""));
	for (p = strtok_r(list, " \t,", &save); p != NULL && n < 64;
	    p = strtok_r(NULL, " \t,", &save))
		if (strchr(p, '/') == NULL)	/* a path: its own sql/ */
			mods[n++] = p;
	return core_store_copy(st, from, mods, n);
}

/* Warns about keys of sections that nothing read. */
static int
report_unknown(struct core_config *cfg)
{
	const char *used[66];
	size_t i, nused = 0;

	used[nused++] = "server";
	used[nused++] = "modules";
	used[nused++] = "storage";
	used[nused++] = "auth";
	for (i = 0; i < core_modules_count() && nused < 66; i++)
		used[nused++] = core_modules_name(i);
	return core_config_report_unknown(cfg, used, nused);
}

/* core_config_each marks what it visits read: nothing else to do. */
static void
mark_read(const char *key, const char *value, void *arg)
{
	(void)key;
	(void)value;
	(void)arg;
}

/*
 * SIGHUP.  Everything is read and checked first (the file, [server],
 * [auth], each module's section through its reload CHECK); only when
 * nothing refused is anything applied.  What the process holds open
 * (the listening socket, storage, the loaded modules) keeps its value
 * and is named as needing a restart.  Connections, WebSocket clients
 * included, stay.
 */
static void
reload(void)
{
	static const char *const restart[][2] = {
		{ "server", "host" }, { "server", "port" },
		{ "server", "listen_backlog" },
		{ "modules", "load" }, { "modules", "dir" },
		{ "storage", "driver" }, { "storage", "path" },
		{ "storage", "migrations" }, { "storage", "max_group" },
		{ "storage", "url" }, { "storage", "driver_dir" },
		{ "server", "io_threads" }, { "server", "io_uring" }
	};
	struct core_http_config http;
	struct core_ws_config ws;
	struct core_config *cfg, **p;
	const char *level;
	char err[512];
	size_t i, outmem, changes;
	int json, iot, ring;

	if ((cfg = core_config_load(cfg_path, err, sizeof(err))) == NULL) {
		log_error("reload refused, the running configuration stays: "
		    "%s", err);
		return;
	}
	if (read_log_config(cfg, &level, &json) == -1)
		goto refuse;
	/* Room to keep the old file, first: nothing may fail after CHECK. */
	if ((p = realloc(cfg_old, (ncfg_old + 1) * sizeof(*p))) == NULL) {
		log_error("reload: out of memory");
		goto refuse;
	}
	cfg_old = p;
	if (read_server_config(cfg, &http, &ws, &outmem, &iot, &ring) == -1 ||
	    core_guard_prepare(cfg, guard_host) == -1)
		goto refuse;
	if (core_modules_reload_check(cfg) == -1) {
		core_guard_abort();
		goto refuse;
	}

	/* Nothing refused: apply. */
	for (i = 0; i < sizeof(restart) / sizeof(restart[0]); i++)
		if (core_config_changed(cfg_live, cfg, restart[i][0],
		    restart[i][1]))
			log_warn("[%s] %s: changed; that needs a restart, the "
			    "running value stays", restart[i][0],
			    restart[i][1]);
	for (i = 0; i < core_modules_count(); i++)
		if (!core_modules_reloadable(i) && core_config_changes(
		    cfg_live, cfg, core_modules_name(i)) > 0)
			log_warn("[%s]: changed; module \"%s\" reads it only "
			    "at start-up, that needs a restart",
			    core_modules_name(i), core_modules_name(i));
	changes = core_config_changes(cfg_live, cfg, NULL);
	core_log_set_level(level);
	core_log_set_format(json);
	core_outmem_configure(outmem);
	core_http_configure(&http);
	core_ws_configure(&ws);
	core_guard_commit();
	core_modules_reload_commit();
	/*
	 * Sections that only a restart reads count as read: a key unknown
	 * there is reported at start, not as noise on every reload.
	 */
	core_config_each(cfg, "modules", mark_read, NULL);
	core_config_each(cfg, "storage", mark_read, NULL);
	for (i = 0; i < core_modules_count(); i++)
		if (!core_modules_reloadable(i))
			core_config_each(cfg, core_modules_name(i), mark_read,
			    NULL);
	(void)report_unknown(cfg);
	cfg_old[ncfg_old++] = cfg_live;
	cfg_live = cfg;
	log_info("reloaded %s: %zu change%s", cfg_path, changes,
	    changes == 1 ? "" : "s");
	return;
refuse:
	log_error("reload of %s refused, the running configuration stays",
	    cfg_path);
	core_config_free(cfg);
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	if (drain_timer == NULL)
		reload();
}

static void
finish(void)
{
	if (drain_timer) {
		core_timer_del(drain_timer);
		drain_timer = NULL;
	}
	core_httpc_shutdown();
	core_store_close();
	core_bus_drain();
	event_base_loopbreak(core_base);
}

/* Waits for answers to the requests already taken, within a grace time. */
static void
drain_tick(void *arg)
{
	(void)arg;
	if ((core_store_pending() == 0 && core_http_connections() == 0) ||
	    core_mono_ms() > drain_deadline) {
		if (core_store_pending() || core_http_connections())
			log_warn("shutdown: grace time over with %zu storage "
			    "jobs and %zu connections left",
			    core_store_pending(), core_http_connections());
		finish();
	}
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	if (drain_timer)
		return;
	log_info("%s received, shutting down", sig == SIGINT ? "SIGINT" :
	    "SIGTERM");
	core_http_stop_accepting();
	core_http_shutdown();
	core_ws_shutdown();
	/*
	 * Upstream calls end now, not after the grace time: a request that
	 * waits on one (weather, a model) gets its fallback answer while
	 * the loop still runs to send it.
	 */
	core_httpc_shutdown();
	drain_deadline = core_mono_ms() + SHUTDOWN_GRACE_MS;
	drain_timer = core_timer_add(10, 1, drain_tick, NULL);
	if (drain_timer == NULL)
		finish();
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 't' },
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct core_http_config http;
	struct core_ws_config ws;
	struct core_store_config st;
	struct core_config *cfg = NULL;
	struct event *sigint = NULL, *sigterm = NULL, *sighup = NULL;
	sigset_t hupset;
	const char *path = "sales.ini", *moddir, *level;
	const char *host = NULL, *port = NULL, *portfrom = "--port";
	char err[512];
	const char *copy_from = NULL;
	int ch, check = 0, rc = 1, store_open = 0, unknown, json, iot, ring;
	size_t i, outmem;

	while ((ch = getopt_long(argc, argv, "c:tH:p:vVh", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check = 1;
			break;
		case 'H':
			host = optarg;
			break;
		case 'p':
			port = optarg;
			break;
		case 'v':
		case 'V':
			printf("salesd %s (module ABI %d.%d)\n", CORE_VERSION,
			    SALES_ABI_MAJOR, SALES_ABI_MINOR);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind == 2 && strcmp(argv[optind], "migrate-data") == 0)
		copy_from = argv[optind + 1];
	else if (optind != argc) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);	/* no log file to reopen */
	/*
	 * A SIGHUP before its handler is in place (systemctl reload right
	 * after start) would end the process: it waits, blocked, and is
	 * taken as a reload once the server is up.  The threads started
	 * meanwhile keep it blocked, so the loop's thread receives it.
	 */
	sigemptyset(&hupset);
	sigaddset(&hupset, SIGHUP);
	sigprocmask(SIG_BLOCK, &hupset, NULL);
	default_dirs();

	if ((cfg = core_config_load(path, err, sizeof(err))) == NULL) {
		log_error("%s", err);
		return 1;
	}
	if (read_log_config(cfg, &level, &json) == -1)
		goto out;
	core_log_set_level(level);
	core_log_set_format(json);
	if (read_server_config(cfg, &http, &ws, &outmem, &iot, &ring) == -1 ||
	    read_storage_config(cfg, &st) == -1)
		goto out;
	if (copy_from != NULL) {
		rc = migrate_data(cfg, &st, copy_from) == 0 ? 0 : 1;
		goto out;
	}
	core_outmem_configure(outmem);
	/* Command line, then environment, then sales.ini. */
	if (host == NULL)
		host = getenv("SALESD_HOST");
	if (host != NULL && *host != '\0')
		http.host = host;
	/* The guard's default names and warning follow the real address. */
	if (core_guard_configure(cfg, http.host) == -1)
		goto out;
	guard_host = http.host;		/* a reload gives the guard the same */
	if (port == NULL) {
		port = getenv("SALESD_PORT");
		portfrom = "SALESD_PORT";
	}
	if (port != NULL && *port != '\0' &&
	    (http.port = parse_port(portfrom, port)) == -1)
		goto out;
	if ((moddir = core_config_path(cfg, "modules", "dir",
	    default_moddir)) == NULL)
		goto out;
	if (!check)
		raise_nofile(http.max_connections);
	if (check) {
		if (core_store_plan(&st) == -1)
			goto out;
		st.check = 1;
	}

	/* Storage threads hand results back with event_active(). */
	if (evthread_use_pthreads() == -1 ||
	    (core_base = event_base_new()) == NULL) {
		log_error("cannot create the event loop");
		goto out;
	}
	core_ws_configure(&ws);
	if (!check && core_ws_io_start(iot) == -1)
		goto out;
	/*
	 * One writer thread submits to the ring: with I/O threads the
	 * slice's writes are spread with send() instead.
	 */
	if (!check && iot == 0 && ring)
		(void)core_ws_ring_start();
	if (core_bus_init() == -1 || core_httpc_init() == -1 ||
	    core_ops_register() == -1)
		goto out;
	if (core_store_open(&st) == -1)
		goto out;
	store_open = 1;
	if (core_modules_load(cfg, moddir, core_config_str(cfg, "modules",
	    "load", "")) == -1)
		goto out;

	unknown = report_unknown(cfg);
	if (check) {
		if (unknown)
			log_error("%s: %d unknown key(s), see above", path,
			    unknown);
		else
			printf("%s: ok (%zu modules)\n", path,
			    core_modules_count());
		rc = unknown ? 1 : 0;
		goto out;
	}

	if (core_http_start(&http) == -1)
		goto out;
	log_info("salesd %s listening on http://%s:%d (ws://%s:%d/)",
	    CORE_VERSION, http.host, core_http_port(), http.host,
	    core_http_port());
	sigint = evsignal_new(core_base, SIGINT, on_signal, NULL);
	sigterm = evsignal_new(core_base, SIGTERM, on_signal, NULL);
	sighup = evsignal_new(core_base, SIGHUP, on_hup, NULL);
	cfg_path = path;
	cfg_live = cfg;
	if (sigint == NULL || sigterm == NULL || sighup == NULL ||
	    evsignal_add(sigint, NULL) || evsignal_add(sigterm, NULL) ||
	    evsignal_add(sighup, NULL)) {
		log_error("cannot install signal handlers");
		goto out;
	}
	sigprocmask(SIG_UNBLOCK, &hupset, NULL);
	event_base_dispatch(core_base);
	store_open = 0;		/* finish() closed it */
	rc = 0;
	log_info("stopped");
out:
	if (sigint)
		event_free(sigint);
	if (sigterm)
		event_free(sigterm);
	if (sighup)
		event_free(sighup);
	/* Each of these is a no-op when already done or never started. */
	core_http_stop_accepting();
	core_ws_shutdown();
	core_ws_io_stop();
	core_ws_ring_stop();
	core_httpc_shutdown();
	if (store_open)
		core_store_close();
	core_bus_drain();
	core_modules_fini();
	core_bus_free();
	core_router_free();
	core_metrics_free();
	core_guard_free();
	if (core_base) {
		event_base_free(core_base);
		libevent_global_shutdown();
	}
	if (cfg_live != NULL)
		cfg = cfg_live;
	core_config_free(cfg);
	for (i = 0; i < ncfg_old; i++)
		core_config_free(cfg_old[i]);
	free(cfg_old);
	return rc;
}
