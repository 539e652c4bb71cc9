/*
 * orders.h - what the files of the orders module share: the parsed
 * order, the validators (orders_parse.c), the JSON writer and the read
 * routes (orders_query.c).  Private to modules/orders/.
 */
#ifndef ORDERS_H
#define ORDERS_H

#include <sales/module.h>

#define ORDERS_MAX_BATCH	1000
#define ORDERS_MAX_PRODUCT	SALES_PRODUCT_ID_MAX	/* <sales/types.h> */
#define ORDERS_MAX_QUANTITY	1000000LL
#define ORDERS_MAX_PRICE	1000000000LL	/* whole units */
#define ORDERS_DATE_MAX		40		/* normalised RFC 3339 + NUL */

struct order {
	int64_t	id;
	int64_t	quantity;
	int64_t	price_micros;
	int64_t	date_ms;
	int64_t	received_at;
	int	has_date;
	char	product_id[SALES_PRODUCT_ID_SIZE];
	char	date[ORDERS_DATE_MAX];
};

extern const struct sales_core	*orders_core;
extern struct sales_module	*orders_self;

/*
 * Validators.  Each returns 0, or -1 with a message (lowercase, no
 * final period) in msg and the error code in *code.
 */
int	orders_parse_price(const char *s, size_t len, int64_t *micros,
	    const char **code, char *msg, size_t msglen);
int	orders_parse_date(const char *s, size_t len, int64_t *ms,
	    char *norm, size_t normlen);
/* field gets the failing member's name ("" when the order itself). */
int	orders_parse_order(const struct sales_json *json, int tok,
	    struct order *o, char *field, size_t fieldlen, const char **code,
	    char *msg, size_t msglen);

/* RFC 3339 UTC with milliseconds (money is the SDK's buf_money). */
void	orders_format_time(int64_t ms, char *out, size_t outlen);
/* The stored order as the API shows it, everywhere it is shown. */
int	orders_append_json(struct sales_buf *b, int64_t id,
	    const char *product_id, size_t pidlen, int64_t quantity,
	    int64_t price_micros, const char *date, size_t datelen,
	    int64_t received_at);

/*
 * The feed (orders_feed.c): every committed order published once, in
 * id order, whichever instance stored it.  start: at init, with the
 * highest stored id.  committed: this instance's orders, just
 * committed, with the JSON of each (body + span[2i], span[2i + 1]
 * bytes).  watch: the store_watch callback.  poke: read what is new.
 */
void	orders_feed_start(int64_t max_id);
void	orders_feed_stop(void);		/* fini */
int64_t	orders_feed_watermark(void);
void	orders_feed_committed(const struct order *orders, int n,
	    const char *body, const size_t *span);
void	orders_feed_watch(int others, void *arg);
void	orders_feed_poke(void);
/*
 * The stored orders as POST /orders answers them: one object, or
 * {"orders":[...]} when is_array; span (NULL, or 2n entries) gets each
 * order's offset and length in b.  0 or -1 (no memory).
 */
int	orders_append_body(struct sales_buf *b, const struct order *o, int n,
	    int is_array, size_t *span);
/*
 * Row r of a result of (id, product_id, quantity, price_micros, date,
 * received_at) as an order; 0.
 */
int	orders_feed_row(const struct sales_store_result *res, size_t r,
	    struct order *o);

/* Read routes (orders_query.c). */
void	orders_get_list(struct sales_request *req, void *arg);
/* Above the highest id this instance knows of (its feed's watermark). */
int64_t	orders_next_id(void);
void	orders_get_one(struct sales_request *req, void *arg);

#endif /* ORDERS_H */
