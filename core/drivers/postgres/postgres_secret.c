/*
 * postgres_secret.c - keeps the password of [storage] url out of what
 * the driver says: a secret never appears in a log line, a response or
 * a metric.  libpq's messages can quote the url: one it
 * cannot parse is repeated whole ("... in URI: \"postgresql://...\""),
 * a bad percent escape or a key=value string quotes the piece at
 * fault.  Every message of libpq goes through pg_secret_hide(), which
 * masks the password wherever it appears, in each spelling the url
 * gives it: the user info of a postgresql:// URL, its query
 * (?password=, ?sslpassword=), a key=value string (password='...'),
 * raw and decoded.
 *
 * It does not parse the url for connecting: libpq does.  The url is
 * the same for every connection of the process; it is kept once.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "postgres.h"

#define PG_MASK		"***"
#define PG_SECRET_MAX	512	/* the longest password masked whole */

static pthread_mutex_t	 secret_lock = PTHREAD_MUTEX_INITIALIZER;
static char		*secret_url;

/* Every copy of s[0..n) in msg becomes PG_MASK, within size. */
static void
mask(char *msg, size_t size, const char *s, size_t n)
{
	size_t len = strlen(msg), m = sizeof(PG_MASK) - 1, i = 0, tail;

	if (n == 0)
		return;
	for (; i + n <= len; i++) {
		if (memcmp(msg + i, s, n) != 0)
			continue;
		tail = len - i - n;
		/* What no longer fits is cut: better than the secret. */
		if (i + m + tail >= size)
			tail = size - 1 > i + m ? size - 1 - i - m : 0;
		if (i + m < size)
			memmove(msg + i + m, msg + i + n, tail);
		memcpy(msg + i, PG_MASK, i + m < size ? m : size - 1 - i);
		len = i + m < size ? i + m + tail : size - 1;
		msg[len] = '\0';
		i += m - 1;
	}
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * Masks s[0..n) as written and as it means: percent-decoded (url) or
 * with its backslash escapes undone (a key=value string).
 */
static void
mask_both(char *msg, size_t size, const char *s, size_t n, int url)
{
	char plain[PG_SECRET_MAX];
	size_t i, k = 0;

	if (n >= sizeof(plain)) {
		/* Longer than anyone's password: its parts then. */
		for (i = 0; i < n; i += sizeof(plain) - 1)
			mask_both(msg, size, s + i, n - i < sizeof(plain) - 1 ?
			    n - i : sizeof(plain) - 1, url);
		return;
	}
	mask(msg, size, s, n);
	for (i = 0; i < n; i++) {
		if (url && s[i] == '%' && i + 2 < n &&
		    hexval((unsigned char)s[i + 1]) >= 0 &&
		    hexval((unsigned char)s[i + 2]) >= 0) {
			plain[k++] = (char)(hexval((unsigned char)s[i + 1]) *
			    16 + hexval((unsigned char)s[i + 2]));
			i += 2;
		} else if (!url && s[i] == '\\' && i + 1 < n)
			plain[k++] = s[++i];
		else
			plain[k++] = s[i];
	}
	if (k != n)
		mask(msg, size, plain, k);
}

static int
secret_key(const char *k, size_t n)
{
	return (n == 8 && strncmp(k, "password", 8) == 0) ||
	    (n == 11 && strncmp(k, "sslpassword", 11) == 0);
}

static void hide_in(char *msg, size_t size, const char *u, size_t ulen);

/* postgresql://user:PASSWORD@host/db?password=...&sslpassword=... */
static void
hide_uri(char *msg, size_t size, const char *u, size_t ulen, size_t skip)
{
	const char *end = u + ulen, *p = u + skip, *colon = NULL, *q, *eq;
	const char *amp;

	/* The user info ends at the first '@' before any '/', as libpq's. */
	for (q = p; q < end && *q != '@' && *q != '/'; q++)
		if (*q == ':' && colon == NULL)
			colon = q;
	if (q < end && *q == '@') {
		if (colon != NULL)
			mask_both(msg, size, colon + 1, (size_t)(q - colon - 1),
			    1);
		p = q + 1;
	}
	if ((q = memchr(p, '?', (size_t)(end - p))) == NULL)
		return;
	for (q++; q < end; q = amp + 1) {
		if ((amp = memchr(q, '&', (size_t)(end - q))) == NULL)
			amp = end;
		if ((eq = memchr(q, '=', (size_t)(amp - q))) != NULL &&
		    secret_key(q, (size_t)(eq - q)))
			mask_both(msg, size, eq + 1, (size_t)(amp - eq - 1), 1);
	}
}

/* host=... password='...' (a dbname that is a URL is looked into). */
static void
hide_keywords(char *msg, size_t size, const char *u, size_t ulen)
{
	const char *end = u + ulen, *p = u, *k, *v;
	size_t klen;

	while (p < end) {
		while (p < end && isspace((unsigned char)*p))
			p++;
		for (k = p; p < end && *p != '=' &&
		    !isspace((unsigned char)*p); p++)
			;
		klen = (size_t)(p - k);
		while (p < end && isspace((unsigned char)*p))
			p++;
		if (p >= end || *p != '=')
			return;	/* libpq refuses it: pg_connect says so */
		for (p++; p < end && isspace((unsigned char)*p); p++)
			;
		if (p < end && *p == '\'') {
			for (v = ++p; p < end && *p != '\''; p++)
				if (*p == '\\' && p + 1 < end)
					p++;
		} else {
			for (v = p; p < end && !isspace((unsigned char)*p);
			    p++)
				if (*p == '\\' && p + 1 < end)
					p++;
		}
		if (secret_key(k, klen))
			mask_both(msg, size, v, (size_t)(p - v), 0);
		else if (klen == 6 && strncmp(k, "dbname", 6) == 0)
			hide_in(msg, size, v, (size_t)(p - v));
		if (p < end)
			p++;	/* the closing quote or a blank */
	}
}

static void
hide_in(char *msg, size_t size, const char *u, size_t ulen)
{
	if (ulen >= 13 && strncmp(u, "postgresql://", 13) == 0)
		hide_uri(msg, size, u, ulen, 13);
	else if (ulen >= 11 && strncmp(u, "postgres://", 11) == 0)
		hide_uri(msg, size, u, ulen, 11);
	else if (memchr(u, '=', ulen) != NULL)
		hide_keywords(msg, size, u, ulen);
}

/* The url whose password is masked: [storage] url, once. */
void
pg_secret_url(const char *url)
{
	pthread_mutex_lock(&secret_lock);
	if (secret_url == NULL || strcmp(secret_url, url) != 0) {
		free(secret_url);
		secret_url = strdup(url);	/* NULL: see pg_secret_hide */
	}
	pthread_mutex_unlock(&secret_lock);
}

/*
 * Masks the url's password in msg (NUL-terminated, in a buffer of
 * size bytes).  Should the url not have been kept (out of memory),
 * the message is withheld: nothing is better than the secret.
 */
void
pg_secret_hide(char *msg, size_t size)
{
	if (size == 0)
		return;
	pthread_mutex_lock(&secret_lock);
	if (secret_url != NULL)
		hide_in(msg, size, secret_url, strlen(secret_url));
	else
		snprintf(msg, size, "(message withheld: out of memory)");
	pthread_mutex_unlock(&secret_lock);
}

/* Whether the url has piece as a key: "piece=" in its own place. */
static int
is_key(const char *url, const char *piece, size_t n)
{
	const char *at, *p;

	for (at = strstr(url, piece); at != NULL; at = strstr(at + 1, piece)) {
		if (at != url && !isspace((unsigned char)at[-1]) &&
		    at[-1] != '?' && at[-1] != '&')
			continue;
		for (p = at + n; isspace((unsigned char)*p); p++)
			;
		if (*p == '=')
			return 1;
	}
	return 0;
}

/*
 * libpq's message for a url it could not parse: each quoted piece of
 * the url in it that is not a key (a bare word with no "key=" may be a
 * password typed without its key) is masked, besides the password
 * itself.
 */
void
pg_secret_parse_error(char *msg, size_t size, const char *url)
{
	char *a, *b, piece[PG_SECRET_MAX];
	size_t n;

	for (a = strchr(msg, '"'); a != NULL && (b = strchr(a + 1, '"')) !=
	    NULL; a = strchr(b + 1, '"')) {
		n = (size_t)(b - a - 1);
		if (n <= 1 || n >= sizeof(piece))
			continue;
		memcpy(piece, a + 1, n);
		piece[n] = '\0';
		if (strstr(url, piece) == NULL || strstr(piece, "://") ||
		    is_key(url, piece, n))
			continue;	/* not the url's, all of it, or a key */
		mask(msg, size, piece, n);
		b = a + sizeof(PG_MASK);	/* past the masked piece */
		if ((size_t)(b - msg) >= strlen(msg))
			break;
	}
	pg_secret_hide(msg, size);
}
