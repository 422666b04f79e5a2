/* The linked library's version, for header/library mismatch checks. */
#include <lsmtp/version.h>

const char *lsmtp_version(void) { return LSMTP_VERSION_STRING; }

unsigned lsmtp_version_num(void) { return (unsigned)LSMTP_VERSION_NUM; }
