/*
 * test_queue.c - the review queue (lib/queue.c, queue_dir.c, queue_entry.c): add / get /
 * list / decide, the on-disk layout and entry format, two handles deciding the same
 * entry, bad ids never reaching a path, damaged entry files (truncated, oversized,
 * renamed, forged certificate, bad escapes, embedded NUL, non-UTF-8), the audit log,
 * and error paths provoked with files in place of directories (tests run as root,
 * so permissions cannot provoke them); the backend choice (sc_queue_open_ex,
 * sc_queue_db_spec). The pgsql: backend is driven against a real server by
 * tests/integration/test_pgsql_cluster.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include <smtpcert/smtpcert.h>
#include "queue_int.h"
#include "testcert.h"

static tc_key *g_k;
static char g_tmp[512], g_state[600];
static sc_cert *g_cert, *g_cert2;
static struct sc_addr g_alice;

static sc_cert *make_cert(const char *cn, int chain)
{
	return tc_email_cert("Queue CA", cn, "alice@example.test", g_k, chain);
}

static int group_setup(void **state)
{
	g_k = tc_key_shared(TC_P256);
	/* A subject with a newline and a backslash: the entry format must escape them. */
	g_cert = make_cert("Alice \\ \"Q\"\nInjected: yes \xc3\xa9", 1);
	g_cert2 = make_cert("Alice two", 0);
	assert_int_equal(sc_addr_parse("Alice@Example.TEST", 18, 0, &g_alice, NULL), SC_OK);
	return 0;
}

static int group_teardown(void **state)
{
	sc_cert_free(g_cert);
	sc_cert_free(g_cert2);
	return 0;
}

static int fx_setup(void **state)
{
	tc_tmpdir(g_tmp, sizeof g_tmp);
	snprintf(g_state, sizeof g_state, "%s/state", g_tmp);
	return 0;
}

static int fx_teardown(void **state)
{
	tc_rmtree(g_tmp);
	return 0;
}

static sc_queue *open_q(void)
{
	sc_queue *q = NULL;
	char err[512] = "";

	assert_int_equal(sc_queue_open(g_state, &q, err, sizeof err), SC_OK);
	assert_non_null(q);
	return q;
}

static void path_of(char *buf, size_t size, const char *dir, const char *id)
{
	snprintf(buf, size, "%s/submissions/%s/%s", g_state, dir, id);
}

static int exists(const char *dir, const char *id)
{
	char p[1200];
	struct stat st;

	path_of(p, sizeof p, dir, id);
	return stat(p, &st) == 0;
}

/* Decided entries are in exactly one of accepted/ and rejected/, never pending/. */
static int decided_once(const char *id)
{
	return !exists("pending", id) && exists("accepted", id) + exists("rejected", id) == 1;
}

static __attribute__((noinline)) char *slurp(const char *path, size_t *len)
{
	char *d = NULL;
	size_t n = 0;

	if (tc_read_file(path, &d, &n) != 0)
		fail_msg("cannot read %s", path);
	if (len)
		*len = n;
	return d;
}

static void test_add_get(void **state)
{
	sc_queue *q = open_q();
	struct sc_submission s, g;
	sc_cert *c = NULL;
	uint8_t fp[32];
	char hex[65], p[1200], *text;
	struct stat st;
	time_t now = time(NULL);

	assert_int_equal(sc_queue_add(q, g_cert, &g_alice, "alice@example.test",
				      "192.0.2.1:40000", &s),
			 SC_OK);
	assert_true(sc_queue_id_valid(s.id));
	assert_int_equal(s.state, SC_SUB_PENDING);
	assert_string_equal(s.address, "alice@example.test");
	assert_true(s.received >= now - 5 && s.received <= now + 5);
	sc_cert_fingerprint(g_cert, fp);
	sc_hex(fp, 32, hex);
	assert_string_equal(s.fingerprint, hex);
	assert_true(exists("pending", s.id));
	/* The temporary file is gone; entry file is private. */
	snprintf(p, sizeof p, "%s/submissions/tmp/%s", g_state, s.id);
	assert_int_not_equal(stat(p, &st), 0);
	path_of(p, sizeof p, "pending", s.id);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	/* cat-readable: header keys, escaped newline, then PEM. */
	text = slurp(p, NULL);
	assert_non_null(strstr(text, "smtpcert-submission: 1\nid: "));
	assert_non_null(strstr(text, "\naddress: alice@example.test\n"));
	assert_non_null(strstr(text, "\nclient: 192.0.2.1:40000\n"));
	/* sc_cert_subject() escaped the newline already; the backslash is escaped again. */
	assert_non_null(strstr(text, "\nsubject: CN=Alice \\\\\\\\ "));
	assert_null(strstr(text, "\nInjected: yes"));
	assert_non_null(strstr(text, "\n\n-----BEGIN CERTIFICATE-----\n"));
	free(text);

	assert_int_equal(sc_queue_get(q, s.id, &g, &c), SC_OK);
	assert_memory_equal(&g, &s, sizeof g);
	assert_non_null(c);
	assert_int_equal(sc_cert_count(c), 2);
	assert_non_null(strstr(g.subject, "Injected"));
	sc_cert_free(c);
	/* Without the certificate. */
	assert_int_equal(sc_queue_get(q, s.id, &g, NULL), SC_OK);
	assert_string_equal(g.auth_user, "alice@example.test");
	sc_queue_close(q);
}

static void test_ids_unique_and_random(void **state)
{
	sc_queue *q = open_q();
	struct sc_submission a, b;

	assert_int_equal(sc_queue_add(q, g_cert2, &g_alice, "alice", "c", &a), SC_OK);
	assert_int_equal(sc_queue_add(q, g_cert2, &g_alice, "alice", "c", &b), SC_OK);
	assert_string_not_equal(a.id, b.id);
	assert_int_equal(strlen(a.id), SC_QUEUE_ID_LEN);
	sc_queue_close(q);
}

struct collect {
	int n;
	char ids[8][SC_QUEUE_ID_LEN + 1];
	int64_t received[8];
	int stop_at;
};

static sc_status collect_fn(void *arg, const struct sc_submission *s)
{
	struct collect *c = arg;

	if (c->n < 8) {
		memcpy(c->ids[c->n], s->id, sizeof c->ids[0]);
		c->received[c->n] = s->received;
	}
	c->n++;
	return c->stop_at && c->n == c->stop_at ? SC_ERR_EXISTS : SC_OK;
}

/* Rewrite the received: line of an entry (to order entries without sleeping). */
static void set_received(const char *dir, const char *id, const char *iso)
{
	char p[1200], *t, *r;
	size_t len;

	path_of(p, sizeof p, dir, id);
	t = slurp(p, &len);
	r = strstr(t, "received: ");
	assert_non_null(r);
	memcpy(r + 10, iso, 20);
	tc_write_file(p, t, len);
	free(t);
}

struct warns {
	int n;
	char last[1024];
};

static void warn_fn(void *arg, const char *msg)
{
	struct warns *w = arg;

	w->n++;
	snprintf(w->last, sizeof w->last, "%s", msg);
}

static void test_list_oldest_first(void **state)
{
	sc_queue *q = open_q();
	struct sc_submission s[3];
	struct collect c = { 0 };
	struct warns w = { 0 };
	char p[1200];

	sc_queue_set_warn(q, warn_fn, &w);
	for (int i = 0; i < 3; i++)
		assert_int_equal(sc_queue_add(q, g_cert2, &g_alice, "alice", "c", &s[i]), SC_OK);
	set_received("pending", s[0].id, "2030-01-01T00:00:00Z");
	set_received("pending", s[1].id, "2020-01-01T00:00:00Z");
	set_received("pending", s[2].id, "2025-06-30T12:00:00Z");
	/* Junk in the directory is reported and skipped. */
	path_of(p, sizeof p, "pending", "notes.txt");
	tc_write_file(p, "x", 1);
	assert_int_equal(sc_queue_list(q, SC_SUB_PENDING, collect_fn, &c), SC_OK);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.ids[0], s[1].id);
	assert_string_equal(c.ids[1], s[2].id);
	assert_string_equal(c.ids[2], s[0].id);
	assert_int_equal(c.received[0], 1577836800);
	assert_int_equal(w.n, 1);
	assert_non_null(strstr(w.last, "notes.txt"));

	/* The callback's status stops the walk. */
	memset(&c, 0, sizeof c);
	c.stop_at = 2;
	assert_int_equal(sc_queue_list(q, SC_SUB_PENDING, collect_fn, &c), SC_ERR_EXISTS);
	assert_int_equal(c.n, 2);

	/* Other states are empty. */
	memset(&c, 0, sizeof c);
	assert_int_equal(sc_queue_list(q, SC_SUB_ACCEPTED, collect_fn, &c), SC_OK);
	assert_int_equal(c.n, 0);
	sc_queue_close(q);
}

static void test_decide(void **state)
{
	sc_queue *q = open_q(), *q2 = open_q();
	struct sc_submission a, r, g;
	struct collect c = { 0 };
	char p[1200], *log, *text;
	sc_cert *cert = NULL;

	assert_int_equal(sc_queue_add(q, g_cert, &g_alice, "alice@example.test", "c", &a), SC_OK);
	assert_int_equal(sc_queue_add(q, g_cert2, &g_alice, "alice@example.test", "c", &r), SC_OK);
	/* Two handles (the daemon and the CLI): the first decision wins. */
	assert_int_equal(sc_queue_decide(q2, a.id, 1, NULL, "admin:root"), SC_OK);
	assert_int_equal(sc_queue_decide(q, a.id, 0, "late", "auto"), SC_ERR_EXISTS);
	assert_int_equal(sc_queue_decide(q2, a.id, 1, NULL, "admin:root"), SC_ERR_EXISTS);
	assert_false(exists("pending", a.id));
	assert_true(exists("accepted", a.id));
	assert_false(exists("rejected", a.id));

	assert_int_equal(sc_queue_decide(q, r.id, 0, "wrong \"CA\"\nX-Evil: 1", "admin:bob"),
			 SC_OK);
	assert_true(exists("rejected", r.id));
	assert_int_equal(sc_queue_get(q2, r.id, &g, &cert), SC_OK);
	assert_int_equal(g.state, SC_SUB_REJECTED);
	assert_string_equal(g.reason, "wrong \"CA\"\nX-Evil: 1");
	assert_true(g.decided >= g.received);
	assert_non_null(cert); /* the body survived the header rewrite */
	sc_cert_free(cert);
	path_of(p, sizeof p, "rejected", r.id);
	text = slurp(p, NULL);
	assert_non_null(strstr(text, "\nreason: wrong \"CA\"\\x0aX-Evil: 1\n"));
	assert_non_null(strstr(text, "\ndecided: "));
	free(text);

	assert_int_equal(sc_queue_get(q, a.id, &g, NULL), SC_OK);
	assert_int_equal(g.state, SC_SUB_ACCEPTED);
	assert_string_equal(g.reason, "");
	assert_int_equal(sc_queue_list(q, SC_SUB_ACCEPTED, collect_fn, &c), SC_OK);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.ids[0], a.id);

	/* Unknown id. */
	assert_int_equal(sc_queue_decide(q, "0123456789abcdef0123456789abcdef", 1, NULL, "x"),
			 SC_ERR_NOT_FOUND);
	assert_int_equal(sc_queue_get(q, "0123456789abcdef0123456789abcdef", &g, NULL),
			 SC_ERR_NOT_FOUND);

	/* The audit log: one line per action, values that could break a line escaped. */
	snprintf(p, sizeof p, "%s/audit.log", g_state);
	log = slurp(p, NULL);
	assert_non_null(strstr(log, "action=submit"));
	assert_non_null(strstr(log, "actor=admin:root action=accept id="));
	assert_non_null(strstr(log, "actor=admin:bob action=reject"));
	assert_non_null(strstr(log, "detail=\"wrong \\\"CA\\\"\\x0aX-Evil: 1\""));
	assert_null(strstr(log, "\nX-Evil"));
	{
		int lines = 0;

		for (char *x = log; *x; x++)
			lines += *x == '\n';
		assert_int_equal(lines, 4); /* 2 submits, accept, reject */
	}
	free(log);
	sc_queue_close(q);
	sc_queue_close(q2);
}

static void test_bad_ids(void **state)
{
	static const char *const bad[] = {
		"", "../../../../etc/passwd", "0123456789ABCDEF0123456789ABCDEF",
		"0123456789abcdef0123456789abcde", "0123456789abcdef0123456789abcdef0",
		"0123456789abcdef0123456789abcde/", "0123456789abcdef0123456789abcdeg",
		"../pending/0123456789abcdef01234",
	};
	sc_queue *q = open_q();
	struct sc_submission s;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(sc_queue_get(q, bad[i], &s, NULL), SC_ERR_SYNTAX);
		assert_int_equal(sc_queue_decide(q, bad[i], 1, NULL, "x"), SC_ERR_SYNTAX);
		assert_false(sc_queue_id_valid(bad[i]));
	}
	assert_true(sc_queue_id_valid("0123456789abcdef0123456789abcdef"));
	assert_int_equal(sc_queue_get(q, NULL, &s, NULL), SC_ERR_ARG);
	sc_queue_close(q);
}

/* Write @p text as the pending entry @p id and expect sc_queue_get() to say @p want. */
static void expect_entry(sc_queue *q, const char *id, const char *text, size_t len,
			 sc_status want)
{
	struct sc_submission s;
	sc_cert *c = NULL;
	char p[1200];

	path_of(p, sizeof p, "pending", id);
	tc_write_file(p, text, len);
	if ((int)want == -1) /* any refusal */
		assert_int_not_equal(sc_queue_get(q, id, &s, &c), SC_OK);
	else
		assert_int_equal(sc_queue_get(q, id, &s, &c), want);
	if (want != SC_OK)
		assert_null(c);
	sc_cert_free(c);
	unlink(p);
}

/* @p text with the first @p from replaced by @p to (malloc'ed, NUL-terminated). */
static char *edit(const char *text, const char *from, const char *to, size_t *len)
{
	const char *at = strstr(text, from);
	size_t n = strlen(text), fl = strlen(from), tl = strlen(to);
	char *r;

	assert_non_null(at);
	r = malloc(n - fl + tl + 1);
	assert_non_null(r);
	memcpy(r, text, (size_t)(at - text));
	memcpy(r + (at - text), to, tl);
	memcpy(r + (at - text) + tl, at + fl, n - (size_t)(at - text) - fl + 1);
	*len = n - fl + tl;
	return r;
}

static void expect_edit(sc_queue *q, const char *id, const char *good, const char *from,
			const char *to, sc_status want)
{
	size_t len;
	char *t = edit(good, from, to, &len);

	expect_entry(q, id, t, len, want);
	free(t);
}

static void test_corrupted_entries(void **state)
{
	sc_queue *q = open_q();
	struct sc_submission s, s2;
	struct collect c = { 0 };
	struct warns w = { 0 };
	char p[1200], p2[1200], *good, *other, *big, *pem;
	size_t len, olen, body, obody, pemlen;

	sc_queue_set_warn(q, warn_fn, &w);
	assert_int_equal(sc_queue_add(q, g_cert, &g_alice, "alice", "c", &s), SC_OK);
	assert_int_equal(sc_queue_add(q, g_cert2, &g_alice, "alice", "c", &s2), SC_OK);
	path_of(p, sizeof p, "pending", s.id);
	good = slurp(p, &len);
	path_of(p2, sizeof p2, "pending", s2.id);
	other = slurp(p2, &olen);
	assert_int_equal(sc_queue_entry_decode(good, len, 0, &(struct sc_submission){ 0 },
					       &body),
			 SC_OK);
	assert_int_equal(sc_queue_entry_decode(other, olen, 0, &(struct sc_submission){ 0 },
					       &obody),
			 SC_OK);

	/* Truncated in the header, at the empty line, or inside the first PEM block. */
	for (size_t cut = 0; cut < body + 200; cut += 5)
		expect_entry(q, s.id, good, cut, cut <= body ? SC_ERR_SYNTAX : (sc_status)-1);
	expect_entry(q, s.id, good, len, SC_OK);

	/* A file copied under another id is not that submission. */
	expect_entry(q, s2.id, good, len, SC_ERR_MISMATCH);
	/* Another certificate under this header: the fingerprint check catches it. */
	{
		size_t hl = body, n = hl + (olen - obody);
		char *forged = malloc(n);

		assert_non_null(forged);
		memcpy(forged, good, hl);
		memcpy(forged + hl, other + obody, olen - obody);
		expect_entry(q, s.id, forged, n, SC_ERR_MISMATCH);
		free(forged);
	}
	/* Escapes: only \\ and \xHH of a control octet, once each way. */
	expect_edit(q, s.id, good, "\nclient: c\n", "\nclient: a\\qb\n", SC_ERR_SYNTAX);
	expect_edit(q, s.id, good, "\nclient: c\n", "\nclient: \\x41\n", SC_ERR_SYNTAX);
	expect_edit(q, s.id, good, "\nclient: c\n", "\nclient: \\x00\n", SC_ERR_SYNTAX);
	expect_edit(q, s.id, good, "\nclient: c\n", "\nclient: \\x5c\n", SC_ERR_SYNTAX);
	expect_edit(q, s.id, good, "\nclient: c\n", "\nclient: \\x0\n", SC_ERR_SYNTAX);
	expect_edit(q, s.id, good, "\nclient: c\n", "\nclient: c\\\n", SC_ERR_SYNTAX);
	expect_edit(q, s.id, good, "\nclient: c\n", "\nclient: \\x0a\\\\ok\n", SC_OK);
	expect_edit(q, s.id, good, "\nclient: c\n", "\nclient: c\r\n", SC_ERR_SYNTAX);
	expect_edit(q, s.id, good, "\nclient: c\n", "\nclient: \xff\xfe\n", SC_ERR_ENCODING);
	expect_edit(q, s.id, good, "\nclient: c\n", "\nclient: \xc3\xa9\n", SC_OK);
	/* Keys: unknown, duplicate, missing, malformed. */
	expect_edit(q, s.id, good, "\nclient: c\n", "\nclient: c\nx-extra: 1\n", SC_ERR_SYNTAX);
	expect_edit(q, s.id, good, "\nclient: c\n", "\nclient: c\nclient: d\n", SC_ERR_SYNTAX);
	expect_edit(q, s.id, good, "\nclient: c\n", "\n", SC_ERR_SYNTAX);
	expect_edit(q, s.id, good, "\nclient: c\n", "\nclient:c\n", SC_ERR_SYNTAX);
	expect_edit(q, s.id, good, "\nclient: c\n", "\nclient c\n", SC_ERR_SYNTAX);
	expect_edit(q, s.id, good, "smtpcert-submission: 1\n", "smtpcert-submission: 2\n",
		    SC_ERR_SYNTAX);
	/* Values checked: address is its own lookup key, times real, ids and hex strict. */
	expect_edit(q, s.id, good, "\naddress: alice@example.test\n",
		    "\naddress: Alice@example.test\n", SC_ERR_SYNTAX);
	expect_edit(q, s.id, good, "\naddress: alice@example.test\n", "\naddress: alice\n",
		    SC_ERR_SYNTAX);
	expect_edit(q, s.id, good, "\nreceived: ", "\nreceived: 2026-02-29T00:00:00Z\nx: ",
		    SC_ERR_SYNTAX);
	expect_edit(q, s.id, good, "\nfingerprint: ", "\nfingerprint: A", SC_ERR_TOO_LONG);
	expect_edit(q, s.id, good, "\nfingerprint: ", "\nfingerprint: \nx: ", SC_ERR_SYNTAX);
	expect_edit(q, s.id, good, "\nclient: c\n", "\nclient: c\nreason: \n", SC_ERR_SYNTAX);
	expect_edit(q, s.id, good, "\nclient: c\n", "\nclient: c\ndecided: 2024-02-29T23:59:59Z\n",
		    SC_OK);
	expect_edit(q, s.id, good, "\nclient: c\n", "\nclient: c\ndecided: 2024-02-29T24:00:00Z\n",
		    SC_ERR_SYNTAX);
	/* Embedded NUL in the header. */
	{
		char *t = malloc(len);

		assert_non_null(t);
		memcpy(t, good, len);
		t[30] = '\0';
		expect_entry(q, s.id, t, len, SC_ERR_SYNTAX);
		free(t);
	}
	/* A private key in the body is never taken for a certificate. */
	tc_key_pem(g_k, &pem, &pemlen);
	{
		size_t n = body + pemlen;
		char *t = malloc(n);

		assert_non_null(t);
		memcpy(t, good, body);
		memcpy(t + body, pem, pemlen);
		expect_entry(q, s.id, t, n, SC_ERR_SYNTAX);
		free(t);
	}
	free(pem);
	/* Oversized header; oversized file. */
	big = malloc(SC_QUEUE_ENTRY_MAX + 10);
	assert_non_null(big);
	memset(big, 'a', SC_QUEUE_ENTRY_MAX + 10);
	memcpy(big, good, body - 1);
	expect_entry(q, s.id, big, SC_QUEUE_HEADER_MAX + 10, SC_ERR_TOO_LONG);
	memcpy(big, good, len);
	expect_entry(q, s.id, big, SC_QUEUE_ENTRY_MAX + 10, SC_ERR_TOO_LONG);
	free(big);
	/* A symlink in place of an entry is not followed. */
	assert_int_equal(symlink(p2, p), 0);
	assert_int_equal(sc_queue_get(q, s.id, &(struct sc_submission){ 0 }, NULL),
			 SC_ERR_SYNTAX);
	unlink(p);

	/* list skips damaged entries, names them, and still delivers the good ones. */
	tc_write_file(p, good, body - 3);
	tc_write_file(p2, other, olen); /* (the copy test above removed it) */
	assert_int_equal(sc_queue_list(q, SC_SUB_PENDING, collect_fn, &c), SC_OK);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.ids[0], s2.id);
	assert_int_equal(w.n, 1);
	assert_non_null(strstr(w.last, s.id));
	/* A damaged entry can still be rejected (cleanup); the warning says so. */
	assert_int_equal(sc_queue_decide(q, s.id, 0, "damaged", "admin:root"), SC_OK);
	assert_true(exists("rejected", s.id));
	assert_int_equal(w.n, 2);
	assert_non_null(strstr(w.last, "decision not written"));
	free(good);
	free(other);
	sc_queue_close(q);
}

/* Error paths: a file where a directory should be (root ignores permissions). */
static void test_open_errors(void **state)
{
	sc_queue *q = NULL;
	char err[512] = "", p[1200];

	tc_write_file(g_state, "x", 1);
	assert_int_not_equal(sc_queue_open(g_state, &q, err, sizeof err), SC_OK);
	assert_null(q);
	assert_non_null(strstr(err, g_state));
	unlink(g_state);
	assert_int_equal(mkdir(g_state, 0700), 0);
	snprintf(p, sizeof p, "%s/submissions", g_state);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof p, "%s/submissions/pending", g_state);
	tc_write_file(p, "x", 1);
	err[0] = '\0';
	assert_int_not_equal(sc_queue_open(g_state, &q, err, sizeof err), SC_OK);
	assert_non_null(strstr(err, "cannot open the submission queue"));
	unlink(p);
	snprintf(p, sizeof p, "%s/audit.log", g_state);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_not_equal(sc_queue_open(g_state, &q, NULL, 0), SC_OK);
	rmdir(p);
	q = open_q();
	sc_queue_close(q);
}

/* Add and decide fail cleanly when the files cannot be created. */
static void test_write_errors(void **state)
{
	sc_queue *q = open_q();
	struct sc_submission s;
	char p[1200], p2[1200];

	/* tmp/ replaced by a file after open: the handle's directory is gone. */
	snprintf(p, sizeof p, "%s/submissions/tmp", g_state);
	snprintf(p2, sizeof p2, "%s/submissions/tmp.old", g_state);
	assert_int_equal(rename(p, p2), 0);
	tc_write_file(p, "x", 1);
	assert_int_equal(rmdir(p2), 0);
	assert_int_not_equal(sc_queue_add(q, g_cert, &g_alice, "alice", "c", &s), SC_OK);
	sc_queue_close(q);
	/* And a fresh handle refuses to open. */
	assert_int_not_equal(sc_queue_open(g_state, &q, NULL, 0), SC_OK);
	unlink(p);
	q = open_q();
	/* accepted/ is a file: the claim fails, the entry stays pending. */
	assert_int_equal(sc_queue_add(q, g_cert, &g_alice, "alice", "c", &s), SC_OK);
	sc_queue_close(q);
	q = open_q();
	snprintf(p, sizeof p, "%s/submissions/accepted", g_state);
	snprintf(p2, sizeof p2, "%s/submissions/accepted.old", g_state);
	assert_int_equal(rename(p, p2), 0);
	assert_int_equal(rmdir(p2), 0);
	assert_int_not_equal(sc_queue_decide(q, s.id, 1, NULL, "x"), SC_OK);
	assert_true(exists("pending", s.id));
	sc_queue_close(q);
}

/* Stale temporary files of a crashed writer are removed at open; fresh ones kept. */
static void test_tmp_cleanup(void **state)
{
	sc_queue *q = open_q();
	char old[1200], fresh[1200];
	struct timespec ts[2] = { { .tv_sec = time(NULL) - 7200 }, { .tv_sec = time(NULL) - 7200 } };

	sc_queue_close(q);
	snprintf(old, sizeof old, "%s/submissions/tmp/0123456789abcdef0123456789abcdef", g_state);
	snprintf(fresh, sizeof fresh, "%s/submissions/tmp/fedcba9876543210fedcba9876543210",
		 g_state);
	tc_write_file(old, "x", 1);
	tc_write_file(fresh, "x", 1);
	assert_int_equal(utimensat(AT_FDCWD, old, ts, 0), 0);
	q = open_q();
	assert_int_not_equal(access(old, F_OK), 0);
	assert_int_equal(access(fresh, F_OK), 0);
	sc_queue_close(q);
}

/* Encoder refusals: a field that is not text, an id that is not one. */
static void test_encode_refusals(void **state)
{
	struct sc_submission s = { 0 };
	char *out = NULL;
	size_t len;

	memset(s.id, 'a', SC_QUEUE_ID_LEN);
	memset(s.fingerprint, 'b', 64);
	snprintf(s.address, sizeof s.address, "alice@example.test");
	snprintf(s.auth_user, sizeof s.auth_user, "bad\xff");
	assert_int_equal(sc_queue_entry_encode(&s, g_cert, &out, &len), SC_ERR_ENCODING);
	s.auth_user[0] = '\0';
	assert_int_equal(sc_queue_entry_encode(&s, g_cert, &out, &len), SC_OK);
	free(out);
	s.id[3] = 'G';
	assert_int_equal(sc_queue_entry_encode(&s, g_cert, &out, &len), SC_ERR_ARG);
	s.id[3] = 'a';
	s.fingerprint[0] = 'B';
	assert_int_equal(sc_queue_entry_encode(&s, g_cert, &out, &len), SC_ERR_ARG);
}

/* Peer-given text that is not UTF-8 or too long never stops a submission. */
static void test_text_fields_sanitised(void **state)
{
	sc_queue *q = open_q();
	struct sc_submission s, g;
	char reason[400];

	assert_int_equal(sc_queue_add(q, g_cert2, &g_alice, "\xff\xfeuser\xc3", "1.2.3.4:5\x80",
				      &s),
			 SC_OK);
	assert_string_equal(s.auth_user, "??user?");
	assert_string_equal(s.client, "1.2.3.4:5?");
	/* 399 bytes of two-byte characters: cut at a character boundary, under 256. */
	memset(reason, 0, sizeof reason);
	for (int i = 0; i + 2 < (int)sizeof reason; i += 2)
		memcpy(reason + i, "\xc3\xa9", 2);
	assert_int_equal(sc_queue_decide(q, s.id, 0, reason, "admin:root"), SC_OK);
	assert_int_equal(sc_queue_get(q, s.id, &g, NULL), SC_OK);
	assert_int_equal(strlen(g.reason), 254);
	assert_memory_equal(g.reason, reason, 254);
	assert_string_equal(g.auth_user, "??user?");
	sc_queue_close(q);
}

/* More files than SC_QUEUE_LIST_MAX: bounded work, the rest reported. */
static void test_list_bound(void **state)
{
	sc_queue *q = open_q();
	struct sc_submission s;
	struct collect c = { 0 };
	char p[1200], *good, id[SC_QUEUE_ID_LEN + 1];
	size_t len, body;

	assert_int_equal(sc_queue_add(q, g_cert2, &g_alice, "alice", "c", &s), SC_OK);
	path_of(p, sizeof p, "pending", s.id);
	good = slurp(p, &len);
	assert_int_equal(sc_queue_entry_decode(good, len, 0, &(struct sc_submission){ 0 }, &body),
			 SC_OK);
	/* Header-only copies under new ids (the list reads headers only). */
	for (int i = 0; i < SC_QUEUE_LIST_MAX; i++) {
		snprintf(id, sizeof id, "%032x", i);
		memcpy(strstr(good, "\nid: ") + 5, id, SC_QUEUE_ID_LEN);
		path_of(p, sizeof p, "pending", id);
		tc_write_file(p, good, body);
	}
	assert_int_equal(sc_queue_list(q, SC_SUB_PENDING, collect_fn, &c), SC_ERR_TOO_MANY);
	assert_int_equal(c.n, SC_QUEUE_LIST_MAX);
	free(good);
	sc_queue_close(q);
}

/* Several processes decide one entry at once: exactly one wins (claim by rename). */
static void test_concurrent_decide(void **state)
{
	sc_queue *q = open_q();
	struct sc_submission s;
	int wins = 0, exists = 0;
	pid_t pids[6];

	assert_int_equal(sc_queue_add(q, g_cert2, &g_alice, "alice", "c", &s), SC_OK);
	for (int i = 0; i < 6; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			sc_queue *mine = NULL;
			sc_status st;

			if (sc_queue_open(g_state, &mine, NULL, 0) != SC_OK)
				_exit(3);
			st = sc_queue_decide(mine, s.id, i % 2, "race", "child");
			sc_queue_close(mine);
			_exit(st == SC_OK ? 0 : st == SC_ERR_EXISTS ? 1 : 2);
		}
	}
	for (int i = 0; i < 6; i++) {
		int status;

		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		wins += WEXITSTATUS(status) == 0;
		exists += WEXITSTATUS(status) == 1;
	}
	assert_int_equal(wins, 1);
	assert_int_equal(exists, 5);
	assert_true(decided_once(s.id));
	sc_queue_close(q);
}

/* root (the admin CLI) creating queue files gives them state_dir's owner (the
 * daemon's unprivileged user), so the daemon can still append and add. */
static void test_root_gives_files_to_owner(void **state)
{
	sc_queue *q;
	struct sc_submission s;
	struct stat st;
	char p[1200];

	if (geteuid() != 0)
		skip();
	assert_int_equal(mkdir(g_state, 0700), 0);
	assert_int_equal(chown(g_state, 65534, 65534), 0);
	q = open_q();
	assert_int_equal(sc_queue_add(q, g_cert2, &g_alice, "alice", "c", &s), SC_OK);
	assert_int_equal(sc_queue_decide(q, s.id, 0, "no", "admin:root"), SC_OK);
	sc_queue_close(q);
	for (const char *rel = "submissions\0submissions/pending\0audit.log\0"; *rel;
	     rel += strlen(rel) + 1) {
		snprintf(p, sizeof p, "%s/%s", g_state, rel);
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_uid, 65534);
	}
	path_of(p, sizeof p, "rejected", s.id);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_uid, 65534);
}

/* sc_queue_db_spec(): the first pgsql: store of `repository`, whatever its place. */
static void test_db_spec(void **state)
{
	static const char with[] =
		"domains = example.test\n"
		"repository = lmdb:/var/lib/x dir:/y pgsql:host=127.0.0.1 port=5 dbname=a "
		"PGSQL:host=b\n";
	static const char without[] = "domains = example.test\n"
				      "repository = lmdb:/var/lib/x ldap://h/o=x?c?sub?(mail=%s)\n";
	sc_config *cfg = NULL;
	char err[512] = "";

	assert_null(sc_queue_db_spec(NULL));
	if (sc_config_parse(with, sizeof with - 1, "t.conf", &cfg, err, sizeof err) != SC_OK)
		fail_msg("%s", err);
	assert_non_null(sc_queue_db_spec(cfg));
	assert_string_equal(sc_queue_db_spec(cfg), "pgsql:host=127.0.0.1 port=5 dbname=a");
	sc_config_free(cfg);
	cfg = NULL;
	assert_int_equal(sc_config_parse(without, sizeof without - 1, "t.conf", &cfg, err,
					 sizeof err), SC_OK);
	assert_null(sc_queue_db_spec(cfg));
	sc_config_free(cfg);
}

/* sc_queue_open_ex(): NULL spec = the directory form (same files, same calls);
 * a spec that is not pgsql: is a configuration error naming it. */
static void test_open_ex(void **state)
{
	struct sc_submission s, g;
	sc_queue *q = NULL;
	sc_cert *c = NULL;
	char err[512] = "", p[1200];

	assert_int_equal(sc_queue_open_ex(g_state, "lmdb:/x", &q, err, sizeof err),
			 SC_ERR_CONFIG);
	assert_null(q);
	assert_non_null(strstr(err, "lmdb:/x"));
	assert_int_equal(sc_queue_open_ex(NULL, NULL, &q, err, sizeof err), SC_ERR_ARG);
	assert_int_equal(sc_queue_open_ex(g_state, NULL, NULL, err, sizeof err), SC_ERR_ARG);
	assert_int_equal(sc_queue_open_ex(g_state, NULL, &q, err, sizeof err), SC_OK);
	assert_string_equal(err, "");
	/* the node name only matters to a shared queue; long, non-UTF-8: harmless */
	sc_queue_set_node(q, "mx1.example.test\xff\xfe and a very long tail .................."
			     "................................................................."
			     "................................................................."
			     "................................................................");
	sc_queue_set_node(q, NULL);
	assert_int_equal(sc_queue_add(q, g_cert, &g_alice, "alice", "192.0.2.1:1", &s), SC_OK);
	path_of(p, sizeof p, "pending", s.id);
	assert_int_equal(access(p, F_OK), 0);
	assert_int_equal(sc_queue_get(q, s.id, &g, &c), SC_OK);
	assert_string_equal(g.fingerprint, s.fingerprint);
	assert_int_equal(sc_cert_count(c), 2);
	sc_cert_free(c);
	assert_int_equal(sc_queue_decide(q, s.id, 1, NULL, "auto"), SC_OK);
	assert_int_equal(sc_queue_decide(q, s.id, 0, "late", "admin:x"), SC_ERR_EXISTS);
	path_of(p, sizeof p, "accepted", s.id);
	assert_int_equal(access(p, F_OK), 0);
	sc_queue_close(q);
	sc_queue_close(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_add_get, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_ids_unique_and_random, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_list_oldest_first, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_decide, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_ids, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_corrupted_entries, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_write_errors, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_tmp_cleanup, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_encode_refusals, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_decide, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_list_bound, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_text_fields_sanitised, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_root_gives_files_to_owner, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_db_spec, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_open_ex, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
