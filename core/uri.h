/*
 * uri.h - percent-decoding for request paths and query strings (RFC
 * 3986), and the hex digit reader that JSON escapes share.
 */
#ifndef CORE_URI_H
#define CORE_URI_H

#include <stddef.h>

/* 0-15, or -1 when c is not a hex digit. */
int	core_hexval(int c);

/*
 * Decodes s[0..len) into out (room for len + 1 bytes, NUL-terminated;
 * out may be s: decoding only shrinks);
 * with plus_space, '+' is a space (query strings).  -1 on a malformed
 * escape, a raw NUL or an encoded NUL (%00), which no handler should ever
 * have to think about.  With out NULL it only checks s.
 */
int	core_uri_decode(const char *s, size_t len, char *out, int plus_space);

#endif /* CORE_URI_H */
