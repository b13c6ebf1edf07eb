// Shared by the native addons (nfqueue, nftables, rawio, netlink) that can open their
// sockets inside another network namespace: setns on the calling thread, create the
// socket, setns back. A socket keeps the namespace it was created in for its whole life.
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <string>

namespace tandem {

// Enters a network namespace for the lifetime of the guard (calling thread only).
// targetFd < 0: stays where it is. On failure `error` says what failed and failed() is true.
class NetnsGuard {
 public:
  NetnsGuard(int targetFd, std::string* error) {
    if (targetFd < 0) return;
    orig_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (orig_ < 0) {
      *error = Describe("open /proc/thread-self/ns/net", errno);
      failed_ = true;
      return;
    }
    if (setns(targetFd, CLONE_NEWNET) < 0) {
      *error = Describe("setns(netns)", errno);
      close(orig_);
      orig_ = -1;
      failed_ = true;
    }
  }
  ~NetnsGuard() {
    if (orig_ < 0) return;
    if (setns(orig_, CLONE_NEWNET) < 0) {
      // The main thread would otherwise stay in a lab namespace: never continue.
      fprintf(stderr, "tandem addon: cannot return to the original netns: %s\n", strerror(errno));
      abort();
    }
    close(orig_);
  }
  NetnsGuard(const NetnsGuard&) = delete;
  NetnsGuard& operator=(const NetnsGuard&) = delete;
  bool failed() const { return failed_; }

 private:
  static std::string Describe(const char* what, int err) {
    return std::string(what) + ": " + strerror(err) + " (errno " + std::to_string(err) + ")";
  }
  int orig_ = -1;
  bool failed_ = false;
};

// Opens a network namespace given as a name under /var/run/netns or a path, for NetnsGuard.
// Empty `netns`: returns -1 and no error (stay where we are). On failure returns -1 with
// `error` set to what failed.
inline int OpenNetns(const std::string& netns, std::string* error) {
  if (netns.empty()) return -1;
  std::string path = netns.find('/') == std::string::npos ? "/var/run/netns/" + netns : netns;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) *error = "open netns " + path + ": " + strerror(errno) + " (errno " + std::to_string(errno) + ")";
  return fd;
}

}  // namespace tandem
