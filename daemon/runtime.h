/*
 * runtime.h - everything smtpcertd loads from its configuration, as one
 * reference-counted bundle: the parsed config, the STARTTLS context, the CRL set,
 * the repositories and the limits derived from them.
 *
 * SIGHUP builds a new runtime and swaps it in only when every part loaded, so a
 * reload never drops a connection. A session keeps a reference to the runtime it
 * started with for what it announces (hostname, EHLO keywords, limits, its TLS
 * context), but certificate lookups always use runtime_current(): a CRL or
 * repository change applies to every session at its next CERT. An old runtime
 * is freed when its last session ends.
 */
#ifndef SMTPCERTD_RUNTIME_H
#define SMTPCERTD_RUNTIME_H

#include <stddef.h>
#include <smtpcert/smtpcert.h>

/** Most stores in `repository`. */
#define RUNTIME_REPOS_MAX 16

/* Defaults when the config parser does not know a key (docs/design.md). */
#define RUNTIME_IDLE_TIMEOUT_DEFAULT 300 /* RFC 5321 4.5.3.2.7 */
#define RUNTIME_MAX_ERRORS_DEFAULT 10
#define RUNTIME_MAX_CONNECTIONS_DEFAULT 4096
#define RUNTIME_SIZE_DEFAULT 10485760L

/** An opened store, shared between runtimes when a reload keeps its spec: LMDB
 *  forbids opening one environment twice in a process (lmdb.h, "Caveats"). */
struct runtime_repo {
	unsigned refs;   /**< atomic: a reload takes references off the loop */
	sc_repo *repo;
	unsigned writable; /**< opened read-write (first store under submissions = auto) */
};

enum runtime_submissions { RUNTIME_SUBMIT_OFF, RUNTIME_SUBMIT_REVIEW, RUNTIME_SUBMIT_AUTO };

/** The `delivery` key: where accepted mail goes (none = mail is refused). */
enum runtime_delivery {
	RUNTIME_DELIVERY_NONE, RUNTIME_DELIVERY_MAILDIR, RUNTIME_DELIVERY_LMTP,
	RUNTIME_DELIVERY_PROXY
};
enum runtime_proxy_protocol { RUNTIME_PROXY_XCLIENT, RUNTIME_PROXY_V2, RUNTIME_PROXY_NONE };

struct runtime {
	unsigned refs;
	unsigned generation;          /**< 1 for the first load, +1 per reload */
	sc_config *cfg;
	sc_tls_ctx *tls;              /**< NULL when STARTTLS is not configured */
	sc_crlset *crls;
	struct runtime_repo *repos[RUNTIME_REPOS_MAX];
	size_t nrepos;
	const char *hostname;         /**< from cfg, or hostname_buf */
	char hostname_buf[256];
	const char *cert_url;         /**< NULL unless cert_url is set */
	long idle_timeout;            /**< seconds */
	long max_errors;
	long max_connections;
	long size_limit;              /**< EHLO SIZE value */
	/* abuse resistance (anvil.c, conn_limits.c, harvest.c): 0 = off */
	long max_conns_per_ip;        /**< per IPv4 address / IPv6 /64 */
	long max_conn_rate;           /**< per IPv4 address / IPv6 /64, per minute */
	long command_timeout;         /**< seconds from a line's first byte to its end */
	long session_timeout;         /**< seconds per session */
	long harvest_threshold;       /**< not-found answers before delays */
	long harvest_limit;           /**< not-found answers before 421 */
	long harvest_ip_limit;        /**< not-found answers per network per hour */
	unsigned limits_exempt_loopback : 1;
	unsigned repository_index : 1; /**< keep lookup indexes (repo_index.c) */
	long repository_index_copy;   /**< MiB the indexes may copy (repo_index.c) */
	unsigned repository_index_huge : 1; /**< from reserved huge pages (repo_index.c) */
	enum runtime_submissions submissions;
	/* AUTH (cmd_auth.c): the credential source, NULL without `auth`; used by
	 * worker threads, so a job holds a reference to the runtime */
	sc_auth *auth;
	long auth_fail_delay;         /**< seconds before 535 */
	long auth_max_failures;       /**< per client IP and per user, per hour */
	/* CERC (cmd_cerc.c): the review queue under state_dir, opened when
	 * submissions != off; the postmaster address; the upload limit */
	sc_queue *queue;
	struct sc_addr postmaster;
	long submission_max;
	/* mail reception (cmd_mail.c, delivery.c) and proxy mode (proxy.c) */
	enum runtime_delivery delivery;
	const char *delivery_spec;    /**< the `delivery` value, NULL when unset */
	char backend_host[256];       /**< lmtp:/proxy: HOST ("" otherwise) */
	char backend_port[8];
	enum runtime_proxy_protocol proxy_protocol;
	long proxy_timeout;           /**< seconds */
	long delivery_timeout;        /**< seconds */
	long max_recipients;
	unsigned encrypt_at_rest : 1;
	/** local recipients beyond the auth source (`recipients` file); owned by
	 *  rcpt_local.c, NULL when not configured */
	struct rcpt_local *local_rcpts;
};

/** smtpcertd -n: runtime_load() then checks without writing: local stores are
 *  opened read-only and not created (a missing one is noted in the log),
 *  pgsql: databases are not contacted, the review queue is not opened. */
void runtime_set_check(int on);

/**
 * Load the configuration at @p path and everything it names (TLS files, CRLs,
 * repositories, opened read-only except the first one under `submissions =
 * auto`, which cmd_cerc.c stores into; the review queue). @p old (may be NULL) lends its open stores to
 * the new runtime when a spec is unchanged. May run on a worker thread while
 * the loop serves with @p old, which the caller keeps referenced; one load at
 * a time (the generation counter and the file hook are not locked).
 * @return SC_OK with a runtime holding one reference in *@p out; otherwise a
 *         status and an administrator-readable message in @p err ("FILE:LINE: key:
 *         reason" for config errors).
 */
SC_MUST_CHECK sc_status runtime_load(const char *path, const struct runtime *old,
				     struct runtime **out, char *err, size_t errlen);

void runtime_ref(struct runtime *rt);
void runtime_unref(struct runtime *rt);

/** A store outlives the runtimes that name it while a reference is held (any
 *  thread); the last unref closes it. */
void runtime_repo_ref(struct runtime_repo *rr);
void runtime_repo_unref(struct runtime_repo *rr);

/** The runtime new sessions and new commands use (borrowed; ref it to keep it). */
struct runtime *runtime_current(void);

/** Make @p rt current, taking over the caller's reference; the previous one is
 *  unreferenced. */
void runtime_set_current(struct runtime *rt);

/**
 * How files named by the configuration are reached: the hook returns a path this
 * process can read for @p path (possibly @p path itself) and may return in *@p fd
 * a descriptor to close after loading. Used after a privilege drop
 * (privhelper.c); without a hook files are opened directly.
 */
typedef const char *(*runtime_file_hook)(const char *path, char *buf, size_t size, int *fd);
void runtime_set_file_hook(runtime_file_hook hook);

/** Privilege separation (writer.h): with @p on, later loads open no review queue
 *  (rt->queue stays NULL while submissions are on) and every repository
 *  read-only; the writer process does those writes. */
void runtime_set_writer(int on);

/** Write the `listen` entries of @p rt, comma-separated, into @p out (truncated
 *  to fit) so that a reload can tell whether they changed. */
void runtime_listen_text(const struct runtime *rt, char *out, size_t size);

#endif
