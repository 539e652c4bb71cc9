/*
 * test_ws_ring.c - the fan-out's io_uring sends answer exactly what
 * send() would: the bytes sent (whole, or in part when the socket
 * fills), -EAGAIN at once for a full socket, -EPIPE without a SIGPIPE
 * for a peer gone; more sends than the ring holds go in turns; one
 * iovec or several; stop, and start again.  Skipped where the kernel
 * or its policy refuses io_uring (the server then uses send()).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "ws_ring.h"

#define NPAIRS	600	/* more than one ring's worth of sends */

static int
setup(void **state)
{
	(void)state;
	return core_ws_ring_start() == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	core_ws_ring_stop();
	return 0;
}

/* A connected pair; the sending end non-blocking, as the server's is. */
static void
pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
}

static void
one(struct core_ws_send *s, struct iovec *iov, int fd, void *p, size_t len)
{
	memset(s, 0, sizeof(*s));
	iov->iov_base = p;
	iov->iov_len = len;
	s->fd = fd;
	s->mh.msg_iov = iov;
	s->mh.msg_iovlen = 1;
}

static void
test_many_sends_go_whole_in_turns(void **state)
{
	static struct core_ws_send s[NPAIRS];
	static struct iovec iov[NPAIRS];
	static char msg[NPAIRS][32], got[64];
	static int sv[NPAIRS][2];
	size_t i, len;

	(void)state;
	for (i = 0; i < NPAIRS; i++) {
		pair(sv[i]);
		len = (size_t)snprintf(msg[i], sizeof(msg[i]), "frame %zu", i);
		one(&s[i], &iov[i], sv[i][0], msg[i], len);
	}
	core_ws_ring_send(s, NPAIRS);
	for (i = 0; i < NPAIRS; i++) {
		len = strlen(msg[i]);
		assert_int_equal(s[i].res, (ssize_t)len);
		assert_int_equal(read(sv[i][1], got, sizeof(got)), (ssize_t)len);
		assert_memory_equal(got, msg[i], len);
		close(sv[i][0]);
		close(sv[i][1]);
	}
	assert_int_equal(core_ws_ring_on(), 1);
}

static void
test_iovecs_go_in_order(void **state)
{
	struct core_ws_send s;
	struct iovec iov[3] = {
		{ "new", 3 }, { "Or", 2 }, { "der", 3 }
	};
	char got[16];
	int sv[2];

	(void)state;
	pair(sv);
	memset(&s, 0, sizeof(s));
	s.fd = sv[0];
	s.mh.msg_iov = iov;
	s.mh.msg_iovlen = 3;
	core_ws_ring_send(&s, 1);
	assert_int_equal(s.res, 8);
	assert_int_equal(read(sv[1], got, sizeof(got)), 8);
	assert_memory_equal(got, "newOrder", 8);
	close(sv[0]);
	close(sv[1]);
}

/*
 * A socket that fills takes part of a send and then says -EAGAIN at
 * once: nothing waits for the reader.
 */
static void
test_a_full_socket_takes_part_then_says_eagain(void **state)
{
	static char big[1 << 20];
	struct core_ws_send s;
	struct iovec iov;
	int sv[2], sz = 4096;

	(void)state;
	pair(sv);
	assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz,
	    sizeof(sz)), 0);
	one(&s, &iov, sv[0], big, sizeof(big));
	core_ws_ring_send(&s, 1);
	assert_true(s.res > 0 && s.res < (ssize_t)sizeof(big));
	core_ws_ring_send(&s, 1);
	assert_int_equal(s.res, -EAGAIN);
	close(sv[0]);
	close(sv[1]);
}

/* The default action of SIGPIPE would end this test: it must not come. */
static void
test_a_peer_gone_says_epipe_without_a_signal(void **state)
{
	struct core_ws_send s;
	struct iovec iov;
	int sv[2];

	(void)state;
	pair(sv);
	close(sv[1]);
	one(&s, &iov, sv[0], "x", 1);
	core_ws_ring_send(&s, 1);
	assert_int_equal(s.res, -EPIPE);
	close(sv[0]);
}

static void
test_stop_and_start_again(void **state)
{
	struct core_ws_send s;
	struct iovec iov;
	char got[4];
	int sv[2];

	(void)state;
	core_ws_ring_stop();
	assert_int_equal(core_ws_ring_on(), 0);
	core_ws_ring_stop();
	assert_int_equal(core_ws_ring_start(), 0);
	assert_int_equal(core_ws_ring_on(), 1);
	pair(sv);
	one(&s, &iov, sv[0], "ok", 2);
	core_ws_ring_send(&s, 1);
	assert_int_equal(s.res, 2);
	assert_int_equal(read(sv[1], got, sizeof(got)), 2);
	close(sv[0]);
	close(sv[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_sends_go_whole_in_turns),
		cmocka_unit_test(test_iovecs_go_in_order),
		cmocka_unit_test(test_a_full_socket_takes_part_then_says_eagain),
		cmocka_unit_test(test_a_peer_gone_says_epipe_without_a_signal),
		cmocka_unit_test(test_stop_and_start_again),
	};

	if (core_ws_ring_start() == -1) {
		printf("io_uring refused here: skipped\n");
		return 0;
	}
	core_ws_ring_stop();
	return cmocka_run_group_tests(tests, setup, teardown);
}
