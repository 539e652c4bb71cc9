/*
 * ws_events.h - the message types the server may send to WebSocket
 * clients, as modules declare them: what a "subscribe" may name.
 */
#ifndef CORE_WS_EVENTS_H
#define CORE_WS_EVENTS_H

#include <sales/types.h>

/* Values of core_ws_event_known(). */
#define CORE_WS_EVENT_UNKNOWN	0
#define CORE_WS_EVENT_ANY	1	/* only as a module sends any type */
#define CORE_WS_EVENT_NAMED	2	/* declared by name, or the core's */

/*
 * owner may send type: a name of 1 to 64 bytes, or "*" for a module
 * that relays types it cannot name in advance.  -1, logged, on a bad
 * name or no memory.
 */
int	core_ws_event_declare(const char *owner, const char *type);
int	core_ws_event_known(const char *type);
/* Appends the declared names, comma-separated, for an error message. */
int	core_ws_event_list(struct sales_buf *b);
/* Drops every type of owner: undoes a module's init. */
void	core_ws_event_forget(const char *owner);

#endif /* CORE_WS_EVENTS_H */
