/* The spool: a durable queue directory for a relay (or any host that must
 * keep a message until it has been passed on). One queued message is two
 * files, an envelope (reverse path, recipients with a state each, DSN
 * parameters, arrival time, attempt count, next attempt time) and the
 * message bytes. The layout and the order of the steps make a crash at any
 * point safe:
 *
 *   DIR/tmp/      files being written (emptied by lsmtp_spool_new)
 *   DIR/queue/    ID.msg (the message) and ID.env (the envelope); the
 *                 envelope is written last and removed first, so a message
 *                 is queued exactly when its ID.env exists
 *   DIR/corrupt/  envelopes that did not parse (and their messages), moved
 *                 aside for the operator, never deleted
 *
 * Enqueue streams the message into tmp/ (never held in memory), fsyncs it,
 * writes the envelope, renames both into queue/ and fsyncs queue/. Only
 * after lsmtp_spool_writer_commit returned LSMTP_OK may a receiver answer
 * 250. Updates write a new envelope into tmp/ and rename it over the old
 * one (atomic). docs/guide-relay.md describes the file format.
 *
 * Threading: a spool object belongs to one thread. The message file of an
 * entry may be read from another thread through the descriptor
 * lsmtp_spool_open_message returns. The library writes no log itself:
 * the log callback hears about files moved aside or removed at start. */
#ifndef LSMTP_SPOOL_H
#define LSMTP_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <lsmtp/address.h>
#include <lsmtp/alloc.h>
#include <lsmtp/export.h>

LSMTP_BEGIN_DECLS

/* Bounds. Longer values are refused (LSMTP_ERR_TOO_LONG), envelope files
 * beyond LSMTP_SPOOL_MAX_ENVELOPE are treated as corrupt. */
#define LSMTP_SPOOL_MAX_RCPTS 1000     /* recipients per message */
#define LSMTP_SPOOL_MAX_ADDRESS 512    /* octets of an address, ORCPT, ENVID */
#define LSMTP_SPOOL_MAX_TEXT 1024      /* octets of a reply text / remote */
#define LSMTP_SPOOL_MAX_ENVELOPE (16u * 1024u * 1024u) /* envelope file octets */
#define LSMTP_SPOOL_ID_MAX 64          /* a queue id, NUL included */

/* Flags for lsmtp_spool_new. */
#define LSMTP_SPOOL_NO_FSYNC 0x1u /* skip fsync: tests only; a crash may then
                                     lose acknowledged mail */

typedef struct lsmtp_spool lsmtp_spool;
typedef struct lsmtp_spool_writer lsmtp_spool_writer;
typedef struct lsmtp_spool_entry lsmtp_spool_entry;

/** Receives a line about the queue directory (NUL-terminated, no newline,
 *  valid during the call): a corrupt envelope moved aside, leftovers
 *  removed at start. */
typedef void (*lsmtp_spool_log_fn)(void *user_data, const char *message);

/** Open the queue directory dir, creating it and tmp/, queue/, corrupt/
 *  when missing (mode 0700), and recover from a crash: everything in tmp/
 *  is removed, and so is a queue/ID.msg without its ID.env (an enqueue
 *  that never completed, or a removal cut short). log (may be NULL) and
 *  log_data are kept for later calls. Only one process may use a
 *  directory at a time (not enforced). Returns LSMTP_OK,
 *  LSMTP_ERR_INVALID, LSMTP_ERR_NOMEM or LSMTP_ERR_STORAGE (errno says
 *  why). */
LSMTP_API int lsmtp_spool_new(lsmtp_spool **out, const lsmtp_allocator *alloc,
                              const char *dir, unsigned flags,
                              lsmtp_spool_log_fn log, void *log_data);

/** Close the directory; NULL does nothing. Writers and entries made from
 *  it must have been deleted first. */
LSMTP_API void lsmtp_spool_del(lsmtp_spool *sp);

/** The errno of the last LSMTP_ERR_STORAGE (0 when none) and the system
 *  call that failed ("write", "fsync", "rename"..., "" when none). */
LSMTP_API int lsmtp_spool_errno(const lsmtp_spool *sp);
LSMTP_API const char *lsmtp_spool_failed_op(const lsmtp_spool *sp);

/* ------------------------------------------------------------------------
 * Enqueue
 * ---------------------------------------------------------------------- */

/** Start a message. from: the reverse path without brackets ("" or NULL
 *  for <>); envid: the ENVID= xtext as received (NULL for none); ret:
 *  RET=; arrival_ms: when it arrived, milliseconds since 1970 (also the
 *  first attempt time). The id is chosen here. Returns LSMTP_OK,
 *  LSMTP_ERR_INVALID, LSMTP_ERR_TOO_LONG, LSMTP_ERR_NOMEM or
 *  LSMTP_ERR_STORAGE. */
LSMTP_API int lsmtp_spool_writer_new(lsmtp_spool_writer **out, lsmtp_spool *sp,
                                     const char *from, const char *envid,
                                     lsmtp_dsn_ret ret, uint64_t arrival_ms);

/** Add a recipient (address without brackets; orcpt the ORCPT= value as
 *  received, "rfc822;..." xtext, or NULL; notify LSMTP_NOTIFY_* bits).
 *  Returns LSMTP_OK, LSMTP_ERR_INVALID (empty address, a NUL or line
 *  break in a value), LSMTP_ERR_TOO_LONG, LSMTP_ERR_LIMIT (more than
 *  LSMTP_SPOOL_MAX_RCPTS) or LSMTP_ERR_NOMEM. */
LSMTP_API int lsmtp_spool_writer_add_rcpt(lsmtp_spool_writer *w,
                                          const char *address,
                                          const char *orcpt, unsigned notify);

/** Append message bytes (buffered, written in large blocks). Returns
 *  LSMTP_OK, LSMTP_ERR_STORAGE (the message is then abandoned: every
 *  later call fails, the tmp file is gone) or LSMTP_ERR_STATE. */
LSMTP_API int lsmtp_spool_writer_write(lsmtp_spool_writer *w, const void *data,
                                       size_t len);

/** Make the message durable and queued (see the top of this file). At
 *  least one recipient is needed. Returns LSMTP_OK (answer 250 now),
 *  LSMTP_ERR_STATE (no recipient, already committed or failed),
 *  LSMTP_ERR_NOMEM or LSMTP_ERR_STORAGE (nothing was queued). */
LSMTP_API int lsmtp_spool_writer_commit(lsmtp_spool_writer *w);

/** The queue id (letters, digits and "."; shorter than
 *  LSMTP_SPOOL_ID_MAX). Valid until lsmtp_spool_writer_del. */
LSMTP_API const char *lsmtp_spool_writer_id(const lsmtp_spool_writer *w);

/** Message bytes written so far. */
LSMTP_API uint64_t lsmtp_spool_writer_size(const lsmtp_spool_writer *w);

/** Free the writer, abandoning the message unless it was committed. NULL
 *  does nothing. */
LSMTP_API void lsmtp_spool_writer_del(lsmtp_spool_writer *w);

/* ------------------------------------------------------------------------
 * The queue
 * ---------------------------------------------------------------------- */

/** Called once per queued message by lsmtp_spool_scan. Return LSMTP_OK to
 *  go on; anything else stops the scan, which returns it. */
typedef int (*lsmtp_spool_scan_fn)(void *user_data, const char *id);

/** List the queued messages (queue/ID.env), in no particular order. The
 *  ids are collected first, so the callback may load, update or remove
 *  entries. Returns LSMTP_OK, what the callback returned, LSMTP_ERR_NOMEM
 *  or LSMTP_ERR_STORAGE. */
LSMTP_API int lsmtp_spool_scan(lsmtp_spool *sp, lsmtp_spool_scan_fn fn,
                               void *user_data);

/** Read the envelope of message id. A file that does not parse, breaks a
 *  bound, or whose message file is missing or of the wrong size is moved
 *  into corrupt/ (with its message), logged, and LSMTP_ERR_SYNTAX
 *  returned. Returns LSMTP_OK, LSMTP_ERR_SYNTAX, LSMTP_ERR_INVALID (not
 *  a queue id), LSMTP_ERR_NOMEM or LSMTP_ERR_STORAGE (e.g. ENOENT). */
LSMTP_API int lsmtp_spool_load(lsmtp_spool_entry **out, lsmtp_spool *sp,
                               const char *id);

/** Free an entry (the queue files stay). NULL does nothing. */
LSMTP_API void lsmtp_spool_entry_del(lsmtp_spool_entry *e);

/** What became of a recipient. */
typedef enum lsmtp_spool_state {
  LSMTP_SPOOL_PENDING = 0, /* still to deliver (maybe after a 4xx) */
  LSMTP_SPOOL_DELIVERED,   /* the next hop took it (2xx) */
  LSMTP_SPOOL_FAILED       /* permanent failure (reported to the sender) */
} lsmtp_spool_state;

/** A recipient as stored. Strings are NUL-terminated, "" when absent, and
 *  valid until the entry changes or is deleted. */
typedef struct lsmtp_spool_rcpt {
  const char *address;
  const char *orcpt;      /* ORCPT= as received, "" for none */
  unsigned notify;        /* LSMTP_NOTIFY_* bits, 0 when not given */
  lsmtp_spool_state state;
  int code;               /* the last reply code, 0 for none */
  const char *status;     /* the last enhanced status "4.4.1", "" for none */
  const char *text;       /* the last reply text or failure reason */
  const char *remote;     /* the host that answered last, "" for none */
} lsmtp_spool_rcpt;

/* Getters. Strings are owned by the entry. */
LSMTP_API const char *lsmtp_spool_entry_id(const lsmtp_spool_entry *e);
/** The reverse path, "" for <>. */
LSMTP_API const char *lsmtp_spool_entry_from(const lsmtp_spool_entry *e);
/** The ENVID= xtext, "" for none. */
LSMTP_API const char *lsmtp_spool_entry_envid(const lsmtp_spool_entry *e);
LSMTP_API lsmtp_dsn_ret lsmtp_spool_entry_ret(const lsmtp_spool_entry *e);
LSMTP_API uint64_t lsmtp_spool_entry_arrival(const lsmtp_spool_entry *e);
LSMTP_API unsigned lsmtp_spool_entry_attempts(const lsmtp_spool_entry *e);
/** When the next attempt is due, milliseconds since 1970. */
LSMTP_API uint64_t lsmtp_spool_entry_next_attempt(const lsmtp_spool_entry *e);
/** Octets of the message file. */
LSMTP_API uint64_t lsmtp_spool_entry_size(const lsmtp_spool_entry *e);
LSMTP_API size_t lsmtp_spool_entry_rcpt_count(const lsmtp_spool_entry *e);
/** Recipient i, or NULL when out of range. */
LSMTP_API const lsmtp_spool_rcpt *lsmtp_spool_entry_rcpt(
    const lsmtp_spool_entry *e, size_t i);
/** Recipients still LSMTP_SPOOL_PENDING. */
LSMTP_API size_t lsmtp_spool_entry_pending(const lsmtp_spool_entry *e);

/** Record what happened to recipient i (in memory; lsmtp_spool_update
 *  stores it). status, text and remote are copied (NULL for ""); line
 *  breaks and other control bytes in text become spaces. Returns LSMTP_OK,
 *  LSMTP_ERR_INVALID, LSMTP_ERR_TOO_LONG or LSMTP_ERR_NOMEM (the
 *  recipient is then unchanged). */
LSMTP_API int lsmtp_spool_entry_set_rcpt(lsmtp_spool_entry *e, size_t i,
                                         lsmtp_spool_state state, int code,
                                         const char *status, const char *text,
                                         const char *remote);

/** Record an attempt count and the next attempt time (in memory). */
LSMTP_API void lsmtp_spool_entry_set_schedule(lsmtp_spool_entry *e,
                                              unsigned attempts,
                                              uint64_t next_attempt_ms);

/** Store the entry's envelope atomically (new file, fsync, rename over the
 *  old one, fsync queue/). When no recipient is pending any more the
 *  message is removed instead (lsmtp_spool_remove) and LSMTP_DONE
 *  returned. Returns LSMTP_OK, LSMTP_DONE, LSMTP_ERR_NOMEM or
 *  LSMTP_ERR_STORAGE (the old envelope is still in place). */
LSMTP_API int lsmtp_spool_update(lsmtp_spool *sp, const lsmtp_spool_entry *e);

/** Remove message id from the queue (envelope first, then the message,
 *  then fsync queue/). Returns LSMTP_OK, LSMTP_ERR_INVALID or
 *  LSMTP_ERR_STORAGE (ENOENT when it was not queued). */
LSMTP_API int lsmtp_spool_remove(lsmtp_spool *sp, const char *id);

/** Open the entry's message file for reading (close-on-exec); the caller
 *  owns *fd. Returns LSMTP_OK or LSMTP_ERR_STORAGE. */
LSMTP_API int lsmtp_spool_open_message(lsmtp_spool *sp,
                                       const lsmtp_spool_entry *e, int *fd);

LSMTP_END_DECLS

#endif
