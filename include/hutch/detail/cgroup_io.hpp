// hutch — the I/O controller's parts: a device named for a limit resolved to the whole disk
// the kernel throttles (through /sys/dev/block), weights converted between v1 and v2, and
// the per-device counters of blkio (v1) and io.stat (v2) read into one shape.
#pragma once

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "../error.hpp"
#include "cgroup_layout.hpp"
#include "cgroup_limits.hpp"

namespace hutch::detail {

/// "8:0" as numbers; false for anything else.
inline bool parse_device_numbers(std::string_view text, unsigned& major_number,
                                 unsigned& minor_number) {
  const std::string copy(text);
  char rest = 0;
  return std::sscanf(copy.c_str(), "%u:%u%c", &major_number, &minor_number, &rest) == 2 &&
         copy.find_first_not_of("0123456789:") == std::string::npos;
}

/// The type of the filesystem mounted from device `dev`, from /proc/self/mountinfo (fields:
/// id, parent, major:minor, root, mount point, options, optional fields, "-", type, ...).
inline std::string filesystem_type(dev_t dev) {
  const std::string numbers = fmt::format("{}:{}", major(dev), minor(dev));
  std::istringstream mounts(read_text("/proc/self/mountinfo"));
  for (std::string line; std::getline(mounts, line);) {
    std::istringstream fields(line);
    std::string id, parent, device;
    if (!(fields >> id >> parent >> device) || device != numbers) continue;
    const auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream rest(line.substr(dash + 3));
    std::string type;
    rest >> type;
    return type;
  }
  return {};
}

/// The block device with these numbers, and whether it is a partition (then `disk` is the
/// disk holding it). The kernel's throttles and weights apply to whole disks only.
struct ResolvedDevice {
  BlockDevice device;
  bool partition = false;
  BlockDevice disk;
};

inline result<ResolvedDevice> lookup_block_device(unsigned major_number, unsigned minor_number,
                                                  const std::string& subject) {
  const std::string link = fmt::format("/sys/dev/block/{}:{}", major_number, minor_number);
  char real[PATH_MAX];
  if (!::realpath(link.c_str(), real)) {
    return make_error(Step::validate, ENODEV, subject,
                      fmt::format("no block device {}:{} on this host (/sys/dev/block)",
                                  major_number, minor_number));
  }
  const std::string path = real;
  auto base = [](const std::string& p) { return p.substr(p.rfind('/') + 1); };
  ResolvedDevice out;
  out.device = {major_number, minor_number, base(path)};
  out.disk = out.device;
  if (::access((path + "/partition").c_str(), F_OK) == 0) {
    const std::string parent = path.substr(0, path.rfind('/'));
    unsigned disk_major = 0, disk_minor = 0;
    std::string dev = read_text(parent + "/dev");
    if (!dev.empty() && dev.back() == '\n') dev.pop_back();
    if (!parse_device_numbers(dev, disk_major, disk_minor)) {
      return make_error(Step::validate, ENODEV, subject,
                        fmt::format("the disk holding partition {} is not in sysfs", base(path)));
    }
    out.partition = true;
    out.disk = {disk_major, disk_minor, base(parent)};
  }
  return out;
}

/// A device named for an I/O limit, resolved: "8:0", a block device's node, or a file or
/// directory, which stands for the whole disk under its filesystem. A partition named by its
/// node or numbers is refused (the kernel limits disks, and silently widening the limit to
/// the disk would surprise); so is a filesystem that no block device backs.
inline result<BlockDevice> resolve_block_device(const std::string& name) {
  unsigned major_number = 0, minor_number = 0;
  bool named_directly = true;
  if (!parse_device_numbers(name, major_number, minor_number)) {
    struct stat st {};
    if (name.empty() || ::stat(name.c_str(), &st) != 0) {
      return last_error(Step::validate, name, "I/O limit device");
    }
    if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) {
      return make_error(Step::validate, ENOTBLK, name,
                        "an I/O limit needs a block device (its node, its major:minor, or a "
                        "file or directory on it)");
    }
    named_directly = S_ISBLK(st.st_mode);
    const dev_t dev = named_directly ? st.st_rdev : st.st_dev;
    major_number = major(dev);
    minor_number = minor(dev);
    if (!named_directly && major_number == 0) {
      const std::string type = filesystem_type(dev);
      return make_error(Step::validate, ENOTBLK, name,
                        fmt::format("it is on {} (device 0:{}), which no block device backs; "
                                    "name the disk to limit (e.g. /dev/vda)",
                                    type.empty() ? "a filesystem" : type, minor_number));
    }
  }
  HUTCH_TRY(auto found, lookup_block_device(major_number, minor_number, name));
  if (found.partition && named_directly) {
    return make_error(Step::validate, EINVAL, name,
                      fmt::format("{} is a partition; the kernel limits I/O per disk: name "
                                  "/dev/{} ({}), or a file or directory on the partition",
                                  found.device.name, found.disk.name, found.disk.numbers()));
  }
  return found.disk;
}

/// v1 blkio weights run 10..1000 (BFQ's 1..1000), v2 io.weight 1..10000. The two
/// conversions round-trip: a v1 weight converted up and back is itself.
inline std::uint64_t io_weight_of_blkio(std::uint64_t blkio_weight) {
  if (blkio_weight <= 10) return 1;
  return 1 + ((blkio_weight - 10) * 9999 + 989) / 990;
}
inline std::uint64_t blkio_of_io_weight(std::uint64_t io_weight) {
  return 10 + (io_weight - 1) * 990 / 9999;
}

inline DeviceIoStats& device_entry(std::vector<DeviceIoStats>& all, unsigned major_number,
                                   unsigned minor_number) {
  for (auto& d : all) {
    if (d.major == major_number && d.minor == minor_number) return d;
  }
  all.push_back({.major = major_number, .minor = minor_number});
  return all.back();
}

/// v2 io.stat: "254:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0" per line.
inline std::vector<DeviceIoStats> parse_io_stat(const std::string& text) {
  std::vector<DeviceIoStats> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string device;
    unsigned major_number = 0, minor_number = 0;
    if (!(fields >> device) || !parse_device_numbers(device, major_number, minor_number)) {
      continue;
    }
    DeviceIoStats& d = device_entry(out, major_number, minor_number);
    for (std::string field; fields >> field;) {
      const auto eq = field.find('=');
      if (eq == std::string::npos) continue;
      const std::string_view key = std::string_view(field).substr(0, eq);
      const std::uint64_t value = number(field.substr(eq + 1));
      if (key == "rbytes") d.read_bytes = value;
      if (key == "wbytes") d.write_bytes = value;
      if (key == "rios") d.read_ios = value;
      if (key == "wios") d.write_ios = value;
    }
  }
  return out;
}

/// v1 blkio.throttle.io_service_bytes and io_serviced: "7:0 Read 16777216" per device and
/// operation, then totals ("7:0 Total ...", "Total ...") that are not read.
inline std::vector<DeviceIoStats> parse_blkio_stats(const std::string& bytes,
                                                    const std::string& ios) {
  std::vector<DeviceIoStats> out;
  auto read = [&](const std::string& text, bool counting_bytes) {
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      std::istringstream fields(line);
      std::string device, operation, value;
      unsigned major_number = 0, minor_number = 0;
      if (!(fields >> device >> operation >> value) ||
          !parse_device_numbers(device, major_number, minor_number)) {
        continue;
      }
      if (operation != "Read" && operation != "Write") continue;
      DeviceIoStats& d = device_entry(out, major_number, minor_number);
      const bool reading = operation == "Read";
      std::uint64_t& field = counting_bytes ? (reading ? d.read_bytes : d.write_bytes)
                                            : (reading ? d.read_ios : d.write_ios);
      field = number(value);
    }
  };
  read(bytes, true);
  read(ios, false);
  return out;
}

}  // namespace hutch::detail
