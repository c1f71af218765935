// Where the fence runs: the XDP program on each guarded interface (a pinned
// bpf_link per interface), the tc egress pacer next to it, and the sock_ops
// connection counter on the cgroup v2 root.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bpf/pin_dir.h"

namespace smtpfence {

enum class XdpMode { Auto, Native, Generic };

// "auto", "native" or "generic"; UsageError otherwise.
XdpMode parse_xdp_mode(const std::string& mode);

// One pinned attachment, for `status`.
struct Attachment {
    std::string name;  // interface name the link was pinned under
    int ifindex = 0;   // 0 when the interface is gone
    std::string mode;  // "native", "generic" or "detached"
    uint32_t program_id = 0;
    uint32_t link_id = 0;
};

// Every attachment pinned in `pin_dir`, by name.
std::vector<Attachment> attachments(const std::string& pin_dir);
// The id of the pinned XDP program; 0 when there is none.
uint32_t pinned_program_id(const std::string& pin_dir);

enum class AttachChange {
    New,         // the interface had no smtpfence program
    Swapped,     // it ran an older one, replaced atomically (no packet unfiltered)
    Reattached,  // the mode changed: detached and attached again (a brief gap)
};

struct AttachOutcome {
    std::string name;
    std::string mode;  // "native" or "generic"
    AttachChange change;
};

// Loads the program (see LoadedProgram), swaps it atomically into every
// existing attachment, and attaches it to `interfaces`. `notes` gets lines
// worth telling the user.
std::vector<AttachOutcome> attach(const std::string& pin_dir, const std::vector<std::string>& interfaces, XdpMode mode,
                                  uint32_t max_rules, std::vector<std::string>& notes, const LockWait& wait = {});

// Detaches from `interfaces`; rules and counters stay pinned. Returns the
// interfaces that were not attached.
std::vector<std::string> detach(const std::string& pin_dir, const std::vector<std::string>& interfaces,
                                const LockWait& wait = {});

}  // namespace smtpfence
