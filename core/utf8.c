/*
 * utf8.c - strict UTF-8 validation (RFC 3629), used for WebSocket text
 * frames and close reasons and by the JSON reader.
 *
 * Rejects overlong forms, UTF-16 surrogates (U+D800..U+DFFF), code
 * points past U+10FFFF, the old 5- and 6-byte forms and truncated
 * sequences.  It only checks; it does not decode or repair.
 */
#include <stddef.h>

#include "utf8.h"

int
core_utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0, n, k;
	unsigned char c, lo, hi;

	while (i < len) {
		c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		/*
		 * The second byte's range depends on the lead byte: that
		 * is where overlongs, surrogates and > U+10FFFF show
		 * (RFC 3629 section 4); later bytes are 80..BF.
		 */
		lo = 0x80;
		hi = 0xbf;
		if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c == 0xe0) {
			n = 2;
			lo = 0xa0;
		} else if (c == 0xed) {
			n = 2;
			hi = 0x9f;
		} else if (c >= 0xe1 && c <= 0xef)
			n = 2;
		else if (c == 0xf0) {
			n = 3;
			lo = 0x90;
		} else if (c == 0xf4) {
			n = 3;
			hi = 0x8f;
		} else if (c >= 0xf1 && c <= 0xf3)
			n = 3;
		else
			return 0;
		if (len - i - 1 < n)
			return 0;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return 0;
		for (k = 2; k <= n; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xbf)
				return 0;
		i += n + 1;
	}
	return 1;
}
