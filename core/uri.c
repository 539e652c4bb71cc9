/*
 * uri.c - percent-decoding, shared by the router (path parameters) and
 * the HTTP server (query strings).
 */
#include "uri.h"

int
core_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
core_uri_decode(const char *s, size_t len, char *out, int plus_space)
{
	size_t i, o = 0;
	int hi, lo;

	for (i = 0; i < len; i++) {
		if (s[i] == '\0')
			return -1;
		if (s[i] != '%') {
			if (out)
				out[o++] = plus_space && s[i] == '+' ? ' ' : s[i];
			continue;
		}
		if (len - i < 3)
			return -1;
		if ((hi = core_hexval((unsigned char)s[i + 1])) == -1 ||
		    (lo = core_hexval((unsigned char)s[i + 2])) == -1 ||
		    (hi == 0 && lo == 0))
			return -1;
		if (out)
			out[o++] = (char)(hi << 4 | lo);
		i += 2;
	}
	if (out)
		out[o] = '\0';
	return 0;
}
