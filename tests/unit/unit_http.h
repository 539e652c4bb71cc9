/*
 * unit_http.h - a fixture for the C unit tests of upstream calls: the
 * core's loop and HTTP client, and a fake upstream (an evhttp server on
 * 127.0.0.1, on a port the kernel picks) in that same loop.
 */
#ifndef UNIT_HTTP_H
#define UNIT_HTTP_H

#include <sys/socket.h>
#include <netinet/in.h>

#include <event2/event.h>
#include <event2/http.h>

#include "core.h"
#include "httpc.h"

static struct evhttp	*unit_http_server;

/* Serves every request of the fake with cb; sets *port.  0 or -1. */
static inline int
unit_http_setup(void (*cb)(struct evhttp_request *, void *), int *port)
{
	struct evhttp_bound_socket *bs;
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);

	if ((core_base = event_base_new()) == NULL ||
	    (unit_http_server = evhttp_new(core_base)) == NULL)
		return -1;
	bs = evhttp_bind_socket_with_handle(unit_http_server, "127.0.0.1", 0);
	if (bs == NULL || getsockname(evhttp_bound_socket_get_fd(bs),
	    (struct sockaddr *)&sin, &slen) == -1)
		return -1;
	*port = ntohs(sin.sin_port);
	evhttp_set_gencb(unit_http_server, cb, NULL);
	return core_httpc_init();
}

static inline int
unit_http_teardown(void)
{
	core_httpc_shutdown();
	evhttp_free(unit_http_server);
	unit_http_server = NULL;
	event_base_free(core_base);
	core_base = NULL;
	return 0;
}

static void
unit_http_stop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	core_httpc_shutdown();
}

/* Shuts the HTTP client down ms from now, from the loop; free the event. */
static inline struct event *
unit_http_stop_after(long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	struct event *ev;

	if ((ev = evtimer_new(core_base, unit_http_stop, NULL)) != NULL)
		evtimer_add(ev, &tv);
	return ev;
}

#endif /* UNIT_HTTP_H */
