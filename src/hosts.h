/*
 * hosts.h: looking a name up in the text of a hosts file (hosts(5)).
 *
 * Pure: the caller reads the file and hands its text in.  Only IPv4
 * addresses are returned (upstreams are IPv4); lines of other families
 * are skipped.
 */
#ifndef RELAY64_HOSTS_H
#define RELAY64_HOSTS_H

#include <netinet/in.h>
#include <stddef.h>

/*
 * The IPv4 addresses that text (len bytes, no NUL needed) gives name, in
 * the order of the file, each once, at most max of them; returns how many.
 * A line is "ADDRESS NAME [ALIAS...]", '#' starts a comment; names match
 * without regard to case, and a trailing dot on either side is ignored.
 * Every line that names it counts, as glibc's getaddrinfo() does.
 */
size_t	hosts_lookup(const char *text, size_t len, const char *name,
	    struct in_addr *out, size_t max);

#endif
