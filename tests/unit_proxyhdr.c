/*
 * unit_proxyhdr.c: PROXY protocol encoders (src/proxyhdr.c) against
 * golden bytes written by hand from HAProxy's proxy-protocol.txt.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string.h>

#include "proxyhdr.h"
#include "unit.h"

static struct sockaddr_in6
v6(const char *a, uint16_t port)
{
	struct sockaddr_in6	sin6;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(port);
	inet_pton(AF_INET6, a, &sin6.sin6_addr);
	return sin6;
}

static struct sockaddr_in
v4(const char *a, uint16_t port)
{
	struct sockaddr_in	sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	inet_pton(AF_INET, a, &sin.sin_addr);
	return sin;
}

#define SA(x)	((const struct sockaddr *)&(x))

static void
check_v1(const struct sockaddr *s, const struct sockaddr *d, const char *want,
    const char *what)
{
	char	buf[PROXYHDR_V1_MAX + 1];
	size_t	n;

	memset(buf, 'X', sizeof(buf));
	n = proxyhdr_v1(s, d, buf, sizeof(buf));
	CHECK(n == strlen(want), "%s: length %zu, want %zu", what, n,
	    strlen(want));
	CHECK(n == strlen(want) && memcmp(buf, want, n) == 0,
	    "%s: got \"%.*s\"", what, (int)n, buf);
}

static void
test_v1(void)
{
	struct sockaddr_in6	s6 = v6("2001:db8::1", 51234);
	struct sockaddr_in6	d6 = v6("2001:db8::2", 443);
	struct sockaddr_in6	sm = v6("::ffff:192.0.2.1", 1);
	struct sockaddr_in6	dm = v6("::ffff:192.0.2.2", 65535);
	struct sockaddr_in6	z6 = v6("::1", 0);
	struct sockaddr_in6	fs = v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	    65535);
	struct sockaddr_in	s4 = v4("198.51.100.7", 40000);
	struct sockaddr_in	d4 = v4("203.0.113.9", 25);
	char			small[20];

	check_v1(SA(s6), SA(d6),
	    "PROXY TCP6 2001:db8::1 2001:db8::2 51234 443\r\n", "v1 IPv6");
	check_v1(SA(d6), SA(s6),
	    "PROXY TCP6 2001:db8::2 2001:db8::1 443 51234\r\n",
	    "v1 IPv6 reversed");
	check_v1(SA(sm), SA(dm),
	    "PROXY TCP4 192.0.2.1 192.0.2.2 1 65535\r\n", "v1 mapped");
	check_v1(SA(s4), SA(d4),
	    "PROXY TCP4 198.51.100.7 203.0.113.9 40000 25\r\n", "v1 IPv4");
	check_v1(SA(z6), SA(z6), "PROXY TCP6 ::1 ::1 0 0\r\n", "v1 port 0");
	check_v1(SA(sm), SA(d6), "PROXY UNKNOWN\r\n", "v1 mixed families");
	check_v1(SA(fs), SA(fs),
	    "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
	    "v1 longest line");
	CHECK(proxyhdr_v1(SA(s6), SA(d6), small, sizeof(small)) == 0,
	    "v1 buffer too small gives 0");
}

static void
check_bytes(const uint8_t *got, size_t n, const uint8_t *want, size_t wn,
    const char *what)
{
	size_t	i;

	CHECK(n == wn, "%s: length %zu, want %zu", what, n, wn);
	for (i = 0; i < n && i < wn; i++)
		if (got[i] != want[i]) {
			CHECK(0, "%s: byte %zu is %02x, want %02x", what, i,
			    got[i], want[i]);
			return;
		}
}

#define SIG 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, \
	    0x54, 0x0a

static void
test_v2(void)
{
	static const uint8_t want4[] = {
		SIG, 0x21, 0x11, 0x00, 0x0c,
		192, 0, 2, 1,  192, 0, 2, 2,
		0xc8, 0x22,	/* 51234 */
		0x01, 0xbb,	/* 443 */
	};
	static const uint8_t want6[] = {
		SIG, 0x21, 0x21, 0x00, 0x24,
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,
		0x00, 0x01,	/* 1 */
		0xff, 0xff,	/* 65535 */
	};
	static const uint8_t want_unspec[] = {
		SIG, 0x21, 0x00, 0x00, 0x00,
	};
	static const uint8_t want_id[] = {
		SIG, 0x21, 0x11, 0x00, 0x1f,
		192, 0, 2, 1,  192, 0, 2, 2,
		0xc8, 0x22, 0x01, 0xbb,
		0x05, 0x00, 0x10,
		'0', '1', '2', '3', '4', '5', '6', '7',
		'8', '9', 'a', 'b', 'c', 'd', 'e', 'f',
	};
	struct sockaddr_in6	sm = v6("::ffff:192.0.2.1", 51234);
	struct sockaddr_in6	dm = v6("::ffff:192.0.2.2", 443);
	struct sockaddr_in	s4 = v4("192.0.2.1", 51234);
	struct sockaddr_in	d4 = v4("192.0.2.2", 443);
	struct sockaddr_in6	s6 = v6("2001:db8::1", 1);
	struct sockaddr_in6	d6 = v6("2001:db8::2", 65535);
	struct proxyhdr_tlvs	id = { PROXYHDR_TLV_UNIQUE_ID,
	    "0123456789abcdef", 16 };
	uint8_t			buf[PROXYHDR_MAX];
	size_t			n;

	n = proxyhdr_v2(SA(sm), SA(dm), NULL, buf, sizeof(buf));
	check_bytes(buf, n, want4, sizeof(want4), "v2 mapped -> TCP4");
	n = proxyhdr_v2(SA(s4), SA(d4), NULL, buf, sizeof(buf));
	check_bytes(buf, n, want4, sizeof(want4), "v2 IPv4");
	n = proxyhdr_v2(SA(s6), SA(d6), NULL, buf, sizeof(buf));
	check_bytes(buf, n, want6, sizeof(want6), "v2 IPv6");
	n = proxyhdr_v2(SA(sm), SA(d6), NULL, buf, sizeof(buf));
	check_bytes(buf, n, want_unspec, sizeof(want_unspec),
	    "v2 mixed families -> UNSPEC");
	n = proxyhdr_v2(SA(s4), SA(d4), &id, buf, sizeof(buf));
	check_bytes(buf, n, want_id, sizeof(want_id), "v2 unique id");
	CHECK(proxyhdr_v2(SA(s6), SA(d6), NULL, buf, sizeof(want6) - 1) == 0,
	    "v2 buffer one byte short gives 0");
	id.pt_unique_id_len = PROXYHDR_UNIQUE_ID_MAX + 1;
	CHECK(proxyhdr_v2(SA(s4), SA(d4), &id, buf, sizeof(buf)) == 0,
	    "v2 unique id over 128 bytes gives 0");
}

static void
test_crc32c(void)
{
	static const uint8_t want_crc[] = {
		SIG, 0x21, 0x21, 0x00, 0x2b,
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,
		0x00, 0x01, 0xff, 0xff,
		0x03, 0x00, 0x04,
	};
	struct sockaddr_in6	s6 = v6("2001:db8::1", 1);
	struct sockaddr_in6	d6 = v6("2001:db8::2", 65535);
	struct proxyhdr_tlvs	crc = { PROXYHDR_TLV_CRC32C, NULL, 0 };
	uint8_t			buf[PROXYHDR_MAX], copy[PROXYHDR_MAX];
	uint32_t		sum, field;
	size_t			n;

	/* The check value of CRC-32C (RFC 3720 / "123456789"). */
	CHECK(proxyhdr_crc32c("123456789", 9) == 0xe3069283u,
	    "crc32c check value: %08x", proxyhdr_crc32c("123456789", 9));
	CHECK(proxyhdr_crc32c("", 0) == 0, "crc32c of nothing");

	n = proxyhdr_v2(SA(s6), SA(d6), &crc, buf, sizeof(buf));
	CHECK(n == sizeof(want_crc) + 4, "v2 crc length %zu", n);
	check_bytes(buf, sizeof(want_crc), want_crc, sizeof(want_crc),
	    "v2 crc header before the sum");
	/* The field holds, big-endian, the sum of the header zero-filled. */
	memcpy(copy, buf, n);
	memset(copy + n - 4, 0, 4);
	sum = proxyhdr_crc32c(copy, n);
	field = (uint32_t)buf[n - 4] << 24 | (uint32_t)buf[n - 3] << 16 |
	    (uint32_t)buf[n - 2] << 8 | buf[n - 1];
	CHECK(field == sum, "crc field %08x, want %08x", field, sum);
	CHECK(field != 0, "crc field not left zero");
}

int
main(void)
{
	test_v1();
	test_v2();
	test_crc32c();
	return unit_result();
}
