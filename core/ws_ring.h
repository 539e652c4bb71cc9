/*
 * ws_ring.h - the WebSocket fan-out's socket writes through io_uring:
 * a slice's sends go to the kernel in one system call instead of one
 * each.  What a send costs in the kernel stays; what leaving and
 * entering it costs (about a microsecond a call on a virtual machine
 * with page-table isolation, beside some 6 us of loopback TCP) is paid
 * once a slice.  Every send is non-blocking (MSG_DONTWAIT): a full
 * socket answers -EAGAIN at once, as send() would, so a batch always
 * completes within the call.  Loop thread only.
 */
#ifndef CORE_WS_RING_H
#define CORE_WS_RING_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stddef.h>

struct core_ws_send {
	int		 fd;
	struct msghdr	 mh;	/* msg_iov and msg_iovlen: the bytes */
	ssize_t		 res;	/* bytes sent, or -errno; -ECANCELED: not
				   tried, make it with send(); -EIO: the
				   ring failed, fate unknown */
};

/*
 * Sets up the ring.  0 when in use; -1 when the kernel is older than
 * 6.1 or its policy refuses io_uring (logged at info: the writes then
 * go one send() at a time, as they do with [server] io_uring = off).
 */
int	core_ws_ring_start(void);
/* 1 while the ring is in use. */
int	core_ws_ring_on(void);
/* Sends every s[i] and sets its res; returns once all are done. */
void	core_ws_ring_send(struct core_ws_send *s, size_t n);
void	core_ws_ring_stop(void);

#endif /* CORE_WS_RING_H */
