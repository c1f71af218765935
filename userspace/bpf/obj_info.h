// What the kernel says about a BPF map, program or link behind an fd
// (bpf_obj_get_info_by_fd), with errors that name the object.
#pragma once

#include <linux/bpf.h>

#include <string>

namespace smtpfence {

// `what` names the object in the error ("map config", "XDP link").
bpf_map_info map_info(int fd, const std::string& what);
bpf_prog_info prog_info(int fd, const std::string& what);
bpf_link_info link_info(int fd, const std::string& what);

}  // namespace smtpfence
