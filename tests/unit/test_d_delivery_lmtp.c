/*
 * test_d_delivery_lmtp.c - delivery over LMTP (RFC 2033) and the SMTP hand-off
 * of notices to a proxy: backend (daemon/delivery_lmtp.c), against a scripted
 * server thread (delivery_fixture.h).
 *
 * The per-recipient replies after DATA relayed (250/550/452, control
 * characters in the server's text neutralised), MAIL and DATA refused, every
 * RCPT refused (RSET), the server down (451 4.4.1 for all), silent (banner,
 * after the data: timeout, 451 for those without a reply), hanging up
 * mid-transaction, SMTPUTF8 not offered (ASCII envelope goes as 8BITMIME, a
 * UTF-8 address 553 5.6.7); delivery_send_buffer() to a proxy: backend over SMTP
 * (one reply, refusal); encryption at rest: the encrypted recipient gets a
 * transaction of its own, decryptable by OpenSSL CMS; postmaster notices over
 * LMTP, and kept spooled when the store is down or refuses them.
 */
#include "delivery_fixture.h"

static void test_lmtp_per_recipient(void **state)
{
	static const char *const script[] = {
		LMTP_HELLO,
		"C MAIL FROM:<sender@remote.test> BODY=8BITMIME SIZE=88", "S 250 2.1.0 OK",
		"C RCPT TO:<a@example.test>", "S 250 2.1.5 OK",
		"C RCPT TO:<nobody@example.test>", "S 550 5.1.1 <nobody@example.test> User doesn't exist",
		"C RCPT TO:<full@example.test>", "S 250 2.1.5 OK",
		"C DATA", "S 354 go ahead", "DATA",
		"S 250 2.0.0 <a@example.test> Saved",
		"S 452 4.2.2 <full@example.test> Quota exceeded\x01",
		NULL
	};
	struct delivery_rcpt r[3] = { { .addr = addr("a@example.test") },
				      { .addr = addr("nobody@example.test") },
				      { .addr = addr("full@example.test") } };
	struct delivery_msg m = { .rcpt = r, .nrcpt = 3, .size = sizeof g_msg - 1,
				  .from = "sender@remote.test", .body_8bit = 1 };
	struct delivery_cfg cfg;
	struct server sv;

	(void)state;
	srv_start(&sv, script);
	cfg_lmtp(&cfg, sv.port);
	m.fd = spool(g_msg, sizeof g_msg - 1);
	assert_int_equal(delivery_run(&cfg, &m), SC_OK);
	srv_stop(&sv);
	assert_int_equal(r[0].code, 250);
	assert_string_equal(r[0].enhanced, "2.0.0");
	assert_int_equal(r[1].code, 550);
	assert_string_equal(r[1].enhanced, "5.1.1");
	assert_non_null(strstr(r[1].text, "User doesn't exist"));
	assert_int_equal(r[2].code, 452);
	assert_string_equal(r[2].enhanced, "4.2.2");
	/* a control character from the server never reaches our reply */
	assert_non_null(strstr(r[2].text, "Quota exceeded?"));
	assert_non_null(strstr(r[2].detail, "452"));
	/* dot-stuffed on the wire, unstuffed by the server: the message as spooled */
	assert_string_equal(sv.upload, "Received: from c by mx; Sat, 28 Nov 2026 21:00:00 +0000\n"
					"Subject: hi\n\n.dot line\nend\n");
	close(m.fd);
}

static void test_lmtp_mail_and_data_refused(void **state)
{
	static const char *const mail_refused[] = {
		LMTP_HELLO,
		"C MAIL FROM:<> SIZE=88", "S 451 4.3.0 try later",
		"C QUIT", "S 221 bye", NULL
	};
	static const char *const data_refused[] = {
		LMTP_HELLO,
		"C MAIL FROM:<> SIZE=88", "S 250 OK",
		"C RCPT TO:<a@example.test>", "S 250 OK",
		"C DATA", "S 554 5.6.0 no thanks", NULL
	};
	static const char *const all_rcpt_refused[] = {
		LMTP_HELLO,
		"C MAIL FROM:<> SIZE=88", "S 250 OK",
		"C RCPT TO:<a@example.test>", "S 550 5.1.1 unknown",
		"C RSET", "S 250 OK", NULL
	};
	struct delivery_rcpt r = { .addr = addr("a@example.test") };
	struct delivery_msg m = { .rcpt = &r, .nrcpt = 1, .size = sizeof g_msg - 1 };
	struct delivery_cfg cfg;
	struct server sv;

	(void)state;
	m.fd = spool(g_msg, sizeof g_msg - 1);
	srv_start(&sv, mail_refused);
	cfg_lmtp(&cfg, sv.port);
	assert_int_equal(delivery_run(&cfg, &m), SC_OK);
	srv_stop(&sv);
	assert_int_equal(r.code, 451);
	assert_string_equal(r.enhanced, "4.3.0");
	assert_string_equal(r.text, "try later");

	srv_start(&sv, data_refused);
	cfg_lmtp(&cfg, sv.port);
	assert_int_equal(delivery_run(&cfg, &m), SC_OK);
	srv_stop(&sv);
	assert_int_equal(r.code, 554);
	assert_string_equal(r.enhanced, "5.6.0");

	srv_start(&sv, all_rcpt_refused);
	cfg_lmtp(&cfg, sv.port);
	assert_int_equal(delivery_run(&cfg, &m), SC_OK);
	srv_stop(&sv);
	assert_int_equal(r.code, 550);
	close(m.fd);
}

/* Nothing listens: 451 4.4.1 for everyone, never a lost message. */
static void test_lmtp_server_down(void **state)
{
	struct delivery_rcpt r[2] = { { .addr = addr("a@example.test") },
				      { .addr = addr("b@example.test") } };
	struct delivery_msg m = { .rcpt = r, .nrcpt = 2, .size = sizeof g_msg - 1 };
	struct delivery_cfg cfg;
	char port[8], err[256];

	(void)state;
	assert_int_equal(ts_dead_port(port), 0);
	cfg_lmtp(&cfg, port);
	m.fd = spool(g_msg, sizeof g_msg - 1);
	assert_int_equal(delivery_run(&cfg, &m), SC_OK);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(r[i].code, 451);
		assert_string_equal(r[i].enhanced, "4.4.1");
		assert_non_null(strstr(r[i].detail, cfg.spec));
	}
	assert_int_equal(delivery_send_buffer(&cfg, "", &r[0].addr, g_msg, sizeof g_msg - 1, err,
					      sizeof err),
			 SC_ERR_TEMP);
	assert_non_null(strstr(err, "451"));
	/* a spec without a port cannot work at all */
	snprintf(cfg.spec, sizeof cfg.spec, "lmtp:127.0.0.1");
	assert_int_equal(delivery_run(&cfg, &m), SC_ERR_CONFIG);
	assert_string_equal(r[0].enhanced, "4.3.5");
	close(m.fd);
}

/* A server that says nothing, or nothing after the data: the timeout ends it. */
static void test_lmtp_timeouts(void **state)
{
	static const char *const silent[] = { "SLEEP", NULL };
	static const char *const silent_after_data[] = {
		LMTP_HELLO,
		"C MAIL FROM:<> SIZE=88", "S 250 OK",
		"C RCPT TO:<a@example.test>", "S 250 OK",
		"C RCPT TO:<b@example.test>", "S 250 OK",
		"C DATA", "S 354 go", "DATA", "S 250 2.0.0 a saved", "SLEEP", NULL
	};
	static const char *const hangup[] = {
		LMTP_HELLO,
		"C MAIL FROM:<> SIZE=88", "S 250 OK",
		"C RCPT TO:<a@example.test>", "S 250 OK", "CLOSE", NULL
	};
	struct delivery_rcpt r[2] = { { .addr = addr("a@example.test") },
				      { .addr = addr("b@example.test") } };
	struct delivery_msg m = { .rcpt = r, .nrcpt = 1, .size = sizeof g_msg - 1 };
	struct delivery_cfg cfg;
	struct server sv;

	(void)state;
	m.fd = spool(g_msg, sizeof g_msg - 1);
	srv_start(&sv, silent);
	cfg_lmtp(&cfg, sv.port);
	cfg.timeout_ms = 300;
	assert_int_equal(delivery_run(&cfg, &m), SC_OK);
	assert_int_equal(r[0].code, 451);
	assert_string_equal(r[0].enhanced, "4.4.1");
	srv_stop(&sv);

	/* the first recipient's reply came, the second's never did */
	m.nrcpt = 2;
	srv_start(&sv, silent_after_data);
	cfg_lmtp(&cfg, sv.port);
	cfg.timeout_ms = 300;
	assert_int_equal(delivery_run(&cfg, &m), SC_OK);
	srv_stop(&sv);
	assert_int_equal(r[0].code, 250);
	assert_int_equal(r[1].code, 451);
	assert_string_equal(r[1].enhanced, "4.4.2");

	srv_start(&sv, hangup);
	cfg_lmtp(&cfg, sv.port);
	assert_int_equal(delivery_run(&cfg, &m), SC_OK);
	srv_stop(&sv);
	assert_int_equal(r[0].code, 451);
	assert_int_equal(r[1].code, 451);
	close(m.fd);
}

/* SMTPUTF8 not offered (Dovecot 2.3): an ASCII envelope goes without it (as
 * 8BITMIME); a UTF-8 address cannot, 553 5.6.7. */
static void test_lmtp_smtputf8_not_offered(void **state)
{
	static const char *const script[] = {
		"S 220 store.test LMTP", "C LHLO mx.example.test",
		"S 250-store.test\n250 8BITMIME",
		"C MAIL FROM:<s@remote.test> BODY=8BITMIME", "S 250 OK",
		"C RCPT TO:<a@example.test>", "S 250 OK",
		"C DATA", "S 354 go", "DATA", "S 250 2.0.0 saved", NULL
	};
	static const char *const refused[] = {
		"S 220 store.test LMTP", "C LHLO mx.example.test", "S 250 store.test", NULL
	};
	struct delivery_rcpt r = { .addr = addr("a@example.test") };
	struct delivery_msg m = { .rcpt = &r, .nrcpt = 1, .size = sizeof g_msg - 1,
				  .smtputf8 = 1, .from = "s@remote.test" };
	struct delivery_cfg cfg;
	struct server sv;

	(void)state;
	m.fd = spool(g_msg, sizeof g_msg - 1);
	srv_start(&sv, script);
	cfg_lmtp(&cfg, sv.port);
	assert_int_equal(delivery_run(&cfg, &m), SC_OK);
	srv_stop(&sv);
	assert_int_equal(r.code, 250);

	r.addr = addr("j\xc3\xb6rg@example.test");
	srv_start(&sv, refused);
	cfg_lmtp(&cfg, sv.port);
	assert_int_equal(delivery_run(&cfg, &m), SC_OK);
	srv_stop(&sv);
	assert_int_equal(r.code, 553);
	assert_string_equal(r.enhanced, "5.6.7");
	close(m.fd);
}

/* The daemon's own notice to a proxy: backend: SMTP, null sender, one reply. */
static void test_send_buffer_proxy(void **state)
{
	static const char notice[] = "Subject: notice\r\n\r\nA submission\r\n";
	static const char *const ok[] = {
		"S 220 mta.test ESMTP", "C EHLO mx.example.test",
		"S 250-mta.test\n250-8BITMIME\n250 SIZE 1000000",
		"C MAIL FROM:<> BODY=8BITMIME SIZE=33", "S 250 2.1.0 OK",
		"C RCPT TO:<postmaster@example.test>", "S 250 2.1.5 OK",
		"C DATA", "S 354 go", "DATA", "S 250 2.0.0 queued as X", NULL
	};
	static const char *const refused[] = {
		"S 220 mta.test ESMTP", "C EHLO mx.example.test", "S 250 mta.test",
		"C MAIL FROM:<>", "S 250 OK",
		"C RCPT TO:<postmaster@example.test>", "S 550 5.1.1 no such user",
		"C RSET", "S 250 OK", NULL
	};
	struct sc_addr pm = addr("postmaster@example.test");
	struct delivery_cfg cfg;
	struct server sv;
	char err[256];

	(void)state;
	srv_start(&sv, ok);
	cfg_lmtp(&cfg, sv.port);
	snprintf(cfg.spec, sizeof cfg.spec, "proxy:127.0.0.1:%s", sv.port);
	assert_int_equal(delivery_send_buffer(&cfg, "", &pm, notice, sizeof notice - 1, err,
					      sizeof err),
			 SC_OK);
	srv_stop(&sv);
	assert_string_equal(sv.upload, "Subject: notice\n\nA submission\n");

	srv_start(&sv, refused);
	snprintf(cfg.spec, sizeof cfg.spec, "proxy:[127.0.0.1]:%s", sv.port);
	assert_int_equal(delivery_send_buffer(&cfg, "", &pm, notice, sizeof notice - 1, err,
					      sizeof err),
			 SC_ERR_REJECTED);
	srv_stop(&sv);
	assert_non_null(strstr(err, "no such user"));
}

static void test_encrypt_at_rest_lmtp(void **state)
{
	static const char *const script[] = {
		LMTP_HELLO,
		"P MAIL FROM:<> SIZE=", "S 250 OK",
		"C RCPT TO:<alice@example.test>", "S 250 OK",
		"C DATA", "S 354 go", "DATA", "S 250 2.0.0 alice saved",
		"C MAIL FROM:<> SIZE=249", "S 250 OK",
		"C RCPT TO:<bob@example.test>", "S 250 OK",
		"C DATA", "S 354 go", "DATA", "S 250 2.0.0 bob saved", NULL
	};
	struct person alice;
	struct delivery_rcpt r[2] = { { .addr = addr("alice@example.test") },
				      { .addr = addr("bob@example.test") } };
	struct delivery_msg m = { .rcpt = r, .nrcpt = 2, .size = sizeof g_plain - 1 };
	struct delivery_cfg cfg;
	struct server sv;
	char *end, *pa;

	(void)state;
	person(&alice, "alice@example.test", TC_RSA2048);
	r[0].cert = alice.cert;
	srv_start(&sv, script);
	cfg_lmtp(&cfg, sv.port);
	cfg.encrypt_at_rest = 1;
	m.fd = spool(g_plain, sizeof g_plain - 1);
	assert_int_equal(delivery_run(&cfg, &m), SC_OK);
	srv_stop(&sv);
	assert_int_equal(r[0].code, 250);
	assert_true(r[0].encrypted);
	assert_int_equal(r[1].code, 250);
	assert_false(r[1].encrypted);
	/* upload = alice's encrypted copy, then bob's plaintext one */
	end = strstr(sv.upload, "Received: from c by mx; Sat, 28 Nov 2026 21:00:00 +0000\n"
				"From: <carol@remote.test>\nTo: <alice@example.test>\n"
				"Subject: lunch\nMessage-ID: <1@remote.test>\n"
				"Content-Type: text/plain");
	assert_non_null(end);
	assert_true(end > sv.upload);
	*end = '\0';
	assert_non_null(strstr(sv.upload, "application/pkcs7-mime"));
	pa = cms_decrypt(sv.upload, strlen(sv.upload), &alice);
	assert_non_null(pa);
	assert_non_null(strstr(pa, "the secret body"));
	free(pa);
	close(m.fd);
	person_free(&alice);
}

static void test_notice_lmtp(void **state)
{
	static const char *const script[] = {
		LMTP_HELLO,
		"C MAIL FROM:<> BODY=8BITMIME SIZE=93", "S 250 OK",
		"C RCPT TO:<postmaster@example.test>", "S 250 OK",
		"C DATA", "S 354 go", "DATA", "S 250 2.0.0 saved", NULL
	};
	struct notify_target t;
	struct server sv;
	char err[512] = "", spec[700];
	unsigned ok, left;

	(void)state;
	srv_start(&sv, script);
	snprintf(spec, sizeof spec, "lmtp:127.0.0.1:%s", sv.port);
	notice_target(&t, spec);
	assert_int_equal(notify_save(g_tmp, "0c2d", g_notice, sizeof g_notice - 1, err,
				     sizeof err),
			 SC_OK);
	assert_int_equal(notify_flush(&t, &ok, &left, err, sizeof err), SC_OK);
	srv_stop(&sv);
	assert_int_equal(ok, 1);
	assert_int_equal(left, 0);
	assert_false(spooled("0c2d"));
	assert_string_equal(sv.upload, "From: MAILER-DAEMON@mx.example.test\n"
				       "Subject: New certificate submission\n\nsubmission 0a1b\n");
}

static void test_notice_kept_when_not_delivered(void **state)
{
	static const char *const refused[] = {
		LMTP_HELLO,
		"C MAIL FROM:<> BODY=8BITMIME SIZE=93", "S 250 OK",
		"C RCPT TO:<postmaster@example.test>", "S 550 5.1.1 no postmaster here",
		"C RSET", "S 250 OK", NULL
	};
	struct notify_target t;
	struct server sv;
	char err[512] = "", spec[700], dead[8];
	unsigned ok, left;

	(void)state;
	assert_int_equal(notify_save(g_tmp, "0e3f", g_notice, sizeof g_notice - 1, err,
				     sizeof err),
			 SC_OK);
	/* nothing configured: it stays for the administrator */
	notice_target(&t, "");
	assert_int_equal(notify_deliver(&t, "0e3f", err, sizeof err), SC_ERR_CONFIG);
	assert_true(spooled("0e3f"));
	/* the store is down: temporary, it stays */
	assert_int_equal(ts_dead_port(dead), 0);
	snprintf(spec, sizeof spec, "lmtp:127.0.0.1:%s", dead);
	notice_target(&t, spec);
	assert_int_equal(notify_flush(&t, &ok, &left, err, sizeof err), SC_ERR_TEMP);
	assert_int_equal(ok, 0);
	assert_int_equal(left, 1);
	assert_non_null(strstr(err, "451"));
	assert_true(spooled("0e3f"));
	/* refused for good: still kept (and logged by the caller), never dropped */
	srv_start(&sv, refused);
	snprintf(spec, sizeof spec, "lmtp:127.0.0.1:%s", sv.port);
	notice_target(&t, spec);
	assert_int_equal(notify_deliver(&t, "0e3f", err, sizeof err), SC_ERR_IO);
	srv_stop(&sv);
	assert_non_null(strstr(err, "no postmaster here"));
	assert_true(spooled("0e3f"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lmtp_per_recipient, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_lmtp_mail_and_data_refused, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_lmtp_server_down, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_lmtp_timeouts, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_lmtp_smtputf8_not_offered, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_send_buffer_proxy, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_encrypt_at_rest_lmtp, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_notice_lmtp, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_notice_kept_when_not_delivered, fx_setup,
						fx_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
