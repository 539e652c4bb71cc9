/*
 * log.c - leveled logging to stderr, one line per call, as text
 *	2026-11-25T10:00:00.123Z INFO  orders: message
 * or, with [server] log_format = json, one object per line
 *	{"time":"2026-11-25T10:00:00.123Z","level":"info","who":"orders",
 *	 "msg":"message"}
 * plus the access log lines of core/http_response.c, which carry their fields.
 * Each line goes out in one write(2) so that lines from the storage
 * threads never interleave with the loop's.  No buffering, no files:
 * the service manager owns where stderr goes, so there is nothing to
 * reopen on SIGUSR1.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_LINE	2048

/* Written on the loop, read by any thread: a torn read is harmless. */
static volatile int	 log_level = SALES_LOG_INFO;
static volatile int	 log_json;
static const char	*level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };
static const char	*level_lower[] = { "error", "warn", "info", "debug" };

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
	log_level = level;
	return 0;
}

int
core_log_format_parse(const char *name)
{
	if (strcasecmp(name, "text") == 0)
		return 0;
	if (strcasecmp(name, "json") == 0)
		return 1;
	return -1;
}

void
core_log_set_format(int json)
{
	log_json = json;
}

/*
 * Appends s to line[*n] as the inside of a JSON string, cut to fit.  With
 * bytes8, bytes past ASCII are escaped too (they came from a client and
 * may not be UTF-8); else they pass (our own messages, UTF-8).
 */
static void
put_escaped(char *line, size_t *n, size_t max, const char *s, int bytes8)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char ch;

	for (; *s != '\0' && *n + 6 < max; s++) {
		ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\') {
			line[(*n)++] = '\\';
			line[(*n)++] = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f || (bytes8 && ch >= 0x80)) {
			memcpy(line + *n, "\\u00", 4);
			line[*n + 4] = hex[ch >> 4];
			line[*n + 5] = hex[ch & 15];
			*n += 6;
		} else
			line[(*n)++] = (char)ch;
	}
}

/* The time and, in text, the level and who; in JSON, up to "msg":". */
static size_t
put_head(char *line, size_t max, const char *who, int level)
{
	struct timeval tv;
	struct tm tm;
	int n;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	if (log_json)
		n = snprintf(line, max, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:"
		    "%02d.%03ldZ\",\"level\":\"%s\",\"who\":\"%s\",\"msg\":\"",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000),
		    level_lower[level], who);
	else
		n = snprintf(line, max, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ "
		    "%-5s %s: ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		    tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000),
		    level_names[level], who);
	return n < 0 ? 0 : (size_t)n >= max ? max - 1 : (size_t)n;
}

/* Closes the line (n <= LOG_LINE - 2) and writes it. */
static void
put_tail(char *line, size_t n)
{
	if (log_json) {
		if (n > LOG_LINE - 3)
			n = LOG_LINE - 3;
		line[n++] = '"';
		line[n++] = '}';
	}
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}

void
core_logv(const char *who, enum sales_log_level level, const char *fmt,
    va_list ap)
{
	char line[LOG_LINE], msg[LOG_LINE];
	size_t n;
	int m;

	if ((int)level > log_level)
		return;
	n = put_head(line, sizeof(line) - 3, who, level);
	if (log_json) {
		if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
			msg[0] = '\0';
		put_escaped(line, &n, sizeof(line) - 3, msg, 0);
	} else {
		m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
		if (m > 0)
			n += (size_t)m;
		if (n > sizeof(line) - 2)
			n = sizeof(line) - 2;
	}
	put_tail(line, n);
}

void
core_log(const char *who, enum sales_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	core_logv(who, level, fmt, ap);
	va_end(ap);
}

/*
 * Access lines are not filtered by log_level: [server] access_log turns
 * them on or off.  Remote and method are ours (an address, a known
 * method); the path is the client's, escaped.
 */
void
core_log_access(const char *method, const char *path, int status,
    size_t bytes, double ms, const char *remote)
{
	char line[LOG_LINE], epath[1200];
	size_t n, pn = 0;
	int m;

	put_escaped(epath, &pn, sizeof(epath) - 200, path, 1);
	epath[pn] = '\0';
	n = put_head(line, sizeof(line) - 2, "access", SALES_LOG_INFO);
	if (log_json)
		m = snprintf(line + n, sizeof(line) - n - 1, "%s %s %d\","
		    "\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,"
		    "\"bytes\":%zu,\"duration_ms\":%.3f,\"remote\":\"%s\"}",
		    method, epath, status, method, epath, status, bytes, ms,
		    remote);
	else
		m = snprintf(line + n, sizeof(line) - n - 1,
		    "%s \"%s %s\" %d %zu %.3fms", remote, method, epath,
		    status, bytes, ms);
	if (m > 0)
		n += (size_t)m;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}
