/*
 * unit_hosts.c: looking names up in the text of a hosts file (src/hosts.c).
 */
#include "config.h"

#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>

#include "hosts.h"
#include "unit.h"

/* The addresses text gives name, as "a, b" ("" for none); max of them. */
static const char *
look(const char *text, const char *name, size_t max)
{
	static char	buf[512];
	struct in_addr	a[8];
	size_t		n, i, off = 0;

	n = hosts_lookup(text, strlen(text), name, a, max);
	buf[0] = '\0';
	for (i = 0; i < n && off < sizeof(buf) - 20; i++) {
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s",
		    i ? ", " : "");
		inet_ntop(AF_INET, &a[i], buf + off, (socklen_t)(sizeof(buf) -
		    off));
		off = strlen(buf);
	}
	return buf;
}

static const char debian[] =
    "127.0.0.1\tlocalhost\n"
    "127.0.1.1\tbuild.example.org\tbuild\n"
    "\n"
    "# The following lines are desirable for IPv6 capable hosts\n"
    "::1     localhost ip6-localhost ip6-loopback\n"
    "ff02::1 ip6-allnodes\n"
    "ff02::2 ip6-allrouters\n";

static void
test_debian(void)
{
	CHECK_STR(look(debian, "localhost", 8), "127.0.0.1",
	    "localhost: the IPv4 line, the IPv6 one skipped");
	CHECK_STR(look(debian, "LocalHost", 8), "127.0.0.1",
	    "names match without regard to case");
	CHECK_STR(look(debian, "localhost.", 8), "127.0.0.1",
	    "a trailing dot on the name asked");
	CHECK_STR(look(debian, "build", 8), "127.0.1.1", "an alias");
	CHECK_STR(look(debian, "build.example.org", 8), "127.0.1.1",
	    "the canonical name");
	CHECK_STR(look(debian, "ip6-localhost", 8), "",
	    "a name with IPv6 lines only: no IPv4 address");
	CHECK_STR(look(debian, "example.org", 8), "", "no partial match");
	CHECK_STR(look(debian, "buil", 8), "", "no prefix match");
	CHECK_STR(look(debian, "", 8), "", "the empty name matches nothing");
	CHECK_STR(look(debian, ".", 8), "", "nor does a lone dot");
}

static void
test_lines(void)
{
	static const char multi[] =
	    "192.0.2.7 db.example.net db\n"
	    "192.0.2.8   DB.example.net.  # a second line for the name\n"
	    "192.0.2.7 db.example.net\n"
	    "192.0.2.9 other\n"
	    "192.0.2.10 db.example.net";		/* no final newline */
	static const char odd[] =
	    "  \t 192.0.2.1 \t spaced  \r\n"
	    "#192.0.2.2 spaced\n"
	    "192.0.2.3#spaced\n"
	    "192.0.2.4 # spaced\n"
	    "192.0.2.300 spaced\n"
	    "spaced 192.0.2.5\n"
	    "192.0.2.6\n"
	    "192.0.2.11 spaced\r\n";

	CHECK_STR(look(multi, "db.example.net", 8),
	    "192.0.2.7, 192.0.2.8, 192.0.2.10",
	    "every line counts, in file order, each address once");
	CHECK_STR(look(multi, "db.example.net", 2), "192.0.2.7, 192.0.2.8",
	    "at most max addresses");
	CHECK_STR(look(multi, "db", 8), "192.0.2.7", "an alias on one line");
	CHECK_STR(look(odd, "spaced", 8), "192.0.2.1, 192.0.2.11",
	    "blanks, CR, comments, bad addresses, a name as the address");
	CHECK_STR(look("", "localhost", 8), "", "an empty file");
	CHECK_STR(look("\n\n#\n", "localhost", 8), "", "only blank lines");
}

static void
test_nul(void)
{
	static const char text[] = "192.0.2.1 a\0b\n192.0.2.2 b\n";
	struct in_addr	a[4];
	size_t		n;

	n = hosts_lookup(text, sizeof(text) - 1, "b", a, 4);
	CHECK(n == 1 && a[0].s_addr == htonl(0xc0000202),
	    "a NUL ends its line: \"b\" after it is no name (got %zu)", n);
	n = hosts_lookup(text, sizeof(text) - 1, "a", a, 4);
	CHECK(n == 1 && a[0].s_addr == htonl(0xc0000201),
	    "the name before the NUL counts (got %zu)", n);
	n = hosts_lookup(text, 12, "b", a, 4);
	CHECK(n == 0, "len bounds the text, not a NUL (got %zu)", n);
}

int
main(void)
{
	test_debian();
	test_lines();
	test_nul();
	return unit_result();
}
