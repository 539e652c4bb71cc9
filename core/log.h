/*
 * log.h - leveled logging to stderr, as text or JSON lines.  Safe from
 * any thread (one write(2) per line).
 */
#ifndef CORE_LOG_H
#define CORE_LOG_H

#include <sales/types.h>

void	core_log(const char *who, enum sales_log_level level, const char *fmt,
	    ...) __attribute__((format(printf, 3, 4)));
void	core_logv(const char *who, enum sales_log_level level, const char *fmt,
	    va_list ap);
/* "error", "warn", "info" or "debug", any case: the level, or -1. */
int	core_log_level_parse(const char *name);
int	core_log_set_level(const char *name);
/* "text" 0, "json" 1, else -1. */
int	core_log_format_parse(const char *name);
void	core_log_set_format(int json);
/* One access log line (http_response.c; path without the query). */
void	core_log_access(const char *method, const char *path, int status,
	    size_t bytes, double ms, const char *remote);

#define log_error(...)	core_log("core", SALES_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)	core_log("core", SALES_LOG_WARN, __VA_ARGS__)
#define log_info(...)	core_log("core", SALES_LOG_INFO, __VA_ARGS__)
#define log_debug(...)	core_log("core", SALES_LOG_DEBUG, __VA_ARGS__)

#endif /* CORE_LOG_H */
