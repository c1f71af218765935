#include "fence/layout.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <filesystem>
#include <vector>

#include "base/errors.h"
#include "bpf/obj_info.h"
#include "bpf/pin_dir.h"
#include "bpf/skeleton.h"
#include "smtpfence_abi.h"
#include "smtpfence_bpf.skel.h"

namespace smtpfence {

std::string layout_migration_hint(const std::string& pin_dir) {
    return "to migrate, with the smtpfence build that made them: `smtpfence --pin-dir " + pin_dir +
           " save rules.txt` (or note `smtpfence list`) and `smtpfence --pin-dir " + pin_dir +
           " detach IFACE...`; then `rm -r " + pin_dir + "`; then with this build: `smtpfence --pin-dir " + pin_dir +
           " attach IFACE...` and `smtpfence --pin-dir " + pin_dir +
           " restore rules.txt` (SMTP is unfiltered between the detach and the attach)";
}

void check_config_layout(const std::string& pin_dir, int config_fd) {
    bpf_map_info info = map_info(config_fd, pin_path(pin_dir, FENCE_MAP_CONFIG));
    if (info.value_size != sizeof(fence_config)) {
        throw RuntimeError("the maps in " + pin_dir + " have another layout (a config value of " +
                           std::to_string(info.value_size) + " bytes, this smtpfence reads layout version " +
                           std::to_string(FENCE_LAYOUT_VERSION) + " with " + std::to_string(sizeof(fence_config)) +
                           "): use the smtpfence build that made them, or migrate; " + layout_migration_hint(pin_dir));
    }
    uint32_t zero = 0;
    fence_config cfg{};
    bpf_map_lookup_elem(config_fd, &zero, &cfg);
    if (cfg.magic != FENCE_CONFIG_MAGIC || cfg.layout_version != FENCE_LAYOUT_VERSION) {
        throw RuntimeError("the maps in " + pin_dir + " have layout version " + std::to_string(cfg.layout_version) +
                           ", this smtpfence reads version " + std::to_string(FENCE_LAYOUT_VERSION) +
                           ": use the smtpfence build that made them, or migrate; " + layout_migration_hint(pin_dir));
    }
}

// Each pinned map must have this build's type, key size and value size, and
// the config map this build's layout version. Without this check libbpf would
// refuse to reuse a mismatched pin with a bare EINVAL, or, worse, a
// same-sized map of another meaning would be read as ours.
void check_layout_against(const std::string& pin_dir, const bpf_object* obj) {
    std::vector<std::string> differences;
    uint32_t pinned_version = FENCE_LAYOUT_VERSION;
    const bpf_map* map = nullptr;
    while ((map = bpf_object__next_map(obj, map)) != nullptr) {
        const char* name = bpf_map__name(map);
        std::string pin = pin_path(pin_dir, name);
        std::optional<UniqueFd> pinned = try_open_pinned(pin);
        if (!pinned) continue;  // not pinned (yet): this build creates it
        bpf_map_info info = map_info(pinned->get(), pin);
        if (info.type != static_cast<__u32>(bpf_map__type(map)) || info.key_size != bpf_map__key_size(map) ||
            info.value_size != bpf_map__value_size(map)) {
            differences.push_back(std::string(name) + " (key " + std::to_string(info.key_size) + " / value " +
                                  std::to_string(info.value_size) +
                                  " bytes, this build: " + std::to_string(bpf_map__key_size(map)) + " / " +
                                  std::to_string(bpf_map__value_size(map)) + ")");
            continue;
        }
        if (std::string(name) == FENCE_MAP_CONFIG) {
            uint32_t zero = 0;
            fence_config cfg{};
            if (bpf_map_lookup_elem(pinned->get(), &zero, &cfg) == 0 && cfg.magic == FENCE_CONFIG_MAGIC) {
                pinned_version = cfg.layout_version;
            }
        }
    }
    if (pinned_version == FENCE_LAYOUT_VERSION && differences.empty()) return;
    std::string msg = "refusing to attach: the maps pinned in " + pin_dir + " have map layout version " +
                      std::to_string(pinned_version) + ", this smtpfence build uses layout version " +
                      std::to_string(FENCE_LAYOUT_VERSION);
    if (!differences.empty()) {
        msg += "; maps that differ: ";
        for (size_t i = 0; i < differences.size(); ++i) msg += (i ? ", " : "") + differences[i];
    }
    throw RuntimeError(msg + ". Nothing was changed: the old program and its rules stay in force. " +
                       layout_migration_hint(pin_dir));
}

void check_pinned_layout(const std::string& pin_dir) {
    if (!std::filesystem::exists(pin_dir)) return;
    LIBBPF_OPTS(bpf_object_open_opts, open_opts, .pin_root_path = pin_dir.c_str());
    Skeleton<smtpfence_bpf, smtpfence_bpf__destroy> skel(smtpfence_bpf__open_opts(&open_opts));
    if (!skel) throw RuntimeError(describe_errno("open the embedded BPF object", errno));
    check_layout_against(pin_dir, skel->obj);
}

}  // namespace smtpfence
