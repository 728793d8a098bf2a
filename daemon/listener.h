/*
 * listener.h - the listening sockets of smtpcertd (`listen` entries).
 *
 * Sockets are bound before the daemon forks and drops privileges (port 25 needs
 * root), and registered with the event loop afterwards.
 */
#ifndef SMTPCERTD_LISTENER_H
#define SMTPCERTD_LISTENER_H

#include <stddef.h>
#include <sys/socket.h>
#include <event2/event.h>
#include <smtpcert/smtpcert.h>

/** Most `listen` entries. */
#define LISTENER_MAX 16

/**
 * Bind one socket per entry of @p specs ("ADDR:PORT", "[IPV6]:PORT", "*:PORT").
 * @return SC_OK; SC_ERR_CONFIG (bad entry) or SC_ERR_NETWORK (bind failed) with a
 *         message naming the entry in @p err. Nothing stays bound on failure.
 */
SC_MUST_CHECK sc_status listener_bind_all(const char *const *specs, size_t n, char *err,
					  size_t errlen);

/** Start accepting on @p base: connections go to conn_accept(). */
SC_MUST_CHECK sc_status listener_start(struct event_base *base);

/** Close every listening socket (SIGTERM, exit). */
void listener_close_all(void);

/** TCP_NODELAY on an accepted client socket @p fd whose peer is @p sa (TCP
 *  only; refusal is harmless). Called for every accept; exposed for the tests. */
void listener_nodelay(int fd, const struct sockaddr *sa);

/** Split "host:port" / "[v6]:port". Exposed for the unit tests.
 *  @return SC_OK or SC_ERR_SYNTAX. */
SC_MUST_CHECK sc_status listener_split(const char *spec, char *host, size_t hostlen,
				       char *port, size_t portlen);

/** The actual bound address of listener @p i as text (for the startup line; after
 *  binding port 0 this shows the port chosen). @return NULL past the last. */
const char *listener_name(size_t i);

#endif
