/*
 * test_d_mail.c - the standalone mail transaction (daemon/cmd_mail.c,
 * mail_data.c, bdat.c, transaction.c, deliver_job.c, rcpt_local.c) driven
 * through the session without sockets; delivery_run() is replaced by a
 * recorder (deliver_job_set_runner) so the envelope, the spool content and the
 * certificates handed over can be checked, and per-recipient results chosen.
 *
 * Covers: EHLO keywords; MAIL syntax and parameters (SIZE within/over the limit,
 * malformed, duplicate; BODY; SMTPUTF8; AUTH=; unknown 555; non-ASCII without
 * SMTPUTF8 553; null sender; quoted '>'); nested MAIL; RCPT before MAIL;
 * relay denial (other domain, gateway domain, address literal, source route);
 * unknown user; postmaster, abuse, <Postmaster>; the recipients file (case);
 * duplicates; max_recipients; RSET; DATA without recipients; the data flow (the
 * Received field first, dot-unstuffing, the reply with the id); refusals after
 * the data (bare LF, size, line length) keeping the session in sync; the reply
 * rules for partial failures; BDAT (chunks, LAST, refused BDAT skips its chunk,
 * DATA after BDAT); encryption at rest certificates (valid: given; revoked,
 * expired, none: not); rcpt_local_load errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_d_fixture.h"
#include "deliver_job.h"
#include "log.h"
#include "rcpt_local.h"
#include "session.h"
#include "transaction.h"
#include "worker.h"

static struct dfix fix;
static char rdir[512];

/* What the fake delivery saw, and what it answers. */
static struct {
	int calls;
	char from[SC_ADDR_KEY_MAX];
	size_t nrcpt;
	char rcpt[8][SC_ADDR_KEY_MAX];
	int has_cert[8];
	char body[8192];
	size_t len;
	int codes[8];          /* 0 = 250 */
	sc_status rc;
	unsigned smtputf8, body_8bit;
} rec;

static sc_status fake_delivery(const struct delivery_cfg *cfg, struct delivery_msg *m)
{
	ssize_t n;

	rec.calls++;
	snprintf(rec.from, sizeof rec.from, "%s", m->from);
	rec.nrcpt = m->nrcpt;
	rec.smtputf8 = m->smtputf8;
	rec.body_8bit = m->body_8bit;
	n = pread(m->fd, rec.body, sizeof rec.body - 1, 0);
	assert_true(n >= 0);
	assert_int_equal((uint64_t)n, m->size);
	rec.len = (size_t)n;
	rec.body[n] = '\0';
	assert_true(cfg->spec[0] != '\0');
	for (size_t i = 0; i < m->nrcpt && i < 8; i++) {
		int code = rec.codes[i] ? rec.codes[i] : 250;

		assert_int_equal(sc_addr_key(&m->rcpt[i].addr, rec.rcpt[i], sizeof rec.rcpt[i], NULL),
				 SC_OK);
		rec.has_cert[i] = m->rcpt[i].cert != NULL;
		if (rec.rc != SC_OK)
			continue; /* no result for anybody */
		m->rcpt[i].code = code;
		snprintf(m->rcpt[i].enhanced, sizeof m->rcpt[i].enhanced, "%s",
			 code == 250 ? "2.0.0" : code == 552 ? "5.2.2" : code / 100 == 4 ? "4.3.0" : "5.3.0");
		snprintf(m->rcpt[i].text, sizeof m->rcpt[i].text, "%s",
			 code == 250 ? "ok" : code == 552 ? "Mailbox full" : "failed");
	}
	return rec.rc;
}

static void put(const char *path, const char *text)
{
	tc_write_file(path, text, strlen(text));
}

static int setup(void **state)
{
	char path[600], extra[2048];

	log_init(LOG_SINK_STDERR, 0);
	tc_tmpdir(rdir, sizeof rdir);
	snprintf(path, sizeof path, "%s/recipients", rdir);
	put(path, "# listed\nfrank@example.test\n  Carol@Example.TEST \n\ndave@example.test\n");
	snprintf(extra, sizeof extra,
		 "delivery = maildir:%s/mail/%%d/%%n\nrecipients = %s\nmax_recipients = 3\n"
		 "max_message_size = 2000\nencrypt_at_rest = yes\nmax_errors = 100\n", rdir, path);
	dfix_setup(&fix, extra, 0);
	deliver_job_set_runner(fake_delivery);
	return 0;
}

static int teardown(void **state)
{
	deliver_job_set_runner(NULL);
	dfix_teardown(&fix);
	tc_rmtree(rdir);
	return 0;
}

static const char *cmd(struct session *s, const char *line)
{
	session_line(s, line, strlen(line));
	return dfix_take(s);
}

/* Bulk input (DATA/BDAT) as conn_io.c hands it over. @return what is left. */
static size_t bulk(struct session *s, const char *data, size_t len)
{
	sc_buf *b;
	size_t left;

	assert_int_equal(sc_buf_new(len + 16, &b), SC_OK);
	assert_int_equal(sc_buf_append(b, data, len), SC_OK);
	session_upload_input(s, b);
	left = sc_buf_len(b);
	sc_buf_free(b);
	return left;
}

static void greet(struct session *s)
{
	memset(s, 0, sizeof *s);
	session_init(s, fix.rt, "192.0.2.1:1234", "test0001");
	session_greet(s);
	(void)dfix_take(s);
	assert_non_null(strstr(cmd(s, "EHLO client.test"), "250 HELP\r\n"));
	memset(&rec, 0, sizeof rec);
}

#define ASSERT_REPLY(s, line, want) assert_string_equal(cmd((s), (line)), want "\r\n")
#define ASSERT_NOREPLY(s, line) assert_string_equal(cmd((s), (line)), "")

static void test_ehlo_keywords(void **state)
{
	struct session s;
	const char *r;

	memset(&s, 0, sizeof s);
	session_init(&s, fix.rt, "192.0.2.1:1234", "t");
	r = cmd(&s, "EHLO client.test");
	assert_non_null(strstr(r, "250-SIZE 2000\r\n250-8BITMIME\r\n"));
	assert_non_null(strstr(r, "250-SMTPUTF8\r\n250-CHUNKING\r\n"));
	assert_non_null(strstr(r, "250-PIPELINING\r\n"));
	assert_non_null(strstr(r, "250-ENHANCEDSTATUSCODES\r\n"));
	assert_string_equal(s.helo, "client.test");
	assert_true(s.ehlo);
	session_fini(&s);
}

static void test_mail_syntax(void **state)
{
	struct session s;

	memset(&s, 0, sizeof s);
	session_init(&s, fix.rt, "192.0.2.1:1234", "t");
	ASSERT_REPLY(&s, "MAIL FROM:<a@client.test>", "503 5.5.1 Send HELO/EHLO first");
	session_fini(&s);
	greet(&s);
	ASSERT_REPLY(&s, "MAIL", "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]");
	ASSERT_REPLY(&s, "MAIL TO:<a@client.test>", "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]");
	ASSERT_REPLY(&s, "MAIL FROM:a@client.test", "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]");
	ASSERT_REPLY(&s, "MAIL FROM:<a@client.test", "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]");
	ASSERT_REPLY(&s, "MAIL FROM:<a@client.test>SIZE=1", "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]");
	assert_memory_equal(cmd(&s, "MAIL FROM:<a b@client.test>"), "501 5.5.4 Syntax: MAIL", 22);
	assert_memory_equal(cmd(&s, "MAIL FROM:<\xff@client.test>"), "501 5.5.4", 9);
	ASSERT_REPLY(&s, "MAIL FROM:<j\xc3\xb6rg@client.test>",
		     "553 5.6.7 Non-ASCII address needs MAIL ... SMTPUTF8 (RFC 6531)");
	session_line(&s, "MAIL FROM:<a\0@x>", 16);
	assert_string_equal(dfix_take(&s), "500 5.5.2 Syntax error\r\n");
	assert_null(s.tx);
	session_fini(&s);
}

static void test_mail_params(void **state)
{
	struct session s;

	greet(&s);
	ASSERT_REPLY(&s, "MAIL FROM:<a@client.test> SIZE=2001",
		     "552 5.3.4 Message size exceeds fixed maximum message size (2000)");
	ASSERT_REPLY(&s, "MAIL FROM:<a@client.test> SIZE=99999999999999999999999",
		     "501 5.5.4 Syntax: SIZE=<octets> (RFC 1870)");
	ASSERT_REPLY(&s, "MAIL FROM:<a@client.test> SIZE=12x", "501 5.5.4 Syntax: SIZE=<octets> (RFC 1870)");
	ASSERT_REPLY(&s, "MAIL FROM:<a@client.test> SIZE=1 SIZE=2", "501 5.5.4 Syntax: SIZE=<octets> (RFC 1870)");
	ASSERT_REPLY(&s, "MAIL FROM:<a@client.test> BODY=BINARYMIME",
		     "555 5.5.4 Unsupported BODY type (7BIT and 8BITMIME only)");
	ASSERT_REPLY(&s, "MAIL FROM:<a@client.test> BODY", "501 5.5.4 Syntax: BODY=7BIT|8BITMIME");
	ASSERT_REPLY(&s, "MAIL FROM:<a@client.test> SMTPUTF8=yes",
		     "501 5.5.4 Syntax: SMTPUTF8 takes no value (RFC 6531)");
	ASSERT_REPLY(&s, "MAIL FROM:<a@client.test> AUTH=", "501 5.5.4 Syntax: AUTH=<mailbox> or AUTH=<>");
	ASSERT_REPLY(&s, "MAIL FROM:<a@client.test> RET=HDRS", "555 5.5.4 Unsupported parameter RET");
	assert_null(s.tx);
	ASSERT_REPLY(&s, "MAIL FROM:<j\xc3\xb6rg@client.test> size=2000 body=8bitmime smtputf8 AUTH=<>",
		     "250 2.1.0 Sender OK");
	assert_non_null(s.tx);
	assert_true(s.tx->smtputf8 && s.tx->body_8bit);
	assert_int_equal(s.tx->size_param, 2000);
	ASSERT_REPLY(&s, "MAIL FROM:<b@client.test>", "503 5.5.1 Nested MAIL command");
	ASSERT_REPLY(&s, "RSET", "250 2.0.0 OK");
	assert_null(s.tx);
	ASSERT_REPLY(&s, "MAIL FROM:<>", "250 2.1.0 Sender OK");
	assert_true(s.tx->null_sender);
	assert_string_equal(s.tx->from_key, "");
	ASSERT_REPLY(&s, "EHLO again.test", "250-mx.test greets again.test\r\n250-PIPELINING\r\n"
		     "250-SIZE 2000\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n"
		     "250-CHUNKING\r\n250-CERT\r\n250-CERS\r\n250 HELP");
	assert_null(s.tx); /* RFC 5321 4.1.4: EHLO resets */
	ASSERT_REPLY(&s, "MAIL FROM: <\"q>x\"@client.test> BODY=7BIT", "250 2.1.0 Sender OK");
	assert_string_equal(s.tx->from_key, "\"q>x\"@client.test");
	session_fini(&s);
}

static void test_rcpt_rules(void **state)
{
	struct session s;

	greet(&s);
	ASSERT_REPLY(&s, "RCPT TO:<frank@example.test>", "503 5.5.1 Need MAIL before RCPT");
	ASSERT_REPLY(&s, "MAIL FROM:<a@client.test>", "250 2.1.0 Sender OK");
	ASSERT_REPLY(&s, "RCPT frank@example.test", "501 5.5.4 Syntax: RCPT TO:<address>");
	ASSERT_REPLY(&s, "RCPT TO:<frank@example.test> NOTIFY=NEVER", "555 5.5.4 RCPT parameters not supported");
	ASSERT_REPLY(&s, "RCPT TO:<x@other.test>", "554 5.7.1 Relay access denied");
	ASSERT_REPLY(&s, "RCPT TO:<grace@gw.test>",
		     "554 5.7.1 Relay access denied: certificates only for this domain");
	ASSERT_REPLY(&s, "RCPT TO:<frank@[192.0.2.9]>", "554 5.7.1 Relay access denied");
	ASSERT_REPLY(&s, "RCPT TO:<@example.test:x@other.test>", "554 5.7.1 Relay access denied");
	ASSERT_REPLY(&s, "RCPT TO:<x@example.test.other.test>", "554 5.7.1 Relay access denied");
	ASSERT_REPLY(&s, "RCPT TO:<nobody@example.test>", "550 5.1.1 User unknown");
	/* alice has a certificate but is not a recipient: certificates are not mailboxes */
	ASSERT_REPLY(&s, "RCPT TO:<alice@example.test>", "550 5.1.1 User unknown");
	ASSERT_REPLY(&s, "RCPT TO:<j\xc3\xb6rg@example.test>",
		     "553 5.6.7 Non-ASCII address needs MAIL ... SMTPUTF8 (RFC 6531)");
	assert_int_equal(s.tx->nrcpt, 0);
	ASSERT_REPLY(&s, "DATA", "554 5.5.1 No valid recipients");
	ASSERT_REPLY(&s, "RCPT TO:<Postmaster>", "250 2.1.5 Recipient OK");
	ASSERT_REPLY(&s, "RCPT TO:<POSTMASTER@example.test>", "250 2.1.5 Recipient OK"); /* same */
	ASSERT_REPLY(&s, "RCPT TO:<abuse@Example.Test>", "250 2.1.5 Recipient OK");
	assert_int_equal(s.tx->nrcpt, 2);
	ASSERT_REPLY(&s, "RCPT TO:<CAROL@example.test>", "250 2.1.5 Recipient OK");
	assert_string_equal(s.tx->rcpt[2].key, "carol@example.test");
	assert_string_equal(s.tx->rcpt[2].addr.local, "carol");
	ASSERT_REPLY(&s, "RCPT TO:<frank@example.test>", "452 4.5.3 Too many recipients");
	ASSERT_REPLY(&s, "RSET", "250 2.0.0 OK");
	ASSERT_REPLY(&s, "DATA", "503 5.5.1 Need MAIL and RCPT before DATA");
	session_fini(&s);
}

static void test_rcpt_duplicates(void **state)
{
	struct session s;

	greet(&s);
	ASSERT_REPLY(&s, "MAIL FROM:<a@client.test>", "250 2.1.0 Sender OK");
	for (int i = 0; i < 3; i++)
		assert_memory_equal(cmd(&s, "RCPT TO:<frank@example.test>"), "250", 3);
	assert_int_equal(s.tx->nrcpt, 1); /* a duplicate counts once */
	session_fini(&s);
}

static void start_data(struct session *s, const char *rcpts[], size_t n)
{
	ASSERT_REPLY(s, "MAIL FROM:<sender@client.test>", "250 2.1.0 Sender OK");
	for (size_t i = 0; i < n; i++) {
		char line[200];

		snprintf(line, sizeof line, "RCPT TO:<%s>", rcpts[i]);
		ASSERT_REPLY(s, line, "250 2.1.5 Recipient OK");
	}
	ASSERT_REPLY(s, "DATA", "354 End data with <CR><LF>.<CR><LF>");
	assert_int_equal(s->state, SESSION_DATA);
}

static void test_data_delivered(void **state)
{
	static const char msg[] = "Subject: t\r\n\r\n..dot\r\nend\r\n.\r\nNOOP\r\n";
	const char *rcpts[] = { "frank@example.test" };
	struct session s;
	const char *r;

	greet(&s);
	start_data(&s, rcpts, 1);
	assert_int_equal(bulk(&s, msg, sizeof msg - 1), strlen("NOOP\r\n"));
	r = dfix_take(&s);
	assert_string_equal(r, "250 2.0.0 test0001.1 delivered\r\n");
	assert_int_equal(s.state, SESSION_READY);
	assert_null(s.tx);
	assert_int_equal(rec.calls, 1);
	assert_string_equal(rec.from, "sender@client.test");
	assert_int_equal(rec.nrcpt, 1);
	assert_string_equal(rec.rcpt[0], "frank@example.test");
	assert_false(rec.has_cert[0]);
	{
		const char *head = "Received: from client.test ([192.0.2.1])\r\n"
				   "\tby mx.test (smtpcertd) with ESMTP\r\n\tid test0001.1\r\n"
				   "\tfor <frank@example.test>; ";

		assert_memory_equal(rec.body, head, strlen(head));
	}
	assert_non_null(strstr(rec.body, "\r\nSubject: t\r\n\r\n.dot\r\nend\r\n"));
	assert_true(rec.len > 0 && strcmp(rec.body + rec.len - 5, "end\r\n") == 0);
	/* the next message gets the next id */
	start_data(&s, rcpts, 1);
	(void)bulk(&s, ".\r\n", 3);
	assert_string_equal(dfix_take(&s), "250 2.0.0 test0001.2 delivered\r\n");
	session_fini(&s);
}

static void test_encrypt_at_rest_certs(void **state)
{
	/* alice: valid certificate (listed here as postmaster would not have one);
	 * carol: revoked; dave: expired; frank: none */
	const char *rcpts[] = { "carol@example.test", "dave@example.test", "frank@example.test" };
	struct session s;
	struct rcpt_local *rl;
	char path[700], err[300];

	greet(&s);
	start_data(&s, rcpts, 3);
	(void)bulk(&s, "x\r\n.\r\n", 6);
	assert_string_equal(dfix_take(&s), "250 2.0.0 test0001.1 delivered\r\n");
	assert_int_equal(rec.nrcpt, 3);
	assert_false(rec.has_cert[0]); /* revoked: never used */
	assert_false(rec.has_cert[1]); /* expired */
	assert_false(rec.has_cert[2]);
	assert_null(strstr(rec.body, "\tfor <")); /* several recipients */
	session_fini(&s);
	/* alice (valid) gets hers: make alice a recipient through a reloaded set */
	snprintf(path, sizeof path, "%s/recipients2", rdir);
	put(path, "alice@example.test\n");
	assert_int_equal(rcpt_local_load(fix.rt->cfg, path, NULL, NULL, NULL, &rl, err, sizeof err), SC_OK);
	{
		struct rcpt_local *old = fix.rt->local_rcpts;
		const char *a[] = { "alice@example.test" };

		fix.rt->local_rcpts = rl;
		greet(&s);
		start_data(&s, a, 1);
		(void)bulk(&s, "x\r\n.\r\n", 6);
		assert_string_equal(dfix_take(&s), "250 2.0.0 test0001.1 delivered\r\n");
		assert_true(rec.has_cert[0]);
		session_fini(&s);
		fix.rt->local_rcpts = old;
		rcpt_local_free(rl);
	}
}

static void test_data_refused_in_sync(void **state)
{
	const char *rcpts[] = { "frank@example.test" };
	struct session s;
	char big[2100];

	greet(&s);
	start_data(&s, rcpts, 1);
	assert_int_equal(bulk(&s, "a\nb\r\n.\r\nNOOP\r\n", 14), 6);
	assert_string_equal(dfix_take(&s), "554 5.6.11 Message refused: bare CR or LF in the data "
			    "(lines end with CRLF, RFC 5321 2.3.8)\r\n");
	assert_int_equal(s.state, SESSION_READY);
	assert_null(s.tx);
	ASSERT_REPLY(&s, "NOOP", "250 2.0.0 OK");
	start_data(&s, rcpts, 1);
	memset(big, 'x', sizeof big);
	for (size_t i = 98; i < sizeof big; i += 100)
		memcpy(big + i, "\r\n", 2);
	assert_int_equal(bulk(&s, big, sizeof big), 0);
	assert_string_equal(dfix_take(&s), "");
	assert_int_equal(bulk(&s, "\r\n.\r\n", 5), 0);
	assert_string_equal(dfix_take(&s), "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
	start_data(&s, rcpts, 1);
	memset(big, 'y', 1200);
	memcpy(big + 1200, "\r\n.\r\n", 5);
	(void)bulk(&s, big, 1205);
	assert_string_equal(dfix_take(&s), "554 5.6.0 Message refused: a line is longer than 1000 octets "
			    "(RFC 5321 4.5.3.1.6)\r\n");
	assert_int_equal(rec.calls, 0);
	assert_int_equal(s.errors, 3);
	session_fini(&s);
}

static void test_partial_failures(void **state)
{
	const char *two[] = { "frank@example.test", "carol@example.test" };
	const char *one[] = { "frank@example.test" };
	struct session s;

	greet(&s);
	rec.codes[1] = 451;
	start_data(&s, two, 2);
	(void)bulk(&s, ".\r\n", 3);
	assert_string_equal(dfix_take(&s), "451 4.3.0 Not delivered to 1 of 2 recipients, try again later: failed\r\n");
	memset(&rec, 0, sizeof rec);
	rec.codes[0] = 550;
	start_data(&s, two, 2);
	(void)bulk(&s, ".\r\n", 3);
	assert_string_equal(dfix_take(&s), "554 5.3.0 Not delivered to 1 of 2 recipients: failed\r\n");
	memset(&rec, 0, sizeof rec);
	rec.codes[0] = 550;
	rec.codes[1] = 451;
	start_data(&s, two, 2);
	(void)bulk(&s, ".\r\n", 3);
	assert_memory_equal(dfix_take(&s), "451 4.3.0 Not delivered to 2 of 2", 33);
	memset(&rec, 0, sizeof rec);
	rec.codes[0] = 552;
	start_data(&s, one, 1);
	(void)bulk(&s, ".\r\n", 3);
	assert_string_equal(dfix_take(&s), "552 5.2.2 Mailbox full\r\n");
	memset(&rec, 0, sizeof rec);
	rec.rc = SC_ERR_CONFIG; /* no result for anybody */
	start_data(&s, one, 1);
	(void)bulk(&s, ".\r\n", 3);
	assert_string_equal(dfix_take(&s), "451 4.3.0 Delivery failed, try again later\r\n");
	assert_int_equal(s.state, SESSION_READY);
	session_fini(&s);
}

static void test_bdat(void **state)
{
	const char *rcpt = "RCPT TO:<frank@example.test>";
	struct session s;

	greet(&s);
	ASSERT_REPLY(&s, "BDAT", "501 5.5.4 Syntax: BDAT <size> [LAST]");
	ASSERT_REPLY(&s, "BDAT x", "501 5.5.4 Syntax: BDAT <size> [LAST]");
	ASSERT_REPLY(&s, "BDAT 5 FIRST", "501 5.5.4 Syntax: BDAT <size> [LAST]");
	/* refused, and its chunk (which looks like commands) is skipped */
	ASSERT_REPLY(&s, "BDAT 6", "503 5.5.1 Need MAIL and RCPT before BDAT");
	assert_int_equal(s.state, SESSION_DATA);
	assert_int_equal(bulk(&s, "QUIT\r\nNOOP\r\n", 12), 6);
	assert_int_equal(s.state, SESSION_READY);
	ASSERT_REPLY(&s, "MAIL FROM:<a@client.test>", "250 2.1.0 Sender OK");
	ASSERT_REPLY(&s, "BDAT 2 LAST", "554 5.5.1 No valid recipients");
	assert_int_equal(bulk(&s, "xy", 2), 0);
	ASSERT_REPLY(&s, rcpt, "250 2.1.5 Recipient OK");
	ASSERT_NOREPLY(&s, "BDAT 12");
	assert_int_equal(bulk(&s, "Subject: b\r", 11), 0); /* CR | LF split */
	assert_string_equal(dfix_take(&s), "");
	assert_int_equal(bulk(&s, "\nBDAT 0 LAST\r\n", 14), 13);
	assert_string_equal(dfix_take(&s), "250 2.0.0 12 octets received\r\n");
	ASSERT_REPLY(&s, "DATA", "503 5.5.1 DATA after BDAT (RFC 3030)");
	ASSERT_REPLY(&s, rcpt, "503 5.5.1 RCPT after BDAT");
	ASSERT_NOREPLY(&s, "BDAT 6 last");
	assert_int_equal(bulk(&s, ".\r\nx\r\n", 6), 0);
	assert_string_equal(dfix_take(&s), "250 2.0.0 test0001.1 delivered\r\n");
	assert_non_null(strstr(rec.body, "\r\nSubject: b\r\n.\r\nx\r\n"));
	assert_null(s.tx);
	/* a chunk over the size limit ends the transaction at that chunk */
	ASSERT_REPLY(&s, "MAIL FROM:<a@client.test>", "250 2.1.0 Sender OK");
	ASSERT_REPLY(&s, rcpt, "250 2.1.5 Recipient OK");
	{
		char big[2500];

		memset(big, 'z', sizeof big);
		for (size_t i = 98; i < sizeof big; i += 100)
			memcpy(big + i, "\r\n", 2);
		ASSERT_NOREPLY(&s, "BDAT 2500");
		assert_int_equal(bulk(&s, big, sizeof big), 0);
		assert_string_equal(dfix_take(&s), "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
	}
	assert_null(s.tx);
	ASSERT_REPLY(&s, "BDAT 1 LAST", "503 5.5.1 Need MAIL and RCPT before BDAT");
	assert_int_equal(bulk(&s, "z", 1), 0);
	assert_int_equal(s.state, SESSION_READY);
	session_fini(&s);
}

/* --- on a real worker pool ------------------------------------------------ */

static int g_woken;

static void wake(struct session *s)
{
	g_woken++;
	event_base_loopbreak(worker_base(worker_default()));
}

static sc_status slow_delivery(const struct delivery_cfg *cfg, struct delivery_msg *m)
{
	usleep(100 * 1000);
	return fake_delivery(cfg, m);
}

static void test_async_and_session_gone(void **state)
{
	const char *rcpts[] = { "frank@example.test" };
	struct event_base *base = event_base_new();
	struct worker *w = NULL;
	struct session *sp = calloc(1, sizeof *sp);
	struct timeval tv = { 10, 0 };

	assert_int_equal(worker_create(base, 2, &w), SC_OK);
	worker_set_default(w);
	deliver_job_set_runner(slow_delivery);
	greet(sp);
	sp->wake = wake;
	start_data(sp, rcpts, 1);
	/* the end of data: no reply until the job is done, no input taken */
	assert_int_equal(bulk(sp, "x\r\n.\r\nNOOP\r\n", 12), 6);
	assert_string_equal(dfix_take(sp), "");
	assert_int_equal(sp->state, SESSION_DELIVER);
	assert_false(session_takes_bulk(sp));
	g_woken = 0;
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	assert_int_equal(g_woken, 1);
	assert_string_equal(dfix_take(sp), "250 2.0.0 test0001.1 delivered\r\n");
	assert_int_equal(sp->state, SESSION_READY);
	assert_null(sp->tx);
	/* the session ends while the job runs: the job finishes without it
	 * (ASan would see a use after free) and the message is delivered */
	start_data(sp, rcpts, 1);
	(void)bulk(sp, "y\r\n.\r\n", 6);
	assert_int_equal(sp->state, SESSION_DELIVER);
	session_fini(sp);
	free(sp);
	while (worker_pending(w) > 0)
		event_base_loop(base, EVLOOP_ONCE);
	assert_int_equal(rec.calls, 2);
	assert_non_null(strstr(rec.body, "\r\ny\r\n"));
	deliver_job_set_runner(fake_delivery);
	worker_destroy(w);
	event_base_free(base);
}

static void test_rcpt_local_load(void **state)
{
	struct rcpt_local *rl = (void *)1;
	char path[700], err[300] = "";

	assert_int_equal(rcpt_local_load(fix.rt->cfg, NULL, NULL, NULL, NULL, &rl, err, sizeof err), SC_OK);
	assert_null(rl);
	assert_int_equal(rcpt_local_has(NULL, "a@example.test"), 0);
	snprintf(path, sizeof path, "%s/bad1", rdir);
	put(path, "ok@example.test\nx@other.test\n");
	assert_int_equal(rcpt_local_load(fix.rt->cfg, path, "recipients", NULL, NULL, &rl, err, sizeof err),
			 SC_ERR_SYNTAX);
	assert_string_equal(err, "recipients:2: x@other.test is not in a domain of `domains`");
	put(path, "not an address\n");
	assert_int_equal(rcpt_local_load(fix.rt->cfg, path, "r", NULL, NULL, &rl, err, sizeof err),
			 SC_ERR_SYNTAX);
	assert_memory_equal(err, "r:1: not an address", 19);
	assert_int_equal(rcpt_local_load(fix.rt->cfg, "/nonexistent", "r", NULL, NULL, &rl, err,
					 sizeof err), SC_ERR_IO);
	{
		char *longline = malloc(3000);

		memset(longline, 'a', 2999);
		longline[2999] = '\n';
		tc_write_file(path, longline, 3000);
		free(longline);
	}
	assert_int_equal(rcpt_local_load(fix.rt->cfg, path, "r", NULL, NULL, &rl, err, sizeof err),
			 SC_ERR_TOO_LONG);
	/* passwd: users of served domains only, malformed lines skipped */
	put(path, "Alice@Example.test:$6$x$y\nbad line\nm@other.test:$6$\n#c\n"
		      "bob@example.test:$y$z\n");
	assert_int_equal(rcpt_local_load(fix.rt->cfg, NULL, NULL, path, "pw", &rl, err, sizeof err), SC_OK);
	assert_int_equal(rcpt_local_count(rl), 2);
	assert_true(rcpt_local_has(rl, "alice@example.test"));
	assert_true(rcpt_local_has(rl, "bob@example.test"));
	assert_false(rcpt_local_has(rl, "m@other.test"));
	/* the passwd file changes: re-read (at most once a second) */
	put(path, "carl@example.test:$6$x$y\nbob@example.test:$y$z\n");
	assert_int_equal(rcpt_local_refresh(rl, time(NULL) + 5, err, sizeof err), SC_OK);
	assert_true(rcpt_local_has(rl, "carl@example.test"));
	assert_false(rcpt_local_has(rl, "alice@example.test"));
	assert_int_equal(rcpt_local_count(rl), 2);
	/* same second: not looked at */
	put(path, "dora@example.test:$6$x$y\n");
	assert_int_equal(rcpt_local_refresh(rl, time(NULL) + 5, err, sizeof err), SC_OK);
	assert_false(rcpt_local_has(rl, "dora@example.test"));
	/* gone: the users read before stay */
	unlink(path);
	assert_int_equal(rcpt_local_refresh(rl, time(NULL) + 6, err, sizeof err), SC_ERR_IO);
	assert_true(rcpt_local_has(rl, "carl@example.test"));
	rcpt_local_free(rl);
	assert_int_equal(rcpt_local_refresh(NULL, 1, err, sizeof err), SC_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ehlo_keywords),
		cmocka_unit_test(test_mail_syntax),
		cmocka_unit_test(test_mail_params),
		cmocka_unit_test(test_rcpt_rules),
		cmocka_unit_test(test_rcpt_duplicates),
		cmocka_unit_test(test_data_delivered),
		cmocka_unit_test(test_encrypt_at_rest_certs),
		cmocka_unit_test(test_data_refused_in_sync),
		cmocka_unit_test(test_partial_failures),
		cmocka_unit_test(test_bdat),
		cmocka_unit_test(test_async_and_session_gone),
		cmocka_unit_test(test_rcpt_local_load),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
