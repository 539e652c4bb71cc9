/*
 * log.c - leveled logging to stderr, one line per call:
 *	2026-11-25T10:00:00.123Z INFO  orders: message
 * Each line goes out in one write(2) so that lines from the storage
 * threads never interleave with the loop's.  No buffering, no files:
 * the service manager owns where stderr goes.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum sales_log_level	 log_level = SALES_LOG_INFO;
static const char		*level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

int
core_log_level_parse(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcasecmp(name, level_names[i]) == 0)
			return (int)i;
	return -1;
}

int
core_log_set_level(const char *name)
{
	int level;

	if ((level = core_log_level_parse(name)) == -1)
		return -1;
	log_level = (enum sales_log_level)level;
	return 0;
}

void
core_logv(const char *who, enum sales_log_level level, const char *fmt,
    va_list ap)
{
	char line[2048];
	struct timeval tv;
	struct tm tm;
	int n, m;

	if (level > log_level)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
	    "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s: ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000),
	    level_names[level], who);
	m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}

void
core_log(const char *who, enum sales_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	core_logv(who, level, fmt, ap);
	va_end(ap);
}
