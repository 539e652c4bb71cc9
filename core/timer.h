/*
 * timer.h - timers on the loop, as handed to modules.
 */
#ifndef CORE_TIMER_H
#define CORE_TIMER_H

#include <sales/types.h>

struct sales_timer *core_timer_add(long ms, int repeat, void (*cb)(void *),
	    void *arg);
void	core_timer_del(struct sales_timer *t);

#endif /* CORE_TIMER_H */
