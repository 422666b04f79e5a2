/* The path cases of test_address.c: each input with the status expected as
 * a reverse-path (MAIL: "<>" allowed) and as a forward-path (RCPT:
 * "<postmaster>" allowed), and for a success the slices and kind expected.
 * Every case is a whole path: trailing bytes make it a syntax error.
 * Sources: RFC 5321 §4.1.2/§4.1.3/§4.5.3.1, RFC 6531 §3.3, RFC 3696 §3
 * (and its errata: where it disagrees with the RFC 5321 grammar, the
 * grammar wins), RFC 3629 for UTF-8, and hostile inputs. */
#ifndef ADDRESS_CASES_H
#define ADDRESS_CASES_H

#include <lsmtp/address.h>
#include <lsmtp/status.h>

typedef struct address_case {
  const char *in;
  size_t len; /* cases may hold NUL bytes */
  unsigned flags;
  int st_mail; /* lsmtp_path_parse(allow_null=1, allow_postmaster=0), MAIL */
  int st_rcpt; /* lsmtp_path_parse(allow_null=0, allow_postmaster=1), RCPT */
  const char *local;  /* for a success: the slices as written */
  const char *domain;
  lsmtp_domain_kind kind;
  unsigned bits; /* B_QUOTED, B_ROUTE, B_UTF8 */
} address_case;

#define B_QUOTED 0x1u
#define B_ROUTE 0x2u
#define B_UTF8 0x4u

#define U8 LSMTP_ADDR_SMTPUTF8
#define BR LSMTP_ADDR_LENIENT_BRACKETS

#define OK LSMTP_OK
#define SYN LSMTP_ERR_SYNTAX
#define LONG LSMTP_ERR_TOO_LONG
#define UTF LSMTP_ERR_UTF8
#define NAME LSMTP_DOMAIN_NAME
#define IP4 LSMTP_DOMAIN_IPV4
#define IP6 LSMTP_DOMAIN_IPV6
#define GEN LSMTP_DOMAIN_GENERAL

/* A path valid in both roles. */
#define V(in, fl, local, domain, kind, bits) \
  {in, sizeof(in) - 1, fl, OK, OK, local, domain, kind, bits}
/* A path rejected in both roles with the same status. */
#define X(in, fl, st) {in, sizeof(in) - 1, fl, st, st, NULL, NULL, LSMTP_DOMAIN_NONE, 0}

/* Building blocks for the length limits. */
#define S10 "aaaaaaaaaa"
#define S50 S10 S10 S10 S10 S10
#define S60 S50 S10
#define L62 S60 "aa"
#define L63 S60 "aaa"
#define L64 S60 "aaaa"
#define L60 S60
#define L61 S60 "a"
/* 252 = 63*3 + 60 + 3 dots; with "<a@" and ">" the path is 256 octets. */
#define D252 L63 "." L63 "." L63 "." L60
#define D253 L63 "." L63 "." L63 "." L61
#define D255 L63 "." L63 "." L63 "." L63
#define D256 L63 "." L63 "." L63 "." L62 ".a"
/* U-labels measured by their A-labels (RFC 5890): 55 "a" + U+00FC is
 * "xn--" + 59 = 63 octets; one more "a" is 64. 26 times U+65E5 U+672C is
 * 156 octets of UTF-8 but an A-label of 62; 27 times is 64. */
#define UUML "\xc3\xbc"
#define U63 S50 "aaaaa" UUML
#define U64 S50 "aaaaaa" UUML
#define NIHON "\xe6\x97\xa5\xe6\x9c\xac"
#define NIHON13 NIHON NIHON NIHON NIHON NIHON NIHON NIHON NIHON NIHON NIHON NIHON NIHON NIHON
#define NIHON26 NIHON13 NIHON13
#define NIHON27 NIHON26 NIHON

static const address_case address_cases[] = {
    /* ---- plain mailboxes ---- */
    V("<a@b>", 0, "a", "b", NAME, 0),
    V("<user@example.com>", 0, "user", "example.com", NAME, 0),
    V("<User.Name+tag@Example.COM>", 0, "User.Name+tag", "Example.COM", NAME, 0),
    V("<a.b.c@d.e.f>", 0, "a.b.c", "d.e.f", NAME, 0),
    V("<x@localhost>", 0, "x", "localhost", NAME, 0),
    V("<1@2>", 0, "1", "2", NAME, 0),
    V("<a@1.2.3.4>", 0, "a", "1.2.3.4", NAME, 0), /* grammar: labels, not an IP */
    V("<a@b-c.d>", 0, "a", "b-c.d", NAME, 0),
    V("<a@b--c.d>", 0, "a", "b--c.d", NAME, 0),
    V("<a@0-0.0>", 0, "a", "0-0.0", NAME, 0),
    V("<a@xn--mnchen-3ya.de>", 0, "a", "xn--mnchen-3ya.de", NAME, 0),
    V("<!#$%&'*+-/=?^_`{|}~@example.org>", 0, "!#$%&'*+-/=?^_`{|}~", "example.org", NAME, 0),
    V("<etc/passwd@x>", 0, "etc/passwd", "x", NAME, 0),
    V("<a%b@c>", 0, "a%b", "c", NAME, 0),
    V("<a=b@c>", 0, "a=b", "c", NAME, 0),
    V("<{a}@c>", 0, "{a}", "c", NAME, 0),
    V("<A@B.C.D.E.F.G.H.I.J>", 0, "A", "B.C.D.E.F.G.H.I.J", NAME, 0),
    V("<postmaster@example.com>", 0, "postmaster", "example.com", NAME, 0),
    V("<Postmaster@b>", 0, "Postmaster", "b", NAME, 0),
    /* RFC 3696 §3 examples (and errata 246/3563 for the quoted ones) */
    V("<customer/department=shipping@example.com>", 0, "customer/department=shipping", "example.com", NAME, 0),
    V("<$A12345@example.com>", 0, "$A12345", "example.com", NAME, 0),
    V("<!def!xyz%abc@example.com>", 0, "!def!xyz%abc", "example.com", NAME, 0),
    V("<_somename@example.com>", 0, "_somename", "example.com", NAME, 0),
    V("<\"Abc@def\"@example.com>", 0, "\"Abc@def\"", "example.com", NAME, B_QUOTED),
    V("<\"Fred Bloggs\"@example.com>", 0, "\"Fred Bloggs\"", "example.com", NAME, B_QUOTED),
    V("<\"Joe\\\\Blow\"@example.com>", 0, "\"Joe\\\\Blow\"", "example.com", NAME, B_QUOTED),
    V("<\"Abc\\@def\"@example.com>", 0, "\"Abc\\@def\"", "example.com", NAME, B_QUOTED),
    X("<Abc\\@def@example.com>", 0, SYN), /* RFC 3696's unquoted form: not Dot-string */
    X("<Fred\\ Bloggs@example.com>", 0, SYN),

    /* ---- quoted local parts ---- */
    V("<\"a b\"@c>", 0, "\"a b\"", "c", NAME, B_QUOTED),
    V("<\"\"@example.com>", 0, "\"\"", "example.com", NAME, B_QUOTED),
    V("<\"a\\\"b\"@c>", 0, "\"a\\\"b\"", "c", NAME, B_QUOTED),
    V("<\"\\ \"@c>", 0, "\"\\ \"", "c", NAME, B_QUOTED),
    V("<\"@\"@c>", 0, "\"@\"", "c", NAME, B_QUOTED),
    V("<\"a..b\"@c>", 0, "\"a..b\"", "c", NAME, B_QUOTED),
    V("<\".a\"@c>", 0, "\".a\"", "c", NAME, B_QUOTED),
    V("<\"<>\"@c>", 0, "\"<>\"", "c", NAME, B_QUOTED),
    V("<\"a\\b\"@c>", 0, "\"a\\b\"", "c", NAME, B_QUOTED),
    V("<\"~ !#[]^\"@c>", 0, "\"~ !#[]^\"", "c", NAME, B_QUOTED),
    V("<\"postmaster\"@c>", 0, "\"postmaster\"", "c", NAME, B_QUOTED),
    V("<\"a\"@[1.2.3.4]>", 0, "\"a\"", "[1.2.3.4]", IP4, B_QUOTED),
    X("<\"a@b>", 0, SYN),            /* unterminated */
    X("<\"a\"b@c>", 0, SYN),         /* quoted-string then more atext */
    X("<a\"b\"@c>", 0, SYN),
    X("<\"a\\\"@c>", 0, SYN),        /* the closing quote is escaped */
    X("<\"a\tb\"@c>", 0, SYN),       /* HT is not qtextSMTP */
    X("<\"a\\\tb\"@c>", 0, SYN),     /* quoted-pairSMTP is %d32-126 */
    X("<\"\x7f\"@c>", 0, SYN),
    X("<\"a\x01\"@c>", 0, SYN),
    X("<\"a\\", 0, SYN),
    X("<\"a\"@>", 0, SYN),
    X("<\"a\".b@c>", 0, SYN),        /* no obs-local-part in SMTP */

    /* ---- Dot-string errors ---- */
    X("<.a@b>", 0, SYN),
    X("<a.@b>", 0, SYN),
    X("<a..b@c>", 0, SYN),
    X("<../../etc/passwd@x>", 0, SYN), /* leading dot: not a Dot-string */
    X("<a b@c>", 0, SYN),
    X("<a,b@c>", 0, SYN),
    X("<a(b)@c>", 0, SYN),
    X("<a:b@c>", 0, SYN),
    X("<a;b@c>", 0, SYN),
    X("<a[b]@c>", 0, SYN),
    X("<a\\b@c>", 0, SYN),

    /* ---- domain errors ---- */
    X("<a@@b>", 0, SYN),
    X("<a@b..c>", 0, SYN),
    X("<a@.b>", 0, SYN),
    X("<a@b.>", 0, SYN),
    X("<a@->", 0, SYN),
    X("<a@-b.c>", 0, SYN),
    X("<a@b-.c>", 0, SYN),
    X("<a@b.-c>", 0, SYN),
    X("<a@b_c.d>", 0, SYN),
    X("<a@b c>", 0, SYN),
    X("<a@b;c>", 0, SYN),
    X("<a@b%c>", 0, SYN),
    X("<a@b,c>", 0, SYN),
    X("<a@b@c>", 0, SYN),
    X("<a@>", 0, SYN),
    X("<a@b/c>", 0, SYN),
    X("<a@b:25>", 0, SYN),

    /* ---- brackets and framing ---- */
    X("", 0, SYN),
    X("<", 0, SYN),
    X(">", 0, SYN),
    X("<a@b", 0, SYN),
    X("a@b>", 0, SYN),
    X("a@b", 0, SYN), /* needs LSMTP_ADDR_LENIENT_BRACKETS */
    X("<a@b>x", 0, SYN),
    X("<a@b>>", 0, SYN),
    X("<<a@b>>", 0, SYN),
    X("< a@b>", 0, SYN),
    X("<a@b >", 0, SYN),
    X("<a@b\t>", 0, SYN),
    X("<a>", 0, SYN),
    X("<@b>", 0, SYN),
    X("<@>", 0, SYN),
    X("<:a@b>", 0, SYN),
    X("<a@b>\0", 0, SYN),

    /* ---- embedded NUL, CR, LF ---- */
    X("<a\0b@c>", 0, SYN),
    X("<a@b\0>", 0, SYN),
    X("<a@b\0.c>", 0, SYN),
    X("<\0a@b>", 0, SYN),
    X("<a@b\r\n>", 0, SYN),
    X("<a\r\n@b>", 0, SYN),
    X("<a@b\rc>", 0, SYN),
    X("<a@b\nc>", 0, SYN),
    X("<\"a\0\"@b>", 0, SYN),
    X("<\"a\r\n\"@b>", 0, SYN),
    X("<\"a\\\0\"@b>", 0, SYN),
    X("<a@[1.2.3.4\0]>", 0, SYN),

    /* ---- null path and postmaster ---- */
    {"<>", 2, 0, OK, SYN, "", "", LSMTP_DOMAIN_NONE, 0},
    {"<postmaster>", 12, 0, SYN, OK, "postmaster", "", LSMTP_DOMAIN_NONE, 0},
    {"<Postmaster>", 12, 0, SYN, OK, "Postmaster", "", LSMTP_DOMAIN_NONE, 0},
    {"<POSTMASTER>", 12, 0, SYN, OK, "POSTMASTER", "", LSMTP_DOMAIN_NONE, 0},
    X("<postmaster >", 0, SYN),
    X("<postmasters>", 0, SYN),
    X("<postmast>", 0, SYN),
    X("<\"postmaster\">", 0, SYN),
    X("<@a:postmaster>", 0, SYN),
    X("<<>>", 0, SYN),
    X("<>x", 0, SYN),

    /* ---- address literals ---- */
    V("<a@[192.0.2.1]>", 0, "a", "[192.0.2.1]", IP4, 0),
    V("<a@[0.0.0.0]>", 0, "a", "[0.0.0.0]", IP4, 0),
    V("<a@[255.255.255.255]>", 0, "a", "[255.255.255.255]", IP4, 0),
    V("<a@[001.002.003.004]>", 0, "a", "[001.002.003.004]", IP4, 0),
    V("<a@[127.0.0.1]>", 0, "a", "[127.0.0.1]", IP4, 0),
    X("<a@[300.1.1.1]>", 0, SYN),
    X("<a@[256.0.0.0]>", 0, SYN),
    X("<a@[1.2.3.256]>", 0, SYN),
    X("<a@[1.2.3]>", 0, SYN),
    X("<a@[1.2.3.4.5]>", 0, SYN),
    X("<a@[1234.1.1.1]>", 0, SYN),
    X("<a@[0001.1.1.1]>", 0, SYN),
    X("<a@[1..2.3]>", 0, SYN),
    X("<a@[1.2.3.]>", 0, SYN),
    X("<a@[.1.2.3]>", 0, SYN),
    X("<a@[]>", 0, SYN),
    X("<a@[ 1.2.3.4]>", 0, SYN),
    X("<a@[-1.2.3.4]>", 0, SYN),
    X("<a@[1.2.3.4>", 0, SYN),
    X("<a@[1.2.3.4]x>", 0, SYN),
    X("<a@[1.2.3.4].com>", 0, SYN),
    X("<a@b.[1.2.3.4]>", 0, SYN),
    X("<a@1.2.3.4]>", 0, SYN),
    X("<a@[[1.2.3.4]]>", 0, SYN),
    V("<a@[IPv6:2001:db8::1]>", 0, "a", "[IPv6:2001:db8::1]", IP6, 0),
    V("<a@[IPv6:::]>", 0, "a", "[IPv6:::]", IP6, 0),
    V("<a@[IPv6:::1]>", 0, "a", "[IPv6:::1]", IP6, 0),
    V("<a@[IPv6:1::]>", 0, "a", "[IPv6:1::]", IP6, 0),
    V("<a@[IPv6:1:2:3:4:5:6:7:8]>", 0, "a", "[IPv6:1:2:3:4:5:6:7:8]", IP6, 0),
    V("<a@[IPv6:1:2:3:4:5:6::]>", 0, "a", "[IPv6:1:2:3:4:5:6::]", IP6, 0),
    V("<a@[IPv6:::3:4:5:6:7:8]>", 0, "a", "[IPv6:::3:4:5:6:7:8]", IP6, 0),
    V("<a@[IPv6:1:2:3::6:7:8]>", 0, "a", "[IPv6:1:2:3::6:7:8]", IP6, 0),
    V("<a@[IPv6:ffff:FFFF:0:0:0:0:0:1]>", 0, "a", "[IPv6:ffff:FFFF:0:0:0:0:0:1]", IP6, 0),
    V("<a@[IPv6:0000:0:0:0:0:0:0:abcd]>", 0, "a", "[IPv6:0000:0:0:0:0:0:0:abcd]", IP6, 0),
    V("<a@[ipv6:::1]>", 0, "a", "[ipv6:::1]", IP6, 0), /* ABNF strings ignore case */
    V("<a@[IPv6:::ffff:192.0.2.1]>", 0, "a", "[IPv6:::ffff:192.0.2.1]", IP6, 0),
    V("<a@[IPv6:::192.0.2.1]>", 0, "a", "[IPv6:::192.0.2.1]", IP6, 0),
    V("<a@[IPv6:1:2:3:4:5:6:192.0.2.1]>", 0, "a", "[IPv6:1:2:3:4:5:6:192.0.2.1]", IP6, 0),
    V("<a@[IPv6:1:2:3:4::192.0.2.1]>", 0, "a", "[IPv6:1:2:3:4::192.0.2.1]", IP6, 0),
    V("<a@[IPv6:1::2:3:4:192.0.2.1]>", 0, "a", "[IPv6:1::2:3:4:192.0.2.1]", IP6, 0),
    V("<a@[IPv6:1::192.0.2.1]>", 0, "a", "[IPv6:1::192.0.2.1]", IP6, 0),
    X("<a@[IPv6:1::2::3]>", 0, SYN),
    X("<a@[IPv6:1:2:3:4:5:6:7]>", 0, SYN),
    X("<a@[IPv6:1:2:3:4:5:6:7:8:9]>", 0, SYN),
    X("<a@[IPv6:1:2:3:4:5:6:7::]>", 0, SYN), /* RFC 5321: "::" is >= 2 groups */
    X("<a@[IPv6:::2:3:4:5:6:7:8]>", 0, SYN),
    X("<a@[IPv6:1:2:3::5:6:7:8]>", 0, SYN),
    X("<a@[IPv6:12345::]>", 0, SYN),
    X("<a@[IPv6:g::]>", 0, SYN),
    X("<a@[IPv6::1]>", 0, SYN),
    X("<a@[IPv6:1:]>", 0, SYN),
    X("<a@[IPv6:1:::2]>", 0, SYN),
    X("<a@[IPv6::::]>", 0, SYN),
    X("<a@[IPv6:1.2.3.4]>", 0, SYN),
    X("<a@[IPv6:1:2:3:4:5::1.2.3.4]>", 0, SYN),
    X("<a@[IPv6:1:2:3:4:5:6:7:1.2.3.4]>", 0, SYN),
    X("<a@[IPv6:1:2:3:4:5:1.2.3.4]>", 0, SYN),
    X("<a@[IPv6:::1.2.3.4:5]>", 0, SYN),
    X("<a@[IPv6:::1.2.3.4::]>", 0, SYN),
    X("<a@[IPv6:::300.1.1.1]>", 0, SYN),
    X("<a@[IPv6:]>", 0, SYN),
    X("<a@[IPv6]>", 0, SYN),
    X("<a@[IPv6:fe80::1%eth0]>", 0, SYN),
    X("<a@[IPv6: ::1]>", 0, SYN),
    /* Without "IPv6:" the grammar reads "2001" as a Standardized-tag. */
    V("<a@[2001:db8::1]>", 0, "a", "[2001:db8::1]", GEN, 0),
    V("<a@[x-tag:stuff]>", 0, "a", "[x-tag:stuff]", GEN, 0),
    V("<a@[tag:a:b:c]>", 0, "a", "[tag:a:b:c]", GEN, 0),
    V("<a@[-tag:x]>", 0, "a", "[-tag:x]", GEN, 0), /* Ldh-str may start with "-" */
    V("<a@[1:2]>", 0, "a", "[1:2]", GEN, 0),
    X("<a@[tag-:x]>", 0, SYN),
    X("<a@[tag:]>", 0, SYN),
    X("<a@[:x]>", 0, SYN),
    X("<a@[tag:a b]>", 0, SYN),
    X("<a@[tag:a\\b]>", 0, SYN),
    X("<a@[tag:a[b]>", 0, SYN),
    X("<a@[t_g:x]>", 0, SYN),
    X("<a@[tag]>", 0, SYN),

    /* ---- source routes: accepted and dropped ---- */
    V("<@a,@b:c@d>", 0, "c", "d", NAME, B_ROUTE),
    V("<@a:c@d>", 0, "c", "d", NAME, B_ROUTE),
    V("<@a.example,@b.example,@c.example:user@host>", 0, "user", "host", NAME, B_ROUTE),
    V("<@a:\"q\"@[1.2.3.4]>", 0, "\"q\"", "[1.2.3.4]", IP4, B_ROUTE | B_QUOTED),
    X("<@[1.2.3.4]:a@b>", 0, SYN), /* At-domain is a Domain, never a literal */
    X("<@a,b:c@d>", 0, SYN),
    X("<@a:@b:c@d>", 0, SYN),
    X("<@a,@b c@d>", 0, SYN),
    X("<@:a@b>", 0, SYN),
    X("<@a,:b@c>", 0, SYN),
    X("<@a>", 0, SYN),
    X("<@a:>", 0, SYN),
    X("<@a;b@c>", 0, SYN),
    X("<@-a:b@c>", 0, SYN),
    X("<@a..b:c@d>", 0, SYN),

    /* ---- lenient brackets ---- */
    V("a@b", BR, "a", "b", NAME, 0),
    V("user@example.com", BR, "user", "example.com", NAME, 0),
    V("\"a b\"@c", BR, "\"a b\"", "c", NAME, B_QUOTED),
    V("a@[1.2.3.4]", BR, "a", "[1.2.3.4]", IP4, 0),
    V("<a@b>", BR, "a", "b", NAME, 0),
    V("<@x:a@b>", BR, "a", "b", NAME, B_ROUTE),
    {"<>", 2, BR, OK, SYN, "", "", LSMTP_DOMAIN_NONE, 0},
    {"postmaster", 10, BR, SYN, OK, "postmaster", "", LSMTP_DOMAIN_NONE, 0},
    X("a@b>", BR, SYN),
    X("@x:a@b", BR, SYN), /* no route without brackets */
    X("", BR, SYN),
    X("a", BR, SYN),

    /* ---- UTF-8 (RFC 6531) ---- */
    X("<\xc3\xa4@b>", 0, UTF),
    V("<\xc3\xa4@b>", U8, "\xc3\xa4", "b", NAME, B_UTF8),
    X("<a@m\xc3\xbcnchen.de>", 0, UTF),
    V("<a@m\xc3\xbcnchen.de>", U8, "a", "m\xc3\xbcnchen.de", NAME, B_UTF8),
    X("<\"\xc3\xa4\"@b>", 0, UTF),
    V("<\"\xc3\xa4\"@b>", U8, "\"\xc3\xa4\"", "b", NAME, B_QUOTED | B_UTF8),
    V("<\xf0\x9f\x98\x80@b>", U8, "\xf0\x9f\x98\x80", "b", NAME, B_UTF8),
    V("<a@" NIHON ".jp>", U8, "a", NIHON ".jp", NAME, B_UTF8),
    V("<\xd0\xb8\xd0\xbc\xd1\x8f@\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.\xd1\x80\xd1\x84>", U8,
      "\xd0\xb8\xd0\xbc\xd1\x8f", "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.\xd1\x80\xd1\x84", NAME, B_UTF8),
    V("<a\xc2\x80@b>", U8, "a\xc2\x80", "b", NAME, B_UTF8),          /* U+0080 */
    V("<\xe0\xa0\x80@b>", U8, "\xe0\xa0\x80", "b", NAME, B_UTF8),     /* U+0800 */
    V("<\xed\x9f\xbf@b>", U8, "\xed\x9f\xbf", "b", NAME, B_UTF8),     /* U+D7FF */
    V("<\xee\x80\x80@b>", U8, "\xee\x80\x80", "b", NAME, B_UTF8),     /* U+E000 */
    V("<\xf0\x90\x80\x80@b>", U8, "\xf0\x90\x80\x80", "b", NAME, B_UTF8), /* U+10000 */
    V("<\xf4\x8f\xbf\xbf@b>", U8, "\xf4\x8f\xbf\xbf", "b", NAME, B_UTF8), /* U+10FFFF */
    V("<@" NIHON ":a@b>", U8, "a", "b", NAME, B_ROUTE | B_UTF8),
    X("<@" NIHON ":a@b>", 0, UTF),
    X("<\xc0\xaf@b>", U8, UTF),          /* overlong "/" */
    X("<\xc0\xaf@b>", 0, UTF),
    X("<\xc1\xbf@b>", U8, UTF),          /* overlong */
    X("<\xe0\x80\xaf@b>", U8, UTF),      /* overlong, 3 bytes */
    X("<\xf0\x8f\xbf\xbf@b>", U8, UTF),  /* overlong, 4 bytes */
    X("<\xed\xa0\x80@b>", U8, UTF),      /* surrogate U+D800 */
    X("<\xed\xbf\xbf@b>", U8, UTF),      /* surrogate U+DFFF */
    X("<\xf4\x90\x80\x80@b>", U8, UTF),  /* U+110000 */
    X("<\xf5\x80\x80\x80@b>", U8, UTF),
    X("<\xff@b>", U8, UTF),
    X("<\x80@b>", U8, UTF),              /* lone continuation byte */
    X("<\xc3@b>", U8, UTF),              /* cut-off sequence */
    X("<\xe6\x97@b>", U8, UTF),
    X("<a@b\xc3>", U8, UTF),
    X("<a@\xc0\xae>", U8, UTF),
    X("<\"\xc0\xaf\"@b>", U8, UTF),
    X("<a@[\xc3\xa4]>", U8, SYN),        /* well-formed, but literals are ASCII */
    X("<a@[\xc3\xa4]>", 0, UTF),
    X("<a@[\xc0\xaf]>", U8, UTF),
    X("<\"\\\xc3\xa4\"@b>", U8, SYN),    /* quoted-pairSMTP is ASCII only */
    X("<a@-\xc3\xbc.de>", U8, SYN),
    X("<a@\xc3\xbc-.de>", U8, SYN),
    X("<a@\xc3\xbc..de>", U8, SYN),
    X("<\xc3\xa4.@b>", U8, SYN),

    /* ---- length limits (RFC 5321 §4.5.3.1) ---- */
    V("<" L64 "@b>", 0, L64, "b", NAME, 0),
    X("<" L64 "a@b>", 0, LONG),                        /* local part of 65 */
    V("<\"" L62 "\"@b>", 0, "\"" L62 "\"", "b", NAME, B_QUOTED),
    X("<\"" L63 "\"@b>", 0, LONG),                     /* 65 with the quotes */
    X("<" L64 "a@-b>", 0, SYN),                        /* syntax before length */
    V("<a@" L63 ".b>", 0, "a", L63 ".b", NAME, 0),
    X("<a@" L64 ".b>", 0, LONG),                       /* label of 64 */
    X("<a@b." L64 ">", 0, LONG),
    V("<a@" D252 ">", 0, "a", D252, NAME, 0),          /* path of exactly 256 */
    X("<a@" D253 ">", 0, LONG),                        /* 257 */
    X("<a@" D255 ">", 0, LONG),
    X("<a@" D256 ">", 0, LONG),                        /* domain of 256 */
    X("<@" D252 ":a@b>", 0, LONG),                     /* a route counts too */
    X("<@" L64 ":a@b>", 0, LONG),
    V("a@" D252, BR, "a", D252, NAME, 0),              /* 256 as if bracketed */
    X("a@" D253, BR, LONG),
    V("<a@" U63 ".de>", U8, "a", U63 ".de", NAME, B_UTF8),
    X("<a@" U64 ".de>", U8, LONG),
    V("<a@" NIHON26 ".jp>", U8, "a", NIHON26 ".jp", NAME, B_UTF8),
    X("<a@" NIHON27 ".jp>", U8, LONG),
    X("<" S50 S50 S50 S50 S50 S50 "@b>", 0, LONG),
};

#define ADDRESS_CASE_COUNT (sizeof address_cases / sizeof address_cases[0])

/* Domains for lsmtp_domain_check on their own (EHLO arguments). */
typedef struct domain_case {
  const char *in;
  size_t len;
  unsigned flags;
  int status;
  lsmtp_domain_kind kind;
} domain_case;

#define D(in, fl, st, kind) {in, sizeof(in) - 1, fl, st, kind}

static const domain_case domain_cases[] = {
    D("example.com", 0, OK, NAME),
    D("a", 0, OK, NAME),
    D("EXAMPLE.COM", 0, OK, NAME),
    D("a-b.c-d", 0, OK, NAME),
    D("1.2.3.4", 0, OK, NAME),
    D(L63, 0, OK, NAME),
    D(L64, 0, LONG, NAME),
    D(D255, 0, OK, NAME),
    D(D256, 0, LONG, NAME),
    D(D256 ".-", 0, SYN, NAME), /* syntax before length */
    D("[192.0.2.1]", 0, OK, IP4),
    D("[IPv6:::1]", 0, OK, IP6),
    D("[IPv6:2001:db8:0:0:0:0:2:1]", 0, OK, IP6),
    D("[x:y]", 0, OK, GEN),
    D("", 0, SYN, NAME),
    D(".", 0, SYN, NAME),
    D("a.", 0, SYN, NAME),
    D(".a", 0, SYN, NAME),
    D("a..b", 0, SYN, NAME),
    D("-a", 0, SYN, NAME),
    D("a-", 0, SYN, NAME),
    D("a_b", 0, SYN, NAME),
    D("a b", 0, SYN, NAME),
    D("a\0b", 0, SYN, NAME),
    D("a\r\n", 0, SYN, NAME),
    D("[192.0.2.1", 0, SYN, NAME),
    D("192.0.2.1]", 0, SYN, NAME),
    D("[192.0.2.1]]", 0, SYN, NAME),
    D("[192.0.2.1]x", 0, SYN, NAME),
    D("[300.0.2.1]", 0, SYN, NAME),
    D("[IPv6:1::2::3]", 0, SYN, NAME),
    D("[IPv6:::]", 0, OK, IP6),
    D("[]", 0, SYN, NAME),
    D("[", 0, SYN, NAME),
    D("m\xc3\xbcnchen.de", 0, UTF, NAME),
    D("m\xc3\xbcnchen.de", U8, OK, NAME),
    D("m\xc0\xbcnchen.de", U8, UTF, NAME),
    D(U63, U8, OK, NAME),
    D(U64, U8, LONG, NAME),
    D(NIHON26, U8, OK, NAME),
    D(NIHON27, U8, LONG, NAME),
    D("[" S50 S50 S50 S50 S50 "aa:x]", 0, LONG, NAME),  /* literal of 256 */
    D("[" S50 S50 S50 S50 S50 ":]", 0, SYN, NAME),
    D("[t:" S50 S50 S50 S50 S50 "a]", 0, OK, GEN), /* 255 */
};

#define DOMAIN_CASE_COUNT (sizeof domain_cases / sizeof domain_cases[0])

#endif
