/*
 * outmem.h - the server-wide budget for bytes held for clients
 * ([server] max_output_memory).
 *
 * Every connection that holds output for a client (HTTP answers waiting
 * to be sent, WebSocket frames) keeps one entry here and tells it the
 * bytes it really holds: allocations and their bookkeeping, not payload
 * lengths.  When the total passes the budget, the entries holding the
 * most are cut first until the rest fits again, as Redis does with
 * maxmemory-clients: a few slow readers lose their connection, the
 * normal clients keep theirs.
 *
 * Loop thread only.
 */
#ifndef CORE_OUTMEM_H
#define CORE_OUTMEM_H

#include <sys/queue.h>

#include <stddef.h>
#include <stdint.h>

struct core_outmem;

/*
 * Called when the budget cuts e.  It runs inside core_outmem_set() of
 * whichever connection went over, so it must not free its connection:
 * it stops queueing to it, drops what it can at once and schedules the
 * close from the loop.  e stays counted until core_outmem_del().
 */
typedef void (*core_outmem_cut_fn)(struct core_outmem *e);

struct core_outmem {
	LIST_ENTRY(core_outmem)	 entry;
	size_t			 bytes;
	core_outmem_cut_fn	 cut;
	unsigned		 listed:1;
	unsigned		 cutting:1;	/* cut, not yet deleted */
};

/* 0: no budget (each connection is still bounded on its own). */
void	core_outmem_configure(size_t budget);
void	core_outmem_add(struct core_outmem *e, core_outmem_cut_fn cut);
/*
 * Records that e now holds bytes, then enforces the budget.  -1 when e
 * itself was cut by this call (its owner must stop queueing to it).
 */
int	core_outmem_set(struct core_outmem *e, size_t bytes);
void	core_outmem_del(struct core_outmem *e);

size_t	 core_outmem_total(void);	/* bytes held, cut ones included */
size_t	 core_outmem_budget(void);
uint64_t core_outmem_cuts(void);	/* connections cut so far */

#endif /* CORE_OUTMEM_H */
