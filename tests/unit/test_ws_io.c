/*
 * test_ws_io.c - the WebSocket I/O thread pool: every item of a run is
 * done exactly once, the caller's share on the caller, the others on
 * the threads, all visible when core_ws_io_run() returns; small runs
 * stay on the caller; the count is clamped to the CPUs the process may
 * use; the threads take no SIGTERM; stop and start again.
 * Built with -DSALES_TSAN=ON this is also the pool's race check.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE		/* sched_getaffinity, CPU_COUNT */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "unit.h"
#include "ws_io.h"

#define NITEMS	256

struct item {
	pthread_t	who;
	int		runs;
};

static struct item	 items[NITEMS];
static void		*ptrs[NITEMS];

static void
work(void *arg)
{
	struct item *it = arg;

	it->who = pthread_self();
	it->runs++;
}

static void
reset(void)
{
	size_t i;

	memset(items, 0, sizeof(items));
	for (i = 0; i < NITEMS; i++)
		ptrs[i] = &items[i];
}

static size_t
on_caller(size_t from, size_t to)
{
	size_t i, n = 0;

	for (i = from; i < to; i++)
		if (pthread_equal(items[i].who, pthread_self()))
			n++;
	return n;
}

static void
test_no_threads_runs_on_the_caller(void **state)
{
	size_t i;

	(void)state;
	assert_int_equal(core_ws_io_start(0), 0);
	assert_int_equal(core_ws_io_threads(), 0);
	reset();
	core_ws_io_run(ptrs, NITEMS, work);
	for (i = 0; i < NITEMS; i++)
		assert_int_equal(items[i].runs, 1);
	assert_int_equal(on_caller(0, NITEMS), NITEMS);
	core_ws_io_stop();		/* none running: a no-op */
}

static void
test_shares_spread_over_threads(void **state)
{
	size_t i;
	int run;

	(void)state;
	assert_int_equal(core_ws_io_start(2), 0);
	assert_int_equal(core_ws_io_threads(), 2);
	for (run = 0; run < 500; run++) {
		reset();
		core_ws_io_run(ptrs, NITEMS, work);
		for (i = 0; i < NITEMS; i++)
			assert_int_equal(items[i].runs, 1);
		/* Three shares: the first is the caller's, the rest not. */
		assert_int_equal(on_caller(0, NITEMS / 3), NITEMS / 3);
		assert_int_equal(on_caller(NITEMS / 3 + 1, NITEMS), 0);
		assert_false(pthread_equal(items[NITEMS / 2].who,
		    items[NITEMS - 1].who));
	}
	/* A small run is not worth a wake-up. */
	reset();
	core_ws_io_run(ptrs, 10, work);
	assert_int_equal(on_caller(0, 10), 10);
	assert_int_equal(items[10].runs, 0);
	/* Nothing at all. */
	core_ws_io_run(ptrs, 0, work);
	core_ws_io_stop();
	assert_int_equal(core_ws_io_threads(), 0);
}

static void
test_restart_after_stop(void **state)
{
	size_t i;

	(void)state;
	assert_int_equal(core_ws_io_start(1), 0);
	reset();
	core_ws_io_run(ptrs, NITEMS, work);
	core_ws_io_stop();
	assert_int_equal(core_ws_io_start(3), 0);
	assert_int_equal(core_ws_io_threads(), 3);
	reset();
	core_ws_io_run(ptrs, NITEMS, work);
	for (i = 0; i < NITEMS; i++)
		assert_int_equal(items[i].runs, 1);
	assert_int_equal(on_caller(NITEMS / 4 + 1, NITEMS), 0);
	core_ws_io_stop();
}

/*
 * Threads of this process with SIGTERM blocked, from /proc: SigBlk is
 * the mask in hex, SIGTERM its bit 15 (signal 15 is bit 14 from 0).
 */
static int
sigterm_blocked(void)
{
	char path[320], line[256];
	unsigned long long mask;
	struct dirent *d;
	DIR *dir;
	FILE *f;
	int n = 0;

	assert_non_null(dir = opendir("/proc/self/task"));
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status",
		    d->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;	/* a thread that just ended */
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "SigBlk: %llx", &mask) == 1 &&
			    (mask & (1ULL << (SIGTERM - 1))))
				n++;
		fclose(f);
	}
	closedir(dir);
	return n;
}

/*
 * The threads take no SIGTERM (nor SIGINT, SIGHUP): those must reach
 * the loop's thread, whose handlers act on them.
 */
static void
test_threads_leave_signals_to_the_loop(void **state)
{
	int before = sigterm_blocked();

	(void)state;
	assert_int_equal(core_ws_io_start(2), 0);
	assert_int_equal(sigterm_blocked(), before + 2);
	core_ws_io_stop();
	assert_int_equal(sigterm_blocked(), before);
}

/* The CPUs the calling thread may run on, as the pool counts them. */
static long
affinity_cpus(void)
{
	cpu_set_t set;

	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	return CPU_COUNT(&set);
}

static void
clamp_check(long cpus)
{
	char want[128], *log;

	unit_capture_begin();
	assert_int_equal(core_ws_io_start(CORE_WS_IO_MAX), 0);
	log = unit_capture_end();
	assert_int_equal(core_ws_io_threads(), 4 * cpus);
	snprintf(want, sizeof(want), "io_threads = 64 is more than 4 per CPU "
	    "this process may use (%ld); using %ld", cpus, 4 * cpus);
	assert_non_null(strstr(log, want));
	reset();
	core_ws_io_run(ptrs, NITEMS, work);
	assert_int_equal(items[NITEMS - 1].runs, 1);
	core_ws_io_stop();
}

static void
test_clamped_to_four_per_cpu(void **state)
{
	long cpus = affinity_cpus();

	(void)state;
	if (4 * cpus >= CORE_WS_IO_MAX)
		skip();
	clamp_check(cpus);
}

/*
 * A cpuset or taskset that leaves one CPU: the clamp follows it, not
 * the machine's count of online CPUs.
 */
static void
test_clamp_counts_the_cpus_allowed(void **state)
{
	cpu_set_t all, one;
	int cpu;

	(void)state;
	assert_int_equal(sched_getaffinity(0, sizeof(all), &all), 0);
	for (cpu = 0; !CPU_ISSET(cpu, &all); cpu++)
		;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
	clamp_check(1);
	assert_int_equal(sched_setaffinity(0, sizeof(all), &all), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_threads_runs_on_the_caller),
		cmocka_unit_test(test_shares_spread_over_threads),
		cmocka_unit_test(test_restart_after_stop),
		cmocka_unit_test(test_clamped_to_four_per_cpu),
		cmocka_unit_test(test_clamp_counts_the_cpus_allowed),
		cmocka_unit_test(test_threads_leave_signals_to_the_loop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
