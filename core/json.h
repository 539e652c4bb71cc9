/*
 * json.h - strict JSON reading on top of jsmn, as handed to modules.
 */
#ifndef CORE_JSON_H
#define CORE_JSON_H

#include <sales/json.h>

/* Arrays and objects nest at most this deep; deeper text is refused. */
#define CORE_JSON_MAX_DEPTH	64

struct sales_json *core_json_parse(const char *text, size_t len);
void	core_json_free(struct sales_json *j);
enum sales_json_type core_json_type(const struct sales_json *j, int tok);
int	core_json_get(const struct sales_json *j, int obj, const char *key);
int	core_json_len(const struct sales_json *j, int tok);
int	core_json_at(const struct sales_json *j, int arr, int i);
int	core_json_member(const struct sales_json *j, int obj, int i, int *value);
const char *core_json_raw(const struct sales_json *j, int tok, size_t *len);
int	core_json_string(const struct sales_json *j, int tok,
	    struct sales_buf *out);
int	core_json_int(const struct sales_json *j, int tok, long long *out);
int	core_json_double(const struct sales_json *j, int tok, double *out);
int	core_json_bool(const struct sales_json *j, int tok, int *out);

#endif /* CORE_JSON_H */
