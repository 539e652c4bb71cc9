/*
 * orders_parse.c - validation of one posted order, field by field, as
 * the README's API section and docs/openapi.yaml say, and the writers
 * that print an order back.
 *
 * Decisions the contract leaves open (documented in the README):
 * - price is read from the number's source text, never through a double,
 *   into exact micro-units; more than 6 significant decimals (0.1234567)
 *   is rejected rather than rounded, since rounding money silently is
 *   worse than asking the client to round.  Exponents are fine (2.55e1).
 * - quantity must be a JSON integer: 2.0 and 2e0 are rejected.
 * - product_id is 1-64 bytes of UTF-8 without control characters (C0,
 *   DEL, C1); an integer is stored as its decimal string.
 * - date is RFC 3339 with a real calendar date and an offset; it is
 *   stored normalised to UTC ("Z"), to the millisecond.  null or absent
 *   means "when the server received it".  Leap seconds (:60) are refused.
 * - unknown and duplicate members are refused, naming the member.
 *
 * It does not touch storage or the network.
 */
#include <stdio.h>
#include <string.h>

#include "orders.h"

static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static char *
put_str(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

/* n decimal digits of v, zero-padded, at p; returns the end. */
static char *
put_digits(char *p, long long v, int n)
{
	int i;

	for (i = n - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + n;
}

/*
 * always_ms: print ".mmm" even when it is zero (received_at does).
 * Hand-rolled: two of these run for every order stored.
 */
static void
format_time(int64_t ms, int always_ms, char *out, size_t outlen)
{
	int64_t days, rem, y;
	int m, d, msec;
	char tmp[40], *p = tmp;
	size_t n;

	days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
	rem = ms - days * 86400000;
	msec = (int)(rem % 1000);
	rem /= 1000;
	civil_from_days(days, &y, &m, &d);
	if (y < 0 || y > 9999) {
		/* Outside RFC 3339's four-digit years: rare, keep printf. */
		if (always_ms || msec)
			snprintf(out, outlen, "%04lld-%02d-%02dT%02d:%02d:"
			    "%02d.%03dZ", (long long)y, m, d, (int)(rem / 3600),
			    (int)(rem / 60 % 60), (int)(rem % 60), msec);
		else
			snprintf(out, outlen, "%04lld-%02d-%02dT%02d:%02d:"
			    "%02dZ", (long long)y, m, d, (int)(rem / 3600),
			    (int)(rem / 60 % 60), (int)(rem % 60));
		return;
	}
	p = put_digits(p, y, 4);
	*p++ = '-';
	p = put_digits(p, m, 2);
	*p++ = '-';
	p = put_digits(p, d, 2);
	*p++ = 'T';
	p = put_digits(p, rem / 3600, 2);
	*p++ = ':';
	p = put_digits(p, rem / 60 % 60, 2);
	*p++ = ':';
	p = put_digits(p, rem % 60, 2);
	if (always_ms || msec) {
		*p++ = '.';
		p = put_digits(p, msec, 3);
	}
	*p++ = 'Z';
	*p = '\0';
	if (outlen == 0)
		return;
	n = (size_t)(p - tmp);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, tmp, n);
	out[n] = '\0';
}

void
orders_format_time(int64_t ms, char *out, size_t outlen)
{
	format_time(ms, 1, out, outlen);
}

static int
digits(const char *s, size_t n)
{
	int v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/*
 * RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM).
 * norm gets the UTC form; *ms the instant.
 */
int
orders_parse_date(const char *s, size_t len, int64_t *ms, char *norm,
    size_t normlen)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	int y, mo, d, h, mi, sec, frac = 0, nfrac = 0, oh = 0, om = 0, sign = 0;
	int leap, maxd;
	size_t i;
	int64_t t;

	if (len < 20 || len > 35)
		return -1;
	if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
	    s[13] != ':' || s[16] != ':')
		return -1;
	if ((y = digits(s, 4)) < 0 || (mo = digits(s + 5, 2)) < 0 ||
	    (d = digits(s + 8, 2)) < 0 || (h = digits(s + 11, 2)) < 0 ||
	    (mi = digits(s + 14, 2)) < 0 || (sec = digits(s + 17, 2)) < 0)
		return -1;
	i = 19;
	if (s[i] == '.') {
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
			if (nfrac < 3)
				frac = frac * 10 + (s[i] - '0');
			nfrac++;
		}
		if (nfrac == 0 || nfrac > 9)
			return -1;
		for (; nfrac < 3; nfrac++)
			frac *= 10;
	}
	if (i == len - 1 && (s[i] == 'Z' || s[i] == 'z'))
		sign = 0;
	else if (i == len - 6 && (s[i] == '+' || s[i] == '-') &&
	    s[i + 3] == ':') {
		sign = s[i] == '+' ? 1 : -1;
		if ((oh = digits(s + i + 1, 2)) < 0 ||
		    (om = digits(s + i + 4, 2)) < 0 || oh > 23 || om > 59)
			return -1;
	} else
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59)
		return -1;
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	maxd = mdays[mo - 1] + (mo == 2 && leap);
	if (d > maxd)
		return -1;
	t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	t -= (int64_t)sign * (oh * 3600 + om * 60);
	t = t * 1000 + frac;
	/* The UTC form must still be a four-digit year. */
	if (t < days_from_civil(0, 1, 1) * 86400000LL ||
	    t >= days_from_civil(10000, 1, 1) * 86400000LL)
		return -1;
	*ms = t;
	format_time(t, 0, norm, normlen);
	return 0;
}

/*
 * Decimal text -> micro-units, exactly.  Grammar of a JSON number; the
 * value must be in [0, 1e9] with at most 6 decimals that are not zero.
 */
int
orders_parse_price(const char *s, size_t len, int64_t *micros,
    const char **code, char *msg, size_t msglen)
{
	char dig[32];
	size_t i = 0, ndig = 0, nsig, pend = 0;
	int neg = 0, nonzero = 0, esign = 1;
	long long scale = 0, exp = 0, k;
	uint64_t v;

	*code = "invalid_field";
	if (i < len && s[i] == '-') {
		neg = 1;
		i++;
	}
	if (i >= len || s[i] < '0' || s[i] > '9')
		goto syntax;
	/* Significant digits only: leading zeros are dropped. */
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		if (s[i] != '0' || ndig) {
			if (ndig >= sizeof(dig))
				goto range;
			dig[ndig++] = s[i];
		}
	}
	if (i < len && s[i] == '.') {
		i++;
		if (i >= len || s[i] < '0' || s[i] > '9')
			goto syntax;
		/* Trailing zeros are held back, so 1.50000000000 is 1.5. */
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
			scale++;
			if (s[i] == '0') {
				pend += ndig != 0;
				continue;
			}
			if (ndig + pend >= sizeof(dig))
				goto precise;
			for (; pend > 0; pend--)
				dig[ndig++] = '0';
			dig[ndig++] = s[i];
		}
		scale -= (long long)pend;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			esign = s[i++] == '-' ? -1 : 1;
		if (i >= len || s[i] < '0' || s[i] > '9')
			goto syntax;
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			if (exp < 100000)
				exp = exp * 10 + (s[i] - '0');
	}
	if (i != len)
		goto syntax;
	for (i = 0; i < ndig; i++)
		nonzero |= dig[i] != '0';
	if (!nonzero) {
		*micros = 0;
		return 0;
	}
	if (neg)
		goto range;
	/* value = dig * 10^(exp - scale); micros = dig * 10^k */
	k = esign * exp - scale + 6;
	nsig = ndig;
	if (k < 0) {
		/* The dropped digits must all be zero. */
		if ((long long)ndig + k <= 0)
			goto precise;
		for (i = ndig + k; i < ndig; i++)
			if (dig[i] != '0')
				goto precise;
		nsig = ndig + k;
		k = 0;
	}
	if ((long long)nsig + k > 16)
		goto range;
	for (v = 0, i = 0; i < nsig; i++)
		v = v * 10 + (uint64_t)(dig[i] - '0');
	for (; k > 0; k--)
		v *= 10;
	if (v > (uint64_t)ORDERS_MAX_PRICE * 1000000)
		goto range;
	*micros = (int64_t)v;
	return 0;
syntax:
	snprintf(msg, msglen, "\"price\" must be a number");
	return -1;
range:
	snprintf(msg, msglen, "\"price\" must be from 0 to %lld",
	    ORDERS_MAX_PRICE);
	return -1;
precise:
	snprintf(msg, msglen,
	    "\"price\" has more than 6 decimal places; round it first");
	return -1;
}

/* 1-64 bytes, no C0, DEL or C1 control characters (UTF-8 is checked by the parser). */
static int
product_id_ok(const char *s, size_t len)
{
	size_t i;
	unsigned char c;

	if (len < 1 || len > ORDERS_MAX_PRODUCT || memchr(s, '\0', len))
		return 0;
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return 0;
		if (c == 0xc2 && i + 1 < len &&
		    (unsigned char)s[i + 1] >= 0x80 &&
		    (unsigned char)s[i + 1] <= 0x9f)
			return 0;
	}
	return 1;
}

int
orders_parse_order(const struct sales_json *json, int tok, struct order *o,
    char *field, size_t fieldlen, const char **code, char *msg, size_t msglen)
{
	const struct sales_core *core = orders_core;
	struct sales_buf b = {0};
	const char *k, *raw;
	size_t klen, rlen;
	int n, i, v, seen_pid = 0, seen_q = 0, seen_p = 0, seen_d = 0;
	long long ll;
	enum sales_json_type t;

	memset(o, 0, sizeof(*o));
	field[0] = '\0';
	*code = "invalid_field";
	if (core->json_type(json, tok) != SALES_JSON_OBJECT) {
		*code = "invalid_order";
		snprintf(msg, msglen, "an order must be a JSON object");
		return -1;
	}
	n = core->json_len(json, tok);
	for (i = 0; i < n; i++) {
		if ((k = core->json_raw(json, core->json_member(json, tok, i, &v),
		    &klen)) == NULL || v < 0)
			goto bad_json;
		/* A raw key holds no NUL (no raw control characters). */
		rlen = klen > 64 ? 64 : klen;
		if (rlen > fieldlen - 1)
			rlen = fieldlen - 1;
		memcpy(field, k, rlen);
		field[rlen] = '\0';
		t = core->json_type(json, v);
		if (klen == 10 && memcmp(k, "product_id", 10) == 0) {
			if (seen_pid++)
				goto dup;
			if (t == SALES_JSON_NUMBER &&
			    core->json_int(json, v, &ll) == 0) {
				snprintf(o->product_id, sizeof(o->product_id),
				    "%lld", ll);
				continue;
			}
			if (t != SALES_JSON_STRING) {
				snprintf(msg, msglen, "\"product_id\" must be "
				    "a string or an integer");
				goto fail;
			}
			/* Without escapes the raw text is the string itself. */
			raw = core->json_raw(json, v, &rlen);
			if (raw == NULL || memchr(raw, '\\', rlen) != NULL) {
				if (core->json_string(json, v, &b) == -1)
					goto bad_json;
				raw = b.data ? b.data : "";
				rlen = b.len;
			}
			if (!product_id_ok(raw, rlen)) {
				snprintf(msg, msglen, "\"product_id\" must be "
				    "1 to %d bytes without control characters",
				    ORDERS_MAX_PRODUCT);
				goto fail;
			}
			memcpy(o->product_id, raw, rlen);
			o->product_id[rlen] = '\0';
			b.len = 0;
		} else if (klen == 8 && memcmp(k, "quantity", 8) == 0) {
			if (seen_q++)
				goto dup;
			if (t != SALES_JSON_NUMBER ||
			    core->json_int(json, v, &ll) == -1 ||
			    ll < 1 || ll > ORDERS_MAX_QUANTITY) {
				snprintf(msg, msglen, "\"quantity\" must be an "
				    "integer from 1 to %lld", ORDERS_MAX_QUANTITY);
				goto fail;
			}
			o->quantity = ll;
		} else if (klen == 5 && memcmp(k, "price", 5) == 0) {
			if (seen_p++)
				goto dup;
			if (t != SALES_JSON_NUMBER ||
			    (raw = core->json_raw(json, v, &rlen)) == NULL) {
				snprintf(msg, msglen, "\"price\" must be a number");
				goto fail;
			}
			if (orders_parse_price(raw, rlen, &o->price_micros, code,
			    msg, msglen) == -1)
				goto fail;
		} else if (klen == 4 && memcmp(k, "date", 4) == 0) {
			if (seen_d++)
				goto dup;
			if (t == SALES_JSON_NULL)
				continue;
			if (t != SALES_JSON_STRING ||
			    core->json_string(json, v, &b) == -1 ||
			    orders_parse_date(b.data ? b.data : "", b.len,
			    &o->date_ms, o->date, sizeof(o->date)) == -1) {
				snprintf(msg, msglen, "\"date\" must be an RFC 3339 "
				    "date-time such as \"2025-04-22T10:00:00Z\"");
				goto fail;
			}
			o->has_date = 1;
			b.len = 0;
		} else {
			*code = "unknown_field";
			snprintf(msg, msglen, "unknown member \"%s\"; an order "
			    "has product_id, quantity, price and date", field);
			goto fail;
		}
	}
	*code = "missing_field";
	if (!seen_pid)
		snprintf(field, fieldlen, "product_id");
	else if (!seen_q)
		snprintf(field, fieldlen, "quantity");
	else if (!seen_p)
		snprintf(field, fieldlen, "price");
	else {
		core->buf_free(&b);
		return 0;
	}
	snprintf(msg, msglen, "\"%s\" is required", field);
	goto fail;
dup:
	*code = "duplicate_field";
	snprintf(msg, msglen, "\"%s\" appears more than once", field);
	goto fail;
bad_json:
	*code = "invalid_json";
	snprintf(msg, msglen, "the body is not valid JSON");
fail:
	core->buf_free(&b);
	return -1;
}

/* A signed decimal at p; returns the end (at most 20 bytes). */
static char *
put_int(char *p, long long v)
{
	unsigned long long u;
	char tmp[20];
	int n = 0;

	if (v < 0) {
		*p++ = '-';
		u = 0ULL - (unsigned long long)v;
	} else
		u = (unsigned long long)v;
	do
		tmp[n++] = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

/* Without printf: this runs for every order stored or listed. */
int
orders_append_json(struct sales_buf *b, int64_t id, const char *product_id,
    size_t pidlen, int64_t quantity, int64_t price_micros, const char *date,
    size_t datelen, int64_t received_at)
{
	const struct sales_core *core = orders_core;
	static const char k_id[] = "{\"id\":", k_pid[] = ",\"product_id\":",
	    k_q[] = ",\"quantity\":", k_price[] = ",\"price\":",
	    k_date[] = ",\"date\":", k_null[] = "null",
	    k_ra[] = ",\"received_at\":\"";
	struct sales_money price = { price_micros / 1000000,
	    price_micros % 1000000 };
	char tmp[160], *p;
	int rc = 0;

	p = put_str(tmp, k_id, sizeof(k_id) - 1);
	p = put_int(p, (long long)id);
	p = put_str(p, k_pid, sizeof(k_pid) - 1);
	rc |= core->buf_append(b, tmp, (size_t)(p - tmp));
	rc |= core->buf_json_string(b, product_id, pidlen);
	p = put_str(tmp, k_q, sizeof(k_q) - 1);
	p = put_int(p, (long long)quantity);
	p = put_str(p, k_price, sizeof(k_price) - 1);
	rc |= core->buf_append(b, tmp, (size_t)(p - tmp));
	/* The SDK's figure, so newOrder and analytics print money alike. */
	rc |= core->buf_money(b, &price);
	p = put_str(tmp, k_date, sizeof(k_date) - 1);
	if (date == NULL)
		p = put_str(p, k_null, sizeof(k_null) - 1);
	rc |= core->buf_append(b, tmp, (size_t)(p - tmp));
	if (date != NULL)
		rc |= core->buf_json_string(b, date, datelen);
	p = put_str(tmp, k_ra, sizeof(k_ra) - 1);
	orders_format_time(received_at, p, sizeof(tmp) - (size_t)(p - tmp) -
	    3);
	p += strlen(p);
	p = put_str(p, "\"}", 2);
	rc |= core->buf_append(b, tmp, (size_t)(p - tmp));
	return rc ? -1 : 0;
}
