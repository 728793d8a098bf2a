/*
 * smtpcert/config.h - the smtpcertd.conf parser, shared by the daemon and the
 * admin CLI so both read one file the same way.
 *
 * Format (Postfix style): "key = value" lines, '#' starts a comment line, a line
 * starting with whitespace continues the previous one, list values are separated
 * by commas and/or whitespace. Every key is declared in a table in lib/config.c with
 * its type, default and validation; an unknown key, a duplicate scalar key or an
 * invalid value is an error reported as "FILE:LINE: key: reason". List keys may be
 * repeated and accumulate (crl_file = a.pem, then crl_file = b.pem).
 *
 * Ownership: strings returned by getters live as long as the sc_config.
 */
#ifndef SMTPCERT_CONFIG_H
#define SMTPCERT_CONFIG_H

#include <stddef.h>
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sc_config sc_config;

/** Longest config file accepted. */
#define SC_CONFIG_MAX_BYTES (1024 * 1024)

/**
 * Load and validate a config file.
 * @return SC_OK; SC_ERR_IO (unreadable, message names the file); SC_ERR_CONFIG with
 *         "FILE:LINE: key: reason" in @p err.
 */
SC_MUST_CHECK sc_status sc_config_load(const char *path, sc_config **out, char *err,
				       size_t errlen);

/** Same from memory; @p name is used in messages in place of the file name. */
SC_MUST_CHECK sc_status sc_config_parse(const char *text, size_t len, const char *name,
					sc_config **out, char *err, size_t errlen);

/**
 * Load the smtpcert client's configuration file (~/.config/smtpcert/config or
 * /etc/smtpcert/smtpcert.conf, see smtpcert.conf(5)): the same syntax and
 * messages as sc_config_load(), with the client's keys (from, submit, encrypt,
 * sign, key, cert, keygen, ...). The getters below work on the result;
 * sc_config_domain_kind() answers SC_DOMAIN_FOREIGN for it.
 */
SC_MUST_CHECK sc_status sc_config_load_client(const char *path, sc_config **out, char *err,
					      size_t errlen);

/** Same from memory (as sc_config_parse()). */
SC_MUST_CHECK sc_status sc_config_parse_client(const char *text, size_t len, const char *name,
					       sc_config **out, char *err, size_t errlen);

void sc_config_free(sc_config *c);

/** Path (or name) the configuration came from. */
const char *sc_config_source(const sc_config *c);

/** @return non-zero when @p key is a key the parser knows. */
int sc_config_key_known(const char *key);

/** @return non-zero when @p key was set in the file (not just defaulted). */
int sc_config_is_set(const sc_config *c, const char *key);

/**
 * Line of the file where @p key was (first) set; 0 when it has its default or the
 * key is unknown. Lets a program report a runtime problem with a value (e.g. an
 * unreadable tls_key_file) as "FILE:LINE: key: reason".
 */
unsigned sc_config_line(const sc_config *c, const char *key);

/**
 * Format "FILE:LINE: key: message" (or "FILE: key: message" when the key has its
 * default) into @p err, printf-style.
 */
void sc_config_errorf(const sc_config *c, const char *key, char *err, size_t errlen,
		      const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
	__attribute__((format(printf, 5, 6)))
#endif
	;

/** Scalar string value, or its default; NULL when unset without default. */
const char *sc_config_str(const sc_config *c, const char *key);

/** List value: *@p items receives the array (valid as long as @p c); @return count. */
size_t sc_config_list(const sc_config *c, const char *key, const char *const **items);

/** Integer value (validated at load time), or its default. */
long long sc_config_int(const sc_config *c, const char *key);

/** Boolean value ("yes"/"no", "true"/"false", "on"/"off", "1"/"0"). */
int sc_config_bool(const sc_config *c, const char *key);

enum sc_domain_kind {
	SC_DOMAIN_FOREIGN = 0, /**< not ours: never a certificate, never relayed */
	SC_DOMAIN_LOCAL,       /**< in `domains` */
	SC_DOMAIN_GATEWAY      /**< in `gateway_domains` */
};

/** Classify @p domain (case-insensitive, trailing dot ignored). */
enum sc_domain_kind sc_config_domain_kind(const sc_config *c, const char *domain);

/** The key table, for --help output and documentation checks. */
struct sc_config_keyinfo {
	const char *name;
	const char *type;  /**< "string", "list", "int", "bool", "enum", "path" */
	const char *def;   /**< default as text, or NULL */
	const char *help;  /**< one line */
};
/** @return the number of keys; *@p keys receives the table. */
size_t sc_config_keys(const struct sc_config_keyinfo **keys);
/** The client file's key table (as sc_config_keys()). */
size_t sc_config_client_keys(const struct sc_config_keyinfo **keys);

#ifdef __cplusplus
}
#endif
#endif
