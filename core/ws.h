/*
 * ws.h - WebSocket connections (RFC 6455 via libwslay), taken over from
 * core/http_conn.c after a valid upgrade request.
 */
#ifndef CORE_WS_H
#define CORE_WS_H

#include <stddef.h>
#include <stdint.h>

#include <event2/bufferevent.h>

#include <sales/ws.h>

struct core_ws_config {
	size_t	max_message;	/* ws_max_message: 1009 past it */
	size_t	max_buffered;	/* ws_max_buffered: 1008 past it */
	long	idle_ping_ms;	/* ping an idle client this often; 0: never */
};

void	core_ws_configure(const struct core_ws_config *cfg);

/*
 * Takes ownership of bev (its callbacks are replaced): answers 101 with
 * Sec-WebSocket-Accept computed from key, then speaks WebSocket.  Bytes
 * already in bev's input after the request head are the first frames.
 * -1 on failure, after which the caller must not touch bev again (it
 * was freed, or is answering a 400 on its own and will free itself).
 */
int	core_ws_accept(struct bufferevent *bev, const char *key);

/*
 * Sec-WebSocket-Accept for a Sec-WebSocket-Key (base64 of SHA-1 of key
 * and the RFC 6455 GUID), NUL-terminated in out.  -1 if key is not the
 * base64 of 16 bytes.
 */
int	core_ws_accept_key(const char *key, char out[29]);

/* Service-table implementations. */
int	core_ws_on_message(const char *owner, const char *type,
	    sales_ws_handler handler, void *arg);
int	core_ws_send(uint64_t client, const char *type, const char *data,
	    size_t len);
void	core_ws_broadcast(const char *type, const char *data, size_t len);
size_t	core_ws_clients(void);
/* Clients closed because their output passed ws_max_buffered. */
uint64_t core_ws_slow_cuts(void);

/* Drops every message type of owner: undoes a module's init. */
void	core_ws_forget(const char *owner);

/* Sends close 1001 to every client and frees them. */
void	core_ws_shutdown(void);

#endif /* CORE_WS_H */
