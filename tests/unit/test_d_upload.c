/*
 * test_d_upload.c - the CERC data phase (daemon/upload.c) and the CERC/DATA
 * commands of the session (daemon/cmd_cerc.c) without sockets.
 *
 * upload.c: dot-unstuffing (RFC 5321 4.5.2), the end only at <CRLF>.<CRLF>
 * (bare-LF variants are data: SMTP smuggling), lines over 1000 octets, the
 * size limit enforced while reading with resynchronisation at the ".",
 * fragmented arrival, embedded NUL, non-UTF-8 bytes.
 * cmd_cerc.c: CERC with submissions off, before AUTH, DATA without CERC, the
 * commands allowed while a CERC is pending, a session that times out while its
 * submission job runs on a real worker pool.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_d_fixture.h"
#include "commands.h"
#include "log.h"
#include "session.h"
#include "upload.h"
#include "worker.h"

#include <event2/event.h>

/* Feed @p data in pieces of @p chunk bytes through a bounded input buffer, as
 * the connection does. @return the status of the last feed. */
static sc_status feed(struct upload *u, const char *data, size_t len, size_t chunk, size_t *left)
{
	sc_buf *in;
	sc_status rc = SC_AGAIN;

	assert_int_equal(sc_buf_new(4096, &in), SC_OK);
	for (size_t off = 0; off < len && !u->done;) {
		size_t n = len - off < chunk ? len - off : chunk;

		if (n > sc_buf_room(in))
			n = sc_buf_room(in);
		assert_int_equal(sc_buf_append(in, data + off, n), SC_OK);
		off += n;
		rc = upload_feed(u, in);
		assert_true(rc == SC_OK || rc == SC_AGAIN);
	}
	if (left)
		*left = sc_buf_len(in);
	sc_buf_free(in);
	return rc;
}

static const char *text(const struct upload *u)
{
	static char buf[8192];
	size_t n;
	const char *p = upload_data(u, &n);

	assert_true(n < sizeof buf);
	if (n)
		memcpy(buf, p, n);
	buf[n] = '\0';
	return buf;
}

static void test_dot_unstuffing(void **state)
{
	static const char in[] = "-----BEGIN CERTIFICATE-----\r\n..leading dot\r\n.\r\n";
	struct upload u;
	size_t left;

	upload_init(&u, 65536);
	assert_int_equal(feed(&u, in, sizeof in - 1, 5, &left), SC_OK);
	assert_true(u.done);
	assert_int_equal(u.verdict, UPLOAD_OK);
	assert_int_equal(left, 0);
	assert_string_equal(text(&u), "-----BEGIN CERTIFICATE-----\n.leading dot\n");
	assert_int_equal(u.seen, sizeof in - 1);
	upload_fini(&u);

	/* a lone dot that is stuffed ("..") is one "." of data */
	upload_init(&u, 100);
	assert_int_equal(feed(&u, "a\r\n..\r\n.\r\n", 10, 100, NULL), SC_OK);
	assert_string_equal(text(&u), "a\n.\n");
	upload_fini(&u);
}

static void test_end_marker_strict(void **state)
{
	struct upload u;
	size_t left;

	/* bare LF "." lines are data, never the end (SMTP smuggling) */
	upload_init(&u, 1000);
	assert_int_equal(feed(&u, "a\n.\nb\r\n.\n", 9, 3, NULL), SC_AGAIN);
	assert_false(u.done);
	upload_fini(&u);

	/* "\n.\r\n": the line before the dot ended in a bare LF: still data */
	upload_init(&u, 1000);
	assert_int_equal(feed(&u, "a\n.\r\n", 5, 64, NULL), SC_AGAIN);
	assert_false(u.done);
	assert_string_equal(text(&u), "a\n.\n");
	/* and a real <CRLF>.<CRLF> after it ends the data */
	assert_int_equal(feed(&u, "b\r\n.\r\nNOOP\r\n", 12, 64, &left), SC_OK);
	assert_true(u.done);
	assert_string_equal(text(&u), "a\n.\nb\n");
	assert_int_equal(left, 6); /* "NOOP\r\n" stays for the command reader */
	upload_fini(&u);

	/* "\r\n.\n" is data too */
	upload_init(&u, 1000);
	assert_int_equal(feed(&u, "x\r\n.\n", 5, 64, NULL), SC_AGAIN);
	assert_false(u.done);
	upload_fini(&u);

	/* "." right after 354 (empty upload) ends at once */
	upload_init(&u, 1000);
	assert_int_equal(feed(&u, ".\r\n", 3, 64, NULL), SC_OK);
	assert_true(u.done);
	assert_string_equal(text(&u), "");
	upload_fini(&u);

	/* ". " or ".x" are not the end; a CR inside a line is kept */
	upload_init(&u, 1000);
	assert_int_equal(feed(&u, ". \r\n.x\r\na\rb\r\n.\r\n", 16, 64, NULL), SC_OK);
	assert_string_equal(text(&u), " \nx\na\rb\n");
	upload_fini(&u);
}

static void test_size_limit_resync(void **state)
{
	struct upload u;
	char *big;
	size_t n = 0, left;

	/* 40 KiB of 77-octet lines against a 4 KiB limit, then "." and a command */
	big = malloc(64 * 1024);
	assert_non_null(big);
	while (n < 40 * 1024) {
		memcpy(big + n, "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0\r\n", 77);
		n += 77;
	}
	memcpy(big + n, ".\r\nQUIT\r\n", 9);
	n += 9;
	upload_init(&u, 4096);
	assert_int_equal(feed(&u, big, n, 1500, &left), SC_OK);
	assert_true(u.done);
	assert_int_equal(u.verdict, UPLOAD_TOO_BIG);
	assert_int_equal(left, 6);              /* in sync: QUIT is next */
	assert_int_equal(u.seen, n - 6);        /* everything was consumed */
	assert_string_equal(text(&u), "");      /* nothing kept */
	upload_fini(&u);

	/* exactly at the limit is fine; one octet more is not */
	upload_init(&u, 4);
	assert_int_equal(feed(&u, "abc\r\n.\r\n", 8, 64, NULL), SC_OK);
	assert_int_equal(u.verdict, UPLOAD_OK);
	assert_string_equal(text(&u), "abc\n");
	upload_fini(&u);
	upload_init(&u, 4);
	assert_int_equal(feed(&u, "abcd\r\n.\r\n", 9, 64, NULL), SC_OK);
	assert_int_equal(u.verdict, UPLOAD_TOO_BIG);
	upload_fini(&u);
	free(big);
}

static void test_line_too_long(void **state)
{
	char line[3000];
	struct upload u;
	size_t left;

	/* RFC 5321 4.5.3.1.6: 1000 octets with CRLF; 2500 here, then the end */
	memset(line, 'A', 2500);
	memcpy(line + 2500, "\r\n.\r\nNOOP\r\n", 11);
	upload_init(&u, 65536);
	assert_int_equal(feed(&u, line, 2511, 700, &left), SC_OK);
	assert_true(u.done);
	assert_int_equal(u.verdict, UPLOAD_LINE_TOO_LONG);
	assert_int_equal(left, 6);
	upload_fini(&u);

	/* 998 octets + CRLF is the longest allowed line */
	memset(line, 'B', 998);
	memcpy(line + 998, "\r\n.\r\n", 5);
	upload_init(&u, 65536);
	assert_int_equal(feed(&u, line, 1003, 4096, NULL), SC_OK);
	assert_int_equal(u.verdict, UPLOAD_OK);
	assert_int_equal(strlen(text(&u)), 999);
	upload_fini(&u);

	/* an over-long line split as CR | LF across reads still ends properly */
	memset(line, 'C', 1200);
	upload_init(&u, 65536);
	assert_int_equal(feed(&u, line, 1200, 1200, NULL), SC_AGAIN);
	assert_int_equal(feed(&u, "\r", 1, 1, NULL), SC_AGAIN);
	assert_int_equal(feed(&u, "\n.\r\n", 4, 64, NULL), SC_OK);
	assert_int_equal(u.verdict, UPLOAD_LINE_TOO_LONG);
	upload_fini(&u);
}

static void test_nul_and_binary(void **state)
{
	static const char in[] = "a\0b\r\n\xff\xfe\x80\r\n.\r\n";
	struct upload u;
	const char *p;
	size_t n;

	/* kept byte for byte: the certificate parser refuses it later */
	upload_init(&u, 100);
	assert_int_equal(feed(&u, in, sizeof in - 1, 2, NULL), SC_OK);
	p = upload_data(&u, &n);
	assert_int_equal(n, 8);
	assert_memory_equal(p, "a\0b\n\xff\xfe\x80\n", 8);
	upload_fini(&u);
	/* upload_fini twice and on an empty upload is harmless */
	upload_fini(&u);
	upload_init(&u, 100);
	upload_fini(&u);
}

/* ---- the session: CERC and DATA --------------------------------------- */

static struct dfix fix;

static const char *cmd(struct session *s, const char *line)
{
	session_line(s, line, strlen(line));
	return dfix_take(s);
}

static void greet(struct session *s, struct runtime *rt)
{
	memset(s, 0, sizeof *s);
	session_init(s, rt, "192.0.2.7:4321", "upl00001");
	session_greet(s);
	dfix_take(s);
	assert_non_null(strstr(cmd(s, "EHLO client.test"), "250 HELP\r\n"));
}

static void test_cerc_off(void **state)
{
	struct session s;

	dfix_setup(&fix, "", 0);
	greet(&s, fix.rt);
	assert_null(strstr(cmd(&s, "EHLO again.test"), "CERC"));
	assert_string_equal(cmd(&s, "CERC alice@example.test"), "550 5.7.0 Service Unavailable\r\n");
	assert_string_equal(cmd(&s, "DATA"), "502 5.5.1 Command not implemented\r\n");
	assert_null(s.cerc);
	session_fini(&s);
	dfix_teardown(&fix);
}

static void test_cerc_needs_auth(void **state)
{
	struct session s;
	char path[700];
	struct stat st;

	dfix_setup(&fix, "submissions = review\n", 0);
	/* the runtime opened the review queue under state_dir */
	snprintf(path, sizeof path, "%s/submissions", fix.dir);
	assert_int_equal(stat(path, &st), 0);
	assert_non_null(fix.rt->queue);
	greet(&s, fix.rt);
	assert_non_null(strstr(cmd(&s, "EHLO again.test"), "250-CERC\r\n"));
	assert_string_equal(cmd(&s, "CERC alice@example.test"),
			    "530 5.7.0 Authentication required\r\n");
	assert_null(s.cerc);
	assert_string_equal(cmd(&s, "DATA"), "502 5.5.1 Command not implemented\r\n");
	assert_string_equal(cmd(&s, "DATA now"), "501 5.5.4 Syntax: DATA\r\n");
	assert_int_equal(s.state, SESSION_READY);
	/* the upload input hook does nothing outside an upload */
	session_upload_input(&s, NULL);
	assert_string_equal(dfix_take(&s), "");
	session_fini(&s);
	dfix_teardown(&fix);
}

static void test_postmaster_default(void **state)
{
	char key[SC_ADDR_KEY_MAX];

	dfix_setup(&fix, "submissions = review\n", 0);
	assert_int_equal(sc_addr_key(&fix.rt->postmaster, key, sizeof key, NULL), SC_OK);
	assert_string_equal(key, "postmaster@example.test");
	assert_int_equal(fix.rt->submission_max, 65536);
	dfix_teardown(&fix);
	dfix_setup(&fix, "submissions = review\npostmaster = Hostmaster@Example.TEST\n"
			 "submission_max_size = 2048\n", 0);
	assert_int_equal(sc_addr_key(&fix.rt->postmaster, key, sizeof key, NULL), SC_OK);
	assert_string_equal(key, "hostmaster@example.test");
	assert_int_equal(fix.rt->submission_max, 2048);
	dfix_teardown(&fix);
}


/* DATA, then @p body (already dot-stuffed, CRLF lines, without the final
 * "."), then ".": the reply text. */
static const char *upload(struct session *s, const char *body)
{
	sc_buf *in;
	size_t n = strlen(body);

	assert_string_equal(cmd(s, "DATA"), "354 End certificate with <CR><LF>.<CR><LF>\r\n");
	assert_int_equal(s->state, SESSION_UPLOAD);
	assert_int_equal(sc_buf_new(4096, &in), SC_OK);
	for (size_t off = 0; off < n;) {
		size_t k = n - off < 1000 ? n - off : 1000;

		assert_int_equal(sc_buf_append(in, body + off, k), SC_OK);
		off += k;
		session_upload_input(s, in);
		assert_int_equal(s->state, SESSION_UPLOAD);
		assert_string_equal(dfix_take(s), "");
	}
	assert_int_equal(sc_buf_append(in, ".\r\nNOOP\r\n", 9), SC_OK);
	session_upload_input(s, in);
	/* in sync: the command after the "." is left for the command reader */
	assert_int_equal(sc_buf_len(in), 6);
	sc_buf_free(in);
	/* no worker pool in unit tests: the job ran inline */
	assert_int_equal(s->state, SESSION_READY);
	assert_null(s->cerc);
	return dfix_take(s);
}

/* @p pem with LF line ends as CRLF text. */
static char *crlf(const char *pem)
{
	size_t n = strlen(pem), o = 0;
	char *out = malloc(2 * n + 1);

	assert_non_null(out);
	for (size_t i = 0; i < n; i++) {
		if (pem[i] == '\n')
			out[o++] = '\r';
		out[o++] = pem[i];
	}
	out[o] = '\0';
	return out;
}

static char *alice_pem(void)
{
	char path[700], *pem, *out;
	size_t len;

	snprintf(path, sizeof path, "%s/repo/alice@example.test.pem", fix.dir);
	assert_int_equal(tc_read_file(path, &pem, &len), 0);
	out = crlf(pem);
	free(pem);
	return out;
}

/* Does DIR/SUB/NAME exist? */
static int exists(const char *dir, const char *sub, const char *name)
{
	char path[1200];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
	return stat(path, &st) == 0;
}

/* The id out of "250 2.0.0 <id> queued". */
static void reply_id(const char *r, const char *word, char id[SC_QUEUE_ID_LEN + 1])
{
	char tail[64];

	assert_int_equal(strncmp(r, "250 2.0.0 ", 10), 0);
	assert_int_equal(strspn(r + 10, "0123456789abcdef"), SC_QUEUE_ID_LEN);
	memcpy(id, r + 10, SC_QUEUE_ID_LEN);
	id[SC_QUEUE_ID_LEN] = '\0';
	snprintf(tail, sizeof tail, " %s\r\n", word);
	assert_string_equal(r + 10 + SC_QUEUE_ID_LEN, tail);
}

static void test_cerc_authorization(void **state)
{
	struct session s;

	dfix_setup(&fix, "submissions = review\nsubmission_admins = boss@example.test\n", 0);
	greet(&s, fix.rt);
	snprintf(s.auth_user, sizeof s.auth_user, "bob@example.test");
	/* someone else's address: refused, nothing pending */
	assert_string_equal(cmd(&s, "CERC alice@example.test"),
			    "550 5.7.1 Not authorized to submit a certificate for this address\r\n");
	assert_null(s.cerc);
	assert_string_equal(cmd(&s, "CERC <bob@EXAMPLE.test>"),
			    "250 2.0.0 Send the certificate with DATA\r\n");
	assert_non_null(s.cerc);
	/* while pending: only DATA, RSET, NOOP, HELP, QUIT, HELO/EHLO */
	assert_string_equal(cmd(&s, "CERT alice@example.test"),
			    "503 5.5.1 CERC pending: send DATA, or RSET to cancel\r\n");
	assert_string_equal(cmd(&s, "CERC bob@example.test"),
			    "503 5.5.1 CERC pending: send DATA, or RSET to cancel\r\n");
	assert_string_equal(cmd(&s, "NOOP"), "250 2.0.0 OK\r\n");
	assert_non_null(s.cerc);
	assert_string_equal(cmd(&s, "RSET"), "250 2.0.0 OK\r\n");
	assert_null(s.cerc);
	assert_string_equal(cmd(&s, "DATA"), "502 5.5.1 Command not implemented\r\n");
	/* EHLO cancels it too */
	assert_string_equal(cmd(&s, "CERC bob@example.test"),
			    "250 2.0.0 Send the certificate with DATA\r\n");
	assert_non_null(strstr(cmd(&s, "EHLO again.test"), "250 HELP"));
	assert_null(s.cerc);
	/* syntax, foreign domain */
	assert_int_equal(strncmp(cmd(&s, "CERC bob"), "501 5.5.4 ", 10), 0);
	assert_string_equal(cmd(&s, "CERC mallory@other.test"),
			    "550 5.7.1 Domain not served here: certificates are not relayed\r\n");
	/* an admin identity may submit for others (keys compare, not spellings) */
	snprintf(s.auth_user, sizeof s.auth_user, "Boss@Example.TEST");
	assert_string_equal(cmd(&s, "CERC alice@example.test"),
			    "250 2.0.0 Send the certificate with DATA\r\n");
	/* the session ends with a CERC pending: freed (ASan checks) */
	session_fini(&s);
	dfix_teardown(&fix);
}

static void test_cerc_review_upload(void **state)
{
	char id[SC_QUEUE_ID_LEN + 1], *pem, *big;
	struct session s;

	dfix_setup(&fix, "submissions = review\nsubmission_max_size = 4096\n", 0);
	greet(&s, fix.rt);
	snprintf(s.auth_user, sizeof s.auth_user, "alice@example.test");
	pem = alice_pem();
	assert_string_equal(cmd(&s, "CERC alice@example.test"),
			    "250 2.0.0 Send the certificate with DATA\r\n");
	reply_id(upload(&s, pem), "queued", id);
	/* durable in the queue, and the notice spooled (no delivery configured) */
	assert_true(exists(fix.dir, "submissions/pending", id));
	assert_true(exists(fix.dir, "notices", id));

	/* garbage */
	assert_string_equal(cmd(&s, "CERC alice@example.test"),
			    "250 2.0.0 Send the certificate with DATA\r\n");
	assert_string_equal(upload(&s, "hello\r\n..world\r\n"),
			    "550 5.7.1 Invalid Certificate: not a certificate\r\n");
	/* too large: 552 after the ".", in sync */
	big = malloc(8000);
	assert_non_null(big);
	for (int i = 0; i < 100; i++)
		memcpy(big + 78 * i, "0123456789012345678901234567890123456789012345678901234567890123456789012345\r\n", 78);
	big[7800] = '\0';
	assert_string_equal(cmd(&s, "CERC alice@example.test"),
			    "250 2.0.0 Send the certificate with DATA\r\n");
	assert_string_equal(upload(&s, big), "552 5.3.4 Certificate upload too large\r\n");
	free(big);
	/* a policy refusal: bob's address is not in alice's certificate */
	snprintf(s.auth_user, sizeof s.auth_user, "bob@example.test");
	assert_string_equal(cmd(&s, "CERC bob@example.test"),
			    "250 2.0.0 Send the certificate with DATA\r\n");
	assert_int_equal(strncmp(upload(&s, pem), "550 5.7.1 Invalid Certificate: ", 31), 0);
	assert_string_equal(cmd(&s, "NOOP"), "250 2.0.0 OK\r\n");
	free(pem);
	session_fini(&s);
	dfix_teardown(&fix);
}

static void test_cerc_auto_and_delivery(void **state)
{
	tc_key *k = tc_key_shared(TC_P256);
	X509 *frank = tc_cert_new(&(struct tc_cert_opts){ .cn = "Frank",
							   .emails = { "frank@example.test" } },
				  k, NULL, NULL);
	char id[SC_QUEUE_ID_LEN + 1], extra[1200], mail[512], *pem, *text;
	const char *r;
	size_t len;
	struct session s;

	/* dfix_setup makes its directory itself: the Maildir gets its own */
	tc_tmpdir(mail, sizeof mail);
	snprintf(extra, sizeof extra, "submissions = auto\ndelivery = maildir:%s/%%d/%%n\n", mail);
	dfix_setup(&fix, extra, 0);
	assert_true(fix.rt->repos[0]->writable);
	greet(&s, fix.rt);
	snprintf(s.auth_user, sizeof s.auth_user, "frank@example.test");
	assert_string_equal(cmd(&s, "CERT frank@example.test"), "550 5.1.1 Certificate Not Found\r\n");
	tc_cert_pem(frank, &pem, &len);
	text = crlf(pem);
	{
		/* more than SC_CHAIN_MAX certificates: 552 (docs/protocol.md 6.1) */
		size_t tl = strlen(text);
		char *many = malloc(9 * tl + 1);

		assert_non_null(many);
		for (int i = 0; i < 9; i++)
			memcpy(many + i * tl, text, tl);
		many[9 * tl] = '\0';
		assert_string_equal(cmd(&s, "CERC frank@example.test"),
				    "250 2.0.0 Send the certificate with DATA\r\n");
		assert_string_equal(upload(&s, many),
				    "552 5.3.4 Too many certificates in the upload\r\n");
		free(many);
	}
	assert_string_equal(cmd(&s, "CERC frank@example.test"),
			    "250 2.0.0 Send the certificate with DATA\r\n");
	reply_id(upload(&s, text), "accepted", id);
	/* stored at once: served by the next CERT */
	r = cmd(&s, "CERT frank@example.test");
	assert_non_null(strstr(r, "250------BEGIN CERTIFICATE-----\r\n"));
	assert_non_null(strstr(r, "250 2.0.0 OK\r\n"));
	assert_true(exists(fix.dir, "submissions/accepted", id));
	assert_false(exists(fix.dir, "submissions/pending", id));
	/* the notice was delivered and left the spool */
	assert_false(exists(fix.dir, "notices", id));
	{
		char dir[700];
		struct dirent *de;
		int files = 0;
		DIR *d;

		snprintf(dir, sizeof dir, "%s/example.test/postmaster/new", mail);
		d = opendir(dir);
		assert_non_null(d);
		while ((de = readdir(d)) != NULL)
			files += de->d_name[0] != '.';
		closedir(d);
		assert_int_equal(files, 1);
	}
	tc_rmtree(mail);
	free(pem);
	free(text);
	X509_free(frank);
	session_fini(&s);
	dfix_teardown(&fix);
}

/* The idle timer is armed while the job runs (SESSION_SUBMIT): a timeout sends
 * 421 and the session lingers, so the job finds it in CLOSING. The session must
 * not keep a pointer to the freed job: session_fini() would write to it. */
static void test_cerc_timeout_while_job_runs(void **state)
{
	struct event_base *base = event_base_new();
	struct worker *w = NULL;
	struct session s;
	sc_buf *in;
	char *pem;

	dfix_setup(&fix, "submissions = review\n", 0);
	assert_non_null(base);
	assert_int_equal(worker_create(base, 1, &w), SC_OK);
	worker_set_default(w);
	greet(&s, fix.rt);
	snprintf(s.auth_user, sizeof s.auth_user, "alice@example.test");
	pem = alice_pem();
	assert_string_equal(cmd(&s, "CERC alice@example.test"),
			    "250 2.0.0 Send the certificate with DATA\r\n");
	assert_string_equal(cmd(&s, "DATA"), "354 End certificate with <CR><LF>.<CR><LF>\r\n");
	assert_int_equal(sc_buf_new(8192, &in), SC_OK);
	assert_int_equal(sc_buf_append(in, pem, strlen(pem)), SC_OK);
	assert_int_equal(sc_buf_append(in, ".\r\n", 3), SC_OK);
	session_upload_input(&s, in);
	sc_buf_free(in);
	free(pem);
	assert_int_equal(s.state, SESSION_SUBMIT);
	session_timeout(&s);
	assert_int_equal(s.state, SESSION_CLOSING);
	assert_int_equal(strncmp(dfix_take(&s), "421 4.4.2 ", 10), 0);
	while (worker_pending(w) > 0)
		event_base_loop(base, EVLOOP_ONCE);
	/* the job is done and freed: the session holds no CERC state any more */
	assert_null(s.cerc);
	assert_int_equal(s.state, SESSION_CLOSING);
	assert_string_equal(dfix_take(&s), "");
	session_fini(&s);
	worker_destroy(w);
	event_base_free(base);
	dfix_teardown(&fix);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dot_unstuffing),
		cmocka_unit_test(test_end_marker_strict),
		cmocka_unit_test(test_size_limit_resync),
		cmocka_unit_test(test_line_too_long),
		cmocka_unit_test(test_nul_and_binary),
		cmocka_unit_test(test_cerc_off),
		cmocka_unit_test(test_cerc_needs_auth),
		cmocka_unit_test(test_postmaster_default),
		cmocka_unit_test(test_cerc_authorization),
		cmocka_unit_test(test_cerc_review_upload),
		cmocka_unit_test(test_cerc_auto_and_delivery),
		cmocka_unit_test(test_cerc_timeout_while_job_runs),
	};

	log_init(LOG_SINK_STDERR, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
