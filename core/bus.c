/*
 * bus.c - the in-process event bus.
 *
 * publish() copies the payload onto a FIFO and arms one event; the loop
 * then delivers each queued message to the topic's subscribers in the
 * order they subscribed.  A handler that publishes appends to the same
 * FIFO, so delivery is never re-entrant and always in publish order.
 * Each pass delivers only what was queued when it began, so a chain of
 * events cannot starve the network.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "bus.h"
#include "core.h"
#include "log.h"

struct bus_sub {
	char			*topic;
	char			*owner;
	sales_bus_handler	 handler;
	void			*arg;
};

struct bus_msg {
	struct bus_msg	*next;
	size_t		 len;
	char		*topic;
	char		 payload[];	/* aligned: flexible member of a struct */
};

static struct bus_sub	*subs;
static size_t		 nsubs;
static struct bus_msg	*head, **tailp = &head;
static struct event	*deliver_ev;
static int		 scheduled;

static void	bus_deliver(evutil_socket_t, short, void *);

int
core_bus_init(void)
{
	if ((deliver_ev = event_new(core_base, -1, 0, bus_deliver, NULL)) == NULL)
		return -1;
	return 0;
}

int
core_bus_subscribe(const char *owner, const char *topic,
    sales_bus_handler handler, void *arg)
{
	struct bus_sub *p;

	if (topic == NULL || *topic == '\0' || handler == NULL) {
		core_log(owner, SALES_LOG_ERROR, "bus subscription needs a "
		    "topic and a handler");
		return -1;
	}
	if ((p = realloc(subs, (nsubs + 1) * sizeof(*p))) == NULL)
		return -1;
	subs = p;
	p = &subs[nsubs];
	p->topic = strdup(topic);
	p->owner = strdup(owner);
	if (p->topic == NULL || p->owner == NULL) {
		free(p->topic);
		free(p->owner);
		return -1;
	}
	p->handler = handler;
	p->arg = arg;
	nsubs++;
	return 0;
}

void
core_bus_publish(const char *topic, const void *payload, size_t len)
{
	struct bus_msg *m;
	size_t i;

	/* Nobody listens: nothing to copy. */
	for (i = 0; i < nsubs; i++)
		if (strcmp(subs[i].topic, topic) == 0)
			break;
	if (i == nsubs)
		return;
	if ((m = malloc(sizeof(*m) + len)) == NULL ||
	    (m->topic = strdup(topic)) == NULL) {
		free(m);
		log_error("bus: out of memory, \"%s\" event dropped", topic);
		return;
	}
	m->next = NULL;
	m->len = len;
	if (len)
		memcpy(m->payload, payload, len);
	*tailp = m;
	tailp = &m->next;
	if (deliver_ev && !scheduled) {
		scheduled = 1;
		event_active(deliver_ev, 0, 0);
	}
}

static void
bus_deliver_one(struct bus_msg *m)
{
	size_t i;

	for (i = 0; i < nsubs; i++)
		if (strcmp(subs[i].topic, m->topic) == 0)
			subs[i].handler(m->topic, m->payload, m->len,
			    subs[i].arg);
}

static void
bus_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct bus_msg *batch, *m;

	(void)fd;
	(void)what;
	(void)arg;
	scheduled = 0;
	batch = head;
	head = NULL;
	tailp = &head;
	while ((m = batch) != NULL) {
		batch = m->next;
		bus_deliver_one(m);
		free(m->topic);
		free(m);
	}
}

void
core_bus_drain(void)
{
	while (head)
		bus_deliver(-1, 0, NULL);
}

void
core_bus_free(void)
{
	struct bus_msg *m;
	size_t i;

	while ((m = head) != NULL) {
		head = m->next;
		free(m->topic);
		free(m);
	}
	tailp = &head;
	for (i = 0; i < nsubs; i++) {
		free(subs[i].topic);
		free(subs[i].owner);
	}
	free(subs);
	subs = NULL;
	nsubs = 0;
	if (deliver_ev)
		event_free(deliver_ev);
	deliver_ev = NULL;
}

void
core_bus_forget(const char *owner)
{
	size_t i, k;

	for (i = k = 0; i < nsubs; i++) {
		if (strcmp(subs[i].owner, owner) == 0) {
			free(subs[i].topic);
			free(subs[i].owner);
		} else
			subs[k++] = subs[i];
	}
	nsubs = k;
}
