/*
 * core.h - what the core's parts share: the loop, the loaded
 * configuration, and the service table handed to modules.
 * Private to core/; modules see only include/sales/.
 */
#ifndef CORE_H
#define CORE_H

#include <event2/event.h>

#include <sales/module.h>

/* project(VERSION) of CMakeLists.txt, given by the build. */
#ifndef CORE_VERSION
#error "CORE_VERSION comes from CMakeLists.txt (target salescore)"
#endif

/* The one event loop; loop thread only. */
extern struct event_base	*core_base;

/* The table given to every module (core/api.c). */
extern const struct sales_core	 core_api;

/* Monotonic and wall clocks in ms; monotonic in us. */
int64_t	core_now_ms(void);
int64_t	core_mono_ms(void);
int64_t	core_mono_us(void);

#endif /* CORE_H */
