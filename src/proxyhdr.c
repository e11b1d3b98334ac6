/*
 * proxyhdr.c: PROXY protocol v1 and v2 encoders (pure functions).
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <string.h>

#include "proxyhdr.h"

static const uint8_t proxyhdr_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

#define PP2_VERSION_PROXY	0x21	/* version 2, command PROXY */
#define PP2_FAM_UNSPEC		0x00
#define PP2_FAM_TCP4		0x11
#define PP2_FAM_TCP6		0x21
#define PP2_TYPE_CRC32C		0x03
#define PP2_TYPE_UNIQUE_ID	0x05

/* One endpoint, reduced to what the header carries. */
struct proxyhdr_ep {
	int		 family;	/* AF_INET, AF_INET6, or 0 */
	uint8_t		 addr[16];	/* network order; 4 used for AF_INET */
	uint16_t	 port;		/* host order */
};

/* Reduce a socket address; IPv4-mapped IPv6 becomes plain IPv4. */
static void
proxyhdr_ep(const struct sockaddr *sa, struct proxyhdr_ep *ep)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;

	memset(ep, 0, sizeof(*ep));
	if (sa->sa_family == AF_INET) {
		memcpy(&sin, sa, sizeof(sin));
		ep->family = AF_INET;
		memcpy(ep->addr, &sin.sin_addr, 4);
		ep->port = ntohs(sin.sin_port);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(&sin6, sa, sizeof(sin6));
		ep->port = ntohs(sin6.sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr)) {
			ep->family = AF_INET;
			memcpy(ep->addr, &sin6.sin6_addr.s6_addr[12], 4);
		} else {
			ep->family = AF_INET6;
			memcpy(ep->addr, &sin6.sin6_addr, 16);
		}
	}
}

size_t
proxyhdr_v1(const struct sockaddr *src, const struct sockaddr *dst,
    char *buf, size_t len)
{
	struct proxyhdr_ep	 s, d;
	char			 sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
	int			 n;

	proxyhdr_ep(src, &s);
	proxyhdr_ep(dst, &d);
	if (s.family == 0 || d.family == 0)
		return 0;
	if (s.family != d.family)
		n = snprintf(buf, len, "PROXY UNKNOWN\r\n");
	else {
		inet_ntop(s.family, s.addr, sa, sizeof(sa));
		inet_ntop(d.family, d.addr, da, sizeof(da));
		n = snprintf(buf, len, "PROXY %s %s %s %u %u\r\n",
		    s.family == AF_INET ? "TCP4" : "TCP6", sa, da,
		    (unsigned)s.port, (unsigned)d.port);
	}
	if (n < 0 || (size_t)n >= len)
		return 0;
	return (size_t)n;
}

static uint8_t *
proxyhdr_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

size_t
proxyhdr_v2(const struct sockaddr *src, const struct sockaddr *dst,
    const struct proxyhdr_tlvs *tlvs, uint8_t *buf, size_t len)
{
	struct proxyhdr_ep	 s, d;
	size_t			 alen, total, idlen = 0;
	uint8_t			*p, *crc = NULL;
	uint32_t		 sum;
	unsigned		 mask = tlvs ? tlvs->pt_mask : 0;

	proxyhdr_ep(src, &s);
	proxyhdr_ep(dst, &d);
	if (s.family == 0 || d.family == 0)
		return 0;
	if (s.family != d.family)
		alen = 0;
	else
		alen = s.family == AF_INET ? 12 : 36;
	total = 16 + alen;
	if (mask & PROXYHDR_TLV_UNIQUE_ID) {
		idlen = tlvs->pt_unique_id_len;
		if (idlen > PROXYHDR_UNIQUE_ID_MAX)
			return 0;
		total += 3 + idlen;
	}
	if (mask & PROXYHDR_TLV_CRC32C)
		total += 3 + 4;
	if (total > len)
		return 0;

	p = buf;
	memcpy(p, proxyhdr_sig, sizeof(proxyhdr_sig));
	p += sizeof(proxyhdr_sig);
	*p++ = PP2_VERSION_PROXY;
	*p++ = alen == 0 ? PP2_FAM_UNSPEC :
	    (s.family == AF_INET ? PP2_FAM_TCP4 : PP2_FAM_TCP6);
	p = proxyhdr_put16(p, (uint16_t)(total - 16));
	if (alen != 0) {
		memcpy(p, s.addr, alen == 12 ? 4 : 16);
		p += alen == 12 ? 4 : 16;
		memcpy(p, d.addr, alen == 12 ? 4 : 16);
		p += alen == 12 ? 4 : 16;
		p = proxyhdr_put16(p, s.port);
		p = proxyhdr_put16(p, d.port);
	}
	if (mask & PROXYHDR_TLV_UNIQUE_ID) {
		*p++ = PP2_TYPE_UNIQUE_ID;
		p = proxyhdr_put16(p, (uint16_t)idlen);
		memcpy(p, tlvs->pt_unique_id, idlen);
		p += idlen;
	}
	if (mask & PROXYHDR_TLV_CRC32C) {
		/* Summed over the whole header with the field zeroed. */
		*p++ = PP2_TYPE_CRC32C;
		p = proxyhdr_put16(p, 4);
		crc = p;
		memset(p, 0, 4);
		p += 4;
		sum = proxyhdr_crc32c(buf, total);
		proxyhdr_put16(crc, (uint16_t)(sum >> 16));
		proxyhdr_put16(crc + 2, (uint16_t)sum);
	}
	return total;
}

uint32_t
proxyhdr_crc32c(const void *buf, size_t len)
{
	const uint8_t	*p = buf;
	uint32_t	 crc = 0xffffffffu;
	int		 k;

	while (len-- > 0) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return ~crc;
}
