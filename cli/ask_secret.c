/*
 * ask_secret.c - the one place the smtpcert verbs ask for a secret (passphrase,
 * PIN, password) on the controlling terminal, with echo off: cli_ask_secret()
 * for a single question, cli_tty_* for a dialogue (keygen says a note and asks
 * twice). Standard input is often the message, so the terminal is /dev/tty.
 * Runs in the user's process; the terminal's settings are restored before
 * returning, and also when a signal ends the program while it waits.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"

/* The terminal state to put back if a signal ends a question early. */
static int ask_fd = -1;
static struct termios ask_saved;

static void ask_restore_and_die(int sig)
{
	tcsetattr(ask_fd, TCSAFLUSH, &ask_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* One line, bounded; a longer one is drained (so the next question starts
 * clean) and refused. @return its length, or -1 (read error, too long). */
static long ask_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	char ch;

	buf[0] = '\0';
	for (;;) {
		ssize_t r = read(fd, &ch, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0 || ch == '\n')
			break;
		if (n + 1 >= size) {
			explicit_bzero(buf, size);
			while (read(fd, &ch, 1) == 1 && ch != '\n')
				;
			return -1;
		}
		buf[n++] = ch;
	}
	if (n && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return (long)n;
}

int cli_tty_open(struct cli_tty *t)
{
	t->fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (t->fd < 0)
		return -1;
	if (tcgetattr(t->fd, &ask_saved) != 0) {
		close(t->fd);
		t->fd = -1;
		return -1;
	}
	return 0;
}

void cli_tty_close(struct cli_tty *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

void cli_tty_say(struct cli_tty *t, const char *s)
{
	if (write(t->fd, s, strlen(s)) < 0) {
		/* nothing better to do: the question that follows still asks */
	}
}

long cli_tty_ask(struct cli_tty *tty, const char *prompt, char *buf, size_t size)
{
	struct sigaction sa, old_int, old_term, old_quit;
	struct termios t = ask_saved;
	int fd = tty->fd;
	long n = -1;

	if (size < 2)
		return -1;
	buf[0] = '\0';
	ask_fd = fd;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = ask_restore_and_die;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGQUIT, &sa, &old_quit);
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
	/* Echo off before the prompt shows: an answer typed (or pasted) the moment
	 * the prompt appears must neither be echoed nor flushed away. */
	if (tcsetattr(fd, TCSAFLUSH, &t) == 0) {
		if (write(fd, prompt, strlen(prompt)) >= 0)
			n = ask_line(fd, buf, size);
		/* TCSANOW: a second answer typed ahead (keygen asks twice) stays */
		tcsetattr(fd, TCSANOW, &ask_saved);
		/* the Enter was not echoed; a lost newline is only cosmetic */
		cli_tty_say(tty, "\n");
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	ask_fd = -1;
	return n;
}

int cli_ask_secret(const char *prompt, char *buf, size_t size)
{
	struct cli_tty t;
	long n;

	if (size)
		buf[0] = '\0';
	if (cli_tty_open(&t) != 0)
		return -1;
	n = cli_tty_ask(&t, prompt, buf, size);
	cli_tty_close(&t);
	return n < 0 ? -1 : 0;
}
