/*
 * test_d_delivery.c - where accepted mail goes (daemon/delivery*.c).
 *
 * Maildir: one copy per recipient in its own Maildir created on demand, content
 * streamed from the spool fd with LF line ends (a CR split across read chunks
 * included), tmp/ empty after success, expansions that are not a safe path
 * component refused 550 5.1.3 with nothing stored, a spool shorter than
 * announced (read failure) leaves nothing in new/ or tmp/, unusable specs,
 * delivery_send_buffer() into a Maildir, argument errors.
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <smtpcert/smtpcert.h>
#include "testcert.h"
#include "delivery.h"

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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
