/*
 * transaction.c - the mail transaction's lifetime (see transaction.h). Owns
 * struct transaction, its recipient array, data reader and spool descriptor
 * until the descriptor passes to a delivery job. Daemon process, event loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deliver_job.h"
#include "session.h"
#include "transaction.h"

sc_status transaction_begin(struct session *s)
{
	struct transaction *tx;

	SC_ENSURE(!s->tx, SC_ERR_INTERNAL);
	tx = calloc(1, sizeof *tx);
	if (!tx)
		return SC_ERR_NOMEM;
	tx->spool_fd = -1;
	clock_gettime(CLOCK_MONOTONIC, &tx->t0);
	/* unique per daemon start: session ids are (epoch, serial) */
	snprintf(tx->id, sizeof tx->id, "%s.%lu", s->id, ++s->messages);
	s->tx = tx;
	return SC_OK;
}

static void transaction_drop(struct session *s)
{
	struct transaction *tx = s->tx;

	if (!tx)
		return;
	if (tx->job)
		deliver_job_detach(tx->job);
	if (tx->spool_fd >= 0)
		close(tx->spool_fd);
	free(tx->data);
	free(tx->rcpt);
	free(tx);
	s->tx = NULL;
}

void transaction_reset(struct session *s)
{
	transaction_drop(s);
}

void transaction_free(struct session *s)
{
	transaction_drop(s);
}

sc_status transaction_add_rcpt(struct transaction *tx, const char *key)
{
	struct tx_rcpt *r;
	const char *why = NULL;

	for (size_t i = 0; i < tx->nrcpt; i++)
		if (strcmp(tx->rcpt[i].key, key) == 0)
			return SC_ERR_EXISTS;
	if (tx->nrcpt == tx->cap) {
		size_t cap = tx->cap ? 2 * tx->cap : 4;
		struct tx_rcpt *v = realloc(tx->rcpt, cap * sizeof *v);

		if (!v)
			return SC_ERR_NOMEM;
		tx->rcpt = v;
		tx->cap = cap;
	}
	r = &tx->rcpt[tx->nrcpt];
	memset(r, 0, sizeof *r);
	snprintf(r->key, sizeof r->key, "%s", key);
	/* the canonical form is what the Maildir path and the log use: mail
	 * for Alice@Example.TEST lands where alice@example.test's does */
	SC_TRY(sc_addr_parse(key, strlen(key), SC_ADDR_UTF8, &r->addr, &why));
	tx->nrcpt++;
	return SC_OK;
}
