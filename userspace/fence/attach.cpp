#include "fence/attach.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>

#include "base/errors.h"
#include "base/unique_fd.h"
#include "bpf/obj_info.h"
#include "bpf/pin_dir.h"
#include "fence/layout.h"
#include "fence/netns.h"
#include "fence/pacing.h"
#include "fence/program.h"
#include "smtpfence_abi.h"

namespace smtpfence {

namespace fs = std::filesystem;

namespace {

std::string link_pin_path(const std::string& pin_dir, const std::string& ifname) {
    return pin_path(pin_dir, FENCE_PIN_LINKS_DIR) + "/" + ifname;
}

struct XdpLink {
    uint32_t link_id = 0;
    uint32_t program_id = 0;
    int ifindex = 0;  // 0 once the interface is gone
};

XdpLink xdp_link(int link_fd) {
    bpf_link_info info = link_info(link_fd, "XDP link");
    return {info.id, info.prog_id, static_cast<int>(info.xdp.ifindex)};
}

// "native" or "generic" for the program `program_id` on `ifindex`, "detached" if neither.
std::string xdp_mode_of(int ifindex, uint32_t program_id) {
    LIBBPF_OPTS(bpf_xdp_query_opts, query);
    if (ifindex <= 0 || bpf_xdp_query(ifindex, 0, &query) != 0) return "detached";
    if (query.drv_prog_id == program_id) return "native";
    if (query.skb_prog_id == program_id) return "generic";
    if (query.hw_prog_id == program_id) return "offload";
    return "detached";
}

// Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup on a unified
// system, /sys/fs/cgroup/unified on a hybrid one; "" if nowhere.
std::string cgroup2_root() {
    std::ifstream mounts("/proc/self/mounts");
    std::string device, dir, type, rest;
    std::string found;
    while (mounts >> device >> dir >> type && std::getline(mounts, rest)) {
        if (type != "cgroup2") continue;
        if (dir == "/sys/fs/cgroup") return dir;
        if (found.empty()) found = dir;
    }
    return found;
}

// The --max-conns bookkeeping runs on the host's TCP sockets: a sock_ops
// program on the cgroup v2 root, attached once per instance and swapped
// atomically like the XDP program.
void attach_sockops(const std::string& pin_dir, int prog_fd, std::vector<std::string>& notes) {
    std::string pin = pin_path(pin_dir, FENCE_PIN_SOCKOPS_LINK);
    if (std::optional<UniqueFd> link = try_open_pinned(pin)) {
        if (bpf_link_update(link->get(), prog_fd, nullptr) != 0) {
            throw RuntimeError(describe_errno("update the connection counter", errno));
        }
        return;
    }
    std::string root = cgroup2_root();
    if (root.empty()) {
        notes.push_back(
            "cgroup v2 is not mounted: `limit --max-conns` cannot count connections (block, allow and "
            "--rate work); mount it with `mount -t cgroup2 none /sys/fs/cgroup/unified`");
        return;
    }
    UniqueFd cgroup(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cgroup) throw RuntimeError(describe_errno("open " + root, errno));
    int fd = bpf_link_create(prog_fd, cgroup.get(), BPF_CGROUP_SOCK_OPS, nullptr);
    if (fd < 0) throw RuntimeError(describe_errno("attach the connection counter to " + root, errno));
    UniqueFd link(fd);
    if (bpf_obj_pin(link.get(), pin.c_str()) != 0) throw RuntimeError(describe_errno("pin " + pin, errno));
}

void detach_sockops(const std::string& pin_dir) {
    std::string pin = pin_path(pin_dir, FENCE_PIN_SOCKOPS_LINK);
    if (std::optional<UniqueFd> link = try_open_pinned(pin)) {
        bpf_link_detach(link->get());
        ::unlink(pin.c_str());
    }
}

// Pins the program under a temporary name (bpffs forbids dots in names) and renames it over the old pin,
// so that the pin always names a whole program.
void pin_program(const std::string& pin_dir, int prog_fd) {
    std::string final_path = pin_path(pin_dir, FENCE_PIN_PROG);
    std::string tmp_path = final_path + "_new";
    ::unlink(tmp_path.c_str());
    if (bpf_obj_pin(prog_fd, tmp_path.c_str()) != 0) throw RuntimeError(describe_errno("pin " + tmp_path, errno));
    if (::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
        throw RuntimeError(describe_errno("rename " + tmp_path, errno));
    }
}

uint32_t xdp_flags(XdpMode mode) {
    switch (mode) {
    case XdpMode::Native: return XDP_FLAGS_DRV_MODE;
    case XdpMode::Generic: return XDP_FLAGS_SKB_MODE;
    case XdpMode::Auto: break;
    }
    return 0;
}

UniqueFd create_link(int prog_fd, const std::string& ifname, int ifindex, XdpMode mode) {
    // Refuse to fight over the interface with somebody else's program.
    LIBBPF_OPTS(bpf_xdp_query_opts, query);
    if (bpf_xdp_query(ifindex, 0, &query) == 0 && query.prog_id != 0) {
        throw RuntimeError(ifname + " already runs XDP program id " + std::to_string(query.prog_id) +
                           ", which is not smtpfence's: remove it first (`ip link set dev " + ifname +
                           " xdp off`; `bpftool net show dev " + ifname + "` shows it)");
    }
    std::vector<XdpMode> tries = mode == XdpMode::Auto ? std::vector{XdpMode::Native, XdpMode::Generic}
                                                       : std::vector{mode};
    int err = 0;
    for (XdpMode m : tries) {
        LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = xdp_flags(m));
        int fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts);
        if (fd >= 0) return UniqueFd(fd);
        err = errno;
        if (err == EPERM || err == EACCES) break;
    }
    std::string msg = describe_errno("attach " + ifname, err);
    if (err == EPERM) msg += " (need CAP_NET_ADMIN)";
    if (mode == XdpMode::Native && (err == EOPNOTSUPP || err == EINVAL)) {
        msg += "; the driver may not support native XDP: try --mode generic";
    }
    throw RuntimeError(msg);
}

}  // namespace

XdpMode parse_xdp_mode(const std::string& mode) {
    static const std::map<std::string, XdpMode> modes{
        {"auto", XdpMode::Auto}, {"native", XdpMode::Native}, {"generic", XdpMode::Generic}};
    auto it = modes.find(mode);
    if (it == modes.end()) throw UsageError("mode '" + mode + "' is not one of auto, native, generic");
    return it->second;
}

std::vector<Attachment> attachments(const std::string& pin_dir) {
    std::vector<Attachment> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(pin_path(pin_dir, FENCE_PIN_LINKS_DIR), ec)) {
        Attachment a;
        a.name = entry.path().filename().string();
        // A pin that cannot be opened is shown, as detached, rather than hidden.
        if (int fd = bpf_obj_get(entry.path().c_str()); fd >= 0) {
            UniqueFd link(fd);
            XdpLink info = xdp_link(link.get());
            a.ifindex = info.ifindex;
            a.link_id = info.link_id;
            a.program_id = info.program_id;
            a.mode = xdp_mode_of(info.ifindex, info.program_id);
        } else {
            a.mode = "detached";
        }
        out.push_back(std::move(a));
    }
    std::sort(out.begin(), out.end(), [](const Attachment& a, const Attachment& b) { return a.name < b.name; });
    return out;
}

uint32_t pinned_program_id(const std::string& pin_dir) {
    const std::string pin = pin_path(pin_dir, FENCE_PIN_PROG);
    std::optional<UniqueFd> prog = try_open_pinned(pin);
    return prog ? prog_info(prog->get(), pin).id : 0;
}

std::vector<AttachOutcome> attach(const std::string& pin_dir, const std::vector<std::string>& interfaces, XdpMode mode,
                                  uint32_t max_rules, std::vector<std::string>& notes, const LockWait& wait) {
    // Before anything is created or loaded: an incompatible pin dir stays as it is.
    check_pinned_layout(pin_dir);
    // While interfaces are guarded the fence has one namespace, theirs (the
    // --max-conns counter counts the connections of one namespace): more
    // interfaces are attached there, wherever this runs.
    const auto attached = attachments(pin_dir);
    if (std::any_of(attached.begin(), attached.end(), [](const Attachment& a) { return a.ifindex != 0; }) &&
        !enter_guarded_netns(pin_dir)) {
        throw_outside_guarded_netns("attach");
    }
    std::vector<std::pair<std::string, int>> targets;
    for (const auto& name : interfaces) {
        unsigned ifindex = if_nametoindex(name.c_str());
        if (ifindex == 0) {
            throw UsageError("no interface named '" + name + "' in this network namespace (`ip link` lists them)");
        }
        targets.emplace_back(name, static_cast<int>(ifindex));
    }

    if (std::string note = prepare_pin_dir(pin_dir, {FENCE_PIN_LINKS_DIR}); !note.empty()) notes.push_back(note);
    PinDirLock lock(pin_dir, wait);
    LoadedProgram program(pin_dir, max_rules);
    int prog_fd = program.xdp_fd();
    pin_program(pin_dir, prog_fd);

    // Every existing attachment switches to the new program in one atomic step:
    // no packet sees an interface without a program.
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(pin_path(pin_dir, FENCE_PIN_LINKS_DIR), ec)) {
        std::string name = entry.path().filename().string();
        std::optional<UniqueFd> link = try_open_pinned(entry.path().string());
        if (!link) continue;
        if (xdp_link(link->get()).ifindex == 0) {
            ::unlink(entry.path().c_str());
            notes.push_back("removed the attachment to " + name + ": the interface is gone");
            continue;
        }
        if (bpf_link_update(link->get(), prog_fd, nullptr) != 0) {
            throw RuntimeError(describe_errno("update the program on " + name, errno));
        }
        attach_egress(name, xdp_link(link->get()).ifindex, program.pace_fd());
    }

    attach_sockops(pin_dir, program.sockops_fd(), notes);

    std::vector<AttachOutcome> outcomes;
    for (const auto& [name, ifindex] : targets) {
        std::string pin = link_pin_path(pin_dir, name);
        AttachChange change = AttachChange::New;
        if (std::optional<UniqueFd> link = try_open_pinned(pin)) {
            XdpLink info = xdp_link(link->get());
            std::string current = xdp_mode_of(info.ifindex, info.program_id);
            bool mode_ok = mode == XdpMode::Auto || (mode == XdpMode::Native && current == "native") ||
                           (mode == XdpMode::Generic && current == "generic");
            if (info.ifindex == ifindex && mode_ok) {
                outcomes.push_back({name, current, AttachChange::Swapped});
                continue;
            }
            // Another interface now has this name, or another mode was asked
            // for: the kernel cannot switch modes in place.
            bpf_link_detach(link->get());
            ::unlink(pin.c_str());
            change = AttachChange::Reattached;
        }
        UniqueFd link = create_link(prog_fd, name, ifindex, mode);
        if (bpf_obj_pin(link.get(), pin.c_str()) != 0) {
            int err = errno;
            bpf_link_detach(link.get());
            throw RuntimeError(describe_errno("pin " + pin, err));
        }
        attach_egress(name, ifindex, program.pace_fd());
        outcomes.push_back({name, xdp_mode_of(ifindex, xdp_link(link.get()).program_id), change});
    }
    return outcomes;
}

std::vector<std::string> detach(const std::string& pin_dir, const std::vector<std::string>& interfaces,
                                const LockWait& wait) {
    if (!fs::exists(pin_dir)) {
        throw RuntimeError("no smtpfence instance in " + pin_dir + ": nothing is attached");
    }
    PinDirLock lock(pin_dir, wait);
    // Interface names and ifindexes are those of the guarded namespace.
    const bool in_guarded_netns = enter_guarded_netns(pin_dir);
    std::vector<std::string> not_attached;
    for (const auto& name : interfaces) {
        std::string pin = link_pin_path(pin_dir, name);
        int fd = bpf_obj_get(pin.c_str());
        if (fd < 0) {
            if (errno != ENOENT) throw RuntimeError(describe_errno("open " + pin, errno));
            if (if_nametoindex(name.c_str()) == 0) {
                throw UsageError("no interface named '" + name + "' and no smtpfence attachment by that name " +
                                 "(`smtpfence status` lists the attachments)");
            }
            not_attached.push_back(name);
            continue;
        }
        UniqueFd link(fd);
        // Pacing first: its HTB root goes (the kernel's default qdisc comes
        // back) while the XDP program still guards the interface.
        if (int ifindex = xdp_link(link.get()).ifindex; ifindex != 0) {
            if (!in_guarded_netns) throw_outside_guarded_netns("detach " + name);
            detach_egress(name, ifindex);
            sync_pace_classes(name, {});
        }
        if (bpf_link_detach(link.get()) != 0 && errno != EINVAL) {
            throw RuntimeError(describe_errno("detach " + name, errno));
        }
        ::unlink(pin.c_str());
    }
    std::error_code ec;
    if (fs::is_empty(pin_path(pin_dir, FENCE_PIN_LINKS_DIR), ec) && !ec) detach_sockops(pin_dir);
    return not_attached;
}

}  // namespace smtpfence
