/*
 * ws.c - WebSocket clients (RFC 6455) on the bufferevents that
 * core/http_conn.c hands over after an upgrade request.
 *
 * libwslay does the framing: unmasking, reassembly of fragments, answers
 * to pings, size and masking rules, the close handshake; a connection
 * we fail gets our own close frame with its code.  This file owns
 * the connections: the 101 answer, the JSON envelope {"type","data"},
 * "subscribe", routing other client messages to the module that
 * registered their type, broadcasts, the per-client output limit and
 * the end of every connection.  It knows nothing of what modules send.
 *
 * Output does not go through the bufferevent (which only reads): each
 * client has a queue of whole frames, each a reference to a refcounted
 * frame built once, that is written with sendmsg(2) straight to the
 * socket, many frames at once, from the loop: clients with new output
 * go on a pending list written a slice a loop turn, so HTTP is
 * served while a broadcast goes out.  A slice's sends go to the kernel
 * in one io_uring call (core/ws_ring.c) where it can, else one send
 * each.  A write event is armed only while the socket would block.
 * wslay's own frames (pongs, close echoes, pings) are collected while
 * wslay_event_send() runs and queued as one frame, so its frames and
 * ours never interleave inside a frame.
 * What a client holds is counted in real bytes (entries, frames and
 * their allocation overhead), not message lengths: against
 * ws_max_buffered with whole frames, against the server-wide budget of
 * core/outmem.c with frames shared out (ws_cost(), ws_share()).
 *
 * A client has a wslay context only while wslay holds state for it
 * (ws_ctx_idle()): the context is 9 KB, the rest of an idle client
 * under 2 KB.  A client that subscribed with batchMs gets its newOrder
 * broadcasts gathered into one newOrders message per batchMs, sent
 * before anything else queued to it so that the order of what it is
 * told is kept.
 *
 * A connection is OPEN until a close frame is queued (by either side,
 * or because the client is too slow or cut by the budget), then CLOSING
 * until that frame is flushed, then LINGER: our side of the TCP
 * connection is shut and we wait briefly for the peer's FIN, so that
 * late bytes from it do not turn our close into a reset.  A grace timer
 * bounds CLOSING and LINGER.  In CLOSING it counts WS_GRACE_MS without
 * progress, as nginx's send_timeout does: a byte written, or fewer in
 * the kernel's send queue (megabytes on loopback) than at the last
 * look.  So a client cut with much in flight still reads our close if
 * it keeps reading; WS_CLOSE_MAX_MS in all.
 *
 * Connections are freed only from libevent callbacks at their top level
 * (read, write, event, timer) or by core_ws_shutdown(), never from a
 * send or broadcast: a module may send from any handler without the
 * client vanishing under a caller.  Loop thread only.
 */
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <linux/sockios.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <wslay/wslay.h>

#include "buf.h"
#include "core.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "outmem.h"
#include "utf8.h"
#include "ws.h"
#include "ws_events.h"
#include "ws_io.h"
#include "ws_ring.h"

#define WS_GUID		"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_GRACE_MS	2000	/* CLOSING, LINGER: no progress this long */
#define WS_CLOSE_MAX_MS	20000	/* CLOSING and LINGER: at most this */
#define WS_MAX_TYPE	64	/* bytes in a message type */
#define WS_MAX_SUBS	64	/* types in one subscribe */
#define WS_MAX_MISSED	2	/* unanswered idle pings before we drop */
#define WS_MAX_FRAGS	1024	/* frames in one message */
#define WS_IOV		64	/* frames in one sendmsg */
#define WS_MALLOC	16	/* allocator overhead per allocation */
#define WS_SLICE	256	/* clients written per loop turn, at most */
#define WS_SLICE_US	1000	/* and for about this long */
#define WS_RING_SLICE	32	/* clients per io_uring_enter() */
#define WS_RING_IOV	8	/* frames per client in one */
#define WS_BATCH_MIN	10	/* batchMs bounds */
#define WS_BATCH_MAX	10000

enum ws_state {
	WS_OPEN,
	WS_CLOSING,
	WS_LINGER
};

/*
 * A frame as it goes on the wire, shared by the queue of every client
 * it was sent to: a broadcast is built once.
 */
struct ws_frame {
	size_t		 refs;
	size_t		 fanout;	/* clients it was queued to */
	int		 mtype;		/* metrics type; -1: not a message */
	size_t		 len;
	unsigned char	 data[];
};

struct ws_out {
	STAILQ_ENTRY(ws_out)	 entry;
	struct ws_frame		*frame;
	size_t			 share;		/* counted in mem */
};

struct ws_client {
	TAILQ_ENTRY(ws_client)	 entry;
	TAILQ_ENTRY(ws_client)	 pentry;	/* on pending */
	int			 pending;
	struct ws_client	*hnext;		/* id hash chain */
	uint64_t		 id;		/* 0: a refused handshake */
	struct bufferevent	*bev;
	wslay_event_context_ptr	 ctx;		/* NULL: idle, or refused */
	struct event		*timer;		/* idle ping, then grace */
	char			**subs;		/* NULL: every type */
	size_t			 nsubs;
	enum ws_state		 state;
	int			 in_recv;	/* inside wslay_event_recv */
	int			 rx;		/* input since the last tick */
	int			 missed;	/* idle pings unanswered */
	int			 kick;		/* timer: read early input */
	unsigned		 frags;		/* frames of the message so far */
	int			 partial;	/* a fragmented message is open */
	size_t			 fed;		/* bytes handed to ctx */
	size_t			 framed;	/* bytes of frames ctx started */
	STAILQ_HEAD(, ws_out)	 outq;		/* whole frames to send */
	struct ws_out		 out1;		/* an entry without malloc */
	int			 out1_used;	/* out1 is on outq */
	size_t			 off;		/* sent of the first one */
	size_t			 held;		/* outq, frames whole */
	size_t			 mem;		/* outq, frames shared */
	struct event		*wev;		/* socket writable, or flush */
	int			 wblocked;	/* wev waits for the socket */
	int			 wfd;		/* the socket, for ws_write() */
	int			 wagain;	/* ws_write() would block */
	int			 werr;		/* ws_write()'s errno, or 0 */
	size_t			 wrote;		/* ws_write()'s bytes sent */
	int			 closed;	/* our own close frame queued */
	int64_t			 closing_ms;	/* left OPEN, monotonic */
	int			 outq_seen;	/* kernel send queue then */
	struct sales_buf	 stage;		/* wslay's frames being sent */
	long			 batch_ms;	/* newOrder batched; 0: not */
	struct sales_buf	 batch;		/* orders not yet sent, by "," */
	size_t			 batch_n;	/* orders in it */
	struct event		*btimer;	/* sends the batch */
	struct core_outmem	 om;
};

struct ws_handler {
	char		 owner[64];
	char		 type[WS_MAX_TYPE + 1];
	sales_ws_handler fn;
	void		*arg;
};

static TAILQ_HEAD(, ws_client)	 clients = TAILQ_HEAD_INITIALIZER(clients);
static TAILQ_HEAD(, ws_client)	 pending = TAILQ_HEAD_INITIALIZER(pending);
static struct event		*flusher;	/* writes pending, a slice a turn */
static struct ws_client		**hash;
static size_t			 hash_size;	/* power of two, or 0 */
static size_t			 nhashed;
static size_t			 nopen;
static uint64_t			 next_id = 1;
static int			 shut;
static struct ws_handler	*handlers;
static size_t			 nhandlers;
static struct core_ws_config	 config = {
	.max_message = 65536,
	.max_buffered = 4194304,
	.idle_ping_ms = 0
};

static void	ws_readcb(struct bufferevent *, void *);
static void	ws_writecb(struct bufferevent *, void *);
static void	ws_eventcb(struct bufferevent *, short, void *);
static void	ws_timercb(evutil_socket_t, short, void *);
static void	ws_wcb(evutil_socket_t, short, void *);
static int	ws_after(struct ws_client *);
static int	ws_before(struct ws_client *);
static int	ws_finish(struct ws_client *);
static void	ws_write(void *);
static void	ws_write_more(struct ws_client *);
static int	ws_iov(struct ws_out *, size_t, struct iovec *, int);
static void	ws_sent(struct ws_client *);
static void	ws_free(struct ws_client *);
static int	ws_batch_flush(struct ws_client *);
static int	ws_error(struct ws_client *, const char *, const char *);

void
core_ws_configure(const struct core_ws_config *cfg)
{
	config = *cfg;
	if (config.max_message == 0)
		config.max_message = 65536;
	if (config.max_buffered == 0)
		config.max_buffered = 4194304;
	if (config.idle_ping_ms < 0)
		config.idle_ping_ms = 0;
}

int
core_ws_accept_key(const char *key, char out[29])
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char md[SHA_DIGEST_LENGTH];
	char in[24 + sizeof(WS_GUID)];
	size_t i;

	/*
	 * 16 bytes in base64: 21 free characters, one whose low four
	 * bits are padding (so zero), then "==".
	 */
	if (key == NULL || strlen(key) != 24 || key[22] != '=' ||
	    key[23] != '=')
		return -1;
	for (i = 0; i < 22; i++)
		if (key[i] == '\0' || strchr(b64, key[i]) == NULL)
			return -1;
	if ((strchr(b64, key[21]) - b64) & 0x0f)
		return -1;
	memcpy(in, key, 24);
	memcpy(in + 24, WS_GUID, sizeof(WS_GUID));
	SHA1((const unsigned char *)in, 24 + sizeof(WS_GUID) - 1, md);
	if (EVP_EncodeBlock((unsigned char *)out, md, sizeof(md)) != 28)
		return -1;
	return 0;
}

/* The id hash: core_ws_send() finds a client in O(1). */
static struct ws_client **
ws_slot(uint64_t id)
{
	uint64_t h = id * 0x9e3779b97f4a7c15ULL;

	return &hash[(h >> 32) & (hash_size - 1)];
}

static int
ws_hash_add(struct ws_client *c)
{
	struct ws_client **nh, **old, *p, *next, **slot;
	size_t i, oldsize;

	if (nhashed + 1 > hash_size / 2 * 3 || hash_size == 0) {
		oldsize = hash_size;
		old = hash;
		if ((nh = calloc(oldsize ? oldsize * 2 : 64,
		    sizeof(*nh))) == NULL)
			return -1;
		hash = nh;
		hash_size = oldsize ? oldsize * 2 : 64;
		for (i = 0; i < oldsize; i++) {
			for (p = old[i]; p != NULL; p = next) {
				next = p->hnext;
				slot = ws_slot(p->id);
				p->hnext = *slot;
				*slot = p;
			}
		}
		free(old);
	}
	slot = ws_slot(c->id);
	c->hnext = *slot;
	*slot = c;
	nhashed++;
	return 0;
}

static void
ws_hash_del(struct ws_client *c)
{
	struct ws_client **pp;

	if (hash_size == 0)
		return;
	for (pp = ws_slot(c->id); *pp != NULL; pp = &(*pp)->hnext) {
		if (*pp == c) {
			*pp = c->hnext;
			nhashed--;
			return;
		}
	}
}

static struct ws_client *
ws_find(uint64_t id)
{
	struct ws_client *c;

	if (hash_size == 0)
		return NULL;
	for (c = *ws_slot(id); c != NULL; c = c->hnext)
		if (c->id == id)
			return c;
	return NULL;
}

static void
ws_subs_free(struct ws_client *c)
{
	size_t i;

	for (i = 0; i < c->nsubs; i++)
		free(c->subs[i]);
	free(c->subs);
	c->subs = NULL;
	c->nsubs = 0;
}

/*
 * What one queued frame costs its client, in two measures.  Against
 * ws_max_buffered the entry and the whole frame: a client may end up
 * the last holder of every frame it has, so that is what it can cost.
 * Against the server-wide budget the entry and the frame divided by
 * the clients it was queued to: summed over clients, that is what the
 * process holds, where whole frames would count a broadcast once per
 * client and cut clients for memory never spent.
 */
static size_t
ws_cost(const struct ws_frame *f)
{
	return sizeof(struct ws_out) + sizeof(*f) + f->len + 2 * WS_MALLOC;
}

static size_t
ws_share(const struct ws_frame *f)
{
	return sizeof(struct ws_out) + WS_MALLOC +
	    (sizeof(*f) + f->len + WS_MALLOC) / f->fanout;
}

static void
ws_frame_unref(struct ws_frame *f)
{
	if (--f->refs == 0)
		free(f);
}

/* A frame with refs 0 around raw bytes (already framed, or the 101). */
static struct ws_frame *
ws_frame_raw(const void *data, size_t len)
{
	struct ws_frame *f;

	if ((f = malloc(sizeof(*f) + len)) == NULL)
		return NULL;
	f->refs = 0;
	f->fanout = 1;
	f->mtype = -1;
	f->len = len;
	memcpy(f->data, data, len);
	return f;
}

/* One unmasked, unfragmented server frame with refs 0. */
static struct ws_frame *
ws_frame_new(int opcode, const void *payload, size_t len)
{
	struct ws_frame *f;
	size_t hl, i;

	if ((f = malloc(sizeof(*f) + 10 + len)) == NULL)
		return NULL;
	f->refs = 0;
	f->fanout = 1;
	f->mtype = -1;
	f->data[0] = 0x80 | opcode;
	if (len < 126) {
		f->data[1] = (unsigned char)len;
		hl = 2;
	} else if (len < 65536) {
		f->data[1] = 126;
		f->data[2] = (unsigned char)(len >> 8);
		f->data[3] = (unsigned char)len;
		hl = 4;
	} else {
		f->data[1] = 127;
		for (i = 0; i < 8; i++)
			f->data[2 + i] = (unsigned char)((uint64_t)len >>
			    (56 - 8 * i));
		hl = 10;
	}
	memcpy(f->data + hl, payload, len);
	f->len = hl + len;
	return f;
}

/* Takes the client whose output came first off the pending list. */
static struct ws_client *
ws_next_pending(void)
{
	struct ws_client *c;

	if ((c = TAILQ_FIRST(&pending)) != NULL) {
		TAILQ_REMOVE(&pending, c, pentry);
		c->pending = 0;
	}
	return c;
}

/*
 * The slice's bookkeeping once its writes are done, on the loop
 * thread: what was sent is taken off every queue before any budget
 * check (the budget may cut a client of the slice, and ws_cut() drops
 * its queue, which must not fall between its write and its
 * accounting); then a client whose write failed goes.
 */
static void
ws_settle(struct ws_client **slice, size_t n)
{
	struct ws_client *c;
	size_t i;

	for (i = 0; i < n; i++)
		ws_sent(slice[i]);
	for (i = 0; i < n; i++) {
		c = slice[i];
		if (c->werr != 0) {
			core_log("ws", SALES_LOG_DEBUG, "client %llu: write: "
			    "%s", (unsigned long long)c->id,
			    strerror(c->werr));
			ws_free(c);
			continue;
		}
		core_outmem_set(&c->om, c->mem);
		ws_finish(c);
	}
}

/*
 * Takes up to max clients off the pending list and prepares each
 * (wslay's frames queued): those with something to send are put in
 * slice, in order, and counted in the return.  Frees only a client
 * that fails: the rest stay valid.
 */
static size_t
ws_take(struct ws_client **slice, size_t max)
{
	struct ws_client *c;
	size_t k = 0;

	while (k < max && (c = ws_next_pending()) != NULL) {
		if (ws_before(c) == -1)
			continue;
		if (STAILQ_EMPTY(&c->outq)) {
			ws_finish(c);
			continue;
		}
		slice[k++] = c;
	}
	return k;
}

/*
 * A slice with I/O threads ([server] io_threads): the loop thread
 * takes the slice and prepares each client, the slice's socket writes
 * are spread over the threads and the loop thread (core_ws_io_run(),
 * which returns when all are done), then the loop thread alone does
 * the bookkeeping.
 */
static void
ws_flush_threads(void)
{
	struct ws_client *slice[WS_SLICE];
	size_t k;

	k = ws_take(slice, WS_SLICE);
	core_ws_io_run((void **)slice, k, ws_write);
	ws_settle(slice, k);
}

/*
 * A slice through io_uring (core/ws_ring.c), until the monotonic time
 * until: WS_RING_SLICE clients' sends in one system call, then the same
 * bookkeeping as any write.  Whatever a client's queue holds past what
 * the ring sent (more than WS_RING_IOV frames, a send that went only in
 * part, one the ring did not take: -ECANCELED, it failed and is off)
 * goes with send() (ws_write_more(), which sends nothing when all
 * went): the ring's try is the fan-out's usual case, one frame whole.
 */
static void
ws_flush_ring(int64_t until)
{
	static struct iovec iov[WS_RING_SLICE][WS_RING_IOV];
	static struct core_ws_send s[WS_RING_SLICE];
	struct ws_client *slice[WS_RING_SLICE], *c;
	size_t i, k, done = 0;

	do {
		k = ws_take(slice, WS_RING_SLICE);
		for (i = 0; i < k; i++) {
			c = slice[i];
			c->wrote = 0;
			c->wagain = 0;
			c->werr = 0;
			s[i].fd = c->wfd;
			s[i].mh.msg_iov = iov[i];
			s[i].mh.msg_iovlen = ws_iov(STAILQ_FIRST(&c->outq),
			    c->off, iov[i], WS_RING_IOV);
		}
		core_ws_ring_send(s, k);
		for (i = 0; i < k; i++) {
			c = slice[i];
			if (s[i].res == -EAGAIN || s[i].res == -EWOULDBLOCK) {
				c->wagain = 1;
				continue;
			}
			if (s[i].res < 0 && s[i].res != -ECANCELED &&
			    s[i].res != -EINTR) {
				c->werr = (int)-s[i].res;
				continue;
			}
			if (s[i].res > 0)
				c->wrote = (size_t)s[i].res;
			ws_write_more(c);
		}
		ws_settle(slice, k);
		done += k;
	} while (k > 0 && done < WS_SLICE && !TAILQ_EMPTY(&pending) &&
	    core_mono_us() < until);
}

/*
 * Writes the clients with new output, at most WS_SLICE of them and for
 * about WS_SLICE_US (the slice a request may wait behind, whatever the
 * machine's speed), in the order their output came, then lets the loop
 * poll before the next
 * slice: a broadcast to 10,000 clients is queued to all at once (so
 * every client gets the same frames in the same order) but written over
 * many loop turns, between which HTTP requests are served.
 */
static void
ws_flushcb(evutil_socket_t fd, short what, void *arg)
{
	static const struct timeval now = { 0, 0 };
	struct ws_client *c;
	int64_t start, until;
	int n;

	(void)fd;
	(void)what;
	(void)arg;
	start = core_mono_us();
	if (core_ws_io_threads() > 0)
		ws_flush_threads();
	else if (core_ws_ring_on())
		ws_flush_ring(start + WS_SLICE_US);
	else {
		until = start + WS_SLICE_US;
		for (n = 1; n <= WS_SLICE && (c = ws_next_pending()) != NULL;
		    n++) {
			ws_after(c);
			if (n % 16 == 0 && core_mono_us() >= until)
				break;
		}
	}
	core_metrics_ws_slice((double)(core_mono_us() - start) / 1e6);
	if (!TAILQ_EMPTY(&pending))
		evtimer_add(flusher, &now);
}

/*
 * Puts c on the pending list, unless its socket would block (its write
 * event will flush it) or it is there already.  A timer of zero runs
 * the flush once the loop has polled: other events get their turn.
 */
static void
ws_pend(struct ws_client *c)
{
	static const struct timeval now = { 0, 0 };

	if (c->wblocked || c->wev == NULL || c->pending)
		return;
	if (flusher == NULL &&
	    (flusher = evtimer_new(core_base, ws_flushcb, NULL)) == NULL) {
		/* Without a slice, at once from the loop. */
		event_active(c->wev, EV_WRITE, 1);
		return;
	}
	TAILQ_INSERT_TAIL(&pending, c, pentry);
	c->pending = 1;
	if (!evtimer_pending(flusher, NULL))
		evtimer_add(flusher, &now);
}

/*
 * Queues f behind whatever c holds and schedules a flush from the loop.
 * The caller tells the budget (core_outmem_set) when it may.
 */
static int
ws_push(struct ws_client *c, struct ws_frame *f)
{
	struct ws_out *o;

	/*
	 * A client mostly holds one frame at a time: its own entry saves
	 * a malloc and a free per client of every broadcast.
	 */
	if (!c->out1_used) {
		o = &c->out1;
		c->out1_used = 1;
	} else if ((o = malloc(sizeof(*o))) == NULL)
		return -1;
	o->frame = f;
	o->share = ws_share(f);
	f->refs++;
	STAILQ_INSERT_TAIL(&c->outq, o, entry);
	c->held += ws_cost(f);
	c->mem += o->share;
	ws_pend(c);
	return 0;
}

/*
 * Takes the head off the queue.  Messages are counted here, where the
 * loop thread does its bookkeeping, never where the bytes are written:
 * ws_pop() for a frame that went out whole, ws_discard() for one that
 * will not.
 */
static void
ws_unqueue(struct ws_client *c)
{
	struct ws_out *o = STAILQ_FIRST(&c->outq);

	STAILQ_REMOVE_HEAD(&c->outq, entry);
	c->held -= ws_cost(o->frame);
	c->mem -= o->share;
	c->off = 0;
	ws_frame_unref(o->frame);
	if (o == &c->out1)
		c->out1_used = 0;
	else
		free(o);
}

static void
ws_pop(struct ws_client *c)
{
	core_metrics_ws_sent(STAILQ_FIRST(&c->outq)->frame->mtype);
	ws_unqueue(c);
}

static void
ws_discard(struct ws_client *c)
{
	core_metrics_ws_dropped(STAILQ_FIRST(&c->outq)->frame->mtype, 1);
	ws_unqueue(c);
}

/* Batched orders that will not go out count as newOrder messages. */
static void
ws_batch_discard(struct ws_client *c)
{
	if (c->batch_n > 0)
		core_metrics_ws_dropped(core_metrics_ws_type("newOrder"),
		    c->batch_n);
	c->batch_n = 0;
	core_buf_free(&c->batch);
}

/* Drops the queue but a frame partly sent: the stream stays framed. */
static void
ws_drop(struct ws_client *c)
{
	struct ws_out *head;
	size_t off = c->off;

	c->held -= c->batch.cap;
	c->mem -= c->batch.cap;
	ws_batch_discard(c);

	if ((head = STAILQ_FIRST(&c->outq)) != NULL && off > 0)
		STAILQ_REMOVE_HEAD(&c->outq, entry);
	else
		head = NULL;
	while (!STAILQ_EMPTY(&c->outq))
		ws_discard(c);
	if (head != NULL) {
		STAILQ_INSERT_HEAD(&c->outq, head, entry);
		c->off = off;
	}
}

/*
 * Moves what wslay has to send into the queue, as one frame: wslay
 * hands over whole frames in pieces, and the stage keeps them together.
 */
static int
ws_wslay(struct ws_client *c)
{
	struct ws_frame *f;
	int r;

	if (c->ctx == NULL || !wslay_event_want_write(c->ctx))
		return 0;
	c->stage.len = 0;
	r = wslay_event_send(c->ctx);
	if (c->stage.len > 0) {
		if ((f = ws_frame_raw(c->stage.data, c->stage.len)) == NULL ||
		    ws_push(c, f) == -1) {
			free(f);
			r = -1;
		}
	}
	return r;
}

/*
 * Fills iov with the queue's bytes from frame at, offset off: at most
 * max frames.  Returns how many.
 */
static int
ws_iov(struct ws_out *at, size_t off, struct iovec *iov, int max)
{
	struct ws_out *o;
	int i = 0;

	for (o = at; o != NULL && i < max; o = STAILQ_NEXT(o, entry)) {
		iov[i].iov_base = o->frame->data + (i ? 0 : off);
		iov[i].iov_len = o->frame->len - (i ? 0 : off);
		i++;
	}
	return i;
}

/* Moves (*at, *off) on by n bytes of the queue. */
static void
ws_skip(struct ws_out **at, size_t *off, size_t n)
{
	while (n > 0) {
		if (n < (*at)->frame->len - *off) {
			*off += n;
			return;
		}
		n -= (*at)->frame->len - *off;
		*off = 0;
		*at = STAILQ_NEXT(*at, entry);
	}
}

/*
 * Sends the queue from c->off plus what c->wrote counts already, until
 * all of it went or the socket would block, adding to wrote and saying
 * how it stopped (wagain, werr).  Reads the queue and its frames and
 * writes those three fields, nothing else (see ws_write()).
 */
static void
ws_write_more(struct ws_client *c)
{
	struct iovec iov[WS_IOV];
	struct msghdr mh;
	struct ws_out *at;
	size_t off;
	ssize_t n;
	int i;

	at = STAILQ_FIRST(&c->outq);
	off = c->off;
	ws_skip(&at, &off, c->wrote);
	while (at != NULL) {
		i = ws_iov(at, off, iov, WS_IOV);
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = iov;
		mh.msg_iovlen = i;
		/* One frame, the fan-out's usual case: no iovec to import. */
		if ((n = i == 1 ? send(c->wfd, iov[0].iov_base,
		    iov[0].iov_len, MSG_NOSIGNAL) :
		    sendmsg(c->wfd, &mh, MSG_NOSIGNAL)) == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				c->wagain = 1;
			else
				c->werr = errno != 0 ? errno : EIO;
			break;
		}
		c->wrote += (size_t)n;
		ws_skip(&at, &off, (size_t)n);
	}
}

/*
 * The write step: sends the queue from c->off on c->wfd until all of it
 * went or the socket would block, and records the bytes sent (wrote)
 * and how it stopped (wagain, werr).  It reads the queue and its
 * frames and writes those three fields, nothing else, so it may run on
 * an I/O thread while the loop thread waits (core/ws_io.c): the loop
 * thread changes no queue, frame or refcount until all writes of the
 * slice are done.
 */
static void
ws_write(void *arg)
{
	struct ws_client *c = arg;

	c->wrote = 0;
	c->wagain = 0;
	c->werr = 0;
	ws_write_more(c);
}

static void
ws_timer_arm(struct ws_client *c, long ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	event_add(c->timer, &tv);
}

/* Bytes in the socket's kernel send queue; -1 if unknown. */
static int
ws_kernel_outq(struct ws_client *c)
{
	int n;

	if (ioctl(c->wfd, SIOCOUTQ, &n) == -1)
		return -1;
	return n;
}

/* A closing client may have another grace, within WS_CLOSE_MAX_MS. */
static int
ws_may_linger(struct ws_client *c)
{
	return core_mono_ms() - c->closing_ms < WS_CLOSE_MAX_MS - WS_GRACE_MS;
}

/* The peer read some of what the kernel held for it since last time. */
static int
ws_kernel_drained(struct ws_client *c)
{
	int n = ws_kernel_outq(c), was = c->outq_seen;

	c->outq_seen = n;
	return n >= 0 && n < was;
}

/*
 * The sent step, loop thread only: takes what ws_write() sent off the
 * queue, counting the messages that went out whole, and waits for
 * writability if the socket would block.  The caller frees c when
 * werr is set.
 */
static void
ws_sent(struct ws_client *c)
{
	struct ws_out *o;
	size_t left;

	for (left = c->wrote; left > 0; ) {
		o = STAILQ_FIRST(&c->outq);
		if (left < o->frame->len - c->off) {
			c->off += left;
			break;
		}
		left -= o->frame->len - c->off;
		ws_pop(c);
	}
	if (c->wrote > 0 && c->state == WS_CLOSING && ws_may_linger(c))
		ws_timer_arm(c, WS_GRACE_MS);
	c->wrote = 0;
	if (c->werr == 0 && c->wagain) {
		c->wblocked = 1;
		event_add(c->wev, NULL);
	}
}

/*
 * Writes the queue until it is empty or the socket would block, then
 * waits for writability: both steps at once, on the loop thread.  -1 on
 * a write error: the caller frees c.
 */
static int
ws_flush(struct ws_client *c)
{
	ws_write(c);
	ws_sent(c);
	if (c->werr != 0)
		return -1;
	core_outmem_set(&c->om, c->mem);
	return 0;
}

static void
ws_free(struct ws_client *c)
{
	if (c->state == WS_OPEN && c->id != 0)
		nopen--;
	if (c->id != 0) {
		ws_hash_del(c);
		core_log("ws", SALES_LOG_DEBUG, "client %llu gone",
		    (unsigned long long)c->id);
	}
	TAILQ_REMOVE(&clients, c, entry);
	if (c->pending)
		TAILQ_REMOVE(&pending, c, pentry);
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->wev != NULL)
		event_free(c->wev);
	if (c->ctx != NULL)
		wslay_event_context_free(c->ctx);
	while (!STAILQ_EMPTY(&c->outq))
		ws_discard(c);
	core_outmem_del(&c->om);
	core_buf_free(&c->stage);
	ws_batch_discard(c);
	if (c->btimer != NULL)
		event_free(c->btimer);
	ws_subs_free(c);
	bufferevent_free(c->bev);
	free(c);
}

/*
 * Leaves OPEN: stops broadcasts to the client and starts the grace
 * timer, within which the close frame must flush.
 */
static void
ws_closing(struct ws_client *c)
{
	if (c->state != WS_OPEN)
		return;
	c->state = WS_CLOSING;
	c->closing_ms = core_mono_ms();
	c->outq_seen = ws_kernel_outq(c);
	if (c->id != 0)
		nopen--;
	ws_timer_arm(c, WS_GRACE_MS);
}

/*
 * Queues our own close frame with code and reads no more messages
 * (RFC 6455 7.1.7: the connection is failed, we do not wait for the
 * peer's close).  wslay sends nothing more: on a frame it cannot parse
 * it queues a close without a code, where RFC 6455 7.4.1 wants 1002
 * (ws_read() shuts wslay's writing first).  What wslay had queued
 * before goes first.
 */
static void
ws_fail(struct ws_client *c, uint16_t code, const char *reason)
{
	unsigned char p[125];
	struct ws_frame *f;
	size_t len;

	if (c->id == 0 || c->closed)
		return;
	if (c->ctx != NULL) {
		ws_wslay(c);
		wslay_event_shutdown_read(c->ctx);
		if (wslay_event_get_close_sent(c->ctx)) {
			ws_closing(c);
			return;
		}
		wslay_event_shutdown_write(c->ctx);
	}
	core_log("ws", SALES_LOG_DEBUG, "client %llu: closing %u, %s",
	    (unsigned long long)c->id, code, reason);
	c->closed = 1;
	len = strlen(reason);
	if (len > sizeof(p) - 2)
		len = sizeof(p) - 2;
	p[0] = code >> 8;
	p[1] = code & 0xff;
	memcpy(p + 2, reason, len);
	if ((f = ws_frame_new(WSLAY_CONNECTION_CLOSE, p, len + 2)) != NULL &&
	    ws_push(c, f) == -1)
		free(f);
	ws_closing(c);
}

static uint64_t	slow_cuts;	/* clients closed 1008 for ws_max_buffered */

static void
ws_too_slow(struct ws_client *c, size_t more)
{
	slow_cuts++;
	core_log("ws", SALES_LOG_WARN, "client %llu too slow: %zu bytes "
	    "held, %zu more would pass ws_max_buffered %zu; closing 1008",
	    (unsigned long long)c->id, c->held, more, config.max_buffered);
	/* The close frame goes out even past the limit: it is small. */
	ws_fail(c, WSLAY_CODE_POLICY_VIOLATION, "client too slow");
}

/*
 * The budget cut c, from inside core_outmem_set() of some connection,
 * maybe in a loop over clients: drop its output, queue a close and let
 * the loop end it (ws_wcb), never free it here.
 */
static void
ws_cut(struct core_outmem *e)
{
	struct ws_client *c = (struct ws_client *)((char *)e -
	    offsetof(struct ws_client, om));

	core_log("ws", SALES_LOG_WARN, "client %llu cut by "
	    "max_output_memory holding %zu bytes; closing 1008",
	    (unsigned long long)c->id, c->mem);
	ws_drop(c);
	ws_fail(c, WSLAY_CODE_POLICY_VIOLATION, "server output memory full");
	ws_pend(c);
}

/*
 * Moves what wslay queued into the queue, writes, then decides whether
 * the connection is over.  Returns -1 when c was freed.
 */
static int
ws_after(struct ws_client *c)
{
	if (ws_before(c) == -1)
		return -1;
	if (!STAILQ_EMPTY(&c->outq) && ws_flush(c) == -1) {
		ws_free(c);
		return -1;
	}
	return ws_finish(c);
}

/*
 * Before a write: what wslay has to send goes into the queue, and a
 * connection wslay closed leaves OPEN.  -1 when c was freed.
 */
static int
ws_before(struct ws_client *c)
{
	if (c->ctx != NULL) {
		if (ws_wslay(c) != 0) {
			ws_free(c);
			return -1;
		}
		if (c->state == WS_OPEN && (c->closed ||
		    wslay_event_get_close_sent(c->ctx) ||
		    !wslay_event_get_read_enabled(c->ctx)))
			ws_closing(c);
	}
	return 0;
}

/*
 * After a write: once the close frame is out, our FIN follows and we
 * wait for the peer's.  -1 when c was freed.
 */
static int
ws_finish(struct ws_client *c)
{
	if (c->state == WS_CLOSING && STAILQ_EMPTY(&c->outq) &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 &&
	    (c->ctx == NULL || c->closed ||
	    wslay_event_get_close_sent(c->ctx) ||
	    !wslay_event_get_write_enabled(c->ctx))) {
		/* Close frame flushed: send our FIN, await the peer's. */
		c->state = WS_LINGER;
		if (c->wev != NULL)
			event_del(c->wev);
		c->wblocked = 0;
		if (shutdown(c->wfd, SHUT_WR) == -1) {
			ws_free(c);
			return -1;
		}
		bufferevent_enable(c->bev, EV_READ);
		ws_timer_arm(c, WS_GRACE_MS);
	}
	return 0;
}

/* wslay I/O: the bufferevent's input stands in for the socket. */
static ssize_t
ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
    void *arg)
{
	struct ws_client *c = arg;
	int n;

	(void)flags;
	n = evbuffer_remove(bufferevent_get_input(c->bev), buf, len);
	if (n <= 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	c->fed += (size_t)n;
	return n;
}

static ssize_t
ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
    int flags, void *arg)
{
	struct ws_client *c = arg;

	(void)flags;
	if (core_buf_append(&c->stage, data, len) == -1) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

/*
 * Queues f to c within its output limit.  The budget may cut c or
 * others on the way: none is freed here.
 */
static int
ws_queue_frame(struct ws_client *c, struct ws_frame *f)
{
	if (c->state != WS_OPEN || c->id == 0)
		return -1;
	/* Orders batched before this frame go before it. */
	if (c->batch.len > 0 && ws_batch_flush(c) == -1)
		return -1;
	if (c->held + ws_cost(f) > config.max_buffered) {
		core_metrics_ws_dropped(f->mtype, 1);
		ws_too_slow(c, ws_cost(f));
		return -1;
	}
	/* wslay's frames (a pong) queued before this one go first. */
	if (ws_wslay(c) != 0 || ws_push(c, f) == -1) {
		core_metrics_ws_dropped(f->mtype, 1);
		return -1;
	}
	/* Cut by the budget here, its queue was dropped and counted. */
	return core_outmem_set(&c->om, c->mem);
}

/*
 * Sends the batched orders as one {"type":"newOrders","data":[...]}.
 * The batch's memory leaves the client's count as the frame enters it.
 */
static int
ws_batch_flush(struct ws_client *c)
{
	static const char head[] = "{\"type\":\"newOrders\",\"data\":[";
	struct sales_buf b = {0};
	struct ws_frame *f = NULL;
	int rv = -1;

	if (c->batch.len == 0)
		return 0;
	if (core_buf_append(&b, head, sizeof(head) - 1) == 0 &&
	    core_buf_append(&b, c->batch.data, c->batch.len) == 0 &&
	    core_buf_append(&b, "]}", 2) == 0)
		f = ws_frame_new(WSLAY_TEXT_FRAME, b.data, b.len);
	core_buf_free(&b);
	c->held -= c->batch.cap;
	c->mem -= c->batch.cap;
	if (f != NULL)
		c->batch_n = 0;		/* one newOrders message now */
	ws_batch_discard(c);
	/* The next batch gets its own batchMs, not what is left of this one. */
	evtimer_del(c->btimer);
	if (f == NULL)
		return -1;
	f->refs = 1;
	f->mtype = core_metrics_ws_type("newOrders");
	rv = ws_queue_frame(c, f);
	ws_frame_unref(f);
	return rv;
}

static void
ws_batchcb(evutil_socket_t fd, short what, void *arg)
{
	struct ws_client *c = arg;

	(void)fd;
	(void)what;
	if (c->state == WS_OPEN)
		ws_batch_flush(c);
}

/*
 * Adds one order to c's batch, sent when batch_ms has passed since the
 * first one: a dashboard follows any order rate with a bounded number
 * of messages.  What waits counts against the same limits as frames.
 */
static int
ws_batch_add(struct ws_client *c, const char *data, size_t len)
{
	struct timeval tv;
	size_t cap = c->batch.cap, was = c->batch.len;

	if (c->held + len + 1 > config.max_buffered) {
		core_metrics_ws_dropped(core_metrics_ws_type("newOrder"), 1);
		ws_too_slow(c, len + 1);
		return -1;
	}
	if ((was > 0 && core_buf_append(&c->batch, ",", 1) == -1) ||
	    core_buf_append(&c->batch, data, len) == -1) {
		core_metrics_ws_dropped(core_metrics_ws_type("newOrder"), 1);
		/* No stray comma: the batch stays a valid list. */
		c->batch.len = was;
		if (c->batch.data != NULL)
			c->batch.data[was] = '\0';
		c->held += c->batch.cap - cap;
		c->mem += c->batch.cap - cap;
		return -1;
	}
	c->held += c->batch.cap - cap;
	c->mem += c->batch.cap - cap;
	c->batch_n++;
	if (!evtimer_pending(c->btimer, NULL)) {
		tv.tv_sec = c->batch_ms / 1000;
		tv.tv_usec = (c->batch_ms % 1000) * 1000;
		evtimer_add(c->btimer, &tv);
	}
	return core_outmem_set(&c->om, c->mem);
}

/* Queues one text message of the given type to one client. */
static int
ws_queue(struct ws_client *c, const char *type, const char *msg, size_t len)
{
	struct ws_frame *f;
	int rv;

	if (c->state != WS_OPEN || c->id == 0)
		return -1;
	if ((f = ws_frame_new(WSLAY_TEXT_FRAME, msg, len)) == NULL) {
		core_metrics_ws_dropped(core_metrics_ws_type(type), 1);
		return -1;
	}
	f->refs = 1;
	f->mtype = core_metrics_ws_type(type);
	rv = ws_queue_frame(c, f);
	ws_frame_unref(f);
	return rv;
}

/* {"type":T,"data":D} with T escaped and D as given. */
static int
ws_envelope(struct sales_buf *b, const char *type, const char *data,
    size_t len)
{
	if (data == NULL || len == 0) {
		data = "null";
		len = 4;
	}
	if (core_buf_append(b, "{\"type\":", 8) == -1 ||
	    core_buf_json_string(b, type, strlen(type)) == -1 ||
	    core_buf_append(b, ",\"data\":", 8) == -1 ||
	    core_buf_append(b, data, len) == -1 ||
	    core_buf_append(b, "}", 1) == -1)
		return -1;
	return 0;
}

static int
ws_error(struct ws_client *c, const char *code, const char *message)
{
	struct sales_buf b = {0};
	int rv = -1;

	if (core_buf_printf(&b, "{\"type\":\"error\",\"data\":{\"code\":") ==
	    -1 || core_buf_json_string(&b, code, strlen(code)) == -1 ||
	    core_buf_printf(&b, ",\"message\":") == -1 ||
	    core_buf_json_string(&b, message, strlen(message)) == -1 ||
	    core_buf_printf(&b, "}}") == -1)
		goto fail;
	rv = ws_queue(c, "error", b.data, b.len);
 fail:
	core_buf_free(&b);
	return rv;
}

static int
ws_wants(const struct ws_client *c, const char *type)
{
	size_t i;

	if (c->subs == NULL)
		return 1;
	for (i = 0; i < c->nsubs; i++)
		if (strcmp(c->subs[i], type) == 0)
			return 1;
	return 0;
}

/*
 * Refuses a subscribe naming types the server never sends (bad, a JSON
 * array of them), saying which and what it does send.  newOrders is the
 * core's own batch of newOrder, not a type to subscribe to.
 */
static void
ws_unknown_events(struct ws_client *c, const struct sales_buf *bad,
    size_t nbad, int batch)
{
	struct sales_buf b = {0}, msg = {0};

	if (core_buf_printf(&msg, "unknown event%s %.*s; the server sends: ",
	    nbad > 1 ? "s" : "", (int)(bad->len - 2), bad->data + 1) == -1 ||
	    core_ws_event_list(&msg) == -1 ||
	    (batch && core_buf_printf(&msg, " (newOrders is how newOrder "
	    "arrives with \"batchMs\")") == -1) ||
	    core_buf_printf(&b, "{\"type\":\"error\",\"data\":{\"code\":"
	    "\"unknown_event\",\"message\":") == -1 ||
	    core_buf_json_string(&b, msg.data, msg.len) == -1 ||
	    core_buf_printf(&b, ",\"events\":") == -1 ||
	    core_buf_append(&b, bad->data, bad->len) == -1 ||
	    core_buf_append(&b, "}}", 2) == -1)
		ws_error(c, "unknown_event", "unknown event");
	else
		ws_queue(c, "error", b.data, b.len);
	core_buf_free(&b);
	core_buf_free(&msg);
}

/*
 * {"type":"subscribe","events":[T...]} (or "events" inside "data"):
 * from now on only broadcasts of those types; [] or "*" means all.
 * A type no module declared (core/ws_events.c) refuses the whole
 * subscribe, which then changes nothing.
 * "batchMs":N (10 to 10000) turns newOrder into newOrders batches sent
 * at most every N ms; a subscribe without it turns batching off.
 */
static void
ws_subscribe(struct ws_client *c, struct sales_json *j)
{
	struct sales_buf reply = {0}, name = {0}, bad = {0};
	char **subs = NULL;
	size_t nsubs = 0, nbad = 0, i;
	long long ms = 0;
	int ev, bm, d, n, t, k, all = 0, batch = 0;

	d = core_json_get(j, 0, "data");
	if ((ev = core_json_get(j, 0, "events")) == -1 && d != -1)
		ev = core_json_get(j, d, "events");
	if ((bm = core_json_get(j, 0, "batchMs")) == -1 && d != -1)
		bm = core_json_get(j, d, "batchMs");
	if (bm != -1 && (core_json_type(j, bm) != SALES_JSON_NUMBER ||
	    core_json_int(j, bm, &ms) == -1 || ms < WS_BATCH_MIN ||
	    ms > WS_BATCH_MAX)) {
		ws_error(c, "bad_message", "\"batchMs\" must be an integer "
		    "from 10 to 10000");
		return;
	}
	if (ms > 0 && c->btimer == NULL &&
	    (c->btimer = evtimer_new(core_base, ws_batchcb, c)) == NULL) {
		ws_error(c, "no_memory", "out of memory");
		return;
	}
	if (ev == -1 || core_json_type(j, ev) != SALES_JSON_ARRAY) {
		ws_error(c, "bad_message", "\"events\" must be an array of "
		    "message types");
		return;
	}
	if ((n = core_json_len(j, ev)) > WS_MAX_SUBS) {
		ws_error(c, "bad_message", "\"events\" lists more than 64 "
		    "types");
		return;
	}
	if (n > 0 && (subs = calloc(n, sizeof(*subs))) == NULL)
		goto nomem;
	if (core_buf_printf(&reply, "{\"type\":\"subscribed\",\"events\":[") ==
	    -1)
		goto nomem;
	for (i = 0; i < (size_t)n; i++) {
		t = core_json_at(j, ev, (int)i);
		name.len = 0;
		if (core_json_type(j, t) != SALES_JSON_STRING ||
		    core_json_string(j, t, &name) == -1 || name.len == 0 ||
		    name.len > WS_MAX_TYPE || memchr(name.data, '\0',
		    name.len) != NULL) {
			ws_error(c, "bad_message", "\"events\" must hold "
			    "message types: strings of 1 to 64 bytes");
			goto done;
		}
		if (strcmp(name.data, "*") == 0)
			all = 1;
		else if ((k = core_ws_event_known(name.data)) ==
		    CORE_WS_EVENT_UNKNOWN || (k != CORE_WS_EVENT_NAMED &&
		    strcmp(name.data, "newOrders") == 0)) {
			batch |= strcmp(name.data, "newOrders") == 0;
			if (core_buf_append(&bad, nbad ? "," : "[", 1) == -1 ||
			    core_buf_json_string(&bad, name.data,
			    name.len) == -1)
				goto nomem;
			nbad++;
		}
		if ((subs[nsubs] = strdup(name.data)) == NULL)
			goto nomem;
		nsubs++;
		if ((i > 0 && core_buf_append(&reply, ",", 1) == -1) ||
		    core_buf_json_string(&reply, name.data, name.len) == -1)
			goto nomem;
	}
	if (nbad > 0) {
		if (core_buf_append(&bad, "]", 1) == -1)
			goto nomem;
		ws_unknown_events(c, &bad, nbad, batch);
		goto done;
	}
	if ((ms > 0 && core_buf_printf(&reply, "],\"batchMs\":%lld}", ms) ==
	    -1) || (ms == 0 && core_buf_append(&reply, "]}", 2) == -1))
		goto nomem;
	/* Batched orders left when batching stops go before the reply. */
	c->batch_ms = (long)ms;
	ws_subs_free(c);
	if (!all && nsubs > 0) {
		c->subs = subs;
		c->nsubs = nsubs;
		subs = NULL;
		nsubs = 0;
	}
	ws_queue(c, "subscribed", reply.data, reply.len);
	goto done;
 nomem:
	ws_error(c, "no_memory", "out of memory");
 done:
	for (i = 0; i < nsubs; i++)
		free(subs[i]);
	free(subs);
	core_buf_free(&name);
	core_buf_free(&bad);
	core_buf_free(&reply);
}

/* One complete text message from a client. */
static void
ws_dispatch(struct ws_client *c, const char *text, size_t len)
{
	struct sales_json *j;
	struct sales_buf type = {0}, msg = {0};
	const char *data;
	size_t dlen, i;
	int t, d;

	if ((j = core_json_parse(text, len)) == NULL) {
		ws_error(c, "bad_json", "message is not valid JSON");
		return;
	}
	if (core_json_type(j, 0) != SALES_JSON_OBJECT ||
	    (t = core_json_get(j, 0, "type")) == -1 ||
	    core_json_type(j, t) != SALES_JSON_STRING ||
	    core_json_string(j, t, &type) == -1) {
		ws_error(c, "bad_message", "message must be a JSON object "
		    "with a string \"type\"");
		goto done;
	}
	if (type.len == 0 || type.len > WS_MAX_TYPE ||
	    memchr(type.data, '\0', type.len) != NULL) {
		ws_error(c, "unknown_type", "message \"type\" must be 1 to 64 "
		    "bytes");
		goto done;
	}
	if (strcmp(type.data, "subscribe") == 0) {
		ws_subscribe(c, j);
		goto done;
	}
	for (i = 0; i < nhandlers; i++)
		if (strcmp(handlers[i].type, type.data) == 0)
			break;
	if (i == nhandlers) {
		if (core_buf_printf(&msg, "unknown message type \"%s\"",
		    type.data) == -1)
			ws_error(c, "unknown_type", "unknown message type");
		else
			ws_error(c, "unknown_type", msg.data);
		goto done;
	}
	if ((d = core_json_get(j, 0, "data")) == -1) {
		data = "null";
		dlen = 4;
	} else {
		data = core_json_raw(j, d, &dlen);
		/* json_raw leaves a string's quotes out; the text has them. */
		if (core_json_type(j, d) == SALES_JSON_STRING) {
			data--;
			dlen += 2;
		}
	}
	handlers[i].fn(c->id, data, dlen, handlers[i].arg);
 done:
	core_buf_free(&type);
	core_buf_free(&msg);
	core_json_free(j);
}

/*
 * wslay keeps each fragment in its own allocation: bound how many one
 * message may have, or tiny frames would cost far more memory than
 * ws_max_message says.
 */
static void
ws_on_frame(wslay_event_context_ptr ctx,
    const struct wslay_event_on_frame_recv_start_arg *f, void *arg)
{
	struct ws_client *c = arg;

	(void)ctx;
	/* Client frames are masked: wslay refuses the others. */
	c->framed += 2 + 4 + f->payload_length + (f->payload_length < 126 ?
	    0 : f->payload_length < 65536 ? 2 : 8);
	if (f->opcode < WSLAY_CONNECTION_CLOSE)
		c->partial = !f->fin;
	if (c->state != WS_OPEN)
		return;
	/* wslay would echo it as a close without a code. */
	if (f->opcode == WSLAY_CONNECTION_CLOSE && f->payload_length == 1) {
		ws_fail(c, WSLAY_CODE_PROTOCOL_ERROR, "close payload of one "
		    "byte");
		return;
	}
	if (f->opcode >= WSLAY_CONNECTION_CLOSE)
		return;
	if (f->opcode != WSLAY_CONTINUATION_FRAME)
		c->frags = 0;
	if (++c->frags > WS_MAX_FRAGS)
		ws_fail(c, WSLAY_CODE_MESSAGE_TOO_BIG,
		    "message in too many fragments");
}

static void
ws_on_msg(wslay_event_context_ptr ctx,
    const struct wslay_event_on_msg_recv_arg *m, void *arg)
{
	struct ws_client *c = arg;

	(void)ctx;
	if (c->state != WS_OPEN)
		return;
	switch (m->opcode) {
	case WSLAY_TEXT_FRAME:
		if (!core_utf8_valid(m->msg, m->msg_length)) {
			ws_fail(c, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA,
			    "text is not valid UTF-8");
			return;
		}
		ws_dispatch(c, (const char *)m->msg, m->msg_length);
		break;
	case WSLAY_BINARY_FRAME:
		ws_fail(c, WSLAY_CODE_UNSUPPORTED_DATA,
		    "binary messages are not accepted");
		break;
	case WSLAY_CONNECTION_CLOSE:
		/*
		 * wslay has queued the echo of the peer's close: nothing
		 * may be queued behind it.
		 */
		ws_closing(c);
		break;
	default:
		/* Pings are answered by wslay; pongs only show liveness. */
		break;
	}
}

static int
ws_ctx_new(struct ws_client *c)
{
	static const struct wslay_event_callbacks cbs = {
		.recv_callback = ws_recv_cb,
		.send_callback = ws_send_cb,
		.on_frame_recv_start_callback = ws_on_frame,
		.on_msg_recv_callback = ws_on_msg
	};

	if (wslay_event_context_server_init(&c->ctx, &cbs, c) != 0) {
		c->ctx = NULL;
		return -1;
	}
	wslay_event_config_set_max_recv_msg_length(c->ctx, config.max_message);
	c->fed = c->framed = 0;
	c->partial = 0;
	return 0;
}

/*
 * A wslay context is 9 KB, most of it a 4 KB input buffer: an idle
 * client would cost far more than all else it holds.  So a client has
 * one only while wslay holds state for it: it is freed once every byte
 * handed over was part of whole frames, no fragmented message is open,
 * wslay has nothing to send and neither side has closed; the next input
 * gets a fresh one, which is in the very same state.
 */
static void
ws_ctx_idle(struct ws_client *c)
{
	if (c->ctx == NULL || c->state != WS_OPEN || c->closed ||
	    c->fed != c->framed || c->partial ||
	    wslay_event_want_write(c->ctx) ||
	    !wslay_event_get_read_enabled(c->ctx) ||
	    !wslay_event_get_write_enabled(c->ctx) ||
	    wslay_event_get_close_received(c->ctx) ||
	    wslay_event_get_close_sent(c->ctx))
		return;
	wslay_event_context_free(c->ctx);
	c->ctx = NULL;
}

/* Feeds the input to wslay.  -1 when c was freed. */
static int
ws_read(struct ws_client *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	int r;

	c->rx = 1;
	c->missed = 0;
	if (c->state == WS_LINGER || c->id == 0 || c->closed ||
	    (c->ctx != NULL && !wslay_event_get_read_enabled(c->ctx))) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return ws_after(c);
	}
	if (c->ctx == NULL && ws_ctx_new(c) == -1) {
		ws_free(c);
		return -1;
	}
	c->in_recv = 1;
	r = wslay_event_recv(c->ctx);
	/*
	 * A frame wslay could not parse (a control frame too long or
	 * fragmented, a length with the high bit set...): it queued a
	 * close without a code, which ws_fail() replaces by 1002.
	 */
	if (r != 0 && !c->closed) {
		wslay_event_shutdown_write(c->ctx);
		ws_fail(c, r == WSLAY_ERR_NOMEM ?
		    WSLAY_CODE_INTERNAL_SERVER_ERROR :
		    WSLAY_CODE_PROTOCOL_ERROR, r == WSLAY_ERR_NOMEM ?
		    "out of memory" : "protocol error");
	}
	c->in_recv = 0;
	if (r != 0)
		wslay_event_shutdown_read(c->ctx);
	/* Whatever wslay will not read any more is dropped. */
	if (!wslay_event_get_read_enabled(c->ctx))
		evbuffer_drain(in, evbuffer_get_length(in));
	if (ws_after(c) == -1)
		return -1;
	ws_ctx_idle(c);
	return 0;
}

static void
ws_readcb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	ws_read(arg);
}

static void
ws_writecb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	ws_after(arg);
}

static void
ws_wcb(evutil_socket_t fd, short what, void *arg)
{
	struct ws_client *c = arg;

	(void)fd;
	(void)what;
	c->wblocked = 0;
	ws_after(c);
}

static void
ws_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct ws_client *c = arg;

	/*
	 * A peer that shut its sending side may still read our close:
	 * keep flushing until the grace timer ends it.
	 */
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    c->state == WS_CLOSING) {
		bufferevent_disable(bev, EV_READ);
		return;
	}
	ws_free(c);
}

static void
ws_timercb(evutil_socket_t fd, short what, void *arg)
{
	struct ws_client *c = arg;
	struct ws_frame *f;

	(void)fd;
	(void)what;
	if (c->kick) {
		/* Frames that came with the request head. */
		c->kick = 0;
		if (ws_read(c) == 0 && c->state == WS_OPEN &&
		    config.idle_ping_ms > 0)
			ws_timer_arm(c, config.idle_ping_ms);
		return;
	}
	if (c->state != WS_OPEN) {
		if (c->state == WS_CLOSING && ws_kernel_drained(c) &&
		    ws_may_linger(c)) {
			ws_timer_arm(c, WS_GRACE_MS);
			return;
		}
		/* The grace period is over. */
		ws_free(c);
		return;
	}
	if (c->rx) {
		c->rx = 0;
		c->missed = 0;
	} else if (c->missed >= WS_MAX_MISSED) {
		core_log("ws", SALES_LOG_INFO, "client %llu answered no ping "
		    "in %ld ms; dropping it", (unsigned long long)c->id,
		    config.idle_ping_ms * WS_MAX_MISSED);
		ws_free(c);
		return;
	} else {
		/* Ours, not wslay's: an idle client has no context. */
		c->missed++;
		if ((f = ws_frame_new(WSLAY_PING, "salesd", 6)) != NULL &&
		    ws_push(c, f) == -1)
			free(f);
	}
	if (ws_after(c) == 0 && c->state == WS_OPEN)
		ws_timer_arm(c, config.idle_ping_ms);
}

/* Refuses a handshake with a bad key: 400, then the connection ends. */
static int
ws_refuse(struct bufferevent *bev, struct ws_client *c)
{
	static const char body[] = "{\"error\":{\"code\":\"bad_request\","
	    "\"message\":\"invalid \\\"Sec-WebSocket-Key\\\": not the base64 "
	    "of 16 bytes\",\"field\":\"Sec-WebSocket-Key\"}}";

	c->state = WS_CLOSING;
	TAILQ_INSERT_TAIL(&clients, c, entry);
	evbuffer_add_printf(bufferevent_get_output(bev),
	    "HTTP/1.1 400 Bad Request\r\n"
	    "Content-Type: application/json\r\n"
	    "Content-Length: %zu\r\n"
	    "Connection: close\r\n\r\n%s", sizeof(body) - 1, body);
	ws_timer_arm(c, WS_GRACE_MS);
	return -1;
}

int
core_ws_accept(struct bufferevent *bev, const char *key)
{
	struct ws_client *c = NULL;
	struct ws_frame *f;
	char head[160];
	char accept[29];
	int n;

	if (shut)
		goto fail;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto fail;
	c->bev = bev;
	/* Cached: bufferevent_getfd() takes the bufferevent's lock. */
	c->wfd = bufferevent_getfd(bev);
	STAILQ_INIT(&c->outq);
	if ((c->timer = evtimer_new(core_base, ws_timercb, c)) == NULL)
		goto fail;
	bufferevent_setcb(bev, ws_readcb, ws_writecb, ws_eventcb, c);
	bufferevent_set_timeouts(bev, NULL, NULL);
	bufferevent_setwatermark(bev, EV_READ | EV_WRITE, 0, 0);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	if (core_ws_accept_key(key, accept) == -1)
		return ws_refuse(bev, c);
	if ((c->wev = event_new(core_base, c->wfd, EV_WRITE,
	    ws_wcb, c)) == NULL)
		goto fail;
	c->id = next_id++;
	if (ws_hash_add(c) == -1)
		goto fail;
	n = snprintf(head, sizeof(head), "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: websocket\r\n"
	    "Connection: Upgrade\r\n"
	    "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
	if ((f = ws_frame_raw(head, (size_t)n)) == NULL) {
		ws_hash_del(c);
		goto fail;
	}
	if (ws_push(c, f) == -1) {
		free(f);
		ws_hash_del(c);
		goto fail;
	}
	core_outmem_add(&c->om, ws_cut);
	core_outmem_set(&c->om, c->mem);
	TAILQ_INSERT_TAIL(&clients, c, entry);
	nopen++;
	if (config.idle_ping_ms > 0)
		ws_timer_arm(c, config.idle_ping_ms);
	core_log("ws", SALES_LOG_DEBUG, "client %llu connected",
	    (unsigned long long)c->id);
	/*
	 * Frames that came with the request head: read them from the
	 * loop, not inside the caller's callback.
	 */
	if (evbuffer_get_length(bufferevent_get_input(bev)) > 0) {
		c->kick = 1;
		event_active(c->timer, EV_TIMEOUT, 1);
	}
	return 0;
 fail:
	if (c != NULL) {
		if (c->timer != NULL)
			event_free(c->timer);
		if (c->wev != NULL)
			event_free(c->wev);
		if (c->ctx != NULL)
			wslay_event_context_free(c->ctx);
		free(c);
	}
	bufferevent_free(bev);
	return -1;
}

int
core_ws_on_message(const char *owner, const char *type,
    sales_ws_handler handler, void *arg)
{
	struct ws_handler *h;
	size_t i;

	if (type == NULL || handler == NULL || *type == '\0' ||
	    strlen(type) > WS_MAX_TYPE) {
		core_log("ws", SALES_LOG_ERROR, "module \"%s\": invalid "
		    "WebSocket message type", owner ? owner : "?");
		return -1;
	}
	if (strcmp(type, "subscribe") == 0 || strcmp(type, "error") == 0) {
		core_log("ws", SALES_LOG_ERROR, "module \"%s\": WebSocket "
		    "message type \"%s\" is the core's", owner ? owner : "?",
		    type);
		return -1;
	}
	for (i = 0; i < nhandlers; i++) {
		if (strcmp(handlers[i].type, type) == 0) {
			core_log("ws", SALES_LOG_ERROR, "module \"%s\": "
			    "WebSocket message type \"%s\" already registered "
			    "by module \"%s\"", owner ? owner : "?", type,
			    handlers[i].owner);
			return -1;
		}
	}
	if ((h = reallocarray(handlers, nhandlers + 1, sizeof(*h))) == NULL)
		return -1;
	handlers = h;
	h = &handlers[nhandlers++];
	memset(h, 0, sizeof(*h));
	strncpy(h->owner, owner ? owner : "?", sizeof(h->owner) - 1);
	memcpy(h->type, type, strlen(type) + 1);
	h->fn = handler;
	h->arg = arg;
	return 0;
}

int
core_ws_send(uint64_t client, const char *type, const char *data,
    size_t len)
{
	struct ws_client *c;
	struct sales_buf b = {0};
	int rv = -1;

	if (type == NULL || (c = ws_find(client)) == NULL ||
	    c->state != WS_OPEN)
		return -1;
	if (ws_envelope(&b, type, data, len) == 0)
		rv = ws_queue(c, type, b.data, b.len);
	core_buf_free(&b);
	return rv;
}

void
core_ws_broadcast(const char *type, const char *data, size_t len)
{
	struct sales_buf b = {0};
	struct ws_client *c;
	struct ws_frame *f = NULL;
	int batch;

	if (type == NULL || nopen == 0)
		return;
	/* One frame (server frames are not masked) in every queue. */
	if (ws_envelope(&b, type, data, len) == -1 ||
	    (f = ws_frame_new(WSLAY_TEXT_FRAME, b.data, b.len)) == NULL)
		goto fail;
	f->refs = 1;
	f->fanout = 0;
	f->mtype = core_metrics_ws_type(type);
	TAILQ_FOREACH(c, &clients, entry)
		if (c->state == WS_OPEN && ws_wants(c, type))
			f->fanout++;
	if (f->fanout == 0)
		f->fanout = 1;
	batch = strcmp(type, "newOrder") == 0;
	TAILQ_FOREACH(c, &clients, entry) {
		if (c->state != WS_OPEN || !ws_wants(c, type))
			continue;
		if (batch && c->batch_ms > 0)
			ws_batch_add(c, data && len ? data : "null",
			    data && len ? len : 4);
		else
			ws_queue_frame(c, f);
	}
	ws_frame_unref(f);
 fail:
	core_buf_free(&b);
}

size_t
core_ws_clients(void)
{
	return nopen;
}

uint64_t
core_ws_slow_cuts(void)
{
	return slow_cuts;
}

void
core_ws_shutdown(void)
{
	static const char reason[] = "server shutting down";
	struct ws_client *c;
	struct evbuffer *out;
	int fd;

	shut = 1;
	while ((c = TAILQ_FIRST(&clients)) != NULL) {
		if (c->state == WS_OPEN && c->id != 0)
			ws_fail(c, WSLAY_CODE_GOING_AWAY, reason);
		/*
		 * One try, without blocking: the close frame is small.
		 * A refused handshake's answer is in the bufferevent,
		 * which keeps its output's front frozen.
		 */
		if (c->state != WS_LINGER)
			ws_flush(c);
		if (c->state != WS_LINGER &&
		    (fd = bufferevent_getfd(c->bev)) >= 0) {
			out = bufferevent_get_output(c->bev);
			evbuffer_unfreeze(out, 1);
			evbuffer_write(out, fd);
		}
		ws_free(c);
	}
	if (flusher != NULL)
		event_free(flusher);
	flusher = NULL;
	free(hash);
	hash = NULL;
	hash_size = nhashed = 0;
	free(handlers);
	handlers = NULL;
	nhandlers = 0;
}

void
core_ws_forget(const char *owner)
{
	size_t i, k;

	for (i = k = 0; i < nhandlers; i++)
		if (strcmp(handlers[i].owner, owner) != 0)
			handlers[k++] = handlers[i];
	nhandlers = k;
}
