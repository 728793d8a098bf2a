/*
 * test_d_delivery.c - where accepted mail goes (daemon/delivery*.c), stored in
 * a Maildir; LMTP is test_d_delivery_lmtp.c.
 *
 * Maildir: one copy per recipient in its own Maildir created on demand, content
 * streamed from the spool fd with LF line ends (a CR split across read chunks
 * included), tmp/ empty after success, expansions that are not a safe path
 * component refused 550 5.1.3 with nothing stored, a spool shorter than
 * announced (read failure) leaves nothing in new/ or tmp/, unusable specs,
 * delivery_send_buffer() into a Maildir, argument errors.
 *
 * Encryption at rest: a recipient with a certificate gets its own copy as
 * S/MIME enveloped-data that OpenSSL's CMS (independently of lib/smime*.c)
 * decrypts with the recipient's key, routing fields outside and the body not;
 * RSA and ECDH recipients; recipients without a certificate and encrypt_at_rest
 * = no get the plaintext; an already encrypted message is stored as it came; an
 * Ed25519 certificate (cannot be encrypted to) stores the plaintext and says so;
 * a header block that cannot be split refuses the message for everyone.
 *
 * Postmaster notices (daemon/notify.c) through this delivery: spooled, then
 * delivered into a Maildir and unspooled, once.
 */
#include "delivery_fixture.h"

static void test_maildir_per_recipient(void **state)
{
	static const char msg[] = "Received: from x by y; Sat, 28 Nov 2026 21:00:00 +0000\r\n"
				  "Subject: hi\r\n\r\nbody line\r\nbare\rcr\r\n";
	struct delivery_rcpt r[2] = { { .addr = addr("Alice@Example.TEST") },
				      { .addr = addr("bob@other.test") } };
	struct delivery_msg m = { .rcpt = r, .nrcpt = 2, .size = sizeof msg - 1 };
	struct delivery_cfg cfg;
	char *a, *b;
	size_t la, lb;

	(void)state;
	cfg_maildir(&cfg);
	m.fd = spool(msg, sizeof msg - 1);
	assert_int_equal(delivery_run(&cfg, &m), SC_OK);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(r[i].code, 250);
		assert_string_equal(r[i].enhanced, "2.0.0");
		assert_false(r[i].encrypted);
	}
	/* on demand, each in its own Maildir, tmp/ left empty */
	a = stored("mail/example.test/alice/new", &la);
	b = stored("mail/other.test/bob/new", &lb);
	assert_int_equal(count("mail/example.test/alice/tmp", NULL, 0), 0);
	assert_int_equal(count("mail/other.test/bob/tmp", NULL, 0), 0);
	assert_int_equal(count("mail/example.test/alice/cur", NULL, 0), 0);
	assert_string_equal(a, "Received: from x by y; Sat, 28 Nov 2026 21:00:00 +0000\n"
			       "Subject: hi\n\nbody line\nbare\rcr\n");
	assert_int_equal(la, lb);
	assert_memory_equal(a, b, la);
	free(a);
	free(b);
	close(m.fd);
}

/* A message larger than the 64 KiB read chunk with a CRLF split across chunks:
 * the CR is held, not doubled or dropped. */
static void test_maildir_large_stream(void **state)
{
	size_t n = 200000, lb;
	char *msg = malloc(n), *b;
	struct delivery_rcpt r = { .addr = addr("big@example.test") };
	struct delivery_msg m = { .rcpt = &r, .nrcpt = 1, .size = n };
	struct delivery_cfg cfg;
	size_t lines = 0;

	(void)state;
	assert_non_null(msg);
	memcpy(msg, "Subject: big\r\n\r\n", 16);
	for (size_t i = 16; i < n; i++)
		msg[i] = 'x';
	/* CRLF at every 4 KiB boundary minus one: CR ends a 64 KiB chunk */
	for (size_t i = 4095; i + 1 < n; i += 4096) {
		msg[i] = '\r';
		msg[i + 1] = '\n';
		lines++;
	}
	cfg_maildir(&cfg);
	m.fd = spool(msg, n);
	assert_int_equal(delivery_run(&cfg, &m), SC_OK);
	assert_int_equal(r.code, 250);
	b = stored("mail/example.test/big/new", &lb);
	/* "\r\n\r\n" of the header became "\n\n", and each body CRLF one LF */
	assert_int_equal(lb, n - 2 - lines);
	assert_null(memchr(b, '\r', lb));
	free(b);
	free(msg);
	close(m.fd);
}

static void test_maildir_unsafe_refused(void **state)
{
	static const char msg[] = "Subject: x\r\n\r\nx\r\n";
	struct delivery_rcpt r[2] = { { .addr = addr("a/b@example.test") },
				      { .addr = addr("ok@example.test") } };
	struct delivery_msg m = { .rcpt = r, .nrcpt = 2, .size = sizeof msg - 1 };
	struct delivery_cfg cfg;

	(void)state;
	cfg_maildir(&cfg);
	m.fd = spool(msg, sizeof msg - 1);
	assert_int_equal(delivery_run(&cfg, &m), SC_OK);
	assert_int_equal(r[0].code, 550);
	assert_string_equal(r[0].enhanced, "5.1.3");
	/* the log gets the why, the reply no path */
	assert_non_null(strstr(r[0].detail, "path component"));
	assert_null(strstr(r[0].text, g_tmp));
	assert_int_equal(count("mail/example.test/a", NULL, 0), -1);
	assert_int_equal(r[1].code, 250);
	assert_int_equal(count("mail/example.test/ok/new", NULL, 0), 1);
	close(m.fd);
}

/* The spool is shorter than announced: the read fails mid-way, and neither new/
 * nor tmp/ keeps anything. */
static void test_maildir_failure_leaves_nothing(void **state)
{
	static const char msg[] = "Subject: x\r\n\r\nshort\r\n";
	struct delivery_rcpt r = { .addr = addr("c@example.test") };
	struct delivery_msg m = { .rcpt = &r, .nrcpt = 1, .size = sizeof msg - 1 + 100 };
	struct delivery_cfg cfg;

	(void)state;
	cfg_maildir(&cfg);
	m.fd = spool(msg, sizeof msg - 1);
	assert_int_equal(delivery_run(&cfg, &m), SC_OK);
	assert_int_equal(r.code, 451);
	assert_string_equal(r.enhanced, "4.3.0");
	assert_non_null(strstr(r.detail, "shorter"));
	assert_int_equal(count("mail/example.test/c/new", NULL, 0), 0);
	assert_int_equal(count("mail/example.test/c/tmp", NULL, 0), 0);
	close(m.fd);
}

/* A file where the Maildir's directory should be: 451, nothing anywhere. */
static void test_maildir_io_error(void **state)
{
	static const char msg[] = "Subject: x\r\n\r\nx\r\n";
	struct delivery_rcpt r = { .addr = addr("d@example.test") };
	struct delivery_msg m = { .rcpt = &r, .nrcpt = 1, .size = sizeof msg - 1 };
	struct delivery_cfg cfg;
	char p[700];

	(void)state;
	cfg_maildir(&cfg);
	snprintf(p, sizeof p, "%s/mail", g_tmp);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof p, "%s/mail/example.test", g_tmp);
	tc_write_file(p, "x", 1);
	m.fd = spool(msg, sizeof msg - 1);
	assert_int_equal(delivery_run(&cfg, &m), SC_OK);
	assert_int_equal(r.code, 451);
	assert_string_equal(r.enhanced, "4.3.0");
	close(m.fd);
}

static void test_bad_spec_and_args(void **state)
{
	static const char msg[] = "Subject: x\r\n\r\nx\r\n";
	struct delivery_rcpt r = { .addr = addr("e@example.test") };
	struct delivery_msg m = { .rcpt = &r, .nrcpt = 1, .size = sizeof msg - 1 };
	struct delivery_cfg cfg;
	char err[256];

	(void)state;
	cfg_maildir(&cfg);
	m.fd = spool(msg, sizeof msg - 1);
	/* an unknown %-variable: a configuration error, temporary for the client */
	snprintf(cfg.spec, sizeof cfg.spec, "maildir:%s/%%x", g_tmp);
	assert_int_equal(delivery_run(&cfg, &m), SC_OK);
	assert_int_equal(r.code, 451);
	assert_string_equal(r.enhanced, "4.3.5");
	snprintf(cfg.spec, sizeof cfg.spec, "smtp:somewhere");
	assert_int_equal(delivery_run(&cfg, &m), SC_ERR_CONFIG);
	assert_int_equal(r.code, 451);
	assert_string_equal(r.enhanced, "4.3.5");
	assert_int_equal(delivery_send_buffer(&cfg, "", &r.addr, msg, sizeof msg - 1, err,
					      sizeof err),
			 SC_ERR_CONFIG);
	assert_int_equal(delivery_run(NULL, &m), SC_ERR_ARG);
	assert_int_equal(delivery_run(&cfg, NULL), SC_ERR_ARG);
	m.fd = -1;
	assert_int_equal(delivery_run(&cfg, &m), SC_ERR_ARG);
	/* no recipient: nothing to do */
	m.nrcpt = 0;
	m.rcpt = NULL;
	m.fd = 0;
	assert_int_equal(delivery_run(&cfg, &m), SC_OK);
}

static void test_send_buffer_maildir(void **state)
{
	static const char msg[] = "From: MAILER-DAEMON@mx.example.test\r\nSubject: notice\r\n\r\n"
				  "text\r\n";
	struct sc_addr pm = addr("postmaster@example.test"), bad = addr("x/y@example.test");
	struct delivery_cfg cfg;
	char err[256] = "x", *c;
	size_t len;

	(void)state;
	cfg_maildir(&cfg);
	assert_int_equal(delivery_send_buffer(&cfg, "", &pm, msg, sizeof msg - 1, err, sizeof err),
			 SC_OK);
	assert_string_equal(err, "");
	c = stored("mail/example.test/postmaster/new", &len);
	assert_string_equal(c, "From: MAILER-DAEMON@mx.example.test\nSubject: notice\n\ntext\n");
	free(c);
	/* an address that can never name a Maildir is a permanent failure */
	assert_int_equal(delivery_send_buffer(&cfg, "", &bad, msg, sizeof msg - 1, err,
					      sizeof err),
			 SC_ERR_REJECTED);
	assert_non_null(strstr(err, "path component"));
}


static void test_encrypt_at_rest_maildir(void **state)
{
	struct person alice, erin;
	struct delivery_rcpt r[3] = { { .addr = addr("alice@example.test") },
				      { .addr = addr("bob@example.test") },
				      { .addr = addr("erin@example.test") } };
	struct delivery_msg m = { .rcpt = r, .nrcpt = 3, .size = sizeof g_plain - 1 };
	struct delivery_cfg cfg;
	char *a, *b, *e, *pa, *pe;
	const char *h;
	size_t la, lb, le;

	(void)state;
	person(&alice, "alice@example.test", TC_RSA2048);
	person(&erin, "erin@example.test", TC_P256);
	r[0].cert = alice.cert;
	r[2].cert = erin.cert;
	cfg_maildir(&cfg);
	cfg.encrypt_at_rest = 1;
	m.fd = spool(g_plain, sizeof g_plain - 1);
	assert_int_equal(delivery_run(&cfg, &m), SC_OK);
	for (int i = 0; i < 3; i++)
		assert_int_equal(r[i].code, 250);
	assert_true(r[0].encrypted);
	assert_false(r[1].encrypted);
	assert_true(r[2].encrypted);
	a = stored("mail/example.test/alice/new", &la);
	b = stored("mail/example.test/bob/new", &lb);
	e = stored("mail/example.test/erin/new", &le);
	assert_int_equal(count("mail/example.test/alice/tmp", NULL, 0), 0);
	/* routing fields outside, readable by the mail store; the rest is not */
	h = outer(a);
	assert_non_null(strstr(h, "Received: from c by mx;"));
	assert_non_null(strstr(h, "Subject: lunch\n"));
	assert_non_null(strstr(h, "Message-ID: <1@remote.test>"));
	assert_non_null(strstr(h, "application/pkcs7-mime"));
	assert_null(strstr(h, "X-Secret-Header"));
	assert_null(strstr(a, "secret body"));
	assert_null(strchr(a, '\r')); /* Maildir's local format */
	/* each copy decrypts with its own recipient's key only */
	pa = cms_decrypt(a, la, &alice);
	assert_non_null(pa);
	assert_non_null(strstr(pa, "X-Secret-Header: inside"));
	assert_non_null(strstr(pa, "the secret body\r\n.dot\r\n"));
	assert_null(cms_decrypt(a, la, &erin));
	pe = cms_decrypt(e, le, &erin);
	assert_non_null(pe);
	assert_non_null(strstr(pe, "the secret body"));
	/* no certificate: stored as received */
	assert_non_null(strstr(b, "the secret body\n.dot\n"));
	free(pa);
	free(pe);
	free(a);
	free(b);
	free(e);
	close(m.fd);
	person_free(&alice);
	person_free(&erin);
}

static void test_encrypt_at_rest_off_and_already_encrypted(void **state)
{
	static const char enc[] = "Received: from c by mx; Sat, 28 Nov 2026 21:00:00 +0000\r\n"
				  "Subject: sealed\r\nMIME-Version: 1.0\r\n"
				  "Content-Type: application/pkcs7-mime; smime-type=enveloped-data;"
				  " name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n"
				  "MIAGCSqGSIb3DQEHA6CAMIACAQAxggE=\r\n";
	struct person alice;
	struct delivery_rcpt r = { .addr = addr("alice@example.test") };
	struct delivery_msg m = { .rcpt = &r, .nrcpt = 1, .size = sizeof enc - 1 };
	struct delivery_cfg cfg;
	char *a, lf[sizeof enc];
	size_t la, o = 0;

	(void)state;
	person(&alice, "alice@example.test", TC_RSA2048);
	r.cert = alice.cert;
	cfg_maildir(&cfg);
	cfg.encrypt_at_rest = 1;
	m.fd = spool(enc, sizeof enc - 1);
	assert_int_equal(delivery_run(&cfg, &m), SC_OK);
	assert_int_equal(r.code, 250);
	assert_false(r.encrypted);
	/* as it came (in the Maildir's LF form), not encrypted twice */
	for (size_t i = 0; i < sizeof enc - 1; i++)
		if (enc[i] != '\r')
			lf[o++] = enc[i];
	lf[o] = '\0';
	a = stored("mail/example.test/alice/new", &la);
	assert_int_equal(la, o);
	assert_string_equal(a, lf);
	free(a);
	close(m.fd);

	/* encrypt_at_rest = no: a certificate changes nothing */
	cfg.encrypt_at_rest = 0;
	snprintf(cfg.spec, sizeof cfg.spec, "maildir:%s/off/%%n", g_tmp);
	m.fd = spool(g_plain, sizeof g_plain - 1);
	m.size = sizeof g_plain - 1;
	assert_int_equal(delivery_run(&cfg, &m), SC_OK);
	assert_int_equal(r.code, 250);
	assert_false(r.encrypted);
	a = stored("off/alice/new", &la);
	assert_non_null(strstr(a, "the secret body"));
	free(a);
	close(m.fd);
	person_free(&alice);
}

/* An Ed25519 certificate cannot be encrypted to: stored as received, logged. */
static void test_encrypt_unsupported_key(void **state)
{
	struct person ed;
	struct delivery_rcpt r = { .addr = addr("ed@example.test") };
	struct delivery_msg m = { .rcpt = &r, .nrcpt = 1, .size = sizeof g_plain - 1 };
	struct delivery_cfg cfg;
	char *a;
	size_t la;

	(void)state;
	person(&ed, "ed@example.test", TC_ED25519);
	r.cert = ed.cert;
	cfg_maildir(&cfg);
	cfg.encrypt_at_rest = 1;
	m.fd = spool(g_plain, sizeof g_plain - 1);
	assert_int_equal(delivery_run(&cfg, &m), SC_OK);
	assert_int_equal(r.code, 250);
	assert_false(r.encrypted);
	assert_non_null(strstr(r.detail, "stored unencrypted"));
	a = stored("mail/example.test/ed/new", &la);
	assert_non_null(strstr(a, "the secret body"));
	assert_int_equal(count("mail/example.test/ed/tmp", NULL, 0), 0);
	free(a);
	close(m.fd);
	person_free(&ed);
}

/* A header block that cannot be split (a 1200-octet field line; a NUL): the
 * promise cannot be kept, so nobody gets the message and nothing is stored. */
static void test_encrypt_unparsable_header(void **state)
{
	struct person alice;
	struct delivery_rcpt r[2] = { { .addr = addr("alice@example.test") },
				      { .addr = addr("bob@example.test") } };
	struct delivery_msg m = { .rcpt = r, .nrcpt = 2 };
	struct delivery_cfg cfg;
	char msg[1400];
	size_t n;

	(void)state;
	person(&alice, "alice@example.test", TC_RSA2048);
	r[0].cert = alice.cert;
	cfg_maildir(&cfg);
	cfg.encrypt_at_rest = 1;
	n = (size_t)snprintf(msg, sizeof msg, "X-Long: ");
	memset(msg + n, 'a', 1200);
	n += 1200;
	n += (size_t)snprintf(msg + n, sizeof msg - n, "\r\n\r\nbody\r\n");
	m.size = n;
	m.fd = spool(msg, n);
	assert_int_equal(delivery_run(&cfg, &m), SC_OK);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(r[i].code, 554);
		assert_string_equal(r[i].enhanced, "5.6.0");
	}
	assert_int_equal(count("mail", NULL, 0), -1);
	close(m.fd);

	memcpy(msg, "Subject: a\0b\r\n\r\nbody\r\n", 22);
	m.size = 22;
	m.fd = spool(msg, 22);
	assert_int_equal(delivery_run(&cfg, &m), SC_OK);
	assert_int_equal(r[1].code, 554);
	close(m.fd);
	/* without a certificate nothing is parsed: stored as received */
	r[0].cert = NULL;
	m.fd = spool(msg, 22);
	assert_int_equal(delivery_run(&cfg, &m), SC_OK);
	assert_int_equal(r[0].code, 250);
	close(m.fd);
	person_free(&alice);
}

/* LMTP: the encrypted copy goes in a transaction of its own, first. */

static void test_notice_maildir(void **state)
{
	struct notify_target t;
	char err[512] = "", spec[700], *c;
	size_t len;

	(void)state;
	snprintf(spec, sizeof spec, "maildir:%s/mail/%%d/%%n", g_tmp);
	notice_target(&t, spec);
	assert_int_equal(notify_save(g_tmp, "0a1b", g_notice, sizeof g_notice - 1, err,
				     sizeof err),
			 SC_OK);
	assert_true(spooled("0a1b"));
	assert_int_equal(notify_deliver(&t, "0a1b", err, sizeof err), SC_OK);
	assert_false(spooled("0a1b"));
	c = stored("mail/example.test/postmaster/new", &len);
	assert_non_null(strstr(c, "submission 0a1b\n"));
	free(c);
	/* delivered once: a second attempt finds nothing */
	assert_int_equal(notify_deliver(&t, "0a1b", err, sizeof err), SC_ERR_NOT_FOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_maildir_per_recipient, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_maildir_large_stream, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_maildir_unsafe_refused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_maildir_failure_leaves_nothing, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_maildir_io_error, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_spec_and_args, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_send_buffer_maildir, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_encrypt_at_rest_maildir, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_encrypt_at_rest_off_and_already_encrypted,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_encrypt_unsupported_key, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_encrypt_unparsable_header, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_notice_maildir, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
