/*
 * config_client_fuzz.c - sc_config_parse_client() (the smtpcert client's file, the
 * client key table of lib/config_keys.c) on arbitrary bytes: SC_OK or
 * SC_ERR_CONFIG with a NUL-terminated message, never a crash or a leak, and a
 * parsed file answers every getter for every client key.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <smtpcert/smtpcert.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct sc_config_keyinfo *keys;
	size_t nkeys = sc_config_client_keys(&keys);
	char err[256];
	sc_config *c = NULL;
	sc_status st = sc_config_parse_client((const char *)data, size, "fuzz", &c, err,
					      sizeof err);

	if (st != SC_OK) {
		if (st != SC_ERR_CONFIG && st != SC_ERR_NOMEM)
			__builtin_trap();
		if (memchr(err, '\0', sizeof err) == NULL)
			__builtin_trap();
		return 0;
	}
	for (size_t i = 0; i < nkeys; i++) {
		const char *s = sc_config_str(c, keys[i].name);

		if (s && !s[0])
			__builtin_trap();
		(void)sc_config_int(c, keys[i].name);
		(void)sc_config_bool(c, keys[i].name);
		(void)sc_config_line(c, keys[i].name);
	}
	/* Defaults hold whatever the file said. */
	if (!sc_config_str(c, "encrypt") || !sc_config_int(c, "cache_ttl"))
		__builtin_trap();
	(void)sc_config_domain_kind(c, "example.test");
	sc_config_free(c);
	return 0;
}
