/* Dropping root after the listeners are bound: groups first (while we
 * still may), then the gid, then the uid; then make sure it stuck. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "cli.h"

int cli_drop_privileges(const char *user) {
  errno = 0;
  struct passwd *pw = getpwnam(user);
  uint64_t num;
  if (!pw && cli_parse_u64(user, (uid_t)-1 - 1, &num) == 0)
    pw = getpwuid((uid_t)num);
  if (!pw) {
    cli_log(CLI_ERROR, "unknown user \"%s\"%s%s", user, errno ? ": " : "",
            errno ? strerror(errno) : "");
    return EX_NOUSER;
  }
  uid_t uid = pw->pw_uid;
  gid_t gid = pw->pw_gid;
  if (getuid() == uid && geteuid() == uid && getgid() == gid) return 0;
  if (geteuid() != 0) {
    cli_log(CLI_ERROR, "--user %s: only root can change user", user);
    return EX_NOPERM;
  }
  if (initgroups(pw->pw_name, gid) != 0 || setgid(gid) != 0 ||
      setuid(uid) != 0) {
    cli_log(CLI_ERROR, "cannot become %s: %s", user, strerror(errno));
    return EX_NOPERM;
  }
  if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
    cli_log(CLI_ERROR, "could regain root after becoming %s", user);
    return EX_NOPERM;
  }
  if (getuid() != uid || geteuid() != uid || getgid() != gid ||
      getegid() != gid) {
    cli_log(CLI_ERROR, "cannot become %s: ids did not change", user);
    return EX_NOPERM;
  }
  return 0;
}

int cli_mkdirs(const char *path, unsigned mode) {
  char buf[4096];
  size_t len = strlen(path);
  if (len == 0 || len >= sizeof buf) {
    errno = len ? ENAMETOOLONG : ENOENT;
    return -1;
  }
  memcpy(buf, path, len + 1);
  for (size_t i = 1; i <= len; i++) {
    if (buf[i] != '/' && buf[i] != '\0') continue;
    char saved = buf[i];
    buf[i] = '\0';
    if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST) return -1;
    buf[i] = saved;
  }
  struct stat st;
  if (stat(path, &st) != 0) return -1;
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return -1;
  }
  return 0;
}
