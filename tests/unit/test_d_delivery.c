/*
 * test_d_delivery.c - where accepted mail goes (daemon/delivery*.c).
 *
 * Maildir: one copy per recipient in its own Maildir created on demand, content
 * streamed from the spool fd with LF line ends (a CR split across read chunks
 * included), tmp/ empty after success, expansions that are not a safe path
 * component refused 550 5.1.3 with nothing stored, a spool shorter than
 * announced (read failure) leaves nothing in new/ or tmp/, unusable specs,
 * delivery_send_buffer() into a Maildir, argument errors.
 *
 * LMTP (RFC 2033) against a scripted server thread (tests/lib/testsrv.c): the
 * per-recipient replies after DATA relayed (250/550/452), MAIL and DATA
 * refused, the server down (451 4.4.1 for all), silent (banner, after the
 * data: timeout, 451 for all), hanging up mid-transaction, SMTPUTF8 not offered;
 * delivery_send_buffer() to a proxy: backend over SMTP (one reply).
 *
 * Encryption at rest: a recipient with a certificate gets its own copy as
 * S/MIME enveloped-data that OpenSSL's CMS (independently of lib/smime*.c)
 * decrypts with the recipient's key, routing fields outside and the body not;
 * RSA and ECDH recipients; recipients without a certificate and encrypt_at_rest
 * = no get the plaintext; an already encrypted message is stored as it came; an
 * Ed25519 certificate (cannot be encrypted to) stores the plaintext and says so;
 * a header block that cannot be split refuses the message for everyone; over
 * LMTP the encrypted recipient gets a transaction of its own.
 *
 * Postmaster notices (daemon/notify.c) through this delivery: spooled, then
 * delivered into a Maildir or over LMTP and unspooled; a store that is down or
 * refuses keeps the notice spooled (SC_ERR_TEMP / SC_ERR_IO); no delivery
 * configured keeps it (SC_ERR_CONFIG); notify_flush() counts.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/x509.h>

#include <smtpcert/smtpcert.h>
#include "testcert.h"
#include "testsrv.h"
#include "delivery.h"
#include "notify.h"

static char g_tmp[512];

static int fx_setup(void **state)
{
	(void)state;
	tc_tmpdir(g_tmp, sizeof g_tmp);
	return 0;
}

static int fx_teardown(void **state)
{
	(void)state;
	tc_rmtree(g_tmp);
	return 0;
}

static struct sc_addr addr(const char *s)
{
	struct sc_addr a;

	assert_int_equal(sc_addr_parse(s, strlen(s), SC_ADDR_UTF8, &a, NULL), SC_OK);
	return a;
}

/* A spool file holding @p len octets of @p data; the file position is moved to
 * its end so that a reader relying on it would read nothing. */
static int spool(const char *data, size_t len)
{
	char path[700];
	int fd;

	snprintf(path, sizeof path, "%s/spool", g_tmp);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	return fd;
}

/* Number of entries in g_tmp/@p dir (-1 when missing); the last name to @p name. */
static int count(const char *dir, char *name, size_t size)
{
	char p[1400];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(p, sizeof p, "%s/%s", g_tmp, dir);
	d = opendir(p);
	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (name)
			snprintf(name, size, "%s", de->d_name);
		n++;
	}
	closedir(d);
	return n;
}

/* Content of the single message in g_tmp/@p dir/new (caller frees). */
static char *stored(const char *dir, size_t *len)
{
	char name[512], p[2000], *data;

	assert_int_equal(count(dir, name, sizeof name), 1);
	snprintf(p, sizeof p, "%s/%s/%s", g_tmp, dir, name);
	assert_int_equal(tc_read_file(p, &data, len), 0);
	return data;
}

static void cfg_maildir(struct delivery_cfg *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	snprintf(cfg->spec, sizeof cfg->spec, "maildir:%s/mail/%%d/%%n", g_tmp);
	snprintf(cfg->hostname, sizeof cfg->hostname, "mx.example.test");
	snprintf(cfg->tmp_dir, sizeof cfg->tmp_dir, "%s", g_tmp);
}

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


/* ---- scripted LMTP/SMTP server ------------------------------------------------------ */

/*
 * Script steps: "S text" sends (lines split at '\n'), "C line" expects exactly
 * that line from the client, "P prefix" a line starting so, "DATA" reads the
 * data up to "." (unstuffed, into upload), "SLEEP" waits 2 s without reading,
 * "CLOSE" hangs up.
 */
struct server {
	int lfd, fd;
	char port[8];
	const char *const *script;
	pthread_t th;
	char failed[256];
	char upload[32768];
	size_t upload_len;
};

static void *srv_main(void *arg)
{
	struct server *sv = arg;
	struct timeval tv = { 5, 0 };
	char line[1024];

	sv->fd = accept(sv->lfd, NULL, NULL);
	if (sv->fd < 0)
		return NULL;
	setsockopt(sv->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	for (const char *const *st = sv->script; *st; st++) {
		const char *s = *st;

		if (!strncmp(s, "S ", 2)) {
			ts_lines(sv->fd, NULL, s + 2);
		} else if (!strncmp(s, "C ", 2)) {
			if (ts_line(sv->fd, NULL, line, sizeof line) != 0) {
				snprintf(sv->failed, sizeof sv->failed, "EOF, expected \"%.200s\"",
					 s + 2);
				break;
			}
			if (strcmp(line, s + 2)) {
				snprintf(sv->failed, sizeof sv->failed,
					 "got \"%.100s\", expected \"%.100s\"", line, s + 2);
				break;
			}
		} else if (!strncmp(s, "P ", 2)) {
			if (ts_line(sv->fd, NULL, line, sizeof line) != 0 ||
			    strncmp(line, s + 2, strlen(s + 2))) {
				snprintf(sv->failed, sizeof sv->failed, "expected \"%.200s...\"",
					 s + 2);
				break;
			}
		} else if (!strcmp(s, "DATA")) {
			for (;;) {
				const char *p = line;
				size_t len;

				if (ts_line(sv->fd, NULL, line, sizeof line) != 0) {
					snprintf(sv->failed, sizeof sv->failed, "data not ended");
					goto out;
				}
				if (!strcmp(line, "."))
					break;
				if (line[0] == '.')
					p++;
				len = strlen(p);
				if (sv->upload_len + len + 2 < sizeof sv->upload) {
					memcpy(sv->upload + sv->upload_len, p, len);
					sv->upload_len += len;
					sv->upload[sv->upload_len++] = '\n';
					sv->upload[sv->upload_len] = '\0';
				}
			}
		} else if (!strcmp(s, "SLEEP")) {
			sleep(2);
		} else if (!strcmp(s, "CLOSE")) {
			goto out;
		}
	}
	/* after the script: QUIT (or the client's hang-up) */
	if (!sv->failed[0] && ts_line(sv->fd, NULL, line, sizeof line) == 0) {
		if (!strcmp(line, "QUIT"))
			ts_lines(sv->fd, NULL, "221 2.0.0 bye");
		else
			snprintf(sv->failed, sizeof sv->failed, "unexpected \"%.200s\"", line);
	}
out:
	close(sv->fd);
	return NULL;
}

static void srv_start(struct server *sv, const char *const *script)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof sin;

	memset(sv, 0, sizeof *sv);
	sv->script = script;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sv->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(sv->lfd >= 0);
	assert_int_equal(bind(sv->lfd, (struct sockaddr *)&sin, sizeof sin), 0);
	assert_int_equal(listen(sv->lfd, 1), 0);
	assert_int_equal(getsockname(sv->lfd, (struct sockaddr *)&sin, &sl), 0);
	snprintf(sv->port, sizeof sv->port, "%u", ntohs(sin.sin_port));
	assert_int_equal(pthread_create(&sv->th, NULL, srv_main, sv), 0);
}

static void srv_stop(struct server *sv)
{
	pthread_join(sv->th, NULL);
	close(sv->lfd);
	if (sv->failed[0])
		fail_msg("server script: %s", sv->failed);
}

static void cfg_lmtp(struct delivery_cfg *cfg, const char *port)
{
	memset(cfg, 0, sizeof *cfg);
	snprintf(cfg->spec, sizeof cfg->spec, "lmtp:127.0.0.1:%s", port);
	snprintf(cfg->hostname, sizeof cfg->hostname, "mx.example.test");
	snprintf(cfg->tmp_dir, sizeof cfg->tmp_dir, "%s", g_tmp);
	cfg->timeout_ms = 5000;
}

#define LMTP_HELLO "S 220 store.test LMTP ready", "C LHLO mx.example.test", \
		   "S 250-store.test\n250-PIPELINING\n250-ENHANCEDSTATUSCODES\n250-8BITMIME\n" \
		   "250-SMTPUTF8\n250 SIZE"

static const char g_msg[] = "Received: from c by mx; Sat, 28 Nov 2026 21:00:00 +0000\r\n"
			    "Subject: hi\r\n\r\n.dot line\r\nend\r\n";

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
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof sin;
	struct delivery_rcpt r[2] = { { .addr = addr("a@example.test") },
				      { .addr = addr("b@example.test") } };
	struct delivery_msg m = { .rcpt = r, .nrcpt = 2, .size = sizeof g_msg - 1 };
	struct delivery_cfg cfg;
	char port[8], err[256];
	int fd;

	(void)state;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	snprintf(port, sizeof port, "%u", ntohs(sin.sin_port));
	close(fd);
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

/* ---- encryption at rest -------------------------------------------------------------- */

struct person {
	tc_key *key;
	X509 *x;
	sc_cert *cert;
};

static void person(struct person *p, const char *email, enum tc_keytype type)
{
	tc_key *cak = tc_key_shared(TC_P256);
	X509 *ca = tc_cert_new(&(struct tc_cert_opts){ .cn = "Delivery CA", .is_ca = 1,
				.key_usage = TC_KU_KEY_CERT_SIGN | TC_KU_CRL_SIGN },
			       cak, NULL, NULL);
	uint8_t *der;
	size_t len;

	p->key = tc_key_shared(type);
	p->x = tc_cert_new(&(struct tc_cert_opts){ .cn = email, .emails = { email },
			    .eku = TC_EKU_EMAIL_PROTECTION },
			   p->key, ca, cak);
	tc_cert_der(p->x, &der, &len);
	assert_int_equal(sc_cert_parse(der, len, &p->cert), SC_OK);
	free(der);
	X509_free(ca);
}

static void person_free(struct person *p)
{
	X509_free(p->x);
	sc_cert_free(p->cert);
}

/* Decrypt a stored message with OpenSSL's CMS directly; the plaintext entity
 * (malloc'ed, NUL-terminated) or NULL. */
static char *cms_decrypt(const char *msg, size_t len, struct person *p)
{
	BIO *in = BIO_new_mem_buf(msg, (int)len), *out = BIO_new(BIO_s_mem());
	CMS_ContentInfo *cms = SMIME_read_CMS(in, NULL);
	char *res = NULL, *data;
	long n;

	if (cms && CMS_decrypt(cms, tc_key_pkey(p->key), p->x, NULL, out, 0) == 1) {
		n = BIO_get_mem_data(out, &data);
		res = malloc((size_t)n + 1);
		assert_non_null(res);
		memcpy(res, data, (size_t)n);
		res[n] = '\0';
	}
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	BIO_free(out);
	return res;
}

/* The outer header of a stored message (up to the empty line), NUL-terminated
 * in a static buffer. */
static const char *outer(const char *msg)
{
	static char buf[4096];
	const char *end = strstr(msg, "\n\n");
	size_t n = end ? (size_t)(end - msg) + 1 : strlen(msg);

	assert_true(n < sizeof buf);
	memcpy(buf, msg, n);
	buf[n] = '\0';
	return buf;
}

static const char g_plain[] = "Received: from c by mx; Sat, 28 Nov 2026 21:00:00 +0000\r\n"
			      "From: <carol@remote.test>\r\nTo: <alice@example.test>\r\n"
			      "Subject: lunch\r\nMessage-ID: <1@remote.test>\r\n"
			      "Content-Type: text/plain; charset=us-ascii\r\n"
			      "X-Secret-Header: inside\r\n\r\n"
			      "the secret body\r\n.dot\r\n";

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

/* ---- postmaster notices through the delivery ------------------------------------------ */

static const char g_notice[] = "From: MAILER-DAEMON@mx.example.test\r\nSubject: New "
			       "certificate submission\r\n\r\nsubmission 0a1b\r\n";

static void notice_target(struct notify_target *t, const char *delivery)
{
	memset(t, 0, sizeof *t);
	snprintf(t->state_dir, sizeof t->state_dir, "%s", g_tmp);
	snprintf(t->delivery, sizeof t->delivery, "%s", delivery);
	t->postmaster = addr("postmaster@example.test");
	snprintf(t->hostname, sizeof t->hostname, "mx.example.test");
	t->timeout_ms = 2000;
}

static int spooled(const char *id)
{
	char p[700];

	snprintf(p, sizeof p, "%s/notices/%s", g_tmp, id);
	return access(p, F_OK) == 0;
}

static void test_notice_maildir_and_lmtp(void **state)
{
	static const char *const script[] = {
		LMTP_HELLO,
		"C MAIL FROM:<> BODY=8BITMIME SIZE=93", "S 250 OK",
		"C RCPT TO:<postmaster@example.test>", "S 250 OK",
		"C DATA", "S 354 go", "DATA", "S 250 2.0.0 saved", NULL
	};
	struct notify_target t;
	struct server sv;
	char err[512] = "", spec[700], *c;
	unsigned ok, left;
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
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof sin;
	struct notify_target t;
	struct server sv;
	char err[512] = "", spec[700];
	unsigned ok, left;
	int fd;

	(void)state;
	assert_int_equal(notify_save(g_tmp, "0e3f", g_notice, sizeof g_notice - 1, err,
				     sizeof err),
			 SC_OK);
	/* nothing configured: it stays for the administrator */
	notice_target(&t, "");
	assert_int_equal(notify_deliver(&t, "0e3f", err, sizeof err), SC_ERR_CONFIG);
	assert_true(spooled("0e3f"));
	/* the store is down: temporary, it stays */
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	snprintf(spec, sizeof spec, "lmtp:127.0.0.1:%u", ntohs(sin.sin_port));
	close(fd);
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
		cmocka_unit_test_setup_teardown(test_maildir_per_recipient, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_maildir_large_stream, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_maildir_unsafe_refused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_maildir_failure_leaves_nothing, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_maildir_io_error, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_spec_and_args, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_send_buffer_maildir, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_lmtp_per_recipient, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_lmtp_mail_and_data_refused, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_lmtp_server_down, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_lmtp_timeouts, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_lmtp_smtputf8_not_offered, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_send_buffer_proxy, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_encrypt_at_rest_maildir, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_encrypt_at_rest_off_and_already_encrypted,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_encrypt_unsupported_key, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_encrypt_unparsable_header, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_encrypt_at_rest_lmtp, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_notice_maildir_and_lmtp, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_notice_kept_when_not_delivered, fx_setup,
						fx_teardown),
	};

	signal(SIGPIPE, SIG_IGN);

	return cmocka_run_group_tests(tests, NULL, NULL);
}
