/*
 * splice.c: moving a bulk direction's bytes with splice(2).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "splice.h"

/*
 * The pipe of a bulk direction, and the most bytes one splice moves.  Four
 * times the default pipe: fewer, larger splices (tests/bench on loopback:
 * about a third less proxy CPU per GB than with 64 KiB).  An
 * unprivileged user's pipes share a budget (fs/pipe-user-pages-soft, 64 MiB
 * by default) that this keeps enough of for 256 such pipes; beyond it the
 * kernel hands out tiny pipes, and those directions copy instead.
 */
#define SPLICE_CHUNK	(256 * 1024)
/* A pipe smaller than this would move bulk bytes slower than copying. */
#define SPLICE_MIN	(64 * 1024)

/* Get a pipe for sp: 0, or -1 when none (or only a tiny one) can be had. */
int
splice_start(struct splice_pipe *sp)
{
	if (pipe2(sp->sp_fd, O_NONBLOCK | O_CLOEXEC) == -1) {
		splice_pipe_init(sp);
		return -1;
	}
	sp->sp_len = 0;
	/* Failing that (the user's pipe budget), the default size will do. */
	(void)fcntl(sp->sp_fd[1], F_SETPIPE_SZ, SPLICE_CHUNK);
	if (fcntl(sp->sp_fd[1], F_GETPIPE_SZ) < SPLICE_MIN) {
		splice_stop(sp);
		return -1;
	}
	return 0;
}

void
splice_stop(struct splice_pipe *sp)
{
	if (sp->sp_fd[0] != -1) {
		close(sp->sp_fd[0]);
		close(sp->sp_fd[1]);
	}
	splice_pipe_init(sp);
}

/* Empty the pipe into to, as far as it takes; *moved counts what went. */
enum splice_result
splice_flush(struct splice_pipe *sp, int to, uint64_t *moved)
{
	ssize_t	n;

	while (sp->sp_len > 0) {
		n = splice(sp->sp_fd[0], NULL, to, NULL, sp->sp_len,
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return SPLICE_AGAIN;
			if (errno == EINTR)
				continue;
			return SPLICE_ERR_TO;
		}
		sp->sp_len -= (uint32_t)n;
		*moved += (uint64_t)n;
	}
	return SPLICE_AGAIN;
}

/*
 * Up to rounds splices from from into the pipe, each passed on to to,
 * until the source has nothing, the destination takes no more, or EOF.
 */
enum splice_result
splice_pump(struct splice_pipe *sp, int from, int to, int rounds,
    uint64_t *moved)
{
	enum splice_result	 r;
	ssize_t			 n;
	int			 i;

	for (i = 0; i < rounds; i++) {
		n = splice(from, NULL, sp->sp_fd[1], NULL, SPLICE_CHUNK,
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return SPLICE_AGAIN;
			return SPLICE_ERR_FROM;
		}
		if (n == 0)
			return SPLICE_EOF;
		sp->sp_len = (uint32_t)n;
		if ((r = splice_flush(sp, to, moved)) != SPLICE_AGAIN)
			return r;
		if (sp->sp_len > 0 || n < SPLICE_CHUNK)
			return SPLICE_AGAIN;
	}
	return SPLICE_AGAIN;
}
