/*
 * test_config_client.c - the smtpcert client's configuration file through the
 * library's parser (sc_config_parse_client / sc_config_load_client, the client key
 * table in lib/config_keys.c): every key, defaults, value checks, the same syntax
 * errors as smtpcertd.conf, the two tables kept apart (a daemon key is unknown
 * to the client and the other way round), and smtpcert.conf(5) naming every key. cli/userconf.c's merging is tested
 * through the CLI in tests/integration/test_keygen_pkcs11.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <smtpcert/smtpcert.h>
#include "testcert.h"

static char err[512];

static sc_config *parse(const char *text)
{
	sc_config *c = NULL;

	err[0] = '\0';
	if (sc_config_parse_client(text, strlen(text), "client.conf", &c, err, sizeof err) !=
	    SC_OK)
		return NULL;
	return c;
}

static void expect_error(const char *text, const char *needle)
{
	sc_config *c = (sc_config *)&c;

	assert_int_equal(sc_config_parse_client(text, strlen(text), "client.conf", &c, err,
						sizeof err), SC_ERR_CONFIG);
	assert_null(c);
	if (!strstr(err, needle))
		fail_msg("error \"%s\" lacks \"%s\"", err, needle);
}

static void test_all_keys(void **state)
{
	static const char text[] =
		"# the sender's defaults\n"
		"from = Alice@Example.TEST\n"
		"submit = mail.example.test:587\n"
		"submit_user = alice\n"
		"submit_password_file = ~/.smtp-password\n"
		"encrypt = always\n"
		"sign = yes\n"
		"key = pkcs11:token=MyToken;object=mail\n"
		"cert = /home/alice/alice.pem\n"
		"passphrase_file = /home/alice/.pass\n"
		"ca_file = /etc/ssl/certs/ca-certificates.crt\n"
		"smime_ca_file = /home/alice/smime-cas.pem\n"
		"known_certs = none\n"
		"cache_dir = /tmp/cache\n"
		"cache_ttl = 600\n"
		"resolver = 127.0.0.1@5353\n"
		"dnssec_anchor = /usr/share/dns/root.key\n"
		"keygen = no\n"
		"pkcs11_module = /usr/lib/softhsm/libsofthsm2.so\n"
		"timeout = 5\n";
	sc_config *c = parse(text);

	assert_non_null(c);
	assert_string_equal(sc_config_str(c, "from"), "Alice@Example.TEST");
	assert_string_equal(sc_config_str(c, "submit"), "mail.example.test:587");
	assert_string_equal(sc_config_str(c, "submit_user"), "alice");
	assert_string_equal(sc_config_str(c, "submit_password_file"), "~/.smtp-password");
	assert_string_equal(sc_config_str(c, "encrypt"), "always");
	assert_true(sc_config_bool(c, "sign"));
	assert_string_equal(sc_config_str(c, "key"), "pkcs11:token=MyToken;object=mail");
	assert_string_equal(sc_config_str(c, "known_certs"), "none");
	assert_int_equal(sc_config_int(c, "cache_ttl"), 600);
	assert_string_equal(sc_config_str(c, "resolver"), "127.0.0.1@5353");
	assert_false(sc_config_bool(c, "keygen"));
	assert_true(sc_config_is_set(c, "keygen"));
	assert_int_equal(sc_config_line(c, "keygen"), 18);
	assert_int_equal(sc_config_int(c, "timeout"), 5);
	/* Not a server configuration: no domains. */
	assert_int_equal(sc_config_domain_kind(c, "example.test"), SC_DOMAIN_FOREIGN);
	assert_null(sc_config_str(c, "domains"));
	assert_string_equal(sc_config_source(c), "client.conf");
	sc_config_free(c);
}

static void test_defaults(void **state)
{
	sc_config *c = parse("");

	assert_non_null(c);
	assert_string_equal(sc_config_str(c, "encrypt"), "opportunistic");
	assert_false(sc_config_bool(c, "sign"));
	assert_true(sc_config_bool(c, "keygen"));
	assert_false(sc_config_is_set(c, "keygen"));
	assert_int_equal(sc_config_int(c, "cache_ttl"), 3600);
	assert_int_equal(sc_config_int(c, "timeout"), 30);
	assert_null(sc_config_str(c, "from"));
	assert_null(sc_config_str(c, "submit"));
	assert_null(sc_config_str(c, "pkcs11_module"));
	sc_config_free(c);

	/* Host forms for submit: name, IPv4, [IPv6]:port, name without port. */
	c = parse("submit = 192.0.2.1:465\n");
	assert_non_null(c);
	sc_config_free(c);
	c = parse("submit = [2001:db8::1]:587\n");
	assert_non_null(c);
	sc_config_free(c);
	c = parse("submit = smtp.example.test\nresolver = ::1\n");
	assert_non_null(c);
	sc_config_free(c);
}

static void test_bad_values(void **state)
{
	expect_error("encrypt = sometimes\n", "client.conf:1: encrypt");
	expect_error("sign = maybe\n", "expected yes or no");
	expect_error("keygen = 2\n", "keygen");
	expect_error("from = not an address\n", "not a valid mail address");
	expect_error("submit = host:99999\n", "port");
	expect_error("submit = 2001:db8::1\n", "brackets");
	expect_error("submit = bad_host!\n", "not a host name");
	expect_error("resolver = dns.example.test\n", "numeric");
	expect_error("resolver = 127.0.0.1@0\n", "port");
	expect_error("resolver = @53\n", "ADDRESS");
	expect_error("cache_ttl = 0\n", "out of range");
	expect_error("cache_ttl = ten\n", "not an integer");
	expect_error("timeout = 99999\n", "out of range");
	expect_error("key = pkcs11:\n", "empty pkcs11: URI");
	expect_error("key =\n", "missing value");
	expect_error("from = a@b.test\nfrom = c@d.test\n", "duplicate");
	/* Same syntax rules as smtpcertd.conf. */
	expect_error("  from = a@b.test\n", "continuation");
	expect_error("from a@b.test\n", "missing '='");
	expect_error("from = a@b\001.test\n", "control character");
	/* The tables are separate. */
	expect_error("domains = example.test\n", "unknown configuration key");
	expect_error("listen = 127.0.0.1:25\n", "unknown configuration key");
}

static void test_tables_apart(void **state)
{
	static const char text[] = "domains = example.test\nkeygen = no\n";
	const struct sc_config_keyinfo *keys;
	size_t n = sc_config_client_keys(&keys), i;
	sc_config *c = NULL;
	int seen = 0;

	/* smtpcertd.conf does not know the client's keys. */
	assert_int_equal(sc_config_parse(text, sizeof text - 1, "d.conf", &c, err, sizeof err),
			 SC_ERR_CONFIG);
	assert_non_null(strstr(err, "keygen: unknown configuration key"));
	assert_false(sc_config_key_known("keygen"));
	assert_true(sc_config_key_known("domains"));

	assert_true(n >= 19);
	for (i = 0; i < n; i++) {
		assert_non_null(keys[i].name);
		assert_non_null(keys[i].help);
		if (!strcmp(keys[i].name, "keygen")) {
			assert_string_equal(keys[i].type, "bool");
			assert_string_equal(keys[i].def, "yes");
			seen++;
		}
		if (!strcmp(keys[i].name, "encrypt")) {
			assert_string_equal(keys[i].type, "enum");
			assert_string_equal(keys[i].def, "opportunistic");
			seen++;
		}
	}
	assert_int_equal(seen, 2);
}

static void test_load_file(void **state)
{
	char dir[512], path[700];
	sc_config *c = NULL;

	tc_tmpdir(dir, sizeof dir);
	snprintf(path, sizeof path, "%s/config", dir);
	assert_int_equal(sc_config_load_client(path, &c, err, sizeof err), SC_ERR_IO);
	assert_non_null(strstr(err, path));
	tc_write_file(path, "sign = yes\nencrypt = never\n", 27);
	assert_int_equal(sc_config_load_client(path, &c, err, sizeof err), SC_OK);
	assert_true(sc_config_bool(c, "sign"));
	assert_string_equal(sc_config_str(c, "encrypt"), "never");
	assert_string_equal(sc_config_source(c), path);
	sc_config_free(c);
	tc_write_file(path, "sign = yes\nbogus = 1\n", 21);
	assert_int_equal(sc_config_load_client(path, &c, err, sizeof err), SC_ERR_CONFIG);
	assert_non_null(strstr(err, ":2: bogus"));
	tc_rmtree(dir);
}

/* smtpcert.conf(5) documents every key of the table (as ".BI key" or ".BR key"). */
static void test_documented(void **state)
{
	const char *src = getenv("SC_SOURCE_DIR");
	const struct sc_config_keyinfo *keys;
	size_t n = sc_config_client_keys(&keys), len;
	char path[1024], *page, needle[96], needle2[96];

	if (!src)
		src = ".";
	snprintf(path, sizeof path, "%s/docs/man/smtpcert.conf.5", src);
	if (tc_read_file(path, &page, &len) != 0)
		fail_msg("cannot read %s (set SC_SOURCE_DIR)", path);
	for (size_t i = 0; i < n; i++) {
		snprintf(needle, sizeof needle, "\n.BI %s ", keys[i].name);
		snprintf(needle2, sizeof needle2, "\n.BR %s ", keys[i].name);
		if (!strstr(page, needle) && !strstr(page, needle2))
			fail_msg("smtpcert.conf(5) does not document the key %s", keys[i].name);
	}
	free(page);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_keys),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_tables_apart),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_documented),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
