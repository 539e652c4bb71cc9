/*
 * test_ws.c - core/utf8.c against a table of valid and invalid UTF-8,
 * Sec-WebSocket-Accept for RFC 6455's sample key, and core/ws.c over a
 * socketpair: handshake, frames that came with the request, message
 * routing, errors, subscribe filtering, the close handshake, protocol
 * violations, the output limit and shutdown.  No HTTP server here: the
 * end-to-end tests cover the upgrade through core/http_conn.c.
 */
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "core.h"
#include "utf8.h"
#include "ws.h"
#include "ws_events.h"

#define KEY	"dGhlIHNhbXBsZSBub25jZQ=="

struct utf8_case {
	const char	*name;
	const char	*s;
	size_t		 len;
	int		 valid;
};

#define U(name, s, valid)	{ name, s, sizeof(s) - 1, valid }

static const struct utf8_case utf8_cases[] = {
	U("empty", "", 1),
	U("ascii", "hello, world", 1),
	U("nul byte", "a\0b", 1),
	U("2-byte e-acute", "\xc3\xa9", 1),
	U("3-byte euro", "\xe2\x82\xac", 1),
	U("4-byte emoji", "\xf0\x9f\x98\x80", 1),
	U("U+0080", "\xc2\x80", 1),
	U("U+07FF", "\xdf\xbf", 1),
	U("U+0800", "\xe0\xa0\x80", 1),
	U("U+D7FF", "\xed\x9f\xbf", 1),
	U("U+E000", "\xee\x80\x80", 1),
	U("U+FFFF", "\xef\xbf\xbf", 1),
	U("U+10000", "\xf0\x90\x80\x80", 1),
	U("U+10FFFF", "\xf4\x8f\xbf\xbf", 1),
	U("mixed", "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z", 1),
	U("overlong NUL 2", "\xc0\x80", 0),
	U("overlong slash 2", "\xc1\xaf", 0),
	U("overlong 3", "\xe0\x80\xaf", 0),
	U("overlong U+07FF in 3", "\xe0\x9f\xbf", 0),
	U("overlong 4", "\xf0\x80\x80\xaf", 0),
	U("overlong U+FFFF in 4", "\xf0\x8f\xbf\xbf", 0),
	U("surrogate D800", "\xed\xa0\x80", 0),
	U("surrogate DFFF", "\xed\xbf\xbf", 0),
	U("surrogate pair", "\xed\xa0\xbd\xed\xb8\x80", 0),
	U("U+110000", "\xf4\x90\x80\x80", 0),
	U("lead F5", "\xf5\x80\x80\x80", 0),
	U("lead FF", "\xff", 0),
	U("lead FE", "\xfe", 0),
	U("5-byte form", "\xf8\x88\x80\x80\x80", 0),
	U("6-byte form", "\xfc\x84\x80\x80\x80\x80", 0),
	U("lone continuation", "\x80", 0),
	U("continuation after ascii", "a\xbf", 0),
	U("truncated 2", "\xc3", 0),
	U("truncated 3", "\xe2\x82", 0),
	U("truncated 4", "\xf0\x9f\x98", 0),
	U("truncated then ascii", "\xe2\x82z", 0),
	U("bad continuation", "\xc3\x28", 0),
	U("bad third byte", "\xe2\x82\x28", 0),
	U("bad fourth byte", "\xf0\x9f\x98\x28", 0),
};

static void
test_utf8_table(void **state)
{
	size_t i;
	int got;

	(void)state;
	for (i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
		got = core_utf8_valid((const unsigned char *)utf8_cases[i].s,
		    utf8_cases[i].len);
		if (got != utf8_cases[i].valid)
			fail_msg("utf8 case \"%s\": got %d, want %d",
			    utf8_cases[i].name, got, utf8_cases[i].valid);
	}
}

static void
test_accept_key(void **state)
{
	char out[29];

	(void)state;
	/* RFC 6455 section 1.3. */
	assert_int_equal(core_ws_accept_key(KEY, out), 0);
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	assert_int_equal(core_ws_accept_key("", out), -1);
	assert_int_equal(core_ws_accept_key(NULL, out), -1);
	assert_int_equal(core_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ=", out),
	    -1);
	assert_int_equal(core_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==x", out),
	    -1);
	assert_int_equal(core_ws_accept_key("dGhlIHNhbXBsZSBub25jZ!==", out),
	    -1);
	/* 22nd character carries bits past the 16 bytes. */
	assert_int_equal(core_ws_accept_key("dGhlIHNhbXBsZSBub25jZR==", out),
	    -1);
}

/* -- a WebSocket client on the other end of a socketpair ------------- */

struct peer {
	int	fd;
};

struct frame {
	int		 fin;
	int		 opcode;
	size_t		 len;
	unsigned char	*data;
};

static void
pump(int ms)
{
	int i;

	for (i = 0; i < ms; i++) {
		event_base_loop(core_base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
}

/* Reads exactly n bytes, running the loop meanwhile; -1 on EOF/timeout. */
static int
peer_read(struct peer *p, void *buf, size_t n)
{
	size_t got = 0;
	ssize_t r;
	int tries;

	for (tries = 0; got < n && tries < 3000; tries++) {
		event_base_loop(core_base, EVLOOP_NONBLOCK);
		r = recv(p->fd, (char *)buf + got, n - got, MSG_DONTWAIT);
		if (r == 0)
			return -1;
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		usleep(1000);
	}
	return got == n ? 0 : -1;
}

/* True once the server has closed its side. */
static int
peer_eof(struct peer *p)
{
	char c;
	ssize_t r;
	int tries;

	for (tries = 0; tries < 3000; tries++) {
		event_base_loop(core_base, EVLOOP_NONBLOCK);
		r = recv(p->fd, &c, 1, MSG_DONTWAIT);
		if (r == 0)
			return 1;
		if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return 1;
		usleep(1000);
	}
	return 0;
}

static void
frame_build(unsigned char *out, size_t *outlen, int fin, int opcode,
    int masked, const void *payload, size_t len)
{
	static const unsigned char key[4] = { 0x37, 0xfa, 0x21, 0x3d };
	const unsigned char *pl = payload;
	size_t h = 0, i;

	out[h++] = (unsigned char)((fin ? 0x80 : 0) | opcode);
	if (len < 126)
		out[h++] = (unsigned char)((masked ? 0x80 : 0) | len);
	else {
		assert_true(len < 65536);
		out[h++] = (unsigned char)((masked ? 0x80 : 0) | 126);
		out[h++] = (unsigned char)(len >> 8);
		out[h++] = (unsigned char)len;
	}
	if (masked) {
		memcpy(out + h, key, 4);
		h += 4;
	}
	for (i = 0; i < len; i++)
		out[h + i] = masked ? pl[i] ^ key[i % 4] : pl[i];
	*outlen = h + len;
}

static void
peer_send(struct peer *p, int fin, int opcode, int masked,
    const void *payload, size_t len)
{
	unsigned char buf[70000];
	size_t n;

	frame_build(buf, &n, fin, opcode, masked, payload, len);
	assert_int_equal(send(p->fd, buf, n, 0), (ssize_t)n);
}

static void
peer_text(struct peer *p, const char *s)
{
	peer_send(p, 1, 1, 1, s, strlen(s));
}

static int
peer_frame(struct peer *p, struct frame *f)
{
	unsigned char h[8];
	size_t i;

	memset(f, 0, sizeof(*f));
	if (peer_read(p, h, 2) == -1)
		return -1;
	f->fin = h[0] >> 7;
	f->opcode = h[0] & 0x0f;
	assert_int_equal(h[1] & 0x80, 0);	/* servers never mask */
	f->len = h[1] & 0x7f;
	if (f->len == 126) {
		if (peer_read(p, h, 2) == -1)
			return -1;
		f->len = (size_t)h[0] << 8 | h[1];
	} else if (f->len == 127) {
		if (peer_read(p, h, 8) == -1)
			return -1;
		for (f->len = 0, i = 0; i < 8; i++)
			f->len = f->len << 8 | h[i];
	}
	f->data = calloc(1, f->len + 1);
	assert_non_null(f->data);
	if (peer_read(p, f->data, f->len) == -1) {
		free(f->data);
		return -1;
	}
	return 0;
}

/* The next text frame, which must equal want. */
static void
peer_expect(struct peer *p, const char *want)
{
	struct frame f;

	assert_int_equal(peer_frame(p, &f), 0);
	assert_int_equal(f.opcode, 1);
	assert_string_equal((char *)f.data, want);
	free(f.data);
}

/* The next frame must be a close with this code, then EOF. */
static void
peer_expect_close(struct peer *p, int code)
{
	struct frame f;

	assert_int_equal(peer_frame(p, &f), 0);
	assert_int_equal(f.opcode, 8);
	assert_true(f.len >= 2);
	assert_int_equal(f.data[0] << 8 | f.data[1], code);
	assert_true(core_utf8_valid(f.data + 2, f.len - 2));
	free(f.data);
	assert_true(peer_eof(p));
}

/* Connects a client; early, if given, is queued before the handover. */
static void
peer_open(struct peer *p, const char *early)
{
	struct bufferevent *bev;
	char head[512];
	size_t n = 0;
	int sv[2];
	unsigned char fb[512];
	size_t fl;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(evutil_make_socket_nonblocking(sv[0]), 0);
	bev = bufferevent_socket_new(core_base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(bev);
	if (early != NULL) {
		frame_build(fb, &fl, 1, 1, 1, early, strlen(early));
		/* As if read with the request head (the tail is frozen). */
		evbuffer_unfreeze(bufferevent_get_input(bev), 0);
		assert_int_equal(evbuffer_add(bufferevent_get_input(bev), fb,
		    fl), 0);
		evbuffer_freeze(bufferevent_get_input(bev), 0);
	}
	p->fd = sv[1];
	assert_int_equal(core_ws_accept(bev, KEY), 0);
	/* The 101 head, byte by byte up to the blank line. */
	while (n < sizeof(head) - 1) {
		assert_int_equal(peer_read(p, head + n, 1), 0);
		n++;
		head[n] = '\0';
		if (n >= 4 && strcmp(head + n - 4, "\r\n\r\n") == 0)
			break;
	}
	assert_non_null(strstr(head, "HTTP/1.1 101 "));
	assert_non_null(strstr(head,
	    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
}

static void
peer_close(struct peer *p)
{
	close(p->fd);
	p->fd = -1;
	pump(5);
}

static void
echo_handler(uint64_t client, const char *data, size_t len, void *arg)
{
	int *calls = arg;

	(*calls)++;
	assert_int_equal(core_ws_send(client, "echo", data, len), 0);
}

static int	echo_calls;

static int
setup(void **state)
{
	(void)state;
	core_base = event_base_new();
	/* The types these tests broadcast, as a module would declare them. */
	if (core_ws_event_declare("test", "a") == -1 ||
	    core_ws_event_declare("test", "b") == -1 ||
	    core_ws_event_declare("test", "small") == -1 ||
	    core_ws_event_declare("test", "big") == -1)
		return -1;
	return core_base == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	core_ws_shutdown();
	core_ws_event_forget("test");
	core_ws_event_forget("relay");
	event_base_free(core_base);
	core_base = NULL;
	return 0;
}

static void
test_register(void **state)
{
	(void)state;
	assert_int_equal(core_ws_on_message("test", "echo", echo_handler,
	    &echo_calls), 0);
	assert_int_equal(core_ws_on_message("other", "echo", echo_handler,
	    NULL), -1);
	assert_int_equal(core_ws_on_message("test", "subscribe",
	    echo_handler, NULL), -1);
	assert_int_equal(core_ws_on_message("test", "", echo_handler, NULL),
	    -1);
}

static void
test_round_trip(void **state)
{
	struct peer p;
	struct frame f;
	static const char big[] = "{\"type\":\"echo\",\"data\":\"%s\"}";
	char *pad, *msg;

	(void)state;
	peer_open(&p, "{\"type\":\"echo\",\"data\":{\"a\":1}}");
	assert_int_equal(core_ws_clients(), 1);
	/* Sent with the request head. */
	peer_expect(&p, "{\"type\":\"echo\",\"data\":{\"a\":1}}");
	peer_text(&p, "{\"type\":\"echo\",\"data\":\"x\\\"y\"}");
	peer_expect(&p, "{\"type\":\"echo\",\"data\":\"x\\\"y\"}");
	peer_text(&p, "{\"type\":\"echo\"}");
	peer_expect(&p, "{\"type\":\"echo\",\"data\":null}");
	assert_int_equal(echo_calls, 3);

	/* A 16-bit length frame both ways. */
	pad = malloc(1001);
	msg = malloc(1100);
	assert_non_null(pad);
	assert_non_null(msg);
	memset(pad, 'p', 1000);
	pad[1000] = '\0';
	snprintf(msg, 1100, big, pad);
	peer_text(&p, msg);
	peer_expect(&p, msg);
	free(pad);
	free(msg);

	/* Fragmented, with a ping in between. */
	peer_send(&p, 0, 1, 1, "{\"type\":", 8);
	peer_send(&p, 1, 9, 1, "hi", 2);
	assert_int_equal(peer_frame(&p, &f), 0);
	assert_int_equal(f.opcode, 10);
	assert_string_equal((char *)f.data, "hi");
	free(f.data);
	peer_send(&p, 0, 0, 1, "\"echo\",", 7);
	peer_send(&p, 1, 0, 1, "\"data\":[1,2]}", 13);
	peer_expect(&p, "{\"type\":\"echo\",\"data\":[1,2]}");

	peer_text(&p, "{\"type\":\"nope\"}");
	peer_expect(&p, "{\"type\":\"error\",\"data\":"
	    "{\"code\":\"unknown_type\","
	    "\"message\":\"unknown message type \\\"nope\\\"\"}}");
	peer_text(&p, "{\"type\":");
	peer_expect(&p, "{\"type\":\"error\",\"data\":{\"code\":\"bad_json\","
	    "\"message\":\"message is not valid JSON\"}}");
	peer_text(&p, "[1]");
	assert_int_equal(peer_frame(&p, &f), 0);
	assert_non_null(strstr((char *)f.data, "\"bad_message\""));
	free(f.data);
	peer_text(&p, "{\"type\":7}");
	assert_int_equal(peer_frame(&p, &f), 0);
	assert_non_null(strstr((char *)f.data, "\"bad_message\""));
	free(f.data);

	/* Broadcasts, then subscribe filtering. */
	core_ws_broadcast("b", "1", 1);
	peer_expect(&p, "{\"type\":\"b\",\"data\":1}");
	/* "c" is no type anyone sends: refused, the subscription unchanged. */
	peer_text(&p, "{\"type\":\"subscribe\",\"events\":[\"a\",\"c\"]}");
	peer_expect(&p, "{\"type\":\"error\",\"data\":{\"code\":"
	    "\"unknown_event\",\"message\":\"unknown event \\\"c\\\"; the "
	    "server sends: a, b, small, big\",\"events\":[\"c\"]}}");
	core_ws_broadcast("b", "5", 1);
	peer_expect(&p, "{\"type\":\"b\",\"data\":5}");
	/* A relay that sends any type makes every name valid. */
	assert_int_equal(core_ws_event_declare("relay", "*"), 0);
	peer_text(&p, "{\"type\":\"subscribe\",\"events\":[\"a\",\"c\"]}");
	peer_expect(&p, "{\"type\":\"subscribed\",\"events\":[\"a\",\"c\"]}");
	core_ws_event_forget("relay");
	core_ws_broadcast("b", "2", 1);
	core_ws_broadcast("a", "{\"x\":[]}", 8);
	peer_expect(&p, "{\"type\":\"a\",\"data\":{\"x\":[]}}");
	peer_text(&p, "{\"type\":\"subscribe\",\"events\":\"a\"}");
	assert_int_equal(peer_frame(&p, &f), 0);
	assert_non_null(strstr((char *)f.data, "\"bad_message\""));
	free(f.data);
	peer_text(&p, "{\"type\":\"subscribe\",\"events\":[\"*\"]}");
	peer_expect(&p, "{\"type\":\"subscribed\",\"events\":[\"*\"]}");
	core_ws_broadcast("b", "3", 1);
	peer_expect(&p, "{\"type\":\"b\",\"data\":3}");
	peer_text(&p, "{\"type\":\"subscribe\",\"events\":[\"a\"]}");
	peer_expect(&p, "{\"type\":\"subscribed\",\"events\":[\"a\"]}");
	peer_text(&p, "{\"type\":\"subscribe\",\"events\":[]}");
	peer_expect(&p, "{\"type\":\"subscribed\",\"events\":[]}");
	core_ws_broadcast("b", "4", 1);
	peer_expect(&p, "{\"type\":\"b\",\"data\":4}");

	/* Close handshake: our code comes back, then the server's FIN. */
	peer_send(&p, 1, 8, 1, "\x0f\xa0" "bye", 5);
	peer_expect_close(&p, 4000);
	peer_close(&p);
	assert_int_equal(core_ws_clients(), 0);
	assert_int_equal(core_ws_send(1, "x", "1", 1), -1);
}

static void
test_violations(void **state)
{
	static unsigned char many[1101 * 7];
	struct peer p;
	size_t n, fl;
	int i;

	(void)state;
	peer_open(&p, NULL);
	peer_send(&p, 1, 1, 1, "\"\xc3\x28\"", 4);
	peer_expect_close(&p, 1007);
	peer_close(&p);

	peer_open(&p, NULL);
	peer_send(&p, 1, 1, 1, "\"\xed\xa0\x80\"", 5);
	peer_expect_close(&p, 1007);
	peer_close(&p);

	peer_open(&p, NULL);
	peer_send(&p, 1, 2, 1, "\x01\x02", 2);
	peer_expect_close(&p, 1003);
	peer_close(&p);

	peer_open(&p, NULL);
	peer_send(&p, 1, 1, 0, "{}", 2);
	peer_expect_close(&p, 1002);
	peer_close(&p);

	/* Continuation with nothing to continue. */
	peer_open(&p, NULL);
	peer_send(&p, 1, 0, 1, "{}", 2);
	peer_expect_close(&p, 1002);
	peer_close(&p);

	/* Too many fragments for one message. */
	peer_open(&p, NULL);
	/* One send: many tiny ones would fill the socket's buffer. */
	frame_build(many, &n, 0, 1, 1, "{", 1);
	for (i = 0; i < 1100; i++) {
		frame_build(many + n, &fl, 0, 0, 1, " ", 1);
		n += fl;
	}
	assert_int_equal(send(p.fd, many, n, 0), (ssize_t)n);
	peer_expect_close(&p, 1009);
	peer_close(&p);

	/* Close reason that is not UTF-8. */
	peer_open(&p, NULL);
	peer_send(&p, 1, 8, 1, "\x03\xe8\xff", 3);
	peer_expect_close(&p, 1007);
	peer_close(&p);
	assert_int_equal(core_ws_clients(), 0);
}

static void
test_too_big(void **state)
{
	struct core_ws_config cfg = { 100, 4194304, 0 };
	struct core_ws_config def = { 65536, 4194304, 0 };
	char msg[200];
	struct peer p;

	(void)state;
	core_ws_configure(&cfg);
	peer_open(&p, NULL);
	memset(msg, ' ', sizeof(msg));
	memcpy(msg, "{}", 2);
	peer_send(&p, 1, 1, 1, msg, sizeof(msg));
	peer_expect_close(&p, 1009);
	peer_close(&p);
	core_ws_configure(&def);
}

static void
test_too_slow(void **state)
{
	struct core_ws_config cfg = { 65536, 20000, 0 };
	struct core_ws_config def = { 65536, 4194304, 0 };
	struct peer p, q;
	struct frame f;
	char *data;
	int i, frames = 0, closed = 0;

	(void)state;
	core_ws_configure(&cfg);
	peer_open(&p, NULL);
	peer_open(&q, NULL);
	peer_text(&q, "{\"type\":\"subscribe\",\"events\":[\"small\"]}");
	peer_expect(&q, "{\"type\":\"subscribed\",\"events\":[\"small\"]}");
	assert_int_equal(core_ws_clients(), 2);
	data = malloc(6002);
	assert_non_null(data);
	memset(data, 'x', 6002);
	data[0] = data[6001] = '"';
	/* No loop turns in between: nothing leaves the output buffer. */
	for (i = 0; i < 10; i++)
		core_ws_broadcast("big", data, 6002);
	free(data);
	assert_int_equal(core_ws_clients(), 1);
	assert_int_equal(core_ws_send(1, "x", "1", 1), -1);
	while (!closed && peer_frame(&p, &f) == 0) {
		if (f.opcode == 1)
			frames++;
		else if (f.opcode == 8) {
			assert_int_equal(f.data[0] << 8 | f.data[1], 1008);
			closed = 1;
		}
		free(f.data);
	}
	assert_true(closed);
	assert_true(frames >= 1 && frames < 10);
	assert_true(peer_eof(&p));
	peer_close(&p);
	/* The other client, not subscribed to "big", is untouched. */
	core_ws_broadcast("small", "1", 1);
	peer_expect(&q, "{\"type\":\"small\",\"data\":1}");
	peer_close(&q);
	assert_int_equal(core_ws_clients(), 0);
	core_ws_configure(&def);
}

static void
test_bad_key(void **state)
{
	struct bufferevent *bev;
	char buf[512];
	ssize_t n;
	int sv[2], tries;
	size_t got = 0;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(evutil_make_socket_nonblocking(sv[0]), 0);
	bev = bufferevent_socket_new(core_base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	assert_int_equal(core_ws_accept(bev, "short"), -1);
	for (tries = 0; tries < 3000; tries++) {
		event_base_loop(core_base, EVLOOP_NONBLOCK);
		n = recv(sv[1], buf + got, sizeof(buf) - 1 - got, MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n > 0)
			got += (size_t)n;
		else
			usleep(1000);
	}
	buf[got] = '\0';
	assert_non_null(strstr(buf, "HTTP/1.1 400 "));
	assert_non_null(strstr(buf, "Sec-WebSocket-Key"));
	assert_int_equal(core_ws_clients(), 0);
	close(sv[1]);
	pump(5);
}

static void
test_idle_ping(void **state)
{
	struct core_ws_config cfg = { 65536, 4194304, 20 };
	struct core_ws_config def = { 65536, 4194304, 0 };
	struct peer p;
	struct frame f;

	(void)state;
	core_ws_configure(&cfg);
	peer_open(&p, NULL);
	assert_int_equal(peer_frame(&p, &f), 0);
	assert_int_equal(f.opcode, 9);
	free(f.data);
	/* Unanswered pings end the connection. */
	assert_true(peer_eof(&p));
	peer_close(&p);
	assert_int_equal(core_ws_clients(), 0);
	core_ws_configure(&def);
}

/* Last: shutdown refuses every later client. */
static void
test_shutdown(void **state)
{
	struct peer p, q;
	struct bufferevent *bev;
	int sv[2];

	(void)state;
	peer_open(&p, NULL);
	peer_open(&q, NULL);
	peer_text(&q, "{\"type\":\"echo\",\"data\":1}");
	peer_expect(&q, "{\"type\":\"echo\",\"data\":1}");
	core_ws_shutdown();
	assert_int_equal(core_ws_clients(), 0);
	peer_expect_close(&p, 1001);
	peer_expect_close(&q, 1001);
	peer_close(&p);
	peer_close(&q);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	bev = bufferevent_socket_new(core_base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	assert_int_equal(core_ws_accept(bev, KEY), -1);
	close(sv[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8_table),
		cmocka_unit_test(test_accept_key),
		cmocka_unit_test(test_register),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_violations),
		cmocka_unit_test(test_too_big),
		cmocka_unit_test(test_too_slow),
		cmocka_unit_test(test_bad_key),
		cmocka_unit_test(test_idle_ping),
		cmocka_unit_test(test_shutdown),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
