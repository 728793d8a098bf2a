/*
 * session_fuzz.c - fuzz target for smtpcertd's command path: arbitrary bytes go
 * through the same line reader (daemon/input.c) into a session (state machine,
 * command table, argument and address parsing, CERT/CERS/CERC, replies), as
 * bytes read from a client would. A few bytes at the front choose how the input
 * is cut into reads, so pipelined and fragmented arrivals are both exercised.
 *
 * The target links the daemon's modules (smtpcertd_core); the ones on this path
 * are socket- and libevent-free by design. The runtime is loaded once from a config
 * in a temporary directory with an empty dir: repository.
 *
 * Invariants checked: the queued output is always whole CRLF-terminated reply
 * lines of at most 512 octets starting with a 3-digit code, and never more than
 * SESSION_OUT_MAX bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <ftw.h>
#include <unistd.h>

#include "log.h"
#include "reply.h"
#include "runtime.h"
#include "session.h"
#include "commands.h"
#include "input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct runtime *fuzz_rt;
static char fuzz_dir[] = "/tmp/session_fuzz.XXXXXX";

static int fuzz_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* The state directory (queue, notices) lives as long as the process. */
static void fuzz_cleanup(void)
{
	nftw(fuzz_dir, fuzz_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static void fuzz_setup(void)
{
	char *dir = fuzz_dir, path[256], conf[256], err[512];
	FILE *f;

	log_init(LOG_SINK_NONE, 0);
	if (!mkdtemp(dir))
		abort();
	atexit(fuzz_cleanup);
	snprintf(path, sizeof path, "%s/repo", dir);
	if (mkdir(path, 0700) != 0)
		abort();
	snprintf(conf, sizeof conf, "%s/smtpcertd.conf", dir);
	f = fopen(conf, "w");
	if (!f)
		abort();
	fprintf(f, "hostname = mx.fuzz\nlisten = 127.0.0.1:25\ndomains = example.test\n"
		   "gateway_domains = gw.test\nrepository = dir:%s\nstate_dir = %s\n"
		   "max_errors = 1000\nsubmissions = review\n", path, dir);
	fclose(f);
	if (runtime_load(conf, NULL, &fuzz_rt, err, sizeof err) != SC_OK) {
		fprintf(stderr, "session_fuzz: %s\n", err);
		abort();
	}
	runtime_set_current(fuzz_rt);
}

/* Every queued byte belongs to a well-formed reply line. */
static void fuzz_check_output(struct session *s)
{
	const char *p = s->out ? sc_buf_data(s->out) : NULL;
	size_t n = session_out_len(s);

	if (n > SESSION_OUT_MAX)
		abort();
	while (n > 0) {
		const char *eol = memchr(p, '\n', n);
		size_t len;

		if (!eol)
			abort();
		len = (size_t)(eol - p) + 1;
		if (len < 6 || len > SESSION_LINE_MAX || eol[-1] != '\r' || p[0] < '2' ||
		    p[0] > '5' || (p[3] != ' ' && p[3] != '-') || memchr(p, '\r', len - 2))
			abort();
		p += len;
		n -= len;
	}
	if (s->out)
		sc_buf_clear(s->out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct session s;
	struct input_state st = { 0 };
	sc_buf *in = NULL;
	size_t chunk, off = 0;

	if (!fuzz_rt)
		fuzz_setup();
	/* first byte: read size (1..256 bytes); the rest: the client's bytes */
	chunk = size ? (size_t)data[0] + 1 : 1;
	if (size) {
		data++;
		size--;
	}
	memset(&s, 0, sizeof s);
	session_init(&s, fuzz_rt, "192.0.2.1:1", "fuzz");
	session_greet(&s);
	if (sc_buf_new(4096, &in) != SC_OK)
		abort();
	while (off < size && (s.state == SESSION_CONNECTED || s.state == SESSION_READY)) {
		size_t n = size - off < chunk ? size - off : chunk;

		if (n > sc_buf_room(in))
			n = sc_buf_room(in);
		if (n == 0)
			abort(); /* the reader must always make room */
		if (sc_buf_append(in, data + off, n) != SC_OK)
			abort();
		off += n;
		(void)input_process(&s, in, &st);
		fuzz_check_output(&s);
		/* after STARTTLS nothing else may be executed in plaintext */
		if (s.state == SESSION_STARTTLS && sc_buf_len(in) != 0)
			abort();
		if (s.state == SESSION_STARTTLS)
			session_tls_done(&s);
	}
	sc_buf_free(in);
	session_fini(&s);
	return 0;
}
