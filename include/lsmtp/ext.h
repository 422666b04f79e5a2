/* SMTP service extensions (EHLO keywords) as bits: what a server
 * advertises (lsmtp_server_config_set_extensions) and what a client found
 * offered (lsmtp_client_extensions). One list for both sides. */
#ifndef LSMTP_EXT_H
#define LSMTP_EXT_H

#define LSMTP_EXT_PIPELINING 0x001u          /* RFC 2920 */
#define LSMTP_EXT_SIZE 0x002u                /* RFC 1870 */
#define LSMTP_EXT_8BITMIME 0x004u            /* RFC 6152 */
#define LSMTP_EXT_SMTPUTF8 0x008u            /* RFC 6531 */
#define LSMTP_EXT_ENHANCEDSTATUSCODES 0x010u /* RFC 2034 / 3463 */
#define LSMTP_EXT_CHUNKING 0x020u            /* RFC 3030 BDAT */
#define LSMTP_EXT_BINARYMIME 0x040u          /* RFC 3030; needs CHUNKING */
#define LSMTP_EXT_DSN 0x080u                 /* RFC 3461 */
#define LSMTP_EXT_HELP 0x100u                /* the HELP command */
#define LSMTP_EXT_STARTTLS 0x200u            /* RFC 3207 */
#define LSMTP_EXT_AUTH 0x400u                /* RFC 4954 */
#define LSMTP_EXT_REQUIRETLS 0x800u          /* RFC 8689 */

#endif
