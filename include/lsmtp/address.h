/* The RFC 5321 address grammar (§4.1.2, §4.1.3) and the ESMTP parameters
 * of MAIL and RCPT. Nothing is allocated: results point into the input. */
#ifndef LSMTP_ADDRESS_H
#define LSMTP_ADDRESS_H

#include <stddef.h>
#include <stdint.h>
#include <lsmtp/export.h>

LSMTP_BEGIN_DECLS

/* RFC 5321 §4.5.3.1 size limits. */
#define LSMTP_MAX_LOCAL_PART 64
#define LSMTP_MAX_DOMAIN 255
#define LSMTP_MAX_PATH 256 /* including the angle brackets */

/* Flags for the parsers below. */
#define LSMTP_ADDR_SMTPUTF8 0x1u    /* RFC 6531: UTF-8 local parts, U-labels */
#define LSMTP_ADDR_LENIENT_SPACE 0x2u /* accept "FROM: <a@b>" (space) */
#define LSMTP_ADDR_LENIENT_BRACKETS 0x4u /* accept a path without <> */

/** What kind of domain a path carries. */
typedef enum lsmtp_domain_kind {
  LSMTP_DOMAIN_NONE = 0, /* null path or <postmaster> */
  LSMTP_DOMAIN_NAME,     /* LDH labels (or U-labels under SMTPUTF8) */
  LSMTP_DOMAIN_IPV4,     /* [192.0.2.1] */
  LSMTP_DOMAIN_IPV6,     /* [IPv6:2001:db8::1] */
  LSMTP_DOMAIN_GENERAL   /* [tag:content], RFC 5321 General-address-literal */
} lsmtp_domain_kind;

/** A parsed reverse- or forward-path. All pointers point into the input. */
typedef struct lsmtp_path {
  const char *mailbox; /* "local@domain" without brackets or source route */
  size_t mailbox_len;  /* 0 for the null path <> */
  const char *local;   /* the local part as written (quoted form kept) */
  size_t local_len;
  const char *domain; /* domain, or the literal including its brackets */
  size_t domain_len;
  lsmtp_domain_kind domain_kind;
  unsigned char is_null;       /* "<>" */
  unsigned char is_postmaster; /* "<postmaster>" with no domain (RCPT only) */
  unsigned char is_quoted;     /* local part is a quoted-string */
  unsigned char has_utf8;      /* non-ASCII bytes present (SMTPUTF8) */
  unsigned char had_route;     /* a source route was present and dropped */
} lsmtp_path;

/** Parse a path "<...>" at the start of s. *used gets the bytes consumed.
 *  On failure *out is zeroed and *used is 0. On success empty slices (the
 *  null path, postmaster's domain) point into the input, never NULL. The
 *  64-octet local-part limit counts the local part as written (quotes and
 *  backslashes included); LSMTP_ERR_TOO_LONG also covers a label over 63
 *  octets. Syntax and UTF-8 errors are reported before length errors.
 *  allow_null: accept "<>" (reverse-path); allow_postmaster: accept
 *  "<postmaster>" (forward-path). Returns LSMTP_OK, LSMTP_ERR_SYNTAX,
 *  LSMTP_ERR_TOO_LONG (local part > 64, domain > 255, path > 256) or
 *  LSMTP_ERR_UTF8 (non-ASCII without LSMTP_ADDR_SMTPUTF8, or bad UTF-8). */
LSMTP_API int lsmtp_path_parse(const char *s, size_t len, unsigned flags,
                               int allow_null, int allow_postmaster,
                               lsmtp_path *out, size_t *used);

/** Validate a bare domain (EHLO argument, or a domain in a path): LDH labels
 *  of at most 63 octets, at most 255 in all; or an address literal.
 *  Returns LSMTP_OK, LSMTP_ERR_SYNTAX, LSMTP_ERR_TOO_LONG or LSMTP_ERR_UTF8.
 *  *kind (may be NULL) gets the kind. */
LSMTP_API int lsmtp_domain_check(const char *s, size_t len, unsigned flags,
                                 lsmtp_domain_kind *kind);

/** Write the unquoted form of a quoted local part (backslash escapes and
 *  the surrounding quotes removed) into out; returns the length needed
 *  (snprintf-like). An unquoted local part is copied as is. */
LSMTP_API size_t lsmtp_local_unquote(const char *local, size_t len, char *out,
                                     size_t cap);

/** BODY= values (RFC 6152, RFC 3030). */
typedef enum lsmtp_body {
  LSMTP_BODY_NONE = 0, LSMTP_BODY_7BIT, LSMTP_BODY_8BITMIME,
  LSMTP_BODY_BINARYMIME
} lsmtp_body;

/** RET= values (RFC 3461). */
typedef enum lsmtp_dsn_ret {
  LSMTP_RET_NONE = 0, LSMTP_RET_FULL, LSMTP_RET_HDRS
} lsmtp_dsn_ret;

/** NOTIFY= bits (RFC 3461); NEVER excludes the others. */
#define LSMTP_NOTIFY_NEVER 0x1u
#define LSMTP_NOTIFY_SUCCESS 0x2u
#define LSMTP_NOTIFY_FAILURE 0x4u
#define LSMTP_NOTIFY_DELAY 0x8u

/** A slice of the input. xtext values are kept encoded; decode them with
 *  lsmtp_xtext_decode (lsmtp/base64.h). */
typedef struct lsmtp_slice {
  const char *ptr;
  size_t len;
} lsmtp_slice;

/** Parameters of MAIL FROM. has_* say which were present. */
typedef struct lsmtp_mail_params {
  unsigned char has_size, smtputf8, requiretls;
  uint64_t size;         /* SIZE= (RFC 1870) */
  lsmtp_body body;       /* BODY= */
  lsmtp_dsn_ret ret;     /* RET= */
  lsmtp_slice envid;     /* ENVID= xtext, ptr NULL when absent */
  lsmtp_slice auth;      /* AUTH= xtext (RFC 4954 §5), ptr NULL when absent */
} lsmtp_mail_params;

/** Parameters of RCPT TO. */
typedef struct lsmtp_rcpt_params {
  unsigned notify;         /* LSMTP_NOTIFY_* bits, 0 when absent */
  lsmtp_slice orcpt_type;  /* ORCPT= addr-type ("rfc822"), NULL when absent */
  lsmtp_slice orcpt_addr;  /* ORCPT= xtext address */
} lsmtp_rcpt_params;

/** Parse the argument of MAIL ("FROM:<path> [params]", as lsmtp_cmd.arg
 *  holds it; "FROM:" matched case-insensitively).
 *  Returns LSMTP_OK, path errors as lsmtp_path_parse, LSMTP_ERR_PARAM
 *  (unknown keyword or bad value: answer 555 5.5.4), LSMTP_ERR_DUP_PARAM
 *  (a keyword twice: 501 5.5.4), LSMTP_ERR_SYNTAX. */
LSMTP_API int lsmtp_mail_parse(const char *arg, size_t len, unsigned flags,
                               lsmtp_path *path, lsmtp_mail_params *params);

/** Parse the argument of RCPT ("TO:<path> [params]"). As lsmtp_mail_parse;
 *  "<postmaster>" is accepted, "<>" is not. */
LSMTP_API int lsmtp_rcpt_parse(const char *arg, size_t len, unsigned flags,
                               lsmtp_path *path, lsmtp_rcpt_params *params);

LSMTP_END_DECLS

#endif
