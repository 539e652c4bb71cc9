/*
 * httpc.c - the asynchronous HTTP client: one libcurl multi handle
 * driven by the loop (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION
 * and curl_multi_socket_action, libcurl's hiperfifo pattern), so no
 * request ever blocks the loop.  Each request's outcome reaches its
 * callback exactly once, on the loop.
 *
 * It speaks http and https only, never follows redirects and bounds the
 * time and the size of every response.  It knows nothing of the
 * services it talks to: modules build URLs, headers and bodies.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "buf.h"
#include "core.h"
#include "httpc.h"
#include "log.h"
#include "metrics.h"

#define HTTPC_TIMEOUT_MS	10000
#define HTTPC_MAX_RESPONSE	(1 << 20)
#define HTTPC_OWNERS		64	/* modules told apart in /metrics */

/* How a call ended, for salesd_upstream_duration_seconds. */
enum httpc_outcome {
	HTTPC_OK,		/* a 2xx response */
	HTTPC_HTTP_ERROR,	/* any other status */
	HTTPC_TIMEOUT,
	HTTPC_TOO_LARGE,
	HTTPC_ERROR,		/* no response: DNS, connect, TLS, transfer */
	HTTPC_NOUTCOMES
};

static const char *const outcome_names[HTTPC_NOUTCOMES] = {
	"ok", "http_error", "timeout", "too_large", "error"
};

/* Who made calls: a module's name, or "unknown" (httpc_request). */
struct httpc_owner {
	char		 name[72];
	struct core_hist took[HTTPC_NOUTCOMES];
};

struct httpc_req {
	struct httpc_req	*prev;
	struct httpc_req	*next;
	CURL			*easy;
	struct curl_slist	*headers;
	sales_httpc_cb		 cb;
	void			*arg;
	char			*body;		/* response, NUL-terminated */
	size_t			 len;
	size_t			 cap;
	size_t			 max;
	int			 too_large;
	int64_t			 started;	/* monotonic ms */
	size_t			 owner;		/* in owners */
	char			 errbuf[CURL_ERROR_SIZE];
};

/* What libcurl asked us to watch on one socket. */
struct httpc_sock {
	struct event	*ev;
	curl_socket_t	 fd;
};

static CURLM			*multi;
static struct event		*timer_ev;
static struct httpc_req		*inflight;
static int			 running;	/* init done, not shut down */
static uint64_t			 nrequests;
static uint64_t			 nfailures;
static uint64_t			 latency_ms;	/* sum over finished requests */
static struct httpc_owner	 owners[HTTPC_OWNERS + 1];
static size_t			 nowners;

static void	check_done(void);

static void
req_unlink(struct httpc_req *r)
{
	if (r->prev != NULL)
		r->prev->next = r->next;
	else if (inflight == r)
		inflight = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

static void
req_free(struct httpc_req *r)
{
	if (r->easy != NULL)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	free(r->body);
	free(r);
}

/*
 * The slot of a caller's name; past HTTPC_OWNERS names the last slot is
 * "other".  Names are module names ([a-z0-9_]): no label escaping.
 */
static size_t
owner_slot(const char *name)
{
	size_t i;

	if (name == NULL)
		name = "unknown";
	for (i = 0; i < nowners; i++)
		if (strcmp(owners[i].name, name) == 0)
			return i;
	if (nowners == HTTPC_OWNERS) {
		snprintf(owners[HTTPC_OWNERS].name, sizeof(owners[0].name),
		    "other");
		return HTTPC_OWNERS;
	}
	snprintf(owners[nowners].name, sizeof(owners[0].name), "%s", name);
	return nowners++;
}

static enum httpc_outcome
outcome(long status, const char *err)
{
	if (err == NULL)
		return status >= 200 && status <= 299 ? HTTPC_OK :
		    HTTPC_HTTP_ERROR;
	if (strcmp(err, "timeout") == 0)
		return HTTPC_TIMEOUT;
	if (strcmp(err, "response too large") == 0)
		return HTTPC_TOO_LARGE;
	return HTTPC_ERROR;
}

/* Calls the callback once, then frees the request. */
static void
req_finish(struct httpc_req *r, long status, const char *err)
{
	sales_httpc_cb cb = r->cb;
	void *arg = r->arg;
	int64_t took;

	curl_multi_remove_handle(multi, r->easy);
	took = core_mono_ms() - r->started;
	if (took < 0)
		took = 0;
	latency_ms += (uint64_t)took;
	core_hist_observe(&owners[r->owner].took[outcome(status, err)],
	    core_hist_seconds, core_hist_nseconds, (double)took / 1000);
	if (err != NULL)
		nfailures++;
	/*
	 * Out of the list before the call: the callback may start new
	 * requests or even shut the client down.
	 */
	req_unlink(r);
	if (cb != NULL)
		cb(status, err == NULL ? (r->body ? r->body : "") : "",
		    err == NULL ? r->len : 0, err, arg);
	req_free(r);
}

/*
 * What the caller (and, through it, an API client) is told: a short,
 * stable class.  curl's own text names addresses and ports of the
 * deployment, so it goes to the log only, once per distinct text.
 */
static const char *
result_error(struct httpc_req *r, CURLcode rc)
{
	static char logged[CURL_ERROR_SIZE];
	const char *detail, *cls;

	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		return "timeout";
	case CURLE_FILESIZE_EXCEEDED:
		return "response too large";
	case CURLE_WRITE_ERROR:
		if (r->too_large)
			return "response too large";
		cls = "transfer failed";
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		cls = "could not resolve host";
		break;
	case CURLE_COULDNT_CONNECT:
		cls = "could not connect";
		break;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
		cls = "TLS failure";
		break;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		cls = "connection failed";
		break;
	default:
		cls = "request failed";
		break;
	}
	detail = r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror(rc);
	if (strcmp(detail, logged) != 0) {
		log_warn("upstream request: %s (%s); later failures with the "
		    "same text are not logged", cls, detail);
		snprintf(logged, sizeof(logged), "%s", detail);
	}
	return cls;
}

static void
check_done(void)
{
	struct httpc_req *r;
	char *priv;
	CURLMsg *msg;
	CURL *easy;
	CURLcode rc;
	long status;
	int left;

	while (multi != NULL && (msg = curl_multi_info_read(multi, &left))
	    != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		easy = msg->easy_handle;
		rc = msg->data.result;
		priv = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
		if ((r = (struct httpc_req *)priv) == NULL)
			continue;
		if (rc == CURLE_OK) {
			status = 0;
			curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
			req_finish(r, status, NULL);
		} else
			req_finish(r, 0, result_error(r, rc));
	}
}

static void
on_socket(evutil_socket_t fd, short what, void *arg)
{
	int action = 0, still;

	(void)arg;
	if (what & EV_READ)
		action |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	curl_multi_socket_action(multi, fd, action, &still);
	check_done();
	if (still <= 0 && timer_ev != NULL)
		evtimer_del(timer_ev);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	int still;

	(void)fd;
	(void)what;
	(void)arg;
	curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &still);
	check_done();
}

/* CURLMOPT_TIMERFUNCTION: -1 removes the timer, 0 means at once. */
static int
timer_cb(CURLM *m, long ms, void *userp)
{
	struct timeval tv;

	(void)m;
	(void)userp;
	if (ms < 0) {
		evtimer_del(timer_ev);
		return 0;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(timer_ev, &tv);
	return 0;
}

/* CURLMOPT_SOCKETFUNCTION: watch, rewatch or forget a socket. */
static int
socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct httpc_sock *hs = socketp;
	short kind;

	(void)easy;
	(void)userp;
	if (what == CURL_POLL_REMOVE) {
		if (hs != NULL) {
			event_free(hs->ev);
			free(hs);
			curl_multi_assign(multi, s, NULL);
		}
		return 0;
	}
	kind = EV_PERSIST;
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (hs == NULL) {
		if ((hs = calloc(1, sizeof(*hs))) == NULL)
			return -1;
		hs->fd = s;
		if ((hs->ev = event_new(core_base, s, kind, on_socket,
		    NULL)) == NULL) {
			free(hs);
			return -1;
		}
		curl_multi_assign(multi, s, hs);
	} else {
		event_del(hs->ev);
		event_assign(hs->ev, core_base, s, kind, on_socket, NULL);
	}
	event_add(hs->ev, NULL);
	return 0;
}

static size_t
write_cb(char *data, size_t size, size_t n, void *userp)
{
	struct httpc_req *r = userp;
	size_t len = size * n, ncap;
	char *nb;

	if (len > r->max - r->len) {
		r->too_large = 1;
		return 0;	/* aborts with CURLE_WRITE_ERROR */
	}
	if (r->len + len + 1 > r->cap) {
		ncap = r->cap ? r->cap : 4096;
		while (ncap < r->len + len + 1)
			ncap *= 2;
		if (ncap > r->max + 1)
			ncap = r->max + 1;
		if ((nb = realloc(r->body, ncap)) == NULL)
			return 0;
		r->body = nb;
		r->cap = ncap;
	}
	memcpy(r->body + r->len, data, len);
	r->len += len;
	r->body[r->len] = '\0';
	return len;
}

int
core_httpc_init(void)
{
	if (running)
		return 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		core_log("httpc", SALES_LOG_ERROR, "cannot initialise libcurl");
		return -1;
	}
	if ((multi = curl_multi_init()) == NULL)
		goto fail;
	if ((timer_ev = evtimer_new(core_base, on_timer, NULL)) == NULL)
		goto fail;
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	running = 1;
	return 0;
fail:
	core_log("httpc", SALES_LOG_ERROR, "cannot create the http client");
	if (multi != NULL)
		curl_multi_cleanup(multi);
	multi = NULL;
	curl_global_cleanup();
	return -1;
}

void
core_httpc_shutdown(void)
{
	if (!running)
		return;
	running = 0;
	/* Callbacks may try to start requests: running is 0, they get -1. */
	while (inflight != NULL)
		req_finish(inflight, 0, "shutdown");
	curl_multi_cleanup(multi);
	multi = NULL;
	event_free(timer_ev);
	timer_ev = NULL;
	curl_global_cleanup();
}

/*
 * A URL as logs may show it: no user information, query or fragment,
 * where API keys travel (OpenWeather's appid).
 */
static const char *
url_for_log(const char *url, char *out, size_t outlen)
{
	const char *sep, *host, *end, *p;
	int scheme;

	sep = strstr(url, "://");
	host = sep != NULL ? sep + 3 : url;
	scheme = (int)(host - url);
	/* The authority ends at the first '/'; its user part at the last '@'. */
	end = host + strcspn(host, "/");
	for (p = host; p < end; p++)
		if (*p == '@')
			host = p + 1;
	end = host + strcspn(host, "?#");
	snprintf(out, outlen, "%.*s%.*s", scheme, url, (int)(end - host),
	    host);
	return out;
}

/* A header line must not smuggle in another one. */
static int
header_ok(const char *h)
{
	return h != NULL && strchr(h, ':') != NULL && strpbrk(h, "\r\n") ==
	    NULL;
}

int
core_httpc_request(const struct sales_httpc_request *req, sales_httpc_cb cb,
    void *arg)
{
	return core_httpc_call(NULL, req, cb, arg);
}

int
core_httpc_call(const char *owner, const struct sales_httpc_request *req,
    sales_httpc_cb cb, void *arg)
{
	struct httpc_req *r;
	struct curl_slist *nl;
	const char *method;
	char logurl[256];
	size_t i;
	long timeout;
	int post;

	if (!running || req == NULL || req->url == NULL)
		return -1;
	url_for_log(req->url, logurl, sizeof(logurl));
	method = req->method != NULL ? req->method : "GET";
	if (strcmp(method, "GET") == 0)
		post = 0;
	else if (strcmp(method, "POST") == 0)
		post = 1;
	else {
		core_log("httpc", SALES_LOG_ERROR,
		    "request \"%s\": method \"%s\" is not supported",
		    logurl, method);
		return -1;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -1;
	r->cb = cb;
	r->arg = arg;
	r->max = req->max_response ? req->max_response : HTTPC_MAX_RESPONSE;
	timeout = req->timeout_ms > 0 ? req->timeout_ms : HTTPC_TIMEOUT_MS;
	for (i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
		if (!header_ok(req->headers[i])) {
			core_log("httpc", SALES_LOG_ERROR,
			    "request \"%s\": bad header line", logurl);
			goto fail;
		}
		if ((nl = curl_slist_append(r->headers, req->headers[i])) ==
		    NULL)
			goto fail;
		r->headers = nl;
	}
	if ((r->easy = curl_easy_init()) == NULL)
		goto fail;
	if (curl_easy_setopt(r->easy, CURLOPT_URL, req->url) != CURLE_OK ||
#if LIBCURL_VERSION_NUM >= 0x075500
	    curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https") !=
	    CURLE_OK ||
#else
	    curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS,
	    CURLPROTO_HTTP | CURLPROTO_HTTPS) != CURLE_OK ||
#endif
	    curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(r->easy, CURLOPT_FOLLOWLOCATION, 0L) !=
	    CURLE_OK ||
	    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, timeout) !=
	    CURLE_OK ||
	    curl_easy_setopt(r->easy, CURLOPT_MAXFILESIZE_LARGE,
	    (curl_off_t)r->max) != CURLE_OK ||
	    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, write_cb) !=
	    CURLE_OK ||
	    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r) != CURLE_OK ||
	    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r) != CURLE_OK ||
	    curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf) !=
	    CURLE_OK ||
	    curl_easy_setopt(r->easy, CURLOPT_ACCEPT_ENCODING, "") !=
	    CURLE_OK ||
	    (r->headers != NULL && curl_easy_setopt(r->easy,
	    CURLOPT_HTTPHEADER, r->headers) != CURLE_OK)) {
		core_log("httpc", SALES_LOG_ERROR,
		    "request \"%s\": bad options", logurl);
		goto fail;
	}
	if (post && (curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)(req->body ? req->body_len : 0)) != CURLE_OK ||
	    curl_easy_setopt(r->easy, CURLOPT_COPYPOSTFIELDS,
	    req->body ? req->body : "") != CURLE_OK)) {
		core_log("httpc", SALES_LOG_ERROR,
		    "request \"%s\": cannot copy the body", logurl);
		goto fail;
	}
	r->started = core_mono_ms();
	r->owner = owner_slot(owner);
	if (curl_multi_add_handle(multi, r->easy) != CURLM_OK)
		goto fail;
	r->next = inflight;
	if (inflight != NULL)
		inflight->prev = r;
	inflight = r;
	nrequests++;
	return 0;
fail:
	req_free(r);
	return -1;
}

uint64_t
core_httpc_requests(void)
{
	return nrequests;
}

uint64_t
core_httpc_failures(void)
{
	return nfailures;
}

/* Every outcome of every caller so far, zeros included. */
void
core_httpc_metrics(struct sales_buf *b)
{
	char labels[128];
	size_t i, k;

	core_buf_printf(b, "# HELP salesd_upstream_duration_seconds "
	    "upstream HTTP call durations, by calling module and outcome\n"
	    "# TYPE salesd_upstream_duration_seconds histogram\n");
	for (i = 0; i <= HTTPC_OWNERS; i++) {
		/* The "other" slot once it is in use. */
		if (i >= nowners && (i < HTTPC_OWNERS ||
		    owners[i].name[0] == '\0'))
			continue;
		for (k = 0; k < HTTPC_NOUTCOMES; k++) {
			snprintf(labels, sizeof(labels), "module=\"%s\","
			    "outcome=\"%s\"", owners[i].name,
			    outcome_names[k]);
			core_hist_render(b, "salesd_upstream_duration_seconds",
			    labels, core_hist_seconds, core_hist_nseconds,
			    &owners[i].took[k]);
		}
	}
}

uint64_t
core_httpc_latency_ms(void)
{
	return latency_ms;
}
