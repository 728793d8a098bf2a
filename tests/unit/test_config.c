/*
 * test_config.c - smtpcertd.conf parsing (lib/config.c, lib/config_keys.c): every
 * key type, defaults, lists and repetition, continuation lines, comments, CRLF,
 * limits, and each error with its exact "NAME:LINE: key:" prefix.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include <smtpcert/smtpcert.h>

#define MIN_CONF "domains = example.test\n"

static sc_config *parse_ok(const char *text)
{
	char err[512] = "";
	sc_config *c = NULL;
	sc_status st = sc_config_parse(text, strlen(text), "t.conf", &c, err, sizeof err);

	if (st != SC_OK)
		fail_msg("unexpected error %s: %s", sc_strerror(st), err);
	assert_non_null(c);
	return c;
}

/* Parse, expect failure, and compare the message's beginning with @p prefix. */
static void parse_err_len(const char *text, size_t len, const char *prefix)
{
	char err[512] = "";
	sc_config *c = (sc_config *)1;
	sc_status st = sc_config_parse(text, len, "t.conf", &c, err, sizeof err);

	assert_int_equal(st, SC_ERR_CONFIG);
	assert_null(c);
	if (strncmp(err, prefix, strlen(prefix)))
		fail_msg("error \"%s\" does not start with \"%s\"", err, prefix);
}

static void parse_err(const char *text, const char *prefix)
{
	parse_err_len(text, strlen(text), prefix);
}

static void test_minimal_defaults(void **state)
{
	sc_config *c = parse_ok(MIN_CONF);
	const char *const *items;
	char host[256] = "";

	assert_string_equal(sc_config_source(c), "t.conf");
	assert_int_equal(sc_config_list(c, "listen", &items), 1);
	assert_string_equal(items[0], "0.0.0.0:25");
	assert_string_equal(sc_config_str(c, "submissions"), "off");
	assert_string_equal(sc_config_str(c, "state_dir"), "/var/lib/smtpcert");
	assert_int_equal(sc_config_list(c, "repository", &items), 1);
	assert_string_equal(items[0], "lmdb:/var/lib/smtpcert/certs");
	assert_string_equal(sc_config_str(c, "postmaster"), "postmaster@example.test");
	assert_int_equal(sc_config_int(c, "idle_timeout"), 300);
	assert_int_equal(sc_config_int(c, "max_connections"), 4096);
	assert_int_equal(sc_config_int(c, "max_errors"), 10);
	assert_int_equal(sc_config_int(c, "max_message_size"), 10485760);
	assert_int_equal(sc_config_int(c, "ldap_timeout"), 10);
	assert_int_equal(sc_config_bool(c, "encrypt_at_rest"), 0);
	assert_int_equal(sc_config_bool(c, "ldap_starttls"), 0);
	assert_null(sc_config_str(c, "cert_url"));
	assert_null(sc_config_str(c, "tls_cert_file"));
	assert_int_equal(sc_config_list(c, "crl_file", &items), 0);
	assert_int_equal(sc_config_list(c, "gateway_domains", &items), 0);
	/* hostname defaults to gethostname() */
	assert_int_equal(gethostname(host, sizeof host - 1), 0);
	assert_string_equal(sc_config_str(c, "hostname"), host);
	assert_false(sc_config_is_set(c, "hostname"));
	assert_true(sc_config_is_set(c, "domains"));
	assert_int_equal(sc_config_line(c, "domains"), 1);
	assert_int_equal(sc_config_line(c, "listen"), 0);
	sc_config_free(c);
}

static void test_all_types(void **state)
{
	sc_config *c = parse_ok("# a comment\n"
				"hostname = mx.example.test\n"
				"\n"
				"   # indented comment\n"
				"listen = 127.0.0.1:2525, [::1]:2525\n"
				"domains = Example.TEST, other.test.\n"
				"gateway_domains = behind.test\n"
				"repository = dir:/srv/certs lmdb:/var/lib/x\n"
				"cert_url = https://certs.example.test/%u.pem\n"
				"tls_cert_file = /etc/tls/cert.pem\n"
				"tls_key_file = /etc/tls/key.pem\n"
				"submissions = review\n"
				"auth = passwd:/etc/smtpcert/passwd\n"
				"state_dir = /tmp/state\n"
				"delivery = lmtp:[::1]:24\n"
				"postmaster = admin@example.test\n"
				"user = _smtpcert\n"
				"encrypt_at_rest = YES\n"
				"ldap_starttls = on\n"
				"ldap_timeout = 5\n"
				"idle_timeout = 60\n"
				"max_connections = 100\n"
				"max_errors = 3\n"
				"max_message_size = 1000\n");
	const char *const *items;

	assert_string_equal(sc_config_str(c, "hostname"), "mx.example.test");
	assert_int_equal(sc_config_line(c, "hostname"), 2);
	assert_int_equal(sc_config_list(c, "listen", &items), 2);
	assert_string_equal(items[0], "127.0.0.1:2525");
	assert_string_equal(items[1], "[::1]:2525");
	assert_int_equal(sc_config_list(c, "domains", &items), 2);
	assert_string_equal(items[0], "example.test");
	assert_string_equal(items[1], "other.test");
	/* the count alone; not a list, or no such key: none, and no items */
	assert_int_equal(sc_config_list(c, "domains", NULL), 2);
	assert_int_equal(sc_config_list(c, "hostname", &items), 0);
	assert_null(items);
	assert_int_equal(sc_config_list(c, "no_such_key", &items), 0);
	assert_null(items);
	assert_int_equal(sc_config_list(NULL, "domains", &items), 0);
	assert_int_equal(sc_config_list(c, NULL, &items), 0);
	assert_int_equal(sc_config_list(c, "repository", &items), 2);
	assert_string_equal(items[0], "dir:/srv/certs");
	assert_string_equal(items[1], "lmdb:/var/lib/x");
	assert_string_equal(sc_config_str(c, "cert_url"), "https://certs.example.test/%u.pem");
	assert_string_equal(sc_config_str(c, "submissions"), "review");
	assert_string_equal(sc_config_str(c, "auth"), "passwd:/etc/smtpcert/passwd");
	assert_string_equal(sc_config_str(c, "delivery"), "lmtp:[::1]:24");
	assert_string_equal(sc_config_str(c, "postmaster"), "admin@example.test");
	assert_string_equal(sc_config_str(c, "user"), "_smtpcert");
	assert_int_equal(sc_config_bool(c, "encrypt_at_rest"), 1);
	assert_int_equal(sc_config_bool(c, "ldap_starttls"), 1);
	assert_int_equal(sc_config_int(c, "ldap_timeout"), 5);
	assert_int_equal(sc_config_int(c, "idle_timeout"), 60);
	assert_int_equal(sc_config_int(c, "max_connections"), 100);
	assert_int_equal(sc_config_int(c, "max_errors"), 3);
	assert_int_equal(sc_config_int(c, "max_message_size"), 1000);
	/* the repository default follows state_dir, but repository is set here */
	assert_true(sc_config_is_set(c, "repository"));

	assert_int_equal(sc_config_domain_kind(c, "example.test"), SC_DOMAIN_LOCAL);
	assert_int_equal(sc_config_domain_kind(c, "EXAMPLE.test."), SC_DOMAIN_LOCAL);
	assert_int_equal(sc_config_domain_kind(c, "Behind.Test"), SC_DOMAIN_GATEWAY);
	assert_int_equal(sc_config_domain_kind(c, "sub.example.test"), SC_DOMAIN_FOREIGN);
	assert_int_equal(sc_config_domain_kind(c, "elsewhere.test"), SC_DOMAIN_FOREIGN);
	assert_int_equal(sc_config_domain_kind(c, NULL), SC_DOMAIN_FOREIGN);

	/* wrong-type and unknown-key getters are neutral */
	assert_null(sc_config_str(c, "no_such_key"));
	assert_int_equal(sc_config_int(c, "hostname"), 0);
	assert_int_equal(sc_config_bool(c, "hostname"), 0);
	assert_int_equal(sc_config_list(c, "hostname", &items), 0);
	assert_null(items);
	assert_int_equal(sc_config_line(c, "no_such_key"), 0);
	sc_config_free(c);
}

static void test_repository_default_follows_state_dir(void **state)
{
	sc_config *c = parse_ok("state_dir = /srv/sc\n" MIN_CONF);
	const char *const *items;

	assert_int_equal(sc_config_list(c, "repository", &items), 1);
	assert_string_equal(items[0], "lmdb:/srv/sc/certs");
	sc_config_free(c);
}

static void test_lists_repeat_and_continue(void **state)
{
	sc_config *c = parse_ok("crl_file = /a.pem\n"
				"domains = a.test,\n"
				"  b.test\n"
				"\tc.test , , d.test\n"
				"crl_file = /b.pem, /c.pem\n"
				"crl_file = /a.pem\n"
				"hostname =\n"
				"   mx.a.test\n");
	const char *const *items;

	assert_int_equal(sc_config_list(c, "crl_file", &items), 3);
	assert_string_equal(items[0], "/a.pem");
	assert_string_equal(items[1], "/b.pem");
	assert_string_equal(items[2], "/c.pem");
	assert_int_equal(sc_config_line(c, "crl_file"), 1);
	assert_int_equal(sc_config_list(c, "domains", &items), 4);
	assert_string_equal(items[3], "d.test");
	assert_string_equal(sc_config_str(c, "hostname"), "mx.a.test");
	assert_int_equal(sc_config_line(c, "hostname"), 7);
	sc_config_free(c);
}

/* LDAP URLs hold commas and pgsql conninfo holds blanks: items start at a scheme. */
static void test_repository_split(void **state)
{
	sc_config *c = parse_ok(MIN_CONF
				"repository = ldap://ldap.test/dc=example,dc=test?userCertificate?sub?(mail=%s),\n"
				"  pgsql:host=/run/pg dbname=certs, dir:/d\n");
	const char *const *items;

	assert_int_equal(sc_config_list(c, "repository", &items), 3);
	assert_string_equal(items[0],
			    "ldap://ldap.test/dc=example,dc=test?userCertificate?sub?(mail=%s)");
	assert_string_equal(items[1], "pgsql:host=/run/pg dbname=certs");
	assert_string_equal(items[2], "dir:/d");
	sc_config_free(c);
}

static void test_crlf_and_blank_value_trim(void **state)
{
	sc_config *c = parse_ok("domains = x.test\r\n"
				"hostname   =   h.x.test   \r\n"
				"submissions=auto\r\n");

	assert_string_equal(sc_config_str(c, "hostname"), "h.x.test");
	assert_string_equal(sc_config_str(c, "submissions"), "auto");
	sc_config_free(c);
}

static void test_syntax_errors(void **state)
{
	parse_err("frobnicate = 1\n" MIN_CONF, "t.conf:1: frobnicate: unknown configuration key");
	parse_err(MIN_CONF "hostname\n", "t.conf:2: hostname: missing '='");
	parse_err(MIN_CONF "= x\n", "t.conf:2: missing key name");
	parse_err("  domains = x.test\n", "t.conf:1: continuation line");
	parse_err(MIN_CONF "hostname = a.test\n\n# c\nhostname = b.test\n",
		  "t.conf:5: hostname: duplicate setting (first set at line 2)");
	parse_err(MIN_CONF "hostname =\n", "t.conf:2: hostname: missing value");
	parse_err(MIN_CONF "hostname = a\x01test\n", "t.conf:2: control character 0x01");
	parse_err_len(MIN_CONF "hostname = a\0b\n", sizeof(MIN_CONF "hostname = a\0b\n") - 1,
		      "t.conf:2: NUL byte");
	parse_err(MIN_CONF "hostname = a\rb\n", "t.conf:2: control character 0x0d");
}

static void test_missing_and_cross_key(void **state)
{
	parse_err("hostname = a.test\n", "t.conf: domains: required key is missing");
	parse_err("domains = ,\n", "t.conf:1: domains: at least one value");
	parse_err(MIN_CONF "tls_cert_file = /c.pem\n",
		  "t.conf:2: tls_cert_file: tls_cert_file and tls_key_file must be set together");
	parse_err(MIN_CONF "\ntls_key_file = /k.pem\n", "t.conf:3: tls_key_file:");
	parse_err(MIN_CONF "gateway_domains = Example.Test\n",
		  "t.conf:2: gateway_domains: \"example.test\" is also in domains");
}

static void test_value_errors(void **state)
{
	static const struct {
		const char *line, *prefix;
	} cases[] = {
		{ "listen = 127.0.0.1\n", "t.conf:2: listen: \"127.0.0.1\": expected" },
		{ "listen = 127.0.0.1:0\n", "t.conf:2: listen: \"127.0.0.1:0\": port" },
		{ "listen = 127.0.0.1:65536\n", "t.conf:2: listen: \"127.0.0.1:65536\": port" },
		{ "listen = 127.0.0.1:x\n", "t.conf:2: listen: \"127.0.0.1:x\": port" },
		{ "listen = localhost:25\n", "t.conf:2: listen: \"localhost:25\": not a numeric" },
		{ "listen = ::1:25\n", "t.conf:2: listen: \"::1:25\": IPv6" },
		{ "listen = [::1]25\n", "t.conf:2: listen: \"[::1]25\": expected ':PORT'" },
		{ "listen = [1.2.3.4]:25\n", "t.conf:2: listen: \"[1.2.3.4]:25\": not an IPv6" },
		{ "listen = 1.2.3.4:25 # comment\n", "t.conf:2: listen: \"#\":" },
		{ "gateway_domains = bad..test\n", "t.conf:2: gateway_domains: \"bad..test\": not a valid domain" },
		{ "gateway_domains = [1.2.3.4]\n", "t.conf:2: gateway_domains: \"[1.2.3.4]\": address literals" },
		{ "repository = /var/lib/x\n", "t.conf:2: repository: \"/var/lib/x\": unknown repository type" },
		{ "repository = lmdb:\n", "t.conf:2: repository: \"lmdb:\": missing path" },
		{ "repository = ldap://h/dc=x?c?sub?(mail=x)\n", "t.conf:2: repository: \"ldap://h/dc=x?c?sub?(mail=x)\": LDAP URL filter" },
		{ "cert_url = ftp://x/%u\n", "t.conf:2: cert_url: \"ftp://x/%u\": must be an http" },
		{ "cert_url = https://x/cert.pem\n", "t.conf:2: cert_url: \"https://x/cert.pem\": must contain %u" },
		{ "cert_url = https://x/%u a\n", "t.conf:2: cert_url: \"https://x/%u a\": must not contain whitespace" },
		{ "submissions = maybe\n", "t.conf:2: submissions: \"maybe\": expected one of off|review|auto" },
		{ "submissions = of\n", "t.conf:2: submissions: \"of\": expected one of" },
		{ "auth = ldap:x\n", "t.conf:2: auth: \"ldap:x\": expected passwd:" },
		{ "auth = passwd:\n", "t.conf:2: auth: \"passwd:\": missing file name" },
		{ "delivery = mbox:/x\n", "t.conf:2: delivery: \"mbox:/x\": expected maildir:" },
		{ "delivery = lmtp:host\n", "t.conf:2: delivery: \"lmtp:host\": expected ADDRESS:PORT (expected lmtp:HOST:PORT)" },
		{ "delivery = proxy:bad..host:25\n", "t.conf:2: delivery: \"proxy:bad..host:25\": not a host name" },
		{ "postmaster = not an address\n", "t.conf:2: postmaster: \"not an address\": not a valid mail address" },
		{ "gateway_domains = caf\xe9.test\n", "t.conf:2: gateway_domains: \"caf\xe9.test\": not a valid domain" },
		{ "hostname = h\xc3\xa9.test\n", "t.conf:2: hostname: \"h\xc3\xa9.test\": not a valid host name" },
		{ "user = -root\n", "t.conf:2: user: \"-root\": must not start" },
		{ "user = a/b\n", "t.conf:2: user: \"a/b\": not a valid user name" },
		{ "hostname = -bad-\n", "t.conf:2: hostname: \"-bad-\": not a valid host name" },
		{ "encrypt_at_rest = perhaps\n", "t.conf:2: encrypt_at_rest: \"perhaps\": expected yes or no" },
		{ "idle_timeout = 0\n", "t.conf:2: idle_timeout: \"0\": out of range (1 to 86400)" },
		{ "idle_timeout = 99999999999999999999\n", "t.conf:2: idle_timeout: \"99999999999999999999\": not an integer" },
		{ "idle_timeout = 5s\n", "t.conf:2: idle_timeout: \"5s\": not an integer" },
		{ "idle_timeout = +5\n", "t.conf:2: idle_timeout: \"+5\": not an integer" },
		{ "max_errors = -1\n", "t.conf:2: max_errors: \"-1\": out of range" },
		{ "max_message_size = 2147483648\n", "t.conf:2: max_message_size: \"2147483648\": out of range" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char text[512];

		snprintf(text, sizeof text, "%s%s", MIN_CONF, cases[i].line);
		parse_err(text, cases[i].prefix);
	}
}

static void test_valid_values(void **state)
{
	static const char *const ok[] = {
		"delivery = maildir:/var/mail/%d/%n\n",
		"delivery = proxy:127.0.0.1:10025\n",
		"delivery = lmtp:mail.example.test:24\n",
		"auth = dovecot:/run/dovecot/auth-client\n",
		"cert_url = http://c.test/%u\n",
		"repository = ldaps://h/o=x?userCertificate;binary?sub?(mail=%s)\n",
		"repository = ldapi://%2Frun%2Fslapd/o=x??sub?(mail=%s)\n",
		"listen = [::]:25 0.0.0.0:587\n",
		"encrypt_at_rest = 0\n",
		"max_message_size = 2147483647\n",
		"gateway_domains = b\xc3\xbc" "cher.test\n", /* UTF-8 U-label */
	};

	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		char text[512];

		snprintf(text, sizeof text, "%s%s", MIN_CONF, ok[i]);
		sc_config_free(parse_ok(text));
	}
}

static void test_limits(void **state)
{
	size_t big = SC_CONFIG_MAX_BYTES + 1;
	char *text = malloc(big + 1);
	char line[5000], conf[6000];

	assert_non_null(text);
	/* comment lines of 100 bytes; the required key at the very end */
	for (size_t i = 0; i < big; i += 100) {
		memset(text + i, '#', big - i < 100 ? big - i : 100);
		if (i + 99 < big)
			text[i + 99] = '\n';
	}
	text[big] = '\0';
	parse_err_len(text, big, "t.conf: file too large");
	/* exactly at the limit is accepted */
	memcpy(text + SC_CONFIG_MAX_BYTES - strlen("\n" MIN_CONF), "\n" MIN_CONF,
	       strlen("\n" MIN_CONF));
	text[SC_CONFIG_MAX_BYTES] = '\0';
	sc_config_free(parse_ok(text));
	free(text);

	memset(line, 'a', sizeof line);
	memcpy(line, "hostname = ", 11);
	line[sizeof line - 1] = '\0';
	snprintf(conf, sizeof conf, MIN_CONF "%s\n", line);
	parse_err(conf, "t.conf:2: line too long");
	/* 4096 bytes plus CRLF is still fine (the CR is not counted) */
	memset(line, 'a', sizeof line);
	memcpy(line, "hostname = ", 11);
	line[4096] = '\0';
	snprintf(conf, sizeof conf, MIN_CONF "%s\r\n", line);
	parse_err(conf, "t.conf:2: hostname: \"aaaa");
}

static void test_logical_line_limit(void **state)
{
	/* 40 continuation lines of 2000 bytes: each physical line is fine, the whole
	 * logical line is not. */
	size_t n = 0, cap = 100000;
	char *text = malloc(cap);

	assert_non_null(text);
	n += (size_t)snprintf(text, cap, MIN_CONF "crl_file = /a\n");
	for (int i = 0; i < 40; i++) {
		text[n++] = ' ';
		memset(text + n, 'x', 1999);
		n += 1999;
		text[n++] = '\n';
	}
	parse_err_len(text, n, "t.conf:2: logical line too long");
	free(text);
}

static void test_load_file(void **state)
{
	char path[] = "/tmp/test_config_XXXXXX", err[512] = "";
	int fd = mkstemp(path);
	sc_config *c = NULL;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, MIN_CONF "max_errors = x\n", strlen(MIN_CONF) + 15),
			 (ssize_t)strlen(MIN_CONF) + 15);
	close(fd);
	assert_int_equal(sc_config_load(path, &c, err, sizeof err), SC_ERR_CONFIG);
	assert_null(c);
	assert_true(!strncmp(err, path, strlen(path)));
	assert_string_equal(err + strlen(path), ":2: max_errors: \"x\": not an integer (1 to 10000)");

	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, MIN_CONF, strlen(MIN_CONF)), (ssize_t)strlen(MIN_CONF));
	close(fd);
	assert_int_equal(sc_config_load(path, &c, err, sizeof err), SC_OK);
	assert_string_equal(sc_config_source(c), path);
	sc_config_errorf(c, "domains", err, sizeof err, "bad %s", "thing");
	assert_true(!strncmp(err, path, strlen(path)));
	assert_string_equal(err + strlen(path), ":1: domains: bad thing");
	sc_config_errorf(c, "tls_key_file", err, sizeof err, "x");
	assert_string_equal(err + strlen(path), ": tls_key_file: x");
	sc_config_free(c);
	unlink(path);

	assert_int_equal(sc_config_load(path, &c, err, sizeof err), SC_ERR_IO);
	assert_non_null(strstr(err, "cannot read"));
	assert_int_equal(sc_config_load("/tmp", &c, err, sizeof err), SC_ERR_IO);
	assert_string_equal(err, "/tmp: cannot read: not a regular file");
}

static void test_keys_table(void **state)
{
	const struct sc_config_keyinfo *keys;
	size_t n = sc_config_keys(&keys);
	int seen_listen = 0;

	assert_true(n >= 25);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(keys[i].name);
		assert_non_null(keys[i].type);
		assert_non_null(keys[i].help);
		assert_true(sc_config_key_known(keys[i].name));
		if (!strcmp(keys[i].name, "listen")) {
			seen_listen = 1;
			assert_string_equal(keys[i].type, "list");
			assert_string_equal(keys[i].def, "0.0.0.0:25");
		}
	}
	assert_true(seen_listen);
	assert_false(sc_config_key_known("nope"));
	assert_false(sc_config_key_known(NULL));
}

static void test_args(void **state)
{
	sc_config *c;

	assert_int_equal(sc_config_parse("x", 1, "n", NULL, NULL, 0), SC_ERR_ARG);
	assert_int_equal(sc_config_parse(NULL, 1, "n", &c, NULL, 0), SC_ERR_ARG);
	/* no error buffer: still fails cleanly */
	assert_int_equal(sc_config_parse("bogus = 1\n", 10, NULL, &c, NULL, 0), SC_ERR_CONFIG);
	sc_config_free(NULL);
	assert_null(sc_config_source(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal_defaults),
		cmocka_unit_test(test_all_types),
		cmocka_unit_test(test_repository_default_follows_state_dir),
		cmocka_unit_test(test_lists_repeat_and_continue),
		cmocka_unit_test(test_repository_split),
		cmocka_unit_test(test_crlf_and_blank_value_trim),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_missing_and_cross_key),
		cmocka_unit_test(test_value_errors),
		cmocka_unit_test(test_valid_values),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_logical_line_limit),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_keys_table),
		cmocka_unit_test(test_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
