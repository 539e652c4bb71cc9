/*
 * ws_events.c - the message types the server may send to WebSocket
 * clients.  Modules declare the types they send at init
 * (core->ws_event); the core's own replies, "subscribed" and "error",
 * are always known.  core/ws.c refuses a "subscribe" naming anything
 * else, so that a typo is told, not silently sent nothing.
 *
 * A module built against an ABI older than 1.4 could not declare: the
 * loader declares "*" for it, and any name passes while it is loaded.
 * A few dozen entries at most, scanned linearly.  Loop thread only.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "ws_events.h"

#define EVENT_MAX_TYPE	64
#define EVENT_MAX_OWNER	64

struct ws_event {
	char	owner[EVENT_MAX_OWNER];
	char	type[EVENT_MAX_TYPE + 1];
};

static struct ws_event	*events;
static size_t		 nevents;

int
core_ws_event_declare(const char *owner, const char *type)
{
	struct ws_event *e;
	size_t i, n;

	if (owner == NULL)
		owner = "?";
	if (type == NULL || (n = strlen(type)) == 0 || n > EVENT_MAX_TYPE) {
		core_log("ws", SALES_LOG_ERROR, "module \"%s\": a WebSocket "
		    "event type must be 1 to %d bytes", owner, EVENT_MAX_TYPE);
		return -1;
	}
	for (i = 0; i < nevents; i++)
		if (strcmp(events[i].owner, owner) == 0 &&
		    strcmp(events[i].type, type) == 0)
			return 0;
	if ((e = reallocarray(events, nevents + 1, sizeof(*e))) == NULL) {
		core_log("ws", SALES_LOG_ERROR, "module \"%s\": out of memory",
		    owner);
		return -1;
	}
	events = e;
	e = &events[nevents++];
	memset(e, 0, sizeof(*e));
	strncpy(e->owner, owner, sizeof(e->owner) - 1);
	memcpy(e->type, type, n + 1);
	return 0;
}

int
core_ws_event_known(const char *type)
{
	size_t i;
	int any = 0;

	if (strcmp(type, "subscribed") == 0 || strcmp(type, "error") == 0)
		return CORE_WS_EVENT_NAMED;
	for (i = 0; i < nevents; i++) {
		if (strcmp(events[i].type, type) == 0)
			return CORE_WS_EVENT_NAMED;
		if (strcmp(events[i].type, "*") == 0)
			any = 1;
	}
	return any ? CORE_WS_EVENT_ANY : CORE_WS_EVENT_UNKNOWN;
}

int
core_ws_event_list(struct sales_buf *b)
{
	size_t i, j;
	int first = 1;

	for (i = 0; i < nevents; i++) {
		if (strcmp(events[i].type, "*") == 0)
			continue;
		/* Two modules may send one type: name it once. */
		for (j = 0; j < i; j++)
			if (strcmp(events[j].type, events[i].type) == 0)
				break;
		if (j < i)
			continue;
		if ((!first && core_buf_append(b, ", ", 2) == -1) ||
		    core_buf_append(b, events[i].type,
		    strlen(events[i].type)) == -1)
			return -1;
		first = 0;
	}
	return 0;
}

void
core_ws_event_forget(const char *owner)
{
	size_t i, k;

	for (i = k = 0; i < nevents; i++)
		if (strcmp(events[i].owner, owner) != 0)
			events[k++] = events[i];
	nevents = k;
	/* The last module gone: nothing is left to free at exit. */
	if (nevents == 0) {
		free(events);
		events = NULL;
	}
}
