/*
 * writer_proto.h - the messages between smtpcertd's network process and its
 * writer process (daemon/writer.c): typed, versioned, length-checked, in the
 * manner of OpenSMTPD's imsg. Pure encoding and decoding, no I/O: both processes
 * link it, and the unit tests and fuzz/writerproto_fuzz.c drive it directly.
 *
 * A message is one SOCK_SEQPACKET datagram (so a bad message never desynchronises
 * the stream): a 16-octet header, then the payload.
 *
 *   0  magic   "SCWP"            4 octets
 *   4  version WP_VERSION        u16, big-endian
 *   6  type    enum wp_type      u16
 *   8  seq     request number    u32 (a reply repeats its request's)
 *  12  length  payload octets    u32, at most WP_PAYLOAD_MAX, = datagram - 16
 *
 * Payload fields follow each other in a fixed order per type; every field is
 * an integer (u32/u64 big-endian) or a string/blob as u32 length + octets.
 * Strings carry no NUL and are bounded by their destination; a payload must be
 * consumed exactly (trailing octets are an error). Decoding never trusts a
 * length: each one is checked against what is left and against the field's cap.
 *
 *   SUBMIT   chain (concatenated DER, leaf first), address, auth_user, client
 *            -> R_SUB (the new pending entry) or R_ERR
 *   STORE    id (32 hex digits of a pending submission; the writer stores the
 *            certificate IT holds for that id into the first repository and
 *            records the decision "auto")       -> R_SUB (accepted) or R_ERR
 *   R_ERR    status (sc_status), message
 */
#ifndef SMTPCERTD_WRITER_PROTO_H
#define SMTPCERTD_WRITER_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <smtpcert/smtpcert.h>

#define WP_MAGIC "SCWP"
#define WP_VERSION 1
#define WP_HDR_LEN 16
/** Largest payload: eight certificates of a CERC upload in DER fit easily (the
 *  default submission_max_size is 64 KiB of PEM), and one datagram this size
 *  fits the default Unix socket buffer. */
#define WP_PAYLOAD_MAX (128 * 1024)
#define WP_MSG_MAX (WP_HDR_LEN + WP_PAYLOAD_MAX)
/** Longest R_ERR message. */
#define WP_ERRMSG_MAX 256

enum wp_type {
	WP_SUBMIT = 1,
	WP_STORE = 2,
	WP_R_SUB = 0x81,
	WP_R_ERR = 0xff,
};

/** A decoded header; @c payload points into the caller's buffer. */
struct wp_msg {
	unsigned version;
	unsigned type;
	uint32_t seq;
	const uint8_t *payload;
	size_t len;
};

struct wp_submit {
	const uint8_t *chain;            /**< into the message buffer */
	size_t chain_len;
	char address[SC_ADDR_KEY_MAX];
	char auth_user[SC_ADDR_KEY_MAX];
	char client[64];
};

/**
 * Check the header of the datagram @p buf (@p n octets as received).
 * @return SC_OK with *@p m filled; SC_ERR_SYNTAX (short, bad magic, length not
 *         matching the datagram), SC_ERR_TOO_LONG (over WP_MSG_MAX),
 *         SC_ERR_UNSUPPORTED (another version; *@p m still holds type and seq so
 *         an error reply can name them).
 */
SC_MUST_CHECK sc_status wp_header_decode(const uint8_t *buf, size_t n, struct wp_msg *m);

/* Encoders: write one whole message into @p buf (capacity @p cap); *@p len gets
 * its size. @return SC_OK or SC_ERR_TOO_LONG (does not fit, or a field over its
 * cap), SC_ERR_ARG (a string with a NUL inside cannot happen with C strings, but
 * a NULL one can). */
SC_MUST_CHECK sc_status wp_encode_submit(uint8_t *buf, size_t cap, uint32_t seq,
					 const struct wp_submit *s, size_t *len);
SC_MUST_CHECK sc_status wp_encode_store(uint8_t *buf, size_t cap, uint32_t seq, const char *id,
					size_t *len);
SC_MUST_CHECK sc_status wp_encode_sub(uint8_t *buf, size_t cap, uint32_t seq,
				      const struct sc_submission *sub, size_t *len);
SC_MUST_CHECK sc_status wp_encode_err(uint8_t *buf, size_t cap, uint32_t seq, sc_status st,
				      const char *msg, size_t *len);

/* Decoders of a message whose header wp_header_decode() accepted. @return
 * SC_OK; SC_ERR_PROTOCOL for the wrong type; SC_ERR_SYNTAX for a truncated
 * payload, trailing octets, a NUL in a string or a value out of range;
 * SC_ERR_TOO_LONG for a field over its cap. */
SC_MUST_CHECK sc_status wp_decode_submit(const struct wp_msg *m, struct wp_submit *s);
SC_MUST_CHECK sc_status wp_decode_store(const struct wp_msg *m, char id[SC_QUEUE_ID_LEN + 1]);
SC_MUST_CHECK sc_status wp_decode_sub(const struct wp_msg *m, struct sc_submission *sub);
SC_MUST_CHECK sc_status wp_decode_err(const struct wp_msg *m, sc_status *st, char *msg,
				      size_t size);

#endif
