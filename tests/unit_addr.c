/*
 * unit_addr.c: address parsing and formatting (src/addr.c).
 */
#include "config.h"

#include <arpa/inet.h>

#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "unit.h"

static const char *
fmt(const struct sockaddr *sa)
{
	static char	buf[ADDR_STRLEN];

	return addr_format(sa, buf, sizeof(buf));
}

/* Parse a listen address; on success return its formatted form. */
static const char *
listen_rt(const char *in, const char **err)
{
	static struct sockaddr_in6	sin6;

	if ((*err = addr_parse_listen(in, &sin6)) != NULL)
		return NULL;
	return fmt((struct sockaddr *)&sin6);
}

static void
test_listen(void)
{
	static const struct {
		const char	*in, *out, *err;
	} cases[] = {
		{ "[::]:2000", "[::]:2000", NULL },
		{ "[::1]:0", "[::1]:0", NULL },
		{ "[::1]:1", "[::1]:1", NULL },
		{ "[2001:db8::1]:65535", "[2001:db8::1]:65535", NULL },
		{ "[2001:DB8:0:0::1]:80", "[2001:db8::1]:80", NULL },
		{ "[::1]:65536", NULL, "port out of range (0-65535)" },
		{ "[::1]:99999999999999999999", NULL,
		    "port out of range (0-65535)" },
		{ "[::1]:junk", NULL, "port is not a number" },
		{ "[::1]:-1", NULL, "port is not a number" },
		{ "[::1]:+80", NULL, "port is not a number" },
		{ "[::1]: 80", NULL, "port is not a number" },
		{ "[::1]:", NULL, "missing port" },
		{ "[::1]", NULL, "missing ':PORT' after ']'" },
		{ "[::1:80", NULL, "missing ']'" },
		{ "[]:80", NULL, "missing address" },
		{ "::1:80", NULL, "IPv6 addresses need brackets: [ADDRESS]:PORT" },
		{ "127.0.0.1:80", NULL, "not an IPv6 listen address: write "
		    "[ADDRESS]:PORT, e.g. [::]:80" },
		{ "[127.0.0.1]:80", NULL, "not an IPv6 address" },
		{ "[fe80::1%eth0]:80", NULL, "scoped (link-local %zone) "
		    "addresses are not supported" },
		{ "[::g]:80", NULL, "not an IPv6 address" },
		{ "", NULL, "missing ':PORT'" },
	};
	const char	*out, *err;
	size_t		 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		out = listen_rt(cases[i].in, &err);
		CHECK_STR(err, cases[i].err, "listen \"%s\" error", cases[i].in);
		CHECK_STR(out, cases[i].out, "listen \"%s\" value", cases[i].in);
	}
}

/* A bind prints as it is written, an IPv4-mapped one too; addr_format() unmaps. */
static void
test_format_bind(void)
{
	static const struct {
		const char	*in, *bind, *plain;
	} cases[] = {
		{ "[::]:2000", "[::]:2000", "[::]:2000" },
		{ "[::1]:0", "[::1]:0", "[::1]:0" },
		{ "[2001:DB8::1]:80", "[2001:db8::1]:80", "[2001:db8::1]:80" },
		{ "[::ffff:127.0.0.1]:80", "[::ffff:127.0.0.1]:80",
		    "127.0.0.1:80" },
		{ "[::ffff:0.0.0.0]:7", "[::ffff:0.0.0.0]:7", "0.0.0.0:7" },
	};
	struct sockaddr_in6	 sin6;
	char			 buf[ADDR_STRLEN];
	const char		*err;
	size_t			 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err = addr_parse_listen(cases[i].in, &sin6);
		CHECK(addr_is_wildcard(&sin6.sin6_addr) ==
		    (strncmp(cases[i].in, "[::]", 4) == 0 ||
		    strncmp(cases[i].in, "[::ffff:0.0.0.0]", 16) == 0),
		    "\"%s\": wildcard or not", cases[i].in);
		CHECK_STR(err, NULL, "listen \"%s\"", cases[i].in);
		CHECK_STR(addr_format_bind(&sin6, buf, sizeof(buf)),
		    cases[i].bind, "bind form of \"%s\"", cases[i].in);
		CHECK_STR(fmt((struct sockaddr *)&sin6), cases[i].plain,
		    "plain form of \"%s\"", cases[i].in);
		/* and the bind form parses back to the same address */
		CHECK_STR(listen_rt(buf, &err), cases[i].plain,
		    "\"%s\" parsed back", buf);
	}
}

static void
test_listen_overlong(void)
{
	char			 big[4096];
	struct sockaddr_in6	 sin6;

	memset(big, '1', sizeof(big) - 1);
	big[0] = '[';
	big[sizeof(big) - 1] = '\0';
	CHECK_STR(addr_parse_listen(big, &sin6), "too long", "4 KiB listen");
	CHECK_STR(addr_parse_upstream(big + 1,
	    &(struct addr_upstream){ .au_host = "" }), "too long",
	    "4 KiB upstream");
}

static void
test_upstream(void)
{
	static const struct {
		const char	*in, *host, *out, *err;
	} cases[] = {
		{ "192.0.2.1:2000", "", "192.0.2.1:2000", NULL },
		{ "127.0.0.1:1", "", "127.0.0.1:1", NULL },
		{ "127.0.0.1:65535", "", "127.0.0.1:65535", NULL },
		{ "[::ffff:192.0.2.7]:80", "", "192.0.2.7:80", NULL },
		{ "[::FFFF:c000:207]:80", "", "192.0.2.7:80", NULL },
		{ "localhost:80", "localhost", "localhost:80", NULL },
		{ "db-1.example.org:5432", "db-1.example.org",
		    "db-1.example.org:5432", NULL },
		{ "example.org.:80", "example.org.", "example.org.:80", NULL },
		{ "10.0.0.300:80", NULL, NULL,
		    "not an IPv4 address or host name" },
		{ "1.2.3:80", NULL, NULL, "not an IPv4 address or host name" },
		{ "01.2.3.4:80", NULL, NULL, "not an IPv4 address or host name" },
		{ "a..b:80", NULL, NULL, "not an IPv4 address or host name" },
		{ "-bad!:80", NULL, NULL, "not an IPv4 address or host name" },
		{ "127.0.0.1:0", NULL, NULL, "port out of range (1-65535)" },
		{ "127.0.0.1:65536", NULL, NULL, "port out of range (1-65535)" },
		{ "127.0.0.1:x", NULL, NULL, "port is not a number" },
		{ "127.0.0.1", NULL, NULL, "missing ':PORT'" },
		{ "[2001:db8::1]:80", NULL, NULL, "an IPv6 upstream must be "
		    "IPv4-mapped ([::ffff:A.B.C.D]:PORT): upstreams are IPv4" },
		{ "2001:db8::1:80", NULL, NULL,
		    "IPv6 addresses need brackets: [ADDRESS]:PORT" },
	};
	struct addr_upstream	 au;
	char			 buf[ADDR_HOSTMAX + 8];
	const char		*err;
	size_t			 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err = addr_parse_upstream(cases[i].in, &au);
		CHECK_STR(err, cases[i].err, "upstream \"%s\" error",
		    cases[i].in);
		if (err != NULL || cases[i].err != NULL)
			continue;
		CHECK_STR(au.au_host, cases[i].host, "upstream \"%s\" host",
		    cases[i].in);
		CHECK_STR(addr_format_upstream(&au, buf, sizeof(buf)),
		    cases[i].out, "upstream \"%s\" format", cases[i].in);
		CHECK(au.au_sin.sin_family == AF_INET, "upstream family");
	}
}

static void
test_hostname(void)
{
	char	name[300];

	CHECK(addr_is_hostname("a"), "single letter");
	CHECK(addr_is_hostname("host1"), "host1");
	CHECK(!addr_is_hostname(""), "empty");
	CHECK(!addr_is_hostname("."), "root dot alone");
	CHECK(!addr_is_hostname("1.2.3.4"), "digits last label");
	CHECK(addr_is_hostname("1.2.3.x4"), "alnum last label");
	memset(name, 'a', 63);
	name[63] = '\0';
	CHECK(addr_is_hostname(name), "63-letter label");
	memset(name, 'a', 64);
	name[64] = '\0';
	CHECK(!addr_is_hostname(name), "64-letter label");
	memset(name, 'a', 253);
	for (int i = 60; i < 253; i += 61)
		name[i] = '.';
	name[253] = '\0';
	CHECK(addr_is_hostname(name), "253 characters");
	name[253] = 'a';
	name[254] = '\0';
	CHECK(!addr_is_hostname(name), "254 characters");
}

static void
test_port(void)
{
	uint16_t	p = 7;

	CHECK_STR(addr_parse_port("0", 1, &p), NULL, "0 allowed");
	CHECK(p == 0, "0 parsed");
	CHECK_STR(addr_parse_port("0", 0, &p), "port out of range (1-65535)",
	    "0 refused");
	CHECK_STR(addr_parse_port("65535", 0, &p), NULL, "65535");
	CHECK(p == 65535, "65535 parsed");
	CHECK_STR(addr_parse_port("00080", 0, &p), NULL, "leading zeros");
	CHECK(p == 80, "00080 parsed");
	CHECK_STR(addr_parse_port("65536", 0, &p),
	    "port out of range (1-65535)", "65536");
	CHECK_STR(addr_parse_port("", 0, &p), "missing port", "empty");
	CHECK_STR(addr_parse_port("8o", 0, &p), "port is not a number", "8o");
}

static void
test_ipv4(void)
{
	struct sockaddr_in	sin;

	CHECK_STR(addr_parse_ipv4("192.0.2.1", &sin), NULL, "source");
	CHECK(sin.sin_port == 0 && sin.sin_family == AF_INET, "source port");
	CHECK_STR(addr_parse_ipv4("192.0.2.1:80", &sin),
	    "not an IPv4 address", "source with port");
	CHECK_STR(addr_parse_ipv4("::1", &sin), "not an IPv4 address",
	    "source IPv6");
}

static void
test_unmap_format(void)
{
	struct sockaddr_in6	sin6;
	struct sockaddr_in	sin;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(51234);
	inet_pton(AF_INET6, "::ffff:198.51.100.9", &sin6.sin6_addr);
	CHECK(addr_unmap(&sin6, &sin) == 1, "mapped unmaps");
	CHECK_STR(fmt((struct sockaddr *)&sin), "198.51.100.9:51234",
	    "unmapped");
	CHECK_STR(fmt((struct sockaddr *)&sin6), "198.51.100.9:51234",
	    "mapped formats as IPv4");
	inet_pton(AF_INET6, "2001:db8::9", &sin6.sin6_addr);
	CHECK(addr_unmap(&sin6, &sin) == 0, "plain IPv6 does not unmap");
	CHECK_STR(fmt((struct sockaddr *)&sin6), "[2001:db8::9]:51234",
	    "IPv6 format");
	inet_pton(AF_INET6, "::192.0.2.1", &sin6.sin6_addr);
	CHECK(addr_unmap(&sin6, &sin) == 0, "IPv4-compatible is not mapped");
}

static void
test_equal(void)
{
	struct sockaddr_in6	a, b;

	addr_parse_listen("[::1]:80", &a);
	addr_parse_listen("[0::1]:80", &b);
	CHECK(addr_equal6(&a, &b), "same address, two spellings");
	addr_parse_listen("[::1]:81", &b);
	CHECK(!addr_equal6(&a, &b), "different port");
	addr_parse_listen("[::]:80", &b);
	CHECK(!addr_equal6(&a, &b), "different address");
}

/* "ADDR" or "ADDR%N" (N: the zone as an interface index) and a port. */
static struct sockaddr_in6
sin6_of(const char *s, unsigned port)
{
	struct sockaddr_in6	 sin6;
	char			 host[INET6_ADDRSTRLEN + 16], *pct;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons((uint16_t)port);
	snprintf(host, sizeof(host), "%s", s);
	if ((pct = strchr(host, '%')) != NULL) {
		*pct = '\0';
		sin6.sin6_scope_id = (uint32_t)strtoul(pct + 1, NULL, 10);
	}
	if (inet_pton(AF_INET6, host, &sin6.sin6_addr) != 1)
		abort();
	return sin6;
}

/*
 * Each row was checked against Linux: two sockets with SO_REUSEADDR and
 * IPV6_V6ONLY as listener.c sets them, the first listening, then bind()
 * and listen() of the second; every row is tried both ways round.
 */
static void
test_binds_overlap(void)
{
	static const struct {
		const char	*a;
		int		 a_v6only;
		const char	*b;
		int		 b_v6only, want;
	} cases[] = {
		/* [::] takes the port on every IPv6 address, whatever v6only */
		{ "::", 1, "::", 1, 1 },
		{ "::", 1, "::", 0, 1 },
		{ "::", 0, "::", 0, 1 },
		{ "::", 1, "::1", 1, 1 },
		{ "::", 1, "::1", 0, 1 },
		{ "::", 0, "::1", 1, 1 },
		{ "::", 0, "::1", 0, 1 },
		{ "::", 1, "2001:db8::1", 1, 1 },
		{ "::", 1, "fe80::1%2", 1, 1 },
		{ "::", 0, "fe80::1%2", 0, 1 },
		/* ... and on every IPv4 address only with v6only off */
		{ "::", 1, "::ffff:127.0.0.1", 0, 0 },
		{ "::", 1, "::ffff:0.0.0.0", 0, 0 },
		{ "::", 0, "::ffff:127.0.0.1", 0, 1 },
		{ "::", 0, "::ffff:0.0.0.0", 0, 1 },
		/* IPv4-mapped binds compare as IPv4 */
		{ "::ffff:0.0.0.0", 0, "::ffff:0.0.0.0", 0, 1 },
		{ "::ffff:0.0.0.0", 0, "::ffff:127.0.0.1", 0, 1 },
		{ "::ffff:127.0.0.1", 0, "::ffff:127.0.0.1", 0, 1 },
		{ "::ffff:127.0.0.1", 0, "::ffff:127.0.0.2", 0, 0 },
		{ "::ffff:0.0.0.0", 0, "::1", 0, 0 },
		{ "::ffff:0.0.0.0", 0, "2001:db8::1", 1, 0 },
		{ "::ffff:127.0.0.1", 0, "::1", 0, 0 },
		/* one address: the same one conflicts, whatever v6only */
		{ "::1", 1, "::1", 1, 1 },
		{ "::1", 1, "::1", 0, 1 },
		{ "::1", 0, "0:0::1", 0, 1 },
		{ "2001:db8::1", 1, "2001:db8::1", 0, 1 },
		{ "::1", 1, "2001:db8::1", 1, 0 },
		{ "::1", 0, "2001:db8::1", 0, 0 },
		{ "::1", 1, "fe80::1%2", 1, 0 },
		/* link-local: one zone is one interface */
		{ "fe80::1%2", 1, "fe80::1%2", 1, 1 },
		{ "fe80::1%2", 1, "fe80::1%2", 0, 1 },
		{ "fe80::1%2", 1, "fe80::1%3", 1, 0 },
		{ "fe80::1%2", 0, "fe80::1%3", 0, 0 },
		{ "fe80::1%2", 1, "fe80::2%2", 1, 0 },
		/* outside link-local scope, a zone changes nothing */
		{ "2001:db8::1%3", 1, "2001:db8::1", 1, 1 },
		{ "2001:db8::1%3", 1, "2001:db8::1%2", 1, 1 },
	};
	struct sockaddr_in6	a, b;
	size_t			i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		a = sin6_of(cases[i].a, 8064);
		b = sin6_of(cases[i].b, 8064);
		CHECK(addr_binds_overlap(&a, cases[i].a_v6only, &b,
		    cases[i].b_v6only) == cases[i].want,
		    "[%s]:8064 v6only %d, [%s]:8064 v6only %d: %s",
		    cases[i].a, cases[i].a_v6only, cases[i].b,
		    cases[i].b_v6only, cases[i].want ? "overlap" : "coexist");
		CHECK(addr_binds_overlap(&b, cases[i].b_v6only, &a,
		    cases[i].a_v6only) == cases[i].want,
		    "[%s]:8064 v6only %d, [%s]:8064 v6only %d: %s",
		    cases[i].b, cases[i].b_v6only, cases[i].a,
		    cases[i].a_v6only, cases[i].want ? "overlap" : "coexist");
	}
	/* Port 0 never conflicts (the kernel picks a free port), nor do
	 * two ports. */
	a = sin6_of("::", 0);
	b = sin6_of("::", 0);
	CHECK(!addr_binds_overlap(&a, 0, &b, 0), "[::]:0 twice: coexist");
	a = sin6_of("::1", 0);
	b = sin6_of("::1", 0);
	CHECK(!addr_binds_overlap(&a, 1, &b, 1), "[::1]:0 twice: coexist");
	a = sin6_of("::", 8064);
	b = sin6_of("::1", 8065);
	CHECK(!addr_binds_overlap(&a, 0, &b, 0), "[::]:8064, [::1]:8065: "
	    "coexist");
}

/* Parse a CIDR; on success return its formatted form. */
static const char *
cidr_rt(const char *in, const char **err)
{
	static char		buf[ADDR_CIDRLEN];
	struct addr_cidr	ci;

	if ((*err = addr_parse_cidr(in, &ci)) != NULL)
		return NULL;
	return addr_format_cidr(&ci, buf, sizeof(buf));
}

static void
test_cidr_parse(void)
{
	static const struct {
		const char	*in, *out, *err;
	} cases[] = {
		{ "2001:db8::/32", "2001:db8::/32", NULL },
		{ "2001:DB8:0::/48", "2001:db8::/48", NULL },
		{ "2001:db8::1", "2001:db8::1/128", NULL },
		{ "2001:db8::1/128", "2001:db8::1/128", NULL },
		{ "::/0", "::/0", NULL },
		{ "::", "::/128", NULL },
		{ "fe80::/10", "fe80::/10", NULL },
		{ "192.0.2.0/24", "192.0.2.0/24", NULL },
		{ "192.0.2.7", "192.0.2.7/32", NULL },
		{ "0.0.0.0/0", "0.0.0.0/0", NULL },
		{ "10.0.0.0/8", "10.0.0.0/8", NULL },
		{ "192.0.2.128/25", "192.0.2.128/25", NULL },
		{ "192.0.2.0/024", "192.0.2.0/24", NULL },
		/* IPv4-mapped prefixes are the IPv4 prefixes they mean */
		{ "::ffff:192.0.2.0/120", "192.0.2.0/24", NULL },
		{ "::ffff:192.0.2.9", "192.0.2.9/32", NULL },
		{ "::FFFF:c000:200/119", "192.0.2.0/23", NULL },
		{ "::ffff:0.0.0.0/96", "0.0.0.0/0", NULL },
		/* ... but not IPv4-compatible ones, nor the /96 around them */
		{ "::192.0.2.0/120", "::192.0.2.0/120", NULL },
		{ "::/96", "::/96", NULL },
		/* host bits */
		{ "2001:db8::1/32", NULL, ADDR_CIDR_HOSTBITS },
		{ "2001:db8:8000::/32", NULL, ADDR_CIDR_HOSTBITS },
		{ "192.0.2.1/24", NULL, ADDR_CIDR_HOSTBITS },
		{ "192.0.2.128/24", NULL, ADDR_CIDR_HOSTBITS },
		{ "0.0.0.1/0", NULL, ADDR_CIDR_HOSTBITS },
		{ "::1/0", NULL, ADDR_CIDR_HOSTBITS },
		{ "::ffff:192.0.2.1/120", NULL, ADDR_CIDR_HOSTBITS },
		{ "::ffff:0:0/95", NULL, ADDR_CIDR_HOSTBITS },
		/* prefix length */
		{ "2001:db8::/129", NULL, "prefix length out of range (0-128)" },
		{ "::ffff:192.0.2.0/129", NULL,
		    "prefix length out of range (0-128)" },
		{ "192.0.2.0/33", NULL, "prefix length out of range (0-32)" },
		{ "192.0.2.0/99999999999999999999", NULL,
		    "prefix length out of range (0-32)" },
		{ "192.0.2.0/", NULL, "missing prefix length after '/'" },
		{ "192.0.2.0/-1", NULL, "prefix length is not a number" },
		{ "192.0.2.0/+8", NULL, "prefix length is not a number" },
		{ "192.0.2.0/ 24", NULL, "prefix length is not a number" },
		{ "192.0.2.0/24/8", NULL, "prefix length is not a number" },
		{ "192.0.2.0/0x18", NULL, "prefix length is not a number" },
		/* addresses */
		{ "", NULL, "empty" },
		{ "/24", NULL, "missing address before '/'" },
		{ "[2001:db8::]/32", NULL, "no brackets here: write "
		    "ADDRESS/PREFIX, e.g. 2001:db8::/32" },
		{ "fe80::1%eth0/128", NULL,
		    "scoped (%zone) addresses are not supported" },
		{ "192.0.2.0/255.255.255.0", NULL, "a prefix length in bits, "
		    "not a netmask: write e.g. 192.0.2.0/24" },
		{ "192.0.2.0/24.", NULL, "a prefix length in bits, "
		    "not a netmask: write e.g. 192.0.2.0/24" },
		{ "192.0.2/24", NULL, "not an IPv6 or IPv4 address" },
		{ "192.0.2.300/32", NULL, "not an IPv6 or IPv4 address" },
		{ "01.2.3.4", NULL, "not an IPv6 or IPv4 address" },
		{ " 192.0.2.0/24", NULL, "not an IPv6 or IPv4 address" },
		{ "2001:db8:::/48", NULL, "not an IPv6 or IPv4 address" },
		{ "example.org/24", NULL, "not an IPv6 or IPv4 address" },
		{ "1111:2222:3333:4444:5555:6666:7777:8888:9999/8", NULL,
		    "not an IPv6 or IPv4 address" },
		{ "0000:0000:0000:0000:0000:ffff:192.168.100.200/128",
		    "192.168.100.200/32", NULL },
		{ "00000:0000:0000:0000:0000:ffff:192.168.100.200/128",
		    NULL, "not an IPv6 or IPv4 address" },
	};
	const char	*out, *err;
	size_t		 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		out = cidr_rt(cases[i].in, &err);
		CHECK_STR(err, cases[i].err, "cidr \"%s\" error", cases[i].in);
		CHECK_STR(out, cases[i].out, "cidr \"%s\" value", cases[i].in);
	}
}

static void
test_cidr_overlong(void)
{
	char			big[4096];
	struct addr_cidr	ci;

	memset(big, '1', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_STR(addr_parse_cidr(big, &ci), "too long", "4 KiB cidr");
	memset(big, '0', 100);
	memcpy(big + 100, "/8", 3);
	CHECK_STR(addr_parse_cidr(big, &ci), "not an IPv6 or IPv4 address",
	    "100 zeros");
}

static void
test_cidr_hostbits(void)
{
	static const struct {
		const char	*in, *host, *net;
	} cases[] = {
		{ "2001:db8::1/32", "::1", "2001:db8::/32" },
		{ "2001:db8:ff00::1/40", "::1", "2001:db8:ff00::/40" },
		{ "2001:db8:ffff::1/40", "0:0:ff::1", "2001:db8:ff00::/40" },
		{ "192.0.2.1/24", "0.0.0.1", "192.0.2.0/24" },
		{ "192.0.2.255/25", "0.0.0.127", "192.0.2.128/25" },
		{ "255.255.255.255/0", "255.255.255.255", "0.0.0.0/0" },
		{ "::ffff:192.0.2.1/120", "0.0.0.1", "192.0.2.0/24" },
		{ "::ffff:192.0.2.1/80", "::ffff:192.0.2.1", "::/80" },
	};
	struct addr_cidr	ci, net, back;
	char			host[INET6_ADDRSTRLEN], buf[ADDR_CIDRLEN];
	size_t			i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_STR(addr_parse_cidr(cases[i].in, &ci), ADDR_CIDR_HOSTBITS,
		    "cidr \"%s\" has host bits", cases[i].in);
		CHECK_STR(addr_cidr_hostbits(&ci, &net, host, sizeof(host)),
		    cases[i].host, "cidr \"%s\" host bits", cases[i].in);
		CHECK_STR(addr_format_cidr(&net, buf, sizeof(buf)),
		    cases[i].net, "cidr \"%s\" network", cases[i].in);
		CHECK_STR(addr_parse_cidr(buf, &back), NULL,
		    "cidr \"%s\": its network parses", cases[i].in);
	}
}

static void
test_cidr_match(void)
{
	static const char *const list[] = {
		"2001:db8::/32",		/* 0 */
		"192.0.2.0/24",			/* 1 */
		"2001:db8:bad::/48",		/* 2: inside 0 */
		"198.51.100.7",			/* 3 */
		"::ffff:203.0.113.0/120",	/* 4: IPv4 203.0.113.0/24 */
		"10.0.0.0/9",			/* 5 */
		"2001:db9:8000::/33",		/* 6 */
		"::/96",			/* 7 */
	};
	static const struct {
		const char	*client;
		int		 want;
	} cases[] = {
		{ "2001:db8::1", 0 },
		{ "2001:db8:bad::1", 0 },	/* the first entry wins */
		{ "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 0 },
		{ "2001:db9::1", -1 },
		{ "2001:db7:ffff::1", -1 },
		{ "::ffff:192.0.2.1", 1 },
		{ "::ffff:192.0.2.255", 1 },
		{ "::ffff:192.0.3.0", -1 },
		{ "::ffff:198.51.100.7", 3 },
		{ "::ffff:198.51.100.8", -1 },
		{ "::ffff:203.0.113.77", 4 },
		{ "::ffff:10.127.255.255", 5 },
		{ "::ffff:10.128.0.0", -1 },
		{ "2001:db9:8000::1", 6 },
		{ "2001:db9:7fff::1", -1 },
		/* ::/96 is IPv6: it holds IPv4-compatible addresses, never
		 * an IPv4 client */
		{ "::192.0.2.1", 7 },
		{ "::ffff:192.0.2.1", 1 },
		{ "::ffff:1.2.3.4", -1 },
		/* IPv4 entries never match an IPv6 client with the same
		 * bytes at its end, nor IPv4-compatible ones */
		{ "::c000:201", 7 },
		{ "64:ff9b::192.0.2.1", -1 },
	};
	struct addr_cidr	cidrs[sizeof(list) / sizeof(list[0])];
	struct sockaddr_in6	client;
	size_t			i, n = sizeof(list) / sizeof(list[0]);

	for (i = 0; i < n; i++)
		CHECK_STR(addr_parse_cidr(list[i], &cidrs[i]), NULL,
		    "list entry %s", list[i]);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		client = sin6_of(cases[i].client, 443);
		CHECK(addr_cidr_match(cidrs, n, &client) == cases[i].want,
		    "client %s: entry %d, want %d", cases[i].client,
		    addr_cidr_match(cidrs, n, &client), cases[i].want);
	}
	client = sin6_of("2001:db8::1", 443);
	CHECK(addr_cidr_match(cidrs, 0, &client) == -1, "empty list");
	CHECK(addr_cidr_match(NULL, 0, &client) == -1, "NULL list");

	/* /0 of each family holds all of that family, none of the other */
	CHECK_STR(addr_parse_cidr("::/0", &cidrs[0]), NULL, "::/0");
	CHECK_STR(addr_parse_cidr("0.0.0.0/0", &cidrs[1]), NULL, "0.0.0.0/0");
	client = sin6_of("2001:db8::1", 443);
	CHECK(addr_cidr_match(&cidrs[0], 1, &client) == 0, "::/0, IPv6");
	CHECK(addr_cidr_match(&cidrs[1], 1, &client) == -1, "0/0, IPv6");
	client = sin6_of("::ffff:192.0.2.1", 443);
	CHECK(addr_cidr_match(&cidrs[0], 1, &client) == -1, "::/0, IPv4");
	CHECK(addr_cidr_match(&cidrs[1], 1, &client) == 0, "0/0, IPv4");
	CHECK(addr_cidr_match(cidrs, 2, &client) == 1, "both, IPv4");
}

static void
test_source_key(void)
{
	static const struct {
		const char	*a, *b;
		int		 same;
	} cases[] = {
		{ "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", 1 },
		{ "2001:db8:1:2::1", "2001:db8:1:3::1", 0 },
		{ "::ffff:192.0.2.1", "::ffff:192.0.2.1", 1 },
		{ "::ffff:192.0.2.1", "::ffff:192.0.2.2", 0 },
		/* IPv4 clients never share a key with IPv6 ones */
		{ "::ffff:0.0.0.0", "::", 0 },
		{ "::ffff:192.0.2.1", "::192.0.2.1", 0 },
		{ "::ffff:192.0.2.1", "::ffff:0:c000:201", 0 },
	};
	static const uint8_t	v4key[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff, 192, 0, 2, 1 };
	static const uint8_t	v6key[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1,
	    0, 2 };
	struct sockaddr_in6	a, b;
	uint8_t			ka[16], kb[16];
	size_t			i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		a = sin6_of(cases[i].a, 1000);
		b = sin6_of(cases[i].b, 2000);
		memset(ka, 0xaa, sizeof(ka));
		memset(kb, 0x55, sizeof(kb));
		addr_source_key(&a, ka);
		addr_source_key(&b, kb);
		CHECK((memcmp(ka, kb, 16) == 0) == cases[i].same,
		    "source keys of %s and %s: %s", cases[i].a, cases[i].b,
		    cases[i].same ? "the same" : "different");
	}
	a = sin6_of("::ffff:192.0.2.1", 1);
	addr_source_key(&a, ka);
	CHECK(memcmp(ka, v4key, 16) == 0, "IPv4 key is ::ffff:192.0.2.1");
	a = sin6_of("2001:db8:1:2:3:4:5:6", 1);
	addr_source_key(&a, ka);
	CHECK(memcmp(ka, v6key, 16) == 0, "IPv6 key is 2001:db8:1:2::");
}

int
main(void)
{
	test_listen();
	test_listen_overlong();
	test_format_bind();
	test_upstream();
	test_hostname();
	test_port();
	test_ipv4();
	test_unmap_format();
	test_equal();
	test_binds_overlap();
	test_cidr_parse();
	test_cidr_overlong();
	test_cidr_hostbits();
	test_cidr_match();
	test_source_key();
	return unit_result();
}
