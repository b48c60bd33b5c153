// hutch-runtime: a container's terminal handed to the engine (the pty's master sent over
// --console-socket, as runc does), or relayed to the runtime's own stdio.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include <hutch/hutch.hpp>

#include "state.hpp"

namespace hutch_runtime {

/// Sends `master` to the AF_UNIX socket at `path` (SCM_RIGHTS), with the pty's name as data.
inline hutch::result<void> send_console(const std::string& path, int master) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof address.sun_path) {
    return state_error(ENAMETOOLONG, path, "the console socket's path");
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  hutch::Fd socket(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!socket) return hutch::last_error(hutch::oci_step::state, path, "console socket");
  if (::connect(socket.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    return hutch::last_error(hutch::oci_step::state, path, "console socket");
  }
  char name[64] = "/dev/ptmx";
  (void)::ptsname_r(master, name, sizeof name);
  iovec data{name, std::strlen(name)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr message{};
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(header), &master, sizeof(int));
  if (::sendmsg(socket.get(), &message, MSG_NOSIGNAL) < 0) {
    return hutch::last_error(hutch::oci_step::state, path, "send the console");
  }
  return hutch::success();
}

/// Relays between this process's stdin/stdout and `master` until the terminal closes (the
/// process exited): `runc exec -t` without a console socket.
inline void relay_terminal(int master) {
  termios saved{};
  const bool raw = ::isatty(0) && ::tcgetattr(0, &saved) == 0;
  if (raw) {
    termios t = saved;
    ::cfmakeraw(&t);
    ::tcsetattr(0, TCSANOW, &t);
  }
  char buffer[16384];
  bool input = true;
  for (;;) {
    pollfd fds[2] = {{master, POLLIN, 0}, {0, static_cast<short>(input ? POLLIN : 0), 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t n = ::read(master, buffer, sizeof buffer);
      if (n <= 0) break;
      (void)!::write(1, buffer, static_cast<std::size_t>(n));
    }
    if (input && (fds[1].revents & (POLLIN | POLLHUP))) {
      const ssize_t n = ::read(0, buffer, sizeof buffer);
      if (n <= 0) {
        input = false;
      } else {
        (void)!::write(master, buffer, static_cast<std::size_t>(n));
      }
    }
  }
  if (raw) ::tcsetattr(0, TCSANOW, &saved);
}

}  // namespace hutch_runtime
