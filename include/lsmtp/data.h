/* The DATA stream (RFC 5321 §4.1.1.4, §4.5.2): a streaming decoder that
 * finds the end of data and removes dot-stuffing, and an encoder that adds
 * it. Neither ever holds the whole message: bytes are handed out as spans
 * that point into the input (or at small constant strings). */
#ifndef LSMTP_DATA_H
#define LSMTP_DATA_H

#include <stddef.h>
#include <stdint.h>
#include <lsmtp/alloc.h>
#include <lsmtp/export.h>

LSMTP_BEGIN_DECLS

/** Receives one span of output. Return 0 to go on, LSMTP_PAUSED (positive)
 *  to stop after this span (the call that emitted it returns LSMTP_PAUSED
 *  with *consumed up to where it stopped), or a negative status to abort. */
typedef int (*lsmtp_span_cb)(void *user_data, const char *data, size_t len);

/* Decoder flags. */
#define LSMTP_DATA_NORMALIZE_EOL 0x1u /* bare CR / LF become CRLF (opt-in) */

/* What the decoder saw; read them with lsmtp_data_decoder_seen(). */
#define LSMTP_DATA_SAW_BARE_LF 0x01u
#define LSMTP_DATA_SAW_BARE_CR 0x02u
#define LSMTP_DATA_SAW_NUL 0x04u
#define LSMTP_DATA_SAW_LONG_LINE 0x08u /* a line over max_line octets */
#define LSMTP_DATA_SAW_8BIT 0x10u
#define LSMTP_DATA_OVER_SIZE 0x20u /* more than max_size octets */

/** Default text line bound (RFC 5321 §4.5.3.1.6: 1000 including CRLF). */
#define LSMTP_DATA_DEFAULT_MAX_LINE 1000

typedef struct lsmtp_data_decoder lsmtp_data_decoder;

/** Create a decoder. max_line: line length that counts as too long
 *  (0 = LSMTP_DATA_DEFAULT_MAX_LINE; long lines are passed through intact
 *  and only flagged). max_size: message size above which output stops and
 *  LSMTP_DATA_OVER_SIZE is set while the input is still read to its end
 *  (0 = unbounded). */
LSMTP_API int lsmtp_data_decoder_new(lsmtp_data_decoder **out,
                                     const lsmtp_allocator *alloc,
                                     unsigned flags, size_t max_line,
                                     uint64_t max_size);

/** Destroy; NULL does nothing. */
LSMTP_API void lsmtp_data_decoder_del(lsmtp_data_decoder *d);

/** Reset for the next message (flags and bounds are kept). */
LSMTP_API void lsmtp_data_decoder_reset(lsmtp_data_decoder *d);

/** Decode input that follows the 354 reply. Message bytes (unstuffed, the
 *  final CRLF before "." included) go to emit. The end of data is only
 *  CRLF "." CRLF (the leading CRLF may be the one before the first line);
 *  a bare CR or LF never ends it. By default bare CR and LF are passed
 *  through and flagged (the host refuses the message); with
 *  LSMTP_DATA_NORMALIZE_EOL they become CRLF.
 *  A line starts only after a real CRLF, both for removing a leading dot
 *  and for finding the end, so "\n.\r\n" is content in either mode
 *  (normalising changes the output only); the SAW_BARE bits are set in
 *  both modes. Past max_size the output is cut at exactly max_size octets.
 *  Returns LSMTP_DONE when the end was found (*consumed counts the
 *  terminator; what follows is the next command; calling again returns
 *  LSMTP_DONE and consumes nothing until lsmtp_data_decoder_reset),
 *  LSMTP_INCOMPLETE when all input was used, LSMTP_PAUSED when emit asked
 *  to pause, or the negative status emit returned. */
LSMTP_API int lsmtp_data_decode(lsmtp_data_decoder *d, const char *in,
                                size_t len, size_t *consumed,
                                lsmtp_span_cb emit, void *user_data);

/** The LSMTP_DATA_SAW_* / OVER_SIZE bits for the current message. */
LSMTP_API unsigned lsmtp_data_decoder_seen(const lsmtp_data_decoder *d);

/** Octets of message decoded so far (after unstuffing), also past max_size. */
LSMTP_API uint64_t lsmtp_data_decoder_size(const lsmtp_data_decoder *d);

typedef struct lsmtp_data_encoder lsmtp_data_encoder;

/** Create an encoder: adds dot-stuffing, turns bare CR and LF into CRLF. */
LSMTP_API int lsmtp_data_encoder_new(lsmtp_data_encoder **out,
                                     const lsmtp_allocator *alloc);

/** Destroy; NULL does nothing. */
LSMTP_API void lsmtp_data_encoder_del(lsmtp_data_encoder *e);

/** Reset for the next message. */
LSMTP_API void lsmtp_data_encoder_reset(lsmtp_data_encoder *e);

/** Encode a chunk of message bytes; output spans go to emit. Chunks may
 *  split lines and CRLF pairs anywhere. Returns LSMTP_OK or emit's negative
 *  status. (Encoding never pauses midway: a span callback must accept
 *  all it is given.) */
LSMTP_API int lsmtp_data_encode(lsmtp_data_encoder *e, const char *in,
                                size_t len, lsmtp_span_cb emit,
                                void *user_data);

/** End the message: a final CRLF if the last line lacked one, then
 *  ".\r\n". Returns LSMTP_OK or emit's negative status. */
LSMTP_API int lsmtp_data_encode_finish(lsmtp_data_encoder *e,
                                       lsmtp_span_cb emit, void *user_data);

/** The LSMTP_DATA_SAW_* bits of what was encoded so far: 8BIT, NUL,
 *  LONG_LINE (over 1000 octets, the RFC 5321 limit), and BARE_CR/BARE_LF
 *  when bare line endings were turned into CRLF. Encode or finish after
 *  finish (without a reset) return LSMTP_ERR_STATE. */
LSMTP_API unsigned lsmtp_data_encoder_seen(const lsmtp_data_encoder *e);

LSMTP_END_DECLS

#endif
