/* Status names and messages, generated from LSMTP_STATUS_MAP. */
#include <lsmtp/status.h>

const char *lsmtp_strerror(int status) {
  switch (status) {
#define LSMTP_MSG_(name, value, fatal, msg) \
  case value:                               \
    return msg;
    LSMTP_STATUS_MAP(LSMTP_MSG_)
#undef LSMTP_MSG_
  }
  return "unknown status";
}

const char *lsmtp_status_name(int status) {
  switch (status) {
#define LSMTP_NAME_(name, value, fatal, msg) \
  case value:                                \
    return "LSMTP_" #name;
    LSMTP_STATUS_MAP(LSMTP_NAME_)
#undef LSMTP_NAME_
  }
  return "LSMTP_UNKNOWN";
}

int lsmtp_status_is_fatal(int status) {
  switch (status) {
#define LSMTP_FATAL_(name, value, fatal, msg) \
  case value:                                 \
    return fatal;
    LSMTP_STATUS_MAP(LSMTP_FATAL_)
#undef LSMTP_FATAL_
  }
  return 0;
}
