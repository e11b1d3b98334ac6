/*
 * addr.h: parsing, formatting and comparing socket addresses.
 *
 * Everything here is pure: no I/O, no name resolution, no global state.
 * Parsers return NULL on success, or a short static reason on failure
 * ("port out of range (1-65535)"), which the caller prefixes with what
 * and where.
 */
#ifndef RELAY64_ADDR_H
#define RELAY64_ADDR_H

#include <sys/socket.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stddef.h>

/* Longest "[ipv6]:port" text, with its NUL. */
#define ADDR_STRLEN	(INET6_ADDRSTRLEN + 8)
/* Longest host name accepted in an upstream (RFC 1035). */
#define ADDR_HOSTMAX	253

struct resolve_name;

/* An upstream as written: an IPv4 address, or a host name to resolve. */
struct addr_upstream {
	char			au_host[ADDR_HOSTMAX + 1]; /* name, "" when literal */
	struct sockaddr_in	au_sin;		/* address when literal; port always */
	struct resolve_name	*au_name;	/* the resolver's entry for au_host,
						   linked by its owner; NULL here */
};

const char	*addr_parse_port(const char *, int allow_zero, uint16_t *);
const char	*addr_parse_listen(const char *, struct sockaddr_in6 *);
const char	*addr_parse_upstream(const char *, struct addr_upstream *);
const char	*addr_parse_ipv4(const char *, struct sockaddr_in *);
int		 addr_is_hostname(const char *);

int		 addr_unmap(const struct sockaddr_in6 *, struct sockaddr_in *);
const char	*addr_format(const struct sockaddr *, char *, size_t);
const char	*addr_format_upstream(const struct addr_upstream *, char *, size_t);
int		 addr_equal6(const struct sockaddr_in6 *, const struct sockaddr_in6 *);
int		 addr_binds_overlap(const struct sockaddr_in6 *, int a_v6only,
		    const struct sockaddr_in6 *, int b_v6only);

#endif
