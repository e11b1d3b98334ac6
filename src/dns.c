/*
 * dns.c: how the resolver asks: the hosts file, evdns set up the one way
 * (resolv.conf, or the test hook), and a look-up that blocks.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "dns.h"
#include "hosts.h"
#include "log.h"

/* The most of the hosts file that is read. */
#define DNS_HOSTS_MAX	(1024 * 1024)

/*
 * For the test suite, RELAY64_TEST_DNS=ADDR:PORT[,floor=N][,timeout=N]:
 * the one name server to ask instead of /etc/resolv.conf's (whose
 * nameserver lines take no port), tried twice with a timeout of 1 s (or
 * timeout=N seconds) each, and a TTL floor of N seconds instead of the
 * documented one.  Read here only.  Returns 1 and fills what is given
 * (server, *floorp, *timeoutp) when set.
 */
static int
dns_test_hook(char *server, size_t len, int *floorp, int *timeoutp)
{
	const char	*v = getenv("RELAY64_TEST_DNS"), *p;
	size_t		 n;
	int		 x;

	if (v == NULL || *v == '\0')
		return 0;
	n = strcspn(v, ",");
	if (n >= len)
		n = len - 1;
	memcpy(server, v, n);
	server[n] = '\0';
	for (p = strchr(v, ','); p != NULL; p = strchr(p + 1, ',')) {
		if (sscanf(p + 1, "floor=%d", &x) == 1 && x >= 1 &&
		    floorp != NULL)
			*floorp = x;
		if (sscanf(p + 1, "timeout=%d", &x) == 1 && x >= 1 &&
		    timeoutp != NULL)
			*timeoutp = x;
	}
	return 1;
}

/* The TTL floor: dflt seconds, or the test hook's (said once, at start). */
int
dns_floor(int dflt)
{
	char	server[128];
	int	tfloor = dflt;

	if (dns_test_hook(server, sizeof(server), &tfloor, NULL))
		log_notice("RELAY64_TEST_DNS: asking %s only, TTL floor %d s",
		    server, tfloor);
	return tfloor;
}

/* evdns's own messages: a name server that failed or came back is news. */
static void
dns_evdns_log(int is_warn, const char *msg)
{
	if (is_warn)
		log_info("DNS: %s", msg);
	else
		log_debug("DNS: %s", msg);
}

/* A DNS resolver on base, set up the one way: the test hook or resolv.conf. */
struct evdns_base *
dns_new(struct event_base *base)
{
	struct evdns_base	*dns;
	char			 server[128], secs[16];
	int			 rc, timeout = 1;

	evdns_set_log_fn(dns_evdns_log);
	if ((dns = evdns_base_new(base, 0)) == NULL)
		return NULL;
	if (dns_test_hook(server, sizeof(server), NULL, &timeout)) {
		if (evdns_base_nameserver_ip_add(dns, server) != 0) {
			log_warnx("RELAY64_TEST_DNS \"%s\": not a name server "
			    "address", server);
			evdns_base_free(dns, 0);
			return NULL;
		}
		snprintf(secs, sizeof(secs), "%d", timeout);
		evdns_base_set_option(dns, "timeout:", secs);
		evdns_base_set_option(dns, "attempts:", "2");
		return dns;
	}
	rc = evdns_base_resolv_conf_parse(dns, DNS_OPTIONS_ALL,
	    DNS_RESOLV_CONF);
	if (rc != 0)
		log_warnx("%s: cannot use it (error %d): asking the name "
		    "server on 127.0.0.1", DNS_RESOLV_CONF, rc);
	return dns;
}

/* The addresses of host in the hosts file, at most max. */
size_t
dns_hosts(const char *host, struct in_addr *out, size_t max)
{
	FILE	*fp;
	char	*text;
	size_t	 len, n = 0;

	if ((fp = fopen(DNS_HOSTS, "re")) == NULL)
		return 0;
	if ((text = malloc(DNS_HOSTS_MAX)) != NULL) {
		len = fread(text, 1, DNS_HOSTS_MAX, fp);
		n = hosts_lookup(text, len, host, out, max);
		free(text);
	}
	fclose(fp);
	return n;
}

struct dns_once {
	int		 do_done;
	int		 do_result;
	size_t		 do_n;
	struct in_addr	*do_out;
	size_t		 do_max;
};

static void
dns_once_answered(int result, char type, int count, int ttl, void *addrs,
    void *arg)
{
	struct dns_once	*d = arg;

	(void)ttl;
	d->do_done = 1;
	d->do_result = result;
	if (result == DNS_ERR_NONE && type == DNS_IPv4_A && count > 0) {
		d->do_n = (size_t)count < d->do_max ? (size_t)count :
		    d->do_max;
		memcpy(d->do_out, addrs, d->do_n * sizeof(*d->do_out));
	} else if (result == DNS_ERR_NONE)
		d->do_result = DNS_ERR_NODATA;
}

/*
 * Ask DNS for host's A records, blocking, with a loop of its own: at most
 * max in out.  Returns how many; with none, *result says why (a DNS_ERR_*
 * value; DNS_ERR_UNKNOWN also when no resolver could be set up).
 */
size_t
dns_once(const char *host, struct in_addr *out, size_t max, int *result)
{
	struct dns_once		 d = { 0, DNS_ERR_UNKNOWN, 0, out, max };
	struct event_base	*base;
	struct evdns_base	*dns;

	*result = DNS_ERR_UNKNOWN;
	if ((base = event_base_new()) == NULL)
		return 0;
	if ((dns = dns_new(base)) == NULL) {
		event_base_free(base);
		return 0;
	}
	if (evdns_base_resolve_ipv4(dns, host, 0, dns_once_answered,
	    &d) == NULL)
		d.do_done = 1;
	while (!d.do_done && event_base_loop(base, EVLOOP_ONCE) == 0)
		;
	evdns_base_free(dns, 0);
	event_base_free(base);
	*result = d.do_result;
	return d.do_n;
}
