/*
 * resolve_once.c: look host names up the way the relay does, once each
 * (resolve_once(), the call a check of the configuration makes), and
 * print one line per name: "NAME: A, B" or "NAME: cannot resolve: WHY".
 * Exits 0 when every name resolved, 1 otherwise.  Driven by t_dns.py,
 * with RELAY64_TEST_DNS naming the test's DNS server.
 */
#include "config.h"

#include <arpa/inet.h>

#include <stdio.h>

#include "log.h"
#include "resolve.h"

int
main(int argc, char *argv[])
{
	struct in_addr	addr[RESOLVE_ADDRMAX];
	char		err[128], one[INET_ADDRSTRLEN];
	int		i, j, n, status = 0;

	log_init(LOG_WARNING, 0);
	for (i = 1; i < argc; i++) {
		if ((n = resolve_once(argv[i], addr, RESOLVE_ADDRMAX, err,
		    sizeof(err))) == -1) {
			printf("%s: cannot resolve: %s\n", argv[i], err);
			status = 1;
			continue;
		}
		printf("%s: ", argv[i]);
		for (j = 0; j < n; j++)
			printf("%s%s", j ? ", " : "", inet_ntop(AF_INET,
			    &addr[j], one, sizeof(one)));
		printf("\n");
	}
	return status;
}
