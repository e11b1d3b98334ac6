/*
 * proxyhdr.h: PROXY protocol header encoders, v1 (text) and v2 (binary),
 * after HAProxy's doc/proxy-protocol.txt.
 *
 * Pure functions: addresses in, bytes out.  The addresses are those of the
 * incoming connection as the accepting IPv6 socket sees them: src = the
 * client (getpeername), dst = the address it connected to (getsockname).
 * An IPv4 client on a dual-stack socket appears as ::ffff:a.b.c.d; it is
 * encoded as TCP over IPv4 with the plain IPv4 addresses, never the mapped
 * form.  When src and dst disagree on the family (one mapped, one not), the
 * header says so honestly: v1 "PROXY UNKNOWN", v2 family UNSPEC.
 */
#ifndef RELAY64_PROXYHDR_H
#define RELAY64_PROXYHDR_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

enum proxyhdr_version {
	PROXYHDR_OFF = 0,
	PROXYHDR_V1 = 1,
	PROXYHDR_V2 = 2,
};

/* v2 TLVs relay64 can add, as bits of proxyhdr_tlvs.pt_mask. */
#define PROXYHDR_TLV_UNIQUE_ID	0x01	/* PP2_TYPE_UNIQUE_ID (0x05) */
#define PROXYHDR_TLV_CRC32C	0x02	/* PP2_TYPE_CRC32C (0x03) */

/* Longest unique id the protocol allows. */
#define PROXYHDR_UNIQUE_ID_MAX	128
/* v1: 107 bytes is the protocol's own bound, CRLF included. */
#define PROXYHDR_V1_MAX		107
/* v2: 16 fixed + 36 (IPv6) + unique id TLV + CRC TLV. */
#define PROXYHDR_V2_MAX		(16 + 36 + 3 + PROXYHDR_UNIQUE_ID_MAX + 3 + 4)
#define PROXYHDR_MAX		PROXYHDR_V2_MAX

struct proxyhdr_tlvs {
	unsigned	 pt_mask;
	const char	*pt_unique_id;		/* with PROXYHDR_TLV_UNIQUE_ID */
	size_t		 pt_unique_id_len;
};

/*
 * Encode a v1 line for a connection from src to dst (both AF_INET6 or both
 * AF_INET) into buf[len].  Returns the header's length (no NUL written
 * past it), or 0 when len is too small or a family is not IP.
 */
size_t	proxyhdr_v1(const struct sockaddr *src, const struct sockaddr *dst,
	    char *buf, size_t len);

/*
 * Encode a v2 header (command PROXY, TCP) with the TLVs asked for into
 * buf[len].  Returns the header's length, or 0 when len is too small, a
 * family is not IP, or the unique id is longer than the protocol allows.
 */
size_t	proxyhdr_v2(const struct sockaddr *src, const struct sockaddr *dst,
	    const struct proxyhdr_tlvs *tlvs, uint8_t *buf, size_t len);

/* CRC32C (Castagnoli, RFC 4960 appendix B) of buf[len]. */
uint32_t proxyhdr_crc32c(const void *buf, size_t len);

#endif
