/*
 * ws_io.c - the WebSocket I/O threads: a fixed pool that runs a
 * function over shares of a slice while the loop thread runs its own
 * share and then waits for the rest, as Redis 6 does with its I/O
 * threads.  The pool knows nothing of sockets or clients; core/ws.c
 * hands it the pending clients of one flush and a function that only
 * writes (see ws_write()).  Everything else stays on the loop thread.
 *
 * One mutex and two condition variables: "go" wakes the workers for a
 * new run (a generation number tells a new run from a spurious
 * wake-up), "done" wakes the caller when the last share is finished.
 * Taking the mutex on both sides is what makes the items' fields
 * written by a worker visible to the loop thread afterwards.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE		/* sched_getaffinity, CPU_COUNT */
#endif
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "thread.h"
#include "ws_io.h"

#define WS_IO_MIN_SHARE	16	/* fewer items per share run inline */

static pthread_mutex_t	 lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 go = PTHREAD_COND_INITIALIZER;
static pthread_cond_t	 done = PTHREAD_COND_INITIALIZER;
static pthread_t	*threads;
static int		 nthreads;
static int		 stopping;
static uint64_t		 gen;		/* runs posted so far */
static uint64_t		 gen_start;	/* gen when the pool started */
static void		**job_items;
static size_t		 job_n;
static size_t		 job_shares;	/* the caller's share is 0 */
static core_ws_io_fn	 job_fn;
static size_t		 busy;		/* workers' shares not done */

static void
ws_io_share(void **items, size_t n, size_t shares, size_t k,
    core_ws_io_fn fn)
{
	size_t i, from, to;

	from = n * k / shares;
	to = n * (k + 1) / shares;
	for (i = from; i < to; i++)
		fn(items[i]);
}

static void *
ws_io_main(void *arg)
{
	size_t k = (size_t)(uintptr_t)arg;	/* 1..nthreads */
	uint64_t seen;
	void **items;
	size_t n, shares;
	core_ws_io_fn fn;

	pthread_mutex_lock(&lock);
	seen = gen_start;	/* a run posted before we got here counts */
	for (;;) {
		while (gen == seen && !stopping)
			pthread_cond_wait(&go, &lock);
		if (stopping)
			break;
		seen = gen;
		if (k >= job_shares)
			continue;
		items = job_items;
		n = job_n;
		shares = job_shares;
		fn = job_fn;
		pthread_mutex_unlock(&lock);
		ws_io_share(items, n, shares, k, fn);
		pthread_mutex_lock(&lock);
		if (--busy == 0)
			pthread_cond_signal(&done);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

/*
 * The CPUs this process may run on: its affinity, which is what a
 * container's cpuset or taskset leaves it, not the machine's count.
 */
static long
ws_io_cpus(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 &&
	    (n = CPU_COUNT(&set)) > 0)
		return n;
	return sysconf(_SC_NPROCESSORS_ONLN);
}

int
core_ws_io_start(int n)
{
	long cpus;
	int i, max;

	if (n <= 0 || nthreads > 0)
		return 0;
	cpus = ws_io_cpus();
	max = 4 * (cpus > 0 ? (int)cpus : 1);
	if (n > max) {
		log_warn("[server] io_threads = %d is more than 4 per CPU "
		    "this process may use (%ld); using %d", n, cpus, max);
		n = max;
	}
	if ((threads = calloc((size_t)n, sizeof(*threads))) == NULL) {
		log_error("io_threads: out of memory");
		return -1;
	}
	pthread_mutex_lock(&lock);
	stopping = 0;
	gen_start = gen;
	pthread_mutex_unlock(&lock);
	for (i = 0; i < n; i++) {
		if (core_thread_start(&threads[i], ws_io_main,
		    (void *)(uintptr_t)(i + 1)) == -1) {
			log_error("io_threads: cannot start thread %d of %d",
			    i + 1, n);
			nthreads = i;
			core_ws_io_stop();
			return -1;
		}
	}
	nthreads = n;
	core_log("core", SALES_LOG_INFO, "%d WebSocket I/O thread%s",
	    n, n == 1 ? "" : "s");
	return 0;
}

int
core_ws_io_threads(void)
{
	return nthreads;
}

void
core_ws_io_run(void **items, size_t n, core_ws_io_fn fn)
{
	size_t shares;

	shares = n / WS_IO_MIN_SHARE;
	if (shares > (size_t)nthreads + 1)
		shares = (size_t)nthreads + 1;
	if (shares <= 1) {
		ws_io_share(items, n, 1, 0, fn);
		return;
	}
	pthread_mutex_lock(&lock);
	job_items = items;
	job_n = n;
	job_shares = shares;
	job_fn = fn;
	busy = shares - 1;
	gen++;
	pthread_cond_broadcast(&go);
	pthread_mutex_unlock(&lock);

	ws_io_share(items, n, shares, 0, fn);

	pthread_mutex_lock(&lock);
	while (busy > 0)
		pthread_cond_wait(&done, &lock);
	pthread_mutex_unlock(&lock);
}

void
core_ws_io_stop(void)
{
	int i, n = nthreads;

	if (threads == NULL)
		return;
	pthread_mutex_lock(&lock);
	stopping = 1;
	pthread_cond_broadcast(&go);
	pthread_mutex_unlock(&lock);
	for (i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	threads = NULL;
	nthreads = 0;
	stopping = 0;
}
