/*
 * send_header.c - `smtpcert send`: the message header. Parses the header block
 * of the spooled message (sc_mime_header_parse(), at most SC_MIME_HEADER_MAX
 * octets in memory; the body is copied in chunks), takes the recipients from
 * To, Cc and Bcc for -t, removes Bcc (RFC 5322 3.6.3: Bcc recipients must not
 * be disclosed to the others), and adds Date, Message-ID and From when missing
 * (RFC 5322 3.6: Date and From are required; RFC 6409 8 lets a submission agent
 * add them and Message-ID). Also the command-line recipients. Runs in the user's
 * process.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "send.h"

#define COPY_CHUNK (64 * 1024)

void send_hostname(char *buf, size_t size)
{
	char h[SC_DOMAIN_MAX + 1] = "";

	if (gethostname(h, sizeof h - 1) != 0 || !h[0] ||
	    sc_domain_check(h, strlen(h), 0) != SC_OK)
		snprintf(h, sizeof h, "localhost");
	snprintf(buf, size, "%s", h);
}

/* Add @p a unless it is already a recipient. */
static int rcpt_add(struct send_ctx *c, const struct sc_addr *a)
{
	struct send_rcpt *r;

	for (size_t i = 0; i < c->nrcpt; i++)
		if (sc_addr_equal(&c->rcpt[i].addr, a))
			return EX_OK;
	if (c->nrcpt >= SEND_RCPT_MAX) {
		cli_err(SEND_VERB, "more than %d recipients", SEND_RCPT_MAX);
		return EX_USAGE;
	}
	if (!c->rcpt && !(c->rcpt = calloc(SEND_RCPT_MAX, sizeof *c->rcpt))) {
		cli_err(SEND_VERB, "out of memory");
		return EX_OSERR;
	}
	r = &c->rcpt[c->nrcpt];
	memset(r, 0, sizeof *r);
	r->addr = *a;
	r->rc = SEND_PENDING;
	if (a->flags & SC_ADDR_IS_LITERAL || sc_addr_format(a, r->text, sizeof r->text) != SC_OK) {
		cli_err(SEND_VERB, "recipient %s@%s: address literals are not supported", a->local,
			a->domain);
		return EX_USAGE;
	}
	c->nrcpt++;
	return EX_OK;
}

/* The mailboxes of an address list into the recipients, or with @p visible
 * into the list of addresses the header shows (To, Cc). */
static int add_list(struct send_ctx *c, const char *value, size_t len, const char *what,
		    int usage_rc, int visible)
{
	struct sc_addr *tmp = calloc(SEND_RCPT_MAX, sizeof *tmp);
	size_t n = 0;
	sc_status st;
	int rc = EX_OK;

	if (!tmp) {
		cli_err(SEND_VERB, "out of memory");
		return EX_OSERR;
	}
	st = sc_mime_addresses(value, len, tmp, SEND_RCPT_MAX, &n);
	if (visible) {
		/* an unparsable list shows nobody for sure: its recipients count as
		 * hidden, which only costs them a copy of their own */
		for (size_t i = 0; st == SC_OK && i < n && c->nvisible < SEND_RCPT_MAX; i++) {
			if (!c->visible && !(c->visible = calloc(SEND_RCPT_MAX, sizeof *c->visible)))
				break;
			c->visible[c->nvisible++] = tmp[i];
		}
		free(tmp);
		return EX_OK;
	}
	if (st != SC_OK) {
		cli_err(SEND_VERB, "%s '%.*s': %s", what, (int)(len > 200 ? 200 : len), value,
			st == SC_ERR_TOO_MANY ? "too many addresses" : "not a valid address list");
		rc = usage_rc;
	}
	for (size_t i = 0; i < n && rc == EX_OK; i++)
		rc = rcpt_add(c, &tmp[i]);
	free(tmp);
	return rc;
}

int send_add_rcpt_arg(struct send_ctx *c, const char *arg)
{
	char q[SC_ADDR_KEY_MAX + 8];

	/* sendmail(8) takes a local user name: qualify it with the sender's domain
	 * (Postfix's append_at_myorigin does the same). */
	if (arg[0] && !strpbrk(arg, "@<,:;\"")) {
		if (!c->domain[0]) {
			cli_err(SEND_VERB, "recipient '%s' has no domain and there is no sender "
				"address to take one from (-f or `from` in the config)", arg);
			return EX_USAGE;
		}
		if ((size_t)snprintf(q, sizeof q, "%s@%s", arg, c->domain) >= sizeof q) {
			cli_err(SEND_VERB, "recipient '%s': too long", arg);
			return EX_USAGE;
		}
		arg = q;
	}
	return add_list(c, arg, strlen(arg), "recipient", EX_USAGE, 0);
}

void send_mark_hidden(struct send_ctx *c)
{
	for (size_t i = 0; i < c->nrcpt; i++) {
		struct send_rcpt *r = &c->rcpt[i];

		r->hidden = 1;
		for (size_t j = 0; j < c->nvisible && r->hidden; j++)
			if (sc_addr_equal(&r->addr, &c->visible[j]))
				r->hidden = 0;
	}
}

/* ---- header fields ----------------------------------------------------------------- */

/* The addresses of every @p name field (To, Cc, Bcc) into the recipients, or
 * into the visible list. */
static int extract_field(struct send_ctx *c, const sc_mime_header *h, const char *name,
			 int visible)
{
	const struct sc_mime_field *f;
	int rc = EX_OK;

	for (size_t nth = 0; rc == EX_OK && (f = sc_mime_header_find(h, name, nth)); nth++) {
		char *v = malloc(f->value_len + 1);

		if (!v) {
			cli_err(SEND_VERB, "out of memory");
			return EX_OSERR;
		}
		if (sc_mime_unfold(f, v, f->value_len + 1) != SC_OK) {
			free(v);
			return EX_DATAERR;
		}
		rc = add_list(c, v, strlen(v), name, EX_DATAERR, visible);
		free(v);
	}
	return rc;
}

/* The first address of the From field, for the envelope when none was given. */
static void from_of_header(struct send_ctx *c, const sc_mime_header *h)
{
	const struct sc_mime_field *f = h ? sc_mime_header_find(h, "From", 0) : NULL;
	struct sc_addr a[4];
	char v[2048];
	size_t n = 0;

	if (!f || sc_mime_unfold(f, v, sizeof v) != SC_OK ||
	    sc_mime_addresses(v, strlen(v), a, 4, &n) != SC_OK || n == 0)
		return;
	if (sc_addr_format(&a[0], c->env_from, sizeof c->env_from) != SC_OK)
		c->env_from[0] = '\0';
}

/* Envelope sender and the address for an added From: -f, the config's `from`,
 * the message's From, else login@hostname. "-f '<>'" is the null reverse-path
 * (RFC 5321 4.5.5), as sendmail takes it. */
static int choose_sender(struct send_ctx *c, const sc_mime_header *h)
{
	const char *given = c->o.from ? c->o.from : c->uc.from;
	char host[SC_DOMAIN_MAX + 1], q[SC_ADDR_KEY_MAX + 8];
	struct sc_addr a;
	int null_sender = 0;

	if (given && given[0] && strcmp(given, "<>") && !strchr(given, '@')) {
		/* "-f root", as sendmail takes it: a local user at this host */
		send_hostname(host, sizeof host);
		snprintf(q, sizeof q, "%s@%s", given, host);
		given = q;
	}
	if (given) {
		size_t len = strlen(given);

		if (len >= 2 && given[0] == '<' && given[len - 1] == '>') {
			given++;
			len -= 2;
		}
		null_sender = len == 0;
		if (!null_sender && (sc_addr_parse(given, len, SC_ADDR_UTF8, &a, NULL) != SC_OK ||
				     sc_addr_format(&a, c->env_from, sizeof c->env_from) != SC_OK)) {
			cli_err(SEND_VERB, "sender '%s' (%s) is not a mail address", given,
				c->o.from ? "-f" : "`from` in the config");
			return EX_USAGE;
		}
	}
	if (!c->env_from[0])
		from_of_header(c, h);
	if (!c->env_from[0]) {
		struct passwd *pw = getpwuid(getuid());

		send_hostname(host, sizeof host);
		snprintf(c->env_from, sizeof c->env_from, "%s@%s", pw ? pw->pw_name : "nobody",
			 host);
	}
	snprintf(c->from_hdr, sizeof c->from_hdr, "%s", c->env_from);
	if (sc_addr_parse(c->env_from, strlen(c->env_from), SC_ADDR_UTF8, &a, NULL) == SC_OK)
		snprintf(c->domain, sizeof c->domain, "%s", a.domain);
	if (null_sender)
		c->env_from[0] = '\0';
	return EX_OK;
}

/* ---- writing the new message ---------------------------------------------------------- */

struct out {
	int fd;
	int failed;
};

static void out_write(struct out *w, const char *p, size_t len)
{
	while (len && !w->failed) {
		ssize_t r = write(w->fd, p, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			w->failed = errno ? errno : EIO;
			return;
		}
		p += r;
		len -= (size_t)r;
	}
}

static void out_str(struct out *w, const char *s)
{
	out_write(w, s, strlen(s));
}

/* RFC 5322 3.3 date-time in local time with its numeric zone. */
static void add_date(struct out *w, const char *eol)
{
	char buf[80];
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(buf, sizeof buf, "Date: %a, %d %b %Y %H:%M:%S %z", &tm);
	out_str(w, buf);
	out_str(w, eol);
}

/* RFC 5322 3.6.4: unique: 128 random bits, then the sender's domain. */
static void add_message_id(struct out *w, const char *domain, const char *eol)
{
	unsigned char rnd[16];
	char buf[64 + SC_DOMAIN_MAX], hex[33], host[SC_DOMAIN_MAX + 1];

	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
		/* never in practice; time and pid still make it unique enough */
		unsigned long long t = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 32);

		memcpy(rnd, &t, sizeof t);
		memcpy(rnd + 8, &t, sizeof t);
	}
	for (size_t i = 0; i < sizeof rnd; i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	if (!domain[0]) {
		send_hostname(host, sizeof host);
		domain = host;
	}
	snprintf(buf, sizeof buf, "Message-ID: <%s@%s>", hex, domain);
	out_str(w, buf);
	out_str(w, eol);
}

/* From: "Full Name" <addr>, the name only when it is printable ASCII. */
static void add_from(struct out *w, const struct send_ctx *c, const char *eol)
{
	const char *name = c->o.fullname;
	int ok = name && name[0];

	for (const char *p = name; ok && *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			ok = 0;
	out_str(w, "From: ");
	if (ok) {
		out_str(w, "\"");
		for (const char *p = name; *p; p++) {
			/* RFC 5322 3.2.4 quoted-string: quote '"' and '\' */
			if (*p == '"' || *p == '\\')
				out_write(w, "\\", 1);
			out_write(w, p, 1);
		}
		out_str(w, "\" <");
		out_str(w, c->from_hdr);
		out_str(w, ">");
	} else {
		out_str(w, c->from_hdr);
	}
	out_str(w, eol);
}

/* Copy @p in from @p off to its end into @p w. */
static int copy_rest(struct out *w, int in, uint64_t off, uint64_t size)
{
	char *buf = malloc(COPY_CHUNK);

	if (!buf)
		return -1;
	while (off < size && !w->failed) {
		size_t want = size - off > COPY_CHUNK ? COPY_CHUNK : (size_t)(size - off);
		ssize_t r = pread(in, buf, want, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(buf);
			return -1;
		}
		out_write(w, buf, (size_t)r);
		off += (uint64_t)r;
	}
	free(buf);
	return w->failed ? -1 : 0;
}

static int write_message(struct send_ctx *c, const sc_mime_header *h, uint64_t body_off)
{
	const struct sc_mime_field *f0 = h ? sc_mime_header_field(h, 0) : NULL;
	const char *eol = "\n";
	struct out w = { send_tmpfile(), 0 };
	off_t end;

	if (w.fd < 0) {
		cli_err(SEND_VERB, "cannot create a temporary file: %s", strerror(errno));
		return EX_CANTCREAT;
	}
	/* Keep the message's own line ends for what we add. */
	if (f0 && f0->raw_len >= 2 && f0->raw[f0->raw_len - 2] == '\r')
		eol = "\r\n";
	for (size_t i = 0; h && i < sc_mime_header_count(h); i++) {
		const struct sc_mime_field *f = sc_mime_header_field(h, i);

		if (f->name_len == 3 && !strncasecmp(f->name, "Bcc", 3))
			continue;
		out_write(&w, f->raw, f->raw_len);
		if (!f->raw_len || f->raw[f->raw_len - 1] != '\n')
			out_str(&w, eol);
	}
	if (!h || !sc_mime_header_find(h, "Date", 0))
		add_date(&w, eol);
	if (!h || !sc_mime_header_find(h, "Message-ID", 0))
		add_message_id(&w, c->domain, eol);
	if (!h || !sc_mime_header_find(h, "From", 0))
		add_from(&w, c, eol);
	out_str(&w, eol);
	if (copy_rest(&w, c->fd, body_off, c->size) != 0 || w.failed) {
		cli_err(SEND_VERB, "writing the temporary file: %s",
			strerror(w.failed ? w.failed : errno));
		close(w.fd);
		return EX_IOERR;
	}
	end = lseek(w.fd, 0, SEEK_END);
	if (end < 0) {
		close(w.fd);
		return EX_IOERR;
	}
	close(c->fd);
	c->fd = w.fd;
	c->size = (uint64_t)end;
	return EX_OK;
}

/* Where the header starts: after an mbox "From " separator line, which
 * sendmail(8) also drops. */
static size_t skip_mbox_line(const char *buf, size_t len)
{
	const char *nl;

	if (len < 5 || memcmp(buf, "From ", 5))
		return 0;
	nl = memchr(buf, '\n', len);
	return nl ? (size_t)(nl - buf) + 1 : 0;
}

/* A first line without a colon is no header field: the input has no header. */
static int headerless(const char *p, size_t len)
{
	const char *nl = memchr(p, '\n', len);

	return !memchr(p, ':', nl ? (size_t)(nl - p) : len);
}

int send_prepare(struct send_ctx *c)
{
	size_t hlen = c->size > SC_MIME_HEADER_MAX ? SC_MIME_HEADER_MAX : (size_t)c->size;
	char *buf = calloc(hlen + 1, 1);
	sc_mime_header *h = NULL;
	size_t consumed = 0, skip;
	ssize_t r;
	sc_status st;
	int rc = EX_OK;

	if (!buf) {
		cli_err(SEND_VERB, "out of memory");
		return EX_OSERR;
	}
	r = hlen ? pread(c->fd, buf, hlen, 0) : 0;
	if (r < 0 || (size_t)r != hlen) {
		cli_err(SEND_VERB, "reading the temporary file: %s", strerror(errno));
		free(buf);
		return EX_IOERR;
	}
	skip = skip_mbox_line(buf, hlen);
	st = sc_mime_header_parse(buf + skip, hlen - skip, c->size <= SC_MIME_HEADER_MAX, &h,
				  &consumed);
	if (st == SC_ERR_SYNTAX && headerless(buf + skip, hlen - skip)) {
		/* No header at all ("echo hi | sendmail bob"): the whole input is the
		 * body; the fields we add make it a message. */
		h = NULL;
		consumed = 0;
		st = SC_OK;
	}
	if (st != SC_OK) {
		cli_err(SEND_VERB, "the message header is not acceptable: %s",
			st == SC_AGAIN || st == SC_ERR_TOO_LONG
				? "too long (at most 256 KiB, lines at most 998 octets)"
				: st == SC_ERR_TOO_MANY ? "too many fields"
							: "malformed (RFC 5322 2.2)");
		free(buf);
		return EX_DATAERR;
	}
	rc = choose_sender(c, h);
	if (rc == EX_OK && c->o.extract) {
		static const char *const fields[] = { "To", "Cc", "Bcc" };

		for (size_t i = 0; i < 3 && rc == EX_OK; i++)
			rc = h ? extract_field(c, h, fields[i], 0) : EX_OK;
	}
	/* Who the header shows: the others must not be named in the copy these
	 * get, not even as an encryption recipient (send_crypt.c). */
	if (rc == EX_OK && h)
		rc = extract_field(c, h, "To", 1);
	if (rc == EX_OK && h)
		rc = extract_field(c, h, "Cc", 1);
	if (rc == EX_OK)
		rc = write_message(c, h, skip + consumed);
	sc_mime_header_free(h);
	free(buf);
	return rc;
}
