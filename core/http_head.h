/*
 * http_head.h - strict checking of a raw HTTP/1.x request head, before
 * libhttp-parser sees it (RFC 9112 framing, as nginx applies it).
 *
 * Pure: no I/O, no allocation, no loop.  The caller keeps one struct
 * per head and calls core_http_head_check() again as more bytes of the
 * same head arrive, with the whole head so far; lines already checked
 * are not scanned again.
 */
#ifndef CORE_HTTP_HEAD_H
#define CORE_HTTP_HEAD_H

#include <stddef.h>

struct core_http_head {
	size_t		 pos;		/* start of the first unchecked line */
	size_t		 scan;		/* that line is free of CR, LF up to */
	size_t		 end;		/* head length, blank line included */
	int		 lines;		/* lines checked, request line included */
	int		 v11;		/* HTTP/1.1 (or 1.x, x >= 1) */
	int		 v1;		/* major version 1 */
	int		 nhost;
	int		 ncl;
	int		 nte;
	int		 te_final_chunked;	/* last coding of the last TE */
	int		 te_only_chunked;	/* exactly "chunked" */
	int		 status;	/* on refusal: 400 or 501 */
	const char	*msg;		/* on refusal: why, for the client */
};

#define CORE_HTTP_HEAD_MORE	1	/* no verdict yet: need more bytes */
#define CORE_HTTP_HEAD_OK	0	/* complete and valid: h->end bytes */
#define CORE_HTTP_HEAD_BAD	(-1)	/* refused: h->status, h->msg */

void	core_http_head_init(struct core_http_head *h);
/*
 * Checks p[0..len), the bytes of one head received so far (leading
 * empty lines included).  Returns one of the values above.
 */
int	core_http_head_check(struct core_http_head *h, const char *p,
	    size_t len);
/* RFC 9110 tchar: a character of a token (a method, a header name). */
int	core_http_tchar(unsigned char c);

#endif /* CORE_HTTP_HEAD_H */
