/*
 * ws_ring.c - a slice's WebSocket sends in one io_uring_enter() (see
 * ws_ring.h for why).  The ring knows nothing of clients or frames:
 * core/ws.c hands it (socket, iovec) pairs and reads back each result,
 * exactly what send() would have returned, so the bookkeeping after a
 * write is one path for both.
 */
#include <errno.h>
#include <string.h>

#include <liburing.h>

#include "log.h"
#include "ws_ring.h"

#define WS_RING_ENTRIES	256	/* the ring: sends in one call, at most */

static struct io_uring	ring;
static int		on;

int
core_ws_ring_start(void)
{
	int e;

	if (on)
		return 0;
	/*
	 * One thread submits and reaps (the loop), and completions are
	 * wanted only when it asks: the kernel can skip the locking and
	 * the task-work interrupts those flags exist to skip.  Kernels
	 * before 6.1 refuse them, and those are not trusted with the
	 * rest either (a non-blocking send answering -EAGAIN at once is
	 * what the fan-out relies on): send() it is there.
	 */
	e = io_uring_queue_init(WS_RING_ENTRIES, &ring,
	    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
	if (e < 0) {
		core_log("core", SALES_LOG_INFO, "io_uring: %s; WebSocket "
		    "writes go one send() at a time", e == -EINVAL ?
		    "this kernel is older than 6.1" : strerror(-e));
		return -1;
	}
	on = 1;
	core_log("core", SALES_LOG_INFO, "WebSocket writes through io_uring");
	return 0;
}

int
core_ws_ring_on(void)
{
	return on;
}

/*
 * Queues s[0..n), n at most the ring's size, and reaps every result.
 * A send the ring never took says -ECANCELED (the caller makes it with
 * send()); one whose fate is unknown, -EIO (the caller drops the
 * client: a send made twice would break its stream).
 */
static void
ws_ring_batch(struct core_ws_send *s, size_t n)
{
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	size_t i, got;
	unsigned head, seen;
	int e, taken = 0;

	for (i = 0; i < n; i++)
		s[i].res = -ECANCELED;
	if (!on)
		return;
	for (i = 0; i < n; i++) {
		sqe = io_uring_get_sqe(&ring);
		if (s[i].mh.msg_iovlen == 1)
			io_uring_prep_send(sqe, s[i].fd,
			    s[i].mh.msg_iov[0].iov_base,
			    s[i].mh.msg_iov[0].iov_len,
			    MSG_NOSIGNAL | MSG_DONTWAIT);
		else
			io_uring_prep_sendmsg(sqe, s[i].fd, &s[i].mh,
			    MSG_NOSIGNAL | MSG_DONTWAIT);
		/* Marks the entry as not reaped yet. */
		s[i].res = -EIO;
		io_uring_sqe_set_data64(sqe, i);
	}
	for (got = 0; got < n; ) {
		e = io_uring_submit_and_wait(&ring, 1);
		if (e < 0 && e != -EINTR && e != -EAGAIN && e != -EBUSY) {
			/* Not seen with valid entries: the ring goes. */
			core_log("core", SALES_LOG_ERROR, "io_uring_submit: "
			    "%s; WebSocket writes go one send() at a time",
			    strerror(-e));
			break;
		}
		if (e >= 0)
			taken = 1;
		seen = 0;
		io_uring_for_each_cqe(&ring, head, cqe) {
			if (cqe->user_data < n)
				s[cqe->user_data].res = cqe->res;
			seen++;
		}
		io_uring_cq_advance(&ring, seen);
		got += seen;
	}
	if (got < n) {
		if (!taken)
			for (i = 0; i < n; i++)
				if (s[i].res == -EIO)
					s[i].res = -ECANCELED;
		core_ws_ring_stop();
	}
}

void
core_ws_ring_send(struct core_ws_send *s, size_t n)
{
	size_t k;

	for (; n > 0; s += k, n -= k) {
		k = n < WS_RING_ENTRIES ? n : WS_RING_ENTRIES;
		ws_ring_batch(s, k);
	}
}

void
core_ws_ring_stop(void)
{
	if (on)
		io_uring_queue_exit(&ring);
	on = 0;
}
