/*
 * fuzz.h - what the socket harnesses share: the event loop, and one
 * client on the far end of a socketpair that sends the fuzz input,
 * reads every answer and leaves only when the server has let go of
 * the connection.  Header-only, for the two harnesses that need it.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <sys/socket.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "core.h"
#include "log.h"

/* Loop passes without progress before the client gives up waiting. */
#define FUZZ_QUIET	64

static void
fuzz_loop_init(void)
{
	signal(SIGPIPE, SIG_IGN);
	/* Bad requests are the point here: only errors are worth a line. */
	(void)core_log_set_level("error");
	if ((core_base = event_base_new()) == NULL)
		abort();
}

/*
 * Writes data to fd as fast as the server reads it, then half-closes,
 * reading all the while, until the server closes or goes quiet.
 */
static void
fuzz_client(int fd, const uint8_t *data, size_t size)
{
	char buf[65536];
	size_t off = 0;
	ssize_t n;
	int quiet = 0, closed = 0, progress;
	/* FUZZ_SHOW=1 prints what the server sent: to read a crash input. */
	int show = getenv("FUZZ_SHOW") != NULL;

	if (size == 0)
		shutdown(fd, SHUT_WR);
	while (quiet < FUZZ_QUIET) {
		progress = 0;
		if (off < size) {
			n = send(fd, data + off, size - off,
			    MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0) {
				off += (size_t)n;
				progress = 1;
				if (off == size)
					shutdown(fd, SHUT_WR);
			} else if (n < 0 && errno != EAGAIN)
				off = size;	/* the server left */
		}
		event_base_loop(core_base, EVLOOP_NONBLOCK);
		while (!closed && (n = recv(fd, buf, sizeof(buf),
		    MSG_DONTWAIT)) != 0) {
			if (n < 0) {
				if (errno != EAGAIN)
					closed = 1;
				break;
			}
			progress = 1;
			if (show)
				fwrite(buf, 1, (size_t)n, stdout);
		}
		if (n == 0)
			closed = 1;
		if (closed && off == size)
			break;
		quiet = progress ? 0 : quiet + 1;
	}
}

/*
 * Closes the client's end and runs the loop until nothing of the
 * server's is left (busy() is 0): what remains is a leak or a hang,
 * which the fuzzer must hear of.  Timers are short in the harnesses,
 * so the wait is bounded; a connection that waits on nothing at all
 * blocks here, and libFuzzer's -timeout reports it.
 */
static void
fuzz_drain(int fd, size_t (*busy)(void))
{
	int i;

	close(fd);
	for (i = 0; i < FUZZ_QUIET && busy() > 0; i++)
		event_base_loop(core_base, EVLOOP_NONBLOCK);
	for (i = 0; i < 100 && busy() > 0; i++)
		event_base_loop(core_base, EVLOOP_ONCE);
	if (busy() > 0) {
		fprintf(stdout, "fuzz: a connection outlived its client\n");
		abort();
	}
}

#endif /* FUZZ_H */
