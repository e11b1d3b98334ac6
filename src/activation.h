/*
 * activation.h: listening sockets passed by the service manager, by title.
 */
#ifndef RELAY64_ACTIVATION_H
#define RELAY64_ACTIVATION_H

#include <stddef.h>

struct listen_conf;

void	activation_init(void);
int	activation_take(const struct listen_conf *, char *err, size_t errlen);
void	activation_done(void);

#endif
