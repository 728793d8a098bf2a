/*
 * userconf.c - the smtpcert client's configuration (userconf.h): find the system
 * and user files, parse each with the library's client table, merge them (user over
 * system, except that the system file's `keygen = no` is final), expand "~/", and
 * read secrets from files. Runs in the user's process.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "userconf.h"

#define UC_SYSTEM_PATH "/etc/smtpcert/smtpcert.conf"
#define UC_SECRET_MAX 4096

static const char *const encrypt_names[] = { "opportunistic", "always", "never" };

const char *userconf_encrypt_name(enum userconf_encrypt e)
{
	return (unsigned)e < 3 ? encrypt_names[e] : "opportunistic";
}

int userconf_parse_encrypt(const char *s, enum userconf_encrypt *out)
{
	for (unsigned i = 0; s && i < 3; i++)
		if (!strcmp(s, encrypt_names[i])) {
			*out = (enum userconf_encrypt)i;
			return 0;
		}
	return -1;
}

/* "~/x" -> "$HOME/x"; "none" -> "" when @p none_ok; else a copy. NULL on ENOMEM. */
static char *uc_expand(const char *v, int none_ok)
{
	const char *home = getenv("HOME");
	size_t n;
	char *out;

	if (none_ok && !strcmp(v, "none"))
		return strdup("");
	if (v[0] != '~' || v[1] != '/' || !home || !home[0])
		return strdup(v);
	n = strlen(home) + strlen(v);
	out = malloc(n);
	if (out)
		snprintf(out, n, "%s%s", home, v + 1);
	return out;
}

/*
 * Set *@p dst from @p key when @p c set it (a later file overrides an earlier one).
 * Defaults are not copied: NULL in the struct means "the library's default".
 */
static int uc_take(const sc_config *c, const char *key, char **dst, int path, int none_ok)
{
	const char *v;
	char *copy;

	if (!c || !sc_config_is_set(c, key) || !(v = sc_config_str(c, key)))
		return 0;
	copy = path ? uc_expand(v, none_ok) : strdup(v);
	if (!copy)
		return -1;
	free(*dst);
	*dst = copy;
	return 0;
}

static int uc_apply(struct userconf *uc, const sc_config *c)
{
	const char *enc;

	if (uc_take(c, "from", &uc->from, 0, 0) || uc_take(c, "submit", &uc->submit, 0, 0) ||
	    uc_take(c, "submit_user", &uc->submit_user, 0, 0) ||
	    uc_take(c, "submit_password_file", &uc->submit_password_file, 1, 0) ||
	    uc_take(c, "key", &uc->key, 1, 0) || uc_take(c, "cert", &uc->cert, 1, 0) ||
	    uc_take(c, "passphrase_file", &uc->passphrase_file, 1, 0) ||
	    uc_take(c, "ca_file", &uc->ca_file, 1, 0) ||
	    uc_take(c, "smime_ca_file", &uc->smime_ca_file, 1, 0) ||
	    uc_take(c, "known_certs", &uc->known_certs, 1, 1) ||
	    uc_take(c, "cache_dir", &uc->cache_dir, 1, 1) ||
	    uc_take(c, "resolver", &uc->resolver, 0, 0) ||
	    uc_take(c, "dnssec_anchor", &uc->dnssec_anchor, 1, 0) ||
	    uc_take(c, "pkcs11_module", &uc->pkcs11_module, 1, 0))
		return -1;
	if (sc_config_is_set(c, "encrypt") && (enc = sc_config_str(c, "encrypt")))
		(void)userconf_parse_encrypt(enc, &uc->encrypt);
	if (sc_config_is_set(c, "sign"))
		uc->sign = sc_config_bool(c, "sign");
	if (sc_config_is_set(c, "cache_ttl"))
		uc->cache_ttl = (int)sc_config_int(c, "cache_ttl");
	if (sc_config_is_set(c, "timeout"))
		uc->timeout = (int)sc_config_int(c, "timeout");
	if (sc_config_is_set(c, "keygen") && !uc->keygen_locked)
		uc->keygen = sc_config_bool(c, "keygen");
	return 0;
}

/*
 * Load one file. A missing file that nobody named is simply absent (*@p out NULL);
 * one that was named (--config, environment) must exist.
 */
static sc_status uc_load_file(const char *path, int must_exist, sc_config **out, char *err,
			      size_t errlen)
{
	struct stat sb;

	*out = NULL;
	if (!must_exist && stat(path, &sb) != 0 && errno == ENOENT)
		return SC_OK;
	return sc_config_load_client(path, out, err, errlen);
}

/* The user file's path: --config, $SMTPCERT_CONFIG, $XDG_CONFIG_HOME, ~/.config. */
static int uc_user_path(const char *override_path, char *buf, size_t size, int *named)
{
	const char *env = getenv("SMTPCERT_CONFIG");
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	int n;

	*named = 1;
	if (override_path && override_path[0])
		n = snprintf(buf, size, "%s", override_path);
	else if (env && env[0])
		n = snprintf(buf, size, "%s", env);
	else if ((*named = 0), xdg && xdg[0] == '/')
		/* XDG Base Directory: a relative $XDG_CONFIG_HOME is invalid and ignored. */
		n = snprintf(buf, size, "%s/smtpcert/config", xdg);
	else if (home && home[0])
		n = snprintf(buf, size, "%s/.config/smtpcert/config", home);
	else
		n = snprintf(buf, size, "%s", "");
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

sc_status userconf_load(struct userconf *uc, const char *override_path, char *err,
			size_t errlen)
{
	const char *sys = getenv("SMTPCERT_SYSTEM_CONFIG");
	sc_config *c = NULL;
	int named;
	sc_status st;

	memset(uc, 0, sizeof *uc);
	uc->keygen = 1;
	uc->cache_ttl = 3600;
	uc->timeout = 30;
	if (err && errlen)
		err[0] = '\0';
	if (!sys || !sys[0])
		sys = UC_SYSTEM_PATH;
	if ((size_t)snprintf(uc->system_path, sizeof uc->system_path, "%s", sys) >=
	    sizeof uc->system_path) {
		snprintf(err, errlen, "%s: path too long", sys);
		return SC_ERR_CONFIG;
	}
	st = uc_load_file(uc->system_path, 0, &c, err, errlen);
	if (st != SC_OK)
		return st;
	if (c) {
		if (sc_config_is_set(c, "keygen") && !sc_config_bool(c, "keygen"))
			uc->keygen_locked = 1;
		if (uc_apply(uc, c) != 0) {
			sc_config_free(c);
			return SC_ERR_NOMEM;
		}
		uc->keygen = !uc->keygen_locked;
		sc_config_free(c);
	} else {
		uc->system_path[0] = '\0';
	}
	if (uc_user_path(override_path, uc->user_path, sizeof uc->user_path, &named) != 0) {
		snprintf(err, errlen, "configuration file path too long");
		return SC_ERR_CONFIG;
	}
	if (!uc->user_path[0])
		return SC_OK;
	st = uc_load_file(uc->user_path, named, &c, err, errlen);
	if (st != SC_OK)
		return st;
	if (!c) {
		uc->user_path[0] = '\0';
		return SC_OK;
	}
	if (uc_apply(uc, c) != 0) {
		sc_config_free(c);
		return SC_ERR_NOMEM;
	}
	sc_config_free(c);
	return SC_OK;
}

void userconf_free(struct userconf *uc)
{
	char **const fields[] = { &uc->from, &uc->submit, &uc->submit_user,
				  &uc->submit_password_file, &uc->key, &uc->cert,
				  &uc->passphrase_file, &uc->ca_file, &uc->smime_ca_file,
				  &uc->known_certs, &uc->cache_dir, &uc->resolver,
				  &uc->dnssec_anchor, &uc->pkcs11_module };

	if (!uc)
		return;
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		free(*fields[i]);
		*fields[i] = NULL;
	}
}

sc_status userconf_read_secret(const char *path, char *buf, size_t size, char *err,
			       size_t errlen)
{
	char tmp[UC_SECRET_MAX + 2];
	size_t len = 0, n;
	struct stat sb;
	int fd;

	if (!path || !buf || size < 2)
		return SC_ERR_ARG;
	buf[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int e = errno;

		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return e == ENOENT ? SC_ERR_NOT_FOUND : e == EACCES ? SC_ERR_PERM : SC_ERR_IO;
	}
	if (fstat(fd, &sb) != 0 || S_ISDIR(sb.st_mode)) {
		close(fd);
		snprintf(err, errlen, "%s: not a file", path);
		return SC_ERR_IO;
	}
	/* Only the first line matters; read a bounded prefix (a FIFO works too). */
	while (len < sizeof tmp) {
		ssize_t r = read(fd, tmp + len, sizeof tmp - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;

			close(fd);
			explicit_bzero(tmp, sizeof tmp);
			snprintf(err, errlen, "%s: %s", path, strerror(e));
			return SC_ERR_IO;
		}
		if (r == 0 || memchr(tmp + len, '\n', (size_t)r)) {
			len += (size_t)r;
			break;
		}
		len += (size_t)r;
	}
	close(fd);
	for (n = 0; n < len && tmp[n] != '\n'; n++)
		if (tmp[n] == '\0') {
			explicit_bzero(tmp, sizeof tmp);
			snprintf(err, errlen, "%s: NUL byte in the first line", path);
			return SC_ERR_SYNTAX;
		}
	if (n > 0 && tmp[n - 1] == '\r')
		n--;
	if (n == 0) {
		explicit_bzero(tmp, sizeof tmp);
		snprintf(err, errlen, "%s: the first line is empty", path);
		return SC_ERR_SYNTAX;
	}
	if (n >= size || n > UC_SECRET_MAX) {
		explicit_bzero(tmp, sizeof tmp);
		snprintf(err, errlen, "%s: the first line is too long (max %zu bytes)", path,
			 (size < UC_SECRET_MAX + 1 ? size : UC_SECRET_MAX + 1) - 1);
		return SC_ERR_TOO_LONG;
	}
	memcpy(buf, tmp, n);
	buf[n] = '\0';
	explicit_bzero(tmp, sizeof tmp);
	return SC_OK;
}

void userconf_lookup_defaults(struct sc_lookup_opts *lk, const struct userconf *uc)
{
	if (!lk->ca_file)
		lk->ca_file = uc->ca_file;
	if (!lk->smime_ca_file)
		lk->smime_ca_file = uc->smime_ca_file;
	if (!lk->known_file)
		lk->known_file = uc->known_certs;
	if (!lk->cache_dir)
		lk->cache_dir = uc->cache_dir;
	if (!lk->cache_ttl)
		lk->cache_ttl = uc->cache_ttl;
	if (!lk->resolver)
		lk->resolver = uc->resolver;
	if (!lk->dnssec_anchor)
		lk->dnssec_anchor = uc->dnssec_anchor;
	if (!lk->timeout_ms && uc->timeout > 0 && uc->timeout < INT_MAX / 1000)
		lk->timeout_ms = uc->timeout * 1000;
}
