#include "bpf/obj_info.h"

#include <bpf/bpf.h>

#include <cerrno>

#include "base/errors.h"

namespace smtpfence {

namespace {

template <typename Info>
Info info_of(int fd, const std::string& what) {
    Info info{};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) throw RuntimeError(describe_errno("inspect " + what, errno));
    return info;
}

}  // namespace

bpf_map_info map_info(int fd, const std::string& what) {
    return info_of<bpf_map_info>(fd, what);
}

bpf_prog_info prog_info(int fd, const std::string& what) {
    return info_of<bpf_prog_info>(fd, what);
}

bpf_link_info link_info(int fd, const std::string& what) {
    return info_of<bpf_link_info>(fd, what);
}

}  // namespace smtpfence
