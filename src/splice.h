/*
 * splice.h: the zero-copy path of a bulk direction.
 *
 * A direction that carries bulk gets a pipe, and its bytes move socket ->
 * pipe -> socket with splice(2), never through user space.  What the
 * destination has not taken yet stays in the pipe (sp_len), and the source
 * is not read while it does.  splice.c is built only with splice (Linux);
 * without it, the functions below are stand-ins that never open a pipe,
 * so every direction copies.  splice.c knows nothing of sessions: it moves
 * bytes between the descriptors it is given and says how it went.
 */
#ifndef RELAY64_SPLICE_H
#define RELAY64_SPLICE_H

#include <stdint.h>

/* A pipe, or none (sp_fd[0] == -1). */
struct splice_pipe {
	int		 sp_fd[2];
	uint32_t	 sp_len;	/* bytes waiting in it */
};

enum splice_result {
	SPLICE_AGAIN,		/* the source has nothing now, or the
				   destination takes no more (sp_len > 0) */
	SPLICE_EOF,		/* the source sent FIN, the pipe is empty */
	SPLICE_ERR_FROM,	/* reading the source failed: errno */
	SPLICE_ERR_TO,		/* writing the destination failed: errno */
};

static inline void
splice_pipe_init(struct splice_pipe *sp)
{
	sp->sp_fd[0] = sp->sp_fd[1] = -1;
	sp->sp_len = 0;
}

static inline int
splice_pipe_open(const struct splice_pipe *sp)
{
	return sp->sp_fd[0] != -1;
}

#ifdef USE_SPLICE
int		splice_start(struct splice_pipe *);
enum splice_result splice_flush(struct splice_pipe *, int to, uint64_t *);
enum splice_result splice_pump(struct splice_pipe *, int from, int to,
		    int rounds, uint64_t *);
void		splice_stop(struct splice_pipe *);
#else
static inline int
splice_start(struct splice_pipe *sp)
{
	(void)sp;
	return -1;
}

static inline enum splice_result
splice_flush(struct splice_pipe *sp, int to, uint64_t *moved)
{
	(void)sp;
	(void)to;
	(void)moved;
	return SPLICE_AGAIN;
}

static inline enum splice_result
splice_pump(struct splice_pipe *sp, int from, int to, int rounds,
    uint64_t *moved)
{
	(void)sp;
	(void)from;
	(void)to;
	(void)rounds;
	(void)moved;
	return SPLICE_AGAIN;
}

static inline void
splice_stop(struct splice_pipe *sp)
{
	(void)sp;
}
#endif

#endif
