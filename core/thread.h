/*
 * thread.h - starting the core's helper threads (storage, WebSocket
 * I/O) so that signals stay the loop's.
 */
#ifndef CORE_THREAD_H
#define CORE_THREAD_H

#include <pthread.h>

/*
 * pthread_create() with every asynchronous signal blocked in the new
 * thread: SIGTERM, SIGINT and SIGHUP reach the loop's thread, whose
 * libevent handlers act on them, never a helper that would only queue
 * them (a sanitizer's runtime defers a signal until the thread it lands
 * on next enters the runtime, which a helper asleep may never do).
 * The synchronous ones (SIGSEGV, SIGBUS, SIGFPE, SIGILL) stay
 * unblocked: the kernel kills a thread that faults with them blocked,
 * without running a handler.  0, or -1.
 */
int	core_thread_start(pthread_t *t, void *(*fn)(void *), void *arg);

#endif /* CORE_THREAD_H */
