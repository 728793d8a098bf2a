/*
 * p11uri_fuzz.c - the RFC 7512 pkcs11: URI parser (lib/key_p11uri.c) on arbitrary
 * bytes: it must answer SC_OK, SC_ERR_SYNTAX or SC_ERR_TOO_LONG with a NUL-terminated
 * message, never crash, and a parsed URI must hold NUL-terminated, bounded text
 * values and an id within its buffer. The display form must never show the query.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <smtpcert/smtpcert.h>
#include "key_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct key_p11_uri u;
	char *text, err[256], shown[128];
	sc_status st;

	if (size > 2 * KEY_P11_URI_MAX)
		return 0;
	text = malloc(size + 8);
	if (!text)
		return 0;
	/* Half the inputs get the scheme for free, so the fuzzer reaches the body. */
	if (size && (data[0] & 1)) {
		memcpy(text, "pkcs11:", 7);
		memcpy(text + 7, data + 1, size - 1);
		text[size + 6] = '\0';
	} else {
		memcpy(text, data, size);
		text[size] = '\0';
	}
	err[0] = '\0';
	st = key_p11_uri_parse(text, &u, err, sizeof err);
	if (st != SC_OK && st != SC_ERR_SYNTAX && st != SC_ERR_TOO_LONG)
		__builtin_trap();
	if (!memchr(err, '\0', sizeof err))
		__builtin_trap();
	if (st == SC_OK) {
		const char *vals[] = { u.token, u.manufacturer, u.serial, u.model, u.object,
				       u.type, u.module_path, u.pin_value, u.pin_source };

		for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
			if (strlen(vals[i]) >= KEY_P11_PATH_MAX)
				__builtin_trap();
		if (u.id_len > sizeof u.id || (u.has_type && strcmp(u.type, "private")))
			__builtin_trap();
	}
	key_p11_uri_display(text, shown, sizeof shown);
	if (strchr(shown, '?'))
		__builtin_trap();
	free(text);
	return 0;
}
