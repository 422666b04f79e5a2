/* The self-pipe trick: a signal handler may only do async-signal-safe
 * things, so it writes the signal number into a pipe that the event loop
 * watches like any other descriptor. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static volatile sig_atomic_t signal_write_fd = -1;

static void on_signal(int sig) {
  int saved = errno;
  unsigned char b = (unsigned char)sig;
  if (signal_write_fd >= 0) (void)!write(signal_write_fd, &b, 1);
  errno = saved;
}

static int set_flags(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -1;
  return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

int cli_signal_pipe(const int *signals, size_t count, int *read_fd) {
  int p[2];
  if (pipe(p) != 0) return -1;
  if (set_flags(p[0]) != 0 || set_flags(p[1]) != 0) {
    close(p[0]);
    close(p[1]);
    return -1;
  }
  signal_write_fd = p[1];
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGPIPE, &sa, NULL) != 0) return -1;
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  for (size_t i = 0; i < count; i++)
    if (sigaction(signals[i], &sa, NULL) != 0) return -1;
  *read_fd = p[0];
  return 0;
}

int cli_signal_read(int read_fd) {
  unsigned char b;
  ssize_t n;
  do n = read(read_fd, &b, 1);
  while (n < 0 && errno == EINTR);
  return n == 1 ? (int)b : 0;
}
