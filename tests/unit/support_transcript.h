/* A reusable transcript runner for protocol session tests.
 *
 * A transcript file holds one line per item:
 *   "C: text"  bytes the client sends, text + CRLF
 *   "C- text"  bytes the client sends, without a CRLF appended
 *   "S: text"  a line the server sends, text + CRLF
 *   "S- text"  server bytes without a CRLF appended
 *   "E: text"  an event line the peer under test must report (compared as
 *              text, in order; the peer decides what it reports)
 *   "@word ..." a directive for the peer (config, callback behaviour)
 *   "# ..." and empty lines are comments.
 * Escapes in C/S text: \r \n \t \0 \\ \xHH, and \*N:c for N copies of c.
 *
 * The runner feeds the input side to a peer (through a small vtable) whole,
 * one byte at a time, and split at every position, collects everything the
 * peer writes, and compares it byte for byte with the expected output, the
 * reported events, and whether the peer wants the connection closed. */
#ifndef LSMTP_TEST_SUPPORT_TRANSCRIPT_H
#define LSMTP_TEST_SUPPORT_TRANSCRIPT_H

#include <stddef.h>

#include "internal.h"

#define TRANSCRIPT_MAX_DIRECTIVES 64

typedef struct transcript {
  char name[256];
  lsmtp__buf input;  /* what the peer under test reads */
  lsmtp__buf output; /* what it must write */
  lsmtp__buf events; /* expected "E:" lines, each ending in "\n" */
  char *directives[TRANSCRIPT_MAX_DIRECTIVES]; /* "@" lines without the "@" */
  size_t ndirectives;
  int expect_close; /* the "@close" directive */
} transcript;

/* Load a transcript. input_is_client: the peer under test is a server (C:
 * lines are its input); 0 swaps the roles for client tests. Returns 0 on
 * success, -1 (with a message on stderr) otherwise. */
int transcript_load(transcript *t, const char *path, int input_is_client);
/* Parse transcript text held in memory (same format). */
int transcript_parse(transcript *t, const char *name, const char *text,
                     size_t len, int input_is_client);
void transcript_free(transcript *t);

/* Find the first directive at index >= from whose first word is word (e.g.
 * "lmtp"). Returns the text after the word and its space ("" when none), or
 * NULL when there is no such directive; *next (may be NULL) gets the index
 * to pass as from to find the next one. */
const char *transcript_directive(const transcript *t, const char *word,
                                 size_t from, size_t *next);

/* The peer under test. */
typedef struct transcript_peer_ops {
  /* Create a peer for t (ctx is the runner's caller context); NULL fails. */
  void *(*create)(const transcript *t, void *ctx);
  /* Feed bytes; set *consumed. Returns the session's status. */
  int (*feed)(void *peer, const char *data, size_t len, size_t *consumed);
  /* Something outside the session blocks it (a deferred decision, a pause):
   * resolve one such thing. Returns 1 when it did, 0 when nothing blocks. */
  int (*unblock)(void *peer);
  /* Append everything the peer wants to write to out and mark it written. */
  void (*drain)(void *peer, lsmtp__buf *out);
  /* Non-zero when the peer wants the connection closed. */
  int (*closed)(void *peer);
  /* Append the events the peer reported ("text\n" each) to out. */
  void (*events)(void *peer, lsmtp__buf *out);
  void (*destroy)(void *peer);
} transcript_peer_ops;

/* Run once, feeding the input in pieces that end at the given cut offsets
 * (ascending, each < input length). Returns 0 when output, events and close
 * state match; otherwise prints what differed and returns -1. */
int transcript_run_cuts(const transcript *t, const transcript_peer_ops *ops,
                        void *ctx, const size_t *cuts, size_t ncuts,
                        const char *how);

/* Whole, byte by byte, and split at every position. Returns 0 or -1. */
int transcript_run_all(const transcript *t, const transcript_peer_ops *ops,
                       void *ctx);

/* Append data to out with the escapes above (printable ASCII kept). */
void transcript_escape(lsmtp__buf *out, const char *data, size_t len);

#endif
