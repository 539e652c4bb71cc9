/*
 * kit_bus.c - the fake bus and WebSocket side.
 *
 * bus_publish copies the payload into the record the test reads and
 * queues one delivery per event: subscribers get it when the loop runs,
 * in publish order, never re-entrantly, as from core/bus.c.  Frames
 * sent to WebSocket clients are only recorded; client messages come
 * from the test.  Declared message types go to the core's own registry
 * (core/ws_events.c).
 */
#include <stdlib.h>
#include <string.h>

#include "kit.h"
#include "log.h"
#include "ws_events.h"

/* A bus subscription (topic) or a WebSocket message handler (type). */
struct kit_handler {
	char			*name;
	sales_bus_handler	 bus;
	sales_ws_handler	 ws;
	void			*arg;
	struct sales_module	*owner;
};

struct kit_delivery {
	struct kit_job		 job;
	struct sales_kit_event	*ev;
};

/* The event's copy follows it, aligned for any payload struct. */
struct kit_event {
	struct sales_kit_event	 ev;
	max_align_t		 payload[];
};

static struct kit_handler *
kit_handler_add(struct kit_vec *v, const char *name, struct sales_module *m,
    void *arg)
{
	struct kit_handler *h;

	if ((h = calloc(1, sizeof(*h))) == NULL ||
	    (h->name = kit_strdup(name)) == NULL || kit_push(v, h) == -1) {
		if (h != NULL)
			free(h->name);
		free(h);
		return NULL;
	}
	h->owner = m;
	h->arg = arg;
	return h;
}

/* Drops the handlers of m, or all of them when m is NULL. */
static void
kit_handlers_drop(struct kit_vec *v, struct sales_module *m)
{
	struct kit_handler *h;
	size_t i, k;

	for (i = k = 0; i < v->n; i++) {
		h = v->v[i];
		if (m == NULL || h->owner == m) {
			free(h->name);
			free(h);
		} else
			v->v[k++] = h;
	}
	v->n = k;
	if (m == NULL) {
		free(v->v);
		memset(v, 0, sizeof(*v));
	}
}

int
kit_bus_subscribe(struct sales_module *self, const char *topic,
    sales_bus_handler handler, void *arg)
{
	struct kit_handler *h;

	if (!kit_in_init(self, "bus_subscribe"))
		return -1;
	if (topic == NULL || *topic == '\0' || handler == NULL) {
		core_log(self->name, SALES_LOG_ERROR, "bus_subscribe needs a "
		    "topic and a handler");
		return -1;
	}
	if ((h = kit_handler_add(&kit_cur->subs, topic, self, arg)) == NULL)
		return -1;
	h->bus = handler;
	return 0;
}

static void
kit_deliver(struct kit_job *job)
{
	struct kit_delivery *d = (struct kit_delivery *)job;
	struct sales_module *prev;
	struct kit_handler *h;
	size_t i;

	/* Subscribers are fixed after init: the vector cannot move here. */
	for (i = 0; i < kit_cur->subs.n; i++) {
		h = kit_cur->subs.v[i];
		if (strcmp(h->name, d->ev->topic) != 0)
			continue;
		prev = kit_enter(h->owner);
		h->bus(d->ev->topic, d->ev->payload, d->ev->len, h->arg);
		kit_leave(prev);
	}
}

static void
kit_delivery_free(struct kit_job *job)
{
	free(job);
}

void
kit_bus_publish(const char *topic, const void *payload, size_t len)
{
	struct kit_event *e;
	struct kit_delivery *d;
	char *t;

	if (topic == NULL || (payload == NULL && len > 0))
		return;
	if ((e = calloc(1, sizeof(*e) + len + 1)) == NULL ||
	    (t = kit_strdup(topic)) == NULL) {
		free(e);
		core_log("kit", SALES_LOG_ERROR, "out of memory publishing "
		    "\"%s\"", topic);
		return;
	}
	if (len > 0)
		memcpy(e->payload, payload, len);
	e->ev.topic = t;
	e->ev.payload = e->payload;
	e->ev.len = len;
	if (kit_push(&kit_cur->events, e) == -1) {
		free(t);
		free(e);
		e = NULL;
	}
	if (e == NULL || (d = calloc(1, sizeof(*d))) == NULL) {
		core_log("kit", SALES_LOG_ERROR, "out of memory publishing "
		    "\"%s\"", topic);
		return;		/* e, if pushed, is freed with the kit */
	}
	d->ev = &e->ev;
	d->job.run = kit_deliver;
	d->job.free = kit_delivery_free;
	d->job.owner = kit_who();
	kit_queue(&d->job);
}

void
sales_kit_publish(struct sales_kit *kit, const char *topic,
    const void *payload, size_t len)
{
	(void)kit;
	kit_bus_publish(topic, payload, len);
}

static int
kit_topic_is(const void *elem, const void *topic)
{
	const struct sales_kit_event *ev = elem;

	return topic == NULL || strcmp(ev->topic, topic) == 0;
}

size_t
sales_kit_events(struct sales_kit *kit, const char *topic)
{
	return kit_count(&kit->events, kit_topic_is, topic);
}

const struct sales_kit_event *
sales_kit_event(struct sales_kit *kit, const char *topic, long i)
{
	return kit_pick(&kit->events, i, kit_topic_is, topic);
}

/* A failed init's subscriptions and WebSocket handlers go. */
void
kit_bus_forget(struct sales_module *m)
{
	kit_handlers_drop(&kit_cur->subs, m);
	kit_handlers_drop(&kit_cur->ws_handlers, m);
}

int
kit_ws_on_message(struct sales_module *self, const char *type,
    sales_ws_handler handler, void *arg)
{
	struct kit_handler *h;

	if (!kit_in_init(self, "ws_on_message"))
		return -1;
	if (type == NULL || *type == '\0' || handler == NULL ||
	    strcmp(type, "subscribe") == 0) {
		core_log(self->name, SALES_LOG_ERROR, "ws_on_message needs a "
		    "type other than \"subscribe\" and a handler");
		return -1;
	}
	if ((h = kit_handler_add(&kit_cur->ws_handlers, type, self,
	    arg)) == NULL)
		return -1;
	h->ws = handler;
	return 0;
}

int
kit_ws_event(struct sales_module *self, const char *type)
{
	if (!kit_in_init(self, "ws_event"))
		return -1;
	return core_ws_event_declare(self->name, type);
}

uint64_t
sales_kit_ws_connect(struct sales_kit *kit)
{
	return ++kit->clients;
}

size_t
kit_ws_clients(void)
{
	return (size_t)kit_cur->clients;
}

int
sales_kit_ws_message(struct sales_kit *kit, uint64_t client,
    const char *type, const char *data)
{
	struct kit_handler *h;
	struct sales_module *prev;
	size_t i;

	if (data == NULL)
		data = "null";
	for (i = 0; i < kit->ws_handlers.n; i++) {
		h = kit->ws_handlers.v[i];
		if (strcmp(h->name, type) != 0)
			continue;
		prev = kit_enter(h->owner);
		h->ws(client, data, strlen(data), h->arg);
		kit_leave(prev);
		return 0;
	}
	return -1;
}

static void
kit_frame(uint64_t client, const char *type, const char *data, size_t len)
{
	struct sales_kit_frame *f;

	/* The server sends it, but no client can subscribe to it. */
	if (core_ws_event_known(type) == CORE_WS_EVENT_UNKNOWN)
		core_log("kit", SALES_LOG_WARN, "module \"%s\" sends \"%s\" "
		    "without declaring it (ws_event in init): a client that "
		    "subscribes cannot ask for it", kit_who_name(), type);
	if ((f = calloc(1, sizeof(*f))) == NULL ||
	    (f->type = kit_strdup(type)) == NULL ||
	    (f->data = kit_memdup(data, len)) == NULL ||
	    kit_push(&kit_cur->frames, f) == -1) {
		if (f != NULL) {
			free((char *)f->type);
			free((char *)f->data);
		}
		free(f);
		core_log("kit", SALES_LOG_ERROR, "out of memory for a frame");
		return;
	}
	f->client = client;
	f->len = len;
}

int
kit_ws_send(uint64_t client, const char *type, const char *data, size_t len)
{
	if (client == 0 || client > kit_cur->clients || type == NULL ||
	    (data == NULL && len > 0))
		return -1;
	kit_frame(client, type, data ? data : "", len);
	return 0;
}

void
kit_ws_broadcast(const char *type, const char *data, size_t len)
{
	if (type == NULL || (data == NULL && len > 0))
		return;
	kit_frame(0, type, data ? data : "", len);
}

static int
kit_type_is(const void *elem, const void *type)
{
	const struct sales_kit_frame *f = elem;

	return type == NULL || strcmp(f->type, type) == 0;
}

size_t
sales_kit_frames(struct sales_kit *kit, const char *type)
{
	return kit_count(&kit->frames, kit_type_is, type);
}

const struct sales_kit_frame *
sales_kit_frame(struct sales_kit *kit, const char *type, long i)
{
	return kit_pick(&kit->frames, i, kit_type_is, type);
}

void
kit_bus_free(void)
{
	struct sales_kit_frame *f;
	struct kit_event *e;
	size_t i;

	kit_handlers_drop(&kit_cur->subs, NULL);
	kit_handlers_drop(&kit_cur->ws_handlers, NULL);
	for (i = 0; i < kit_cur->events.n; i++) {
		e = kit_cur->events.v[i];
		free((char *)e->ev.topic);
		free(e);
	}
	for (i = 0; i < kit_cur->frames.n; i++) {
		f = kit_cur->frames.v[i];
		free((char *)f->type);
		free((char *)f->data);
		free(f);
	}
	free(kit_cur->events.v);
	free(kit_cur->frames.v);
}
