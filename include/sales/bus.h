/*
 * sales/bus.h - the in-process event bus.
 *
 * Topics are strings named noun.past-verb ("order.created").  Payloads
 * are flat structs from <sales/events.h> (no pointers inside), copied by
 * the core at publish time, so the publisher may reuse its memory at
 * once.  Delivery happens on the loop, in publish order, after the
 * publishing call returns: an event published inside a handler is queued,
 * never delivered re-entrantly.  Handlers must not block.
 */
#ifndef SALES_BUS_H
#define SALES_BUS_H

#include <sales/types.h>

/* payload is valid for the call only. */
typedef void (*sales_bus_handler)(const char *topic, const void *payload,
    size_t len, void *arg);

#endif /* SALES_BUS_H */
