/*
 * bus.h - the in-process event bus: topics, queued delivery on the loop
 * in publish order.
 */
#ifndef CORE_BUS_H
#define CORE_BUS_H

#include <sales/bus.h>

int	core_bus_init(void);
int	core_bus_subscribe(const char *owner, const char *topic,
	    sales_bus_handler handler, void *arg);
void	core_bus_publish(const char *topic, const void *payload, size_t len);
/* Delivers everything queued now (shutdown, tests). */
void	core_bus_drain(void);
void	core_bus_free(void);
/* Drops every subscription of owner: undoes a module's init. */
void	core_bus_forget(const char *owner);

#endif /* CORE_BUS_H */
