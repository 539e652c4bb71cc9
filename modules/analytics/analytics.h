/*
 * analytics.h - the analytics figures kept in memory (analytics_state.c)
 * and what the module glue (analytics.c) asks of them.  Private to
 * modules/analytics/.
 *
 * Money is in micro-units held in signed 128-bit integers: a sum of
 * orders of up to 1e15 micro-units each cannot overflow in practice, and
 * nothing is ever rounded.  Every figure leaves as a struct sales_money
 * (the v2 event, and the JSON through the SDK's buf_money), exact up to
 * 9.2e18 units and clamped past that, so the two always agree.
 */
#ifndef ANALYTICS_H
#define ANALYTICS_H

#include <sales/module.h>

typedef __int128 an_money;

extern const struct sales_core	*an_core;

int	an_state_init(int64_t window_ms);
void	an_state_free(void);
/* Adds a product's stored totals (start-up). */
int	an_add_totals(const char *pid, size_t len, int64_t orders,
	    int64_t quantity, an_money revenue);
/* Adds orders received at ms to the minute windows (start-up and live). */
int	an_add_window(int64_t ms, int64_t count, an_money revenue);
/* Adds orders received in the minute [minute * 60000, +60000) to the last hour. */
void	an_add_hour(int64_t minute, int64_t count, an_money revenue);
/* One committed order: everything above at once. */
int	an_add_order(const char *pid, size_t len, int64_t quantity,
	    int64_t price_micros, int64_t received_at);
/* Bumped by every change, so a rendered object can be reused. */
uint64_t an_version(void);
/* The GET /analytics object as of now, with the top n products. */
int	an_json(struct sales_buf *b, int top, int64_t now);
/* The figures for "analytics.updated" (json left to the caller). */
void	an_snapshot(struct sales_analytics_v1 *ev, int64_t now);
/* "analytics.updated.v2" with the top n products; ev comes zeroed. */
void	an_snapshot_v2(struct sales_analytics_v2 *ev, int top, int64_t now);

#endif /* ANALYTICS_H */
