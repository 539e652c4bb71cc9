/*
 * fuzz_ws.c - libFuzzer harness for WebSocket frames and messages: the
 * real core/ws.c (wslay, UTF-8, JSON dispatch, subscribe, close
 * handshake, limits) on a real event loop.
 *
 * Each input is what one client sends after the handshake, as raw
 * frames: core_ws_accept() takes one end of a socketpair, the input
 * goes in at the other, and the client reads every frame until the
 * server closes.  Seeds mask with the key 0, so that payloads stay
 * readable to the fuzzer; any key works.  After each input no client
 * may remain.
 */
#include <stdint.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "fuzz.h"
#include "ws.h"

#define KEY	"dGhlIHNhbXBsZSBub25jZQ=="

static void
ws_echo(uint64_t client, const char *data, size_t len, void *arg)
{
	(void)arg;
	(void)core_ws_send(client, "echo", data, len);
}

/* Every client gets it, subscribed to "tick" or not. */
static void
ws_tick(uint64_t client, const char *data, size_t len, void *arg)
{
	(void)client;
	(void)arg;
	core_ws_broadcast("tick", data, len);
}

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct core_ws_config ws = {
		.max_message = 4096,
		.max_buffered = 16384,
		.idle_ping_ms = 0,
	};

	(void)argc;
	(void)argv;
	fuzz_loop_init();
	core_ws_configure(&ws);
	if (core_ws_on_message("fuzz", "echo", ws_echo, NULL) ||
	    core_ws_on_message("fuzz", "tick", ws_tick, NULL))
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bufferevent *bev;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1 ||
	    evutil_make_socket_nonblocking(sv[0]) == -1 ||
	    evutil_make_socket_nonblocking(sv[1]) == -1 ||
	    (bev = bufferevent_socket_new(core_base, sv[0],
	    BEV_OPT_CLOSE_ON_FREE)) == NULL)
		abort();
	if (core_ws_accept(bev, KEY) == -1)
		abort();
	fuzz_client(sv[1], data, size);
	fuzz_drain(sv[1], core_ws_clients);
	return 0;
}
