/*
 * fuzz_conf.c: the whole configuration load (src/conf.c, with libconfuse
 * and src/addr.c underneath): the input is the file's bytes.
 *
 * conf_load() must give either a struct conf whose values keep every
 * rule the file format promises (ranges, words, lists of valid networks,
 * binds that can all be held at once) or one error line that names the
 * file, holds no control character and fits its buffer.  Loading writes
 * nothing to standard output (where -t prints the listeners).  A loaded
 * conf is printed (as -t does) to /dev/null and freed; a leak is a finding
 * too.
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <arpa/inet.h>

#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "conf.h"
#include "proxyhdr.h"
#include "fuzz.h"

static int	 fuzz_fd = -1, fuzz_out = -1;
static char	 fuzz_path[64];
static FILE	*fuzz_null;

/* conf_load() with standard output caught; returns what went there. */
static struct conf *
fuzz_load(char *err, size_t errlen, off_t *out)
{
	struct conf	*conf;
	struct stat	 st;
	int		 saved;

	fflush(stdout);
	if ((saved = dup(STDOUT_FILENO)) == -1 ||
	    dup2(fuzz_out, STDOUT_FILENO) == -1)
		abort();
	conf = conf_load(fuzz_path, err, errlen);
	fflush(stdout);
	if (dup2(saved, STDOUT_FILENO) == -1 || close(saved) == -1 ||
	    fstat(fuzz_out, &st) == -1 || ftruncate(fuzz_out, 0) == -1 ||
	    lseek(fuzz_out, 0, SEEK_SET) == -1)
		abort();
	*out = st.st_size;
	return conf;
}

/* A network as conf.c keeps it: valid, host bits zero, printed back the same. */
static void
fuzz_check_cidrs(const struct addr_cidr *list, size_t n, const char *what)
{
	struct addr_cidr	back;
	char			buf[ADDR_CIDRLEN];
	const char		*err;
	size_t			i;

	FUZZ_CHECK((n == 0) == (list == NULL), "%s: %zu entries", what, n);
	for (i = 0; i < n; i++) {
		FUZZ_CHECK((list[i].ci_family == AF_INET &&
		    list[i].ci_prefix <= 32) || (list[i].ci_family == AF_INET6 &&
		    list[i].ci_prefix <= 128), "%s[%zu]: family %d prefix %u",
		    what, i, list[i].ci_family, list[i].ci_prefix);
		addr_format_cidr(&list[i], buf, sizeof(buf));
		err = addr_parse_cidr(buf, &back);
		FUZZ_CHECK(err == NULL, "%s[%zu] %s: %s", what, i, buf, err);
		FUZZ_CHECK(memcmp(&back, &list[i], sizeof(back)) == 0,
		    "%s[%zu] %s: parsed back differently", what, i, buf);
	}
}

static void
fuzz_check_conf(const struct conf *conf)
{
	const struct listen_conf	*lc, *o;
	size_t				 i;

	FUZZ_CHECK(conf->c_file != NULL && strcmp(conf->c_file, fuzz_path) == 0,
	    "file name");
	FUZZ_CHECK(conf->c_drain_timeout >= 0 && conf->c_drain_timeout <= 3600,
	    "drain-timeout %d", conf->c_drain_timeout);
	FUZZ_CHECK(conf->c_max_conns >= 0 && conf->c_max_conns <= 1000000,
	    "max-connections %d", conf->c_max_conns);
	FUZZ_CHECK(conf->c_workers >= 0 && conf->c_workers <= CONF_WORKERS_MAX,
	    "workers %d", conf->c_workers);
	FUZZ_CHECK(conf->c_log_level >= LOG_ERR && conf->c_log_level <=
	    LOG_DEBUG, "log level %d", conf->c_log_level);
	FUZZ_CHECK(conf->c_user == NULL || conf->c_user[0] != '\0', "user");
	FUZZ_CHECK(!TAILQ_EMPTY(&conf->c_listens), "no listener");
	TAILQ_FOREACH(lc, &conf->c_listens, lc_entry) {
		FUZZ_CHECK(lc->lc_name != NULL && lc->lc_name[0] != '\0' &&
		    strlen(lc->lc_name) <= 64, "title");
		FUZZ_CHECK(lc->lc_refs == 1, "%s: refs %u", lc->lc_name,
		    (unsigned)lc->lc_refs);
		FUZZ_CHECK(lc->lc_bind.sin6_family == AF_INET6, "%s: bind family",
		    lc->lc_name);
		FUZZ_CHECK(lc->lc_nupstreams >= 1 && lc->lc_upstreams != NULL,
		    "%s: no upstream", lc->lc_name);
		for (i = 0; i < lc->lc_nupstreams; i++)
			FUZZ_CHECK(lc->lc_upstreams[i].au_sin.sin_family ==
			    AF_INET && lc->lc_upstreams[i].au_sin.sin_port != 0,
			    "%s: upstream %zu", lc->lc_name, i);
		FUZZ_CHECK(lc->lc_connect_timeout >= 1 &&
		    lc->lc_connect_timeout <= 3600, "%s: connect-timeout %d",
		    lc->lc_name, lc->lc_connect_timeout);
		FUZZ_CHECK(lc->lc_idle_timeout >= 0 &&
		    lc->lc_idle_timeout <= 604800, "%s: idle-timeout %d",
		    lc->lc_name, lc->lc_idle_timeout);
		FUZZ_CHECK(lc->lc_max_conns >= 0 && lc->lc_max_conns <= 1000000,
		    "%s: max-connections %d", lc->lc_name, lc->lc_max_conns);
		FUZZ_CHECK(lc->lc_keepalive >= 0 && lc->lc_keepalive <= 86400,
		    "%s: keepalive %d", lc->lc_name, lc->lc_keepalive);
		FUZZ_CHECK(lc->lc_max_per_source <= 1000000,
		    "%s: max-per-source %u", lc->lc_name, lc->lc_max_per_source);
		FUZZ_CHECK(lc->lc_proxy == PROXYHDR_OFF ||
		    lc->lc_proxy == PROXYHDR_V1 || lc->lc_proxy == PROXYHDR_V2,
		    "%s: proxy-protocol %d", lc->lc_name, lc->lc_proxy);
		FUZZ_CHECK((lc->lc_proxy_tlvs & ~(unsigned)(PROXYHDR_TLV_UNIQUE_ID |
		    PROXYHDR_TLV_CRC32C)) == 0 && (lc->lc_proxy_tlvs == 0 ||
		    lc->lc_proxy == PROXYHDR_V2), "%s: tlvs %#x", lc->lc_name,
		    lc->lc_proxy_tlvs);
		fuzz_check_cidrs(lc->lc_allow, lc->lc_nallow, "allow");
		fuzz_check_cidrs(lc->lc_deny, lc->lc_ndeny, "deny");
		TAILQ_FOREACH(o, &conf->c_listens, lc_entry) {
			if (o == lc)
				break;
			FUZZ_CHECK(strcmp(o->lc_name, lc->lc_name) != 0,
			    "two listeners named %s", lc->lc_name);
			FUZZ_CHECK(!addr_binds_overlap(&o->lc_bind, o->lc_v6only,
			    &lc->lc_bind, lc->lc_v6only), "%s and %s overlap",
			    o->lc_name, lc->lc_name);
		}
	}
}

/*
 * "FILE:LINE: message", one line, no control byte, LINE a line of the
 * file; or "FILE: message" for what is about the whole file.
 */
static void
fuzz_check_error(const char *err, size_t errlen, const uint8_t *data,
    size_t size)
{
	size_t		 n = strlen(fuzz_path), i;
	unsigned long	 line, lines = 1;
	char		*end;

	FUZZ_CHECK(err[0] != '\0', "no configuration and no error");
	FUZZ_CHECK(strlen(err) < errlen, "error overflows");
	FUZZ_CHECK(strncmp(err, fuzz_path, n) == 0 && err[n] == ':',
	    "the error does not name the file: \"%s\"", err);
	for (i = 0; err[i] != '\0'; i++)
		FUZZ_CHECK((unsigned char)err[i] >= 0x20 &&
		    (unsigned char)err[i] != 0x7f,
		    "control character 0x%02x at %zu in the error: \"%s\"",
		    (unsigned char)err[i], i, err);
	/* Without a line only what is about the whole file. */
	if (err[n + 1] < '0' || err[n + 1] > '9') {
		FUZZ_CHECK(strcmp(err + n, ": no listen section: nothing to do")
		    == 0, "an error without a line: \"%s\"", err);
		return;
	}
	line = strtoul(err + n + 1, &end, 10);
	FUZZ_CHECK(*end == ':', "\"%s\"", err);
	for (i = 0; i < size; i++)
		lines += data[i] == '\n';
	FUZZ_CHECK(line >= 1 && line <= lines, "line %lu of a file of %lu: "
	    "\"%s\"", line, lines, err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf	*conf;
	char		 err[CONF_ERRLEN];
	off_t		 out;

	if (fuzz_fd == -1) {
		if ((fuzz_fd = memfd_create("relay64.conf", 0)) == -1 ||
		    (fuzz_out = memfd_create("stdout", 0)) == -1 ||
		    (fuzz_null = fopen("/dev/null", "w")) == NULL)
			abort();
		snprintf(fuzz_path, sizeof(fuzz_path), "/proc/self/fd/%d",
		    fuzz_fd);
	}
	if (ftruncate(fuzz_fd, 0) == -1 ||
	    (size > 0 && pwrite(fuzz_fd, data, size, 0) != (ssize_t)size))
		abort();
	memset(err, 'X', sizeof(err));
	conf = fuzz_load(err, sizeof(err), &out);
	FUZZ_CHECK(out == 0, "%lld bytes written to standard output",
	    (long long)out);
	if (conf == NULL) {
		fuzz_check_error(err, sizeof(err), data, size);
		return 0;
	}
	fuzz_check_conf(conf);
	conf_print(conf, fuzz_null);
	conf_free(conf);
	return 0;
}
