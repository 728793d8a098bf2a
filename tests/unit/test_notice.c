/*
 * test_notice.c - the postmaster and decision notices (lib/notice.c): every field
 * the issue lists, the exact admin commands, RFC 5322 headers and CRLF line ends,
 * header injection attempts through every value a peer or a certificate controls,
 * RFC 2047 subjects for UTF-8 addresses, shell quoting of the config path, and
 * buffers that are too small.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/evp.h>

#include <smtpcert/smtpcert.h>

#define ID "0123456789abcdef0123456789abcdef"
#define FP "d99db753e13292fc5d8d309f96abfa25f88582acc9997f32227480ffd4c78229"
#define CONF "/etc/smtpcert/smtpcertd.conf"

static char g_msg[16384];

static struct sc_submission sample(void)
{
	struct sc_submission s = { 0 };

	snprintf(s.id, sizeof s.id, "%s", ID);
	s.state = SC_SUB_PENDING;
	snprintf(s.address, sizeof s.address, "alice@example.test");
	snprintf(s.auth_user, sizeof s.auth_user, "alice@example.test");
	snprintf(s.client, sizeof s.client, "192.0.2.1:40000");
	s.received = 1795892400; /* 2026-11-28T19:00:00Z, a Saturday */
	snprintf(s.fingerprint, sizeof s.fingerprint, "%s", FP);
	snprintf(s.subject, sizeof s.subject, "CN=Alice,O=Example");
	snprintf(s.issuer, sizeof s.issuer, "CN=Example CA");
	s.not_before = 1795888800;
	s.not_after = 1798480800;
	return s;
}

static size_t fmt(const struct sc_submission *s)
{
	size_t len = 0;

	assert_int_equal(sc_notice_format(s, "mx.example.test", "postmaster@example.test", CONF,
					  g_msg, sizeof g_msg, &len),
			 SC_OK);
	assert_int_equal(len, strlen(g_msg));
	return len;
}

/* Every LF is preceded by CR, and no CR stands alone (RFC 5322 2.3). */
static void assert_crlf(const char *m)
{
	for (const char *p = m; *p; p++) {
		if (*p == '\n')
			assert_true(p > m && p[-1] == '\r');
		if (*p == '\r')
			assert_int_equal(p[1], '\n');
	}
}

/* The header block (up to the empty line), NUL-terminated in a static buffer. */
static const char *headers(const char *m)
{
	static char h[8192];
	const char *end = strstr(m, "\r\n\r\n");

	assert_non_null(end);
	assert_true((size_t)(end - m) + 3 < sizeof h);
	memcpy(h, m, (size_t)(end - m) + 2);
	h[end - m + 2] = '\0';
	return h;
}

static void test_pending_notice(void **state)
{
	struct sc_submission s = sample();
	const char *h;

	fmt(&s);
	assert_crlf(g_msg);
	h = headers(g_msg);
	assert_true(!strncmp(h, "Date: Sat, 28 Nov 2026 19:00:00 +0000\r\n", 39));
	assert_non_null(strstr(h, "\r\nMessage-ID: <" ID ".1795892400@mx.example.test>\r\n"));
	assert_non_null(strstr(h, "\r\nFrom: \"smtpcertd\" <MAILER-DAEMON@mx.example.test>\r\n"));
	assert_non_null(strstr(h, "\r\nTo: <postmaster@example.test>\r\n"));
	assert_non_null(strstr(
		h, "\r\nSubject: Certificate submission for alice@example.test (pending review)\r\n"));
	assert_non_null(strstr(h, "\r\nMIME-Version: 1.0\r\n"));
	assert_non_null(strstr(h, "\r\nContent-Type: text/plain; charset=utf-8\r\n"));
	assert_non_null(strstr(h, "\r\nContent-Transfer-Encoding: 8bit\r\n"));
	assert_non_null(strstr(h, "\r\nAuto-Submitted: auto-generated\r\n"));
	/* Body: every field. */
	assert_non_null(strstr(g_msg, "Submission:     " ID "\r\n"));
	assert_non_null(strstr(g_msg, "State:          pending review\r\n"));
	assert_non_null(strstr(g_msg, "Address:        alice@example.test\r\n"));
	assert_non_null(strstr(g_msg, "Fingerprint:    " FP "\r\n"));
	assert_non_null(strstr(g_msg, "Subject:        CN=Alice,O=Example\r\n"));
	assert_non_null(strstr(g_msg, "Issuer:         CN=Example CA\r\n"));
	assert_non_null(strstr(g_msg, "Valid from:     2026-11-28T18:00:00Z\r\n"));
	assert_non_null(strstr(g_msg, "Valid until:    2026-12-28T18:00:00Z\r\n"));
	assert_non_null(strstr(g_msg, "Received:       2026-11-28T19:00:00Z\r\n"));
	assert_non_null(strstr(g_msg, "Client:         192.0.2.1:40000\r\n"));
	assert_non_null(strstr(g_msg, "Authenticated:  alice@example.test\r\n"));
	/* The exact commands. */
	assert_non_null(strstr(g_msg, "\r\n    smtpcert admin -c " CONF " accept " ID "\r\n"));
	assert_non_null(strstr(g_msg, "\r\n    smtpcert admin -c " CONF " reject " ID
				      " --reason \"...\"\r\n"));
	assert_non_null(strstr(g_msg, "\r\n    smtpcert admin -c " CONF " show " ID "\r\n"));
	/* Formatting again gives the same message (retries keep the Message-ID). */
	{
		char first[sizeof g_msg];

		memcpy(first, g_msg, sizeof first);
		fmt(&s);
		assert_string_equal(first, g_msg);
	}
}

static void test_auto_notice(void **state)
{
	struct sc_submission s = sample();

	s.state = SC_SUB_ACCEPTED;
	s.decided = s.received + 1;
	fmt(&s);
	assert_non_null(strstr(headers(g_msg), "\r\nSubject: Certificate submission for "
						"alice@example.test (accepted automatically)\r\n"));
	assert_non_null(strstr(g_msg, "Message-ID: <" ID ".1795892401@mx.example.test>"));
	assert_non_null(strstr(g_msg, "State:          accepted automatically\r\n"));
	assert_non_null(strstr(g_msg, "smtpcert admin -c " CONF " remove alice@example.test "
				      "--fingerprint " FP "\r\n"));
	assert_null(strstr(g_msg, " accept " ID));
}

/* Nothing a peer or a certificate controls can start a header line. */
static void test_header_injection(void **state)
{
	struct sc_submission s = sample();
	const char *h;
	size_t len = 0;

	snprintf(s.auth_user, sizeof s.auth_user, "evil\r\nBcc: victim@example.net");
	snprintf(s.subject, sizeof s.subject, "CN=x\r\nX-Injected: 1\n\rY: 2\x7f\x01");
	snprintf(s.issuer, sizeof s.issuer, "CN=\r\n\r\nbody-injection");
	snprintf(s.client, sizeof s.client, "1.2.3.4\nX-Client: 1");
	snprintf(s.address, sizeof s.address, "a@example.test\r\nX-Addr: 1");
	assert_int_equal(sc_notice_format(&s, "mx.example.test\r\nX-Host: 1",
					  "pm@example.test\r\nX-Pm: 1", CONF "\nX-Conf: 1", g_msg,
					  sizeof g_msg, &len),
			 SC_OK);
	assert_crlf(g_msg);
	h = headers(g_msg);
	for (const char *bad = h; (bad = strstr(bad, "\r\n")) != NULL; bad += 2) {
		const char *line = bad + 2;

		if (!*line)
			break;
		/* Every header line is one of ours (or a fold of the Subject). */
		assert_true(!strncmp(line, "Message-ID: ", 12) || !strncmp(line, "From: ", 6) ||
			    !strncmp(line, "To: ", 4) || !strncmp(line, "Subject: ", 9) ||
			    !strncmp(line, "Auto-Submitted: ", 16) ||
			    !strncmp(line, "MIME-Version: ", 14) ||
			    !strncmp(line, "Content-Type: ", 14) ||
			    !strncmp(line, "Content-Transfer-Encoding: ", 27) || line[0] == ' ');
	}
	for (const char *p = g_msg; (p = strstr(p, "\r\n")) != NULL; p += 2) {
		assert_false(!strncmp(p + 2, "Bcc:", 4));
		assert_false(!strncmp(p + 2, "X-", 2));
		assert_false(!strncmp(p + 2, "body-injection", 14));
		assert_false(!strncmp(p + 2, "Y: ", 3));
	}
	assert_non_null(strstr(g_msg, "Authenticated:  evil??Bcc: victim@example.net\r\n"));
	assert_non_null(strstr(h, "To: <pm@example.test??X-Pm: 1>\r\n"));
	/* The config path with a newline is quoted and the newline replaced. */
	assert_non_null(strstr(g_msg, "smtpcert admin -c '" CONF "?X-Conf: 1' accept " ID));
}

/* Non-ASCII addresses travel in RFC 2047 encoded-words in the Subject. */
static void test_utf8_subject(void **state)
{
	struct sc_submission s = sample();
	const char *h, *p;
	char decoded[1024] = "";
	size_t off = 0;

	snprintf(s.address, sizeof s.address,
		 "j\xc3\xb6rg.m\xc3\xbcller.with.a.rather.long.local.part@b\xc3\xbc"
		 "cher.example");
	fmt(&s);
	h = headers(g_msg);
	p = strstr(h, "\r\nSubject: =?utf-8?B?");
	assert_non_null(p);
	for (const char *l = h; *l; l++)
		assert_true((unsigned char)*l < 0x80); /* headers are ASCII */
	/* Decode every encoded-word of the (folded) Subject and compare. */
	p += 11;
	while (!strncmp(p, "=?utf-8?B?", 10)) {
		const char *end = strstr(p + 10, "?=");
		unsigned char out[128];
		int n;

		assert_non_null(end);
		assert_true(end + 2 - p <= 75); /* RFC 2047 section 2 */
		n = EVP_DecodeBlock(out, (const unsigned char *)p + 10, (int)(end - p - 10));
		assert_true(n > 0);
		while (n > 0 && (end[-1] == '=' ? (end--, 1) : 0))
			n--;
		memcpy(decoded + off, out, (size_t)n);
		off += (size_t)n;
		p = strstr(p, "?=") + 2;
		if (!strncmp(p, "\r\n ", 3))
			p += 3;
	}
	decoded[off] = '\0';
	assert_string_equal(decoded, "Certificate submission for j\xc3\xb6rg.m\xc3\xbcller.with.a."
				     "rather.long.local.part@b\xc3\xbc"
				     "cher.example (pending review)");
	/* The body keeps UTF-8 as is (8bit). */
	assert_non_null(strstr(g_msg, "Address:        j\xc3\xb6rg.m\xc3\xbcller"));
	/* Invalid UTF-8 in a value becomes '?' in the body. */
	s = sample();
	snprintf(s.subject, sizeof s.subject, "CN=\xff\xc3");
	fmt(&s);
	assert_non_null(strstr(g_msg, "Subject:        CN=??\r\n"));
}

static void test_config_quoting(void **state)
{
	struct sc_submission s = sample();
	size_t len;

	assert_int_equal(sc_notice_format(&s, "h.example", "pm@h.example", "/etc/my conf/it's.conf",
					  g_msg, sizeof g_msg, &len),
			 SC_OK);
	assert_non_null(strstr(g_msg, "smtpcert admin -c '/etc/my conf/it'\\''s.conf' accept " ID));
}

static void test_too_small(void **state)
{
	struct sc_submission s = sample();
	size_t len = 0, need;
	char small[64];

	need = fmt(&s);
	assert_int_equal(sc_notice_format(&s, "mx.example.test", "postmaster@example.test", CONF,
					  small, sizeof small, &len),
			 SC_ERR_TOO_LONG);
	assert_int_equal(sc_notice_format(&s, "mx.example.test", "postmaster@example.test", CONF,
					  g_msg, need, &len),
			 SC_ERR_TOO_LONG);
	assert_int_equal(sc_notice_format(&s, "mx.example.test", "postmaster@example.test", CONF,
					  g_msg, need + 1, &len),
			 SC_OK);
	assert_int_equal(len, need);
	assert_int_equal(sc_notice_format(NULL, "h", "p", "c", g_msg, sizeof g_msg, &len),
			 SC_ERR_ARG);
}

static void test_decision_notice(void **state)
{
	struct sc_submission s = sample();
	size_t len;
	const char *h;

	assert_int_equal(sc_notice_format_decision(&s, "mx.example.test", "postmaster@example.test",
						   g_msg, sizeof g_msg, &len),
			 SC_ERR_ARG); /* still pending */
	s.state = SC_SUB_REJECTED;
	s.decided = 1795896000;
	snprintf(s.reason, sizeof s.reason, "not issued by our CA\r\nX-Evil: 1");
	assert_int_equal(sc_notice_format_decision(&s, "mx.example.test", "postmaster@example.test",
						   g_msg, sizeof g_msg, &len),
			 SC_OK);
	assert_crlf(g_msg);
	h = headers(g_msg);
	assert_non_null(strstr(h, "\r\nTo: <alice@example.test>\r\n"));
	assert_non_null(strstr(h, "\r\nReply-To: <postmaster@example.test>\r\n"));
	assert_non_null(strstr(h, "\r\nSubject: Your certificate for alice@example.test was "
				  "rejected\r\n"));
	assert_non_null(strstr(h, "Date: Sat, 28 Nov 2026 20:00:00 +0000\r\n"));
	assert_non_null(strstr(g_msg, "Reason:         not issued by our CA??X-Evil: 1\r\n"));
	assert_non_null(strstr(g_msg, "Fingerprint:    " FP "\r\n"));
	assert_non_null(strstr(g_msg, "Decided:        2026-11-28T20:00:00Z\r\n"));
	s.state = SC_SUB_ACCEPTED;
	s.reason[0] = '\0';
	assert_int_equal(sc_notice_format_decision(&s, "mx.example.test", "postmaster@example.test",
						   g_msg, sizeof g_msg, &len),
			 SC_OK);
	assert_non_null(strstr(g_msg, "was accepted\r\n"));
	assert_null(strstr(g_msg, "Reason:"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pending_notice),   cmocka_unit_test(test_auto_notice),
		cmocka_unit_test(test_header_injection), cmocka_unit_test(test_utf8_subject),
		cmocka_unit_test(test_config_quoting),   cmocka_unit_test(test_too_small),
		cmocka_unit_test(test_decision_notice),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
