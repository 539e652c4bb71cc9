/*
 * utf8.h - strict UTF-8 validation, for WebSocket text and the JSON
 * reader alike.
 */
#ifndef CORE_UTF8_H
#define CORE_UTF8_H

#include <stddef.h>

/* RFC 3629 UTF-8 check (no overlongs, surrogates, > U+10FFFF). */
int	core_utf8_valid(const unsigned char *s, size_t len);

#endif /* CORE_UTF8_H */
