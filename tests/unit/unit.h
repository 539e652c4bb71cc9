/*
 * unit.h - helpers shared by the C unit tests: temp files and capturing
 * what the core logs to stderr.
 */
#ifndef UNIT_H
#define UNIT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Writes text to a new file in a fresh temp dir; returns its path. */
static inline char *
unit_write_file(const char *dir, const char *name, const char *text)
{
	static char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL)
		abort();
	fputs(text, f);
	fclose(f);
	return path;
}

static inline char *
unit_tmpdir(void)
{
	static char tmpl[64];

	snprintf(tmpl, sizeof(tmpl), "/tmp/salesd-unit-XXXXXX");
	if (mkdtemp(tmpl) == NULL)
		abort();
	return tmpl;
}

/* Sends stderr to a temp file until unit_capture_end() returns its text. */
static int	unit_saved_fd = -1;
static FILE	*unit_capture_file;

static inline void
unit_capture_begin(void)
{
	fflush(stderr);
	unit_capture_file = tmpfile();
	unit_saved_fd = dup(STDERR_FILENO);
	dup2(fileno(unit_capture_file), STDERR_FILENO);
}

static inline char *
unit_capture_end(void)
{
	static char text[16384];
	size_t n;

	fflush(stderr);
	dup2(unit_saved_fd, STDERR_FILENO);
	close(unit_saved_fd);
	rewind(unit_capture_file);
	n = fread(text, 1, sizeof(text) - 1, unit_capture_file);
	text[n] = '\0';
	fclose(unit_capture_file);
	fputs(text, stderr);	/* still shown when a test fails */
	return text;
}

#endif /* UNIT_H */
