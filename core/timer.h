/*
 * timer.h - timers on the loop, as handed to modules.  Loop thread only.
 */
#ifndef CORE_TIMER_H
#define CORE_TIMER_H

#include <sales/types.h>

/* A timer of the core's own: no module owns it. */
struct sales_timer *core_timer_add(long ms, int repeat, void (*cb)(void *),
	    void *arg);
/* A timer owned by the module named owner (copied), or the core's if NULL. */
struct sales_timer *core_timer_add_owned(const char *owner, long ms,
	    int repeat, void (*cb)(void *), void *arg);
/* Cancels and frees t; NULL is ignored. */
void	core_timer_del(struct sales_timer *t);
/*
 * Cancels and frees every timer owner still holds (its init failed, or
 * it is finalised); returns how many.  Its handles are dangling after.
 */
size_t	core_timer_forget(const char *owner);

#endif /* CORE_TIMER_H */
