/*
 * outmem.c - the output memory budget: a list of connections with the
 * bytes each holds, and the cut of the biggest when the sum is over.
 *
 * Finding the biggest is a scan of the list.  That is O(connections) per
 * cut, and cuts are rare: they happen only when clients together hold
 * more than the budget, and each one frees the largest holder.  Bytes of
 * a connection already cut still count in the total until its owner
 * deletes it, but not against the budget: cutting one connection must
 * not make every other one look over.
 */
#include <assert.h>

#include "log.h"
#include "outmem.h"

static LIST_HEAD(, core_outmem)	 entries = LIST_HEAD_INITIALIZER(entries);
static size_t			 budget;
static size_t			 total;		/* every listed entry */
static size_t			 cut_bytes;	/* of those being cut */
static uint64_t			 cuts;

void
core_outmem_configure(size_t b)
{
	budget = b;
}

void
core_outmem_add(struct core_outmem *e, core_outmem_cut_fn cut)
{
	assert(!e->listed);
	e->bytes = 0;
	e->cut = cut;
	e->cutting = 0;
	e->listed = 1;
	LIST_INSERT_HEAD(&entries, e, entry);
}

static struct core_outmem *
outmem_biggest(void)
{
	struct core_outmem *e, *big = NULL;

	LIST_FOREACH(e, &entries, entry)
		if (!e->cutting && e->bytes > 0 &&
		    (big == NULL || e->bytes > big->bytes))
			big = e;
	return big;
}

int
core_outmem_set(struct core_outmem *e, size_t bytes)
{
	struct core_outmem *big;
	int self = 0;

	if (!e->listed)
		return 0;
	total = total - e->bytes + bytes;
	if (e->cutting)
		cut_bytes = cut_bytes - e->bytes + bytes;
	e->bytes = bytes;
	while (budget > 0 && total - cut_bytes > budget &&
	    (big = outmem_biggest()) != NULL) {
		big->cutting = 1;
		cut_bytes += big->bytes;
		cuts++;
		log_warn("output memory %zu bytes over max_output_memory %zu: "
		    "cutting the connection holding the most (%zu bytes)",
		    total - cut_bytes + big->bytes, budget, big->bytes);
		if (big == e)
			self = 1;
		big->cut(big);
	}
	return self || e->cutting ? -1 : 0;
}

void
core_outmem_del(struct core_outmem *e)
{
	if (!e->listed)
		return;
	total -= e->bytes;
	if (e->cutting)
		cut_bytes -= e->bytes;
	LIST_REMOVE(e, entry);
	e->listed = 0;
	e->cutting = 0;
	e->bytes = 0;
}

size_t
core_outmem_total(void)
{
	return total;
}

size_t
core_outmem_budget(void)
{
	return budget;
}

uint64_t
core_outmem_cuts(void)
{
	return cuts;
}
