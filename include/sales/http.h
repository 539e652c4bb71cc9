/*
 * sales/http.h - what a module sees of an HTTP request.
 *
 * A module registers (method, pattern, handler) with core->http_route()
 * during init.  Patterns are literal paths with optional "{name}"
 * segments ("/orders/{id}"); a segment matches one non-empty path
 * component.  A GET route serves HEAD too (the core sends no body).
 * Method mismatches (405 with Allow), unknown paths (404), OPTIONS and
 * everything of [auth], Host and CORS are answered by the core; a
 * handler only sees requests it can serve.  The members of struct
 * sales_core that serve requests (http_*) say what each returns.
 *
 * Lifetime: the request stays valid from the handler call until the
 * module answers it with core->http_respond() or core->http_error(),
 * which may happen later, on the loop, e.g. after a storage commit.
 * Every request must be answered exactly once; after its answer the
 * request may already be freed, so a second answer is a bug the core
 * cannot always catch.  If the client went away meanwhile the answer is
 * discarded; the module need not care.
 *
 * Paths and query values reach a module percent-decoded and valid UTF-8
 * (the core answers 400 otherwise), with no NUL inside.
 */
#ifndef SALES_HTTP_H
#define SALES_HTTP_H

#include <sales/types.h>

typedef void (*sales_http_handler)(struct sales_request *req, void *arg);

/* Limits a module may rely on. */
#define SALES_HTTP_MAX_PARAMS	8	/* "{name}" segments per pattern */

#endif /* SALES_HTTP_H */
