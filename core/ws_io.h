/*
 * ws_io.h - the WebSocket I/O threads ([server] io_threads), as in
 * Redis 6: a pool that runs one function over a slice of items, split
 * into shares, the calling (loop) thread taking a share of its own and
 * waiting for the others before it returns.  The items' owner does all
 * bookkeeping before and after, on the loop thread; the function only
 * touches its own item.  With no threads the slice runs on the caller.
 */
#ifndef CORE_WS_IO_H
#define CORE_WS_IO_H

#include <stddef.h>

#define CORE_WS_IO_MAX	64	/* io_threads accepted by the config */

typedef void (*core_ws_io_fn)(void *item);

/*
 * Starts n threads (0: none), at most 4 per CPU the process may run on
 * (its affinity: a cpuset, taskset): more is clamped with a warning.
 * -1 (logged) when a thread cannot start, and then none runs.  Call
 * once, from the loop thread.
 */
int	core_ws_io_start(int n);
/* Threads running (after the clamp). */
int	core_ws_io_threads(void);
/*
 * Runs fn on every item, spread over the threads and the caller, and
 * returns once all are done: what fn wrote is then visible to the
 * caller.  Small slices run on the caller alone.
 */
void	core_ws_io_run(void **items, size_t n, core_ws_io_fn fn);
/* Stops and joins the threads; a no-op when none run. */
void	core_ws_io_stop(void);

#endif /* CORE_WS_IO_H */
