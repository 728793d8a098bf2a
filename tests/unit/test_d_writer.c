/*
 * test_d_writer.c - daemon/writer_serve.c: the writer process's side of the
 * protocol, run in a forked child on a socketpair with the test fixture's
 * configuration (tests/unit/test_d_fixture.h). What a compromised network
 * process could send: a valid SUBMIT is queued (the entry is on disk, the
 * answer carries its metadata); the writer's own policy check refuses a revoked
 * certificate and a foreign address; garbage, a wrong magic, another version,
 * an unknown type, a truncated or oversized datagram and a malformed payload
 * each get an R_ERR naming the request's seq, and the writer keeps serving;
 * STORE is refused unless the configuration (re-read per request) says auto,
 * then stores the certificate the writer queued and records the decision once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "test_d_fixture.h"
#include "seccomp_filter.h"
#include "writer.h"
#include "writer_proto.h"

static struct dfix fix;
static int sock = -1;
static pid_t child;
static uint8_t msg[WP_MSG_MAX + 256], ans[WP_MSG_MAX];

static int start(void **state)
{
	int sv[2], big = 4 * WP_MSG_MAX;
	struct timeval tv = { 30, 0 };

	(void)state;
	dfix_setup(&fix, "submissions = review\n", 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	(void)setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		close(sv[0]);
		writer_serve(&sv[1], 1, fix.conf);
		_exit(0);
	}
	close(sv[1]);
	sock = sv[0];
	(void)setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	/* the writer says it is ready (filter installed) before anything else */
	{
		char err[256];

		assert_int_equal(seccomp_child_wait(sock, "writer", err, sizeof err), SC_OK);
	}
	return 0;
}

static int stop(void **state)
{
	int status = 0;

	(void)state;
	close(sock);
	/* EOF ends the writer's loop with status 0 */
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	dfix_teardown(&fix);
	return 0;
}

/* Send @p n octets of msg, read the answer and decode its header. */
static void call(size_t n, struct wp_msg *m)
{
	ssize_t got;

	assert_int_equal(send(sock, msg, n, 0), (ssize_t)n);
	got = recv(sock, ans, sizeof ans, 0);
	assert_true(got > 0);
	assert_int_equal(wp_header_decode(ans, (size_t)got, m), SC_OK);
}

/* Expect an R_ERR with @p want status (SC_OK: any) for request @p seq;
 * @return its message (static). */
static const char *expect_err(size_t n, uint32_t seq, sc_status want)
{
	static char text[WP_ERRMSG_MAX];
	struct wp_msg m;
	sc_status st;

	call(n, &m);
	assert_int_equal(m.type, WP_R_ERR);
	assert_int_equal(m.seq, seq);
	assert_int_equal(wp_decode_err(&m, &st, text, sizeof text), SC_OK);
	if (want != SC_OK)
		assert_int_equal(st, want);
	assert_true(text[0] != '\0');
	return text;
}

static size_t submit_msg(uint32_t seq, const char *address, int with_ca)
{
	static uint8_t chain[8192];
	struct wp_submit s;
	size_t len;

	memset(&s, 0, sizeof s);
	assert_true(fix.alice_len + fix.ca_len <= sizeof chain);
	memcpy(chain, fix.alice_der, fix.alice_len);
	if (with_ca)
		memcpy(chain + fix.alice_len, fix.ca_der, fix.ca_len);
	s.chain = chain;
	s.chain_len = fix.alice_len + (with_ca ? fix.ca_len : 0);
	snprintf(s.address, sizeof s.address, "%s", address);
	snprintf(s.auth_user, sizeof s.auth_user, "alice@example.test");
	snprintf(s.client, sizeof s.client, "192.0.2.9:1234");
	assert_int_equal(wp_encode_submit(msg, sizeof msg, seq, &s, &len), SC_OK);
	return len;
}

static void test_submit_then_store(void **state)
{
	struct sc_submission sub, acc;
	struct wp_msg m;
	char path[800], conf[4096];
	struct stat st;
	FILE *f;
	size_t len, n;

	(void)state;
	call(submit_msg(11, "Alice@Example.TEST", 1), &m);
	assert_int_equal(m.type, WP_R_SUB);
	assert_int_equal(m.seq, 11);
	assert_int_equal(wp_decode_sub(&m, &sub), SC_OK);
	assert_int_equal(sub.state, SC_SUB_PENDING);
	assert_string_equal(sub.address, "alice@example.test");
	assert_string_equal(sub.auth_user, "alice@example.test");
	assert_string_equal(sub.client, "192.0.2.9:1234");
	snprintf(path, sizeof path, "%s/submissions/pending/%s", fix.dir, sub.id);
	assert_int_equal(stat(path, &st), 0);

	/* review mode: no STORE */
	assert_int_equal(wp_encode_store(msg, sizeof msg, 12, sub.id, &len), SC_OK);
	expect_err(len, 12, SC_ERR_PERM);
	assert_int_equal(stat(path, &st), 0);

	/* the writer re-reads the configuration: switched to auto, it stores */
	snprintf(path, sizeof path, "%s", fix.conf);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(conf, 1, sizeof conf - 1, f);
	fclose(f);
	conf[n] = '\0';
	assert_non_null(strstr(conf, "submissions = review\n"));
	memcpy(strstr(conf, "submissions = review\n"), "submissions = auto  \n", 21);
	tc_write_file(path, conf, n);
	assert_int_equal(wp_encode_store(msg, sizeof msg, 13, sub.id, &len), SC_OK);
	call(len, &m);
	assert_int_equal(m.type, WP_R_SUB);
	assert_int_equal(m.seq, 13);
	assert_int_equal(wp_decode_sub(&m, &acc), SC_OK);
	assert_string_equal(acc.id, sub.id);
	assert_int_equal(acc.state, SC_SUB_ACCEPTED);
	assert_true(acc.decided > 0);
	snprintf(path, sizeof path, "%s/submissions/accepted/%s", fix.dir, sub.id);
	assert_int_equal(stat(path, &st), 0);
	/* decided once only */
	assert_int_equal(wp_encode_store(msg, sizeof msg, 14, sub.id, &len), SC_OK);
	expect_err(len, 14, SC_ERR_EXISTS);
	/* an id the queue never issued */
	assert_int_equal(wp_encode_store(msg, sizeof msg, 15, "00000000000000000000000000000000",
					 &len), SC_OK);
	expect_err(len, 15, SC_ERR_NOT_FOUND);
}

static void test_policy_again(void **state)
{
	(void)state;
	/* alice's certificate for another address, and for a foreign domain: the
	 * writer's own policy check refuses what a lying network process sends */
	assert_non_null(strstr(expect_err(submit_msg(21, "bob@example.test", 1), 21,
					  SC_ERR_POLICY), "policy: "));
	expect_err(submit_msg(22, "mallory@other.test", 1), 22, SC_ERR_POLICY);
}

static void test_malformed(void **state)
{
	struct wp_msg m;
	size_t len = submit_msg(31, "alice@example.test", 0);
	const char *text;

	(void)state;
	/* not a certificate */
	memcpy(msg + WP_HDR_LEN + 4, "garbage", 7);
	text = expect_err(len, 31, SC_OK);
	assert_ptr_equal(strstr(text, "certificate: "), text);
	/* another version: the answer still names seq 32 */
	len = submit_msg(32, "alice@example.test", 0);
	msg[5] = 9;
	expect_err(len, 32, SC_ERR_UNSUPPORTED);
	/* unknown type */
	len = submit_msg(33, "alice@example.test", 0);
	msg[7] = 0x42;
	expect_err(len, 33, SC_ERR_UNSUPPORTED);
	/* an answer type sent as a request */
	len = submit_msg(34, "alice@example.test", 0);
	msg[6] = 0;
	msg[7] = WP_R_SUB;
	expect_err(len, 34, SC_ERR_UNSUPPORTED);
	/* truncated payload (header length no longer matches) */
	len = submit_msg(35, "alice@example.test", 0);
	expect_err(len - 3, 35, SC_ERR_SYNTAX);
	/* a payload length field past the end, with a matching header */
	len = submit_msg(36, "alice@example.test", 0);
	msg[WP_HDR_LEN] = 0x7f;
	expect_err(len, 36, SC_ERR_SYNTAX);
	/* no magic at all, and a datagram shorter than a header */
	memset(msg, 'x', 64);
	expect_err(64, 0, SC_ERR_SYNTAX);
	expect_err(3, 0, SC_ERR_SYNTAX);
	/* over the largest message: refused, the seq still answered */
	len = submit_msg(37, "alice@example.test", 0);
	expect_err(WP_MSG_MAX + 100, 37, SC_ERR_TOO_LONG);
	/* and the writer still serves */
	call(submit_msg(38, "alice@example.test", 0), &m);
	assert_int_equal(m.type, WP_R_SUB);
	assert_int_equal(m.seq, 38);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_submit_then_store),
		cmocka_unit_test(test_policy_again),
		cmocka_unit_test(test_malformed),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, start, stop);
}
