/* Unique-name material for files the roles create (Maildir names, spool
 * ids): a per-object random token. Not for secrets: the crypto adapter is
 * for those (and may be absent without mbedTLS). */
#include <fcntl.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

uint64_t lsmtp__mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15u;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
  return x ^ (x >> 31);
}

/* Falls back to time, pid and an address when the system offers no random
 * device: the caller's counter still keeps names unique within its object,
 * the token only separates objects. */
uint64_t lsmtp__unique_token(const void *salt) {
  uint64_t v = 0;
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t n = read(fd, &v, sizeof v);
    close(fd);
    if (n == (ssize_t)sizeof v) return v;
  }
  struct timespec ts = {0, 0};
  clock_gettime(CLOCK_REALTIME, &ts);
  v = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  v ^= (uint64_t)getpid() << 32;
  v ^= (uint64_t)(uintptr_t)salt;
  return lsmtp__mix64(v);
}
