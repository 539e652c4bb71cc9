/*
 * buf.h - growable byte buffers (struct sales_buf), JSON string
 * escaping, times and money, shared by the core and handed to modules.
 */
#ifndef CORE_BUF_H
#define CORE_BUF_H

#include <sales/types.h>

int	core_buf_append(struct sales_buf *b, const void *data, size_t len);
int	core_buf_printf(struct sales_buf *b, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	core_buf_vprintf(struct sales_buf *b, const char *fmt, va_list ap);
int	core_buf_json_string(struct sales_buf *b, const char *s, size_t len);
void	core_buf_free(struct sales_buf *b);
/* RFC 3339 UTC with ms, unquoted: 2026-11-25T10:00:00.123Z */
int	core_buf_time(struct sales_buf *b, int64_t ms);
/* Exact money as a JSON number: 51, 25.5, 0.000001, -0.25 */
int	core_buf_money(struct sales_buf *b, const struct sales_money *m);

#endif /* CORE_BUF_H */
