/*
 * ask_secret.c - cli_ask_secret(): read a passphrase or PIN from the
 * controlling terminal with echo off, for the verbs whose standard input is
 * the message (sign; decrypt could use it too). Runs in the user's process;
 * the terminal's settings are restored before returning, and also when a
 * signal ends the program while it waits.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"

static int ask_fd = -1;
static struct termios ask_saved;

static void ask_restore_and_die(int sig)
{
	tcsetattr(ask_fd, TCSAFLUSH, &ask_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* One line, bounded; a longer one is drained and refused. @return its length
 * or -1. */
static long ask_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	int too_long = 0;
	char ch;

	for (;;) {
		ssize_t r = read(fd, &ch, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || ch == '\n')
			break;
		if (n + 1 >= size)
			too_long = 1;
		else
			buf[n++] = ch;
	}
	if (n && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	if (too_long) {
		explicit_bzero(buf, size);
		return -1;
	}
	return (long)n;
}

int cli_ask_secret(const char *prompt, char *buf, size_t size)
{
	struct sigaction sa, old_int, old_term, old_quit;
	struct termios t;
	long n = -1;
	int fd;

	if (size < 2)
		return -1;
	buf[0] = '\0';
	fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -1;
	if (tcgetattr(fd, &ask_saved) != 0) {
		close(fd);
		return -1;
	}
	ask_fd = fd;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = ask_restore_and_die;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGQUIT, &sa, &old_quit);
	t = ask_saved;
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
	/* echo off before the prompt appears: typing that follows the prompt is
	 * neither shown nor flushed */
	if (tcsetattr(fd, TCSAFLUSH, &t) == 0 && write(fd, prompt, strlen(prompt)) >= 0) {
		n = ask_line(fd, buf, size);
		tcsetattr(fd, TCSAFLUSH, &ask_saved);
		/* the Enter was not echoed; a lost newline is only cosmetic */
		if (write(fd, "\n", 1) < 0)
			n = n < 0 ? -1 : n;
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	ask_fd = -1;
	close(fd);
	return n < 0 ? -1 : 0;
}
