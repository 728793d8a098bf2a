/*
 * smtpcert/status.h - the one status type of libsmtpcert.
 *
 * Every function that a peer, a file or the environment can make fail returns an
 * sc_status. Values fall into categories (sc_status_category()) so that callers can
 * map them to SMTP replies and CLI exit codes without listing every value.
 * sc_strerror() is total: it returns a static string for any int, known or not.
 */
#ifndef SMTPCERT_STATUS_H
#define SMTPCERT_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define SC_MUST_CHECK __attribute__((warn_unused_result))
#else
#define SC_MUST_CHECK
#endif

typedef enum sc_status {
	SC_OK = 0,

	/* flow: not errors, the caller goes on */
	SC_AGAIN = 1,          /**< need more input (line not complete yet) */
	SC_WANT_READ = 2,      /**< non-blocking I/O: wait until readable */
	SC_WANT_WRITE = 3,     /**< non-blocking I/O: wait until writable */
	SC_EOF = 4,            /**< the peer closed the stream cleanly */

	/* input: the peer or the file said something wrong (permanent) */
	SC_ERR_SYNTAX = 100,   /**< malformed input */
	SC_ERR_TOO_LONG,       /**< input over a limit */
	SC_ERR_TOO_MANY,       /**< too many items (lines, certificates, entries) */
	SC_ERR_UNSUPPORTED,    /**< well-formed but not something we do */
	SC_ERR_ENCODING,       /**< not valid UTF-8 / base64 / DER */

	/* lookup results (permanent) */
	SC_ERR_NOT_FOUND = 200,
	SC_ERR_EXISTS,
	SC_ERR_EXPIRED,        /**< certificate notAfter is in the past */
	SC_ERR_NOT_YET_VALID,  /**< certificate notBefore is in the future */
	SC_ERR_REVOKED,        /**< on a CRL */
	SC_ERR_FOREIGN_DOMAIN, /**< address not in a served domain */
	SC_ERR_MISMATCH,       /**< e.g. certificate email differs from the address */
	SC_ERR_POLICY,         /**< refused by a configured policy */

	/* environment: may succeed later (temporary) */
	SC_ERR_TEMP = 300,     /**< repository or peer temporarily unavailable */
	SC_ERR_IO,             /**< read/write/fsync failed */
	SC_ERR_NETWORK,        /**< connect/resolve/socket failure */
	SC_ERR_TIMEOUT,
	SC_ERR_NOMEM,

	/* security */
	SC_ERR_TLS = 400,      /**< TLS handshake or record failure */
	SC_ERR_VERIFY,         /**< peer certificate did not verify */
	SC_ERR_CRYPTO,         /**< a crypto library call failed */
	SC_ERR_PERM,           /**< permission denied */
	SC_ERR_AUTH,           /**< wrong or missing passphrase, PIN or credentials */
	SC_ERR_CHANGED,        /**< a remembered (TOFU) certificate changed */

	/* peer protocol */
	SC_ERR_PROTOCOL = 500, /**< the peer broke the protocol */
	SC_ERR_REJECTED,       /**< the peer answered with a failure reply */

	/* local */
	SC_ERR_CONFIG = 600,   /**< configuration invalid */
	SC_ERR_ARG,            /**< a caller passed an invalid argument */
	SC_ERR_INTERNAL        /**< broken invariant inside the library */
} sc_status;

enum sc_status_category {
	SC_CAT_OK,
	SC_CAT_FLOW,
	SC_CAT_INPUT,
	SC_CAT_LOOKUP,
	SC_CAT_TEMP,
	SC_CAT_SECURITY,
	SC_CAT_PROTOCOL,
	SC_CAT_LOCAL,
	SC_CAT_UNKNOWN
};

/** @return a static, human-readable string for any value (never NULL). */
const char *sc_strerror(int status);

/** @return the category of @p status; SC_CAT_UNKNOWN for values not in the enum. */
enum sc_status_category sc_status_category(int status);

/** @return non-zero when the failure may go away by itself (SMTP 4xx rather than 5xx). */
int sc_status_is_temporary(int status);

/*
 * Guard macros: the small fixed set used throughout the library and programs.
 * SC_TRY evaluates an expression returning sc_status and returns it from the
 * enclosing function unless it is SC_OK.
 */
#define SC_TRY(expr)                                    \
	do {                                            \
		sc_status sc_try_rc_ = (expr);          \
		if (sc_try_rc_ != SC_OK)                \
			return sc_try_rc_;              \
	} while (0)

/** Return @p status from the enclosing function when @p cond is false. */
#define SC_ENSURE(cond, status)                         \
	do {                                            \
		if (!(cond))                            \
			return (status);                \
	} while (0)

/** Fail with SC_ERR_ARG when a required pointer argument is NULL. */
#define SC_ENSURE_ARG(ptr) SC_ENSURE((ptr) != 0, SC_ERR_ARG)

#ifdef __cplusplus
}
#endif
#endif
