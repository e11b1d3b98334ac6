/*
 * hosts.c: looking a name up in the text of a hosts file (pure).
 */
#include "config.h"

#include <arpa/inet.h>

#include <string.h>
#include <strings.h>

#include "hosts.h"

/* Longest field worth looking at: a host name (RFC 1035) or an address. */
#define HOSTS_FIELDMAX	254

/* Does field f[n] name name?  Case and one trailing dot do not matter. */
static int
hosts_match(const char *f, size_t n, const char *name)
{
	size_t	m = strlen(name);

	if (n > 0 && f[n - 1] == '.')
		n--;
	if (m > 0 && name[m - 1] == '.')
		m--;
	return n == m && n > 0 && strncasecmp(f, name, n) == 0;
}

static int
hosts_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* The next blank-separated field of line[*pos..end), or 0 at its end. */
static size_t
hosts_field(const char *line, size_t end, size_t *pos, const char **f)
{
	size_t	i = *pos, start;

	while (i < end && hosts_blank(line[i]))
		i++;
	start = i;
	while (i < end && !hosts_blank(line[i]))
		i++;
	*pos = i;
	*f = line + start;
	return i - start;
}

/* One line, without its newline and comment: add its address if it fits. */
static size_t
hosts_line(const char *line, size_t end, const char *name,
    struct in_addr *out, size_t n, size_t max)
{
	char		 addr[HOSTS_FIELDMAX + 1];
	struct in_addr	 a;
	const char	*f;
	size_t		 pos = 0, len, i;

	if ((len = hosts_field(line, end, &pos, &f)) == 0 ||
	    len > HOSTS_FIELDMAX)
		return n;
	memcpy(addr, f, len);
	addr[len] = '\0';
	if (inet_pton(AF_INET, addr, &a) != 1)
		return n;		/* IPv6, or not an address */
	while ((len = hosts_field(line, end, &pos, &f)) != 0) {
		if (!hosts_match(f, len, name))
			continue;
		for (i = 0; i < n; i++)
			if (out[i].s_addr == a.s_addr)
				return n;
		if (n < max)
			out[n++] = a;
		return n;
	}
	return n;
}

size_t
hosts_lookup(const char *text, size_t len, const char *name,
    struct in_addr *out, size_t max)
{
	const char	*line = text, *nl, *hash;
	size_t		 n = 0, rest = len, end;

	while (rest > 0 && n < max) {
		nl = memchr(line, '\n', rest);
		end = nl != NULL ? (size_t)(nl - line) : rest;
		if ((hash = memchr(line, '#', end)) != NULL)
			end = (size_t)(hash - line);
		/* A NUL ends the line: what follows is no name. */
		if ((hash = memchr(line, '\0', end)) != NULL)
			end = (size_t)(hash - line);
		n = hosts_line(line, end, name, out, n, max);
		if (nl == NULL)
			break;
		rest -= (size_t)(nl - line) + 1;
		line = nl + 1;
	}
	return n;
}
