/*
 * test_d_prefetch.c - the CERT prefetch hint of the serving process
 * (daemon/cert_job.c: cert_prefetch_scan(), cert_prefetch()).
 *
 * cert_prefetch_scan() (cert_job.h): the arguments of the CERT and CERS lines
 * of a buffer, complete lines only, at most max of them. Every input is a heap
 * copy of exactly its length (no terminating NUL), so under ASan a scan that
 * reads one octet past the buffer fails the test. Arguments are split as
 * command_split() splits a line for dispatch (cert_job.h): the verb up to the
 * first space, the argument without surrounding blanks, a line with NUL none;
 * the pointers and lengths returned are checked exactly.
 *
 * cert_prefetch() is a hint: with a runtime whose store has no index (dir:,
 * and lmdb: before sc_repo_index_refresh()) and with one that has an index, it
 * must not crash whatever the buffer holds, and every cert_walk() answer after
 * it is the one before it (and the one without an index).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_d_fixture.h"
#include "cert_job.h"
#include "log.h"

static struct dfix fix;

static int setup(void **state)
{
	log_init(LOG_SINK_STDERR, 0);
	dfix_setup(&fix, "", 0);
	return 0;
}

static int teardown(void **state)
{
	dfix_teardown(&fix);
	return 0;
}

/* ---- cert_prefetch_scan() ------------------------------------------------------ */

struct scan {
	char *buf;   /* heap copy of exactly len octets */
	size_t len;
	const char *args[SC_REPO_PREFETCH_MAX + 1];
	size_t lens[SC_REPO_PREFETCH_MAX + 1];
	size_t n;
};

static void scan_run(struct scan *sc, const char *text, size_t len, size_t max)
{
	memset(sc, 0, sizeof *sc);
	sc->buf = malloc(len ? len : 1);
	assert_non_null(sc->buf);
	memcpy(sc->buf, text, len);
	sc->len = len;
	/* sentinels: a slot beyond the count must stay untouched */
	for (size_t i = 0; i <= SC_REPO_PREFETCH_MAX; i++) {
		sc->args[i] = (const char *)sc;
		sc->lens[i] = 0xdead;
	}
	assert_true(max <= SC_REPO_PREFETCH_MAX);
	sc->n = cert_prefetch_scan(sc->buf, len, sc->args, sc->lens, max);
	assert_true(sc->n <= max);
	for (size_t i = sc->n; i <= SC_REPO_PREFETCH_MAX; i++) {
		assert_ptr_equal(sc->args[i], (const char *)sc);
		assert_int_equal(sc->lens[i], 0xdead);
	}
	/* every argument lies inside the buffer */
	for (size_t i = 0; i < sc->n; i++) {
		assert_true(sc->args[i] >= sc->buf && sc->args[i] + sc->lens[i] <= sc->buf + len);
		assert_true(sc->lens[i] > 0);
	}
}

#define SCAN(sc, lit, max) scan_run(sc, lit, sizeof(lit) - 1, max)

static void scan_free(struct scan *sc)
{
	free(sc->buf);
	sc->buf = NULL;
}

/* argument i is exactly the text at offset @p off of length @p len */
static void scan_is(const struct scan *sc, size_t i, size_t off, const char *text)
{
	assert_true(i < sc->n);
	assert_ptr_equal(sc->args[i], sc->buf + off);
	assert_int_equal(sc->lens[i], strlen(text));
	assert_memory_equal(sc->args[i], text, strlen(text));
}

static size_t off_of(const struct scan *sc, const char *needle)
{
	for (size_t i = 0; i + strlen(needle) <= sc->len; i++)
		if (memcmp(sc->buf + i, needle, strlen(needle)) == 0)
			return i;
	fail_msg("%s not in the buffer", needle);
	return 0;
}

static void test_scan_lines(void **state)
{
	struct scan sc;

	/* CRLF and bare LF end lines; verbs in any case (RFC 5321 2.4); other
	 * commands, empty lines and a pipelined RCPT are skipped */
	SCAN(&sc, "CERT a@b.test\r\n"
		  "NOOP\r\n"
		  "cers <c@d.test>\n"
		  "\r\n"
		  "\n"
		  "RCPT TO:<x@y.test>\r\n"
		  "Cers e@f.test\r\n"
		  "NOOP CERT g@h.test\r\n"
		  "cErT i@j.test\n",
	     SC_REPO_PREFETCH_MAX);
	assert_int_equal(sc.n, 4);
	scan_is(&sc, 0, 5, "a@b.test");
	scan_is(&sc, 1, off_of(&sc, "<c@d.test>"), "<c@d.test>");
	scan_is(&sc, 2, off_of(&sc, "e@f.test"), "e@f.test");
	scan_is(&sc, 3, off_of(&sc, "i@j.test"), "i@j.test");
	scan_free(&sc);
}

static void test_scan_not_cert(void **state)
{
	struct scan sc;

	/* a longer verb, no argument, no space, a tab, a shorter verb, CERC */
	SCAN(&sc, "CERTX a@b.test\r\n"
		  "CERT\r\n"
		  "CERT \r\n"
		  "CERTa@b.test\r\n"
		  "CERT\ta@b.test\r\n"
		  "CER a@b.test\r\n"
		  "CERC a@b.test\r\n"
		  "CERSS a@b.test\n"
		  "XCERT a@b.test\n"
		  "CDRT a@b.test\r\n"   /* one bit off the letters of CERT, */
		  "C\x05RT a@b.test\r\n" /* 'E' without its 0x40 bit, */
		  "CER\x14 a@b.test\r\n" /* 'T' without its 0x40 bit, */
		  "CERR a@b.test\r\n"
		  "CERT   \r\n"          /* only blanks: no argument */
		  "CERS \t \n"
		  " CERT a@b.test\r\n"   /* no verb before the first space */
		  "RCPT TO:<a@b.test>\r\n",
	     SC_REPO_PREFETCH_MAX);
	assert_int_equal(sc.n, 0);
	scan_free(&sc);
	/* nothing at all */
	scan_run(&sc, "", 0, SC_REPO_PREFETCH_MAX);
	assert_int_equal(sc.n, 0);
	scan_free(&sc);
}

static void test_scan_incomplete(void **state)
{
	struct scan sc;

	/* the last line has no newline yet: not counted */
	SCAN(&sc, "CERT a@b.test\r\nCERT c@d.test", SC_REPO_PREFETCH_MAX);
	assert_int_equal(sc.n, 1);
	scan_is(&sc, 0, 5, "a@b.test");
	scan_free(&sc);
	/* len stops before the LF (the CR is in): not a complete line */
	scan_run(&sc, "CERT a@b.test\r\n", 14, SC_REPO_PREFETCH_MAX);
	assert_int_equal(sc.n, 0);
	scan_free(&sc);
	/* a single line without any newline */
	SCAN(&sc, "CERT a@b.test", SC_REPO_PREFETCH_MAX);
	assert_int_equal(sc.n, 0);
	scan_free(&sc);
}

static void test_scan_blanks(void **state)
{
	struct scan sc;

	/* extra spaces and tabs around the argument are not part of it (the
	 * argument dispatch sees); inner blanks are */
	SCAN(&sc, "CERT   a@b.test  \r\n"
		  "CERS \t<c@d.test>\t \n"
		  "CERT e f@g.test\r\n",
	     SC_REPO_PREFETCH_MAX);
	assert_int_equal(sc.n, 3);
	scan_is(&sc, 0, 7, "a@b.test");
	scan_is(&sc, 1, off_of(&sc, "<c@d.test>"), "<c@d.test>");
	scan_is(&sc, 2, off_of(&sc, "e f@g.test"), "e f@g.test");
	scan_free(&sc);
}

static void test_scan_nul(void **state)
{
	static const char text[] = "CERT a\0b@c.test\r\nCERT d@e.test\r\n";
	struct scan sc;

	/* NUL makes the line a syntax error (docs/design.md, command_split()):
	 * dispatch never looks it up, so neither does the scan; the line after
	 * it is found */
	scan_run(&sc, text, sizeof text - 1, SC_REPO_PREFETCH_MAX);
	assert_int_equal(sc.n, 1);
	scan_is(&sc, 0, off_of(&sc, "d@e.test"), "d@e.test");
	scan_free(&sc);
	/* a NUL as the argument, in the verb, in the trailing blanks */
	scan_run(&sc, "CERT \0\r\nCE\0T a@b.test\r\nCERT a@b.test \0\nCERS x@y.test\n", 53,
		 SC_REPO_PREFETCH_MAX);
	assert_int_equal(sc.n, 1);
	scan_is(&sc, 0, 53 - 9, "x@y.test");
	scan_free(&sc);
}

static void test_scan_max(void **state)
{
	static char text[(SC_REPO_PREFETCH_MAX + 8) * 20];
	struct scan sc;
	size_t len = 0;

	for (int i = 0; i < SC_REPO_PREFETCH_MAX + 8; i++) {
		int n = snprintf(text + len, sizeof text - len, "CERT u%02d@x.test\r\n", i);

		assert_true(n == 17);
		len += (size_t)n;
	}
	/* stops at max, in order */
	scan_run(&sc, text, len, 3);
	assert_int_equal(sc.n, 3);
	scan_is(&sc, 0, 5, "u00@x.test");
	scan_is(&sc, 1, 17 + 5, "u01@x.test");
	scan_is(&sc, 2, 34 + 5, "u02@x.test");
	scan_free(&sc);
	/* max = 0: nothing written */
	scan_run(&sc, text, len, 0);
	assert_int_equal(sc.n, 0);
	scan_free(&sc);
	/* more lines than SC_REPO_PREFETCH_MAX */
	scan_run(&sc, text, len, SC_REPO_PREFETCH_MAX);
	assert_int_equal(sc.n, SC_REPO_PREFETCH_MAX);
	for (size_t i = 0; i < SC_REPO_PREFETCH_MAX; i++) {
		char want[16];

		snprintf(want, sizeof want, "u%02zu@x.test", i);
		scan_is(&sc, i, i * 17 + 5, want);
	}
	scan_free(&sc);
}

static void test_scan_long_line(void **state)
{
	static char text[9000];
	struct scan sc;
	size_t len;

	/* a CERT line far over the 512-octet command line limit (RFC 5321
	 * 4.5.3.1.4), then a normal one: both are found, the long one whole,
	 * never cut or run into the next line (a hint only: the session answers
	 * the long one 500) */
	memcpy(text, "CERT ", 5);
	memset(text + 5, 'a', 8000);
	memcpy(text + 8005, "@b.test\r\nCERT c@d.test\r\n", 24);
	len = 8005 + 24;
	scan_run(&sc, text, len, SC_REPO_PREFETCH_MAX);
	assert_int_equal(sc.n, 2);
	assert_ptr_equal(sc.args[0], sc.buf + 5);
	assert_int_equal(sc.lens[0], 8007);
	scan_is(&sc, 1, 8005 + 9 + 5, "c@d.test");
	scan_free(&sc);
	/* an over-long line still incomplete: nothing */
	scan_run(&sc, text, 8005, SC_REPO_PREFETCH_MAX);
	assert_int_equal(sc.n, 0);
	scan_free(&sc);
}

/* ---- cert_prefetch(): a hint that changes no answer -------------------------- */

struct got {
	char text[8192];
	size_t len;
	size_t pems;
	size_t der_len;
	uint8_t der0[64];
};

static size_t sink_room(void *arg)
{
	struct got *g = arg;

	return sizeof g->text - g->len;
}

static sc_status sink_line(void *arg, const char *text)
{
	struct got *g = arg;
	int n = snprintf(g->text + g->len, sizeof g->text - g->len, "L %s\n", text);

	if (n < 0 || (size_t)n >= sizeof g->text - g->len)
		return SC_ERR_TOO_LONG;
	g->len += (size_t)n;
	return SC_OK;
}

static sc_status sink_pem(void *arg, const uint8_t *der, size_t der_len)
{
	struct got *g = arg;
	int n = snprintf(g->text + g->len, sizeof g->text - g->len, "P %zu\n", der_len);

	if (n < 0 || (size_t)n >= sizeof g->text - g->len)
		return SC_ERR_TOO_LONG;
	g->len += (size_t)n;
	if (g->pems++ == 0) {
		g->der_len = der_len;
		memcpy(g->der0, der, der_len < sizeof g->der0 ? der_len : sizeof g->der0);
	}
	return SC_OK;
}

static const char *const walk_addrs[] = {
	"alice@example.test", "carol@example.test", "dave@example.test", "erin@example.test",
	"nobody@example.test", "grace@gw.test", "mallory@other.test", "ALICE@example.test",
};
#define NWALK (sizeof walk_addrs / sizeof walk_addrs[0])

struct answer {
	enum cert_outcome outcome;
	struct got got;
};

static void walk_all(struct runtime *rt, int chain, struct answer *out)
{
	for (size_t i = 0; i < NWALK; i++) {
		struct sc_addr a;
		char key[SC_ADDR_KEY_MAX];
		struct cert_walk w = { .rt = rt, .key = key, .chain = chain };
		struct cert_sink sink = { sink_room, sink_line, sink_pem, &out[i].got };

		memset(&out[i], 0, sizeof out[i]);
		assert_int_equal(sc_addr_parse(walk_addrs[i], strlen(walk_addrs[i]), SC_ADDR_UTF8,
					       &a, NULL), SC_OK);
		assert_int_equal(sc_addr_key(&a, key, sizeof key, NULL), SC_OK);
		w.addr = &a;
		w.now = time(NULL);
		cert_walk(&w, &sink);
		out[i].outcome = w.outcome;
		for (size_t r = 0; r < rt->nrepos; r++)
			assert_int_equal(w.store_rc[r], SC_OK);
	}
}

static void answers_equal(const struct answer *a, const struct answer *b)
{
	for (size_t i = 0; i < NWALK; i++) {
		assert_int_equal(a[i].outcome, b[i].outcome);
		assert_int_equal(a[i].got.len, b[i].got.len);
		assert_memory_equal(a[i].got.text, b[i].got.text, a[i].got.len);
		assert_int_equal(a[i].got.der_len, b[i].got.der_len);
		assert_memory_equal(a[i].got.der0, b[i].got.der0, sizeof a[i].got.der0);
	}
}

/* what the fixture's PKI must answer, whatever the store */
static void answers_expected(const struct answer *a)
{
	assert_int_equal(a[0].outcome, CERT_FOUND);
	assert_int_equal(a[0].got.der_len, fix.alice_len);
	assert_memory_equal(a[0].got.der0, fix.alice_der, 64);
	assert_int_equal(a[1].outcome, CERT_NOT_FOUND); /* revoked */
	assert_int_equal(a[2].outcome, CERT_NOT_FOUND); /* expired */
	assert_int_equal(a[3].outcome, CERT_NOT_FOUND); /* not yet valid */
	assert_int_equal(a[4].outcome, CERT_NOT_FOUND);
	assert_int_equal(a[5].outcome, CERT_FOUND);
	assert_int_equal(a[6].outcome, CERT_FOUND);
	assert_int_equal(a[7].outcome, CERT_FOUND); /* the local part is case-folded */
	assert_int_equal(a[7].got.der_len, fix.alice_len);
}

/* Every kind of buffer the input may hold: prefetch them all. */
static void prefetch_garbage(struct runtime *rt)
{
	static char text[SC_REPO_PREFETCH_MAX * 3 * 40 + 64];
	static const char *const args[] = {
		"alice@example.test", "<carol@example.test>", "\"q uoted\"@example.test",
		"<>", "@", "a@", "@b", "x", "<alice@example.test", "nobody@example.test>",
		"\xff\xfe@example.test", "grace@gw.test", "<@relay:alice@example.test>",
	};
	size_t len = 0;

	for (size_t i = 0; len + 40 < sizeof text; i++) {
		int n = snprintf(text + len, sizeof text - len, "%s %s\r\n",
				 i % 2 ? "CERS" : "cert", args[i % (sizeof args / sizeof args[0])]);

		assert_true(n > 0 && (size_t)n < sizeof text - len);
		len += (size_t)n;
	}
	for (size_t cut = 0; cut <= len; cut += cut < 200 ? 1 : 97)
		cert_prefetch(rt, text, cut);
	cert_prefetch(rt, text, len);
	cert_prefetch(rt, "CERT a\0b@example.test\r\nCERT alice@example.test\r\n", 48);
	cert_prefetch(rt, "", 0);
	{
		const char *a[3] = { "alice@example.test", "", "<>" };
		size_t l[3] = { 18, 0, 2 };

		cert_prefetch_args(rt, a, l, 3);
		cert_prefetch_args(rt, a, l, 0);
	}
}

static void test_prefetch_no_index(void **state)
{
	static struct answer before[NWALK], after[NWALK];

	/* the fixture's dir: store has no index */
	walk_all(fix.rt, 0, before);
	answers_expected(before);
	prefetch_garbage(fix.rt);
	walk_all(fix.rt, 0, after);
	answers_equal(before, after);
	walk_all(fix.rt, 1, before);
	prefetch_garbage(fix.rt);
	walk_all(fix.rt, 1, after);
	answers_equal(before, after);
}

/* A runtime on an lmdb: store holding the fixture's certificates. */
static struct runtime *lmdb_runtime(void)
{
	static const char *const keys[] = {
		"alice@example.test", "carol@example.test", "dave@example.test",
		"erin@example.test", "grace@gw.test", "mallory@other.test",
	};
	char spec[700], path[700], conf[4096], err[1024] = "";
	struct runtime *rt = NULL;
	sc_repo *w;
	sc_status rc;
	int n;

	snprintf(spec, sizeof spec, "lmdb:%s/db", fix.dir);
	assert_int_equal(sc_repo_open(spec, SC_REPO_CREATE, &w, NULL, 0), SC_OK);
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		struct sc_addr a;
		sc_cert *c;

		snprintf(path, sizeof path, "%s/repo/%s.pem", fix.dir, keys[i]);
		assert_int_equal(sc_cert_load_file(path, &c), SC_OK);
		assert_int_equal(sc_addr_parse(keys[i], strlen(keys[i]), SC_ADDR_UTF8, &a, NULL),
				 SC_OK);
		assert_int_equal(sc_repo_store(w, &a, c), SC_OK);
		sc_cert_free(c);
	}
	sc_repo_close(w);
	n = snprintf(conf, sizeof conf,
		     "hostname = mx.test\n"
		     "listen = 127.0.0.1:25\n"
		     "domains = example.test\n"
		     "gateway_domains = gw.test\n"
		     "repository = %s\n"
		     "crl_file = %s/crl.pem\n"
		     "state_dir = %s\n",
		     spec, fix.dir, fix.dir);
	assert_true(n > 0 && (size_t)n < sizeof conf);
	snprintf(path, sizeof path, "%s/lmdb.conf", fix.dir);
	tc_write_file(path, conf, (size_t)n);
	rc = runtime_load(path, NULL, &rt, err, sizeof err);
	if (rc != SC_OK)
		fail_msg("runtime_load: %s: %s", sc_strerror(rc), err);
	assert_int_equal(rt->nrepos, 1);
	return rt;
}

static void test_prefetch_index(void **state)
{
	static struct answer plain[NWALK], before[NWALK], after[NWALK];
	struct runtime *rt = lmdb_runtime();
	size_t count = 0;

	/* lmdb before any index: same answers as the dir: store */
	walk_all(rt, 0, plain);
	answers_expected(plain);
	prefetch_garbage(rt);
	walk_all(rt, 0, after);
	answers_equal(plain, after);
	/* with an index: the same answers, before and after the hint */
	assert_true(sc_repo_index_wanted(rt->repos[0]->repo));
	assert_int_equal(sc_repo_index_refresh(rt->repos[0]->repo, &count, NULL), SC_OK);
	assert_int_equal(count, 6);
	assert_false(sc_repo_index_wanted(rt->repos[0]->repo));
	walk_all(rt, 0, before);
	answers_equal(plain, before);
	prefetch_garbage(rt);
	walk_all(rt, 0, after);
	answers_equal(before, after);
	walk_all(rt, 1, before);
	prefetch_garbage(rt);
	walk_all(rt, 1, after);
	answers_equal(before, after);
	assert_true(before[0].got.pems >= 1);
	runtime_unref(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scan_lines),
		cmocka_unit_test(test_scan_not_cert),
		cmocka_unit_test(test_scan_incomplete),
		cmocka_unit_test(test_scan_blanks),
		cmocka_unit_test(test_scan_nul),
		cmocka_unit_test(test_scan_max),
		cmocka_unit_test(test_scan_long_line),
		cmocka_unit_test(test_prefetch_no_index),
		cmocka_unit_test(test_prefetch_index),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
