/*
 * config_int.h - private to lib/config.c and lib/config_keys.c: the key tables of
 * smtpcertd.conf and of the smtpcert client's configuration file. config_keys.c owns the table (names, types, defaults, value
 * checks); config.c owns the file syntax and the parsed values. Not installed.
 */
#ifndef SMTPCERT_CONFIG_INT_H
#define SMTPCERT_CONFIG_INT_H

#include <stddef.h>

enum cfg_type {
	CFG_STR,  /* one string, checked by the key's check function */
	CFG_PATH, /* one file or directory name */
	CFG_LIST, /* values separated by commas and/or whitespace; repeats accumulate */
	CFG_INT,  /* decimal integer within [min, max] */
	CFG_BOOL, /* yes/no, true/false, on/off, 1/0 */
	CFG_ENUM  /* one of the '|'-separated choices */
};

enum cfg_flags {
	CFG_REQUIRED = 1u << 0, /* the file must set it (lists: at least one value) */
	CFG_SPLIT_SCHEME = 1u << 1 /* list items start at a repository scheme, so LDAP
				     * URLs and libpq conninfo may hold commas/spaces */
};

/*
 * Check (and possibly normalise in place, never lengthening) one scalar value or
 * one list item. @return NULL when valid, else a reason (static or written into
 * @p buf of @p size bytes).
 */
typedef const char *(*cfg_check_fn)(char *value, char *buf, size_t size);

struct cfg_key {
	const char *name;
	enum cfg_type type;
	const char *def;     /* default value as parsed text; NULL = none or computed */
	const char *def_doc; /* default as documented (computed defaults), or NULL */
	cfg_check_fn check;  /* NULL: any non-empty value */
	long long min, max;  /* CFG_INT range */
	const char *choices; /* CFG_ENUM, e.g. "off|review|auto" */
	unsigned flags;
	const char *help;
};

extern const struct cfg_key cfg_keys[];
extern const size_t cfg_nkeys;

/* The smtpcert client's file (~/.config/smtpcert/config, /etc/smtpcert/smtpcert.conf):
 * same syntax, its own keys. */
extern const struct cfg_key cfg_client_keys[];
extern const size_t cfg_client_nkeys;

/* @return the index of key @p name (@p len bytes) or -1. */
int cfg_key_index(const char *name, size_t len);

/* Schemes that may start a repository list item (CFG_SPLIT_SCHEME). */
int cfg_repo_scheme_len(const char *s, size_t len);

/* @return the text for a type, as in struct sc_config_keyinfo. */
const char *cfg_type_name(enum cfg_type t);

#endif
