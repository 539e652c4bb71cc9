/*
 * timer.c - the loop itself, clocks, and the timers modules ask for.
 *
 * A timer may have an owner (a module's name): every live timer is on
 * one list, so that core_timer_forget() can cancel what a module left
 * behind, as when its init fails.  The core's own timers have none.
 * Loop thread only.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <event2/event.h>

#include "core.h"
#include "log.h"
#include "timer.h"

struct event_base	*core_base;

struct sales_timer {
	struct event		*ev;
	void			(*cb)(void *);
	void			*arg;
	char			*owner;		/* NULL: the core's */
	struct sales_timer	*prev, *next;
};

static struct sales_timer	*timers;	/* every live one */

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
	return core_mono_us() / 1000;
}

int64_t
core_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
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
core_timer_add_owned(const char *owner, long ms, int repeat,
    void (*cb)(void *), void *arg)
{
	struct sales_timer *t;
	struct timeval tv;

	if (ms < 0 || cb == NULL)
		return NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	if (owner != NULL && (t->owner = strdup(owner)) == NULL)
		goto fail;
	t->cb = cb;
	t->arg = arg;
	t->ev = event_new(core_base, -1, repeat ? EV_PERSIST : 0, timer_fire, t);
	if (t->ev == NULL)
		goto fail;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if (event_add(t->ev, &tv) == -1) {
		event_free(t->ev);
		goto fail;
	}
	if ((t->next = timers) != NULL)
		timers->prev = t;
	timers = t;
	return t;
fail:
	free(t->owner);
	free(t);
	return NULL;
}

struct sales_timer *
core_timer_add(long ms, int repeat, void (*cb)(void *), void *arg)
{
	return core_timer_add_owned(NULL, ms, repeat, cb, arg);
}

void
core_timer_del(struct sales_timer *t)
{
	if (t == NULL)
		return;
	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		timers = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	event_free(t->ev);
	free(t->owner);
	free(t);
}

size_t
core_timer_forget(const char *owner)
{
	struct sales_timer *t, *next;
	size_t n = 0;

	for (t = timers; t != NULL; t = next) {
		next = t->next;
		if (t->owner != NULL && strcmp(t->owner, owner) == 0) {
			core_timer_del(t);
			n++;
		}
	}
	return n;
}
