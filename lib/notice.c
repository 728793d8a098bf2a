/*
 * notice.c - the RFC 5322 messages about submissions: the postmaster notice of
 * each CERC submission (the proposal: the server MUST notify the postmaster) and
 * the optional decision notice to the submitter (notify_submitter). Pure
 * formatting into a caller's buffer; delivery is lib/maildir.c. Runs in the daemon
 * (postmaster notices) and in `smtpcert admin` (decision notices).
 *
 * Every value that reaches a header came from a peer or a certificate at some
 * point, so header text is reduced to printable ASCII (CR and LF never pass: no
 * header injection) and non-ASCII text is carried in RFC 2047 encoded-words. The
 * body is text/plain UTF-8 with 8bit transfer encoding; its values have control
 * octets and invalid UTF-8 replaced.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "smtpcert/smtpcert.h"
#include "utf8.h"

struct out {
	char *buf;
	size_t size, off;
	int full;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->full || n >= o->size - o->off) {
		o->full = 1;
		return;
	}
	memcpy(o->buf + o->off, s, n);
	o->off += n;
	o->buf[o->off] = '\0';
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct out *o, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof tmp)
		o->full = 1;
	else
		put(o, tmp, (size_t)n);
}

/* Header-safe ASCII: printable octets only (RFC 5322 2.2: no CR, LF, controls). */
static void put_hdr_ascii(struct out *o, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		put(o, c >= 0x20 && c < 0x7f ? (const char *)&c : "?", 1);
	}
}

/* Body text: valid UTF-8 without control octets; anything else becomes '?'. */
static void put_textn(struct out *o, const char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		size_t n = sc_utf8_seq((const unsigned char *)s + i, len - i);
		unsigned char c = (unsigned char)s[i];

		if (n == 0 || (n == 1 && (c < 0x20 || c == 0x7f))) {
			put(o, "?", 1);
			i++;
			continue;
		}
		put(o, s + i, n);
		i += n;
	}
}

static void put_text(struct out *o, const char *s)
{
	put_textn(o, s, strlen(s));
}

static int is_ascii_print(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

static void put_b64(struct out *o, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i += 3) {
		char q[5];
		size_t len;

		if (sc_base64_encode(p + i, n - i < 3 ? n - i : 3, q, sizeof q, &len) == SC_OK)
			put(o, q, len);
	}
}

/*
 * An unstructured header value (Subject): as is when printable ASCII, else as RFC
 * 2047 "B" encoded-words of whole UTF-8 characters, at most 45 octets each so an
 * encoded-word stays within 75 characters (RFC 2047 section 2), folded with CRLF SP.
 */
static void put_hdr_text(struct out *o, const char *s)
{
	char clean[1024];
	struct out c = { clean, sizeof clean, 0, 0 };
	size_t len, i = 0;

	if (is_ascii_print(s)) {
		puts_(o, s);
		return;
	}
	clean[0] = '\0';
	put_text(&c, s);
	len = c.off;
	while (i < len) {
		size_t chunk = 0;

		while (i + chunk < len) {
			size_t n = sc_utf8_seq((const unsigned char *)clean + i + chunk,
					       len - i - chunk);

			if (n == 0 || chunk + n > 45)
				break;
			chunk += n;
		}
		if (chunk == 0)
			break;
		if (i)
			puts_(o, "\r\n ");
		puts_(o, "=?utf-8?B?");
		put_b64(o, (const unsigned char *)clean + i, chunk);
		puts_(o, "?=");
		i += chunk;
	}
}

/* RFC 5322 3.3 date-time, always in UTC, English names whatever the locale. */
static void put_date(struct out *o, int64_t t)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char mons[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm)) {
		o->full = 1;
		return;
	}
	putf(o, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
	     mons[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void put_iso(struct out *o, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char b[32];

	if (gmtime_r(&tt, &tm) && strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm))
		puts_(o, b);
	else
		putf(o, "@%lld", (long long)t);
}

/* A shell word: as is when only safe characters, else single-quoted. */
static void put_shell(struct out *o, const char *s)
{
	const char *safe = "@%+=:,./_-";
	int plain = *s != '\0';

	for (const char *p = s; *p && plain; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr(safe, *p)))
			plain = 0;
	if (plain) {
		put_text(o, s);
		return;
	}
	put(o, "'", 1);
	for (const char *p = s;;) {
		size_t n = strcspn(p, "'");

		put_textn(o, p, n);
		if (!p[n])
			break;
		puts_(o, "'\\''");
		p += n + 1;
	}
	put(o, "'", 1);
}

static const char *const state_words[] = { "pending review", "accepted", "rejected" };

static const char *state_word(enum sc_submission_state st)
{
	return (unsigned)st < 3 ? state_words[st] : "unknown";
}

/* The headers every notice shares, up to and including the empty line. */
static void put_headers(struct out *o, const struct sc_submission *s, int64_t when,
			const char *hostname, const char *to, const char *reply_to,
			const char *subject)
{
	puts_(o, "Date: ");
	put_date(o, when);
	/* RFC 5322 3.6.4: unique id; the submission id and the time make it so. */
	puts_(o, "\r\nMessage-ID: <");
	put_hdr_ascii(o, s->id);
	putf(o, ".%lld@", (long long)when);
	put_hdr_ascii(o, hostname);
	puts_(o, ">\r\nFrom: \"smtpcertd\" <MAILER-DAEMON@");
	put_hdr_ascii(o, hostname);
	puts_(o, ">\r\nTo: <");
	put_hdr_ascii(o, to);
	puts_(o, ">\r\n");
	if (reply_to) {
		puts_(o, "Reply-To: <");
		put_hdr_ascii(o, reply_to);
		puts_(o, ">\r\n");
	}
	puts_(o, "Subject: ");
	put_hdr_text(o, subject);
	/* RFC 3834 section 5: no auto-replies to a machine-generated message. */
	puts_(o, "\r\nAuto-Submitted: auto-generated\r\n"
		 "MIME-Version: 1.0\r\n"
		 "Content-Type: text/plain; charset=utf-8\r\n"
		 "Content-Transfer-Encoding: 8bit\r\n\r\n");
}

static void field(struct out *o, const char *name, const char *value)
{
	putf(o, "  %-15s ", name);
	put_text(o, value[0] ? value : "(none)");
	puts_(o, "\r\n");
}

static void time_field(struct out *o, const char *name, int64_t t)
{
	putf(o, "  %-15s ", name);
	put_iso(o, t);
	puts_(o, "\r\n");
}

static void command(struct out *o, const char *config_path, const char *verb, const char *arg,
		    const char *tail)
{
	puts_(o, "    smtpcert admin -c ");
	put_shell(o, config_path);
	putf(o, " %s ", verb);
	put_shell(o, arg);
	puts_(o, tail);
	puts_(o, "\r\n");
}

static sc_status finish(struct out *o, size_t *len)
{
	if (o->full)
		return SC_ERR_TOO_LONG;
	if (len)
		*len = o->off;
	return SC_OK;
}

sc_status sc_notice_format(const struct sc_submission *s, const char *hostname,
			   const char *postmaster, const char *config_path, char *out,
			   size_t size, size_t *len)
{
	struct out o = { out, size, 0, 0 };
	int auto_ok = s && s->state == SC_SUB_ACCEPTED;
	char subject[SC_ADDR_KEY_MAX + 64];

	SC_ENSURE_ARG(s && hostname && postmaster && config_path && out);
	SC_ENSURE(size > 0, SC_ERR_TOO_LONG);
	out[0] = '\0';
	snprintf(subject, sizeof subject, "Certificate submission for %s (%s)", s->address,
		 auto_ok ? "accepted automatically" : "pending review");
	put_headers(&o, s, auto_ok && s->decided ? s->decided : s->received, hostname,
		    postmaster, NULL, subject);
	puts_(&o, "A certificate was submitted with CERC for ");
	put_text(&o, s->address);
	puts_(&o, auto_ok ? ".\r\nIt met the acceptance policy and was accepted automatically "
			    "(submissions = auto):\r\nCERT and CERS serve it now.\r\n\r\n"
			  : ".\r\nIt waits for your review; nothing is served until you accept "
			    "it.\r\n\r\n");
	field(&o, "Submission:", s->id);
	field(&o, "State:", auto_ok ? "accepted automatically" : state_word(s->state));
	field(&o, "Address:", s->address);
	field(&o, "Fingerprint:", s->fingerprint);
	puts_(&o, "                  (SHA-256 of the certificate)\r\n");
	field(&o, "Subject:", s->subject);
	field(&o, "Issuer:", s->issuer);
	time_field(&o, "Valid from:", s->not_before);
	time_field(&o, "Valid until:", s->not_after);
	time_field(&o, "Received:", s->received);
	field(&o, "Client:", s->client);
	field(&o, "Authenticated:", s->auth_user);
	puts_(&o, "\r\nTo see the certificate and the policy verdict:\r\n");
	command(&o, config_path, "show", s->id, "");
	if (auto_ok) {
		char tail[80];

		snprintf(tail, sizeof tail, " --fingerprint %.64s", s->fingerprint);
		puts_(&o, "To withdraw it:\r\n");
		command(&o, config_path, "remove", s->address, tail);
	} else {
		puts_(&o, "To accept it (it is then served by CERT and CERS):\r\n");
		command(&o, config_path, "accept", s->id, "");
		puts_(&o, "To reject it:\r\n");
		command(&o, config_path, "reject", s->id, " --reason \"...\"");
	}
	puts_(&o, "\r\n-- \r\nsmtpcertd on ");
	put_text(&o, hostname);
	puts_(&o, "\r\n");
	return finish(&o, len);
}

sc_status sc_notice_format_decision(const struct sc_submission *s, const char *hostname,
				    const char *postmaster, char *out, size_t size, size_t *len)
{
	struct out o = { out, size, 0, 0 };
	char subject[SC_ADDR_KEY_MAX + 64];
	int ok;

	SC_ENSURE_ARG(s && hostname && postmaster && out);
	SC_ENSURE(s->state == SC_SUB_ACCEPTED || s->state == SC_SUB_REJECTED, SC_ERR_ARG);
	SC_ENSURE(size > 0, SC_ERR_TOO_LONG);
	out[0] = '\0';
	ok = s->state == SC_SUB_ACCEPTED;
	snprintf(subject, sizeof subject, "Your certificate for %s was %s", s->address,
		 ok ? "accepted" : "rejected");
	put_headers(&o, s, s->decided ? s->decided : s->received, hostname, s->address,
		    postmaster, subject);
	puts_(&o, "The certificate you submitted for ");
	put_text(&o, s->address);
	puts_(&o, ok ? " was accepted.\r\nSenders who ask this server for your certificate "
		       "(CERT, CERS) now get it.\r\n\r\n"
		     : " was rejected by the administrator.\r\nIt is not served.\r\n\r\n");
	field(&o, "Submission:", s->id);
	field(&o, "Fingerprint:", s->fingerprint);
	field(&o, "Subject:", s->subject);
	time_field(&o, "Received:", s->received);
	if (s->decided)
		time_field(&o, "Decided:", s->decided);
	if (!ok)
		field(&o, "Reason:", s->reason[0] ? s->reason : "(none given)");
	puts_(&o, "\r\nQuestions go to ");
	put_text(&o, postmaster);
	puts_(&o, ".\r\n");
	return finish(&o, len);
}
