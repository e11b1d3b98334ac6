/*
 * addr.c: parse, format and compare socket addresses (pure functions).
 *
 * Listeners are IPv6: "[IPV6]:PORT", brackets required.  Upstreams are
 * IPv4: "A.B.C.D:PORT", "HOST:PORT", or an IPv4-mapped IPv6 address
 * "[::ffff:A.B.C.D]:PORT", which means that IPv4 address.  Client networks
 * (allow, deny) are CIDRs without brackets, IPv6 or IPv4: "2001:db8::/32",
 * "192.0.2.0/24"; an IPv4-mapped client is matched as the IPv4 address it
 * carries.
 */
#include "config.h"

#include <arpa/inet.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"

/* Longer input than this cannot be a valid address and is refused whole. */
#define ADDR_INPUTMAX	(ADDR_HOSTMAX + 8)

const char *
addr_parse_port(const char *s, int allow_zero, uint16_t *port)
{
	unsigned long	v = 0;
	const char	*p;

	if (*s == '\0')
		return "missing port";
	for (p = s; *p != '\0'; p++) {
		if (!isdigit((unsigned char)*p))
			return "port is not a number";
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > 65535)
			return allow_zero ? "port out of range (0-65535)" :
			    "port out of range (1-65535)";
	}
	if (v == 0 && !allow_zero)
		return "port out of range (1-65535)";
	*port = (uint16_t)v;
	return NULL;
}

/*
 * Split "[HOST]:PORT" or "HOST:PORT" at the port colon.  Copies the host
 * part (without brackets) into host[hostlen] and points *port at the port
 * text.  *bracketed tells which form it was.
 */
static const char *
addr_split(const char *s, char *host, size_t hostlen, const char **port,
    int *bracketed)
{
	const char	*end, *colon;
	size_t		 n;

	if (strlen(s) > ADDR_INPUTMAX)
		return "too long";
	if (*s == '[') {
		if ((end = strchr(s, ']')) == NULL)
			return "missing ']'";
		if (end[1] != ':')
			return "missing ':PORT' after ']'";
		n = (size_t)(end - s - 1);
		*port = end + 2;
		*bracketed = 1;
		s++;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return "missing ':PORT'";
		if (memchr(s, ':', (size_t)(colon - s)) != NULL)
			return "IPv6 addresses need brackets: [ADDRESS]:PORT";
		n = (size_t)(colon - s);
		*port = colon + 1;
		*bracketed = 0;
	}
	if (n == 0)
		return "missing address";
	if (n >= hostlen)
		return "address too long";
	memcpy(host, s, n);
	host[n] = '\0';
	return NULL;
}

const char *
addr_parse_listen(const char *s, struct sockaddr_in6 *sin6)
{
	char		 host[ADDR_INPUTMAX + 1];
	const char	*port, *err;
	int		 bracketed;
	uint16_t	 p;

	if ((err = addr_split(s, host, sizeof(host), &port, &bracketed)))
		return err;
	if (!bracketed)
		return "not an IPv6 listen address: write [ADDRESS]:PORT, "
		    "e.g. [::]:80";
	memset(sin6, 0, sizeof(*sin6));
	sin6->sin6_family = AF_INET6;
	if (strchr(host, '%') != NULL)
		return "scoped (link-local %zone) addresses are not supported";
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
		return "not an IPv6 address";
	if ((err = addr_parse_port(port, 1, &p)))
		return err;
	sin6->sin6_port = htons(p);
	return NULL;
}

/*
 * A local address to bind, IPv6 or IPv4: "[IPV6]:PORT" as a listener, or
 * "IPV4:PORT"; no names.  *len is the size of what was parsed.
 */
const char *
addr_parse_local(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	char			 host[ADDR_INPUTMAX + 1];
	const char		*port, *err;
	int			 bracketed;
	uint16_t		 p;

	memset(ss, 0, sizeof(*ss));
	if ((err = addr_split(s, host, sizeof(host), &port, &bracketed)))
		return err;
	if (bracketed) {
		*len = sizeof(struct sockaddr_in6);
		return addr_parse_listen(s, (struct sockaddr_in6 *)ss);
	}
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return "not an IPv4 address or a bracketed IPv6 address";
	if ((err = addr_parse_port(port, 1, &p)))
		return err;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(p);
	*len = sizeof(*sin);
	return NULL;
}

/*
 * A host name per RFC 1123: dot-separated labels of letters, digits, '-'
 * and '_', 1-63 characters each, at most 253 in all, one optional root
 * dot at the end.  A last label of digits only is refused: that is a
 * mistyped IPv4 address ("10.0.0.300"), not a name.
 */
int
addr_is_hostname(const char *s)
{
	size_t		 len = strlen(s), i, label = 0;
	int		 digits = 1;

	if (len > 0 && s[len - 1] == '.')
		len--;			/* fully qualified "host." */
	if (len == 0 || len > ADDR_HOSTMAX)
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (label == 0)
				return 0;
			label = 0;
			digits = 1;
			continue;
		}
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return 0;
		if (!isdigit((unsigned char)s[i]))
			digits = 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 && !digits;
}

const char *
addr_parse_ipv4(const char *s, struct sockaddr_in *sin)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	if (strlen(s) > ADDR_INPUTMAX)
		return "too long";
	if (inet_pton(AF_INET, s, &sin->sin_addr) != 1)
		return "not an IPv4 address";
	return NULL;
}

const char *
addr_parse_upstream(const char *s, struct addr_upstream *au)
{
	char			 host[ADDR_INPUTMAX + 1];
	const char		*port, *err;
	struct sockaddr_in6	 sin6;
	int			 bracketed;
	uint16_t		 p;

	memset(au, 0, sizeof(*au));
	au->au_sin.sin_family = AF_INET;
	if ((err = addr_split(s, host, sizeof(host), &port, &bracketed)))
		return err;
	if (bracketed) {
		memset(&sin6, 0, sizeof(sin6));
		if (inet_pton(AF_INET6, host, &sin6.sin6_addr) != 1)
			return "not an IPv6 address";
		if (!addr_unmap(&sin6, &au->au_sin))
			return "an IPv6 upstream must be IPv4-mapped "
			    "([::ffff:A.B.C.D]:PORT): upstreams are IPv4";
	} else if (inet_pton(AF_INET, host, &au->au_sin.sin_addr) != 1) {
		if (!addr_is_hostname(host))
			return "not an IPv4 address or host name";
		memcpy(au->au_host, host, strlen(host) + 1);
	}
	if ((err = addr_parse_port(port, 0, &p)))
		return err;
	au->au_sin.sin_port = htons(p);
	return NULL;
}

/*
 * If sin6 holds an IPv4-mapped address (::ffff:a.b.c.d), store the IPv4
 * address and port in sin and return 1; otherwise return 0.
 */
int
addr_unmap(const struct sockaddr_in6 *sin6, struct sockaddr_in *sin)
{
	if (!IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
		return 0;
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = sin6->sin6_port;
	memcpy(&sin->sin_addr, &sin6->sin6_addr.s6_addr[12], 4);
	return 1;
}

/*
 * Format as "[IPV6]:PORT" or "A.B.C.D:PORT"; IPv4-mapped addresses are
 * shown as the IPv4 address they carry.  Returns buf.
 */
const char *
addr_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char			 a[INET6_ADDRSTRLEN];
	struct sockaddr_in	 sin;
	const struct sockaddr_in6 *sin6;

	if (sa->sa_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (addr_unmap(sin6, &sin))
			return addr_format((struct sockaddr *)&sin, buf, len);
		return addr_format_bind(sin6, buf, len);
	} else if (sa->sa_family == AF_INET) {
		memcpy(&sin, sa, sizeof(sin));
		inet_ntop(AF_INET, &sin.sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(sin.sin_port));
	} else
		snprintf(buf, len, "(family %d)", sa->sa_family);
	return buf;
}

/*
 * Format a listening address as a bind is written: "[IPV6]:PORT", an
 * IPv4-mapped one too ("[::ffff:a.b.c.d]:PORT"), so that what relay64
 * prints can be pasted back into a bind.  Returns buf.
 */
const char *
addr_format_bind(const struct sockaddr_in6 *sin6, char *buf, size_t len)
{
	char	a[INET6_ADDRSTRLEN];

	inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
	snprintf(buf, len, "[%s]:%u", a, ntohs(sin6->sin6_port));
	return buf;
}

/* Format an upstream as written: "HOST:PORT" or "A.B.C.D:PORT". */
const char *
addr_format_upstream(const struct addr_upstream *au, char *buf, size_t len)
{
	if (au->au_host[0] != '\0')
		snprintf(buf, len, "%s:%u", au->au_host,
		    ntohs(au->au_sin.sin_port));
	else
		addr_format((const struct sockaddr *)&au->au_sin, buf, len);
	return buf;
}

int
addr_equal6(const struct sockaddr_in6 *a, const struct sockaddr_in6 *b)
{
	return a->sin6_port == b->sin6_port &&
	    memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) == 0;
}

/* Is a the IPv4-mapped wildcard, ::ffff:0.0.0.0? */
static int
addr_v4any(const struct in6_addr *a)
{
	static const uint8_t	zero[4];

	return IN6_IS_ADDR_V4MAPPED(a) && memcmp(&a->s6_addr[12], zero, 4) == 0;
}

/*
 * Is a wildcard bind address, [::] or [::ffff:0.0.0.0]: one whose clients
 * each connected to an address of their own?
 */
int
addr_is_wildcard(const struct in6_addr *a)
{
	return IN6_IS_ADDR_UNSPECIFIED(a) || addr_v4any(a);
}

/* Link-local addresses are bound on one interface, named by the zone. */
static int
addr_zoned(const struct in6_addr *a)
{
	return IN6_IS_ADDR_LINKLOCAL(a) || IN6_IS_ADDR_MC_LINKLOCAL(a) ||
	    IN6_IS_ADDR_MC_NODELOCAL(a);
}

/*
 * Can two listeners with these binds never listen at once?  This is the
 * rule Linux applies to TCP sockets with SO_REUSEADDR (which lets no
 * socket share the port of one that listens).  On the same port (0 never
 * conflicts: the kernel picks a free port each time):
 *  - [::] on either side takes the port on every IPv6 address, whatever
 *    its v6only, and with v6only off on every IPv4 address too: only a
 *    v6only [::] and an IPv4-mapped bind ([::ffff:A.B.C.D]) coexist;
 *  - two IPv4-mapped binds compare as IPv4: the same address, or either
 *    one 0.0.0.0;
 *  - otherwise the same address conflicts, except a link-local address in
 *    two different zones (sin6_scope_id): each socket is then bound to its
 *    own interface.  Outside link-local scope the zone means nothing.
 * A mapped bind needs v6only off; its own v6only flag is not looked at.
 */
int
addr_binds_overlap(const struct sockaddr_in6 *a, int a_v6only,
    const struct sockaddr_in6 *b, int b_v6only)
{
	const struct in6_addr	*x = &a->sin6_addr, *y = &b->sin6_addr;
	int			 xm = IN6_IS_ADDR_V4MAPPED(x);
	int			 ym = IN6_IS_ADDR_V4MAPPED(y);

	if (a->sin6_port != b->sin6_port || a->sin6_port == 0)
		return 0;
	if (IN6_IS_ADDR_UNSPECIFIED(x))
		return !(a_v6only && ym);
	if (IN6_IS_ADDR_UNSPECIFIED(y))
		return !(b_v6only && xm);
	if (xm && ym)
		return memcmp(&x->s6_addr[12], &y->s6_addr[12], 4) == 0 ||
		    addr_v4any(x) || addr_v4any(y);
	if (!IN6_ARE_ADDR_EQUAL(x, y))
		return 0;
	return !(addr_zoned(x) && a->sin6_scope_id != 0 &&
	    b->sin6_scope_id != 0 && a->sin6_scope_id != b->sin6_scope_id);
}

/*
 * Which clients a listener bound to sin6 with v6only takes, in words, for
 * its start-up line and -C.
 */
const char *
addr_takes(const struct sockaddr_in6 *sin6, int v6only)
{
	const struct in6_addr	*a = &sin6->sin6_addr;

	if (IN6_IS_ADDR_UNSPECIFIED(a))
		return v6only ? "IPv6 clients only; IPv4 clients need their own "
		    "listener or v6only = false" : "IPv6 and IPv4 clients; IPv4 "
		    "ones appear as ::ffff:a.b.c.d to the socket and as "
		    "a.b.c.d in logs and PROXY headers";
	if (IN6_IS_ADDR_V4MAPPED(a))
		return addr_v4any(a) ? "IPv4 clients only" :
		    "IPv4 clients of this address only";
	return "IPv6 clients of this address only";
}

/* The address bytes of a CIDR, network order, and their number (4 or 16). */
static const uint8_t *
addr_cidr_bytes(const struct addr_cidr *ci, size_t *n)
{
	if (ci->ci_family == AF_INET) {
		*n = 4;
		return (const uint8_t *)&ci->ci_addr.v4;
	}
	*n = 16;
	return ci->ci_addr.v6.s6_addr;
}

/* Byte i of the netmask of a prefix length. */
static uint8_t
addr_maskbyte(unsigned prefix, size_t i)
{
	if (prefix >= 8 * (i + 1))
		return 0xff;
	if (prefix <= 8 * i)
		return 0;
	return (uint8_t)(0xff << (8 - (prefix - 8 * i)));
}

/*
 * "ADDRESS/PREFIX" or a bare "ADDRESS" (all of its bits: /128 or /32),
 * IPv6 or IPv4, without brackets.  An IPv4-mapped IPv6 prefix of 96 bits
 * or more (::ffff:192.0.2.0/120) becomes the IPv4 prefix it means
 * (192.0.2.0/24).  An address with bits set past the prefix is refused
 * with ADDR_CIDR_HOSTBITS, and *ci then holds it as written (with its
 * prefix), for addr_cidr_hostbits() to explain.
 */
const char *
addr_parse_cidr(const char *s, struct addr_cidr *ci)
{
	char		 host[INET6_ADDRSTRLEN];
	const char	*slash, *p;
	const uint8_t	*a;
	unsigned long	 prefix = 0, max;
	size_t		 n, i;
	struct in_addr	 v4;

	memset(ci, 0, sizeof(*ci));
	if (strlen(s) > ADDR_INPUTMAX)
		return "too long";
	if (*s == '\0')
		return "empty";
	if (*s == '[')
		return "no brackets here: write ADDRESS/PREFIX, e.g. 2001:db8::/32";
	slash = strchr(s, '/');
	n = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (n == 0)
		return "missing address before '/'";
	if (memchr(s, '%', n) != NULL)
		return "scoped (%zone) addresses are not supported";
	if (n >= sizeof(host))
		return "not an IPv6 or IPv4 address";
	memcpy(host, s, n);
	host[n] = '\0';
	if (inet_pton(AF_INET6, host, &ci->ci_addr.v6) == 1) {
		ci->ci_family = AF_INET6;
		max = 128;
	} else if (inet_pton(AF_INET, host, &ci->ci_addr.v4) == 1) {
		ci->ci_family = AF_INET;
		max = 32;
	} else
		return "not an IPv6 or IPv4 address";
	if (slash == NULL)
		prefix = max;
	else if (slash[1] == '\0')
		return "missing prefix length after '/'";
	p = slash != NULL ? slash + 1 : "";
	if (p[strspn(p, "0123456789")] != '\0')
		return strchr(p, '.') != NULL ? "a prefix length in bits, not a "
		    "netmask: write e.g. 192.0.2.0/24" :
		    "prefix length is not a number";
	for (; *p != '\0'; p++) {
		prefix = prefix * 10 + (unsigned long)(*p - '0');
		if (prefix > max)
			return max == 32 ? "prefix length out of range (0-32)" :
			    "prefix length out of range (0-128)";
	}
	if (ci->ci_family == AF_INET6 && prefix >= 96 &&
	    IN6_IS_ADDR_V4MAPPED(&ci->ci_addr.v6)) {
		memcpy(&v4, &ci->ci_addr.v6.s6_addr[12], sizeof(v4));
		memset(&ci->ci_addr, 0, sizeof(ci->ci_addr));
		ci->ci_addr.v4 = v4;
		ci->ci_family = AF_INET;
		prefix -= 96;
	}
	ci->ci_prefix = (uint8_t)prefix;
	a = addr_cidr_bytes(ci, &n);
	for (i = 0; i < n; i++)
		if ((a[i] & (uint8_t)~addr_maskbyte(ci->ci_prefix, i)) != 0)
			return ADDR_CIDR_HOSTBITS;
	return NULL;
}

/* "ADDRESS/PREFIX", always with the prefix.  Returns buf. */
const char *
addr_format_cidr(const struct addr_cidr *ci, char *buf, size_t len)
{
	char	a[INET6_ADDRSTRLEN];

	if ((ci->ci_family != AF_INET && ci->ci_family != AF_INET6) ||
	    inet_ntop(ci->ci_family, &ci->ci_addr, a, sizeof(a)) == NULL)
		snprintf(buf, len, "(family %d)", ci->ci_family);
	else
		snprintf(buf, len, "%s/%u", a, (unsigned)ci->ci_prefix);
	return buf;
}

/*
 * For an address with host bits set (as addr_parse_cidr() leaves it when
 * it says ADDR_CIDR_HOSTBITS): the network it lies in, into *net, and the
 * host bits alone as an address ("::1" for 2001:db8::1/32, "0.0.0.1" for
 * 192.0.2.1/24) into buf.  Returns buf.
 */
const char *
addr_cidr_hostbits(const struct addr_cidr *ci, struct addr_cidr *net,
    char *buf, size_t len)
{
	struct addr_cidr	 host = *ci;
	const uint8_t		*a;
	uint8_t			*h, *m;
	size_t			 n, i;

	*net = *ci;
	a = addr_cidr_bytes(ci, &n);
	h = (uint8_t *)&host.ci_addr;
	m = (uint8_t *)&net->ci_addr;
	for (i = 0; i < n; i++) {
		m[i] = a[i] & addr_maskbyte(ci->ci_prefix, i);
		h[i] = a[i] & (uint8_t)~addr_maskbyte(ci->ci_prefix, i);
	}
	if (inet_ntop(ci->ci_family, &host.ci_addr, buf, (socklen_t)len) ==
	    NULL && len > 0)
		buf[0] = '\0';
	return buf;
}

/* Does the network ci hold the address a (of ci's family)? */
static int
addr_cidr_has(const struct addr_cidr *ci, const uint8_t *a)
{
	const uint8_t	*net;
	size_t		 n, full;

	net = addr_cidr_bytes(ci, &n);
	if (ci->ci_prefix > 8 * n)
		return 0;
	full = ci->ci_prefix / 8;
	if (memcmp(net, a, full) != 0)
		return 0;
	return full == n ||
	    ((net[full] ^ a[full]) & addr_maskbyte(ci->ci_prefix, full)) == 0;
}

int
addr_cidr_match(const struct addr_cidr *list, size_t n,
    const struct sockaddr_in6 *client)
{
	const uint8_t	*a = client->sin6_addr.s6_addr;
	sa_family_t	 family = AF_INET6;
	size_t		 i;

	if (IN6_IS_ADDR_V4MAPPED(&client->sin6_addr)) {
		family = AF_INET;
		a += 12;
	}
	for (i = 0; i < n; i++)
		if (list[i].ci_family == family && addr_cidr_has(&list[i], a))
			return (int)i;
	return -1;
}

void
addr_source_key(const struct sockaddr_in6 *client, uint8_t key[16])
{
	memset(key, 0, 16);
	if (IN6_IS_ADDR_V4MAPPED(&client->sin6_addr)) {
		key[10] = 0xff;
		key[11] = 0xff;
		memcpy(key + 12, &client->sin6_addr.s6_addr[12], 4);
	} else
		memcpy(key, client->sin6_addr.s6_addr, 8);
}
