/*
 * userconf.h - the smtpcert client's configuration: defaults for the sending verbs
 * (send, encrypt, sign, decrypt, fetch lookups) and the keygen switch, read from
 *   1. the system file /etc/smtpcert/smtpcert.conf ($SMTPCERT_SYSTEM_CONFIG for tests),
 *   2. the user file: --config FILE, else $SMTPCERT_CONFIG, else
 *      $XDG_CONFIG_HOME/smtpcert/config (~/.config/smtpcert/config).
 * Both are optional (a file named by --config or $SMTPCERT_CONFIG must exist). The
 * user file overrides the system file key by key, except that `keygen = no` in the
 * system file cannot be turned back on (the proposal requires that an administrator
 * can disable key generation). Syntax and keys: smtpcert.conf(5); the parser is the
 * library's (sc_config_load_client()). Command-line options override both files.
 *
 * Runs in the user's process. Strings are owned by the struct (userconf_free()).
 */
#ifndef SMTPCERT_USERCONF_H
#define SMTPCERT_USERCONF_H

#include <stddef.h>
#include <smtpcert/smtpcert.h>

enum userconf_encrypt {
	UC_ENCRYPT_OPPORTUNISTIC = 0, /* encrypt when every recipient has a certificate */
	UC_ENCRYPT_ALWAYS,            /* never send plaintext */
	UC_ENCRYPT_NEVER
};

struct userconf {
	/* where the values came from ("" = no such file was read) */
	char system_path[512];
	char user_path[512];

	char *from;                 /* address, or NULL */
	char *submit;               /* "HOST[:PORT]" (port 587 when absent), or NULL = MX */
	char *submit_user;
	char *submit_password_file;
	enum userconf_encrypt encrypt;
	int sign;                   /* 0/1 */
	char *key;                  /* file name or pkcs11: URI, or NULL */
	char *cert;
	char *passphrase_file;
	char *ca_file;
	char *smime_ca_file;
	/* TOFU store and cache: NULL = the library's default (XDG directories),
	 * "" = off (`none` in the file); as sc_lookup_opts.known_file / cache_dir. */
	char *known_certs;
	char *cache_dir;
	int cache_ttl;              /* seconds */
	char *resolver;             /* "ADDR[@PORT]", or NULL = system */
	char *dnssec_anchor;
	int keygen;                 /* 0: smtpcert keygen is disabled */
	int keygen_locked;          /* disabled by the system file (a user file cannot undo) */
	char *pkcs11_module;        /* NULL = $SMTPCERT_PKCS11_MODULE / p11-kit-proxy */
	int timeout;                /* seconds per network step */
};

/**
 * Fill @p uc from the system file and the user file (see above). A leading "~/"
 * in a file name is replaced by $HOME. @p override_path is --config's value or NULL.
 * @return SC_OK; SC_ERR_CONFIG ("FILE:LINE: key: reason") or SC_ERR_IO (an
 *         explicitly named file is missing or unreadable) with a message in @p err.
 *         @p uc is always safe to pass to userconf_free().
 */
SC_MUST_CHECK sc_status userconf_load(struct userconf *uc, const char *override_path,
				      char *err, size_t errlen);

void userconf_free(struct userconf *uc);

/** "always", "opportunistic", "never". */
const char *userconf_encrypt_name(enum userconf_encrypt e);

/** Parse "always" / "opportunistic" / "never" (a --encrypt value). @return 0 or -1. */
int userconf_parse_encrypt(const char *s, enum userconf_encrypt *out);

/**
 * Fill the lookup options a verb's command line left unset (NULL / 0) from the
 * client configuration: trust anchors, known-certificates file, cache, resolver,
 * DNSSEC anchor, timeout. Pointers borrow from @p uc (keep it until the lookups
 * are done). Used by fetch, encrypt and send.
 */
void userconf_lookup_defaults(struct sc_lookup_opts *lk, const struct userconf *uc);

/**
 * Read a secret (passphrase, PIN, password) from the first line of @p path into
 * @p buf (NUL-terminated, line end removed, at most @p size - 1 bytes). Refuses an
 * empty first line, a NUL byte, and a line that does not fit.
 * @return SC_OK; SC_ERR_IO / SC_ERR_NOT_FOUND / SC_ERR_PERM; SC_ERR_SYNTAX;
 *         SC_ERR_TOO_LONG. A message goes to @p err. Wipe @p buf after use.
 */
SC_MUST_CHECK sc_status userconf_read_secret(const char *path, char *buf, size_t size,
					     char *err, size_t errlen);

#endif
