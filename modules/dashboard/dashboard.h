/*
 * dashboard.h - the dashboard's page, compiled in: the table that
 * embed.cmake generates from page/ at build time.
 */
#ifndef DASHBOARD_H
#define DASHBOARD_H

#include <stddef.h>

struct dashboard_asset {
	const char		*url;		/* "/" or "/dashboard/<file>" */
	const char		*type;		/* Content-Type */
	const unsigned char	*data;
	size_t			 len;
	const char		*etag;		/* quoted, strong */
};

/* Ends with an entry whose url is NULL. */
extern const struct dashboard_asset dashboard_assets[];

#endif /* DASHBOARD_H */
