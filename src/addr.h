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

/* Longest "ADDRESS/PREFIX" text, with its NUL. */
#define ADDR_CIDRLEN	(INET6_ADDRSTRLEN + 4)

/*
 * A network: an IPv6 or IPv4 address and a prefix length, host bits zero.
 * An IPv4-mapped IPv6 prefix (::ffff:192.0.2.0/120) is held as the IPv4
 * prefix it means (192.0.2.0/24).
 */
struct addr_cidr {
	sa_family_t	ci_family;	/* AF_INET or AF_INET6 */
	uint8_t		ci_prefix;	/* 0-32 or 0-128 */
	union {
		struct in_addr	v4;
		struct in6_addr	v6;
	} ci_addr;			/* host bits zero */
};

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
const char	*addr_parse_local(const char *, struct sockaddr_storage *,
		    socklen_t *);
const char	*addr_takes(const struct sockaddr_in6 *, int v6only);
int		 addr_is_wildcard(const struct in6_addr *);
int		 addr_is_hostname(const char *);
const char	*addr_parse_cidr(const char *, struct addr_cidr *);

int		 addr_unmap(const struct sockaddr_in6 *, struct sockaddr_in *);
const char	*addr_format(const struct sockaddr *, char *, size_t);
const char	*addr_format_upstream(const struct addr_upstream *, char *, size_t);
const char	*addr_format_bind(const struct sockaddr_in6 *, char *, size_t);
int		 addr_equal6(const struct sockaddr_in6 *, const struct sockaddr_in6 *);
int		 addr_binds_overlap(const struct sockaddr_in6 *, int a_v6only,
		    const struct sockaddr_in6 *, int b_v6only);

/* What addr_parse_cidr() says of an address with host bits set. */
#define ADDR_CIDR_HOSTBITS	"host bits set past the prefix"

const char	*addr_format_cidr(const struct addr_cidr *, char *, size_t);
const char	*addr_cidr_hostbits(const struct addr_cidr *,
		    struct addr_cidr *net, char *, size_t);
/*
 * Index of the first entry of list[n] that contains the client, or -1.
 * An IPv4-mapped client (::ffff:a.b.c.d, as a dual-stack socket shows
 * IPv4 clients) is matched as the IPv4 address a.b.c.d against IPv4
 * entries, never against IPv6 ones.
 */
int		 addr_cidr_match(const struct addr_cidr *list, size_t n,
		    const struct sockaddr_in6 *client);
/*
 * The source key of a client for max-per-source: its /64 for IPv6, its
 * /32 for IPv4 (mapped clients unmapped), as 16 bytes (IPv4:
 * ::ffff:a.b.c.d).  The family is in the key: an IPv6 key ends in 8 zero
 * bytes, an IPv4 key does not (bytes 10 and 11 are 0xff), so keys of the
 * two families never collide.
 */
void		 addr_source_key(const struct sockaddr_in6 *client,
		    uint8_t key[16]);

#endif
