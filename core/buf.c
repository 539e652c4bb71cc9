/*
 * buf.c - growable byte buffers, JSON string escaping, and the two
 * figures every module prints the same way: times and money.
 * Out of memory is reported as -1 and leaves the buffer as it was.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"

static int
buf_reserve(struct sales_buf *b, size_t extra)
{
	size_t cap;
	char *p;

	if (b->len + extra + 1 <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1) {
		if (cap > ((size_t)-1) / 2)
			return -1;
		cap *= 2;
	}
	if ((p = realloc(b->data, cap)) == NULL)
		return -1;
	b->data = p;
	b->cap = cap;
	return 0;
}

int
core_buf_append(struct sales_buf *b, const void *data, size_t len)
{
	if (buf_reserve(b, len) == -1)
		return -1;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int
core_buf_vprintf(struct sales_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0 || buf_reserve(b, (size_t)n) == -1)
		return -1;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int
core_buf_printf(struct sales_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = core_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

/*
 * Escapes what RFC 8259 requires plus DEL; bytes >= 0x80 pass through,
 * since every string we hold was checked as UTF-8 on the way in.
 */
int
core_buf_json_string(struct sales_buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i, run;
	char esc[6];

	if (buf_reserve(b, len + 2) == -1)
		return -1;
	b->data[b->len++] = '"';
	for (i = 0; i < len; i += run) {
		for (run = 0; i + run < len && p[i + run] >= 0x20 &&
		    p[i + run] != '"' && p[i + run] != '\\' &&
		    p[i + run] != 0x7f; run++)
			;
		if (run) {
			if (core_buf_append(b, p + i, run) == -1)
				return -1;
			continue;
		}
		run = 1;
		esc[0] = '\\';
		switch (p[i]) {
		case '"':  esc[1] = '"';  break;
		case '\\': esc[1] = '\\'; break;
		case '\n': esc[1] = 'n';  break;
		case '\r': esc[1] = 'r';  break;
		case '\t': esc[1] = 't';  break;
		case '\b': esc[1] = 'b';  break;
		case '\f': esc[1] = 'f';  break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[p[i] >> 4];
			esc[5] = hex[p[i] & 0xf];
			if (core_buf_append(b, esc, 6) == -1)
				return -1;
			continue;
		}
		if (core_buf_append(b, esc, 2) == -1)
			return -1;
	}
	return core_buf_append(b, "\"", 1);
}

void
core_buf_free(struct sales_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int
core_buf_time(struct sales_buf *b, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms < 0 || gmtime_r(&t, &tm) == NULL)
		return -1;
	return core_buf_printf(b, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/*
 * The exact decimal, as a JSON number: 51, 25.5, 0.000001, -0.25.  The
 * sum is taken in 128 bits, so a pair whose signs disagree or whose
 * micros reach a million is carried rather than misprinted; its whole
 * units still fit 64 bits (at most 9.2e18 + 9.2e12).  No printf, and
 * 128-bit division only past 1.8e13 units: orders prints one per order
 * it stores or lists.
 */
int
core_buf_money(struct sales_buf *b, const struct sales_money *m)
{
	__int128 v = (__int128)m->units * 1000000 + m->micros;
	unsigned __int128 u = v < 0 ? -(unsigned __int128)v :
	    (unsigned __int128)v;
	uint64_t whole, frac;
	char tmp[32], *p = tmp + sizeof(tmp);
	int n;

	if (u <= UINT64_MAX) {
		whole = (uint64_t)u / 1000000;
		frac = (uint64_t)u % 1000000;
	} else {
		whole = (uint64_t)(u / 1000000);
		frac = (uint64_t)(u % 1000000);
	}
	if (frac != 0) {
		for (n = 6; frac % 10 == 0; n--)
			frac /= 10;
		while (n-- > 0) {
			*--p = (char)('0' + frac % 10);
			frac /= 10;
		}
		*--p = '.';
	}
	do {
		*--p = (char)('0' + whole % 10);
		whole /= 10;
	} while (whole != 0);
	if (v < 0)
		*--p = '-';
	return core_buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}
