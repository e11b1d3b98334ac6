/*
 * fuzz_addr.c: the address parsers of src/addr.c.  The input, cut at its
 * first NUL, is given to each parser: addr_parse_listen, _upstream,
 * _ipv4, _port (with and without port 0) and _cidr.  What one accepts is
 * formatted, and the text parsed again must give the same value; a CIDR
 * must also match the addresses inside it and no address outside it, and
 * one refused for host bits must name a network that parses.  A second
 * line of the input is a second listen address, for addr_binds_overlap(),
 * which must not depend on the order of its two binds.
 */
#include "config.h"

#include <arpa/inet.h>

#include <string.h>

#include "addr.h"
#include "fuzz.h"

/* The longest input worth trying: every parser refuses longer ones. */
#define FUZZ_ADDR_MAX	1024

static void
fuzz_listen(const char *s, struct sockaddr_in6 *sin6, int *ok)
{
	struct sockaddr_in6	 back;
	char			 buf[ADDR_STRLEN], again[ADDR_STRLEN + 16], *colon;
	const char		*err;

	*ok = addr_parse_listen(s, sin6) == NULL;
	if (!*ok)
		return;
	FUZZ_CHECK(sin6->sin6_family == AF_INET6 && sin6->sin6_scope_id == 0,
	    "listen \"%s\": family or scope", s);
	addr_format((struct sockaddr *)sin6, buf, sizeof(buf));
	FUZZ_CHECK(strlen(buf) + 1 < sizeof(buf), "listen \"%s\": %s cut", s,
	    buf);
	/* A mapped bind is shown as the IPv4 address it carries. */
	if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		FUZZ_CHECK((colon = strrchr(buf, ':')) != NULL && buf[0] != '[',
		    "listen \"%s\": mapped shown as %s", s, buf);
		*colon = '\0';
		snprintf(again, sizeof(again), "[::ffff:%s]:%s", buf, colon + 1);
	} else
		snprintf(again, sizeof(again), "%s", buf);
	err = addr_parse_listen(again, &back);
	FUZZ_CHECK(err == NULL, "listen \"%s\": %s does not parse: %s", s,
	    again, err);
	FUZZ_CHECK(addr_equal6(sin6, &back) && back.sin6_scope_id == 0,
	    "listen \"%s\": %s parses differently", s, again);
}

static void
fuzz_upstream(const char *s)
{
	struct addr_upstream	 au, back;
	char			 buf[ADDR_HOSTMAX + 8];
	const char		*err;

	if (addr_parse_upstream(s, &au) != NULL)
		return;
	FUZZ_CHECK(au.au_sin.sin_family == AF_INET && au.au_sin.sin_port != 0,
	    "upstream \"%s\": family or port", s);
	FUZZ_CHECK(au.au_host[0] == '\0' || addr_is_hostname(au.au_host),
	    "upstream \"%s\": host %s", s, au.au_host);
	FUZZ_CHECK(au.au_host[0] == '\0' || au.au_sin.sin_addr.s_addr == 0,
	    "upstream \"%s\": a name with an address", s);
	addr_format_upstream(&au, buf, sizeof(buf));
	FUZZ_CHECK(strlen(buf) + 1 < sizeof(buf), "upstream \"%s\": %s cut", s,
	    buf);
	err = addr_parse_upstream(buf, &back);
	FUZZ_CHECK(err == NULL, "upstream \"%s\": %s does not parse: %s", s,
	    buf, err);
	FUZZ_CHECK(strcmp(au.au_host, back.au_host) == 0 &&
	    au.au_sin.sin_addr.s_addr == back.au_sin.sin_addr.s_addr &&
	    au.au_sin.sin_port == back.au_sin.sin_port,
	    "upstream \"%s\": %s parses differently", s, buf);
}

static void
fuzz_ipv4(const char *s)
{
	struct sockaddr_in	 sin, back;
	char			 buf[INET_ADDRSTRLEN];

	if (addr_parse_ipv4(s, &sin) != NULL)
		return;
	FUZZ_CHECK(sin.sin_family == AF_INET && sin.sin_port == 0,
	    "ipv4 \"%s\": family or port", s);
	FUZZ_CHECK(inet_ntop(AF_INET, &sin.sin_addr, buf, sizeof(buf)) != NULL,
	    "ipv4 \"%s\": inet_ntop", s);
	FUZZ_CHECK(addr_parse_ipv4(buf, &back) == NULL &&
	    back.sin_addr.s_addr == sin.sin_addr.s_addr,
	    "ipv4 \"%s\": %s parses differently", s, buf);
}

/* The port parser against a plain reading of its rule: digits only,
 * 1-65535, or 0-65535 with allow_zero. */
static void
fuzz_port(const char *s, int allow_zero)
{
	uint16_t	 port = 0, back = 0;
	unsigned long	 v = 0;
	const char	*p, *err;
	char		 buf[8];
	int		 want = *s != '\0';

	for (p = s; *p != '\0' && want; p++) {
		if (*p < '0' || *p > '9')
			want = 0;
		else if ((v = v * 10 + (unsigned long)(*p - '0')) > 65535)
			want = 0;
	}
	if (want && v == 0 && !allow_zero)
		want = 0;
	err = addr_parse_port(s, allow_zero, &port);
	FUZZ_CHECK((err == NULL) == want, "port \"%s\" (zero %s): %s", s,
	    allow_zero ? "allowed" : "refused", err ? err : "accepted");
	if (err != NULL)
		return;
	FUZZ_CHECK(port == v, "port \"%s\": %u", s, port);
	snprintf(buf, sizeof(buf), "%u", port);
	FUZZ_CHECK(addr_parse_port(buf, allow_zero, &back) == NULL &&
	    back == port, "port \"%s\": %s parses differently", s, buf);
}

/* A client socket address with the bytes of a CIDR's family. */
static void
fuzz_client(const struct addr_cidr *ci, const uint8_t *a,
    struct sockaddr_in6 *sin6)
{
	memset(sin6, 0, sizeof(*sin6));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(443);
	if (ci->ci_family == AF_INET) {
		sin6->sin6_addr.s6_addr[10] = 0xff;
		sin6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&sin6->sin6_addr.s6_addr[12], a, 4);
	} else
		memcpy(&sin6->sin6_addr, a, 16);
}

/*
 * Does a client with address bytes a (of the network's family) match
 * the network as it should?  An IPv6 network never holds an IPv4-mapped
 * client (::/80 ends in ::ffff:0:0/96): that client is IPv4.
 */
static void
fuzz_expect(const struct addr_cidr *ci, const uint8_t *a, int inside,
    const char *s, const char *what)
{
	struct sockaddr_in6	client;

	fuzz_client(ci, a, &client);
	if (ci->ci_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&client.sin6_addr))
		inside = 0;
	FUZZ_CHECK(addr_cidr_match(ci, 1, &client) == (inside ? 0 : -1),
	    "cidr \"%s\": %s %s", s, what, inside ? "does not match" :
	    "matches");
}

/* Matching: the network's first and last address are in it, its
 * neighbour across the last prefix bit is not, nor is any address of
 * the other family; and the source key of its first address. */
static void
fuzz_cidr_match(const struct addr_cidr *ci, const char *s)
{
	struct sockaddr_in6	 client;
	uint8_t			 a[16], key[16];
	size_t			 n = ci->ci_family == AF_INET ? 4 : 16, i;
	unsigned		 p = ci->ci_prefix;

	memcpy(a, &ci->ci_addr, n);
	fuzz_expect(ci, a, 1, s, "its first address");
	fuzz_client(ci, a, &client);
	addr_source_key(&client, key);
	if (ci->ci_family == AF_INET)
		FUZZ_CHECK(memcmp(key, &client.sin6_addr, 16) == 0,
		    "cidr \"%s\": IPv4 source key", s);
	else
		FUZZ_CHECK(memcmp(key, a, 8) == 0 &&
		    memcmp(key + 8, "\0\0\0\0\0\0\0\0", 8) == 0,
		    "cidr \"%s\": IPv6 source key", s);
	for (i = p; i < 8 * n; i++)
		a[i / 8] |= (uint8_t)(0x80 >> (i % 8));
	fuzz_expect(ci, a, 1, s, "its last address");
	if (p > 0) {
		a[(p - 1) / 8] ^= (uint8_t)(0x80 >> ((p - 1) % 8));
		fuzz_expect(ci, a, 0, s, "an address past its last prefix bit");
	}
	/* The other family: an IPv4-compatible client (::a.b.c.d) never
	 * matches an IPv4 network, an IPv4 (mapped) client never an IPv6
	 * one, not even ::/0. */
	memset(&client, 0, sizeof(client));
	client.sin6_family = AF_INET6;
	if (ci->ci_family == AF_INET)
		memcpy(&client.sin6_addr.s6_addr[12], &ci->ci_addr.v4, 4);
	else {
		client.sin6_addr.s6_addr[10] = 0xff;
		client.sin6_addr.s6_addr[11] = 0xff;
		memcpy(&client.sin6_addr.s6_addr[12], &ci->ci_addr.v6.s6_addr[12],
		    4);
	}
	FUZZ_CHECK(addr_cidr_match(ci, 1, &client) == -1,
	    "cidr \"%s\": a client of the other family matches", s);
}

static void
fuzz_cidr(const char *s)
{
	struct addr_cidr	 ci, back, net;
	char			 buf[ADDR_CIDRLEN], host[INET6_ADDRSTRLEN];
	const char		*err;
	size_t			 n, i;
	const uint8_t		*a;

	err = addr_parse_cidr(s, &ci);
	if (err != NULL && strcmp(err, ADDR_CIDR_HOSTBITS) == 0) {
		addr_cidr_hostbits(&ci, &net, host, sizeof(host));
		FUZZ_CHECK(host[0] != '\0', "cidr \"%s\": host bits", s);
		addr_format_cidr(&net, buf, sizeof(buf));
		FUZZ_CHECK(addr_parse_cidr(buf, &back) == NULL &&
		    memcmp(&back, &net, sizeof(net)) == 0,
		    "cidr \"%s\": its network %s does not parse back", s, buf);
		FUZZ_CHECK(memcmp(&net, &ci, sizeof(ci)) != 0,
		    "cidr \"%s\": host bits, yet its network is itself", s);
		return;
	}
	if (err != NULL)
		return;
	n = ci.ci_family == AF_INET ? 4 : 16;
	FUZZ_CHECK((ci.ci_family == AF_INET && ci.ci_prefix <= 32) ||
	    (ci.ci_family == AF_INET6 && ci.ci_prefix <= 128),
	    "cidr \"%s\": family %d prefix %u", s, ci.ci_family, ci.ci_prefix);
	FUZZ_CHECK(ci.ci_family == AF_INET ||
	    !IN6_IS_ADDR_V4MAPPED(&ci.ci_addr.v6),
	    "cidr \"%s\": an IPv4-mapped IPv6 network", s);
	a = (const uint8_t *)&ci.ci_addr;
	for (i = ci.ci_prefix; i < 8 * n; i++)
		FUZZ_CHECK((a[i / 8] & (0x80 >> (i % 8))) == 0,
		    "cidr \"%s\": host bit %zu set", s, i);
	for (i = n; i < sizeof(ci.ci_addr); i++)
		FUZZ_CHECK(a[i] == 0, "cidr \"%s\": bytes past IPv4", s);
	addr_format_cidr(&ci, buf, sizeof(buf));
	err = addr_parse_cidr(buf, &back);
	FUZZ_CHECK(err == NULL, "cidr \"%s\": %s does not parse: %s", s, buf,
	    err);
	FUZZ_CHECK(memcmp(&back, &ci, sizeof(ci)) == 0,
	    "cidr \"%s\": %s parses differently", s, buf);
	fuzz_cidr_match(&ci, s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char			 s[FUZZ_ADDR_MAX + 1], *nl;
	struct sockaddr_in6	 a, b;
	int			 aok, bok, x, y;

	if (size > FUZZ_ADDR_MAX)
		size = FUZZ_ADDR_MAX;
	memcpy(s, data, size);
	s[size] = '\0';
	if ((nl = strchr(s, '\n')) != NULL)
		*nl++ = '\0';
	fuzz_listen(s, &a, &aok);
	fuzz_upstream(s);
	fuzz_ipv4(s);
	fuzz_port(s, 0);
	fuzz_port(s, 1);
	fuzz_cidr(s);
	(void)addr_is_hostname(s);
	if (nl == NULL)
		return 0;
	fuzz_listen(nl, &b, &bok);
	if (aok && bok)
		for (x = 0; x < 2; x++)
			for (y = 0; y < 2; y++)
				FUZZ_CHECK(addr_binds_overlap(&a, x, &b, y) ==
				    addr_binds_overlap(&b, y, &a, x),
				    "binds \"%s\" v6only %d and \"%s\" v6only "
				    "%d: the order matters", s, x, nl, y);
	return 0;
}
