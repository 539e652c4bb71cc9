/*
 * kit.h - what the test kit's files share (private to tests/kit/).
 *
 * The kit is one struct sales_kit, reachable from every fake service
 * through kit_cur, because the services of struct sales_core take no
 * handle.  The services are kit_<subsystem>.c; kit_api.c is the table.
 * The kit reuses the core's own code where it stands alone (buf, json,
 * uri, utf8, config, router, metrics, ws_events) and stands in for the
 * rest: the core's log (core_log here captures), the loop, timers, the
 * bus, storage and the HTTP client.
 */
#ifndef KIT_H
#define KIT_H

#include <sqlite3.h>

#include <sales/testkit.h>

struct core_config;

/* A loaded module, as the loader keeps it. */
struct sales_module {
	char			 name[64];
	void			*dl;
	void			(*fini)(void);
	struct core_config	*cfg;
	int			 initialised;
	struct sales_module	*next;		/* load order */
};

struct sales_timer {
	int64_t			 due;		/* mono ms */
	long			 ms;
	int			 repeat;
	void			(*cb)(void *);
	void			*arg;
	struct sales_module	*owner;
	uint64_t		 seq;		/* ties fire in add order */
	int			 firing;
	int			 dead;		/* deleted while firing */
	struct sales_timer	*next;
};

/* Something the loop will run, in the order it was queued. */
struct kit_job {
	void			(*run)(struct kit_job *);
	void			(*free)(struct kit_job *);
	struct sales_module	*owner;
	struct kit_job		*next;
};

/* A growable array of pointers. */
struct kit_vec {
	void	**v;
	size_t	  n, cap;
};

struct sales_kit {
	int64_t			 wall, mono;
	uint64_t		 seq;
	struct sales_module	*mods;
	struct sales_module	*in_init;	/* whose init runs */
	struct sales_module	*current;	/* whose code runs */
	struct sales_buf	 ini;		/* the config so far */
	struct kit_vec		 configs;	/* every one loaded */
	struct sales_timer	*timers;
	struct kit_job		*jobs, **jobs_tail;
	struct kit_vec		 events;	/* struct sales_kit_event */
	struct kit_vec		 subs;		/* struct kit_sub */
	struct kit_vec		 frames;	/* struct sales_kit_frame */
	struct kit_vec		 ws_handlers;	/* struct kit_ws_handler */
	uint64_t		 clients;	/* ids 1..clients connected */
	struct kit_vec		 requests;	/* struct sales_request */
	struct kit_vec		 calls;		/* pending struct kit_call */
	sqlite3			*db;
	int			 store_fail;
	char			 store_err[128];
	struct kit_vec		 log;		/* char *, one line each */
	struct sales_buf	 json;		/* sales_kit_json's answer */
};

extern struct sales_kit		*kit_cur;
extern const struct sales_core	 kit_api;

int	kit_push(struct kit_vec *v, void *p);
/* The element i of v (i < 0 from the end) among those match accepts. */
void	*kit_pick(struct kit_vec *v, long i,
	    int (*match)(const void *elem, const void *arg), const void *arg);
size_t	kit_count(struct kit_vec *v,
	    int (*match)(const void *elem, const void *arg), const void *arg);
void	kit_queue(struct kit_job *job);
char	*kit_strdup(const char *s);
char	*kit_memdup(const void *p, size_t len);

/* Who runs module code: kit_enter(m) ... kit_leave(prev). */
struct sales_module *kit_enter(struct sales_module *m);
void	kit_leave(struct sales_module *prev);
/* The module running now: in init, or whose callback the kit called. */
struct sales_module *kit_who(void);
const char *kit_who_name(void);
/* Logs and returns 0 outside init, as the core's api_in_init does. */
int	kit_in_init(struct sales_module *self, const char *what);

/* The fake services (kit_api.c puts them in the table). */
void	kit_log(struct sales_module *self, enum sales_log_level level,
	    const char *fmt, ...) SALES_PRINTF(3, 4);
const char *kit_config_str(struct sales_module *self, const char *key,
	    const char *def);
int	kit_config_int(struct sales_module *self, const char *key,
	    long long def, long long min, long long max, long long *out);
int	kit_config_double(struct sales_module *self, const char *key,
	    double def, double min, double max, double *out);
int	kit_config_bool(struct sales_module *self, const char *key, int def,
	    int *out);
int	kit_config_url(struct sales_module *self, const char *key,
	    const char *def, const char **out);
void	kit_config_each(struct sales_module *self,
	    void (*cb)(const char *, const char *, void *), void *arg);
const char *kit_module_name(struct sales_module *self);

int	kit_http_route(struct sales_module *self, const char *method,
	    const char *pattern, sales_http_handler handler, void *arg);
int	kit_http_route_open(struct sales_module *self, const char *pattern,
	    sales_http_handler handler, void *arg);
const char *kit_http_method(struct sales_request *req);
const char *kit_http_path(struct sales_request *req);
const char *kit_http_param(struct sales_request *req, const char *name);
const char *kit_http_query(struct sales_request *req, const char *name);
const char *kit_http_header(struct sales_request *req, const char *name);
const char *kit_http_body(struct sales_request *req, size_t *len);
int	kit_http_add_header(struct sales_request *req, const char *name,
	    const char *value);
void	kit_http_respond(struct sales_request *req, int status,
	    const char *content_type, const char *body, size_t len);
void	kit_http_error(struct sales_request *req, int status,
	    const char *code, const char *message, const char *field);
void	kit_http_free(void);

int	kit_ws_on_message(struct sales_module *self, const char *type,
	    sales_ws_handler handler, void *arg);
int	kit_ws_event(struct sales_module *self, const char *type);
int	kit_ws_send(uint64_t client, const char *type, const char *data,
	    size_t len);
void	kit_ws_broadcast(const char *type, const char *data, size_t len);
size_t	kit_ws_clients(void);
int	kit_bus_subscribe(struct sales_module *self, const char *topic,
	    sales_bus_handler handler, void *arg);
void	kit_bus_publish(const char *topic, const void *payload, size_t len);
void	kit_bus_forget(struct sales_module *m);
void	kit_bus_free(void);

int	kit_store_open(void);
void	kit_store_close(void);
int	kit_store_write(const struct sales_store_stmt *stmts, size_t n,
	    sales_store_write_cb cb, void *arg);
int	kit_store_write_rows(const struct sales_store_stmt *stmts, size_t n,
	    sales_store_rows_cb cb, void *arg);
int	kit_store_watch(struct sales_module *self, sales_store_watch_cb cb,
	    void *arg);
int	kit_store_query(const char *sql, const struct sales_value *params,
	    size_t nparams, sales_store_query_cb cb, void *arg);
struct sales_store_result *kit_store_query_sync(const char *sql,
	    const struct sales_value *params, size_t nparams);
void	kit_store_result_free(struct sales_store_result *res);
size_t	kit_store_rows(const struct sales_store_result *res);
size_t	kit_store_cols(const struct sales_store_result *res);
const struct sales_value *kit_store_value(const struct sales_store_result *res,
	    size_t row, size_t col);

int	kit_httpc_request(const struct sales_httpc_request *req,
	    sales_httpc_cb cb, void *arg);
int	kit_httpc_call(struct sales_module *self,
	    const struct sales_httpc_request *req, sales_httpc_cb cb,
	    void *arg);
/* The earliest deadline of a pending call (mono ms), or INT64_MAX. */
int64_t	kit_httpc_next(void);
/* Fails with "timeout" the calls whose deadline is past; how many. */
int	kit_httpc_expire(void);
void	kit_httpc_free(void);

struct sales_timer *kit_timer_add(long ms, int repeat, void (*cb)(void *),
	    void *arg);
void	kit_timer_del(struct sales_timer *t);
int64_t	kit_now_ms(void);
int64_t	kit_mono_ms(void);

struct sales_metric *kit_metric_counter(struct sales_module *self,
	    const char *name, const char *help);
struct sales_metric *kit_metric_gauge(struct sales_module *self,
	    const char *name, const char *help);

#endif /* KIT_H */
