/* Version of the lsmtp headers; lsmtp_version() gives the library's. */
#ifndef LSMTP_VERSION_H
#define LSMTP_VERSION_H

#include <lsmtp/export.h>

#define LSMTP_VERSION_MAJOR 0
#define LSMTP_VERSION_MINOR 1
#define LSMTP_VERSION_PATCH 0
#define LSMTP_VERSION_STRING "0.1.0"
/** One number that grows with every release: 0xMMmmpp. */
#define LSMTP_VERSION_NUM                                                      \
  ((LSMTP_VERSION_MAJOR << 16) | (LSMTP_VERSION_MINOR << 8) | LSMTP_VERSION_PATCH)

LSMTP_BEGIN_DECLS

/** The version of the linked library as "MAJOR.MINOR.PATCH"; static string.
 *  Compare with LSMTP_VERSION_STRING to detect header/library mismatch. */
LSMTP_API const char *lsmtp_version(void);

/** The linked library's LSMTP_VERSION_NUM. */
LSMTP_API unsigned lsmtp_version_num(void);

LSMTP_END_DECLS

#endif
