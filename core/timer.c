/*
 * timer.c - the loop itself, clocks, and the timers modules ask for.
 */
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

#include <event2/event.h>

#include "core.h"
#include "log.h"
#include "timer.h"

struct event_base	*core_base;

struct sales_timer {
	struct event	*ev;
	void		(*cb)(void *);
	void		*arg;
};

int64_t
core_now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int64_t
core_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
timer_fire(evutil_socket_t fd, short what, void *arg)
{
	struct sales_timer *t = arg;

	(void)fd;
	(void)what;
	t->cb(t->arg);
}

struct sales_timer *
core_timer_add(long ms, int repeat, void (*cb)(void *), void *arg)
{
	struct sales_timer *t;
	struct timeval tv;

	if (ms < 0 || cb == NULL)
		return NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->cb = cb;
	t->arg = arg;
	t->ev = event_new(core_base, -1, repeat ? EV_PERSIST : 0, timer_fire, t);
	if (t->ev == NULL) {
		free(t);
		return NULL;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if (event_add(t->ev, &tv) == -1) {
		event_free(t->ev);
		free(t);
		return NULL;
	}
	return t;
}

void
core_timer_del(struct sales_timer *t)
{
	if (t == NULL)
		return;
	event_free(t->ev);
	free(t);
}
