// net: socket helpers shared by convd's own clients (convd healthcheck) and the tests' raw
// clients, so that there is one loop of each.
#ifndef NET_H
#define NET_H

#include <stdbool.h>
#include <stddef.h>

// Sends all `len` bytes on the blocking socket `fd`, however many send() calls that takes.
// False when the connection fails first (a peer that closed gives an error, not SIGPIPE);
// errno says why.
bool net_send_all(int fd, const char *data, size_t len);

#endif
