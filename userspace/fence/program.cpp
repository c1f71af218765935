#include "fence/program.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/socket.h>

#include <cerrno>
#include <utility>

#include "base/errors.h"
#include "base/unique_fd.h"
#include "bpf/obj_info.h"
#include "bpf/pin_dir.h"
#include "bpf/skeleton.h"
#include "fence/netns.h"
#include "smtpfence_abi.h"
#include "smtpfence_bpf.skel.h"
#include "text/ports.h"

namespace smtpfence {

struct LoadedProgram::Loaded {
    Skeleton<smtpfence_bpf, smtpfence_bpf__destroy> skel;
};

namespace {

// Sizes the rule maps: the pinned ones keep their size (libbpf only reuses a
// pin whose definition matches), new ones get `max_rules` per family; the
// slot maps serve both families.
void size_rule_maps(smtpfence_bpf* skel, const std::string& pin_dir, uint32_t max_rules) {
    const std::pair<bpf_map*, uint32_t> sizes[] = {{skel->maps.rules_v4, max_rules},
                                                   {skel->maps.rules_v6, max_rules},
                                                   {skel->maps.rule_counters, 2 * max_rules + FENCE_MAX_LISTS},
                                                   {skel->maps.rule_info, 2 * max_rules},
                                                   {skel->maps.rule_pace, 2 * max_rules}};
    for (auto [map, size] : sizes) {
        const std::string pin = pin_path(pin_dir, bpf_map__name(map));
        if (std::optional<UniqueFd> pinned = try_open_pinned(pin)) size = map_info(pinned->get(), pin).max_entries;
        bpf_map__set_max_entries(map, size);
    }
}

fence_config default_config() {
    fence_config cfg{};
    cfg.magic = FENCE_CONFIG_MAGIC;
    cfg.layout_version = FENCE_LAYOUT_VERSION;
    encode_port_bitmap(default_smtp_ports(), cfg.smtp_ports);
    return cfg;
}

}  // namespace

LoadedProgram::LoadedProgram(const std::string& pin_dir, uint32_t max_rules) : loaded_(std::make_unique<Loaded>()) {
    LIBBPF_OPTS(bpf_object_open_opts, open_opts, .pin_root_path = pin_dir.c_str());
    loaded_->skel.reset(smtpfence_bpf__open_opts(&open_opts));
    smtpfence_bpf* skel = loaded_->skel.get();
    if (!skel) throw RuntimeError(describe_errno("open the embedded BPF object", errno));
    size_rule_maps(skel, pin_dir, max_rules);
    if (int err = smtpfence_bpf__load(skel); err != 0) {
        std::string msg = describe_errno("load the XDP program", -err);
        if (-err == EINVAL) {
            msg += "; if " + pin_dir +
                   " holds maps of another smtpfence version, detach and remove them, or run "
                   "with -v for libbpf's detail";
        }
        throw RuntimeError(msg);
    }
    uint32_t zero = 0;
    fence_config cfg{};
    int config_fd = bpf_map__fd(skel->maps.config);
    if (bpf_map_lookup_elem(config_fd, &zero, &cfg) != 0) {
        throw RuntimeError(describe_errno("read map config", errno));
    }
    if (cfg.magic != FENCE_CONFIG_MAGIC) cfg = default_config();
    // The namespace this program guards: the one it is loaded from.
    cfg.netns_cookie = current_netns_cookie();
    if (bpf_map_update_elem(config_fd, &zero, &cfg, 0) != 0) {
        throw RuntimeError(describe_errno("write map config", errno));
    }
}

LoadedProgram::LoadedProgram(LoadedProgram&&) noexcept = default;
LoadedProgram::~LoadedProgram() = default;

int LoadedProgram::xdp_fd() const {
    return bpf_program__fd(loaded_->skel->progs.smtpfence_xdp);
}

int LoadedProgram::sockops_fd() const {
    return bpf_program__fd(loaded_->skel->progs.smtpfence_sockops);
}

int LoadedProgram::pace_fd() const {
    return bpf_program__fd(loaded_->skel->progs.smtpfence_pace);
}

}  // namespace smtpfence
