/*
 * sales/ws.h - what a module sees of WebSocket clients.
 *
 * Only the core touches WebSocket connections.  Messages on the wire are
 * JSON text frames {"type": T, "data": D}; a module hands the core T and
 * the JSON text of D, and the core frames, queues and sends them.
 *
 * Clients are named by a 64-bit id that is never reused during a run, so
 * a module may keep one and send to it later: sending to a client that is
 * gone is harmless.
 *
 * "subscribe" and "error" are the core's: a client that subscribed
 * receives only the types it asked for, and may name only types some
 * module declared (core->ws_event).  Every other client message type is
 * routed to the module that registered it with core->ws_on_message();
 * unknown types are answered with an "error" message by the core.
 */
#ifndef SALES_WS_H
#define SALES_WS_H

#include <sales/types.h>

/*
 * Called on the loop for a client message whose "type" the module
 * registered.  data is the JSON text of the message's "data" member
 * ("null" when absent), valid for the call only.
 */
typedef void (*sales_ws_handler)(uint64_t client, const char *data,
    size_t len, void *arg);

#endif /* SALES_WS_H */
