/*
 * conf.c: the configuration file (libconfuse) and the ad-hoc command line,
 * both turned into an owned struct conf.
 *
 * This is the only file that includes <confuse.h>.  conf_load() goes in
 * steps: read and prepare the text, parse it (values are checked as they
 * are parsed, by validators registered by path, so errors carry the line),
 * copy the globals, copy the listeners, then the checks across listeners;
 * the libconfuse tree is freed before returning.
 */
#include "config.h"

#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <confuse.h>

#include "conf.h"
#include "log.h"
#include "proxyhdr.h"

#define CONF_TITLEMAX	64
#define CONF_FILEMAX	(4 * 1024 * 1024)

/* The first error of a parse, formatted by conf_errfunc(). */
static char	*conf_err;
static size_t	 conf_errlen;

/*
 * libconfuse keeps one line per section (where it ends), so the validator
 * of "bind" notes the line each bind was written on, for the duplicate
 * check that runs after parsing.
 */
struct conf_bindline {
	struct conf_bindline	*bl_next;
	const cfg_t		*bl_sec;
	int			 bl_line;
};
static struct conf_bindline *conf_bindlines;

static void
conf_bindlines_free(void)
{
	struct conf_bindline	*bl;

	while ((bl = conf_bindlines) != NULL) {
		conf_bindlines = bl->bl_next;
		free(bl);
	}
}

static int
conf_bindline(const cfg_t *sec)
{
	const struct conf_bindline	*bl;

	for (bl = conf_bindlines; bl != NULL; bl = bl->bl_next)
		if (bl->bl_sec == sec)
			return bl->bl_line;
	return sec->line;
}

/* A control character: C0 or DEL. */
static int
conf_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/*
 * Text from the file (a value, a title) as an error message shows it:
 * control characters escaped as \t, \n, \r or \xHH, so that a message is
 * always one line.  Returns buf, cut to len.
 */
static const char *
conf_esc(const char *s, char *buf, size_t len)
{
	char	e[5];
	size_t	o = 0, n;

	for (; *s != '\0'; s++) {
		unsigned char	c = (unsigned char)*s;

		if (c == '\t' || c == '\n' || c == '\r')
			snprintf(e, sizeof(e), "\\%c", c == '\t' ? 't' :
			    c == '\n' ? 'n' : 'r');
		else if (conf_ctl(c))
			snprintf(e, sizeof(e), "\\x%02x", c);
		else {
			e[0] = (char)c;
			e[1] = '\0';
		}
		if (o + (n = strlen(e)) >= len)
			break;
		memcpy(buf + o, e, n);
		o += n;
	}
	buf[o] = '\0';
	return buf;
}

static void
conf_errfunc(cfg_t *cfg, const char *fmt, va_list ap)
{
	char	msg[CONF_ERRLEN], esc[CONF_ERRLEN];

	if (conf_err == NULL || conf_err[0] != '\0')
		return;			/* keep only the first error */
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* libconfuse's own messages quote values too. */
	conf_esc(msg, esc, sizeof(esc));
	if (cfg != NULL && cfg->filename != NULL)
		snprintf(conf_err, conf_errlen, "%s:%d: %s", cfg->filename,
		    cfg->line, esc);
	else
		snprintf(conf_err, conf_errlen, "%s", esc);
}

#define CONF_NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

/* Numbers: key path -> the range allowed. */
static const struct conf_range {
	const char	*path;
	long		 lo, hi;
} conf_ranges[] = {
	{ "drain-timeout",		0, 3600 },
	{ "max-connections",		0, 1000000 },
	{ "workers",			0, CONF_WORKERS_MAX },
	{ "listen|connect-timeout",	1, 3600 },
	{ "listen|idle-timeout",	0, 604800 },
	{ "listen|max-connections",	0, 1000000 },
	{ "listen|keepalive",		0, 86400 },
	{ "listen|max-per-source",	0, 1000000 },
};

/* Words: key path -> the words allowed, listed as the error lists them. */
static const struct conf_words {
	const char	*path;
	const char	*words;		/* "a, b, c" */
	int		 nocase;	/* as log_level_parse() compares */
} conf_words[] = {
	{ "log-level",		"error, warning, notice, info, debug", 1 },
	{ "listen|balance",	"first, roundrobin", 0 },
	{ "listen|proxy-protocol", "off, v1, v2", 0 },
};

/* The path a validator was registered by: "key" or "section|key". */
static const char *
conf_opt_path(cfg_t *cfg, cfg_opt_t *opt, char *buf, size_t len)
{
	if (strcmp(cfg_name(cfg), "root") == 0)
		snprintf(buf, len, "%s", cfg_opt_name(opt));
	else
		snprintf(buf, len, "%s|%s", cfg_name(cfg), cfg_opt_name(opt));
	return buf;
}

/*
 * Is opt a key of the section cfg itself?  libconfuse takes a key with
 * '|' or '=' in it ("listen|bind", "listen=web|connect-timeout") as a
 * path into a section: written at the top level, it would set a key of a
 * listener from outside, past the checks of that section.  Every
 * validator starts here; each key is set in its own section only.
 */
static int
conf_v_owner(cfg_t *cfg, cfg_opt_t *opt)
{
	unsigned int	i;

	for (i = 0; cfg->opts[i].type != CFGT_NONE; i++)
		if (&cfg->opts[i] == opt)
			return 0;
	cfg_error(cfg, "no such option here: %s is set inside its own "
	    "section, not through a path with '|'", cfg_opt_name(opt));
	return -1;
}

/*
 * The entry of a validator's table for opt: entries of size bytes, each
 * starting with its path.  A key registered without an entry is a bug.
 */
static const void *
conf_entry(cfg_t *cfg, cfg_opt_t *opt, const void *table, size_t n,
    size_t size)
{
	const char	*e = table;
	char		 path[64];
	size_t		 i;

	conf_opt_path(cfg, opt, path, sizeof(path));
	for (i = 0; i < n; i++, e += size)
		if (strcmp(*(const char *const *)(const void *)e, path) == 0)
			return e;
	fatalx("conf: no check for %s", path);
}

#define CONF_ENTRY(cfg, opt, table)					\
	conf_entry((cfg), (opt), (table), CONF_NITEMS(table), sizeof((table)[0]))

/* Booleans: nothing to check but where they are set. */
static int
conf_v_bool(cfg_t *cfg, cfg_opt_t *opt)
{
	return conf_v_owner(cfg, opt);
}

static int
conf_v_range(cfg_t *cfg, cfg_opt_t *opt)
{
	const struct conf_range	*r;
	long			 v = cfg_opt_getnint(opt, cfg_opt_size(opt) - 1);

	if (conf_v_owner(cfg, opt) == -1)
		return -1;
	r = CONF_ENTRY(cfg, opt, conf_ranges);
	if (v < r->lo || v > r->hi) {
		cfg_error(cfg, "%s = %ld: out of range (%ld-%ld)",
		    cfg_opt_name(opt), v, r->lo, r->hi);
		return -1;
	}
	return 0;
}

/* Is v one of the words of list ("a, b, c")? */
static int
conf_word_in(const char *list, const char *v, int nocase)
{
	const char	*p = list, *comma;
	size_t		 n, vlen = strlen(v);

	for (;;) {
		comma = strchr(p, ',');
		n = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (n == vlen && (nocase ? strncasecmp(p, v, n) :
		    strncmp(p, v, n)) == 0)
			return 1;
		if (comma == NULL)
			return 0;
		p = comma + 2;
	}
}

static int
conf_v_word(cfg_t *cfg, cfg_opt_t *opt)
{
	const struct conf_words	*w;
	const char		*v = cfg_opt_getnstr(opt, 0);
	char			 esc[CONF_ERRLEN];

	if (conf_v_owner(cfg, opt) == -1)
		return -1;
	w = CONF_ENTRY(cfg, opt, conf_words);
	if (v == NULL || !conf_word_in(w->words, v, w->nocase)) {
		cfg_error(cfg, "%s \"%s\": not one of %s", cfg_opt_name(opt),
		    conf_esc(v ? v : "", esc, sizeof(esc)), w->words);
		return -1;
	}
	return 0;
}

/* "off", "v1" or "v2" to enum proxyhdr_version; -1 when neither. */
int
conf_proxy_parse(const char *v)
{
	if (strcmp(v, "off") == 0)
		return PROXYHDR_OFF;
	if (strcmp(v, "v1") == 0)
		return PROXYHDR_V1;
	if (strcmp(v, "v2") == 0)
		return PROXYHDR_V2;
	return -1;
}

static unsigned
conf_tlv_parse(const char *v)
{
	if (strcmp(v, "unique-id") == 0)
		return PROXYHDR_TLV_UNIQUE_ID;
	if (strcmp(v, "crc32c") == 0)
		return PROXYHDR_TLV_CRC32C;
	return 0;
}

/*
 * The value of a list just read.  libconfuse calls a list's validator
 * after each value it adds (with the line of that value), and once more
 * at the closing brace: checking the last one checks each exactly when it
 * is read, and a long list costs no more than its length.
 */
static const char *
conf_list_last(cfg_opt_t *opt)
{
	unsigned int	 n = cfg_opt_size(opt);
	const char	*v;

	if (n == 0 || (v = cfg_opt_getnstr(opt, n - 1)) == NULL)
		return "";
	return v;
}

static int
conf_v_tlvs(cfg_t *cfg, cfg_opt_t *opt)
{
	const char	*v;
	char		 esc[CONF_ERRLEN];

	if (conf_v_owner(cfg, opt) == -1)
		return -1;
	if (cfg_opt_size(opt) == 0)
		return 0;
	v = conf_list_last(opt);
	if (conf_tlv_parse(v) == 0) {
		cfg_error(cfg, "proxy-protocol-tlvs \"%s\": not one of "
		    "unique-id, crc32c", conf_esc(v, esc, sizeof(esc)));
		return -1;
	}
	return 0;
}

static int
conf_v_bind(cfg_t *cfg, cfg_opt_t *opt)
{
	struct sockaddr_in6	 sin6;
	struct conf_bindline	*bl;
	const char		*v = cfg_opt_getnstr(opt, 0), *err;
	char			 esc[CONF_ERRLEN];

	if (conf_v_owner(cfg, opt) == -1)
		return -1;
	if (v == NULL)
		v = "";
	if ((err = addr_parse_listen(v, &sin6)) != NULL) {
		cfg_error(cfg, "bind \"%s\": %s", conf_esc(v, esc,
		    sizeof(esc)), err);
		return -1;
	}
	if ((bl = calloc(1, sizeof(*bl))) == NULL)
		fatal("calloc");
	bl->bl_sec = cfg;
	bl->bl_line = cfg->line;
	bl->bl_next = conf_bindlines;
	conf_bindlines = bl;
	return 0;
}

static int
conf_v_upstream(cfg_t *cfg, cfg_opt_t *opt)
{
	struct addr_upstream	 au;
	const char		*v, *err;
	char			 esc[CONF_ERRLEN];

	if (conf_v_owner(cfg, opt) == -1)
		return -1;
	if (cfg_opt_size(opt) == 0)
		return 0;
	v = conf_list_last(opt);
	if ((err = addr_parse_upstream(v, &au)) != NULL) {
		cfg_error(cfg, "upstream \"%s\": %s", conf_esc(v, esc,
		    sizeof(esc)), err);
		return -1;
	}
	return 0;
}

static int
conf_v_source(cfg_t *cfg, cfg_opt_t *opt)
{
	struct sockaddr_in	 sin;
	const char		*v = cfg_opt_getnstr(opt, 0), *err;
	char			 esc[CONF_ERRLEN];

	if (conf_v_owner(cfg, opt) == -1)
		return -1;
	if (v == NULL)
		v = "";
	if ((err = addr_parse_ipv4(v, &sin)) != NULL) {
		cfg_error(cfg, "source \"%s\": %s", conf_esc(v, esc,
		    sizeof(esc)), err);
		return -1;
	}
	return 0;
}

static int	conf_stats_line;

static int
conf_v_stats(cfg_t *cfg, cfg_opt_t *opt)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	const char		*v = cfg_opt_getnstr(opt, 0), *err;
	char			 esc[CONF_ERRLEN];

	if (v == NULL)
		v = "";
	if ((err = addr_parse_local(v, &ss, &len)) != NULL) {
		cfg_error(cfg, "stats \"%s\": %s", conf_esc(v, esc,
		    sizeof(esc)), err);
		return -1;
	}
	conf_stats_line = cfg->line;
	return 0;
}

/* allow, deny: CIDRs; an address with host bits set is told its network. */
static int
conf_v_cidrs(cfg_t *cfg, cfg_opt_t *opt)
{
	struct addr_cidr	 ci, net;
	const char		*v, *err;
	char			 esc[CONF_ERRLEN], host[INET6_ADDRSTRLEN];
	char			 buf[ADDR_CIDRLEN];
	int			 mapped;

	if (conf_v_owner(cfg, opt) == -1)
		return -1;
	if (cfg_opt_size(opt) == 0)
		return 0;
	v = conf_list_last(opt);
	if ((err = addr_parse_cidr(v, &ci)) == NULL)
		return 0;
	conf_esc(v, esc, sizeof(esc));
	if (strcmp(err, ADDR_CIDR_HOSTBITS) == 0) {
		/* An IPv4-mapped prefix is held as IPv4: name it as written. */
		mapped = ci.ci_family == AF_INET && strchr(v, ':') != NULL;
		addr_cidr_hostbits(&ci, &net, host, sizeof(host));
		cfg_error(cfg, "%s \"%s\": host bits set past the /%u prefix "
		    "(%s): write the network, %s", cfg_opt_name(opt), esc,
		    ci.ci_prefix + (mapped ? 96u : 0u), host,
		    addr_format_cidr(&net, buf, sizeof(buf)));
	} else
		cfg_error(cfg, "%s \"%s\": %s", cfg_opt_name(opt), esc, err);
	return -1;
}

static int	conf_user_line;

static int
conf_v_user(cfg_t *cfg, cfg_opt_t *opt)
{
	const char	*v = cfg_opt_getnstr(opt, 0);

	if (conf_v_owner(cfg, opt) == -1)
		return -1;
	if (v == NULL || *v == '\0') {
		cfg_error(cfg, "user: empty name");
		return -1;
	}
	conf_user_line = cfg->line;
	return 0;
}

/*
 * Decode the escape at p[0] == '\\' in a quoted string as libconfuse's
 * lexer does.  Returns the byte it puts in the value, or -1 when it puts
 * none that matters here (a line continuation, or a sequence the lexer
 * refuses itself); *n is the escape's length.  The text ends with a NUL,
 * and p[1] is neither a NUL nor a control character other than tab and LF
 * (the caller checks).
 */
static int
conf_unescape(const char *p, int quote, size_t *n)
{
	static const char	 from[] = "nrbfaetv", to[] = "\n\r\b\f\a\033\t\v";
	const char		*m;
	unsigned char		 d = (unsigned char)p[1];
	unsigned long		 v;
	char			 num[4];
	size_t			 k;

	*n = 2;
	if (d == '\n')
		return -1;
	if (quote == '\'')		/* only \\ and \' are escapes */
		return d;
	if (isdigit(d)) {		/* \[0-7]{1,3}; more digits: refused */
		*n = k = 1 + strspn(p + 1, "0123456789");
		if (k > 4 || strspn(p + 1, "01234567") < k - 1)
			return -1;
		memcpy(num, p + 1, k - 1);
		num[k - 1] = '\0';
		v = strtoul(num, NULL, 8);
		return v > 0xff ? -1 : (int)v;
	}
	if (d == 'x' && isxdigit((unsigned char)p[2])) {	/* \x[0-9a-f]{1,2} */
		*n = k = isxdigit((unsigned char)p[3]) ? 4 : 3;
		memcpy(num, p + 2, k - 2);
		num[k - 2] = '\0';
		return (int)strtoul(num, NULL, 16);
	}
	if (d != '\0' && (m = strchr(from, d)) != NULL)
		return (unsigned char)to[m - from];
	return d;
}

/*
 * Report byte c at line:col, written as it is, or made by the escape
 * sequence esc in a quoted value.  Returns -1.
 */
static int
conf_bad_byte(char *err, size_t errlen, const char *file, int line, int col,
    unsigned char c, const char *esc, int quoted)
{
	char	what[32], shown[8];

	if (c == '\0')
		snprintf(what, sizeof(what), "a NUL byte");
	else
		snprintf(what, sizeof(what), "control character %s",
		    conf_esc((char[]){ (char)c, '\0' }, shown, sizeof(shown)));
	if (esc != NULL)
		snprintf(err, errlen, "%s:%d: escape %s at column %d makes %s "
		    "inside a quoted value%s", file, line, esc, col, what,
		    c == '\0' ? "" : ": only tab is allowed there");
	else if (c == '\0')
		snprintf(err, errlen, "%s:%d: NUL byte at column %d: not "
		    "allowed anywhere in the file", file, line, col);
	else if (quoted)
		snprintf(err, errlen, "%s:%d: %s at column %d inside a quoted "
		    "value: only tab is allowed there", file, line, what, col);
	else
		snprintf(err, errlen, "%s:%d: %s at column %d: only tab, CR and "
		    "LF are allowed outside quotes", file, line, what, col);
	return -1;
}

/*
 * Blank out the comments of a configuration text in place (# and // to the
 * end of the line, block comments; newlines kept), and report the first
 * '{' never closed.  Both work around libconfuse: it miscounts lines after
 * comments, so errors would name the wrong line, and it accepts a file
 * that ends inside a section.  Strings are left alone, as its lexer does.
 *
 * A quoted value still open at the end of the file is refused too, with
 * the line and column of its opening quote: libconfuse's lexer would echo
 * a backslash ending it to standard output.
 *
 * Bytes that would change a value unseen are refused with their line and
 * column: a NUL anywhere (libconfuse would end the value there), a control
 * character other than tab inside a quoted value, raw or as an escape
 * ("\n", "\x00", "\0"), and one other than tab, CR and LF outside quotes.
 * Returns 0, or -1 with err set.
 */
static int
conf_prepare(char *text, size_t len, const char *file, char *err,
    size_t errlen)
{
	size_t		i, n, bol = 0;		/* bol: where the line begins */
	int		line = 1, depth = 0, open_line = 0, col, v;
	int		quote = 0, comment = 0;	/* comment: '#' (to EOL) or '*' */
	int		quote_line = 0, quote_col = 0;
	int		env = 0;		/* inside "${VAR}" */
	char		esc[8];
	unsigned char	c;

	for (i = 0; i < len; i++) {
		c = (unsigned char)text[i];
		col = (int)(i - bol) + 1;
		if (c == '\0')
			return conf_bad_byte(err, errlen, file, line, col, c,
			    NULL, quote);
		if (comment == '*') {
			if (c == '*' && i + 1 < len && text[i + 1] == '/') {
				text[i++] = ' ';
				comment = 0;
			}
			if (c != '\n')
				text[i] = ' ';
		} else if (comment) {
			if (c == '\n')
				comment = 0;
			else
				text[i] = ' ';
		} else if (env) {
			if (c == '}')
				env = 0;
		} else if (quote && c == '\\' && i + 1 < len) {
			c = (unsigned char)text[++i];
			if (c == '\n') {		/* continued line */
				line++;
				bol = i + 1;
				continue;
			}
			if (c == '\0' || (conf_ctl(c) && c != '\t'))
				return conf_bad_byte(err, errlen, file, line,
				    col + 1, c, NULL, quote);
			v = conf_unescape(text + i - 1, quote, &n);
			if (v != -1 && v != '\t' && conf_ctl((unsigned char)v)) {
				snprintf(esc, sizeof(esc), "%.*s", (int)n,
				    text + i - 1);
				return conf_bad_byte(err, errlen, file, line, col,
				    (unsigned char)v, esc, quote);
			}
			i += n - 2;
			continue;
		} else if (quote) {
			if (c == quote)
				quote = 0;
			else if (c == '$' && quote == '"' && i + 1 < len &&
			    text[i + 1] == '{' && memchr(text + i + 2, '}',
			    len - i - 2) != NULL)
				env = 1;	/* the lexer's ${VAR} */
			else if (conf_ctl(c) && c != '\t')
				return conf_bad_byte(err, errlen, file, line,
				    col, c, NULL, quote);
		} else if (c == '"' || c == '\'') {
			quote = c;
			quote_line = line;
			quote_col = col;
		} else if (c == '#' || (c == '/' && i + 1 < len &&
		    (text[i + 1] == '/' || text[i + 1] == '*'))) {
			comment = (c == '/' && text[i + 1] == '*') ? '*' : '#';
			text[i] = ' ';
			if (c == '/')
				text[++i] = ' ';
		} else if (c == '{') {
			if (depth++ == 0)
				open_line = line;
		} else if (c == '}' && depth > 0)
			depth--;
		else if (conf_ctl(c) && c != '\t' && c != '\r' && c != '\n')
			return conf_bad_byte(err, errlen, file, line, col, c,
			    NULL, 0);
		if (c == '\n') {
			line++;
			bol = i + 1;
		}
	}
	if (quote) {
		snprintf(err, errlen, "%s:%d: the quoted value at column %d is "
		    "never closed (the file ends inside it)", file, quote_line,
		    quote_col);
		return -1;
	}
	if (depth > 0 && comment != '*') {
		snprintf(err, errlen, "%s:%d: '{' is never closed (the file "
		    "ends inside a section)", file, open_line);
		return -1;
	}
	return 0;
}

/* Read a whole configuration file; NULL with err set on failure. */
static char *
conf_read(const char *file, size_t *lenp, char *err, size_t errlen)
{
	FILE	*fp;
	char	*text = NULL, *p;
	size_t	 len = 0, cap = 0, n;

	if ((fp = fopen(file, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (len + 4096 > cap) {
			cap = cap ? cap * 2 : 8192;
			if (cap > CONF_FILEMAX + 8192) {
				snprintf(err, errlen, "%s: larger than %d bytes",
				    file, CONF_FILEMAX);
				goto fail;
			}
			if ((p = realloc(text, cap)) == NULL)
				fatal("realloc");
			text = p;
		}
		n = fread(text + len, 1, cap - len - 1, fp);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(fp)) {
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		goto fail;
	}
	fclose(fp);
	text[len] = '\0';
	*lenp = len;
	return text;
 fail:
	fclose(fp);
	free(text);
	return NULL;
}

static char *
conf_strdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		fatal("strdup");
	return p;
}

static struct conf *
conf_new(void)
{
	struct conf	*conf;

	if ((conf = calloc(1, sizeof(*conf))) == NULL)
		fatal("calloc");
	conf->c_log_level = LOG_INFO;
	conf->c_drain_timeout = CONF_DRAIN_TIMEOUT;
	conf->c_splice = 1;
	TAILQ_INIT(&conf->c_listens);
	return conf;
}

static struct listen_conf *
conf_listen_new(const char *name, int line)
{
	struct listen_conf	*lc;

	if ((lc = calloc(1, sizeof(*lc))) == NULL)
		fatal("calloc");
	lc->lc_refs = 1;
	lc->lc_name = conf_strdup(name);
	lc->lc_line = line;
	lc->lc_v6only = 1;
	lc->lc_balance = BALANCE_FIRST;
	lc->lc_connect_timeout = CONF_CONNECT_TIMEOUT;
	lc->lc_idle_timeout = CONF_IDLE_TIMEOUT;
	lc->lc_keepalive = CONF_KEEPALIVE;
	return lc;
}

static int
conf_title_ok(const char *t)
{
	size_t	n = strlen(t), i;

	if (n == 0 || n > CONF_TITLEMAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)t[i]) && strchr("-_.", t[i]) == NULL)
			return 0;
	return 1;
}

/* The CIDRs of a list key (validated while parsing); NULL when none. */
static struct addr_cidr *
conf_cidrs_copy(cfg_t *sec, const char *key, size_t *np)
{
	struct addr_cidr	*list;
	unsigned int		 i, n;

	*np = n = cfg_size(sec, key);
	if (n == 0)
		return NULL;
	if ((list = calloc(n, sizeof(*list))) == NULL)
		fatal("calloc");
	for (i = 0; i < n; i++)
		addr_parse_cidr(cfg_getnstr(sec, key, i), &list[i]);
	return list;
}

/* Copy one parsed listen section; values were validated while parsing. */
static struct listen_conf *
conf_listen_copy(cfg_t *sec, const char *file, char *err, size_t errlen)
{
	struct listen_conf	*lc;
	const char		*title = cfg_title(sec), *v;
	char			 esc[CONF_ERRLEN];
	unsigned int		 i, n;

	if (!conf_title_ok(title)) {
		snprintf(err, errlen, "%s:%d: listen \"%s\": a title is 1-%d "
		    "letters, digits, '-', '_' or '.'", file, sec->line,
		    conf_esc(title, esc, sizeof(esc)), CONF_TITLEMAX);
		return NULL;
	}
	if ((v = cfg_getstr(sec, "bind")) == NULL) {
		snprintf(err, errlen, "%s:%d: listen %s: missing bind "
		    "(the section ends here)",
		    file, sec->line, title);
		return NULL;
	}
	if ((n = cfg_size(sec, "upstream")) == 0) {
		snprintf(err, errlen, "%s:%d: listen %s: missing upstream "
		    "(the section ends here)",
		    file, sec->line, title);
		return NULL;
	}
	lc = conf_listen_new(title, conf_bindline(sec));
	addr_parse_listen(v, &lc->lc_bind);
	lc->lc_v6only = cfg_getbool(sec, "v6only") ? 1 : 0;
	if ((lc->lc_upstreams = calloc(n, sizeof(*lc->lc_upstreams))) == NULL)
		fatal("calloc");
	for (i = 0; i < n; i++)
		addr_parse_upstream(cfg_getnstr(sec, "upstream", i),
		    &lc->lc_upstreams[i]);
	lc->lc_nupstreams = n;
	if (strcmp(cfg_getstr(sec, "balance"), "roundrobin") == 0)
		lc->lc_balance = BALANCE_ROUNDROBIN;
	if ((v = cfg_getstr(sec, "source")) != NULL) {
		addr_parse_ipv4(v, &lc->lc_source);
		lc->lc_has_source = 1;
	}
	lc->lc_connect_timeout = (int)cfg_getint(sec, "connect-timeout");
	lc->lc_idle_timeout = (int)cfg_getint(sec, "idle-timeout");
	lc->lc_max_conns = (int)cfg_getint(sec, "max-connections");
	lc->lc_keepalive = (int)cfg_getint(sec, "keepalive");
	lc->lc_max_per_source = (unsigned)cfg_getint(sec, "max-per-source");
	lc->lc_allow = conf_cidrs_copy(sec, "allow", &lc->lc_nallow);
	lc->lc_deny = conf_cidrs_copy(sec, "deny", &lc->lc_ndeny);
	lc->lc_proxy = conf_proxy_parse(cfg_getstr(sec, "proxy-protocol"));
	for (i = 0; i < cfg_size(sec, "proxy-protocol-tlvs"); i++)
		lc->lc_proxy_tlvs |= conf_tlv_parse(cfg_getnstr(sec,
		    "proxy-protocol-tlvs", i));
	if (lc->lc_proxy_tlvs != 0 && lc->lc_proxy != PROXYHDR_V2) {
		snprintf(err, errlen, "%s:%d: listen %s: proxy-protocol-tlvs "
		    "needs proxy-protocol = v2", file, sec->line, title);
		conf_listen_unref(lc);
		return NULL;
	}
	return lc;
}

/* Why two binds that overlap without being equal cannot coexist. */
static const char *
conf_overlap_why(const struct listen_conf *a, const struct listen_conf *b)
{
	const struct listen_conf *any = a, *other = b;

	if (IN6_IS_ADDR_UNSPECIFIED(&b->lc_bind.sin6_addr)) {
		any = b;
		other = a;
	}
	if (!IN6_IS_ADDR_UNSPECIFIED(&any->lc_bind.sin6_addr))
		return "0.0.0.0 takes the port on every IPv4 address";
	if (IN6_IS_ADDR_V4MAPPED(&other->lc_bind.sin6_addr))
		return "[::] with v6only = false takes the port on every IPv4 "
		    "address too";
	return "[::] takes the port on every IPv6 address, whatever v6only "
	    "says";
}

/*
 * Cross checks, once every listener is copied: no two listeners may bind
 * what cannot be bound at once, the same address and port, or a wildcard
 * and an address on the same port (port 0 excepted).
 */
static int
conf_check_listens(struct conf *conf, char *err, size_t errlen)
{
	struct listen_conf	*a, *b;
	char			 buf[ADDR_STRLEN], abuf[ADDR_STRLEN];

	TAILQ_FOREACH(b, &conf->c_listens, lc_entry) {
		TAILQ_FOREACH(a, &conf->c_listens, lc_entry) {
			if (a == b)
				break;
			if (!addr_binds_overlap(&a->lc_bind, a->lc_v6only,
			    &b->lc_bind, b->lc_v6only))
				continue;
			addr_format_bind(&b->lc_bind, buf, sizeof(buf));
			if (addr_equal6(&a->lc_bind, &b->lc_bind))
				snprintf(err, errlen, "%s:%d: listen %s: bind "
				    "%s is already used by listen %s (line %d)",
				    conf->c_file, b->lc_line, b->lc_name, buf,
				    a->lc_name, a->lc_line);
			else
				snprintf(err, errlen, "%s:%d: listen %s: bind "
				    "%s overlaps %s of listen %s (line %d): %s",
				    conf->c_file, b->lc_line, b->lc_name, buf,
				    addr_format_bind(&a->lc_bind, abuf,
				    sizeof(abuf)), a->lc_name,
				    a->lc_line, conf_overlap_why(a, b));
			return -1;
		}
	}
	return 0;
}

/* Keys with a check of their own; conf_ranges and conf_words hold the rest. */
static const struct {
	const char		*path;
	cfg_validate_callback_t	 fn;
} conf_validators[] = {
	{ "user",			conf_v_user },
	{ "stats",			conf_v_stats },
	{ "listen|bind",		conf_v_bind },
	{ "listen|upstream",		conf_v_upstream },
	{ "listen|source",		conf_v_source },
	{ "listen|proxy-protocol-tlvs",	conf_v_tlvs },
	{ "listen|allow",		conf_v_cidrs },
	{ "listen|deny",		conf_v_cidrs },
	{ "splice",			conf_v_bool },
	{ "listen|v6only",		conf_v_bool },
};

static void
conf_set_validators(cfg_t *cfg)
{
	size_t	nr = CONF_NITEMS(conf_ranges), nw = CONF_NITEMS(conf_words);
	size_t	i;

	for (i = 0; i < CONF_NITEMS(conf_validators); i++)
		cfg_set_validate_func(cfg, conf_validators[i].path,
		    conf_validators[i].fn);
	/* Both tables in one loop: the generic checks look up their path. */
	for (i = 0; i < nr + nw; i++)
		cfg_set_validate_func(cfg, i < nr ? conf_ranges[i].path :
		    conf_words[i - nr].path, i < nr ? conf_v_range : conf_v_word);
}

/* Step 1: the file's text, read and prepared for the parser. */
static char *
conf_text(const char *file, size_t *lenp, char *err, size_t errlen)
{
	char	*text;

	if ((text = conf_read(file, lenp, err, errlen)) == NULL)
		return NULL;
	if (conf_prepare(text, *lenp, file, err, errlen) == -1) {
		free(text);
		return NULL;
	}
	return text;
}

/*
 * Where a parse that failed without a word (libconfuse refuses an empty
 * key, "" = 1, silently) stopped: the line of the top level, or of the
 * section it was reading, the last one begun.
 */
static int
conf_parse_line(cfg_t *cfg)
{
	unsigned int	n = cfg_size(cfg, "listen");
	cfg_t		*sec;
	int		 line = cfg->line;

	if (n > 0 && (sec = cfg_getnsec(cfg, "listen", n - 1)) != NULL &&
	    sec->line > line)
		line = sec->line;
	return line;
}

/* Step 2: parse the text (every value is checked as it is read). */
static cfg_t *
conf_parse(const char *file, char *text, size_t len, char *err,
    size_t errlen)
{
	cfg_opt_t listen_opts[] = {
		CFG_STR("bind", NULL, CFGF_NODEFAULT),
		CFG_BOOL("v6only", cfg_true, CFGF_NONE),
		CFG_STR_LIST("upstream", NULL, CFGF_NODEFAULT),
		CFG_STR("balance", "first", CFGF_NONE),
		CFG_STR("source", NULL, CFGF_NODEFAULT),
		CFG_INT("connect-timeout", CONF_CONNECT_TIMEOUT, CFGF_NONE),
		CFG_INT("idle-timeout", CONF_IDLE_TIMEOUT, CFGF_NONE),
		CFG_INT("max-connections", 0, CFGF_NONE),
		CFG_STR("proxy-protocol", "off", CFGF_NONE),
		CFG_STR_LIST("proxy-protocol-tlvs", NULL, CFGF_NODEFAULT),
		CFG_INT("keepalive", CONF_KEEPALIVE, CFGF_NONE),
		CFG_INT("max-per-source", 0, CFGF_NONE),
		CFG_STR_LIST("allow", NULL, CFGF_NODEFAULT),
		CFG_STR_LIST("deny", NULL, CFGF_NODEFAULT),
		CFG_END()
	};
	cfg_opt_t opts[] = {
		CFG_STR("user", NULL, CFGF_NODEFAULT),
		CFG_STR("log-level", "info", CFGF_NONE),
		CFG_INT("drain-timeout", CONF_DRAIN_TIMEOUT, CFGF_NONE),
		CFG_INT("max-connections", 0, CFGF_NONE),
		CFG_INT("workers", 0, CFGF_NONE),
		CFG_BOOL("splice", cfg_true, CFGF_NONE),
		CFG_STR("stats", NULL, CFGF_NODEFAULT),
		CFG_SEC("listen", listen_opts,
		    CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
		CFG_END()
	};
	cfg_t	*cfg;
	FILE	*fp;
	int	 rc;

	if ((fp = fmemopen(text, len, "r")) == NULL)
		fatal("fmemopen");
	if ((cfg = cfg_init(opts, CFGF_NONE)) == NULL)
		fatal("cfg_init");
	cfg_set_error_function(cfg, conf_errfunc);
	conf_set_validators(cfg);

	conf_err = err;
	conf_errlen = errlen;
	/* cfg_parse_fp() leaves the file name unset: name it for errors. */
	free(cfg->filename);
	cfg->filename = conf_strdup(file);
	rc = cfg_parse_fp(cfg, fp);
	fclose(fp);
	conf_err = NULL;
	if (rc != CFG_SUCCESS) {
		if (err[0] == '\0')
			snprintf(err, errlen, "%s:%d: cannot parse this (an empty "
			    "key?)", file, conf_parse_line(cfg));
		cfg_free(cfg);
		return NULL;
	}
	return cfg;
}

/* Step 3: the global settings. */
static void
conf_copy_globals(struct conf *conf, cfg_t *cfg)
{
	const char	*v;

	if ((v = cfg_getstr(cfg, "user")) != NULL) {
		conf->c_user = conf_strdup(v);
		conf->c_user_line = conf_user_line;
	}
	conf->c_log_level = log_level_parse(cfg_getstr(cfg, "log-level"));
	conf->c_drain_timeout = (int)cfg_getint(cfg, "drain-timeout");
	conf->c_max_conns = (int)cfg_getint(cfg, "max-connections");
	conf->c_workers = (int)cfg_getint(cfg, "workers");
	conf->c_splice = cfg_getbool(cfg, "splice") ? 1 : 0;
	if ((v = cfg_getstr(cfg, "stats")) != NULL) {
		addr_parse_local(v, &conf->c_stats, &conf->c_statslen);
		conf->c_stats_line = conf_stats_line;
	}
}

/* Step 4: the listen sections, in the order written. */
static int
conf_copy_listens(struct conf *conf, cfg_t *cfg, char *err, size_t errlen)
{
	struct listen_conf	*lc;
	unsigned int		 i, n;

	if ((n = cfg_size(cfg, "listen")) == 0) {
		snprintf(err, errlen, "%s: no listen section: nothing to do",
		    conf->c_file);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if ((lc = conf_listen_copy(cfg_getnsec(cfg, "listen", i),
		    conf->c_file, err, errlen)) == NULL)
			return -1;
		TAILQ_INSERT_TAIL(&conf->c_listens, lc, lc_entry);
	}
	return 0;
}

/*
 * The stats endpoint is no relay listener: it may not take a port a
 * listener binds (an IPv4 address counts as the IPv4-mapped one a
 * dual-stack listener takes).
 */
static int
conf_check_stats(struct conf *conf, char *err, size_t errlen)
{
	const struct listen_conf *lc;
	struct sockaddr_in6	 st;
	const struct sockaddr_in *sin;
	char			 buf[ADDR_STRLEN], lbuf[ADDR_STRLEN];

	if (conf->c_statslen == 0)
		return 0;
	if (conf->c_stats.ss_family == AF_INET6)
		memcpy(&st, &conf->c_stats, sizeof(st));
	else {
		sin = (const struct sockaddr_in *)&conf->c_stats;
		memset(&st, 0, sizeof(st));
		st.sin6_family = AF_INET6;
		st.sin6_port = sin->sin_port;
		st.sin6_addr.s6_addr[10] = st.sin6_addr.s6_addr[11] = 0xff;
		memcpy(&st.sin6_addr.s6_addr[12], &sin->sin_addr, 4);
	}
	TAILQ_FOREACH(lc, &conf->c_listens, lc_entry) {
		if (!addr_binds_overlap(&lc->lc_bind, lc->lc_v6only, &st,
		    conf->c_stats.ss_family == AF_INET ? 0 : 1))
			continue;
		snprintf(err, errlen, "%s:%d: stats %s: overlaps bind %s of "
		    "listen %s (line %d): the stats endpoint needs a port of "
		    "its own", conf->c_file, conf->c_stats_line,
		    addr_format((const struct sockaddr *)&conf->c_stats, buf,
		    sizeof(buf)), addr_format((const struct sockaddr *)
		    &lc->lc_bind, lbuf, sizeof(lbuf)), lc->lc_name,
		    lc->lc_line);
		return -1;
	}
	return 0;
}

struct conf *
conf_load(const char *file, char *err, size_t errlen)
{
	struct conf	*conf = NULL;
	cfg_t		*cfg;
	char		*text;
	size_t		 len;

	err[0] = '\0';
	if ((text = conf_text(file, &len, err, errlen)) == NULL)
		return NULL;
	cfg = conf_parse(file, text, len, err, errlen);
	free(text);
	if (cfg != NULL) {
		conf = conf_new();
		conf->c_file = conf_strdup(file);
		conf_copy_globals(conf, cfg);
		if (conf_copy_listens(conf, cfg, err, errlen) == -1 ||
		    conf_check_listens(conf, err, errlen) == -1 ||
		    conf_check_stats(conf, err, errlen) == -1) {
			conf_free(conf);
			conf = NULL;
		}
		cfg_free(cfg);
	}
	conf_bindlines_free();
	return conf;
}

struct conf *
conf_adhoc(const char *listen, const char *upstream, const char *proxy,
    char *err, size_t errlen)
{
	struct conf		*conf;
	struct listen_conf	*lc;
	struct sockaddr_in6	 sin6;
	struct addr_upstream	 au;
	const char		*e;
	char			 esc[CONF_ERRLEN];
	int			 pp = PROXYHDR_OFF;

	if (proxy != NULL && (pp = conf_proxy_parse(proxy)) == -1) {
		snprintf(err, errlen, "--proxy-protocol \"%s\": not one of off, "
		    "v1, v2", conf_esc(proxy, esc, sizeof(esc)));
		return NULL;
	}
	if ((e = addr_parse_listen(listen, &sin6)) != NULL) {
		snprintf(err, errlen, "LISTEN \"%s\": %s", conf_esc(listen, esc,
		    sizeof(esc)), e);
		return NULL;
	}
	if ((e = addr_parse_upstream(upstream, &au)) != NULL) {
		snprintf(err, errlen, "UPSTREAM \"%s\": %s", conf_esc(upstream,
		    esc, sizeof(esc)), e);
		return NULL;
	}
	conf = conf_new();
	lc = conf_listen_new(CONF_ADHOC_NAME, 0);
	lc->lc_bind = sin6;
	if ((lc->lc_upstreams = calloc(1, sizeof(au))) == NULL)
		fatal("calloc");
	lc->lc_upstreams[0] = au;
	lc->lc_nupstreams = 1;
	lc->lc_proxy = pp;
	TAILQ_INSERT_TAIL(&conf->c_listens, lc, lc_entry);
	return conf;
}

struct listen_conf *
conf_listen_ref(struct listen_conf *lc)
{
	atomic_fetch_add_explicit(&lc->lc_refs, 1, memory_order_relaxed);
	return lc;
}

/* Any worker may drop the last reference: the count is atomic. */
void
conf_listen_unref(struct listen_conf *lc)
{
	if (atomic_fetch_sub_explicit(&lc->lc_refs, 1,
	    memory_order_acq_rel) > 1)
		return;
	if (lc->lc_unlink != NULL)
		lc->lc_unlink(lc);
	free(lc->lc_name);
	free(lc->lc_upstreams);
	free(lc->lc_allow);
	free(lc->lc_deny);
	free(lc);
}

void
conf_free(struct conf *conf)
{
	struct listen_conf	*lc;

	if (conf == NULL)
		return;
	while ((lc = TAILQ_FIRST(&conf->c_listens)) != NULL) {
		TAILQ_REMOVE(&conf->c_listens, lc, lc_entry);
		conf_listen_unref(lc);
	}
	free(conf->c_file);
	free(conf->c_user);
	free(conf);
}

/* What the upstream learns of the client, in words, for logs and -C. */
const char *
conf_proxy_text(const struct listen_conf *lc)
{
	switch (lc->lc_proxy) {
	case PROXYHDR_V1:
		return "PROXY v1 header: the upstream learns each client's "
		    "address";
	case PROXYHDR_V2:
		return "PROXY v2 header: the upstream learns each client's "
		    "address";
	default:
		return "no PROXY header: the upstream sees the relay's address, "
		    "not the client's";
	}
}

/* "A:P,B:P" as written, for logs and -t. */
const char *
conf_upstreams_str(const struct listen_conf *lc, char *buf, size_t len)
{
	char	one[ADDR_HOSTMAX + 8];
	size_t	i, off = 0;
	int	n;

	buf[0] = '\0';
	for (i = 0; i < lc->lc_nupstreams; i++) {
		addr_format_upstream(&lc->lc_upstreams[i], one, sizeof(one));
		n = snprintf(buf + off, len - off, "%s%s", i ? "," : "", one);
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
	}
	return buf;
}

/* ", KEY {A/P, B/P}" for a list of CIDRs; nothing when it is empty. */
static void
conf_print_cidrs(FILE *fp, const char *key, const struct addr_cidr *list,
    size_t n)
{
	char	buf[ADDR_CIDRLEN];
	size_t	i;

	if (n == 0)
		return;
	fprintf(fp, ", %s {", key);
	for (i = 0; i < n; i++)
		fprintf(fp, "%s%s", i ? ", " : "",
		    addr_format_cidr(&list[i], buf, sizeof(buf)));
	fputc('}', fp);
}

/* The effective listeners, one per line, as -t prints them. */
void
conf_print(const struct conf *conf, FILE *fp)
{
	const struct listen_conf *lc;
	char			 bind[ADDR_STRLEN], src[ADDR_STRLEN];
	char			 up[ADDR_HOSTMAX + 8];
	size_t			 i;

	if (conf->c_statslen > 0)
		fprintf(fp, "stats %s: /metrics\n", addr_format((const struct
		    sockaddr *)&conf->c_stats, bind, sizeof(bind)));
	TAILQ_FOREACH(lc, &conf->c_listens, lc_entry) {
		addr_format_bind(&lc->lc_bind, bind, sizeof(bind));
		src[0] = '\0';
		if (lc->lc_has_source)
			inet_ntop(AF_INET, &lc->lc_source.sin_addr, src,
			    sizeof(src));
		/* Every upstream, however many: no buffer to cut them. */
		fprintf(fp, "listen %s: bind %s v6only %s, upstream ",
		    lc->lc_name, bind, lc->lc_v6only ? "yes" : "no");
		for (i = 0; i < lc->lc_nupstreams; i++)
			fprintf(fp, "%s%s", i ? "," : "", addr_format_upstream(
			    &lc->lc_upstreams[i], up, sizeof(up)));
		fprintf(fp, ", balance %s, %s%s%sconnect-timeout %d, "
		    "idle-timeout %d, max-connections %d, proxy-protocol %s%s%s",
		    lc->lc_balance == BALANCE_ROUNDROBIN ? "roundrobin" : "first",
		    lc->lc_has_source ? "source " : "", src,
		    lc->lc_has_source ? ", " : "",
		    lc->lc_connect_timeout, lc->lc_idle_timeout,
		    lc->lc_max_conns, lc->lc_proxy == PROXYHDR_V2 ? "v2" :
		    lc->lc_proxy == PROXYHDR_V1 ? "v1" : "off",
		    lc->lc_proxy_tlvs & PROXYHDR_TLV_UNIQUE_ID ?
		    " unique-id" : "",
		    lc->lc_proxy_tlvs & PROXYHDR_TLV_CRC32C ? " crc32c" : "");
		fprintf(fp, ", keepalive %d, max-per-source %u", lc->lc_keepalive,
		    lc->lc_max_per_source);
		conf_print_cidrs(fp, "allow", lc->lc_allow, lc->lc_nallow);
		conf_print_cidrs(fp, "deny", lc->lc_deny, lc->lc_ndeny);
		fputc('\n', fp);
	}
}
