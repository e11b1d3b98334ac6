/*
 * dns.h: how the resolver asks: the hosts file, and evdns set up from
 * /etc/resolv.conf (or, for the test suite, RELAY64_TEST_DNS).
 *
 * resolve.c decides what answers do; this file only looks names up.
 */
#ifndef RELAY64_DNS_H
#define RELAY64_DNS_H

#include <netinet/in.h>
#include <stddef.h>

struct event_base;
struct evdns_base;

#define DNS_HOSTS		"/etc/hosts"
#define DNS_RESOLV_CONF		"/etc/resolv.conf"

struct evdns_base *dns_new(struct event_base *);
int		 dns_floor(int);
size_t		 dns_hosts(const char *, struct in_addr *, size_t);
size_t		 dns_once(const char *, struct in_addr *, size_t, int *);

#endif
