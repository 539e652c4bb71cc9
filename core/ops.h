/*
 * ops.h - the core's own operational routes: GET /health, GET /metrics.
 */
#ifndef CORE_OPS_H
#define CORE_OPS_H

int	core_ops_register(void);

#endif /* CORE_OPS_H */
