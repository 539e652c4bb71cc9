/*
 * sales/bus.h - the in-process event bus.
 *
 * Topics are strings named noun.past-verb ("order.created"), plus
 * ".v2", ".v3", ... for a later payload version.  Payloads
 * are flat structs from <sales/events.h> (no pointers inside), copied by
 * the core at publish time, so the publisher may reuse its memory at
 * once.  Delivery happens on the loop, in publish order, after the
 * publishing call returns: an event published inside a handler is queued,
 * never delivered re-entrantly.  Handlers must not block.  A topic
 * carries one payload struct for good (<sales/events.h> says how
 * versions are named), so a handler checks only len >= sizeof.
 *
 * bus_subscribe: init only; 0, or -1 when called outside init, without
 * a topic or handler (each logged) or out of memory.  It lasts until
 * shutdown, or goes with everything else when init fails.
 * bus_publish: any time on the loop; copies len bytes of payload, or
 * drops the event (logged) when memory runs out; a topic nobody
 * subscribed to is dropped before anything is copied.
 */
#ifndef SALES_BUS_H
#define SALES_BUS_H

#include <sales/types.h>

/* payload is valid for the call only. */
typedef void (*sales_bus_handler)(const char *topic, const void *payload,
    size_t len, void *arg);

#endif /* SALES_BUS_H */
