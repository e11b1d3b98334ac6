/*
 * fuzz_proxyhdr.c: the PROXY protocol encoders of src/proxyhdr.c against
 * a decoder written here from HAProxy's proxy-protocol.txt, with a CRC32C
 * of its own (bit by bit, most significant bit first, on reflected bytes:
 * not the encoder's way).
 *
 * The input decides the connection (missing bytes read as zero):
 *   byte 0      bits 0-1: the source: 0 IPv4 (sockaddr_in), 1 IPv6,
 *               2 IPv4-mapped IPv6, 3 another family (byte 1);
 *               bits 2-3: the destination, the same way;
 *               bits 4-5: the TLV mask (PROXYHDR_TLV_*)
 *   byte 1      the family of kind 3
 *   bytes 2-3   the size of the buffer given to the encoders (big endian;
 *               an exact allocation, so a write past it is seen)
 *   bytes 4-19  source address (IPv4: the first 4; mapped: the last 4)
 *   bytes 20-35 destination address
 *   bytes 36-39 source port, destination port (big endian)
 *   byte 40     unique id length (over 128: the encoder must refuse)
 *   bytes 41-   unique id
 * Each encoder is run with a buffer large enough and with the buffer the
 * input asks for: it must then write the same bytes, or return 0 when
 * they do not fit, and never write past the buffer.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string.h>

#include "proxyhdr.h"
#include "fuzz.h"

/* What the decoder must find: one endpoint as the header carries it. */
struct fuzz_ep {
	int		 family;	/* AF_INET, AF_INET6, 0: not IP */
	uint8_t		 addr[16];
	uint16_t	 port;
};

struct fuzz_in {
	const uint8_t	*p;
	size_t		 n;
};

static uint8_t
fuzz_byte(struct fuzz_in *in)
{
	uint8_t	b = 0;

	if (in->n > 0) {
		b = *in->p++;
		in->n--;
	}
	return b;
}

static void
fuzz_bytes(struct fuzz_in *in, uint8_t *out, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		out[i] = fuzz_byte(in);
}

/* A socket address of the kind asked for, in an allocation of its size. */
static struct sockaddr *
fuzz_sockaddr(int kind, int family, const uint8_t a[16], uint16_t port,
    struct fuzz_ep *ep)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	struct sockaddr		 sa;
	void			*p, *q;
	size_t			 len;

	memset(ep, 0, sizeof(*ep));
	ep->port = port;
	if (kind == 0) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons(port);
		memcpy(&sin.sin_addr, a, 4);
		ep->family = AF_INET;
		memcpy(ep->addr, a, 4);
		len = sizeof(sin);
		p = &sin;
	} else if (kind == 1 || kind == 2) {
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons(port);
		memcpy(&sin6.sin6_addr, a, 16);
		if (kind == 2) {
			memset(&sin6.sin6_addr, 0, 10);
			sin6.sin6_addr.s6_addr[10] = 0xff;
			sin6.sin6_addr.s6_addr[11] = 0xff;
		}
		if (IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr)) {
			ep->family = AF_INET;
			memcpy(ep->addr, &sin6.sin6_addr.s6_addr[12], 4);
		} else {
			ep->family = AF_INET6;
			memcpy(ep->addr, &sin6.sin6_addr, 16);
		}
		len = sizeof(sin6);
		p = &sin6;
	} else {
		memset(&sa, 0, sizeof(sa));
		sa.sa_family = (sa_family_t)family;
		if (family == AF_INET || family == AF_INET6)
			sa.sa_family = AF_UNIX;
		len = sizeof(sa);
		p = &sa;
	}
	if ((q = malloc(len)) == NULL)
		abort();
	return memcpy(q, p, len);
}

/* CRC32C, the long way round: MSB first with polynomial 0x1EDC6F41 on
 * bit-reversed bytes, then the result reversed. */
static uint32_t
fuzz_reflect(uint32_t v, int bits)
{
	uint32_t	r = 0;
	int		i;

	for (i = 0; i < bits; i++)
		if (v & (1u << i))
			r |= 1u << (bits - 1 - i);
	return r;
}

static uint32_t
fuzz_crc32c(const uint8_t *p, size_t n)
{
	uint32_t	crc = 0xffffffffu;
	size_t		i;
	int		k;

	for (i = 0; i < n; i++) {
		crc ^= fuzz_reflect(p[i], 8) << 24;
		for (k = 0; k < 8; k++)
			crc = (crc & 0x80000000u) ? (crc << 1) ^ 0x1edc6f41u :
			    crc << 1;
	}
	return fuzz_reflect(crc, 32) ^ 0xffffffffu;
}

/* A decimal port as v1 writes it: no sign, no leading zero. */
static int
fuzz_v1_port(const char *s, uint16_t want)
{
	unsigned long	v = 0;
	const char	*p;

	if (*s == '\0' || (s[0] == '0' && s[1] != '\0') || strlen(s) > 5)
		return 0;
	for (p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	return v == want;
}

static void
fuzz_decode_v1(const char *h, size_t n, const struct fuzz_ep *s,
    const struct fuzz_ep *d)
{
	char		 line[PROXYHDR_V1_MAX + 1], *f[7], *save = NULL, *t;
	uint8_t		 a[16];
	int		 nf = 0, af;

	FUZZ_CHECK(n >= 8 && n <= PROXYHDR_V1_MAX, "v1: length %zu", n);
	FUZZ_CHECK(memcmp(h, "PROXY ", 6) == 0, "v1: %.*s", (int)n, h);
	FUZZ_CHECK(h[n - 2] == '\r' && h[n - 1] == '\n', "v1: no CRLF");
	FUZZ_CHECK(memchr(h, '\0', n) == NULL &&
	    memchr(h, '\r', n - 2) == NULL && memchr(h, '\n', n - 1) == NULL,
	    "v1: a NUL, CR or LF inside");
	if (s->family != d->family) {
		FUZZ_CHECK(n == 15 && memcmp(h, "PROXY UNKNOWN\r\n", 15) == 0,
		    "v1 mixed families: %.*s", (int)n, h);
		return;
	}
	memcpy(line, h, n - 2);
	line[n - 2] = '\0';
	FUZZ_CHECK(strstr(line, "  ") == NULL && line[n - 3] != ' ',
	    "v1: empty field: %s", line);
	for (t = strtok_r(line, " ", &save); t != NULL && nf < 7;
	    t = strtok_r(NULL, " ", &save))
		f[nf++] = t;
	FUZZ_CHECK(nf == 6, "v1: %d fields", nf);
	af = s->family;
	FUZZ_CHECK(strcmp(f[1], af == AF_INET ? "TCP4" : "TCP6") == 0,
	    "v1: protocol %s", f[1]);
	FUZZ_CHECK(inet_pton(af, f[2], a) == 1 &&
	    memcmp(a, s->addr, af == AF_INET ? 4 : 16) == 0,
	    "v1: source %s", f[2]);
	FUZZ_CHECK(inet_pton(af, f[3], a) == 1 &&
	    memcmp(a, d->addr, af == AF_INET ? 4 : 16) == 0,
	    "v1: destination %s", f[3]);
	FUZZ_CHECK(fuzz_v1_port(f[4], s->port), "v1: source port %s", f[4]);
	FUZZ_CHECK(fuzz_v1_port(f[5], d->port), "v1: destination port %s",
	    f[5]);
}

static uint16_t
fuzz_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void
fuzz_decode_v2(const uint8_t *h, size_t n, const struct fuzz_ep *s,
    const struct fuzz_ep *d, unsigned mask, const uint8_t *id, size_t idlen)
{
	static const uint8_t	 sig[12] = "\r\n\r\n\0\r\nQUIT\n";
	uint8_t			 copy[PROXYHDR_V2_MAX];
	size_t			 alen, off, tlen;
	int			 fam, nid = 0, ncrc = 0;
	uint32_t		 crc;

	FUZZ_CHECK(n >= 16 && n <= PROXYHDR_V2_MAX, "v2: length %zu", n);
	FUZZ_CHECK(memcmp(h, sig, 12) == 0, "v2: signature");
	FUZZ_CHECK(h[12] == 0x21, "v2: version/command %#x", h[12]);
	FUZZ_CHECK(fuzz_get16(h + 14) == n - 16, "v2: length field %u, "
	    "header %zu", fuzz_get16(h + 14), n);
	fam = s->family != d->family ? 0x00 :
	    s->family == AF_INET ? 0x11 : 0x21;
	FUZZ_CHECK(h[13] == fam, "v2: family %#x, want %#x", h[13], fam);
	alen = fam == 0x11 ? 12 : fam == 0x21 ? 36 : 0;
	FUZZ_CHECK(n >= 16 + alen, "v2: no room for the addresses");
	if (fam == 0x11)
		FUZZ_CHECK(memcmp(h + 16, s->addr, 4) == 0 &&
		    memcmp(h + 20, d->addr, 4) == 0 &&
		    fuzz_get16(h + 24) == s->port &&
		    fuzz_get16(h + 26) == d->port, "v2: TCP4 addresses");
	else if (fam == 0x21)
		FUZZ_CHECK(memcmp(h + 16, s->addr, 16) == 0 &&
		    memcmp(h + 32, d->addr, 16) == 0 &&
		    fuzz_get16(h + 48) == s->port &&
		    fuzz_get16(h + 50) == d->port, "v2: TCP6 addresses");
	for (off = 16 + alen; off < n; off += 3 + tlen) {
		FUZZ_CHECK(off + 3 <= n, "v2: a TLV cut at %zu", off);
		tlen = fuzz_get16(h + off + 1);
		FUZZ_CHECK(off + 3 + tlen <= n, "v2: a TLV of %zu at %zu past "
		    "the end", tlen, off);
		if (h[off] == 0x05) {
			nid++;
			FUZZ_CHECK(tlen == idlen && memcmp(h + off + 3, id,
			    idlen) == 0, "v2: unique id");
		} else if (h[off] == 0x03) {
			ncrc++;
			FUZZ_CHECK(tlen == 4, "v2: CRC32C of %zu bytes", tlen);
			memcpy(copy, h, n);
			memset(copy + off + 3, 0, 4);
			crc = fuzz_crc32c(copy, n);
			FUZZ_CHECK(crc == ((uint32_t)h[off + 3] << 24 |
			    (uint32_t)h[off + 4] << 16 | (uint32_t)h[off + 5] << 8 |
			    h[off + 6]), "v2: CRC32C %08x", crc);
		} else
			FUZZ_CHECK(0, "v2: TLV type %#x", h[off]);
	}
	FUZZ_CHECK(nid == ((mask & PROXYHDR_TLV_UNIQUE_ID) ? 1 : 0),
	    "v2: %d unique id TLVs", nid);
	FUZZ_CHECK(ncrc == ((mask & PROXYHDR_TLV_CRC32C) ? 1 : 0),
	    "v2: %d CRC32C TLVs", ncrc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int		 selftest;
	struct fuzz_in		 in = { data, size };
	struct fuzz_ep		 s, d;
	struct sockaddr		*src, *dst;
	struct proxyhdr_tlvs	 tlvs;
	uint8_t			 flags, fam, sa[16], da[16], id[256];
	uint8_t			 big[PROXYHDR_MAX + 64], *small;
	char			 big1[PROXYHDR_MAX + 64];
	size_t			 buflen, idlen, n, m;
	uint16_t		 sport, dport;
	int			 ip;

	if (!selftest) {
		FUZZ_CHECK(fuzz_crc32c((const uint8_t *)"123456789", 9) ==
		    0xe3069283u, "the test's own CRC32C");
		selftest = 1;
	}
	flags = fuzz_byte(&in);
	fam = fuzz_byte(&in);
	buflen = (size_t)fuzz_byte(&in) << 8;
	buflen |= fuzz_byte(&in);
	fuzz_bytes(&in, sa, sizeof(sa));
	fuzz_bytes(&in, da, sizeof(da));
	sport = (uint16_t)(fuzz_byte(&in) << 8);
	sport |= fuzz_byte(&in);
	dport = (uint16_t)(fuzz_byte(&in) << 8);
	dport |= fuzz_byte(&in);
	idlen = fuzz_byte(&in);
	fuzz_bytes(&in, id, idlen);

	src = fuzz_sockaddr(flags & 3, fam, sa, sport, &s);
	dst = fuzz_sockaddr((flags >> 2) & 3, fam, da, dport, &d);
	ip = s.family != 0 && d.family != 0;
	memset(&tlvs, 0, sizeof(tlvs));
	tlvs.pt_mask = (flags >> 4) & 3;
	tlvs.pt_unique_id = (const char *)id;
	tlvs.pt_unique_id_len = idlen;

	/* v1, in a buffer that holds any line, then in the one asked for */
	n = proxyhdr_v1(src, dst, big1, sizeof(big1));
	FUZZ_CHECK((n != 0) == ip, "v1: %zu bytes for families %d, %d", n,
	    s.family, d.family);
	if (n != 0)
		fuzz_decode_v1(big1, n, &s, &d);
	if ((small = malloc(buflen > 0 ? buflen : 1)) == NULL)
		abort();
	m = proxyhdr_v1(src, dst, (char *)small, buflen);
	FUZZ_CHECK(m == (buflen > n ? n : 0), "v1: %zu bytes in a buffer of "
	    "%zu, %zu in a large one", m, buflen, n);
	FUZZ_CHECK(memcmp(small, big1, m) == 0, "v1: other bytes");

	/* v2, the same way */
	n = proxyhdr_v2(src, dst, &tlvs, big, sizeof(big));
	FUZZ_CHECK((n != 0) == (ip && ((tlvs.pt_mask & PROXYHDR_TLV_UNIQUE_ID)
	    == 0 || idlen <= PROXYHDR_UNIQUE_ID_MAX)), "v2: %zu bytes", n);
	if (n != 0)
		fuzz_decode_v2(big, n, &s, &d, tlvs.pt_mask, id, idlen);
	m = proxyhdr_v2(src, dst, &tlvs, small, buflen);
	FUZZ_CHECK(m == (buflen >= n ? n : 0), "v2: %zu bytes in a buffer of "
	    "%zu, %zu in a large one", m, buflen, n);
	FUZZ_CHECK(memcmp(small, big, m) == 0, "v2: other bytes");
	/* No TLVs asked for: the same as no TLV list at all. */
	if (tlvs.pt_mask == 0)
		FUZZ_CHECK(proxyhdr_v2(src, dst, NULL, small, buflen) == m &&
		    memcmp(small, big, m) == 0, "v2 without a TLV list");
	free(small);
	free(src);
	free(dst);
	return 0;
}
