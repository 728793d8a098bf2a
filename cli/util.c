/*
 * util.c - small helpers shared by the smtpcert verbs (runs in the user's process).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_split_server(const char *s, char *host, size_t hsize, char *port, size_t psize)
{
	const char *colon, *end;
	size_t hlen;
	char *e;
	long p;

	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end)
			return -1;
		hlen = (size_t)(end - s - 1);
		s++;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] && !colon)
			return -1;
	} else {
		colon = strchr(s, ':');
		if (colon && strchr(colon + 1, ':'))
			colon = NULL; /* bare IPv6 */
		hlen = colon ? (size_t)(colon - s) : strlen(s);
	}
	if (hlen == 0 || hlen >= hsize)
		return -1;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (!colon) {
		snprintf(port, psize, "25");
		return 0;
	}
	p = strtol(colon + 1, &e, 10);
	if (e == colon + 1 || *e || p < 1 || p > 65535 || colon[1] == '+' || colon[1] == '-')
		return -1;
	snprintf(port, psize, "%ld", p);
	return 0;
}


int cli_exit_data(sc_status st)
{
	if (st == SC_OK)
		return CLI_OK;
	if (st == SC_ERR_IO || st == SC_ERR_NOMEM || st == SC_ERR_INTERNAL)
		return CLI_FAILURE;
	return CLI_DATA;
}

int cli_bad_option(const char *verb, char **argv)
{
	/* getopt_long has just stepped past the offending word */
	cli_err(verb, "unknown or incomplete option '%s' (try --help)", argv[optind - 1]);
	return CLI_USAGE;
}

int cli_no_operands(const char *verb, int argc, char **argv)
{
	if (optind == argc)
		return CLI_OK;
	cli_err(verb, "unexpected argument '%s' (try --help)", argv[optind]);
	return CLI_USAGE;
}
