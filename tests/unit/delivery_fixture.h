/*
 * delivery_fixture.h - shared set-up of the delivery unit tests
 * (test_d_delivery.c: Maildir, encryption at rest, notices; test_d_delivery_lmtp.c:
 * LMTP and SMTP hand-off): a temp dir per test, spool files, Maildir inspection,
 * a scripted LMTP/SMTP server thread (line I/O of tests/lib/testsrv.c), test
 * recipients with certificates (tests/lib/testcert.h) and an OpenSSL CMS
 * decryption that does not go through lib/smime*.c. Test code only.
 */
#ifndef DELIVERY_FIXTURE_H
#define DELIVERY_FIXTURE_H

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

#define FIX_UNUSED __attribute__((unused))


static char g_tmp[512] FIX_UNUSED;

static FIX_UNUSED int fx_setup(void **state)
{
	(void)state;
	tc_tmpdir(g_tmp, sizeof g_tmp);
	return 0;
}

static FIX_UNUSED int fx_teardown(void **state)
{
	(void)state;
	tc_rmtree(g_tmp);
	return 0;
}

static FIX_UNUSED struct sc_addr addr(const char *s)
{
	struct sc_addr a;

	assert_int_equal(sc_addr_parse(s, strlen(s), SC_ADDR_UTF8, &a, NULL), SC_OK);
	return a;
}

/* A spool file holding @p len octets of @p data; the file position is moved to
 * its end so that a reader relying on it would read nothing. */
static FIX_UNUSED int spool(const char *data, size_t len)
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
static FIX_UNUSED int count(const char *dir, char *name, size_t size)
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
static FIX_UNUSED char *stored(const char *dir, size_t *len)
{
	char name[512], p[2000], *data;

	assert_int_equal(count(dir, name, sizeof name), 1);
	snprintf(p, sizeof p, "%s/%s/%s", g_tmp, dir, name);
	assert_int_equal(tc_read_file(p, &data, len), 0);
	return data;
}

static FIX_UNUSED void cfg_maildir(struct delivery_cfg *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	snprintf(cfg->spec, sizeof cfg->spec, "maildir:%s/mail/%%d/%%n", g_tmp);
	snprintf(cfg->hostname, sizeof cfg->hostname, "mx.example.test");
	snprintf(cfg->tmp_dir, sizeof cfg->tmp_dir, "%s", g_tmp);
}
/* ---- scripted LMTP/SMTP server -------------------------------------------------------- */

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

static FIX_UNUSED void *srv_main(void *arg)
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

static FIX_UNUSED void srv_start(struct server *sv, const char *const *script)
{
	memset(sv, 0, sizeof *sv);
	sv->script = script;
	sv->lfd = ts_listen(sv->port);
	assert_true(sv->lfd >= 0);
	assert_int_equal(pthread_create(&sv->th, NULL, srv_main, sv), 0);
}

static FIX_UNUSED void srv_stop(struct server *sv)
{
	pthread_join(sv->th, NULL);
	close(sv->lfd);
	if (sv->failed[0])
		fail_msg("server script: %s", sv->failed);
}

static FIX_UNUSED void cfg_lmtp(struct delivery_cfg *cfg, const char *port)
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

static const char g_msg[] FIX_UNUSED =
	"Received: from c by mx; Sat, 28 Nov 2026 21:00:00 +0000\r\n"
	"Subject: hi\r\n\r\n.dot line\r\nend\r\n";

/* ---- encryption at rest -------------------------------------------------------------- */

struct person {
	tc_key *key;
	X509 *x;
	sc_cert *cert;
};

static FIX_UNUSED void person(struct person *p, const char *email, enum tc_keytype type)
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

static FIX_UNUSED void person_free(struct person *p)
{
	X509_free(p->x);
	sc_cert_free(p->cert);
}

/* Decrypt a stored message with OpenSSL's CMS directly; the plaintext entity
 * (malloc'ed, NUL-terminated) or NULL. */
static FIX_UNUSED char *cms_decrypt(const char *msg, size_t len, struct person *p)
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
static FIX_UNUSED const char *outer(const char *msg)
{
	static char buf[4096];
	const char *end = strstr(msg, "\n\n");
	size_t n = end ? (size_t)(end - msg) + 1 : strlen(msg);

	assert_true(n < sizeof buf);
	memcpy(buf, msg, n);
	buf[n] = '\0';
	return buf;
}

static const char g_plain[] FIX_UNUSED =
	"Received: from c by mx; Sat, 28 Nov 2026 21:00:00 +0000\r\n"
	"From: <carol@remote.test>\r\nTo: <alice@example.test>\r\n"
	"Subject: lunch\r\nMessage-ID: <1@remote.test>\r\n"
	"Content-Type: text/plain; charset=us-ascii\r\n"
	"X-Secret-Header: inside\r\n\r\n"
	"the secret body\r\n.dot\r\n";

/* ---- postmaster notices through the delivery ------------------------------------------ */

static const char g_notice[] FIX_UNUSED =
	"From: MAILER-DAEMON@mx.example.test\r\nSubject: New "
	"certificate submission\r\n\r\nsubmission 0a1b\r\n";

static FIX_UNUSED void notice_target(struct notify_target *t, const char *delivery)
{
	memset(t, 0, sizeof *t);
	snprintf(t->state_dir, sizeof t->state_dir, "%s", g_tmp);
	snprintf(t->delivery, sizeof t->delivery, "%s", delivery);
	t->postmaster = addr("postmaster@example.test");
	snprintf(t->hostname, sizeof t->hostname, "mx.example.test");
	t->timeout_ms = 2000;
}

static FIX_UNUSED int spooled(const char *id)
{
	char p[700];

	snprintf(p, sizeof p, "%s/notices/%s", g_tmp, id);
	return access(p, F_OK) == 0;
}


#endif
